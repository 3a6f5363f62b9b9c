import { GetQueueAttributesCommand, type Message, ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import {
  FUNCTION_SETTINGS,
  MAX_RECEIVE_COUNT,
  VISIBILITY_TIMEOUT_FACTOR,
} from "../../infra/function-settings";
import { makeCopyMessageHandler } from "../../shared/adapters/lambda/copy-message-handler";
import type { LambdaDeps } from "../../shared/adapters/lambda/lambda-deps";
import { ENV_NAMES } from "../../shared/config/env";
import { TransientError } from "../../shared/core/errors";
import { AwsCallRecorder } from "../fakes/aws-call-recorder";
import { type FauxqsStandIn, STAND_IN_REGION, startFauxqsStandIn, uniqueName } from "../fakes/aws-stand-ins";
import { fauxqsFifoBatchesLikeSqs } from "../fakes/fauxqs-fifo";
import { lambdaContext, sqsEvent } from "../fakes/sqs-lambda-events";
import { makeMessage } from "../unit/core/support/harness";
import { HandlerFixture, MAILBOX_A, TENANT, tenantEnv } from "./handler-harness";
import { depsWithRealPorts } from "./support/copier-on-stand-ins";

/**
 * The copier on the stack's FIFO work queue (fauxqs, patched to batch a group like SQS), its
 * queue the real `SqsWorkQueue`, the other ports in memory. SQS's clock is fauxqs's `Date.now`,
 * which the tests move (only `Date` is faked: nothing waits for real time). The copier's SQS calls
 * are recorded for the IAM proof (test/infra/iam-proof.test.ts), which proves its role allows them.
 */

const VISIBILITY_SECONDS = FUNCTION_SETTINGS.copyMessage.timeout.toSeconds() * VISIBILITY_TIMEOUT_FACTOR;

let fauxqs: FauxqsStandIn;
const awsCalls = new AwsCallRecorder();

beforeAll(async () => {
  fauxqsFifoBatchesLikeSqs();
  fauxqs = await startFauxqsStandIn();
});

afterAll(async () => {
  awsCalls.writeTo("handler-copy-message-fifo", { tenant: TENANT, secrets: { pop3: [], google: [] } });
  await fauxqs.stop();
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});

interface FifoRig {
  readonly f: HandlerFixture;
  readonly deps: LambdaDeps;
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly deadLetterUrl: string;
}

/** The work queue as infra/constructs/work-queues.ts makes it, and the copier's deps on it. */
async function fifoRig(): Promise<FifoRig> {
  const queueName = `${uniqueName("work")}.fifo`;
  const deadName = `${uniqueName("work-dead-letters")}.fifo`;
  const arnOf = (name: string) => `arn:aws:sqs:${STAND_IN_REGION}:000000000000:${name}`;
  const deadLetterUrl = await fauxqs.createQueue(deadName, { FifoQueue: "true" });
  const queueUrl = await fauxqs.createQueue(queueName, {
    FifoQueue: "true",
    ContentBasedDeduplication: "false",
    DeduplicationScope: "messageGroup",
    FifoThroughputLimit: "perMessageGroupId",
    VisibilityTimeout: String(VISIBILITY_SECONDS),
    RedrivePolicy: JSON.stringify({
      deadLetterTargetArn: arnOf(deadName),
      maxReceiveCount: MAX_RECEIVE_COUNT,
    }),
  });
  const f = new HandlerFixture();
  const env = {
    ...tenantEnv(),
    [ENV_NAMES.workQueueUrl]: queueUrl,
    AWS_REGION: STAND_IN_REGION,
    AWS_ENDPOINT_URL_SQS: fauxqs.endpoint,
  };
  // The real SQS work queue; every other port in memory.
  const deps = depsWithRealPorts(f, env, ["queue"]);
  awsCalls.attach(deps.clients.sqs, "sqs");
  return { f, deps, queueUrl, queueArn: arnOf(queueName), deadLetterUrl };
}

/** What Lambda's event source does: a receive with the queue's own visibility timeout. */
async function receive(rig: FifoRig): Promise<Message[]> {
  const { Messages } = await fauxqs.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: rig.queueUrl,
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: 0,
      MessageSystemAttributeNames: ["All"],
    }),
  );
  return Messages ?? [];
}

/** One copy invocation whose POP3 open fails with an unexpected error; returns the failed ids. */
async function failingInvocation(rig: FifoRig, messages: readonly Message[]): Promise<string[]> {
  rig.f.pop3.source(MAILBOX_A).failNextOpen(new TransientError("pop3", "connection reset by peer"));
  const copy = makeCopyMessageHandler(rig.deps);
  const response = await awsCalls.within("copy-message", () =>
    copy(sqsEvent(rig.queueArn, messages), lambdaContext("copy-message")),
  );
  return response.batchItemFailures.map((f) => f.itemIdentifier);
}

async function deadLetters(rig: FifoRig): Promise<number> {
  const { Attributes } = await fauxqs.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: rig.deadLetterUrl,
      AttributeNames: ["ApproximateNumberOfMessages"],
    }),
  );
  return Number(Attributes?.ApproximateNumberOfMessages ?? 0);
}

describe("copy-message on the FIFO work queue: a failed record (docs/pipeline.md, one mailbox one copier)", () => {
  it("comes back in its mailbox's group after 30 s, then 60 s, not after the 30-minute visibility timeout", async () => {
    // Prepare
    const rig = await fifoRig();
    const job = await rig.f.listed(MAILBOX_A, rig.f.pop3.source(MAILBOX_A).add(makeMessage()));
    await rig.deps.pipeline.queue.enqueue([job]);
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    const first = await receive(rig);

    // Act
    const failedFirst = await failingInvocation(rig, first);
    vi.advanceTimersByTime(29_000);
    const before30s = await receive(rig);
    vi.advanceTimersByTime(2_000);
    const after30s = await receive(rig);
    const failedSecond = await failingInvocation(rig, after30s);
    vi.advanceTimersByTime(59_000);
    const before60s = await receive(rig);
    vi.advanceTimersByTime(2_000);
    const after60s = await receive(rig);

    // Assess
    expect(first.map((m) => m.MessageId)).toHaveLength(1);
    expect(failedFirst).toEqual([first[0]?.MessageId]);
    expect(before30s).toEqual([]);
    expect(after30s.map((m) => [m.MessageId, m.Attributes?.ApproximateReceiveCount])).toEqual([
      [first[0]?.MessageId, "2"],
    ]);
    expect(failedSecond).toEqual([first[0]?.MessageId]);
    expect(before60s).toEqual([]);
    expect(after60s.map((m) => m.Attributes?.ApproximateReceiveCount)).toEqual(["3"]);
    expect(rig.f.sink.importCalls).toBe(0);
  });

  it("still reaches the dead-letter queue after maxReceiveCount failures, within minutes", async () => {
    // Prepare
    const rig = await fifoRig();
    const job = await rig.f.listed(MAILBOX_A, rig.f.pop3.source(MAILBOX_A).add(makeMessage()));
    await rig.deps.pipeline.queue.enqueue([job]);
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    const receiveCounts: string[] = [];

    // Act
    for (let receives = 0; receives < MAX_RECEIVE_COUNT; receives++) {
      const messages = await receive(rig);
      receiveCounts.push(...messages.map((m) => m.Attributes?.ApproximateReceiveCount ?? "?"));
      await failingInvocation(rig, messages);
      // Past the longest backoff so far (30 s doubling), far short of the visibility timeout.
      vi.advanceTimersByTime((30 * 2 ** receives + 1) * 1000);
    }
    const afterLast = await receive(rig);

    // Assess
    expect(receiveCounts).toEqual(["1", "2", "3", "4", "5"]);
    expect(afterLast).toEqual([]);
    expect(await deadLetters(rig)).toBe(1);
  });
});
