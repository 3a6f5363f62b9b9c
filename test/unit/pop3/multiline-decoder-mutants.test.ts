import { describe, expect, it } from "vitest";
import { MultilineDecoder } from "../../../shared/adapters/pop3/multiline-decoder";

/** Decodes `chunks` and keeps every piece as handed out (to check that none is empty). */
function decodeAll(chunks: readonly Buffer[]): { pieces: Buffer[]; done: boolean } {
  const decoder = new MultilineDecoder();
  const pieces: Buffer[] = [];
  for (const chunk of chunks) {
    const result = decoder.decode(chunk);
    pieces.push(...result.pieces);
    if (result.done) break;
  }
  return { pieces, done: decoder.done };
}

/** Lines that only a byte-exact reading of RFC 1939 §3 gets right: bare LF and CR never end a line. */
const WIRE = Buffer.from(
  "a\r\n" + "\n.x\r\n" + ".\n.\r\n" + "x\n\n.\r\n" + "y\n.z\r\n" + ".\rX\r\n" + "..\r\n" + ".\r\n",
  "latin1",
);
const BODY = Buffer.from(
  "a\r\n" + "\n.x\r\n" + "\n.\r\n" + "x\n\n.\r\n" + "y\n.z\r\n" + "\rX\r\n" + ".\r\n",
  "latin1",
);

describe("MultilineDecoder (mutation survivors)", () => {
  it("ends a line only at CRLF, whatever bare LF or CR stands before a dot, in one chunk", () => {
    // Act
    const { pieces, done } = decodeAll([WIRE]);
    // Assess
    expect(done).toBe(true);
    expect(Buffer.concat(pieces).toString("latin1")).toBe(BODY.toString("latin1"));
  });

  it("gives the same body byte by byte and at every split point, never an empty piece", () => {
    // Prepare
    const splits = [Array.from(WIRE, (byte) => Buffer.from([byte]))];
    for (let at = 0; at <= WIRE.length; at++) splits.push([WIRE.subarray(0, at), WIRE.subarray(at)]);
    for (const chunks of splits) {
      // Act
      const { pieces, done } = decodeAll(chunks);
      // Assess
      expect(done).toBe(true);
      expect(Buffer.concat(pieces).toString("latin1")).toBe(BODY.toString("latin1"));
      expect(pieces.filter((piece) => piece.length === 0)).toEqual([]);
    }
  });

  it("refuses to decode after the terminator", () => {
    // Prepare
    const decoder = new MultilineDecoder();
    decoder.decode(Buffer.from(".\r\n", "latin1"));
    // Act
    const act = () => decoder.decode(Buffer.from("more", "latin1"));
    // Assess
    expect(act).toThrow("MultilineDecoder: terminator already seen");
  });
});
