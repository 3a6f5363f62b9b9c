import { describe, expect, it } from "vitest";
import { MultilineDecoder } from "../../../shared/adapters/pop3/multiline-decoder";

/** Runs the decoder over `chunks`, returning the body and the bytes after the terminator. */
function decodeChunks(chunks: readonly Buffer[]): { body: Buffer; done: boolean; rest: Buffer } {
  const decoder = new MultilineDecoder();
  const pieces: Buffer[] = [];
  let rest = Buffer.alloc(0);
  for (const chunk of chunks) {
    if (decoder.done) {
      rest = Buffer.concat([rest, chunk]);
      continue;
    }
    const result = decoder.decode(chunk);
    pieces.push(...result.pieces);
    if (result.done) rest = Buffer.from(result.rest);
  }
  return { body: Buffer.concat(pieces), done: decoder.done, rest };
}

const WIRE = Buffer.from("Subject: x\r\n\r\n..leading dot\r\n...two dots\r\n.\r\n", "latin1");
const BODY = Buffer.from("Subject: x\r\n\r\n.leading dot\r\n..two dots\r\n", "latin1");

describe("MultilineDecoder", () => {
  it("finds the terminator and unstuffs dots whatever single split point the chunks have", () => {
    for (let split = 0; split <= WIRE.length; split += 1) {
      // Prepare
      const chunks = [WIRE.subarray(0, split), WIRE.subarray(split)];
      // Act
      const { body, done, rest } = decodeChunks(chunks);
      // Assess
      expect({ split, done, equal: body.equals(BODY), rest: rest.length }).toEqual({
        split,
        done: true,
        equal: true,
        rest: 0,
      });
    }
  });

  it("decodes byte by byte, and every pair of split points around the terminator", () => {
    // Prepare
    const bytes = [...WIRE].map((byte) => Buffer.from([byte]));
    // Act
    const byteByByte = decodeChunks(bytes);
    // Assess
    expect(byteByByte.body.equals(BODY)).toBe(true);
    const tail = WIRE.length - 8;
    for (let first = tail; first < WIRE.length; first += 1) {
      for (let second = first + 1; second <= WIRE.length; second += 1) {
        const result = decodeChunks([
          WIRE.subarray(0, first),
          WIRE.subarray(first, second),
          WIRE.subarray(second),
        ]);
        expect(result.body.equals(BODY), `${first}/${second}`).toBe(true);
        expect(result.done).toBe(true);
      }
    }
  });

  it("handles a chunk that holds only '.' in the middle of the body", () => {
    // Prepare
    const chunks = ["line one\r\n", ".", ".dotted\r\n", ".", "\r", "\n"].map((text) => Buffer.from(text));
    // Act
    const { body, done } = decodeChunks(chunks);
    // Assess
    expect(done).toBe(true);
    expect(body.toString("latin1")).toBe("line one\r\n.dotted\r\n");
  });

  it("keeps 8-bit, NUL, bare CR and bare LF bytes untouched", () => {
    // Prepare
    const payload = Buffer.from([0x00, 0xff, 0x80, 0x0d, 0x41, 0x0a, 0x2e, 0x0d, 0x0a]);
    const wire = Buffer.concat([payload, Buffer.from(".\r\n")]);
    // Act
    const { body, done } = decodeChunks([wire]);
    // Assess: the "." after a bare LF is not at a line start, the final CRLF belongs to the body.
    expect(done).toBe(true);
    expect(body.equals(payload)).toBe(true);
  });

  it("treats '.' CR without LF as body, keeping the CR", () => {
    // Prepare
    const wire = Buffer.from("a\r\n.\rb\r\n.\r\n", "latin1");
    // Act
    const { body } = decodeChunks([wire.subarray(0, 5), wire.subarray(5)]);
    // Assess
    expect(body.toString("latin1")).toBe("a\r\n\rb\r\n");
  });

  it("returns an empty body for an immediate terminator and hands back bytes after it", () => {
    // Prepare
    const wire = Buffer.from(".\r\n+OK next\r\n");
    // Act
    const { body, done, rest } = decodeChunks([wire]);
    // Assess
    expect(done).toBe(true);
    expect(body.length).toBe(0);
    expect(rest.toString()).toBe("+OK next\r\n");
  });

  it("reports not done while the terminator has not arrived", () => {
    // Prepare
    const chunks = [Buffer.from("body\r\n.")];
    // Act
    const { done, body } = decodeChunks(chunks);
    // Assess
    expect(done).toBe(false);
    expect(body.toString()).toBe("body\r\n");
  });
});
