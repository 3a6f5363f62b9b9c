import { createHash, randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { IntegrityError, ProtocolError } from "../../shared/core/errors";
import type { ArchiveMetadata, ArchiveStore } from "../../shared/ports/archive-store";

/**
 * The behaviour every `ArchiveStore` must show (S3, in-memory, folder). Each case writes under a
 * prefix of its own, so a factory may hand out instances over one bucket or folder.
 */
export function describeArchiveStoreContract(
  name: string,
  makeStore: () => ArchiveStore | Promise<ArchiveStore>,
): void {
  describe(`ArchiveStore contract: ${name}`, () => {
    it("stores 8-bit, NUL and CRLF bytes exactly, whatever the chunking", async () => {
      // Prepare
      const store = await makeStore();
      const key = `${newPrefix()}box/awkward.eml`;
      const bytes = Buffer.concat([
        Buffer.from("Subject: =?utf-8?q?caf=C3=A9?=\r\n\r\n", "latin1"),
        Buffer.from([0, 0xff, 0x80, 0x0d, 0x0a, 0x2e, 0x0d, 0x0a, 0x00, 0xe9]),
        Buffer.from(".leading dot kept\r\nlast line without CRLF", "latin1"),
      ]);
      // Act
      const digest = await store.put(key, chunked(bytes, [1, 3, 7, 2]), metadataFor("awkward"));
      const readBack = await readAll(await store.open(key));
      // Assess
      expect(digest).toEqual({ size: bytes.length, sha256: sha256(bytes) });
      expect(readBack.equals(bytes)).toBe(true);
      expect(await store.verify(key, digest)).toBe(true);
    });

    it("streams a 20 MB message through and proves it with verify", async () => {
      // Prepare
      const store = await makeStore();
      const key = `${newPrefix()}box/big.eml`;
      const { body, size, sha256: expectedSha } = pseudoRandomBody(20 * 1024 * 1024, 64 * 1024);
      // Act
      const digest = await store.put(key, body, metadataFor("big"));
      const verified = await store.verify(key, digest);
      const reread = await digestOf(await store.open(key));
      // Assess
      expect(digest).toEqual({ size, sha256: expectedSha });
      expect(verified).toBe(true);
      expect(reread).toEqual(digest);
    });

    it("stores an empty message", async () => {
      // Prepare
      const store = await makeStore();
      const key = `${newPrefix()}box/empty.eml`;
      // Act
      const digest = await store.put(key, chunked(Buffer.alloc(0), [1]), metadataFor("empty"));
      const readBack = await readAll(await store.open(key));
      // Assess
      expect(digest).toEqual({ size: 0, sha256: sha256(Buffer.alloc(0)) });
      expect(readBack.length).toBe(0);
      expect(await store.verify(key, digest)).toBe(true);
    });

    it("verify is false for a wrong digest, a wrong size or a missing object", async () => {
      // Prepare
      const store = await makeStore();
      const prefix = newPrefix();
      const bytes = Buffer.from("From: a@b\r\n\r\nhello\r\n");
      const digest = await store.put(`${prefix}box/m.eml`, chunked(bytes, [5]), metadataFor("m"));
      // Act
      const wrongSha = await store.verify(`${prefix}box/m.eml`, {
        ...digest,
        sha256: sha256(Buffer.from("x")),
      });
      const wrongSize = await store.verify(`${prefix}box/m.eml`, { ...digest, size: digest.size + 1 });
      const missing = await store.verify(`${prefix}box/none.eml`, digest);
      // Assess
      expect([wrongSha, wrongSize, missing]).toEqual([false, false, false]);
    });

    it("overwrites an object written again under the same key", async () => {
      // Prepare
      const store = await makeStore();
      const key = `${newPrefix()}box/again.eml`;
      const first = await store.put(key, chunked(Buffer.from("first version"), [4]), metadataFor("again"));
      const secondBytes = Buffer.from("second, longer version\r\n");
      // Act
      const second = await store.put(key, chunked(secondBytes, [6]), metadataFor("again"));
      // Assess
      expect((await readAll(await store.open(key))).equals(secondBytes)).toBe(true);
      expect(await store.verify(key, second)).toBe(true);
      expect(await store.verify(key, first)).toBe(false);
    });

    it("lists the keys under a prefix, each once, with a modification time", async () => {
      // Prepare
      const store = await makeStore();
      const prefix = newPrefix();
      const keys = [`${prefix}box-a/1.eml`, `${prefix}box-a/2.eml`, `${prefix}box-b/1.eml`];
      for (const key of keys) await store.put(key, chunked(Buffer.from(key), [3]), metadataFor(key));
      await store.put(`${newPrefix()}box-a/1.eml`, chunked(Buffer.from("elsewhere"), [3]), metadataFor("x"));
      // Act
      const all = await collect(store.list(prefix));
      const boxA = await collect(store.list(`${prefix}box-a/`));
      // Assess
      expect(all.map((o) => o.key).sort()).toEqual([...keys].sort());
      expect(boxA.map((o) => o.key).sort()).toEqual(keys.slice(0, 2));
      for (const object of all) expect(object.lastModified).toBeGreaterThan(0);
    });

    it("passes the source's error through and leaves nothing under the key", async () => {
      // Prepare
      const store = await makeStore();
      const key = `${newPrefix()}box/broken.eml`;
      const sourceError = new ProtocolError("pop3", "connection lost mid-RETR");
      // Act
      const attempt = store.put(
        key,
        failingBody(Buffer.from("Subject: half\r\n"), sourceError),
        metadataFor("x"),
      );
      // Assess
      await expect(attempt).rejects.toBe(sourceError);
      expect(await store.verify(key, { size: 15, sha256: sha256(Buffer.from("Subject: half\r\n")) })).toBe(
        false,
      );
      expect(await collect(store.list(key))).toEqual([]);
    });

    it("refuses to open a missing object with an IntegrityError", async () => {
      // Prepare
      const store = await makeStore();
      // Act
      const attempt = (async () => readAll(await store.open(`${newPrefix()}box/missing.eml`)))();
      // Assess
      await expect(attempt).rejects.toBeInstanceOf(IntegrityError);
    });
  });
}

/** A key prefix no other test uses. */
export function newPrefix(): string {
  return `t-${randomUUID().slice(0, 8)}/`;
}

export function metadataFor(uidl: string): ArchiveMetadata {
  return { tenant: "acme", mailboxId: "info@acme.example", uidl, messageIdHeader: `<${uidl}@acme.example>` };
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Yields `bytes` in pieces of the given sizes, cycling through them. */
export async function* chunked(bytes: Buffer, sizes: readonly number[]): AsyncIterable<Uint8Array> {
  let offset = 0;
  for (let i = 0; offset < bytes.length; i++) {
    const size = sizes[i % sizes.length] ?? 1;
    yield bytes.subarray(offset, offset + size);
    offset += size;
  }
}

/**
 * A deterministic pseudo-random body generated chunk by chunk (never held whole), with its size
 * and SHA-256 known up front so the test can compare against them.
 */
export function pseudoRandomBody(
  totalBytes: number,
  chunkBytes: number,
): { body: AsyncIterable<Uint8Array>; size: number; sha256: string } {
  const makeChunk = (index: number, length: number) => {
    const chunk = Buffer.allocUnsafe(length);
    let state = (index * 2654435761) >>> 0;
    for (let i = 0; i < length; i++) {
      state = (state * 1103515245 + 12345) >>> 0;
      chunk[i] = state >>> 24;
    }
    return chunk;
  };
  const hash = createHash("sha256");
  const chunkCount = Math.ceil(totalBytes / chunkBytes);
  for (let index = 0; index < chunkCount; index++) {
    hash.update(makeChunk(index, Math.min(chunkBytes, totalBytes - index * chunkBytes)));
  }
  async function* body(): AsyncIterable<Uint8Array> {
    for (let index = 0; index < chunkCount; index++) {
      yield makeChunk(index, Math.min(chunkBytes, totalBytes - index * chunkBytes));
    }
  }
  return { body: body(), size: totalBytes, sha256: hash.digest("hex") };
}

async function* failingBody(prefix: Buffer, error: Error): AsyncIterable<Uint8Array> {
  yield prefix;
  throw error;
}

export async function readAll(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

async function digestOf(stream: AsyncIterable<Uint8Array>): Promise<{ size: number; sha256: string }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk);
    size += chunk.byteLength;
  }
  return { size, sha256: hash.digest("hex") };
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}
