import { describe, expect, it } from "vitest";
import { SqliteLedger } from "../../../shared/adapters/local/sqlite-ledger";
import {
  contentMarkerOf,
  encodeSnapshot,
  legacyMarkerHash,
  readSnapshot,
  uidlHash,
} from "../../../shared/core/mailbox-snapshot";
import { MAX_SNAPSHOT_SHARD_BYTES } from "../../../shared/ports/ledger";
import { InMemoryLedger } from "../../fakes/in-memory-ledger";
import { largeMailbox, shardSizes } from "./support/large-mailbox";

/**
 * Issue 14 item 3: a mailbox keeping 200,000 messages on the server (`deleteAfter: never`) works,
 * and its idle poll stays a fixed number of ledger calls (docs/pipeline.md "Why the snapshot").
 * The server listing is built in the in-memory POP3 source from one shared tiny message.
 */
describe("a mailbox keeping 200,000 messages on the server (issue 14 item 3)", () => {
  for (const [name, makeStore] of [
    ["in-memory ledger", () => new InMemoryLedger()],
    ["SQLite ledger", () => new SqliteLedger({ path: ":memory:" })],
  ] as const) {
    it(`polls idle with one ledger call and no write at 200,000 retained messages (${name})`, async () => {
      // Prepare
      const store = makeStore();
      const box = await largeMailbox(store, 200_000);
      box.ledger.reset();

      // Act
      const idle = await box.poll();

      // Assess
      expect(idle).toMatchObject({
        kind: "listed",
        idle: true,
        onServer: 200_000,
        newMessages: 0,
        deletesDue: 0,
      });
      expect(Object.fromEntries(box.ledger.calls)).toEqual({ getSnapshotShards: 1 });
      const sizes = await shardSizes(store, box.h);
      expect(sizes.length).toBeGreaterThan(1);
      for (const size of sizes) expect(size).toBeLessThanOrEqual(MAX_SNAPSHOT_SHARD_BYTES);
    }, 180_000);
  }

  it("writes only the shard a new message falls in, and an idle poll after it writes nothing", async () => {
    // Prepare
    const store = new SqliteLedger({ path: ":memory:" });
    const box = await largeMailbox(store, 20_000);
    const before = await store.getSnapshotShards(box.h.key);
    box.h.pop3.add(new Uint8Array(Buffer.from("Subject: new\r\n\r\nnew\r\n")), "fresh-one");
    box.ledger.reset();

    // Act
    const withNew = await box.poll();
    const writes = box.ledger.calls.get("putSnapshot");
    box.ledger.reset();
    const idleAfter = await box.poll();

    // Assess
    expect(withNew).toMatchObject({ kind: "listed", newMessages: 1, onServer: 20_001 });
    expect(writes).toBe(1);
    const after = await store.getSnapshotShards(box.h.key);
    const changed = [...after].filter(([shard, s]) => before.get(shard)?.version !== s.version);
    expect(changed).toHaveLength(1);
    expect(idleAfter).toMatchObject({ idle: true, newMessages: 0 });
    expect(Object.fromEntries(box.ledger.calls)).toEqual({ getSnapshotShards: 1 });
  }, 120_000);

  it("a damaged shard costs a re-read of its own messages once, never a delete or a new copy", async () => {
    // Prepare
    const store = new InMemoryLedger();
    const box = await largeMailbox(store, 17_000);
    const shards = await store.getSnapshotShards(box.h.key);
    const [victim, stored] = [...shards].find(([shard]) => shard !== 0) ?? [];
    if (victim === undefined || stored === undefined) throw new Error("expected more than one shard");
    await store.putSnapshot(box.h.key, stored.body.slice(0, 20), stored.version, victim);
    box.ledger.reset();

    // Act
    const repair = await box.poll();
    const reads = (box.ledger.calls.get("get") ?? 0) + (box.ledger.calls.get("listByServerUidl") ?? 0);
    box.ledger.reset();
    const idle = await box.poll();

    // Assess
    expect(repair).toMatchObject({ kind: "listed", newMessages: 0, requeued: 0, vanished: 0, deletesDue: 0 });
    expect(reads).toBeGreaterThan(0);
    expect(reads).toBeLessThan(17_000 * 0.75);
    expect(box.sent.jobs).toBe(0);
    expect(box.h.pop3.uidls()).toHaveLength(17_000);
    expect(idle).toMatchObject({ idle: true });
    expect(Object.fromEntries(box.ledger.calls)).toEqual({ getSnapshotShards: 1 });
  }, 120_000);

  it("reads a one-item snapshot from before shards as it is, content-mode markers included, and rewrites it as shards", async () => {
    // Prepare
    const store = new InMemoryLedger();
    const box = await largeMailbox(store, 300);
    const current = await readSnapshot(store, box.h.key);
    const legacy = new Map(current.entries);
    legacy.set(legacyMarkerHash("kept-7"), { kind: "parked", at: 0 });
    await store.putSnapshot(box.h.key, encodeSnapshot(legacy), current.versions.get(0), 0);
    box.ledger.reset();

    // Act
    const migrating = await box.poll();
    const calls = Object.fromEntries(box.ledger.calls);
    const after = await readSnapshot(store, box.h.key);

    // Assess
    // kept-7 is now identified by content (its own new identity); the 299 others are known as they were.
    expect(migrating).toMatchObject({ kind: "listed", newMessages: 1, requeued: 0, onServer: 300 });
    expect(calls).toMatchObject({ getSnapshotShards: 1, putSnapshot: 1, createListed: 1 });
    expect(calls.get ?? 0).toBe(0);
    expect(after.legacy).toBe(false);
    expect(after.entries.get(contentMarkerOf(uidlHash("kept-7")))).toEqual({ kind: "parked", at: 0 });
    expect(after.entries.has(legacyMarkerHash("kept-7"))).toBe(false);
  });
});
