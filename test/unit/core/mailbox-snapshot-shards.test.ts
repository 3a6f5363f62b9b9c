import { describe, expect, it } from "vitest";
import { LedgerConflictError, TransientError } from "../../../shared/core/errors";
import {
  contentMarkerOf,
  decodeStored,
  encodeShard,
  encodeSnapshot,
  readSnapshot,
  SHARD_TARGET_ENTRIES,
  type SnapshotEntries,
  shardCountFor,
  shardOf,
  uidlHash,
  writeSnapshot,
} from "../../../shared/core/mailbox-snapshot";
import type { MailboxSnapshot } from "../../../shared/ports/ledger";
import { InMemoryLedger } from "../../fakes/in-memory-ledger";

const mailbox = { tenant: "acme", mailboxId: "info@acme.it" };

function entries(count: number, prefix = "u"): SnapshotEntries {
  return new Map(
    Array.from({ length: count }, (_, i) => [
      uidlHash(`${prefix}-${i}`),
      { kind: "copied" as const, at: 5_000 },
    ]),
  );
}

function shardsOf(all: SnapshotEntries, count: number): Map<number, MailboxSnapshot> {
  const groups = new Map<number, SnapshotEntries>();
  for (let shard = 0; shard < count; shard++) groups.set(shard, new Map());
  for (const [hash, entry] of all) groups.get(shardOf(hash, count))?.set(hash, entry);
  return new Map(
    [...groups].map(([shard, group]) => [shard, { version: 1, body: encodeShard(group, shard, count) }]),
  );
}

/** Records each shard write, in order. */
class RecordingLedger extends InMemoryLedger {
  readonly writes: number[] = [];
  failWith: Error | undefined;
  override async putSnapshot(m: typeof mailbox, body: Uint8Array, expected: number | undefined, shard = 0) {
    this.writes.push(shard);
    if (this.failWith !== undefined) throw this.failWith;
    return super.putSnapshot(m, body, expected, shard);
  }
}

describe("mailbox snapshot shards (issue 14 item 3)", () => {
  it("decodes every shard of a four-shard snapshot back to the same entries", () => {
    // Prepare
    const all = entries(1000);
    // Act
    const read = decodeStored(shardsOf(all, 4));
    // Assess
    expect(read.shardCount).toBe(4);
    expect(read.legacy).toBe(false);
    expect(read.invalid.size).toBe(0);
    expect(read.entries).toEqual(all);
  });

  it("ignores a shard written for another count or under another index, and marks it for rewriting", () => {
    // Prepare
    const all = entries(1000);
    const stored = shardsOf(all, 4);
    const elsewhere = entries(10, "x");
    stored.set(1, { version: 3, body: encodeShard(elsewhere, 1, 2) });
    stored.set(2, { version: 1, body: encodeShard(new Map(), 3, 4) });
    stored.set(9, { version: 1, body: encodeShard(new Map(), 9, 16) });
    // Act
    const read = decodeStored(stored);
    // Assess
    expect(read.shardCount).toBe(4);
    expect([...read.invalid].sort((a, b) => a - b)).toEqual([1, 2, 9]);
    expect(read.versions.get(1)).toBe(3);
    for (const [hash] of elsewhere) expect(read.entries.has(hash)).toBe(false);
    for (const [hash] of read.entries) expect([0, 3]).toContain(shardOf(hash, 4));
  });

  it("marks a damaged shard invalid, and keeps an empty one valid", () => {
    // Prepare
    const stored = shardsOf(entries(50), 2);
    const good = stored.get(1)?.body ?? new Uint8Array();
    stored.set(1, { version: 1, body: good.slice(0, good.length - 3) });
    stored.set(0, { version: 1, body: encodeShard(new Map(), 0, 2) });
    // Act
    const read = decodeStored(stored);
    // Assess
    expect([...read.invalid]).toEqual([1]);
    expect(read.entries.size).toBe(0);
  });

  it("reads a format-2 shard 0 as the whole snapshot of before, and takes no other shard", () => {
    // Prepare
    const all = entries(20);
    const stored = new Map<number, MailboxSnapshot>([
      [0, { version: 4, body: encodeSnapshot(all) }],
      [1, { version: 1, body: encodeShard(entries(5, "y"), 1, 2) }],
    ]);
    // Act
    const read = decodeStored(stored);
    // Assess
    expect(read).toMatchObject({ legacy: true, shardCount: 1 });
    expect(read.entries).toEqual(all);
    expect([...read.invalid]).toEqual([1]);
  });

  it("doubles the shard count past SHARD_TARGET_ENTRIES on average and never shrinks it", () => {
    // Prepare, Act, Assess
    expect(shardCountFor(entries(10), 1)).toBe(1);
    expect(shardCountFor(new Map([...entries(SHARD_TARGET_ENTRIES)]), 1)).toBe(1);
    expect(shardCountFor(entries(SHARD_TARGET_ENTRIES + 1), 1)).toBe(2);
    expect(shardCountFor(entries(10), 8)).toBe(8);
  });

  it("writes only the shards whose entries changed, and every shard, shard 0 last, when the count changes", async () => {
    // Prepare
    const ledger = new RecordingLedger();
    const all = entries(1000);
    const first = await readSnapshot(ledger, mailbox);
    await writeSnapshot(ledger, mailbox, { ...first, shardCount: 4 }, all);
    const written = [...ledger.writes];
    ledger.writes.length = 0;
    const stored = await readSnapshot(ledger, mailbox);
    const changed = new Map(stored.entries);
    const [oneHash] = [...changed.keys()];
    changed.set(oneHash as string, { kind: "parked", at: 0 });
    // Act
    const unchangedWrites = await writeSnapshot(ledger, mailbox, stored, stored.entries);
    const oneWrite = await writeSnapshot(ledger, mailbox, stored, changed);
    // Assess
    expect(written).toEqual([3, 2, 1, 0]);
    expect(unchangedWrites).toBe(0);
    expect(oneWrite).toBe(1);
    expect(ledger.writes).toEqual([shardOf(oneHash as string, 4)]);
    expect((await readSnapshot(ledger, mailbox)).entries).toEqual(changed);
  });

  it("leaves a shard another lister wrote first to the next poll, and throws any other error", async () => {
    // Prepare
    const ledger = new RecordingLedger();
    const before = await readSnapshot(ledger, mailbox);
    ledger.failWith = new LedgerConflictError("another lister wrote first");
    // Act
    const written = await writeSnapshot(ledger, mailbox, before, entries(3));
    ledger.failWith = new TransientError("ledger", "down");
    const failing = writeSnapshot(ledger, mailbox, before, entries(3));
    // Assess
    expect(written).toBe(0);
    await expect(failing).rejects.toBeInstanceOf(TransientError);
  });

  it("keys content mode by the complement of the UIDL's hash: never the UIDL's own key, and reversible", () => {
    // Prepare
    const hash = uidlHash("popa3d-uidl");
    // Act
    const marker = contentMarkerOf(hash);
    // Assess
    expect(marker).toMatch(/^[0-9a-f]{16}$/);
    expect(marker).not.toBe(hash);
    expect(contentMarkerOf(marker)).toBe(hash);
    expect(contentMarkerOf("00000000000000ff")).toBe("ffffffffffffff00");
  });
});
