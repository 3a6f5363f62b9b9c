import { describe, expect, it } from "vitest";
import { DigestingStream } from "../../../shared/core/digesting-stream";

async function* twoChunks(): AsyncIterable<Uint8Array> {
  yield new Uint8Array([1, 2]);
  yield new Uint8Array([3]);
}

describe("DigestingStream (mutation survivors)", () => {
  it("refuses to give a digest before the stream was read to its end", async () => {
    // Prepare
    const stream = new DigestingStream(twoChunks());
    const iterator = stream[Symbol.asyncIterator]();
    // Act
    const unread = () => stream.digest();
    await iterator.next();
    const halfRead = () => stream.digest();
    // Assess
    expect(unread).toThrow("DigestingStream.digest() called before the stream ended");
    expect(halfRead).toThrow("DigestingStream.digest() called before the stream ended");
  });
});
