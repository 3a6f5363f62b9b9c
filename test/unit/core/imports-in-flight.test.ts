import { describe, expect, it } from "vitest";
import { archiveKeyFor } from "../../../shared/core/archive-key";
import { copyBatch } from "../../../shared/core/copy-batch";
import type { CopyJob } from "../../../shared/core/model";
import type { ImportRequest } from "../../../shared/ports/mail-sink";
import { CrashError, Harness, makeMessage, TENANT } from "./support/harness";

/**
 * Imports in flight within a mailbox (docs/pipeline.md, "Imports in flight"): the copy batch
 * RETRs and archives message n+1 while message n's Gmail import is pending, and still DELEs only
 * what is archived and imported, and heals after a crash with imports pending.
 */

/** Lets queued promise callbacks run, a bounded number of turns (no timers, no waiting on time). */
async function settle(turns = 200): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

async function listedJobs(h: Harness): Promise<CopyJob[]> {
  await h.poll();
  return h.queue.take(100);
}

describe("imports in flight within one mailbox", () => {
  it("RETRs and archives the next message while an import is held", async () => {
    // Prepare
    const h = new Harness();
    const uidls = [0, 1, 2].map((i) => h.pop3.add(makeMessage({ bodyBytes: 300 + i * 100 })));
    const retrieved: string[] = [];
    h.pop3.faults.afterRetrieve = (uidl) => {
      retrieved.push(uidl);
    };
    const jobs = await listedJobs(h);
    const held = h.sink.holdNextImport();

    // Act
    const batch = copyBatch(h.deps, TENANT, h.mailbox, jobs);
    await held.started;
    await settle();
    const retrievedWhileHeld = [...retrieved];
    const archivedWhileHeld = [...h.archive.objects.keys()].length;
    held.release();
    const result = await batch;

    // Assess
    expect(retrievedWhileHeld.length).toBeGreaterThanOrEqual(2);
    expect(archivedWhileHeld).toBeGreaterThanOrEqual(2);
    expect(result.outcomes.map((o) => o.kind)).toEqual(["copied", "copied", "copied"]);
    expect(result.committed).toBe(true);
    expect(h.earlyDeletes).toEqual([]);
    expect(h.pop3.uidls()).toEqual([]);
    for (const uidl of uidls) expect(h.sink.countFor(uidl)).toBe(1);
  });

  it("sends no DELE while an import of the batch is still pending", async () => {
    // Prepare
    const h = new Harness();
    for (let i = 0; i < 3; i++) h.pop3.add(makeMessage({ bodyBytes: 200 + i }));
    const jobs = await listedJobs(h);
    const held = h.sink.holdNextImport();

    // Act
    const batch = copyBatch(h.deps, TENANT, h.mailbox, jobs);
    await held.started;
    await settle();
    const onServerWhileHeld = h.pop3.uidls().length;
    held.release();
    await batch;

    // Assess
    expect(onServerWhileHeld).toBe(3);
    expect(h.earlyDeletes).toEqual([]);
    expect(h.pop3.uidls()).toEqual([]);
  });

  it("heals after a crash while two imports are pending", async () => {
    // Prepare: the first two imports hang until the crash; one of them reached Gmail first.
    const h = new Harness();
    const originals = new Map<string, Uint8Array>();
    for (let i = 0; i < 4; i++) {
      const bytes = makeMessage({ bodyBytes: 400 + i * 300, ...(i === 1 ? { messageId: null } : {}) });
      originals.set(h.pop3.add(bytes), bytes);
    }
    const jobs = await listedJobs(h);
    const importOnce = h.sink.import.bind(h.sink);
    let crash!: () => void;
    const crashed = new Promise<void>((resolve) => {
      crash = resolve;
    });
    let pending = 0;
    let calls = 0;
    h.sink.import = async (request: ImportRequest) => {
      calls++;
      if (calls > 2) return importOnce(request);
      pending++;
      // The first reaches Gmail and then the process dies; the second dies before sending.
      const result = calls === 1 ? await importOnce(request) : undefined;
      await crashed;
      throw new CrashError(`crash with ${pending} imports pending (${result?.gmailId ?? "not sent"})`);
    };
    const batch = h.survive(() => copyBatch(h.deps, TENANT, h.mailbox, jobs));
    await settle();
    const pendingAtCrash = pending;

    // Act
    crash();
    const died = await batch;
    h.sink.import = importOnce;
    await h.queue.enqueue(jobs);
    await h.runUntilQuiet();

    // Assess
    expect(pendingAtCrash).toBe(2);
    expect(died).toBe(true);
    expect(h.earlyDeletes).toEqual([]);
    expect(h.pop3.uidls()).toEqual([]);
    for (const [uidl, bytes] of originals) {
      const key = { tenant: TENANT, mailboxId: h.mailbox.id, uidl };
      expect(h.archive.objects.get(archiveKeyFor(key))?.bytes).toEqual(bytes);
      expect(h.sink.countFor(uidl)).toBe(1);
      expect((await h.store.get(key))?.state).toBe("deleted");
    }
  });

  it("stops waiting for every pending import at the hard deadline, deletes nothing, and heals", async () => {
    // Prepare: two imports hang; the copier's deadline passes while they do.
    const h = new Harness();
    const originals = new Map<string, Uint8Array>();
    for (let i = 0; i < 3; i++) {
      const bytes = makeMessage({ bodyBytes: 250 + i * 50 });
      originals.set(h.pop3.add(bytes), bytes);
    }
    const jobs = await listedJobs(h);
    const first = h.sink.holdNextImport();
    const second = h.sink.holdNextImport();
    const deadline = new AbortController();

    // Act
    const batch = copyBatch(h.deps, TENANT, h.mailbox, jobs, undefined, undefined, {
      abort: deadline.signal,
    });
    await first.started;
    await second.started;
    deadline.abort();
    const result = await batch;
    first.release();
    second.release();
    await settle();
    await h.queue.enqueue(jobs);
    await h.runUntilQuiet();

    // Assess
    expect(result.outcomes.slice(0, 2).map((o) => o.kind)).toEqual(["retry-later", "retry-later"]);
    expect(result.committed).toBe(false);
    expect(h.earlyDeletes).toEqual([]);
    expect(h.pop3.uidls()).toEqual([]);
    for (const [uidl, bytes] of originals) {
      const key = { tenant: TENANT, mailboxId: h.mailbox.id, uidl };
      expect(h.archive.objects.get(archiveKeyFor(key))?.bytes).toEqual(bytes);
      expect(h.sink.countFor(uidl)).toBe(1);
      expect((await h.store.get(key))?.state).toBe("deleted");
    }
  });

  it("copies a job that is twice in one batch once, the second finding the first's outcome", async () => {
    // Prepare: an SQS redelivery in the same batch as the original, while its import is held.
    const h = new Harness();
    const uidl = h.pop3.add(makeMessage({ bodyBytes: 300 }));
    const [job] = await listedJobs(h);
    if (job === undefined) throw new Error("not listed");
    const held = h.sink.holdNextImport();

    // Act
    const batch = copyBatch(h.deps, TENANT, h.mailbox, [job, { ...job }]);
    await held.started;
    await settle();
    held.release();
    const result = await batch;

    // Assess
    expect(result.outcomes.map((o) => o.kind)).toEqual(["copied", "already-copied"]);
    expect(h.sink.rawImportsFor(uidl)).toBe(1);
    expect(h.pop3.uidls()).toEqual([]);
  });

  it("counts at most three ledger commits per copied and deleted message", async () => {
    // Prepare
    const h = new Harness();
    for (let i = 0; i < 5; i++) h.pop3.add(makeMessage({ bodyBytes: 100 + i }));
    const jobs = await listedJobs(h);
    h.ledger.reset();

    // Act
    const result = await copyBatch(h.deps, TENANT, h.mailbox, jobs);

    // Assess: every write of the batch (reads are not commits).
    const writes =
      (h.ledger.calls.get("transition") ?? 0) +
      (h.ledger.calls.get("recordAttempt") ?? 0) +
      (h.ledger.calls.get("createListed") ?? 0);
    expect(result.outcomes.every((o) => o.kind === "copied")).toBe(true);
    expect(result.deleted).toBe(5);
    expect(writes).toBeLessThanOrEqual(3 * 5);
  });
});
