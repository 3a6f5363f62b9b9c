import type { ContentDigest } from "../core/model";

/** What is stored beside the archived bytes (S3 object metadata, or a sidecar for the file store). */
export interface ArchiveMetadata {
  readonly tenant: string;
  readonly mailboxId: string;
  readonly uidl: string;
  readonly messageIdHeader?: string;
}

/**
 * The byte-exact archive of raw messages (.eml). Keys are deterministic from tenant, mailbox and
 * UIDL (see `archiveKeyFor`), so writing the same message twice overwrites, never duplicates.
 */
export interface ArchiveStore {
  /**
   * Streams `body` to `key` and returns the size and SHA-256 of the bytes it sent.
   * Throws `TransientError` on a storage fault; nothing partial is left visible under `key`.
   */
  put(key: string, body: AsyncIterable<Uint8Array>, metadata: ArchiveMetadata): Promise<ContentDigest>;
  /**
   * Proves the stored object is `expected` (size and SHA-256), from the store's own record of
   * what it holds, not from what we sent. Returns false on a mismatch or a missing object.
   */
  verify(key: string, expected: ContentDigest): Promise<boolean>;
  /**
   * Reads the stored bytes back; may be called again for a fresh stream (upload retries).
   * Throws `IntegrityError` when no object is stored under `key`, so the caller re-archives
   * from the source instead of treating it as an unknown failure.
   */
  open(key: string): Promise<AsyncIterable<Uint8Array>>;
  /** Keys under a prefix with their last-modified time (for replay); order is unspecified. */
  list(prefix: string): AsyncIterable<{ key: string; lastModified: number }>;
  /**
   * Makes every object `put` so far durable where `put` left part of that to later (the folder
   * archive syncs its folders once per session). The delete pass calls it before its first DELE
   * (docs/pipeline.md, "Ledger commits"). Absent: `put` is durable on its own (S3).
   */
  flush?(): Promise<void>;
}
