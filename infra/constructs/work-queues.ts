import { Duration, Validations } from "aws-cdk-lib";
import type { IKey } from "aws-cdk-lib/aws-kms";
import { Queue, QueueEncryption } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { MAX_RECEIVE_COUNT, VISIBILITY_TIMEOUT_FACTOR } from "../function-settings";

/**
 * The copy-job queue and its dead-letter queue, and the on-failure destination of delete-copied. Standard, not FIFO: busy or rate-limited jobs are
 * re-sent with a per-message DelaySeconds, which FIFO queues do not support; copies are
 * idempotent per mailbox + UIDL, so at-least-once delivery is fine.
 */
export class WorkQueues extends Construct {
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;
  /** Where Lambda puts a delete-copied invocation that failed all its attempts (its on-failure destination). */
  readonly failedDeletes: Queue;

  constructor(scope: Construct, id: string, props: { key: IKey; consumerTimeout: Duration }) {
    super(scope, id);
    this.deadLetterQueue = new Queue(this, "DeadLetters", {
      encryption: QueueEncryption.KMS,
      encryptionMasterKey: props.key,
      enforceSSL: true,
      // The longest SQS allows: time for an operator to look at a failed job and replay it.
      retentionPeriod: Duration.days(14),
    });
    this.queue = new Queue(this, "Work", {
      encryption: QueueEncryption.KMS,
      encryptionMasterKey: props.key,
      enforceSSL: true,
      // AWS: at least 6x the consumer's timeout, so a batch that Lambda retries after a
      // throttle or a timeout is not delivered to a second copier meanwhile.
      visibilityTimeout: Duration.seconds(props.consumerTimeout.toSeconds() * VISIBILITY_TIMEOUT_FACTOR),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: MAX_RECEIVE_COUNT },
    });
    this.failedDeletes = new Queue(this, "FailedDeletes", {
      encryption: QueueEncryption.KMS,
      encryptionMasterKey: props.key,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.failedDeletes).acknowledge({
      id: "AwsSolutions-SQS3",
      reason:
        "This queue is itself where failures end up (delete-copied's failed invocations); nothing consumes it, so it needs no dead-letter queue of its own; an alarm tells a person.",
    });
  }
}
