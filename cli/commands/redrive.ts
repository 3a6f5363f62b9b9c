import {
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import { EXIT, UsageError } from "../output";
import { AWS_FLAGS_HELP, awsContext, withAwsErrors } from "./aws-context";

/** Messages moved by one `redrive` unless `--max` says otherwise. */
const DEFAULT_MAX = 1000;
// Long enough to send and delete a batch of 10; a message not moved by then shows in the DLQ again.
const RECEIVE_VISIBILITY_SECONDS = 60;

/** What `redrive --json` prints. */
export interface RedriveResult {
  readonly moved: number;
  readonly failed: number;
  /** True when `--max` stopped the move with messages possibly left in the DLQ. */
  readonly stoppedAtMax: boolean;
}

/**
 * `pop2gmail redrive --aws --tenant T [--max N] [--json]`: moves the dead-letter queue's copy
 * jobs back to the work queue. Copy jobs are idempotent per mailbox + UIDL, so a job that is sent
 * and then fails to delete (and is moved again later) costs a second look, never a second copy.
 */
export async function redriveCommand(args: readonly string[]): Promise<number> {
  if (!args.includes("--aws")) {
    throw new UsageError(
      "redrive works on a deployed tenant's dead-letter queue",
      `Run \`pop2gmail redrive --aws --tenant <tenant>\` (${AWS_FLAGS_HELP}); the local runtime has no dead-letter queue: use \`quarantine retry\`.`,
    );
  }
  const context = await awsContext("redrive", args, ["queueUrl", "deadLetterQueueUrl"], {
    max: { type: "string" },
  });
  try {
    const max = context.values.max === undefined ? DEFAULT_MAX : Number(context.values.max);
    if (!Number.isInteger(max) || max < 1)
      throw new UsageError("--max needs a whole number of messages, 1 or more");
    const result = await withAwsErrors(() =>
      moveMessages(context.sqs, context.resources.deadLetterQueueUrl, context.resources.queueUrl, max),
    );
    if (context.values.json) {
      process.stdout.write(`${JSON.stringify({ action: "redrive", ...result }, null, 2)}\n`);
    } else {
      process.stdout.write(`moved ${result.moved} message(s) from the dead-letter queue to the work queue\n`);
      if (result.failed > 0) {
        process.stdout.write(
          `  ${result.failed} could not be sent; they stay in the dead-letter queue: run redrive again\n`,
        );
      }
      if (result.stoppedAtMax)
        process.stdout.write(`  stopped at --max ${max}: run redrive again for the rest\n`);
    }
    return result.failed > 0 ? EXIT.failure : EXIT.ok;
  } finally {
    context.close();
  }
}

/**
 * Receive, send, delete, ten at a time, until the source answers empty or `max` were moved.
 * SQS's own StartMessageMoveTask does this server-side, but the wire stand-ins the tests use
 * (fauxqs) do not implement it; receive/send/delete works on every SQS.
 */
export async function moveMessages(
  sqs: SQSClient,
  fromUrl: string,
  toUrl: string,
  max: number,
): Promise<RedriveResult> {
  let moved = 0;
  let failed = 0;
  while (moved + failed < max) {
    const { Messages: messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: fromUrl,
        MaxNumberOfMessages: Math.min(10, max - moved - failed),
        // A short wait: a plain short poll samples only some SQS servers and may answer empty early.
        WaitTimeSeconds: 1,
        VisibilityTimeout: RECEIVE_VISIBILITY_SECONDS,
        MessageAttributeNames: ["All"],
      }),
    );
    if (messages.length === 0) return { moved, failed, stoppedAtMax: false };
    const sent = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: toUrl,
        Entries: messages.map((m, i) => ({
          Id: String(i),
          MessageBody: m.Body ?? "",
          ...(m.MessageAttributes === undefined ? {} : { MessageAttributes: m.MessageAttributes }),
        })),
      }),
    );
    const sentIds = new Set((sent.Successful ?? []).map((s) => s.Id));
    const toDelete = messages
      .map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle ?? "" }))
      .filter((entry) => sentIds.has(entry.Id));
    if (toDelete.length > 0) {
      await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: fromUrl, Entries: toDelete }));
    }
    moved += toDelete.length;
    failed += messages.length - toDelete.length;
  }
  return { moved, failed, stoppedAtMax: true };
}
