import { describe, expect, it } from "vitest";
import { DEFAULT_HEADER_LIMIT_BYTES, parseHeaders, readHeaderBlock } from "../../../shared/core/header-block";

const latin1 = (text: string) => new Uint8Array(Buffer.from(text, "latin1"));

/** A source that counts how often it was pulled, including pulls after its end. */
class CountingSource implements AsyncIterable<Uint8Array> {
  pulls = 0;
  constructor(private readonly chunks: readonly Uint8Array[]) {}
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    let index = 0;
    return {
      next: async () => {
        this.pulls++;
        const value = this.chunks[index++];
        return value === undefined ? { done: true, value: undefined } : { done: false, value };
      },
    };
  }
}

async function collect(stream: AsyncIterable<Uint8Array>): Promise<string> {
  const parts: Uint8Array[] = [];
  for await (const part of stream) parts.push(part);
  return Buffer.concat(parts).toString("latin1");
}

/** Every way to cut `text` into three chunks (empty middle chunks excluded). */
function threeWaySplits(text: string): Uint8Array[][] {
  const bytes = latin1(text);
  const splits: Uint8Array[][] = [];
  for (let a = 1; a < bytes.length; a++) {
    for (let b = a + 1; b < bytes.length; b++) {
      splits.push([bytes.subarray(0, a), bytes.subarray(a, b), bytes.subarray(b)]);
    }
  }
  return splits;
}

describe("readHeaderBlock (mutation survivors)", () => {
  it("reads 64 KiB ahead by default", () => {
    // Assess
    expect(DEFAULT_HEADER_LIMIT_BYTES).toBe(65_536);
  });

  it("stops pulling at the chunk that ends the header block, wherever CRLF CRLF is cut", async () => {
    // Prepare
    const message = "A: b\r\nMessage-ID: <m@x>\r\n\r\nbody";
    const lastHeaderByte = message.indexOf("\r\n\r\n") + 3;
    for (const chunks of threeWaySplits(message)) {
      const source = new CountingSource(chunks);
      const chunkEnds = chunks.map((_, i) => chunks.slice(0, i + 1).reduce((n, c) => n + c.length, 0));
      const expectedPulls = chunkEnds.findIndex((end) => end > lastHeaderByte) + 1;
      // Act
      const { headers, body } = await readHeaderBlock(source);
      const pullsBeforeReplay = source.pulls;
      const replayed = await collect(body);
      // Assess
      expect({ pulls: pullsBeforeReplay, headers, replayed }).toStrictEqual({
        pulls: expectedPulls,
        headers: { messageId: "<m@x>" },
        replayed: message,
      });
    }
  });

  it("stops at once on a message that starts with an empty line, and parses no body as headers", async () => {
    // Prepare
    const source = new CountingSource([latin1("\n"), latin1("\nMessage-ID: <body@x>\n"), latin1("more")]);
    // Act
    const { headers, body } = await readHeaderBlock(source);
    const pulls = source.pulls;
    // Assess
    expect(pulls).toBe(2);
    expect(headers).toStrictEqual({});
    expect(await collect(body)).toBe("\n\nMessage-ID: <body@x>\nmore");
  });

  it("never takes a Message-ID from the body, whatever the line ends", async () => {
    // Prepare
    const messages = [
      "Subject: s\r\n\r\nMessage-ID: <body@x>\r\n",
      "Subject: s\n\nMessage-ID: <body@x>\n",
      "Subject: s\r\n\nMessage-ID: <body@x>\r\n",
    ];
    for (const message of messages) {
      // Act
      const { headers } = await readHeaderBlock(new CountingSource([latin1(message)]));
      // Assess
      expect(headers).toStrictEqual({});
    }
  });

  it("does not end the header block at a one-character line or a bare CR line", async () => {
    // Prepare
    const messages = [
      "Subject: s\n\t\nMessage-ID: <a@x>\n\nbody",
      "Subject: s\r\nC\nMessage-ID: <a@x>\r\n\r\nbody",
      "Subject: s\r\n\rX: y\r\nMessage-ID: <a@x>\r\n\r\nbody",
    ];
    for (const message of messages) {
      // Act
      const { headers } = await readHeaderBlock(new CountingSource([latin1(message)]));
      // Assess
      expect(headers).toStrictEqual({ messageId: "<a@x>" });
    }
  });

  it("parses no more than maxBytes of a header block that goes on", async () => {
    // Prepare
    const message = `X-Pad: ${"p".repeat(30)}\r\nMessage-ID: <late@x>\r\n\r\nbody`;
    // Act
    const { headers, body } = await readHeaderBlock(new CountingSource([latin1(message)]), 40);
    // Assess
    expect(headers).toStrictEqual({});
    expect(await collect(body)).toBe(message);
  });

  it("parses the last byte of a header block that has no end", async () => {
    // Prepare
    const source = new CountingSource([latin1("Subject: s\r\nMessage-ID: <m@x>")]);
    // Act
    const { headers } = await readHeaderBlock(source);
    // Assess
    expect(headers).toStrictEqual({ messageId: "<m@x>" });
  });

  it("pulls a source without a header end exactly to its end, once", async () => {
    // Prepare
    const source = new CountingSource([latin1("Message-ID: <only@x>\r\n"), latin1("Subject: s")]);
    // Act
    const { headers, body } = await readHeaderBlock(source);
    const replayed = await collect(body);
    // Assess
    expect(headers).toStrictEqual({ messageId: "<only@x>" });
    expect(replayed).toBe("Message-ID: <only@x>\r\nSubject: s");
    expect(source.pulls).toBe(3);
  });
});

describe("parseHeaders (mutation survivors)", () => {
  it("keeps the first Message-ID, tolerates space before the colon, and ignores colon-less lines", () => {
    // Act
    const first = parseHeaders(latin1("Message-ID : <one@x>\r\nMessage-ID: <two@x>"));
    const colonless = parseHeaders(latin1("Message-IDx\r\nSubject: s"));
    // Assess
    expect(first).toStrictEqual({ messageId: "<one@x>" });
    expect(colonless).toStrictEqual({});
  });

  it("keeps a Message-ID of 998 characters and drops one of 999", () => {
    // Prepare
    const id998 = `<${"a".repeat(994)}@x>`;
    const id999 = `<${"a".repeat(995)}@x>`;
    // Act
    const kept = parseHeaders(latin1(`Message-ID: ${id998}`));
    const dropped = parseHeaders(latin1(`Message-ID: ${id999}`));
    // Assess
    expect(id998.length).toBe(998);
    expect(kept).toStrictEqual({ messageId: id998 });
    expect(dropped).toStrictEqual({});
  });

  it("unfolds with one space, splits LF-only blocks and reads a field that opens with whitespace", () => {
    // Act
    const folded = parseHeaders(latin1("Message-ID: <a\r\n   b@x>"));
    const lfOnly = parseHeaders(latin1("Message-ID: <lf@x>\nSubject: s"));
    const leading = parseHeaders(latin1(" Message-ID: <lead@x>\r\nSubject: s"));
    // Assess
    expect(folded).toStrictEqual({ messageId: "<a b@x>" });
    expect(lfOnly).toStrictEqual({ messageId: "<lf@x>" });
    expect(leading).toStrictEqual({ messageId: "<lead@x>" });
  });

  it("dates only the topmost Received field, and only after its semicolon", () => {
    // Prepare
    const stamp = Date.UTC(2026, 0, 15, 8, 58, 30);
    // Act
    const afterOther = parseHeaders(
      latin1("X-Other: a; Mon, 1 Jan 2024 00:00:00 +0000\r\nReceived: x; Thu, 15 Jan 2026 10:58:30 +0200"),
    );
    const noSemicolon = parseHeaders(latin1("Received: Thu, 15 Jan 2026 10:58:30 +0200"));
    const leadingSemicolon = parseHeaders(latin1("Received: ; Thu, 15 Jan 2026 10:58:30 +0200"));
    // Assess
    expect(afterOther).toStrictEqual({ receivedAt: stamp });
    expect(noSemicolon).toStrictEqual({});
    expect(leadingSemicolon).toStrictEqual({ receivedAt: stamp });
  });

  it("replaces each comment in the date by a space", () => {
    // Act
    const beforeZone = parseHeaders(latin1("Received: x; Thu, 15 Jan 2026 10:58:30(CEST)+0200"));
    const beforeTime = parseHeaders(latin1("Received: x; Thu, 15 Jan 2026(CEST)10:58:30 +0200"));
    // Assess
    expect(beforeZone).toStrictEqual({ receivedAt: Date.UTC(2026, 0, 15, 8, 58, 30) });
    expect(beforeTime).toStrictEqual({ receivedAt: Date.UTC(2026, 0, 15, 8, 58, 30) });
  });
});
