import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { LedgerConflictError } from "../../shared/core/errors";
import type { LedgerEntry, MailboxKey, MessageKey } from "../../shared/core/model";
import { type Ledger, MAX_SNAPSHOT_SHARD_BYTES } from "../../shared/ports/ledger";

/**
 * The behaviour every `Ledger` must show (DynamoDB, in-memory, SQLite). Each case uses a mailbox
 * of its own, so a factory may hand out instances that share storage (one table, one file).
 */
export function describeLedgerContract(name: string, makeLedger: () => Ledger | Promise<Ledger>): void {
  describe(`Ledger contract: ${name}`, () => {
    it("returns undefined for a UIDL that was never listed", async () => {
      // Prepare
      const ledger = await makeLedger();
      // Act
      const entry = await ledger.get(messageKey(newMailbox(), "never-seen"));
      // Assess
      expect(entry).toBeUndefined();
    });

    it("creates listed entries with zero attempts and returns them", async () => {
      // Prepare
      const ledger = await makeLedger();
      const mailbox = newMailbox();
      const fresh = [newListing(mailbox, "uidl-1", 1000), newListing(mailbox, "uidl#2/odd!chars~%", 2)];
      // Act
      const created = await ledger.createListed(fresh);
      // Assess
      expect(sortByUidl(created)).toEqual(
        sortByUidl(fresh.map((e) => ({ ...e, state: "listed", attempts: 0 }))),
      );
      expect(await ledger.get(messageKey(mailbox, "uidl#2/odd!chars~%"))).toEqual({
        ...fresh[1],
        state: "listed",
        attempts: 0,
      });
    });

    it("createListed is idempotent: known UIDLs are left untouched and not returned", async () => {
      // Prepare
      const ledger = await makeLedger();
      const mailbox = newMailbox();
      await ledger.createListed([newListing(mailbox, "a", 10), newListing(mailbox, "b", 20)]);
      await ledger.transition(messageKey(mailbox, "a"), ["listed"], "archived", { sha256: "f".repeat(64) });
      // Act
      const created = await ledger.createListed([
        newListing(mailbox, "a", 999),
        newListing(mailbox, "b", 999),
        newListing(mailbox, "c", 30),
      ]);
      // Assess
      expect(created.map((e) => e.uidl)).toEqual(["c"]);
      expect(await ledger.get(messageKey(mailbox, "a"))).toMatchObject({ state: "archived", listedSize: 10 });
      expect(await ledger.get(messageKey(mailbox, "b"))).toMatchObject({ state: "listed", listedSize: 20 });
    });

    it("creates many entries in one call", async () => {
      // Prepare
      const ledger = await makeLedger();
      const mailbox = newMailbox();
      const listings = Array.from({ length: 45 }, (_, i) => newListing(mailbox, `m${i}`, i + 1));
      // Act
      const created = await ledger.createListed(listings);
      // Assess
      expect(created).toHaveLength(45);
      expect(await ledger.listByState(mailbox, ["listed"])).toHaveLength(45);
    });

    it("moves an entry from the expected state and keeps its earlier fields", async () => {
      // Prepare
      const ledger = await makeLedger();
      const mailbox = newMailbox();
      const key = messageKey(mailbox, "move-me");
      await ledger.createListed([newListing(mailbox, "move-me", 4321)]);
      // Act
      const archived = await ledger.transition(key, ["listed"], "archived", {
        archiveKey: "t/m/move-me.eml",
        archivedSize: 4300,
        sha256: "a".repeat(64),
        messageIdHeader: "<ünïcode@example.org>",
        receivedAt: 1_699_999_999_000,
        archivedAt: 1_700_000_000_500,
      });
      const imported = await ledger.transition(key, ["archived"], "imported", {
        gmailId: "18c0ffee",
        importedAt: 1_700_000_001_000,
      });
      // Assess
      expect(archived).toMatchObject({ state: "archived", archivedSize: 4300, listedSize: 4321 });
      expect(imported).toMatchObject({
        state: "imported",
        gmailId: "18c0ffee",
        sha256: "a".repeat(64),
        messageIdHeader: "<ünïcode@example.org>",
        receivedAt: 1_699_999_999_000,
        listedSize: 4321,
        attempts: 0,
      });
      expect(await ledger.get(key)).toEqual(imported);
    });

    it("accepts any of several source states", async () => {
      // Prepare
      const ledger = await makeLedger();
      const mailbox = newMailbox();
      const key = messageKey(mailbox, "q");
      await ledger.createListed([newListing(mailbox, "q", 1)]);
      await ledger.transition(key, ["listed"], "archived");
      // Act
      const quarantined = await ledger.transition(key, ["listed", "archived", "imported"], "quarantined", {
        quarantineReason: "Gmail: invalid From header",
        quarantineCode: "MESSAGE_REJECTED",
        quarantinedAt: 5,
      });
      // Assess
      expect(quarantined).toMatchObject({ state: "quarantined", quarantineCode: "MESSAGE_REJECTED" });
    });

    it("refuses a transition from the wrong state and leaves the entry as it was", async () => {
      // Prepare
      const ledger = await makeLedger();
      const mailbox = newMailbox();
      const key = messageKey(mailbox, "stay");
      await ledger.createListed([newListing(mailbox, "stay", 7)]);
      const before = await ledger.get(key);
      // Act
      const attempt = ledger.transition(key, ["archived", "imported"], "deleted", { deletedAt: 9 });
      // Assess
      await expect(attempt).rejects.toBeInstanceOf(LedgerConflictError);
      expect(await ledger.get(key)).toEqual(before);
    });

    it("refuses a transition of an entry that does not exist, without creating it", async () => {
      // Prepare
      const ledger = await makeLedger();
      const key = messageKey(newMailbox(), "ghost");
      // Act
      const attempt = ledger.transition(key, ["listed"], "archived");
      // Assess
      await expect(attempt).rejects.toBeInstanceOf(LedgerConflictError);
      expect(await ledger.get(key)).toBeUndefined();
    });

    it("lets exactly one of two racing transitions win", async () => {
      // Prepare
      const ledger = await makeLedger();
      const mailbox = newMailbox();
      const key = messageKey(mailbox, "race");
      await ledger.createListed([newListing(mailbox, "race", 1)]);
      // Act
      const outcomes = await Promise.allSettled([
        ledger.transition(key, ["listed"], "archived", { gmailId: "first" }),
        ledger.transition(key, ["listed"], "archived", { gmailId: "second" }),
      ]);
      // Assess
      const won = outcomes.filter((o) => o.status === "fulfilled");
      const lost = outcomes.filter((o) => o.status === "rejected");
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect((lost[0] as PromiseRejectedResult).reason).toBeInstanceOf(LedgerConflictError);
    });

    it("counts attempts in any state without changing the state", async () => {
      // Prepare
      const ledger = await makeLedger();
      const mailbox = newMailbox();
      const key = messageKey(mailbox, "flaky");
      await ledger.createListed([newListing(mailbox, "flaky", 1)]);
      // Act
      const first = await ledger.recordAttempt(key);
      const second = await ledger.recordAttempt(key);
      await ledger.transition(key, ["listed"], "quarantined", { quarantineReason: "too many attempts" });
      const third = await ledger.recordAttempt(key);
      // Assess
      expect([first, second, third]).toEqual([1, 2, 3]);
      expect(await ledger.get(key)).toMatchObject({ state: "quarantined", attempts: 3 });
    });

    it("moves only the entries in one of the given states when it moves several at once", async () => {
      // Prepare
      const ledger = await makeLedger();
      if (ledger.transitionEach === undefined) return; // optional: the core falls back to transition
      const mailbox = newMailbox();
      await ledger.createListed(["a", "b", "c"].map((uidl) => newListing(mailbox, uidl, 1)));
      await ledger.transition(messageKey(mailbox, "a"), ["listed"], "imported", { gmailId: "g-a" });
      await ledger.transition(messageKey(mailbox, "b"), ["listed"], "retained", { gmailId: "g-b" });
      const keys = ["a", "b", "c", "missing"].map((uidl) => messageKey(mailbox, uidl));
      // Act
      const moved = await ledger.transitionEach(keys, ["imported", "retained"], "deleted", { deletedAt: 7 });
      // Assess
      expect(moved.map((k) => k.uidl)).toEqual(["a", "b"]);
      expect(await ledger.get(messageKey(mailbox, "a"))).toMatchObject({
        state: "deleted",
        deletedAt: 7,
        gmailId: "g-a",
      });
      expect(await ledger.get(messageKey(mailbox, "b"))).toMatchObject({ state: "deleted", deletedAt: 7 });
      expect(await ledger.get(messageKey(mailbox, "c"))).toMatchObject({ state: "listed" });
    });

    it("lists a mailbox's entries by state, following transitions", async () => {
      // Prepare
      const ledger = await makeLedger();
      const mailbox = newMailbox();
      const otherMailbox = newMailbox();
      await ledger.createListed(["a", "b", "c", "d"].map((uidl) => newListing(mailbox, uidl, 1)));
      await ledger.createListed([newListing(otherMailbox, "a", 1)]);
      await ledger.transition(messageKey(mailbox, "b"), ["listed"], "archived");
      await ledger.transition(messageKey(mailbox, "c"), ["listed"], "archived");
      await ledger.transition(messageKey(mailbox, "c"), ["archived"], "imported");
      await ledger.transition(messageKey(mailbox, "d"), ["listed"], "quarantined");
      // Act
      const listed = await ledger.listByState(mailbox, ["listed"]);
      const archivedOrImported = await ledger.listByState(mailbox, ["archived", "imported"]);
      const deleted = await ledger.listByState(mailbox, ["deleted"]);
      // Assess
      expect(listed.map((e) => e.uidl)).toEqual(["a"]);
      expect(sortByUidl(archivedOrImported).map((e) => [e.uidl, e.state])).toEqual([
        ["b", "archived"],
        ["c", "imported"],
      ]);
      expect(deleted).toEqual([]);
      expect(listed[0]).toEqual(await ledger.get(messageKey(mailbox, "a")));
    });

    it("finds an entry in one of the given states listed before a time, and none when all are newer or elsewhere", async () => {
      // Prepare: a listed at t+1, b archived at t+2, c imported at t+3 (all in this mailbox), one elsewhere at t+1
      const ledger = await makeLedger();
      const mailbox = newMailbox();
      const otherMailbox = newMailbox();
      await ledger.createListed([
        newListing(mailbox, "a", 1),
        newListing(mailbox, "b", 2),
        newListing(mailbox, "c", 3),
      ]);
      await ledger.createListed([newListing(otherMailbox, "old", 1)]);
      await ledger.transition(messageKey(mailbox, "b"), ["listed"], "archived");
      await ledger.transition(messageKey(mailbox, "c"), ["listed"], "imported");
      const t = 1_700_000_000_000;
      // Act
      const archivedBefore3 = await ledger.findInState(mailbox, ["archived", "importing"], {
        listedBefore: t + 3,
      });
      const archivedBefore2 = await ledger.findInState(mailbox, ["archived", "importing"], {
        listedBefore: t + 2,
      });
      const pendingBefore1 = await ledger.findInState(mailbox, ["listed", "archived", "importing"], {
        listedBefore: t + 1,
      });
      const importedBefore4 = await ledger.findInState(mailbox, ["imported"], { listedBefore: t + 4 });
      // Assess
      expect(archivedBefore3).toEqual(await ledger.get(messageKey(mailbox, "b")));
      expect(archivedBefore2).toBeUndefined();
      expect(pendingBefore1).toBeUndefined();
      expect(importedBefore4?.uidl).toBe("c");
    });

    it("finds an entry quarantined since a time, and none quarantined earlier or never dated", async () => {
      // Prepare
      const ledger = await makeLedger();
      const mailbox = newMailbox();
      await ledger.createListed(["early", "late", "undated"].map((uidl) => newListing(mailbox, uidl, 1)));
      await ledger.transition(messageKey(mailbox, "early"), ["listed"], "quarantined", {
        quarantinedAt: 100,
      });
      await ledger.transition(messageKey(mailbox, "undated"), ["listed"], "quarantined");
      // Act
      const beforeLate = await ledger.findInState(mailbox, ["quarantined"], { quarantinedSince: 101 });
      await ledger.transition(messageKey(mailbox, "late"), ["listed"], "quarantined", { quarantinedAt: 200 });
      const atLate = await ledger.findInState(mailbox, ["quarantined"], { quarantinedSince: 200 });
      const sinceEarly = await ledger.findInState(mailbox, ["quarantined"], { quarantinedSince: 100 });
      // Assess
      expect(beforeLate).toBeUndefined();
      expect(atLate).toMatchObject({ uidl: "late", state: "quarantined", quarantinedAt: 200 });
      expect(["early", "late"]).toContain(sinceEarly?.uidl);
    });

    it("finds a matching entry behind many that do not match", async () => {
      // Prepare: 120 fresh listed entries and one old one, whatever order the store keeps them in
      const ledger = await makeLedger();
      const mailbox = newMailbox();
      const fresh = Array.from({ length: 120 }, (_, i) => ({
        ...newListing(mailbox, `f${i}`, 1),
        listedAt: 5_000,
      }));
      await ledger.createListed([...fresh, { ...newListing(mailbox, "old", 1), listedAt: 1_000 }]);
      // Act
      const found = await ledger.findInState(mailbox, ["listed"], { listedBefore: 2_000 });
      const none = await ledger.findInState(mailbox, ["listed"], { listedBefore: 1_000 });
      // Assess
      expect(found?.uidl).toBe("old");
      expect(none).toBeUndefined();
    });

    it("lists every generation and content identity of a server UIDL, and nothing else", async () => {
      // Prepare
      const ledger = await makeLedger();
      const mailbox = newMailbox();
      const ids = ["U1", "U1 2", "U1 3", "U1 #512.0123456789abcdef", "U1 #512.0123456789abcdef 2"];
      const others = ["U12", "U1!", "U", "U0", "U1#x", "T1 2"];
      await ledger.createListed([...ids, ...others].map((id) => newListing(mailbox, id, 512)));
      await ledger.transition(messageKey(mailbox, "U1 2"), ["listed"], "deleted", { deletedAt: 7 });
      await ledger.createListed([newListing(newMailbox(), "U1 4", 1)]);
      // Act
      const found = await ledger.listByServerUidl(mailbox, "U1");
      const none = await ledger.listByServerUidl(mailbox, "V9");
      // Assess
      expect(found.map((e) => e.uidl).sort()).toEqual([...ids].sort());
      expect(found.find((e) => e.uidl === "U1 2")).toMatchObject({ state: "deleted", deletedAt: 7 });
      expect(none).toEqual([]);
    });

    it("has no snapshot before the first write", async () => {
      // Prepare
      const ledger = await makeLedger();
      // Act
      const snapshot = await ledger.getSnapshot(newMailbox());
      // Assess
      expect(snapshot).toBeUndefined();
    });

    it("versions snapshots: first write is version 1, each write adds one, bytes kept exactly", async () => {
      // Prepare
      const ledger = await makeLedger();
      const mailbox = newMailbox();
      const first = Uint8Array.from([0, 255, 13, 10, 0x80, 46]);
      const second = Uint8Array.from({ length: 4096 }, (_, i) => (i * 31) % 256);
      // Act
      await ledger.putSnapshot(mailbox, first, undefined);
      const afterFirst = await ledger.getSnapshot(mailbox);
      await ledger.putSnapshot(mailbox, second, 1);
      const afterSecond = await ledger.getSnapshot(mailbox);
      // Assess
      expect(afterFirst?.version).toBe(1);
      expect(Buffer.from(afterFirst?.body ?? [])).toEqual(Buffer.from(first));
      expect(afterSecond?.version).toBe(2);
      expect(Buffer.from(afterSecond?.body ?? [])).toEqual(Buffer.from(second));
    });

    it("stores an empty snapshot body", async () => {
      // Prepare
      const ledger = await makeLedger();
      const mailbox = newMailbox();
      // Act
      await ledger.putSnapshot(mailbox, new Uint8Array(), undefined);
      const snapshot = await ledger.getSnapshot(mailbox);
      // Assess
      expect(snapshot?.version).toBe(1);
      expect(snapshot?.body.byteLength).toBe(0);
    });

    it("refuses a snapshot write on a stale or missing version and keeps the stored one", async () => {
      // Prepare
      const ledger = await makeLedger();
      const mailbox = newMailbox();
      await ledger.putSnapshot(mailbox, Uint8Array.from([1]), undefined);
      await ledger.putSnapshot(mailbox, Uint8Array.from([2]), 1);
      // Act
      const stale = failureOf(ledger.putSnapshot(mailbox, Uint8Array.from([3]), 1));
      const asIfNew = failureOf(ledger.putSnapshot(mailbox, Uint8Array.from([4]), undefined));
      const ahead = failureOf(ledger.putSnapshot(mailbox, Uint8Array.from([5]), 7));
      // Assess
      expect(await stale).toBeInstanceOf(LedgerConflictError);
      expect(await asIfNew).toBeInstanceOf(LedgerConflictError);
      expect(await ahead).toBeInstanceOf(LedgerConflictError);
      const stored = await ledger.getSnapshot(mailbox);
      expect(stored?.version).toBe(2);
      expect([...(stored?.body ?? [])]).toEqual([2]);
    });

    it("versions each snapshot shard on its own and reads every shard in one call; shard 0 is getSnapshot's", async () => {
      // Prepare
      const ledger = await makeLedger();
      const mailbox = newMailbox();
      const other = { tenant: mailbox.tenant, mailboxId: `${mailbox.mailboxId}x` };
      await ledger.putSnapshot(mailbox, Uint8Array.from([0]), undefined);
      await ledger.putSnapshot(mailbox, Uint8Array.from([3]), undefined, 3);
      await ledger.putSnapshot(mailbox, Uint8Array.from([33]), 1, 3);
      await ledger.putSnapshot(mailbox, Uint8Array.from([12]), undefined, 12);
      await ledger.putSnapshot(other, Uint8Array.from([9]), undefined, 1);
      // Act
      const shards = await ledger.getSnapshotShards(mailbox);
      const stale = failureOf(ledger.putSnapshot(mailbox, Uint8Array.from([4]), 1, 3));
      const asIfNew = failureOf(ledger.putSnapshot(mailbox, Uint8Array.from([5]), undefined, 12));
      // Assess
      expect([...shards.keys()].sort((a, b) => a - b)).toEqual([0, 3, 12]);
      expect(shards.get(3)?.version).toBe(2);
      expect([...(shards.get(3)?.body ?? [])]).toEqual([33]);
      expect([...(shards.get(12)?.body ?? [])]).toEqual([12]);
      expect(await ledger.getSnapshot(mailbox)).toEqual({ version: 1, body: Uint8Array.from([0]) });
      expect(await stale).toBeInstanceOf(LedgerConflictError);
      expect(await asIfNew).toBeInstanceOf(LedgerConflictError);
      expect((await ledger.getSnapshotShards(newMailbox())).size).toBe(0);
    });

    it("stores a shard of MAX_SNAPSHOT_SHARD_BYTES and refuses a larger one as DynamoDB's item limit does", async () => {
      // Prepare
      const ledger = await makeLedger();
      const mailbox = newMailbox();
      // Act
      await ledger.putSnapshot(mailbox, new Uint8Array(MAX_SNAPSHOT_SHARD_BYTES), undefined, 1);
      const larger = ledger.putSnapshot(mailbox, new Uint8Array(MAX_SNAPSHOT_SHARD_BYTES + 1), undefined, 2);
      // Assess
      await expect(larger).rejects.toMatchObject({ retryable: false });
      expect((await ledger.getSnapshotShards(mailbox)).get(1)?.body.byteLength).toBe(
        MAX_SNAPSHOT_SHARD_BYTES,
      );
    });

    it("keeps snapshots and entries of different mailboxes apart", async () => {
      // Prepare
      const ledger = await makeLedger();
      const one = newMailbox();
      const two = { tenant: one.tenant, mailboxId: `${one.mailboxId}x` };
      await ledger.putSnapshot(one, Uint8Array.from([1]), undefined);
      await ledger.createListed([newListing(one, "same-uidl", 1)]);
      // Act
      const snapshotTwo = await ledger.getSnapshot(two);
      const entryTwo = await ledger.get(messageKey(two, "same-uidl"));
      const createdTwo = await ledger.createListed([newListing(two, "same-uidl", 2)]);
      // Assess
      expect(snapshotTwo).toBeUndefined();
      expect(entryTwo).toBeUndefined();
      expect(createdTwo).toHaveLength(1);
    });
  });
}

/** A mailbox no other test uses. */
export function newMailbox(): MailboxKey {
  return { tenant: "acme", mailboxId: `box-${randomUUID().slice(0, 8)}@acme.example` };
}

function messageKey(mailbox: MailboxKey, uidl: string): MessageKey {
  return { ...mailbox, uidl };
}

function newListing(
  mailbox: MailboxKey,
  uidl: string,
  listedSize: number,
): Omit<LedgerEntry, "state" | "attempts"> {
  return { ...mailbox, uidl, listedSize, listedAt: 1_700_000_000_000 + listedSize };
}

function sortByUidl<T extends { uidl: string }>(entries: readonly T[]): T[] {
  return [...entries].sort((a, b) => a.uidl.localeCompare(b.uidl));
}

/**
 * What a write that must fail failed with (undefined if it succeeded). Handled at once, so writes
 * started together never leave a rejection unhandled while the test awaits another one.
 */
function failureOf(write: Promise<unknown>): Promise<unknown> {
  return write.then(
    () => undefined,
    (error: unknown) => error,
  );
}
