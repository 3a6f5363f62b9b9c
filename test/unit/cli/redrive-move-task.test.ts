import { SQSClient } from "@aws-sdk/client-sqs";
import { describe, expect, it } from "vitest";
import { moveWithTask } from "../../../cli/commands/redrive";

/**
 * Issue 12: `redrive --aws` uses SQS's own StartMessageMoveTask; a stand-in without it (fauxqs)
 * gets the receive/send path (test/integration/cli-aws.test.ts runs that one over the wire).
 * Here an SQS client answers in process, as SQS would, so no test waits for a real task.
 */

const DLQ_URL = "https://sqs.eu-west-1.amazonaws.com/111122223333/dlq";
const WORK_URL = "https://sqs.eu-west-1.amazonaws.com/111122223333/work";

/** An SQS client whose commands are answered by `answer` (operation name, input) in process. */
function sqsAnswering(answer: (operation: string, input: Record<string, unknown>) => unknown): {
  client: SQSClient;
  calls: { operation: string; input: Record<string, unknown> }[];
} {
  const client = new SQSClient({
    region: "eu-west-1",
    credentials: { accessKeyId: "t", secretAccessKey: "t" },
  });
  const calls: { operation: string; input: Record<string, unknown> }[] = [];
  client.middlewareStack.add(
    (_next, context) => async (args) => {
      const operation = String(context.commandName).replace(/Command$/, "");
      const input = args.input as Record<string, unknown>;
      calls.push({ operation, input });
      return { output: { $metadata: {}, ...(answer(operation, input) as object) }, response: {} } as never;
    },
    { step: "initialize", name: "answerInProcess" },
  );
  return { client, calls };
}

const arnOf = (url: unknown) => `arn:aws:sqs:eu-west-1:111122223333:${String(url).split("/").pop()}`;

describe("redrive on SQS", () => {
  it("starts a move task from the dead-letter queue to the work queue and reports what SQS moved", async () => {
    // Prepare
    let listed = 0;
    const { client, calls } = sqsAnswering((operation, input) => {
      if (operation === "GetQueueAttributes") return { Attributes: { QueueArn: arnOf(input.QueueUrl) } };
      if (operation === "StartMessageMoveTask") return { TaskHandle: "handle-1" };
      listed++;
      return {
        Results: [
          listed < 3
            ? { Status: "RUNNING", ApproximateNumberOfMessagesMoved: listed }
            : {
                Status: "COMPLETED",
                ApproximateNumberOfMessagesMoved: 3,
                ApproximateNumberOfMessagesToMove: 3,
              },
        ],
      };
    });

    // Act
    const result = await moveWithTask(client, DLQ_URL, WORK_URL, { sleep: async () => {} });

    // Assess
    expect(result).toEqual({ moved: 3, failed: 0, stoppedAtMax: false });
    expect(calls.find((c) => c.operation === "StartMessageMoveTask")?.input).toEqual({
      SourceArn: arnOf(DLQ_URL),
      DestinationArn: arnOf(WORK_URL),
    });
    expect(calls.map((c) => c.operation).filter((o) => o === "ReceiveMessage")).toEqual([]);
  });

  it("reports a failed task with the messages it left, and a task still running as such", async () => {
    // Prepare
    const answers = (status: string) =>
      sqsAnswering((operation, input) => {
        if (operation === "GetQueueAttributes") return { Attributes: { QueueArn: arnOf(input.QueueUrl) } };
        if (operation === "StartMessageMoveTask") return { TaskHandle: "h" };
        return {
          Results: [
            { Status: status, ApproximateNumberOfMessagesMoved: 2, ApproximateNumberOfMessagesToMove: 5 },
          ],
        };
      }).client;

    // Act
    const failed = await moveWithTask(answers("FAILED"), DLQ_URL, WORK_URL, { sleep: async () => {} });
    const running = await moveWithTask(answers("RUNNING"), DLQ_URL, WORK_URL, {
      sleep: async () => {},
      followMs: 10,
      pollMs: 5,
    });

    // Assess
    expect(failed).toEqual({ moved: 2, failed: 3, stoppedAtMax: false });
    expect(running).toEqual({ moved: 0, failed: 0, stoppedAtMax: false, stillMoving: true });
  });

  it("answers undefined (use receive/send) when the endpoint does not know move tasks", async () => {
    // Prepare
    const { client } = sqsAnswering((operation, input) => {
      if (operation === "GetQueueAttributes") return { Attributes: { QueueArn: arnOf(input.QueueUrl) } };
      throw Object.assign(new Error("Unknown action: StartMessageMoveTask"), { name: "InvalidAction" });
    });

    // Act
    const result = await moveWithTask(client, DLQ_URL, WORK_URL, { sleep: async () => {} });

    // Assess
    expect(result).toBeUndefined();
  });
});
