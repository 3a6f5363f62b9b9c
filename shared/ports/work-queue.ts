import type { CopyJob } from "../core/model";

/** The work queue between the lister and the copiers (SQS in AWS, in-process locally). */
export interface WorkQueue {
  /**
   * Enqueues copy jobs; a job may be delivered more than once, so consumers are idempotent.
   * `delaySeconds` (0-900) postpones delivery: used to come back later to a busy mailbox or a
   * rate-limited Gmail user without counting a failed receive.
   */
  enqueue(jobs: readonly CopyJob[], options?: { delaySeconds?: number }): Promise<void>;
}
