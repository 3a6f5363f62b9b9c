/**
 * fauxqs 1.9 hands out at most one message per FIFO message group per ReceiveMessage; SQS returns
 * as many messages of one group as it can (up to 10), which is what gives Lambda batches of 10 of
 * one mailbox. The queue benches patch fauxqs's FIFO dequeue to do the same: the loop below is
 * fauxqs's own `dequeueFifo` without the `break` after the first message of a group (and without
 * its spy hook, which the benches do not use).
 */
// fauxqs exports only its app; the queue class is reached by path (the same module instance).
import { SqsQueue } from "../../node_modules/fauxqs/dist/sqs/sqsStore.js";

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
