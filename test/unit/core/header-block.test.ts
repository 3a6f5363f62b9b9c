import { describe, expect, it } from "vitest";
import { parseHeaders, readHeaderBlock } from "../../../shared/core/header-block";

async function* chunksOf(bytes: Uint8Array, size: number): AsyncIterable<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.slice(i, i + size);
}

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const part of stream) parts.push(part);
  return new Uint8Array(Buffer.concat(parts));
}

const latin1 = (text: string) => new Uint8Array(Buffer.from(text, "latin1"));

describe("readHeaderBlock", () => {
  it("parses the topmost Received date and the Message-ID, folded and commented, split across chunks", async () => {
    // Prepare
    const message = latin1(
      "Received: from a.example (a.example [192.0.2.1])\r\n" +
        "\tby pop.example.net; Thu, 15 Jan 2026 10:58:30 +0200 (CEST)\r\n" +
        "Received: from b.example by a.example; Mon, 1 Jan 2024 00:00:00 +0000\r\n" +
        "Message-ID:\r\n <abc@sender.example>\r\n" +
        "Subject: \xe9t\xe9\r\n\r\nbody \x00\xff\r\n",
    );

    // Act
    const { headers, body } = await readHeaderBlock(chunksOf(message, 7));

    // Assess
    expect(headers).toEqual({
      messageId: "<abc@sender.example>",
      receivedAt: Date.UTC(2026, 0, 15, 8, 58, 30),
    });
    expect(await collect(body)).toEqual(message);
  });

  it("reads no more than its limit of an endless header block and still replays every byte", async () => {
    // Prepare
    const message = latin1(
      `Received: x; Thu, 15 Jan 2026 10:00:00 +0000\r\n${"X-Junk: y\r\n".repeat(5000)}\r\nbody`,
    );
    let pulled = 0;
    async function* counting() {
      for await (const chunk of chunksOf(message, 100)) {
        pulled += chunk.length;
        yield chunk;
      }
    }

    // Act
    const { headers, body } = await readHeaderBlock(counting(), 1000);
    const pulledBeforeBody = pulled;

    // Assess
    expect(pulledBeforeBody).toBe(1000);
    expect(headers.receivedAt).toBe(Date.UTC(2026, 0, 15, 10));
    expect(await collect(body)).toEqual(message);
  });

  it("leaves out what it cannot parse instead of failing", () => {
    // Prepare
    const block = latin1(
      "Received: from nowhere without a date\r\nMessage-ID: \r\nbroken line without colon\r\n",
    );

    // Act
    const headers = parseHeaders(block);

    // Assess
    expect(headers).toEqual({});
  });
});
