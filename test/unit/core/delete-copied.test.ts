import { describe, expect, it } from "vitest";
import { copyBatch } from "../../../shared/core/copy-batch";
import { DEFAULT_COPY_POLICY } from "../../../shared/core/copy-message";
import { deleteCopied, deleteCopiedInOwnSession } from "../../../shared/core/delete-copied";
import { ConnectionClosedError, MailboxBusyError } from "../../../shared/core/errors";
import { withMailboxSession } from "../../../shared/core/mailbox-session";
import type { LedgerState } from "../../../shared/core/model";
import { Harness, mailboxConfig, makeMessage, TENANT } from "./support/harness";

/** Puts one message on the server and in the ledger in `state` (with the copy fields when copied). */
async function messageIn(h: Harness, state: LedgerState, importedAt = h.clock.now()): Promise<string> {
  const uidl = h.pop3.add(makeMessage());
  await h.store.createListed([{ ...h.key, uidl, listedSize: 1, listedAt: importedAt }]);
  if (state === "listed") return uidl;
  const copied = {
    archiveKey: `k/${uidl}`,
    archivedSize: 1,
    sha256: "0".repeat(64),
    ...(state === "archived" ? {} : { gmailId: `g-${uidl}`, importedAt }),
  };
  await h.store.transition({ ...h.key, uidl }, ["listed"], state, copied);
  return uidl;
}

const DAY = 86_400_000;

describe("deleteCopied", () => {
  it("deletes only messages the ledger shows archived and imported, and marks them after QUIT", async () => {
    // Prepare
    const h = new Harness();
    const imported = await messageIn(h, "imported");
    const kept = await Promise.all(
      (["listed", "archived", "importing", "quarantined"] as const).map((s) => messageIn(h, s)),
    );

    // Act
    const outcome = await deleteCopiedInOwnSession(h.deps, TENANT, h.mailbox);

    // Assess
    expect(outcome).toEqual({ kind: "deleted", deleted: 1, committed: true });
    expect(h.pop3.uidls()).toEqual(kept);
    expect(await h.store.get({ ...h.key, uidl: imported })).toMatchObject({
      state: "deleted",
      deletedAt: h.clock.now(),
    });
    expect(h.telemetry.ofType("deleted").map((e) => e.uidl)).toEqual([imported]);
  });

  it("never DELEs a message whose import is claimed but not recorded, even when handed its UIDL", async () => {
    // Prepare
    const h = new Harness();
    const importing = await messageIn(h, "importing");
    const imported = await messageIn(h, "imported");

    // Act
    const outcome = await deleteCopiedInOwnSession(h.deps, TENANT, h.mailbox, {
      uidls: [importing, imported],
    });

    // Assess
    expect(outcome).toEqual({ kind: "deleted", deleted: 1, committed: true });
    expect(h.pop3.uidls()).toEqual([importing]);
    expect((await h.store.get({ ...h.key, uidl: importing }))?.state).toBe("importing");
  });

  it("keeps retained messages until deleteAfter has passed, and forever under never", async () => {
    // Prepare
    const h = new Harness(mailboxConfig({ deleteAfter: "30d" }));
    const old = await messageIn(h, "retained", h.clock.now() - 31 * DAY);
    const young = await messageIn(h, "retained", h.clock.now() - 29 * DAY);
    const never = new Harness(mailboxConfig({ deleteAfter: "never" }));
    await messageIn(never, "retained", never.clock.now() - 3650 * DAY);

    // Act
    await deleteCopiedInOwnSession(h.deps, TENANT, h.mailbox);
    const neverOutcome = await deleteCopiedInOwnSession(never.deps, TENANT, never.mailbox);

    // Assess
    expect(h.pop3.uidls()).toEqual([young]);
    expect((await h.store.get({ ...h.key, uidl: old }))?.state).toBe("deleted");
    expect(neverOutcome).toMatchObject({ deleted: 0 });
    expect(never.pop3.uidls()).toHaveLength(1);
  });

  it("marks nothing deleted when QUIT does not commit (RFC 1939 §6)", async () => {
    // Prepare
    const h = new Harness();
    const uidl = await messageIn(h, "imported");
    h.pop3.quitCommits = false;

    // Act
    const outcome = await deleteCopiedInOwnSession(h.deps, TENANT, h.mailbox);

    // Assess
    expect(outcome).toEqual({ kind: "deleted", deleted: 0, committed: false });
    expect(h.pop3.uidls()).toEqual([uidl]);
    expect((await h.store.get({ ...h.key, uidl }))?.state).toBe("imported");
    expect(h.telemetry.ofType("delete-uncommitted")).toHaveLength(1);
  });

  it("deletes nothing when the session is dropped after DELE", async () => {
    // Prepare
    const h = new Harness();
    const uidl = await messageIn(h, "imported");

    // Act
    const act = withMailboxSession(h.deps, h.key, h.mailbox, async (scope) => {
      await deleteCopied(h.deps, scope, h.mailbox, { now: h.clock.now() });
      throw new Error("connection lost");
    });

    // Assess
    await expect(act).rejects.toThrow("connection lost");
    expect(h.pop3.uidls()).toEqual([uidl]);
    expect((await h.store.get({ ...h.key, uidl }))?.state).toBe("imported");
    expect(h.leases.heldCount(h.key)).toBe(0);
  });

  it("maps UIDL to this session's message number, not an earlier session's", async () => {
    // Prepare
    const h = new Harness();
    const first = await messageIn(h, "listed");
    const target = await messageIn(h, "imported");
    h.pop3.removeByOtherClient(first); // renumbers: target is now message 1

    // Act
    await deleteCopiedInOwnSession(h.deps, TENANT, h.mailbox);

    // Assess
    expect(h.pop3.commits).toEqual([[target]]);
  });

  it("records as deleted a copied message that is already gone from the server", async () => {
    // Prepare
    const h = new Harness();
    const uidl = await messageIn(h, "imported");
    h.pop3.removeByOtherClient(uidl);

    // Act
    const outcome = await deleteCopiedInOwnSession(h.deps, TENANT, h.mailbox);

    // Assess
    expect(outcome).toMatchObject({ deleted: 1 });
    expect((await h.store.get({ ...h.key, uidl }))?.state).toBe("deleted");
    expect(h.pop3.commits).toEqual([[]]);
  });

  it("answers busy without a session when another invocation holds the only slot", async () => {
    // Prepare
    const h = new Harness();
    await messageIn(h, "imported");
    await h.leases.acquire(h.key, 1, "other", 60_000);

    // Act
    const outcome = await deleteCopiedInOwnSession(h.deps, TENANT, h.mailbox);

    // Assess
    expect(outcome).toEqual({ kind: "busy" });
    expect(h.pop3.sessionsOpened).toBe(0);
  });
});

describe("copyBatch", () => {
  it("copies a batch and deletes it in the same session, committed by one QUIT", async () => {
    // Prepare
    const h = new Harness();
    const uidls = [h.pop3.add(makeMessage()), h.pop3.add(makeMessage()), h.pop3.add(makeMessage())];
    await h.poll();
    const jobs = h.queue.take(10);

    // Act
    const result = await copyBatch(h.deps, TENANT, h.mailbox, [...jobs, jobs[0]!]);

    // Assess
    expect(result.outcomes.map((o) => o.kind)).toEqual(["copied", "copied", "copied", "already-copied"]);
    expect(result).toMatchObject({ deleted: 3, committed: true });
    expect(h.pop3.sessionsOpened).toBe(2);
    expect(h.pop3.commits.at(-1)).toEqual(uidls);
  });

  it("answers busy for every job when the server says [IN-USE], counting no attempt", async () => {
    // Prepare
    const h = new Harness();
    h.pop3.add(makeMessage());
    await h.poll();
    const jobs = h.queue.take(10);
    h.pop3.failNextOpen(new MailboxBusyError("IN-USE", "-ERR [IN-USE]"));

    // Act
    const result = await copyBatch(h.deps, TENANT, h.mailbox, jobs);

    // Assess
    expect(result.outcomes).toEqual([{ kind: "busy", reason: "IN-USE" }]);
    expect(h.store.all()[0]?.attempts).toBe(0);
  });

  it("skips the rest of the batch, uncounted, once a RETR broke the session", async () => {
    // Prepare
    const h = new Harness();
    h.pop3.add(makeMessage());
    h.pop3.add(makeMessage());
    await h.poll();
    const jobs = h.queue.take(10);
    let first = true;
    h.pop3.faults.afterRetrieve = () => {
      if (first) {
        first = false;
        throw new ConnectionClosedError("pop3", "reset mid-RETR");
      }
    };

    // Act
    const result = await copyBatch(h.deps, TENANT, h.mailbox, jobs);

    // Assess
    expect(result.outcomes.map((o) => o.kind)).toEqual(["retry-later", "retry-later"]);
    expect(h.store.all().map((e) => e.attempts)).toEqual([1, 0]);
    expect(h.pop3.uidls()).toHaveLength(2);
  });

  it("finishes the message in hand when asked to stop, deletes it, and leaves the rest uncounted", async () => {
    // Prepare
    const h = new Harness();
    const [first] = [h.pop3.add(makeMessage()), h.pop3.add(makeMessage()), h.pop3.add(makeMessage())];
    await h.poll();
    const jobs = h.queue.take(10);
    let started = 0;
    h.pop3.faults.afterRetrieve = () => {
      started++;
    };

    // Act: the stop arrives while the first message is being copied.
    const result = await copyBatch(h.deps, TENANT, h.mailbox, jobs, DEFAULT_COPY_POLICY, () => started > 0);

    // Assess
    expect(result.outcomes.map((o) => o.kind)).toEqual(["copied", "retry-later", "retry-later"]);
    expect(result).toMatchObject({ deleted: 1, committed: true });
    expect(h.pop3.uidls()).not.toContain(first);
    expect(h.pop3.uidls()).toHaveLength(2);
    expect(
      h.store
        .all()
        .map((e) => e.attempts)
        .sort(),
    ).toEqual([0, 0, 1]);
  });
});
