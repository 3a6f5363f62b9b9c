import { createHash, randomUUID } from "node:crypto";
import {
  ChangeMessageVisibilityBatchCommand,
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import { ConfigError, ServiceRequestError, TransientError } from "../../core/errors";
import type { CopyJob } from "../../core/model";
import type { EnqueueOptions, WorkQueue } from "../../ports/work-queue";
import { mapAwsError } from "../aws/map-aws-error";
import { serializeCopyJob } from "./parse-copy-job";

/** How an `SqsWorkQueue` is built: an SDK client and the queue's URL. */
export interface SqsWorkQueueOptions {
  readonly client: SQSClient;
  readonly queueUrl: string;
  /** Batches in flight at once. Default 4. */
  readonly concurrency?: number;
  /** Sends of one batch before its still-failing entries fail the call. Default 3. */
  readonly maxAttempts?: number;
  /** The time a FIFO job's `notBefore` counts from. Default `Date.now`. */
  readonly now?: () => number;
}

// SQS accepts at most 10 entries per SendMessageBatch.
const BATCH_SIZE = 10;
const MAX_DELAY_SECONDS = 900;

/** Whether a queue URL names a FIFO queue (SQS requires FIFO queue names to end in `.fifo`). */
export function isFifoQueueUrl(queueUrl: string): boolean {
  return queueUrl.endsWith(".fifo");
}

/**
 * The work queue on SQS: jobs go out in SendMessageBatch calls of 10, a few batches at once.
 * SendMessageBatch can succeed as a call while some entries fail; those entries are sent again
 * (they are not yet on the queue, so this cannot duplicate them) and a sender fault fails at once.
 *
 * On a FIFO queue (the stack's; docs/lambda-handlers.md "One mailbox, one copier") every job goes
 * in its mailbox's message group, so Lambda never runs two batches of one mailbox at once. The
 * deduplication id of a first send is the listing's own (mailbox, ledger id, listedAt): a lister
 * that sends the same listing twice within SQS's 5-minute window sends it once. A re-send adds a
 * nonce, so it is never taken for the delivery it replaces. FIFO has no per-message delay: a
 * delayed job goes out at once with `notBefore` in its body, and the copier that receives it early
 * hands it back with `holdBack` (its group waits meanwhile, which is what a delay of a mailbox's
 * jobs means). The copier uses the same call to bring a failed delivery back after a short backoff
 * instead of the visibility timeout (docs/pipeline.md, "One mailbox, one copier on AWS").
 */
export class SqsWorkQueue implements WorkQueue {
  private readonly client: SQSClient;
  private readonly queueUrl: string;
  private readonly concurrency: number;
  private readonly maxAttempts: number;
  private readonly fifo: boolean;
  private readonly now: () => number;
  /** Present on a FIFO queue only (see the class comment). */
  readonly holdBack?: (receipts: readonly string[], delaySeconds: number) => Promise<void>;

  constructor(options: SqsWorkQueueOptions) {
    this.client = options.client;
    this.queueUrl = options.queueUrl;
    this.concurrency = Math.max(options.concurrency ?? 4, 1);
    this.maxAttempts = Math.max(options.maxAttempts ?? 3, 1);
    this.fifo = isFifoQueueUrl(options.queueUrl);
    this.now = options.now ?? Date.now;
    if (this.fifo) this.holdBack = (receipts, delaySeconds) => this.changeVisibility(receipts, delaySeconds);
  }

  /** Sends every job (body: JSON of the `CopyJob`), postponed by `delaySeconds` when given. */
  async enqueue(jobs: readonly CopyJob[], options: EnqueueOptions = {}): Promise<void> {
    const delaySeconds = options.delaySeconds ?? 0;
    if (!Number.isInteger(delaySeconds) || delaySeconds < 0 || delaySeconds > MAX_DELAY_SECONDS) {
      throw new ConfigError("delaySeconds", `delaySeconds must be an integer 0-${MAX_DELAY_SECONDS}`);
    }
    const resend = options.resend === true;
    const notBefore = this.fifo && delaySeconds > 0 ? this.now() + delaySeconds * 1000 : undefined;
    const batches: SendMessageBatchRequestEntry[][] = [];
    for (let start = 0; start < jobs.length; start += BATCH_SIZE) {
      batches.push(
        jobs.slice(start, start + BATCH_SIZE).map((job, index) => ({
          Id: String(index),
          MessageBody: serializeCopyJob(job, notBefore),
          ...(delaySeconds > 0 && !this.fifo ? { DelaySeconds: delaySeconds } : {}),
          ...(this.fifo
            ? { MessageGroupId: job.mailboxId, MessageDeduplicationId: deduplicationId(job, resend) }
            : {}),
        })),
      );
    }
    let next = 0;
    const worker = async () => {
      while (next < batches.length) {
        const batch = batches[next++];
        if (batch !== undefined) await this.sendBatch(batch);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, batches.length) }, worker));
  }

  /** The deliveries with these receipt handles become visible again after `delaySeconds`. */
  private async changeVisibility(receipts: readonly string[], delaySeconds: number): Promise<void> {
    const seconds = Math.min(Math.max(Math.ceil(delaySeconds), 0), MAX_DELAY_SECONDS);
    for (let start = 0; start < receipts.length; start += BATCH_SIZE) {
      const entries = receipts.slice(start, start + BATCH_SIZE).map((receipt, index) => ({
        Id: String(index),
        ReceiptHandle: receipt,
        VisibilityTimeout: seconds,
      }));
      let failed: { Code?: string | undefined }[];
      try {
        const result = await this.client.send(
          new ChangeMessageVisibilityBatchCommand({ QueueUrl: this.queueUrl, Entries: entries }),
        );
        failed = result.Failed ?? [];
      } catch (error) {
        throw mapAwsError(error, {
          service: "queue",
          action: "sqs:ChangeMessageVisibility",
          resource: this.queueUrl,
        });
      }
      if (failed.length > 0) {
        throw new TransientError(
          "queue",
          `${failed.length} job(s) not held back on ${this.queueUrl}: ${failed[0]?.Code ?? "failed"}`,
        );
      }
    }
  }

  private async sendBatch(entries: SendMessageBatchRequestEntry[]): Promise<void> {
    let pending = entries;
    for (let attempt = 1; pending.length > 0; attempt++) {
      let failed: { Id?: string | undefined; SenderFault?: boolean | undefined; Code?: string | undefined }[];
      try {
        const result = await this.client.send(
          new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: pending }),
        );
        failed = result.Failed ?? [];
      } catch (error) {
        throw mapAwsError(error, { service: "queue", action: "sqs:SendMessage", resource: this.queueUrl });
      }
      const senderFault = failed.find((entry) => entry.SenderFault === true);
      if (senderFault !== undefined) {
        throw new ServiceRequestError(
          "queue",
          senderFault.Code ?? "SenderFault",
          `SQS refused a job on ${this.queueUrl}: ${senderFault.Code ?? "sender fault"}`,
        );
      }
      const failedIds = new Set(failed.map((entry) => entry.Id));
      pending = pending.filter((entry) => failedIds.has(entry.Id));
      if (pending.length > 0 && attempt >= this.maxAttempts) {
        throw new TransientError(
          "queue",
          `${pending.length} job(s) still failing after ${attempt} SendMessageBatch attempts on ${this.queueUrl}`,
        );
      }
    }
  }
}

/**
 * A FIFO deduplication id (at most 128 characters): a hash of the listing, plus a nonce for a
 * re-send. Hashed because a ledger id may hold characters SQS does not take there.
 */
function deduplicationId(job: CopyJob, resend: boolean): string {
  const listing = [job.tenant, job.mailboxId, job.uidl, String(job.listedAt)].join("\u0000");
  const nonce = resend ? `\u0000${randomUUID()}` : "";
  return createHash("sha256")
    .update(listing + nonce)
    .digest("hex");
}
