/**
 * Two patches that make fauxqs 1.9's FIFO queues behave like SQS's where the product relies on it
 * (docs/pipeline.md, "One mailbox, one copier on AWS"), for the queue benches and the fault
 * campaign:
 * - Batches: fauxqs hands out at most one message per FIFO message group per ReceiveMessage; SQS
 *   returns as many messages of one group as it can (up to 10), which is what gives Lambda batches
 *   of 10 of one mailbox. `fauxqsFifoBatchesLikeSqs` is fauxqs's own `dequeueFifo` without the
 *   `break` after the first message of a group (and without its spy hook, unused here).
 * - Deduplication window: fauxqs remembers a deduplication id for 5 minutes of real time; a test
 *   that runs hours of virtual time in seconds (the fault campaign) needs the window on its own
 *   clock, or a listing re-sent 30 virtual minutes later is dropped where SQS takes it.
 *   `fauxqsDedupWindowOn(now)` keeps the ids per queue, 5 minutes of `now`.
 */
// fauxqs exports only its app; the queue class is reached by path (the same module instance).
import { SqsQueue } from "../../node_modules/fauxqs/dist/sqs/sqsStore.js";

/** SQS FIFO's deduplication interval. */
export const FIFO_DEDUP_WINDOW_MS = 5 * 60 * 1000;

interface FauxqsMessage {
  messageId: string;
  body: string;
  md5OfBody: string;
  md5OfMessageAttributes?: string;
  messageAttributes: Record<string, unknown>;
  approximateReceiveCount: number;
  approximateFirstReceiveTimestamp?: number;
}

interface FauxqsQueue {
  attributes: Record<string, string>;
  fifoMessages: Map<string, FauxqsMessage[]>;
  fifoLockedGroups: Map<string, number>;
  inflightMessages: Map<
    string,
    { message: FauxqsMessage; receiptHandle: string; visibilityDeadline: number }
  >;
  processTimers(): void;
  enqueue(message: FauxqsMessage): void;
}

let patched = false;

/** Makes every fauxqs FIFO queue in this process return up to 10 messages of one group per receive. */
export function fauxqsFifoBatchesLikeSqs(): void {
  if (patched) return;
  patched = true;
  const proto = (SqsQueue as unknown as { prototype: Record<string, unknown> }).prototype;
  proto.dequeueFifo = function dequeueFifo(
    this: FauxqsQueue,
    maxCount: number,
    visibilityTimeoutOverride: number | undefined,
    dlqResolver: ((arn: string) => FauxqsQueue | undefined) | undefined,
  ) {
    this.processTimers();
    const visibilityTimeout =
      visibilityTimeoutOverride ?? Number.parseInt(this.attributes.VisibilityTimeout ?? "30", 10);
    let maxReceiveCount = Number.POSITIVE_INFINITY;
    let dlqArn: string | undefined;
    if (this.attributes.RedrivePolicy) {
      const policy = JSON.parse(this.attributes.RedrivePolicy) as {
        maxReceiveCount?: number;
        deadLetterTargetArn?: string;
      };
      maxReceiveCount = policy.maxReceiveCount ?? Number.POSITIVE_INFINITY;
      dlqArn = policy.deadLetterTargetArn;
    }
    const result: Record<string, unknown>[] = [];
    const count = Math.min(maxCount, 10);
    for (const [groupId, groupMsgs] of this.fifoMessages) {
      if (result.length >= count) break;
      if (this.fifoLockedGroups.has(groupId) || groupMsgs.length === 0) continue;
      while (result.length < count && groupMsgs.length > 0) {
        const msg = groupMsgs.shift() as FauxqsMessage;
        msg.approximateReceiveCount++;
        msg.approximateFirstReceiveTimestamp ??= Date.now();
        if (dlqArn && dlqResolver && msg.approximateReceiveCount > maxReceiveCount) {
          const dlq = dlqResolver(dlqArn);
          if (dlq) {
            dlq.enqueue(msg);
            continue;
          }
        }
        const receiptHandle = crypto.randomUUID();
        this.inflightMessages.set(receiptHandle, {
          message: msg,
          receiptHandle,
          visibilityDeadline: Date.now() + visibilityTimeout * 1000,
        });
        result.push({
          MessageId: msg.messageId,
          ReceiptHandle: receiptHandle,
          MD5OfBody: msg.md5OfBody,
          Body: msg.body,
          ...(msg.md5OfMessageAttributes ? { MD5OfMessageAttributes: msg.md5OfMessageAttributes } : {}),
          ...(Object.keys(msg.messageAttributes).length > 0
            ? { MessageAttributes: msg.messageAttributes }
            : {}),
        });
        this.fifoLockedGroups.set(groupId, (this.fifoLockedGroups.get(groupId) ?? 0) + 1);
      }
      if (groupMsgs.length === 0) this.fifoMessages.delete(groupId);
    }
    return result;
  };
}

interface Remembered {
  readonly messageId: string;
  readonly sequenceNumber: string;
  readonly at: number;
}

let dedupClock: (() => number) | undefined;
const dedupIds = new WeakMap<object, Map<string, Remembered>>();

/**
 * Makes every fauxqs FIFO queue in this process remember a deduplication id for 5 minutes of
 * `now` (a virtual clock) instead of real time. Called again, the latest `now` wins.
 */
export function fauxqsDedupWindowOn(now: () => number): void {
  const first = dedupClock === undefined;
  dedupClock = now;
  if (!first) return;
  const proto = (SqsQueue as unknown as { prototype: Record<string, unknown> }).prototype;
  const idsOf = (queue: object): Map<string, Remembered> => {
    let ids = dedupIds.get(queue);
    if (ids === undefined) {
      ids = new Map();
      dedupIds.set(queue, ids);
    }
    return ids;
  };
  const clockNow = () => (dedupClock ?? Date.now)();
  proto.checkDeduplication = function checkDeduplication(this: object, dedupId: string) {
    const seen = idsOf(this).get(dedupId);
    if (seen === undefined || clockNow() - seen.at >= FIFO_DEDUP_WINDOW_MS) return { isDuplicate: false };
    return {
      isDuplicate: true,
      originalMessageId: seen.messageId,
      originalSequenceNumber: seen.sequenceNumber,
    };
  };
  proto.recordDeduplication = function recordDeduplication(
    this: object,
    dedupId: string,
    messageId: string,
    sequenceNumber: string,
  ) {
    idsOf(this).set(dedupId, { messageId, sequenceNumber, at: clockNow() });
  };
}
