import { describe, expect, it } from "vitest";
import { copyBatch } from "../../../shared/core/copy-batch";
import { deleteCopiedInOwnSession } from "../../../shared/core/delete-copied";
import { MailboxBusyError } from "../../../shared/core/errors";
import { DEFAULT_LIST_POLICY } from "../../../shared/core/list-new-messages";
import { crashOnce, Harness, mailboxConfig, makeMessage, TENANT } from "./support/harness";

/** A mailbox whose server keeps `count` messages already copied and retained. */
async function mailboxWithRetained(count: number, deleteAfter = "never"): Promise<Harness> {
  const h = new Harness(mailboxConfig({ deleteAfter }));
  await addRetained(h, count, "retained");
  return h;
}

/** Adds `count` messages and moves them to retained as imported now, as the copier would. */
async function addRetained(h: Harness, count: number, prefix: string): Promise<void> {
  const tiny = new Uint8Array(Buffer.from("Subject: x\r\n\r\nhi\r\n"));
  for (let i = 0; i < count; i++) h.pop3.add(tiny, `${prefix}-${i}`);
  await h.poll();
  for (const entry of await h.store.listByState(h.key, ["listed"])) {
    await h.store.transition(entry, ["listed"], "retained", {
      archiveKey: `k/${entry.uidl}`,
      archivedSize: 20,
      sha256: "0".repeat(64),
      gmailId: `g-${entry.uidl}`,
      importedAt: h.clock.now(),
    });
  }
  h.queue.take(count);
  h.clock.advance(DEFAULT_LIST_POLICY.stuckAfterMs + 1000);
  await h.poll(); // learns the retained states once
}

describe("listNewMessages", () => {
  it("creates and enqueues new UIDLs once, then polls idle on one snapshot read", async () => {
    // Prepare
    const h = new Harness();
    const uidls = [h.pop3.add(makeMessage()), h.pop3.add(makeMessage())];

    // Act
    const first = await h.poll();
    h.ledger.reset();
    const second = await h.poll();

    // Assess
    expect(first).toMatchObject({ kind: "listed", newMessages: 2, onServer: 2, idle: false });
    expect(h.queue.take(10).map((j) => j.uidl)).toEqual(uidls);
    expect(second).toMatchObject({ kind: "listed", newMessages: 0, idle: true });
    expect(Object.fromEntries(h.ledger.calls)).toEqual({ getSnapshotShards: 1 });
  });

  it("makes the same O(1) ledger calls on an idle poll of 500 and of 5,000 retained messages (issue 4 item 4)", async () => {
    // Prepare
    const small = await mailboxWithRetained(500);
    const large = await mailboxWithRetained(5000);
    small.ledger.reset();
    large.ledger.reset();

    // Act
    const smallResult = await small.poll();
    const largeResult = await large.poll();

    // Assess
    expect(smallResult).toMatchObject({ idle: true, onServer: 500, deletesDue: 0 });
    expect(largeResult).toMatchObject({ idle: true, onServer: 5000, deletesDue: 0 });
    expect(small.ledger.total).toBe(1);
    expect(large.ledger.total).toBe(small.ledger.total);
    const snapshot = await large.store.getSnapshot(large.key);
    expect(snapshot?.body.length).toBeLessThan(100_000);
  });

  it("reports retained messages as due once deleteAfter has passed, still without per-message reads", async () => {
    // Prepare
    const h = await mailboxWithRetained(50, "30d");
    h.clock.advance(30 * 86_400_000);
    h.ledger.reset();

    // Act
    const result = await h.poll();

    // Assess
    expect(result).toMatchObject({ kind: "listed", deletesDue: 50 });
    expect(h.ledger.total).toBe(1);
  });

  it("hands the delete pass only the due UIDLs, so it reads those and not every retained message", async () => {
    // Prepare
    const h = await mailboxWithRetained(10, "30d");
    h.clock.advance(10 * 86_400_000);
    await addRetained(h, 190, "young");
    h.clock.advance(20 * 86_400_000);
    const result = await h.poll();
    if (result.kind !== "listed") throw new Error("busy");
    h.ledger.reset();

    // Act
    const outcome = await deleteCopiedInOwnSession(h.deps, TENANT, h.mailbox, { uidls: result.dueUidls });

    // Assess
    expect(result.dueUidls).toEqual(Array.from({ length: 10 }, (_, i) => `retained-${i}`));
    expect(outcome).toEqual({ kind: "deleted", deleted: 10, committed: true });
    expect(h.ledger.calls.get("get")).toBe(10);
    expect(h.ledger.calls.get("listByState")).toBeUndefined();
    expect(h.pop3.uidls()).toHaveLength(190);
  });

  it("re-sends a job stuck in listed past the grace period (a lost queue message)", async () => {
    // Prepare
    const h = new Harness();
    const uidl = h.pop3.add(makeMessage());
    await h.poll();
    h.queue.take(10); // the job is lost
    h.clock.advance(DEFAULT_LIST_POLICY.stuckAfterMs - 1000);
    const early = await h.poll();
    h.clock.advance(2000);

    // Act
    const late = await h.poll();

    // Assess
    expect(early).toMatchObject({ requeued: 0, idle: true });
    expect(late).toMatchObject({ requeued: 1 });
    expect(h.queue.take(10).map((j) => j.uidl)).toEqual([uidl]);
  });

  it("quarantines a listed message another client deleted, and re-sends an archived one", async () => {
    // Prepare
    const h = new Harness();
    const listed = h.pop3.add(makeMessage());
    const archived = h.pop3.add(makeMessage());
    await h.poll();
    await h.store.transition({ ...h.key, uidl: archived }, ["listed"], "archived", { archiveKey: "k" });
    h.queue.take(10);
    h.pop3.removeByOtherClient(listed);
    h.pop3.removeByOtherClient(archived);

    // Act
    const result = await h.poll();

    // Assess
    expect(result).toMatchObject({ vanished: 2 });
    expect(await h.store.get({ ...h.key, uidl: listed })).toMatchObject({
      state: "quarantined",
      quarantineCode: "VANISHED",
    });
    expect(h.queue.take(10).map((j) => j.uidl)).toEqual([archived]);
  });

  it("rebuilds a lost snapshot from the ledger without creating or enqueuing twice", async () => {
    // Prepare
    const h = new Harness(mailboxConfig({ deleteAfter: "never" }));
    const uidl = h.pop3.add(makeMessage());
    await h.runUntilQuiet();
    const other = new Harness(h.mailbox);
    // Same ledger entries, no snapshot: copy the entries across.
    await other.store.createListed(h.store.all());
    const entry = (await h.store.get({ ...h.key, uidl }))!;
    await other.store.transition(entry, ["listed"], "retained", entry);
    other.pop3.add(makeMessage(), uidl);

    // Act
    const result = await other.poll();

    // Assess
    expect(result).toMatchObject({ newMessages: 0, requeued: 0, deletesDue: 0 });
    expect(other.queue.size).toBe(0);
  });

  it("answers busy on [IN-USE] and when no session slot is free, without touching the ledger", async () => {
    // Prepare
    const h = new Harness();
    h.pop3.failNextOpen(new MailboxBusyError("IN-USE", "-ERR [IN-USE]"));
    await h.leases.acquire(h.key, 1, "other-invocation", 60_000);

    // Act
    const noLease = await h.poll();
    h.clock.advance(60_000); // the other holder's lease expires
    const inUse = await h.poll();

    // Assess
    expect(noLease).toEqual({ kind: "busy", reason: "no-lease" });
    expect(inUse).toEqual({ kind: "busy", reason: "IN-USE" });
    expect(h.ledger.total).toBe(0);
    expect(h.leases.heldCount(h.key)).toBe(0);
  });
});

describe("polls after a crash", () => {
  it("records as deleted a copied message whose deleting session crashed after QUIT", async () => {
    // Prepare: QUIT commits the DELE, then the process dies before the ledger says "deleted",
    // and no redelivered job comes back to notice (its session broke, or it was acknowledged).
    const h = new Harness();
    const uidl = h.pop3.add(makeMessage());
    await h.poll();
    const jobs = h.queue.take(10);
    crashOnce(h.ledger, "transitionEach", { after: false, when: (...a: never[]) => a[2] === "deleted" });
    const crashed = await h.survive(() => copyBatch(h.deps, TENANT, h.mailbox, jobs));
    const key = { tenant: TENANT, mailboxId: h.mailbox.id, uidl };
    const before = (await h.store.get(key))?.state;

    // Act
    await h.poll();

    // Assess
    expect(crashed).toBe(true);
    expect(h.pop3.uidls()).toEqual([]);
    expect(before).toBe("imported");
    expect((await h.store.get(key))?.state).toBe("deleted");
  });
});
