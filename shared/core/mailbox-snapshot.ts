import { createHash } from "node:crypto";

/**
 * The lister's compact memory of a mailbox, stored as one ledger item so an idle poll costs one
 * read instead of one per message on the server (issue 4). For every message identity it has seen
 * on the server (the UIDL, or a content identity; see `message-identity.ts`) it keeps an 8-byte
 * hash, what is left to do, one time, and the ledger generation it refers to:
 *
 * - `pending`: listed, archived or importing, a copy job is out; `at` = when to look at the ledger
 *   again if the job has not finished by then (a lost queue message, a copier that died).
 * - `copied`: imported or retained; `at` = import time, so deletes due are computed from the
 *   current `deleteAfter` policy without reading the ledger.
 * - `parked`: quarantined (or otherwise never to be touched again); `at` is unused.
 *
 * Binary layout (big-endian): format byte, uint32 count, then 15 bytes per identity: hash (8),
 * kind (1), `at` in epoch seconds (4), generation (2). 5,000 UIDLs take 75 KB; DynamoDB's 400 KB
 * item limit is reached near 26,000. An 8-byte hash collides with probability about n²/2^65
 * (3e-12 at 10,000 UIDLs). Format 1 (13 bytes, no generation) still decodes, as generation 1.
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
const ENTRY_BYTES = 15;
const FORMAT_1_ENTRY_BYTES = 13;
/** Generations above this are not cached: such an identity is read from the ledger each poll. */
export const MAX_SNAPSHOT_GENERATION = 0xffff;
const KIND_CODES: readonly SnapshotKind[] = ["pending", "copied", "parked"];

/** The 8-byte hash of a UIDL or other base identity (never a generation suffix), as 16 hex digits. */
export function uidlHash(uidl: string): string {
  return createHash("sha256").update(uidl, "latin1").digest("hex").slice(0, 16);
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
