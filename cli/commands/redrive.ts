import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ListMessageMoveTasksCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
  StartMessageMoveTaskCommand,
} from "@aws-sdk/client-sqs";
import { EXIT, UsageError } from "../output";
import { AWS_FLAGS_HELP, awsContext, withAwsErrors } from "./aws-context";

/** Messages moved by one `redrive` unless `--max` says otherwise. */
const DEFAULT_MAX = 1000;
// Long enough to send and delete a batch of 10; a message not moved by then shows in the DLQ again.
const RECEIVE_VISIBILITY_SECONDS = 60;

/** How long `redrive` follows a server-side move task before it reports it as still running. */
const MOVE_TASK_FOLLOW_MS = 5 * 60 * 1000;
const MOVE_TASK_POLL_MS = 2000;

/** What `redrive --json` prints. */
export interface RedriveResult {
  readonly moved: number;
  readonly failed: number;
  /** True when `--max` stopped the move with messages possibly left in the DLQ. */
  readonly stoppedAtMax: boolean;
  /** Only from a server-side move task still running when `redrive` stopped following it. */
  readonly stillMoving?: boolean;
}

/**
 * `pop2gmail redrive --aws --tenant T [--max N] [--json]`: moves the dead-letter queue's copy
 * jobs back to the work queue. Copy jobs are idempotent per mailbox + UIDL, so a job that is sent
 * and then fails to delete (and is moved again later) costs a second look, never a second copy.
 *
 * On SQS it starts a server-side move task (StartMessageMoveTask: SQS moves every message, keeps
 * attributes, and needs no receive/send round trips) and follows it to the end; with `--max`, or
 * on an SQS stand-in that does not implement move tasks (fauxqs), it moves the messages itself.
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
    const from = context.resources.deadLetterQueueUrl;
    const to = context.resources.queueUrl;
    const result = await withAwsErrors(async () =>
      context.values.max === undefined
        ? ((await moveWithTask(context.sqs, from, to)) ?? (await moveMessages(context.sqs, from, to, max)))
        : moveMessages(context.sqs, from, to, max),
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
      if (result.stillMoving === true) {
        process.stdout.write("  SQS is still moving them: run redrive again later to see what is left\n");
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
 * Moves every message with SQS's StartMessageMoveTask and waits (up to `MOVE_TASK_FOLLOW_MS`)
 * for the task to end. Undefined when the endpoint does not know the action (a stand-in), so the
 * caller falls back to `moveMessages`. A task still running at the deadline is reported as
 * stopped: it goes on server-side, and `redrive` again shows what is left.
 */
export async function moveWithTask(
  sqs: SQSClient,
  fromUrl: string,
  toUrl: string,
  options: { followMs?: number; pollMs?: number; sleep?: (ms: number) => Promise<void> } = {},
): Promise<RedriveResult | undefined> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const [sourceArn, destinationArn] = await Promise.all([queueArn(sqs, fromUrl), queueArn(sqs, toUrl)]);
  try {
    await sqs.send(new StartMessageMoveTaskCommand({ SourceArn: sourceArn, DestinationArn: destinationArn }));
  } catch (error) {
    if (isUnknownAction(error)) return undefined;
    throw error;
  }
  const polls = Math.max(
    1,
    Math.ceil((options.followMs ?? MOVE_TASK_FOLLOW_MS) / (options.pollMs ?? MOVE_TASK_POLL_MS)),
  );
  for (let poll = 0; poll < polls; poll++) {
    const { Results: [task] = [] } = await sqs.send(
      new ListMessageMoveTasksCommand({ SourceArn: sourceArn, MaxResults: 1 }),
    );
    const moved = Number(task?.ApproximateNumberOfMessagesMoved ?? 0);
    if (task?.Status === "COMPLETED") return { moved, failed: 0, stoppedAtMax: false };
    if (task?.Status === "FAILED" || task?.Status === "CANCELLED") {
      const left = Number(task.ApproximateNumberOfMessagesToMove ?? 0) - moved;
      return { moved, failed: Math.max(left, 1), stoppedAtMax: false };
    }
    await sleep(options.pollMs ?? MOVE_TASK_POLL_MS);
  }
  return { moved: 0, failed: 0, stoppedAtMax: false, stillMoving: true };
}

async function queueArn(sqs: SQSClient, queueUrl: string): Promise<string> {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["QueueArn"] }),
  );
  const arn = Attributes?.QueueArn;
  if (arn === undefined) throw new Error(`SQS returned no ARN for ${queueUrl}`);
  return arn;
}

/** The SQS endpoint does not implement the action (fauxqs answers `InvalidAction`). */
function isUnknownAction(error: unknown): boolean {
  const name = (error as { name?: string; Code?: string })?.name ?? "";
  return name === "InvalidAction" || name === "UnsupportedOperation" || name.endsWith("#InvalidAction");
}

/**
 * Receive, send, delete, ten at a time, until the source answers empty or `max` were moved:
 * works on every SQS, including the wire stand-ins the tests use (fauxqs has no move tasks).
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
