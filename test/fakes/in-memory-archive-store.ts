import { createHash } from "node:crypto";
import { IntegrityError } from "../../shared/core/errors";
import type { ContentDigest } from "../../shared/core/model";
import type { ArchiveMetadata, ArchiveStore } from "../../shared/ports/archive-store";

interface StoredObject {
  readonly bytes: Uint8Array;
  readonly digest: ContentDigest;
  readonly metadata: ArchiveMetadata;
  readonly lastModified: number;
}

/**
 * The archive in a Map. Like S3, an object becomes visible only when its whole body was read, so
 * a failed upload leaves nothing (or the older object) under the key. `failNextPut` injects a fault.
 */
export class InMemoryArchiveStore implements ArchiveStore {
  readonly objects = new Map<string, StoredObject>();
  putCount = 0;
  private readonly putFaults: Error[] = [];

  constructor(
    private readonly clock: { now(): number } = { now: () => Date.now() },
    private readonly chunkSize = 4096,
  ) {}

  failNextPut(error: Error): void {
    this.putFaults.push(error);
  }

  async put(key: string, body: AsyncIterable<Uint8Array>, metadata: ArchiveMetadata): Promise<ContentDigest> {
    this.putCount++;
    const chunks: Uint8Array[] = [];
    for await (const chunk of body) chunks.push(chunk.slice());
    const fault = this.putFaults.shift();
    if (fault !== undefined) throw fault;
    const bytes = Buffer.concat(chunks);
    const digest = { size: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex") };
    this.objects.set(key, { bytes: new Uint8Array(bytes), digest, metadata, lastModified: this.clock.now() });
    return digest;
  }

  async verify(key: string, expected: ContentDigest): Promise<boolean> {
    const stored = this.objects.get(key);
    return (
      stored !== undefined && stored.digest.size === expected.size && stored.digest.sha256 === expected.sha256
    );
  }

  async open(key: string): Promise<AsyncIterable<Uint8Array>> {
    const stored = this.objects.get(key);
    if (stored === undefined) throw new IntegrityError(`no archived object ${key}`);
    return chunked(stored.bytes, this.chunkSize);
  }

  async *list(prefix: string): AsyncIterable<{ key: string; lastModified: number }> {
    for (const [key, object] of this.objects) {
      if (key.startsWith(prefix)) yield { key, lastModified: object.lastModified };
    }
  }

  /** Overwrites an object's bytes behind the store's back, to prove `verify` catches it. */
  corrupt(key: string): void {
    const stored = this.objects.get(key);
    if (stored === undefined) return;
    const bytes = stored.bytes.slice();
    bytes[0] = (bytes[0] ?? 0) ^ 0xff;
    this.objects.set(key, { ...stored, bytes, digest: { ...stored.digest, sha256: "0".repeat(64) } });
  }
}

async function* chunked(bytes: Uint8Array, size: number): AsyncIterable<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.slice(i, i + size);
}
