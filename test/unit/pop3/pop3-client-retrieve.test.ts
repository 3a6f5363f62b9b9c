import { afterEach, describe, expect, it } from "vitest";
import { Pop3ClientBusyError } from "../../../shared/adapters/pop3/pop3-client-busy-error";
import {
  ConnectionClosedError,
  MessageTooLargeError,
  Pop3CommandError,
  TimeoutError,
} from "../../../shared/core/errors";
import type { Delivery, ReplyContext } from "../../fakes/scripted-pop3-server";
import { collect, makeLargeMessage, makeMessage, rejection, sha256, startServer } from "./pop3-test-support";

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

async function serve(messages: Buffer[], deliver?: (context: ReplyContext) => Delivery | undefined) {
  const started = await startServer({ messages, ...(deliver ? { deliver } : {}) });
  cleanup = started.stop;
  const client = await started.connect();
  await client.login("alice", "s3cret!");
  return { ...started, client };
}

describe("Pop3Client.retrieve", () => {
  it("returns the stored bytes whatever offset the reply is split at (status line and terminator included)", async () => {
    // Prepare
    const message = makeMessage("split", [".starts with a dot", "..two dots", "end"]);
    const replyLength = `+OK ${message.length} octets\r\n`.length + message.length + 2 + 3; // ".." stuffed twice, ".\r\n"
    const { client } = await serve([message], (context) =>
      context.command === "RETR" ? { kind: "split", at: [context.count - 1] } : undefined,
    );
    // Act / Assess: RETR number k is split at offset k-1, so every offset is exercised on one connection.
    for (let offset = 0; offset <= replyLength; offset += 1) {
      const received = await collect(client.retrieve(1));
      expect(received.equals(message), `split at ${offset}`).toBe(true);
    }
  });

  it("returns the stored bytes when the server sends one byte at a time", async () => {
    // Prepare
    const message = makeMessage("bytes", [".", "..", "x"]);
    const { client } = await serve([message], (context) =>
      context.command === "RETR" ? { kind: "byte-by-byte" } : undefined,
    );
    // Act
    const received = await collect(client.retrieve(1));
    // Assess
    expect(received.equals(message)).toBe(true);
  });

  it("removes dot-stuffing and keeps 8-bit, NUL and CRLF bytes exactly", async () => {
    // Prepare
    const binary = Buffer.from([0x00, 0x01, 0xff, 0xfe, 0x80, 0x0d, 0x00, 0x2e, 0x2e, 0xc3, 0xa9]);
    const message = makeMessage("bytes", [".", "..", "...", ". space", binary, "caf\u00e9 \u00fc\u00df"]);
    const { client } = await serve([message]);
    // Act
    const received = await collect(client.retrieve(1));
    // Assess
    expect(sha256(received)).toBe(sha256(message));
  });

  it("serves a message without a final CRLF as the server does: with the CRLF it added", async () => {
    // Prepare
    const message = makeMessage("no newline", ["last line without CRLF"], false);
    const { client } = await serve([message]);
    // Act
    const received = await collect(client.retrieve(1));
    // Assess
    expect(received.equals(Buffer.concat([message, Buffer.from("\r\n")]))).toBe(true);
  });

  it("leaves the connection usable after a message, for the next command", async () => {
    // Prepare
    const first = makeMessage("one", ["1"]);
    const second = makeMessage("two", ["2"]);
    const { client } = await serve([first, second]);
    // Act
    const one = await collect(client.retrieve(1));
    const two = await collect(client.retrieve(2));
    const stat = await client.stat();
    // Assess
    expect(one.equals(first) && two.equals(second)).toBe(true);
    expect(stat.count).toBe(2);
  });

  it("errors the stream with ConnectionClosedError when the server closes mid-RETR", async () => {
    // Prepare
    const message = makeLargeMessage(200_000);
    const { client } = await serve([message], (context) =>
      context.command === "RETR" ? { kind: "close", afterBytes: 100_000 } : undefined,
    );
    // Act
    const error = await rejection(collect(client.retrieve(1)));
    // Assess
    expect(error).toBeInstanceOf(ConnectionClosedError);
    await expect(client.noop()).rejects.toBeInstanceOf(ConnectionClosedError);
  });

  it("errors the stream with ConnectionClosedError when the server closes right before the final '.'", async () => {
    // Prepare: everything but ".\r\n": a truncated message must never look complete.
    const message = makeMessage("truncated", ["a", "b"]);
    const replyLength = `+OK ${message.length} octets\r\n`.length + message.length + 3;
    const { client } = await serve([message], (context) =>
      context.command === "RETR" ? { kind: "close", afterBytes: replyLength - 3 } : undefined,
    );
    // Act
    const error = await rejection(collect(client.retrieve(1)));
    // Assess
    expect(error).toBeInstanceOf(ConnectionClosedError);
  });

  it("errors the stream with ConnectionClosedError when the server resets mid-RETR", async () => {
    // Prepare
    const message = makeLargeMessage(200_000);
    const { client } = await serve([message], (context) =>
      context.command === "RETR" ? { kind: "reset", afterBytes: 50_000 } : undefined,
    );
    // Act
    const error = await rejection(collect(client.retrieve(1)));
    // Assess
    expect(error).toBeInstanceOf(ConnectionClosedError);
  });

  it("errors the stream with TimeoutError when the server stalls mid-RETR", async () => {
    // Prepare
    const message = makeMessage("stall", ["a", "b", "c"]);
    const started = await startServer({
      messages: [message],
      deliver: (context) => (context.command === "RETR" ? { kind: "stall", afterBytes: 30 } : undefined),
    });
    cleanup = started.stop;
    const client = await started.connect({ commandTimeoutMs: 200 });
    await client.login("alice", "s3cret!");
    // Act
    const error = await rejection(collect(client.retrieve(1)));
    // Assess
    expect(error).toBeInstanceOf(TimeoutError);
  });

  it("errors the stream with TimeoutError when the whole connection budget runs out", async () => {
    // Prepare
    const message = makeMessage("deadline", ["a"]);
    const started = await startServer({
      messages: [message],
      deliver: (context) => (context.command === "RETR" ? { kind: "stall", afterBytes: 10 } : undefined),
    });
    cleanup = started.stop;
    const client = await started.connect({ connectionDeadlineMs: 300, commandTimeoutMs: 60_000 });
    await client.login("alice", "s3cret!");
    // Act
    const error = await rejection(collect(client.retrieve(1)));
    // Assess
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as Error).message).toContain("budget");
  });

  it("errors with MessageTooLargeError past maxBytes and leaves the client unusable", async () => {
    // Prepare
    const message = makeLargeMessage(100_000);
    const { client } = await serve([message]);
    // Act
    const error = await rejection(collect(client.retrieve(1, { maxBytes: 50_000 })));
    // Assess
    expect(error).toBeInstanceOf(MessageTooLargeError);
    expect((error as MessageTooLargeError).limitBytes).toBe(50_000);
    await expect(client.noop()).rejects.toBeInstanceOf(MessageTooLargeError);
  });

  it("accepts a message of exactly maxBytes", async () => {
    // Prepare
    const message = makeLargeMessage(40_000);
    const { client } = await serve([message]);
    // Act
    const received = await collect(client.retrieve(1, { maxBytes: message.length }));
    // Assess
    expect(received.equals(message)).toBe(true);
  });

  it("errors the stream with Pop3CommandError for a message that does not exist, and stays usable", async () => {
    // Prepare
    const { client } = await serve([makeMessage("only", ["x"])]);
    // Act
    const error = await rejection(collect(client.retrieve(9)));
    // Assess
    expect(error).toBeInstanceOf(Pop3CommandError);
    await expect(client.noop()).resolves.toBeUndefined();
  });

  it("rejects a command issued while a RETR stream is open, then serves it after the stream ends", async () => {
    // Prepare
    const message = makeMessage("busy", ["x"]);
    const { client } = await serve([message]);
    // Act
    const stream = client.retrieve(1);
    const busy = await rejection(client.noop());
    const received = await collect(stream);
    // Assess
    expect(busy).toBeInstanceOf(Pop3ClientBusyError);
    expect(received.equals(message)).toBe(true);
    await expect(client.noop()).resolves.toBeUndefined();
  });

  it("keeps its buffered bytes bounded for a slow consumer (the socket is paused)", async () => {
    // Prepare
    const message = makeLargeMessage(8 * 1024 * 1024);
    const { client } = await serve([message]);
    const stream = client.retrieve(1);
    let maxBuffered = 0;
    let sawPause = false;
    const chunks: Buffer[] = [];
    // Act: read one chunk per event-loop turn, far slower than loopback delivers.
    for (;;) {
      await new Promise((resolve) => setImmediate(resolve));
      sawPause ||= client.receivePaused;
      maxBuffered = Math.max(maxBuffered, stream.readableLength);
      const chunk: Buffer | null = stream.read();
      if (chunk !== null) {
        chunks.push(chunk);
        continue;
      }
      if (stream.readableEnded || stream.destroyed) break;
      await new Promise((resolve) => stream.once("readable", resolve));
    }
    // Assess
    expect(sawPause).toBe(true);
    expect(maxBuffered).toBeLessThanOrEqual(512 * 1024);
    expect(sha256(Buffer.concat(chunks))).toBe(sha256(message));
  });

  it("drops the connection when the consumer abandons a stream, without hanging later commands", async () => {
    // Prepare
    const message = makeLargeMessage(2 * 1024 * 1024);
    const { client } = await serve([message]);
    const stream = client.retrieve(1);
    // Act
    for await (const _chunk of stream) break;
    const error = await rejection(client.noop());
    // Assess
    expect(error).toBeInstanceOf(ConnectionClosedError);
  });
});
