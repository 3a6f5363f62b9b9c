import { describe, expect, it, vi } from "vitest";
import { copyBatch } from "../../../shared/core/copy-batch";
import { CredentialsError, TransientError } from "../../../shared/core/errors";
import type { CopyJob } from "../../../shared/core/model";
import { Harness, makeMessage, TENANT } from "./support/harness";

/**
 * docs/pipeline.md, "Environment faults": a fault of our own disk, permissions or ledger is not
 * the message's fault. It stops the batch, spends no attempt, quarantines nothing, and the
 * message is copied once the fault is gone.
 */

function errno(code: string, message = `${code}: simulated`): Error {
  return Object.assign(new Error(message), { code });
}

async function listedJob(h: Harness): Promise<CopyJob> {
  const uidl = h.pop3.add(makeMessage({ messageId: "<env@x>" }));
  await h.poll();
  const entry = await h.store.get({ ...h.key, uidl });
  if (entry === undefined) throw new Error("not listed");
  // The poll enqueued it; the test drives the batch itself.
  h.queue.take(10);
  return { ...h.key, uidl, listedSize: entry.listedSize, listedAt: entry.listedAt };
}

describe("environment faults", () => {
  it("a full disk spends no attempt across more batches than maxAttempts, then the message is copied", async () => {
    // Prepare
    const h = new Harness();
    const job = await listedJob(h);
    const runs = 7;
    for (let i = 0; i < runs; i++) {
      // What the folder archive reports for a full disk: ENOSPC from the file system as the cause.
      h.archive.failNextPut(
        new TransientError("archive", "cannot write (ENOSPC)", { cause: errno("ENOSPC") }),
      );
    }

    // Act
    const failures: unknown[] = [];
    for (let i = 0; i < runs; i++) {
      failures.push(await copyBatch(h.deps, TENANT, h.mailbox, [job]).catch((error: unknown) => error));
    }
    const whileFull = await h.store.get(job);
    const healed = await copyBatch(h.deps, TENANT, h.mailbox, [job]);

    // Assess
    for (const failure of failures) {
      expect(failure).toMatchObject({ code: "ENVIRONMENT_FAULT", errno: "ENOSPC", retryable: true });
    }
    expect(whileFull).toMatchObject({ state: "listed", attempts: 0 });
    expect(healed.outcomes.map((o) => o.kind)).toEqual(["copied"]);
    expect(h.telemetry.ofType("quarantined")).toHaveLength(0);
    expect(h.pop3.uidls()).toEqual([]);
  });

  it("a raw SQLITE_FULL escaping the ledger stops the batch as an environment fault of the ledger", async () => {
    // Prepare
    const h = new Harness();
    const job = await listedJob(h);
    // The copy's first ledger write (the archive, its claim and the attempt in one commit).
    vi.spyOn(h.store, "transition").mockRejectedValueOnce(errno("SQLITE_FULL", "database or disk is full"));

    // Act
    const failure = await copyBatch(h.deps, TENANT, h.mailbox, [job]).catch((error: unknown) => error);

    // Assess
    expect(failure).toMatchObject({ code: "ENVIRONMENT_FAULT", errno: "SQLITE_FULL", service: "ledger" });
    expect(await h.store.get(job)).toMatchObject({ state: "listed", attempts: 0 });
    expect(h.pop3.uidls()).toEqual([job.uidl]);
  });

  it("a mailbox-level failure (revoked Gmail credentials) gives the attempt back", async () => {
    // Prepare
    const h = new Harness();
    const job = await listedJob(h);
    h.sink.failNextImport(new CredentialsError("google", "invalid_grant"));

    // Act
    const failure = await copyBatch(h.deps, TENANT, h.mailbox, [job]).catch((error: unknown) => error);

    // Assess
    expect(failure).toBeInstanceOf(CredentialsError);
    expect(await h.store.get(job)).toMatchObject({ state: "archived", attempts: 0 });
  });
});
