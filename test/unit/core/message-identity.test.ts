import { describe, expect, it } from "vitest";
import { deleteCopiedInOwnSession } from "../../../shared/core/delete-copied";
import type { LedgerEntry } from "../../../shared/core/model";
import { Harness, mailboxConfig, makeMessage, TENANT } from "./support/harness";

/** How many copies of exactly these bytes the fake Gmail holds. */
function copiesInGmail(h: Harness, bytes: Uint8Array): number {
  return h.sink.imported.filter((m) => Buffer.from(m.bytes).equals(Buffer.from(bytes))).length;
}

/** Ledger ids by state, sorted. */
function entriesByState(h: Harness): Record<string, string[]> {
  const states: Record<string, string[]> = {};
  for (const entry of h.store.all()) {
    states[entry.state] ??= [];
    states[entry.state]?.push(entry.uidl);
  }
  for (const list of Object.values(states)) list.sort();
  return states;
}

function onlyEntry(h: Harness, uidl: string): LedgerEntry {
  const entry = h.store.all().find((e) => e.uidl === uidl);
  if (entry === undefined) throw new Error(`no ledger entry ${uidl}`);
  return entry;
}

/**
 * `deleteAfter: 30d`: a message under UIDL "7" is copied, retained, deleted once due, and the
 * server then reuses "7" for new mail, which is copied and retained as generation 2.
 */
async function reusedBehindRetained() {
  const h = new Harness(mailboxConfig({ deleteAfter: "30d" }));
  const first = makeMessage();
  const second = makeMessage();
  h.pop3.add(first, "7");
  await h.runUntilQuiet();
  h.clock.advance(31 * 86_400_000);
  await h.runUntilQuiet(); // due: deleted
  h.pop3.add(second, "7");
  await h.runUntilQuiet();
  return { h, first, second };
}

describe("message identity: a UIDL the server reuses (issue 10 item 3)", () => {
  it("delivers new mail behind a UIDL the server reused after our committed delete", async () => {
    // Prepare
    const h = new Harness();
    const first = makeMessage();
    const second = makeMessage();
    h.pop3.add(first, "7");
    await h.runUntilQuiet();
    h.pop3.add(second, "7"); // a counter that restarted: same UIDL, new mail

    // Act
    await h.runUntilQuiet();

    // Assess
    expect(copiesInGmail(h, first)).toBe(1);
    expect(copiesInGmail(h, second)).toBe(1);
    expect(h.pop3.uidls()).toEqual([]);
    expect(entriesByState(h)).toEqual({ deleted: ["7", "7 2"] });
    expect(onlyEntry(h, "7 2").gmailId).not.toBe(onlyEntry(h, "7").gmailId);
    expect(h.earlyDeletes).toEqual([]);
  });

  it("does not import again what a server failed to delete, and deletes it again", async () => {
    // Prepare
    const h = new Harness();
    const message = makeMessage();
    h.pop3.add(message, "7");
    await h.runUntilQuiet();
    h.pop3.add(message, "7"); // the server answered QUIT +OK but kept the message

    // Act
    await h.runUntilQuiet();

    // Assess
    expect(copiesInGmail(h, message)).toBe(1);
    expect(h.sink.importCalls).toBe(1);
    expect(h.pop3.uidls()).toEqual([]);
    expect(entriesByState(h)).toEqual({ deleted: ["7", "7 2"] });
    expect(onlyEntry(h, "7 2").gmailId).toBe(onlyEntry(h, "7").gmailId);
  });

  it("notices a failed delete the lister never saw go, once the job's grace period has passed", async () => {
    // Prepare
    const h = new Harness();
    const message = makeMessage();
    h.pop3.add(message, "7");
    let lied = false;
    const record = h.pop3.onCommit;
    h.pop3.onCommit = (uidls) => {
      record?.(uidls);
      if (!lied && uidls.includes("7")) {
        lied = true;
        queueMicrotask(() => h.pop3.add(message, "7")); // back right after the commit
      }
    };
    await h.runUntilQuiet();
    expect(h.pop3.uidls()).toEqual(["7"]);

    // Act
    h.clock.advance(31 * 60 * 1000);
    await h.runUntilQuiet();

    // Assess
    expect(copiesInGmail(h, message)).toBe(1);
    expect(h.sink.importCalls).toBe(1);
    expect(h.pop3.uidls()).toEqual([]);
    expect(entriesByState(h)).toEqual({ deleted: ["7", "7 2"] });
  });

  it("delivers a reused UIDL behind a retained message, and then polls idle on one read", async () => {
    // Prepare
    const { h, first, second } = await reusedBehindRetained();

    // Act
    h.ledger.reset();
    const idle = await h.poll();

    // Assess
    expect(copiesInGmail(h, first)).toBe(1);
    expect(copiesInGmail(h, second)).toBe(1);
    expect(h.pop3.uidls()).toEqual(["7"]);
    expect(entriesByState(h)).toEqual({ deleted: ["7"], retained: ["7 2"] });
    expect(idle).toMatchObject({ kind: "listed", idle: true, newMessages: 0, deletesDue: 0 });
    expect(Object.fromEntries(h.ledger.calls)).toEqual({ getSnapshotShards: 1 });
  });

  it("deletes the reused generation when it falls due, by its own ledger id", async () => {
    // Prepare
    const { h } = await reusedBehindRetained();
    h.clock.advance(31 * 86_400_000);

    // Act
    const listed = await h.poll();
    if (listed.kind !== "listed") throw new Error("busy");
    const outcome = await deleteCopiedInOwnSession(h.deps, TENANT, h.mailbox, { uidls: listed.dueUidls });

    // Assess
    expect(listed.dueUidls).toEqual(["7 2"]);
    expect(outcome).toEqual({ kind: "deleted", deleted: 1, committed: true });
    expect(h.pop3.uidls()).toEqual([]);
    expect(entriesByState(h)).toEqual({ deleted: ["7", "7 2"] });
  });
});

describe("message identity: a UIDL that breaks RFC 1939 §7 (issue 10 item 9)", () => {
  it("quarantines a message with a 71-character UIDL (archived, left on the server) and delivers the rest", async () => {
    // Prepare
    const h = new Harness();
    const bad = makeMessage();
    const good = makeMessage();
    h.pop3.add(bad, "u".repeat(71));
    h.pop3.add(good, "fine");

    // Act
    await h.runUntilQuiet();

    // Assess
    expect(copiesInGmail(h, good)).toBe(1);
    expect(copiesInGmail(h, bad)).toBe(0);
    expect(h.pop3.uidls()).toEqual(["u".repeat(71)]);
    const quarantined = h.store.all().filter((e) => e.state === "quarantined");
    expect(quarantined).toHaveLength(1);
    expect(quarantined[0]).toMatchObject({ quarantineCode: "INVALID_UIDL", archivedSize: bad.length });
    const archived = [...h.archive.objects.values()].find((o) => o.metadata.uidl === quarantined[0]?.uidl);
    expect(Buffer.from(archived?.bytes ?? []).equals(Buffer.from(bad))).toBe(true);
  });

  it("keeps a quarantined invalid UIDL parked: later polls stay idle on one read", async () => {
    // Prepare
    const h = new Harness();
    h.pop3.add(makeMessage(), "v".repeat(5000));
    await h.runUntilQuiet();

    // Act
    h.ledger.reset();
    const result = await h.poll();

    // Assess
    expect(result).toMatchObject({ kind: "listed", idle: true, onServer: 1 });
    expect(h.ledger.total).toBe(1);
  });
});

describe("message identity: a UIDL listed twice (issue 11 item 3, popa3d)", () => {
  it("delivers both messages that share a UIDL and deletes each exactly once", async () => {
    // Prepare
    const h = new Harness();
    const a = makeMessage({ messageId: "<same@sender.example>" });
    const b = makeMessage({ messageId: "<same@sender.example>" });
    const beside = makeMessage();
    h.pop3.add(a, "dup");
    h.pop3.add(beside, "other");
    h.pop3.add(b, "dup");

    // Act
    await h.runUntilQuiet();

    // Assess
    expect(copiesInGmail(h, a)).toBe(1);
    expect(copiesInGmail(h, b)).toBe(1);
    expect(copiesInGmail(h, beside)).toBe(1);
    expect(h.pop3.uidls()).toEqual([]);
    expect(h.pop3.commits.flat().sort()).toEqual(["dup", "dup", "other"]);
    expect(h.earlyDeletes).toEqual([]);
    expect(h.store.all().every((e) => e.state === "deleted")).toBe(true);
  });

  it("never deletes one twin in place of the other: a retained twin stays while the due one goes", async () => {
    // Prepare
    const h = new Harness(mailboxConfig({ deleteAfter: "30d" }));
    const a = makeMessage();
    const b = makeMessage();
    h.pop3.add(a, "dup");
    await h.runUntilQuiet();
    h.clock.advance(20 * 86_400_000);
    h.pop3.add(b, "dup"); // arrives 20 days later under the same UIDL
    await h.runUntilQuiet();

    // Act
    h.clock.advance(11 * 86_400_000); // a is due, b is not
    await h.runUntilQuiet();

    // Assess
    expect(copiesInGmail(h, a)).toBe(1);
    expect(copiesInGmail(h, b)).toBe(1);
    expect(h.pop3.contents().map((m) => Buffer.from(m).equals(Buffer.from(b)))).toEqual([true]);
  });

  it("keeps the surviving twin's identity when the other leaves, so it is neither lost nor copied twice", async () => {
    // Prepare
    const h = new Harness(mailboxConfig({ deleteAfter: "30d" }));
    const a = makeMessage();
    const b = makeMessage();
    h.pop3.add(a, "dup");
    h.pop3.add(b, "dup");
    await h.runUntilQuiet();
    h.clock.advance(31 * 86_400_000);

    // Act
    await h.runUntilQuiet();

    // Assess
    expect(copiesInGmail(h, a)).toBe(1);
    expect(copiesInGmail(h, b)).toBe(1);
    expect(h.sink.importCalls).toBe(2);
    expect(h.pop3.uidls()).toEqual([]);
    expect(h.store.all().every((e) => e.state === "deleted")).toBe(true);
  });

  it("polls a mailbox with a retained twin pair on one ledger read", async () => {
    // Prepare
    const h = new Harness(mailboxConfig({ deleteAfter: "never" }));
    h.pop3.add(makeMessage(), "dup");
    h.pop3.add(makeMessage(), "dup");
    await h.runUntilQuiet();

    // Act
    h.ledger.reset();
    const result = await h.poll();

    // Assess
    expect(result).toMatchObject({ kind: "listed", idle: true, onServer: 2, newMessages: 0 });
    expect(h.ledger.total).toBe(1);
  });
});
