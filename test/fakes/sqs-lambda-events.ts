import { randomUUID } from "node:crypto";
import type { Message } from "@aws-sdk/client-sqs";
import type { Context, SQSEvent, SQSRecord } from "aws-lambda";
import { STAND_IN_REGION } from "./aws-stand-ins";

/** A Lambda context for one invocation (a fresh request id: a fresh lease holder). */
export function lambdaContext(functionName: string, remainingMs = 300_000): Context {
  const deadline = Date.now() + remainingMs;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:${STAND_IN_REGION}:000000000000:function:${functionName}`,
    memoryLimitInMB: "512",
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: "test",
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

/** The SQS event Lambda's event source mapping builds from received messages. */
export function sqsEvent(queueArn: string, messages: readonly Message[]): SQSEvent {
  return {
    Records: messages.map(
      (m): SQSRecord => ({
        messageId: m.MessageId ?? randomUUID(),
        receiptHandle: m.ReceiptHandle ?? "",
        body: m.Body ?? "",
        attributes: {
          ApproximateReceiveCount: m.Attributes?.ApproximateReceiveCount ?? "1",
          SentTimestamp: m.Attributes?.SentTimestamp ?? String(Date.now()),
          SenderId: m.Attributes?.SenderId ?? "000000000000",
          ApproximateFirstReceiveTimestamp:
            m.Attributes?.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
          // A FIFO queue's records carry their group, deduplication id and sequence number.
          ...fifoAttributes(m),
        },
        messageAttributes: {},
        md5OfBody: m.MD5OfBody ?? "",
        eventSource: "aws:sqs",
        eventSourceARN: queueArn,
        awsRegion: STAND_IN_REGION,
      }),
    ),
  };
}

function fifoAttributes(m: Message): Partial<SQSRecord["attributes"]> {
  const { MessageGroupId, MessageDeduplicationId, SequenceNumber } = m.Attributes ?? {};
  return {
    ...(MessageGroupId === undefined ? {} : { MessageGroupId }),
    ...(MessageDeduplicationId === undefined ? {} : { MessageDeduplicationId }),
    ...(SequenceNumber === undefined ? {} : { SequenceNumber }),
  };
}
