import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { CopyJob } from "../../shared/core/model";
import type { WorkQueue } from "../../shared/ports/work-queue";

/**
 * A queue plus the consumer side the port does not have: how the contract sees what was
 * delivered. Each call of the factory returns a queue of its own (empty).
 */
export interface WorkQueueHarness {
  readonly queue: WorkQueue;
  /**
   * Takes (and acknowledges) every job deliverable now; where delivery runs on real time the
   * harness may wait up to `waitSeconds` for the first one (SQS long polling), never longer.
   */
  receive(options: { waitSeconds: number }): Promise<CopyJob[]>;
  /** Lets `seconds` pass for delayed jobs: moves a fake clock, or does nothing on real time. */
  elapse(seconds: number): Promise<void>;
}

/** The behaviour every `WorkQueue` must show (SQS, in-process). */
export function describeWorkQueueContract(
  name: string,
  makeHarness: () => WorkQueueHarness | Promise<WorkQueueHarness>,
): void {
  describe(`WorkQueue contract: ${name}`, () => {
    it("delivers every one of 25 jobs with its fields intact", async () => {
      // Prepare
      const harness = await makeHarness();
      const jobs = Array.from({ length: 25 }, (_, i) => newJob(`uidl-${i}`, i));
      // Act
      await harness.queue.enqueue(jobs);
      const received = await receiveAtLeast(harness, jobs.length);
      // Assess
      expect(sortByUidl(received)).toEqual(sortByUidl(jobs));
    });

    it("treats an empty enqueue as a no-op", async () => {
      // Prepare
      const harness = await makeHarness();
      // Act
      await harness.queue.enqueue([]);
      const received = await harness.receive({ waitSeconds: 0 });
      // Assess
      expect(received).toEqual([]);
    });

    it("holds a delayed job back until its delay has passed", async () => {
      // Prepare
      const harness = await makeHarness();
      const job = newJob("later", 1);
      // Act
      await harness.queue.enqueue([job], { delaySeconds: 1 });
      const immediately = await harness.receive({ waitSeconds: 0 });
      await harness.elapse(1);
      const afterDelay = await receiveAtLeast(harness, 1);
      // Assess
      expect(immediately).toEqual([]);
      expect(afterDelay).toEqual([job]);
    });
  });
}

/** Receives until `count` jobs arrived or one receive (with its bounded wait) brings nothing. */
async function receiveAtLeast(harness: WorkQueueHarness, count: number): Promise<CopyJob[]> {
  const received: CopyJob[] = [];
  while (received.length < count) {
    const batch = await harness.receive({ waitSeconds: 3 });
    if (batch.length === 0) break;
    received.push(...batch);
  }
  return received;
}

function newJob(uidl: string, n: number): CopyJob {
  return {
    tenant: "acme",
    mailboxId: `box-${randomUUID().slice(0, 8)}@acme.example`,
    uidl,
    listedSize: 1000 + n,
    listedAt: 1_700_000_000_000 + n,
  };
}

function sortByUidl<T extends { uidl: string }>(entries: readonly T[]): T[] {
  return [...entries].sort((a, b) => a.uidl.localeCompare(b.uidl));
}
