import type { CopyJob } from "../core/model";

/** The work queue between the lister and the copiers (SQS in AWS, in-process locally). */
export interface WorkQueue {
  /** Enqueues copy jobs; a job may be delivered more than once, so consumers are idempotent. */
  enqueue(jobs: readonly CopyJob[]): Promise<void>;
}
