import { Duration, Validations } from "aws-cdk-lib";
import type { IKey } from "aws-cdk-lib/aws-kms";
import { DeduplicationScope, FifoThroughputLimit, Queue, QueueEncryption } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { MAX_RECEIVE_COUNT, VISIBILITY_TIMEOUT_FACTOR } from "../function-settings";

/**
 * The copy-job queue and its dead-letter queue, and the on-failure destination of delete-copied.
 * The work queue is FIFO with one message group per mailbox (docs/lambda-handlers.md, "One
 * mailbox, one copier"): Lambda never runs two batches of one mailbox at once, so no copier
 * bounces off another's session lease, while different mailboxes run in parallel. Deduplication
 * and throughput are per message group (high-throughput FIFO). Order within a group does not
 * matter to the copier; copies stay idempotent per mailbox + ledger id. FIFO has no per-message
 * delay: a delayed job carries its due time and the copier hands it back until then. A FIFO
 * queue's dead-letter queue must be FIFO too; delete-copied's on-failure destination stays
 * standard (Lambda destinations take no FIFO queue).
 */
/**
 * How long SQS may reuse a data key of the tenant key before asking KMS again (default 5 min).
 * An hour: a copy job's send and receive no longer cost KMS requests per message (at 50 messages a
 * day they opened a window each, bench/README.md "Cost after the keeper-run polls"), and a
 * disabled tenant key still stops these queues within the hour (docs/deploy.md section 7).
 */
export const QUEUE_DATA_KEY_REUSE = Duration.hours(1);

export class WorkQueues extends Construct {
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;
  /** Where Lambda puts a delete-copied invocation that failed all its attempts (its on-failure destination). */
  readonly failedDeletes: Queue;
  /**
   * The poll chains' delayed poll messages (docs/lambda-handlers.md "Sub-minute polling"); only
   * when some mailbox has `pollSeconds` below 60.
   */
  readonly pollQueue: Queue | undefined;

  constructor(
    scope: Construct,
    id: string,
    props: { key: IKey; consumerTimeout: Duration; pollerTimeout: Duration; withPollQueue: boolean },
  ) {
    super(scope, id);
    this.deadLetterQueue = new Queue(this, "DeadLetters", {
      fifo: true,
      encryption: QueueEncryption.KMS,
      encryptionMasterKey: props.key,
      dataKeyReuse: QUEUE_DATA_KEY_REUSE,
      enforceSSL: true,
      // The longest SQS allows: time for an operator to look at a failed job and replay it.
      retentionPeriod: Duration.days(14),
    });
    this.queue = new Queue(this, "Work", {
      fifo: true,
      contentBasedDeduplication: false,
      deduplicationScope: DeduplicationScope.MESSAGE_GROUP,
      fifoThroughputLimit: FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
      encryption: QueueEncryption.KMS,
      encryptionMasterKey: props.key,
      dataKeyReuse: QUEUE_DATA_KEY_REUSE,
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
      dataKeyReuse: QUEUE_DATA_KEY_REUSE,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    // Only for a tenant with a mailbox polled more often than once a minute: the keeper's own
    // tick polls the others (docs/pipeline.md "Poll chains on AWS").
    this.pollQueue = props.withPollQueue ? this.createPollQueue(props.pollerTimeout) : undefined;
    Validations.of(this.failedDeletes).acknowledge({
      id: "AwsSolutions-SQS3",
      reason:
        "This queue is itself where failures end up (delete-copied's failed invocations); nothing consumes it, so it needs no dead-letter queue of its own; an alarm tells a person.",
    });
  }

  private createPollQueue(pollerTimeout: Duration): Queue {
    // Standard, not FIFO: only standard queues have per-message timers (DelaySeconds), which
    // are the poll interval.
    const queue = new Queue(this, "Poll", {
      // SQS-managed keys, not the tenant key: a poll message holds only `{mailboxId, chain,
      // seq}`, and with a KMS key every poll's send and receive would cost KMS data-key
      // requests (docs/deploy.md section 7).
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // As the work queue: a batch Lambda retries after a throttle is not handed to a second
      // poller meanwhile. A crashed poll is resumed sooner by the keeper (its pollUntil passed).
      visibilityTimeout: Duration.seconds(pollerTimeout.toSeconds() * VISIBILITY_TIMEOUT_FACTOR),
      // A poll message older than an hour is stale: the keeper restarted its chain long ago.
      retentionPeriod: Duration.hours(1),
    });
    Validations.of(queue).acknowledge({
      id: "AwsSolutions-SQS3",
      reason:
        "A poll message is a token of its mailbox's poll chain, not work: one that cannot be handled is replaced by the keeper's restart of the chain within two minutes, and a dead-letter queue would only collect stale tokens no one may replay.",
    });
    return queue;
  }
}
