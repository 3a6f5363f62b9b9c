import {
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";

/** Receives up to 10 visible jobs (a fresh visibility timeout), as the event source mapping does. */
export async function receiveBatch(sqs: SQSClient, queueUrl: string): Promise<Message[]> {
  const { Messages } = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: 0,
      VisibilityTimeout: 300,
      MessageSystemAttributeNames: ["All"],
    }),
  );
  return Messages ?? [];
}

/** The jobs a queue holds: visible, in flight and delayed. */
export async function queueDepth(sqs: SQSClient, queueUrl: string): Promise<number> {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
      ],
    }),
  );
  return (
    Number(Attributes?.ApproximateNumberOfMessages ?? 0) +
    Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0) +
    Number(Attributes?.ApproximateNumberOfMessagesDelayed ?? 0)
  );
}

/** Batch entries (`Id`, `ReceiptHandle`) for deleting or re-timing `messages`. */
export function receiptEntries(messages: readonly Message[]): { Id: string; ReceiptHandle: string }[] {
  return messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle ?? "" }));
}
