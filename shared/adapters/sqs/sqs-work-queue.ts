import {
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import { ConfigError, ServiceRequestError, TransientError } from "../../core/errors";
import type { CopyJob } from "../../core/model";
import type { WorkQueue } from "../../ports/work-queue";
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
}

// SQS accepts at most 10 entries per SendMessageBatch.
const BATCH_SIZE = 10;
const MAX_DELAY_SECONDS = 900;

/**
 * The work queue on SQS: jobs go out in SendMessageBatch calls of 10, a few batches at once.
 * SendMessageBatch can succeed as a call while some entries fail; those entries are sent again
 * (they are not yet on the queue, so this cannot duplicate them) and a sender fault fails at once.
 */
export class SqsWorkQueue implements WorkQueue {
  private readonly client: SQSClient;
  private readonly queueUrl: string;
  private readonly concurrency: number;
  private readonly maxAttempts: number;

  constructor(options: SqsWorkQueueOptions) {
    this.client = options.client;
    this.queueUrl = options.queueUrl;
    this.concurrency = Math.max(options.concurrency ?? 4, 1);
    this.maxAttempts = Math.max(options.maxAttempts ?? 3, 1);
  }

  /** Sends every job (body: JSON of the `CopyJob`), postponed by `delaySeconds` when given. */
  async enqueue(jobs: readonly CopyJob[], options: { delaySeconds?: number } = {}): Promise<void> {
    const delaySeconds = options.delaySeconds ?? 0;
    if (!Number.isInteger(delaySeconds) || delaySeconds < 0 || delaySeconds > MAX_DELAY_SECONDS) {
      throw new ConfigError("delaySeconds", `delaySeconds must be an integer 0-${MAX_DELAY_SECONDS}`);
    }
    const batches: SendMessageBatchRequestEntry[][] = [];
    for (let start = 0; start < jobs.length; start += BATCH_SIZE) {
      batches.push(
        jobs.slice(start, start + BATCH_SIZE).map((job, index) => ({
          Id: String(index),
          MessageBody: serializeCopyJob(job),
          ...(delaySeconds > 0 ? { DelaySeconds: delaySeconds } : {}),
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
