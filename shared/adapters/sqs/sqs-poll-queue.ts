import { GetQueueAttributesCommand, SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import * as z from "zod";
import { ConfigError, ProtocolError } from "../../core/errors";
import { MAX_POLL_DELAY_SECONDS } from "../../core/poll-chain";
import type { PollMessage, PollQueue } from "../../ports/poll-chains";
import { mapAwsError } from "../aws/map-aws-error";

const pollMessageSchema = z.object({
  mailboxId: z.string().min(1),
  chain: z.string().min(1),
  seq: z.number().int().nonnegative(),
});

/** Parses a poll queue message body; a body that is none throws a non-retryable `ProtocolError`. */
export function parsePollMessage(body: string): PollMessage {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (cause) {
    throw new ProtocolError("queue", "poll queue message body is not JSON", { cause });
  }
  const parsed = pollMessageSchema.safeParse(json);
  if (!parsed.success) {
    throw new ProtocolError("queue", 'poll queue message body must be {"mailboxId", "chain", "seq"}', {
      cause: parsed.error,
    });
  }
  return parsed.data;
}

/**
 * The tenant's poll queue on SQS (standard: per-message timers, which FIFO queues lack). One
 * SendMessage per poll, its `DelaySeconds` the wait until the next poll (docs/lambda-handlers.md
 * "Sub-minute polling").
 */
export class SqsPollQueue implements PollQueue {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async send(message: PollMessage, delaySeconds: number): Promise<void> {
    if (!Number.isInteger(delaySeconds) || delaySeconds < 0 || delaySeconds > MAX_POLL_DELAY_SECONDS) {
      throw new ConfigError("delaySeconds", `delaySeconds must be an integer 0-${MAX_POLL_DELAY_SECONDS}`);
    }
    const { mailboxId, chain, seq } = message;
    try {
      await this.client.send(
        new SendMessageCommand({
          QueueUrl: this.queueUrl,
          MessageBody: JSON.stringify({ mailboxId, chain, seq }),
          DelaySeconds: delaySeconds,
        }),
      );
    } catch (error) {
      throw mapAwsError(error, { service: "queue", action: "sqs:SendMessage", resource: this.queueUrl });
    }
  }
}

/** `ApproximateNumberOfMessages` of a queue: one GetQueueAttributes call. */
export async function visibleMessages(client: SQSClient, queueUrl: string): Promise<number> {
  try {
    const { Attributes } = await client.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["ApproximateNumberOfMessages"] }),
    );
    return Number(Attributes?.ApproximateNumberOfMessages ?? 0);
  } catch (error) {
    throw mapAwsError(error, { service: "queue", action: "sqs:GetQueueAttributes", resource: queueUrl });
  }
}
