import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { SQSBatchResponse } from "aws-lambda";
import { COPY_BATCH_SIZE } from "../../../infra/function-settings";
import { notBeforeOf } from "../../../shared/adapters/sqs/parse-copy-job";
import { queueDepth, receiptEntries } from "../../fakes/sqs-queue-driver";

/** What the FIFO event source saw in a run (the report's queue line). */
export interface FifoFigures {
  readonly queueType: "FIFO";
  /** Batches handed to the copier. */
  readonly batches: number;
  /** Deliveries the copier held back because their `notBefore` was ahead (its `holdBack` went through). */
  readonly heldBack: number;
  /** Of those, made visible again by the event source once due (the rest came back another way). */
  readonly releasedWhenDue: number;
  /** Deliveries that came back only when the visibility timeout ran out (a failed record, a lost acknowledgement, a crash). */
  readonly visibilityTimeouts: number;
  /** Virtual time the event source moved the clock to bring a waiting delivery back, in total. */
  readonly waitedMs: number;
  /** Jobs the queue moved to the dead-letter queue (received more than `maxReceiveCount` times). */
  readonly deadLettered: number;
}

/** A delivery the copier has or had: in an invocation (`visibleAt` undefined) or waiting to come back. */
interface Delivery {
  readonly message: Message;
  readonly group: string;
  readonly receivedAt: number;
  visibleAt: number | undefined;
  held: boolean;
}

/** The rig's virtual clock. */
export interface MovableClock {
  now(): number;
  advance(ms: number): void;
}

/**
 * Lambda's SQS event source on the stack's FIFO work queue (docs/pipeline.md, "One mailbox, one
 * copier on AWS"), in the campaign's virtual time: batches of up to `COPY_BATCH_SIZE`, one batch of
 * a message group in flight at a time (fauxqs locks the group; this checks it), acknowledged
 * records deleted, and a failed record left invisible, which holds its group: until the copier's
 * hold-back ends (a job early for its `notBefore`) or, for any other failure, until the visibility
 * timeout runs out. Nothing waits in real time: when no delivery is visible, `releaseNext` moves
 * the clock to the earliest that comes back and makes it visible (SQS puts it at the front of its
 * group). Fauxqs's own timers stay far away (the receive's visibility is the stack's, in real
 * seconds; a hold-back's real delay is shorter than the virtual time the rig moves meanwhile).
 */
export class FifoEventSource {
  private readonly deliveries = new Map<string, Delivery>();
  private batches = 0;
  private heldBack = 0;
  private releasedWhenDue = 0;
  private visibilityTimeouts = 0;
  private waitedMs = 0;

  constructor(
    private readonly sqs: SQSClient,
    readonly queueUrl: string,
    private readonly deadLetterUrl: string,
    private readonly clock: MovableClock,
    private readonly visibilityTimeoutSeconds: number,
    /** An invariant of FIFO delivery broken: fails the run. */
    private readonly breach: (text: string) => void,
  ) {}

  /**
   * Receives the next batch. `overlap` marks the campaign's own fault (a batch redelivered while
   * its first copier still runs), the one time two batches of a group may be in flight.
   */
  async receive(overlap = false): Promise<Message[]> {
    const { Messages = [] } = await this.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: this.queueUrl,
        MaxNumberOfMessages: COPY_BATCH_SIZE,
        WaitTimeSeconds: 0,
        VisibilityTimeout: this.visibilityTimeoutSeconds,
        MessageSystemAttributeNames: ["All"],
      }),
    );
    if (Messages.length === 0) return [];
    this.batches++;
    const ids = new Set(Messages.map((m) => m.MessageId));
    // A delivery fauxqs brought back on its own timer (a hold-back's real delay ran out first).
    for (const [receipt, delivery] of this.deliveries)
      if (ids.has(delivery.message.MessageId)) this.deliveries.delete(receipt);
    const groups = new Set(Messages.map(groupOf));
    if (!overlap) {
      for (const delivery of this.deliveries.values()) {
        if (groups.has(delivery.group)) {
          this.breach(`two batches of message group ${delivery.group} in flight at once`);
          break;
        }
      }
    }
    const now = this.clock.now();
    for (const message of Messages) {
      this.deliveries.set(message.ReceiptHandle ?? "", {
        message,
        group: groupOf(message),
        receivedAt: now,
        visibleAt: undefined,
        held: false,
      });
    }
    return Messages;
  }

  /** Deliveries held back so far. */
  get heldBackSoFar(): number {
    return this.heldBack;
  }

  /** The copier's hold-back went through: these deliveries come back after `delaySeconds`. */
  heldBackBy(receipts: readonly string[], delaySeconds: number): void {
    const at = this.clock.now() + delaySeconds * 1000;
    for (const receipt of receipts) {
      const delivery = this.deliveries.get(receipt);
      if (delivery === undefined) continue;
      delivery.visibleAt = at;
      delivery.held = true;
      this.heldBack++;
    }
  }

  /**
   * An acknowledged job the copier received more than a second before its `notBefore`
   * (`invokedAt`: the clock as the invocation began) ran too early: a breach.
   */
  checkNotBefore(messages: readonly Message[], response: SQSBatchResponse, invokedAt: number): void {
    const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
    for (const message of messages) {
      if (failed.has(message.MessageId ?? "")) continue;
      const early = (notBeforeOf(message.Body ?? "") ?? invokedAt) - invokedAt;
      if (early >= 1000)
        this.breach(`${uidlOf(message)}: a job was run ${Math.round(early / 1000)} s before its notBefore`);
    }
  }

  /**
   * A copier's answer, as the event source takes it: acknowledged records are deleted, failed
   * ones wait (see the class comment).
   */
  async settle(messages: readonly Message[], response: SQSBatchResponse): Promise<void> {
    const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
    const done = messages.filter((m) => !failed.has(m.MessageId ?? ""));
    if (done.length > 0) {
      // A receipt handle made stale by a redelivery may fail to delete: SQS then delivers again.
      await this.sqs
        .send(new DeleteMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: receiptEntries(done) }))
        .catch(() => undefined);
      for (const message of done) this.deliveries.delete(message.ReceiptHandle ?? "");
    }
    for (const message of messages) {
      if (!failed.has(message.MessageId ?? "")) continue;
      const delivery = this.deliveries.get(message.ReceiptHandle ?? "");
      if (delivery === undefined || delivery.held) continue;
      delivery.visibleAt = delivery.receivedAt + this.visibilityTimeoutSeconds * 1000;
    }
  }

  /**
   * Brings back the deliveries whose time has come; when none has, first moves the clock to the
   * earliest. False when nothing waits (everything is visible, deleted or in an invocation).
   */
  async releaseNext(): Promise<boolean> {
    const waiting = [...this.deliveries.entries()].filter(([, d]) => d.visibleAt !== undefined);
    if (waiting.length === 0) return false;
    const earliest = Math.min(...waiting.map(([, d]) => d.visibleAt ?? Number.POSITIVE_INFINITY));
    const ahead = earliest - this.clock.now();
    if (ahead > 0) {
      this.clock.advance(ahead);
      this.waitedMs += ahead;
    }
    const now = this.clock.now();
    const due = waiting.filter(([, d]) => (d.visibleAt ?? Number.POSITIVE_INFINITY) <= now);
    for (const [receipt, delivery] of due) {
      this.deliveries.delete(receipt);
      if (delivery.held) this.releasedWhenDue++;
      else this.visibilityTimeouts++;
    }
    await this.makeVisible(due.map(([, d]) => d.message));
    return true;
  }

  /** The campaign's fault: the visibility of a batch in an invocation runs out at once. */
  async expireNow(messages: readonly Message[]): Promise<void> {
    for (const message of messages) this.deliveries.delete(message.ReceiptHandle ?? "");
    await this.makeVisible(messages);
  }

  /** Jobs on the work queue: visible, in flight (invocations and waiting deliveries) and delayed. */
  depth(): Promise<number> {
    return queueDepth(this.sqs, this.queueUrl);
  }

  async figures(): Promise<FifoFigures> {
    return {
      queueType: "FIFO",
      batches: this.batches,
      heldBack: this.heldBack,
      releasedWhenDue: this.releasedWhenDue,
      visibilityTimeouts: this.visibilityTimeouts,
      waitedMs: this.waitedMs,
      deadLettered: await queueDepth(this.sqs, this.deadLetterUrl),
    };
  }

  private async makeVisible(messages: readonly Message[]): Promise<void> {
    for (let start = 0; start < messages.length; start += 10) {
      const chunk = messages.slice(start, start + 10);
      await this.sqs
        .send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: this.queueUrl,
            Entries: receiptEntries(chunk).map((e) => ({ ...e, VisibilityTimeout: 0 })),
          }),
        )
        .catch(() => undefined);
    }
  }
}

function groupOf(message: Message): string {
  return message.Attributes?.MessageGroupId ?? "(no group)";
}

/** The UIDL of a copy job's SQS body, or "?" (the timeline names messages by UIDL). */
export function uidlOf(message: Message): string {
  try {
    const job = JSON.parse(message.Body ?? "") as { uidl?: unknown };
    return typeof job.uidl === "string" ? job.uidl : "?";
  } catch {
    return "?";
  }
}
