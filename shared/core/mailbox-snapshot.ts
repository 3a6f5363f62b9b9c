import { createHash } from "node:crypto";
import type { Ledger, MailboxSnapshot } from "../ports/ledger";
import { LedgerConflictError } from "./errors";
import type { MailboxKey } from "./model";

/**
 * The lister's compact memory of a mailbox, stored in a few ledger items (shards, by hash prefix)
 * that one ledger call reads, so an idle poll costs one read instead of one per message on the
 * server (issue 4; sharded for issue 14 item 3, docs/pipeline.md "Why the snapshot"). For every message identity it has seen
 * on the server (the UIDL, or a content identity; see `message-identity.ts`) it keeps an 8-byte
 * hash, what is left to do, one time, and the ledger generation it refers to:
 *
 * - `pending`: listed, archived or importing, a copy job is out; `at` = when to look at the ledger
 *   again if the job has not finished by then (a lost queue message, a copier that died).
 * - `copied`: imported or retained; `at` = import time, so deletes due are computed from the
 *   current `deleteAfter` policy without reading the ledger.
 * - `parked`: quarantined (or otherwise never to be touched again); `at` is unused.
 *
 * Binary layout of one shard (big-endian): format byte 3, uint16 shard count, uint16 shard index,
 * uint32 count, then 15 bytes per identity: hash (8), kind (1), `at` in epoch seconds (4),
 * generation (2). An identity lives in shard `first 16 bits of its hash mod shard count` (a power
 * of two); the count doubles when a shard would pass `SHARD_TARGET_ENTRIES` on average, so a shard
 * stays near 190-250 KB, well under DynamoDB's 400 KB item. An 8-byte hash collides with
 * probability about n²/2^65 (5e-10 at 200,000 UIDLs). Formats 1 (13 bytes, no generation) and 2
 * (uint32 count, no shard header) are the one-item snapshots of before: found in shard 0, they
 * decode as the whole snapshot, as generation 1 for format 1.
 */

export type SnapshotKind = "pending" | "copied" | "parked";

export interface SnapshotEntry {
  readonly kind: SnapshotKind;
  /** Epoch ms, stored at second precision (rounded up, so a due time is never reported early). */
  readonly at: number;
  /** The ledger generation of the identity this entry is about (absent: 1). */
  readonly generation?: number;
}

/** Identity hash (16 hex digits, `uidlHash`) -> what the lister knows about it. */
export type SnapshotEntries = Map<string, SnapshotEntry>;

const FORMAT = 2;
const SHARD_FORMAT = 3;
const SHARD_HEADER_BYTES = 9;
const ENTRY_BYTES = 15;
/** Average identities per shard before the shard count doubles (16,384 x 15 bytes = 240 KB). */
export const SHARD_TARGET_ENTRIES = 16_384;
/** No shard holds more than this (25,000 x 15 bytes = 375 KB, under `MAX_SNAPSHOT_SHARD_BYTES`). */
const SHARD_MAX_ENTRIES = 25_000;
const FORMAT_1_ENTRY_BYTES = 13;
/** Generations above this are not cached: such an identity is read from the ledger each poll. */
export const MAX_SNAPSHOT_GENERATION = 0xffff;
const KIND_CODES: readonly SnapshotKind[] = ["pending", "copied", "parked"];

/** The 8-byte hash of a UIDL or other base identity (never a generation suffix), as 16 hex digits. */
export function uidlHash(uidl: string): string {
  return createHash("sha256").update(uidl, "latin1").digest("hex").slice(0, 16);
}

/**
 * The snapshot key that says "the UIDL of this hash is identified by content": the bitwise
 * complement of the UIDL's own hash, so a poll hashes each UIDL once (docs/pipeline.md "Why the
 * snapshot"). It differs from the UIDL's own key always, and from another identity's key as any
 * two hashes do. Snapshots of format 1 and 2 keyed it `uidlHash("<uidl> #")`: `legacyMarkerHash`.
 */
export function contentMarkerOf(hash: string): string {
  const bytes = Buffer.from(hash, "hex");
  for (let i = 0; i < bytes.length; i++) bytes[i] = ~(bytes[i] as number) & 0xff;
  return bytes.toString("hex");
}

/** The content-mode key format 1 and 2 snapshots used for a UIDL (read once, when migrating). */
export function legacyMarkerHash(uidl: string): string {
  return uidlHash(`${uidl} #`);
}

/** Encodes entries into the snapshot body. */
export function encodeSnapshot(entries: SnapshotEntries): Uint8Array {
  const out = Buffer.alloc(5 + entries.size * ENTRY_BYTES);
  out.writeUInt8(FORMAT, 0);
  out.writeUInt32BE(entries.size, 1);
  let offset = 5;
  for (const [hash, entry] of entries) {
    out.write(hash, offset, 8, "hex");
    out.writeUInt8(KIND_CODES.indexOf(entry.kind), offset + 8);
    out.writeUInt32BE(Math.min(0xffffffff, Math.max(0, Math.ceil(entry.at / 1000))), offset + 9);
    out.writeUInt16BE(Math.min(MAX_SNAPSHOT_GENERATION, entry.generation ?? 1), offset + 13);
    offset += ENTRY_BYTES;
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Decodes a snapshot body; an unknown format or a damaged body yields an empty map (a full rescan). */
export function decodeSnapshot(body: Uint8Array | undefined): SnapshotEntries {
  const entries: SnapshotEntries = new Map();
  if (body === undefined || body.length < 5) return entries;
  const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const format = bytes.readUInt8(0);
  const entryBytes = format === FORMAT ? ENTRY_BYTES : format === 1 ? FORMAT_1_ENTRY_BYTES : 0;
  if (entryBytes === 0) return entries;
  const count = bytes.readUInt32BE(1);
  if (bytes.length !== 5 + count * entryBytes) return entries;
  for (let offset = 5; offset < bytes.length; offset += entryBytes) {
    const kind = KIND_CODES[bytes.readUInt8(offset + 8)];
    if (kind === undefined) return new Map();
    const hash = bytes.toString("hex", offset, offset + 8);
    const generation = format === FORMAT ? bytes.readUInt16BE(offset + 13) : 1;
    if (generation === 0) return new Map();
    const at = bytes.readUInt32BE(offset + 9) * 1000;
    entries.set(hash, generation === 1 ? { kind, at } : { kind, at, generation });
  }
  return entries;
}

/** True when two snapshots hold the same entries (so an unchanged one is not written back). */
export function sameSnapshot(a: SnapshotEntries, b: SnapshotEntries): boolean {
  if (a.size !== b.size) return false;
  for (const [hash, entry] of a) {
    const other = b.get(hash);
    if (other === undefined || other.kind !== entry.kind) return false;
    if ((other.generation ?? 1) !== (entry.generation ?? 1)) return false;
    if (Math.ceil(other.at / 1000) !== Math.ceil(entry.at / 1000)) return false;
  }
  return true;
}

/** The shard an identity hash lives in, for a power-of-two shard count. */
export function shardOf(hash: string, shardCount: number): number {
  return Number.parseInt(hash.slice(0, 4), 16) % shardCount;
}

/** Encodes the entries of one shard (all of which must belong to it). */
export function encodeShard(entries: SnapshotEntries, shard: number, shardCount: number): Uint8Array {
  const body = Buffer.from(encodeSnapshot(entries));
  const out = Buffer.alloc(SHARD_HEADER_BYTES + entries.size * ENTRY_BYTES);
  out.writeUInt8(SHARD_FORMAT, 0);
  out.writeUInt16BE(shardCount, 1);
  out.writeUInt16BE(shard, 3);
  body.copy(out, 5, 1);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** What a shard body says about itself; undefined when it is not a format-3 shard. */
function shardHeader(body: Uint8Array): { shardCount: number; shard: number } | undefined {
  if (body.length < SHARD_HEADER_BYTES || body[0] !== SHARD_FORMAT) return undefined;
  const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  return { shardCount: bytes.readUInt16BE(1), shard: bytes.readUInt16BE(3) };
}

/** Decodes one format-3 shard; a damaged one yields an empty map (its identities are read again). */
function decodeShard(body: Uint8Array): SnapshotEntries {
  const legacy = Buffer.alloc(body.length - 4);
  legacy.writeUInt8(FORMAT, 0);
  Buffer.from(body.buffer, body.byteOffset, body.byteLength).copy(legacy, 1, 5);
  return decodeSnapshot(legacy);
}

/** The snapshot as read: its entries, and what its writer needs (shard count, stored versions). */
export interface StoredSnapshot {
  readonly entries: SnapshotEntries;
  /** The shard count the stored shards agree on (1 for a snapshot from before shards). */
  readonly shardCount: number;
  /** Stored version of every shard item, valid or not (the conditional write needs it). */
  readonly versions: ReadonlyMap<number, number>;
  /** Shards whose stored body is missing, damaged or from another layout: written on the next change. */
  readonly invalid: ReadonlySet<number>;
  /** Shard 0 holds a format 1 or 2 snapshot: content-mode keys are `legacyMarkerHash`. */
  readonly legacy: boolean;
}

/**
 * Reads every shard in one ledger call and decodes them. Shard 0 says the shard count; a shard
 * that is missing, damaged, or written for another count contributes nothing (its identities are
 * read from the ledger once, as after a lost snapshot: extra work, never a wrong delete).
 */
export async function readSnapshot(
  ledger: Pick<Ledger, "getSnapshotShards">,
  mailbox: MailboxKey,
): Promise<StoredSnapshot> {
  const stored = await ledger.getSnapshotShards(mailbox);
  return decodeStored(stored);
}

/** Decodes shards as `readSnapshot` does (exported for tests and the bench). */
export function decodeStored(stored: ReadonlyMap<number, MailboxSnapshot>): StoredSnapshot {
  const versions = new Map([...stored].map(([shard, s]) => [shard, s.version]));
  const zero = stored.get(0)?.body;
  if (zero !== undefined && zero.length > 0 && (zero[0] === FORMAT || zero[0] === 1)) {
    const invalid = new Set([...stored.keys()].filter((shard) => shard !== 0));
    return { entries: decodeSnapshot(zero), shardCount: 1, versions, invalid, legacy: true };
  }
  const counts = [...stored.values()].flatMap((s) => {
    const header = shardHeader(s.body);
    return header !== undefined && isShardCount(header.shardCount) ? [header.shardCount] : [];
  });
  const zeroHeader = zero === undefined ? undefined : shardHeader(zero);
  const shardCount =
    zeroHeader !== undefined && isShardCount(zeroHeader.shardCount)
      ? zeroHeader.shardCount
      : Math.max(1, ...counts);
  const entries: SnapshotEntries = new Map();
  const invalid = new Set<number>();
  for (let shard = 0; shard < shardCount; shard++) {
    const body = stored.get(shard)?.body;
    const header = body === undefined ? undefined : shardHeader(body);
    const decoded =
      body !== undefined && header?.shardCount === shardCount && header.shard === shard
        ? decodeShard(body)
        : undefined;
    if (
      decoded === undefined ||
      (decoded.size === 0 && body !== undefined && body.length !== SHARD_HEADER_BYTES)
    ) {
      invalid.add(shard);
      continue;
    }
    for (const [hash, entry] of decoded) entries.set(hash, entry);
  }
  for (const shard of stored.keys()) if (shard >= shardCount) invalid.add(shard);
  return { entries, shardCount, versions, invalid, legacy: false };
}

function isShardCount(n: number): boolean {
  return n >= 1 && n <= 0x8000 && (n & (n - 1)) === 0;
}

/** The shard count for `size` identities: never fewer than now (no churn), doubled until each fits. */
export function shardCountFor(entries: SnapshotEntries, current: number): number {
  let count = Math.max(1, current);
  while (entries.size > count * SHARD_TARGET_ENTRIES) count *= 2;
  for (;;) {
    const sizes = new Array<number>(count).fill(0);
    for (const hash of entries.keys()) sizes[shardOf(hash, count)] = (sizes[shardOf(hash, count)] ?? 0) + 1;
    if (sizes.every((n) => n <= SHARD_MAX_ENTRIES) || count >= 0x8000) return count;
    count *= 2;
  }
}

/**
 * Writes the shards whose entries changed (all of them when the shard count changes; shard 0,
 * which says the count, last), each a conditional write on its stored version. Returns how many
 * it wrote. A conflict (another lister wrote first, `maxSessions` > 1) is left to the next poll:
 * the snapshot is a cache, and the other lister's shard is as good as ours.
 */
export async function writeSnapshot(
  ledger: Pick<Ledger, "putSnapshot">,
  mailbox: MailboxKey,
  before: StoredSnapshot,
  after: SnapshotEntries,
): Promise<number> {
  const shardCount = before.legacy ? shardCountFor(after, 1) : shardCountFor(after, before.shardCount);
  const relayout = before.legacy || shardCount !== before.shardCount;
  const groupsBefore = groupByShard(before.entries, shardCount);
  const groupsAfter = groupByShard(after, shardCount);
  let written = 0;
  for (let shard = shardCount - 1; shard >= 0; shard--) {
    const next = groupsAfter[shard] ?? new Map();
    const unchanged =
      !relayout &&
      !before.invalid.has(shard) &&
      before.versions.has(shard) &&
      sameSnapshot(groupsBefore[shard] ?? new Map(), next);
    if (unchanged) continue;
    try {
      await ledger.putSnapshot(
        mailbox,
        encodeShard(next, shard, shardCount),
        before.versions.get(shard),
        shard,
      );
      written++;
    } catch (error) {
      if (!(error instanceof LedgerConflictError)) throw error;
    }
  }
  return written;
}

function groupByShard(entries: SnapshotEntries, shardCount: number): SnapshotEntries[] {
  const groups = Array.from({ length: shardCount }, (): SnapshotEntries => new Map());
  for (const [hash, entry] of entries) groups[shardOf(hash, shardCount)]?.set(hash, entry);
  return groups;
}
