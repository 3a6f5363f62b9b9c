import type { CopyJob } from "../core/model";

/** The work queue between the lister and the copiers (SQS in AWS, in-process locally). */
export interface WorkQueue {
  /**
   * Enqueues copy jobs; a job may be delivered more than once, so consumers are idempotent.
   * `delaySeconds` (0-900) postpones delivery: used to come back later to a busy mailbox or a
   * rate-limited Gmail user without counting a failed receive. `resend` marks a job handed back
   * by a copier (a job already delivered once): a queue that drops a second send of the same
   * listing (SQS FIFO's deduplication) must never drop it.
   */
  enqueue(jobs: readonly CopyJob[], options?: EnqueueOptions): Promise<void>;
  /**
   * Only on a queue that cannot delay a job itself (SQS FIFO, which has no per-message delay): a
   * delayed job is delivered at once, marked with the time it is due, and the consumer hands the
   * deliveries back with this, by their receipts, to come again after `delaySeconds`
   * (docs/lambda-handlers.md, "One mailbox, one copier"). The copier also hands back failed
   * deliveries with it, after a short backoff, so they do not hold their group for the
   * visibility timeout.
   */
  holdBack?(receipts: readonly string[], delaySeconds: number): Promise<void>;
}

/** How `WorkQueue.enqueue` sends. */
export interface EnqueueOptions {
  readonly delaySeconds?: number;
  readonly resend?: boolean;
}
