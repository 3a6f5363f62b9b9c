import { createHash } from "node:crypto";
import type { ContentDigest } from "./model";

/**
 * Passes a byte stream through unchanged while computing its size and SHA-256, so the digest of
 * what RETR served is known without holding the message in memory or reading it twice.
 */
export class DigestingStream implements AsyncIterable<Uint8Array> {
  private readonly hash = createHash("sha256");
  private size = 0;
  private finished = false;
  private result: ContentDigest | undefined;

  constructor(private readonly source: AsyncIterable<Uint8Array>) {}

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for await (const chunk of this.source) {
      this.hash.update(chunk);
      this.size += chunk.length;
      yield chunk;
    }
    this.finished = true;
  }

  /** The digest of every byte passed through; throws if the stream was not read to its end. */
  digest(): ContentDigest {
    if (!this.finished) throw new Error("DigestingStream.digest() called before the stream ended");
    this.result ??= { size: this.size, sha256: this.hash.digest("hex") };
    return this.result;
  }
}
