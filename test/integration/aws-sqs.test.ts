import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  type SendMessageBatchCommandInput,
  type SendMessageBatchCommandOutput,
} from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { notBeforeOf, parseCopyJob, serializeCopyJob } from "../../shared/adapters/sqs/parse-copy-job";
import { SqsWorkQueue } from "../../shared/adapters/sqs/sqs-work-queue";
import { ConfigError, ProtocolError, ServiceRequestError } from "../../shared/core/errors";
import type { CopyJob } from "../../shared/core/model";
import { describeWorkQueueContract, type WorkQueueHarness } from "../contract/work-queue-contract";
import { type FauxqsStandIn, startFauxqsStandIn, uniqueName } from "../fakes/aws-stand-ins";

let fauxqs: FauxqsStandIn;

beforeAll(async () => {
  fauxqs = await startFauxqsStandIn();
});

afterAll(async () => {
  await fauxqs?.stop();
});

/** A fresh queue on fauxqs, consumed with the SDK the way the copy handler's event source does. */
async function sqsHarness(): Promise<WorkQueueHarness> {
  const queueUrl = await fauxqs.createQueue(uniqueName("work"));
  const receive = async ({ waitSeconds }: { waitSeconds: number }): Promise<CopyJob[]> => {
    const jobs: CopyJob[] = [];
    for (let wait = waitSeconds; ; wait = 0) {
      const { Messages = [] } = await fauxqs.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: wait }),
      );
      if (Messages.length === 0) return jobs;
      jobs.push(...Messages.map((message) => parseCopyJob(message.Body ?? "")));
      await fauxqs.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: Messages.map((message, i) => ({
            Id: String(i),
            ReceiptHandle: message.ReceiptHandle ?? "",
          })),
        }),
      );
    }
  };
  // fauxqs runs on real time; the harness's long poll waits out the delay instead.
  return { queue: new SqsWorkQueue({ client: fauxqs.sqs, queueUrl }), receive, elapse: async () => {} };
}

describeWorkQueueContract("SqsWorkQueue on fauxqs", sqsHarness);

/** Visible and delayed message counts, as SQS reports them. */
async function queueCounts(queueUrl: string): Promise<{ ready: number; delayed: number }> {
  const { Attributes = {} } = await fauxqs.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"],
    }),
  );
  return {
    ready: Number(Attributes.ApproximateNumberOfMessages),
    delayed: Number(Attributes.ApproximateNumberOfMessagesDelayed),
  };
}

/** Every job visible now (received once; they stay in flight until the test ends). */
async function receiveAll(queueUrl: string): Promise<CopyJob[]> {
  const jobs: CopyJob[] = [];
  for (;;) {
    const { Messages = [] } = await fauxqs.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    );
    if (Messages.length === 0) return jobs;
    jobs.push(...Messages.map((message) => parseCopyJob(message.Body ?? "")));
  }
}

const job: CopyJob = {
  tenant: "acme",
  mailboxId: "info@acme.example",
  uidl: "AAA-1",
  listedSize: 12,
  listedAt: 34,
};

describe("SqsWorkQueue on fauxqs", () => {
  it("sends jobs in batches of at most 10 entries", async () => {
    // Prepare
    const queueUrl = await fauxqs.createQueue(uniqueName("batches"));
    const batchSizes: number[] = [];
    const name = `batch-sizes-${Math.random()}`;
    fauxqs.sqs.middlewareStack.add(
      (next) => async (args) => {
        const entries = (args.input as { Entries?: unknown[] }).Entries;
        if (entries !== undefined) batchSizes.push(entries.length);
        return next(args);
      },
      { step: "initialize", name },
    );
    const queue = new SqsWorkQueue({ client: fauxqs.sqs, queueUrl });
    // Act
    await queue.enqueue(Array.from({ length: 23 }, (_, i) => ({ ...job, uidl: `u${i}` })));
    fauxqs.sqs.middlewareStack.remove(name);
    // Assess
    expect(batchSizes.sort((a, b) => a - b)).toEqual([3, 10, 10]);
    expect(await queueCounts(queueUrl)).toEqual({ ready: 23, delayed: 0 });
  });

  it("puts a delayed job among the delayed messages, not the ready ones", async () => {
    // Prepare
    const queueUrl = await fauxqs.createQueue(uniqueName("delayed"));
    const queue = new SqsWorkQueue({ client: fauxqs.sqs, queueUrl });
    // Act
    await queue.enqueue([job], { delaySeconds: 900 });
    // Assess
    expect(await queueCounts(queueUrl)).toEqual({ ready: 0, delayed: 1 });
  });

  it("sends again only the entries SQS reported as failed", async () => {
    // Prepare
    const queueUrl = await fauxqs.createQueue(uniqueName("partial"));
    let calls = 0;
    const name = `fail-first-${Math.random()}`;
    // The first batch call drops entry "3" and reports it failed, as SQS does under internal errors.
    fauxqs.sqs.middlewareStack.add(
      (next) => async (args) => {
        calls++;
        const input = args.input as SendMessageBatchCommandInput;
        if (calls > 1) return next(args);
        const kept = (input.Entries ?? []).filter((entry) => entry.Id !== "3");
        const result = await next({ ...args, input: { ...input, Entries: kept } });
        const output = result.output as SendMessageBatchCommandOutput;
        output.Failed = [{ Id: "3", SenderFault: false, Code: "InternalError" }];
        return result;
      },
      { step: "initialize", name },
    );
    const queue = new SqsWorkQueue({ client: fauxqs.sqs, queueUrl });
    const jobs = Array.from({ length: 10 }, (_, i) => ({ ...job, uidl: `p${i}` }));
    // Act
    await queue.enqueue(jobs);
    fauxqs.sqs.middlewareStack.remove(name);
    // Assess
    const uidls = (await receiveAll(queueUrl)).map((received) => received.uidl);
    expect(calls).toBe(2);
    expect(uidls.sort()).toEqual(jobs.map((j) => j.uidl).sort());
  });

  it("fails at once, without resending, when SQS blames the sender for an entry", async () => {
    // Prepare
    const queueUrl = await fauxqs.createQueue(uniqueName("sender-fault"));
    let calls = 0;
    const name = `sender-fault-${Math.random()}`;
    fauxqs.sqs.middlewareStack.add(
      (next) => async (args) => {
        calls++;
        const result = await next(args);
        (result.output as SendMessageBatchCommandOutput).Failed = [
          { Id: "0", SenderFault: true, Code: "InvalidMessageContents" },
        ];
        return result;
      },
      { step: "initialize", name },
    );
    const queue = new SqsWorkQueue({ client: fauxqs.sqs, queueUrl });
    // Act
    const attempt = queue.enqueue([job]);
    // Assess
    try {
      await expect(attempt).rejects.toBeInstanceOf(ServiceRequestError);
      await expect(attempt).rejects.toMatchObject({ retryable: false, awsCode: "InvalidMessageContents" });
      expect(calls).toBe(1);
    } finally {
      fauxqs.sqs.middlewareStack.remove(name);
    }
  });

  it("refuses a delay outside 0-900 seconds before sending anything", async () => {
    // Prepare
    const queue = new SqsWorkQueue({
      client: fauxqs.sqs,
      queueUrl: await fauxqs.createQueue(uniqueName("d")),
    });
    // Act
    const attempt = queue.enqueue([job], { delaySeconds: 901 });
    // Assess
    await expect(attempt).rejects.toBeInstanceOf(ConfigError);
  });

  it("reports a queue that does not exist as a non-retryable error", async () => {
    // Prepare
    const queueUrl = `${fauxqs.endpoint}/000000000000/${uniqueName("missing")}`;
    const queue = new SqsWorkQueue({ client: fauxqs.sqs, queueUrl });
    // Act
    const attempt = queue.enqueue([job]);
    // Assess
    await expect(attempt).rejects.toMatchObject({ retryable: false, service: "queue" });
  });
});

/** A FIFO queue as the stack makes it: explicit deduplication ids, no content-based ones. */
async function fifoQueue(prefix: string): Promise<string> {
  return fauxqs.createQueue(`${uniqueName(prefix)}.fifo`, { FifoQueue: "true", VisibilityTimeout: "60" });
}

/** Receives (and deletes) every job and returns each one's group. */
async function receiveGroups(queueUrl: string): Promise<{ job: CopyJob; group: string | undefined }[]> {
  const out: { job: CopyJob; group: string | undefined }[] = [];
  for (;;) {
    const { Messages = [] } = await fauxqs.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        MessageSystemAttributeNames: ["MessageGroupId"],
      }),
    );
    if (Messages.length === 0) return out;
    for (const m of Messages)
      out.push({ job: parseCopyJob(m.Body ?? ""), group: m.Attributes?.MessageGroupId });
    await fauxqs.sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle ?? "" })),
      }),
    );
  }
}

describe("SqsWorkQueue on a FIFO queue (docs/lambda-handlers.md, one mailbox one copier)", () => {
  it("sends each job in its mailbox's message group", async () => {
    // Prepare
    const queueUrl = await fifoQueue("groups");
    const queue = new SqsWorkQueue({ client: fauxqs.sqs, queueUrl });
    const jobs = [job, { ...job, uidl: "B" }, { ...job, mailboxId: "sales@acme.example", uidl: "C" }];
    // Act
    await queue.enqueue(jobs);
    // Assess
    const received = await receiveGroups(queueUrl);
    expect(received.map((r) => [r.job.uidl, r.group]).sort()).toEqual([
      ["AAA-1", "info@acme.example"],
      ["B", "info@acme.example"],
      ["C", "sales@acme.example"],
    ]);
  });

  it("drops a second send of the same listing but never a re-send", async () => {
    // Prepare
    const queueUrl = await fifoQueue("dedup");
    const queue = new SqsWorkQueue({ client: fauxqs.sqs, queueUrl });
    // Act
    await queue.enqueue([job]);
    await queue.enqueue([job]);
    await queue.enqueue([job], { resend: true });
    await queue.enqueue([job], { resend: true });
    // Assess
    expect(await queueCounts(queueUrl)).toEqual({ ready: 3, delayed: 0 });
  });

  it("sends a delayed job at once with the time it is due, and holds a delivery back by its receipt", async () => {
    // Prepare
    const queueUrl = await fifoQueue("notbefore");
    const queue = new SqsWorkQueue({ client: fauxqs.sqs, queueUrl, now: () => 1_000_000 });
    await queue.enqueue([job], { delaySeconds: 30, resend: true });
    const { Messages = [] } = await fauxqs.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    );
    // Act
    await queue.holdBack?.([Messages[0]?.ReceiptHandle ?? ""], 900);
    // Assess
    expect(Messages.map((m) => [parseCopyJob(m.Body ?? ""), notBeforeOf(m.Body ?? "")])).toEqual([
      [job, 1_030_000],
    ]);
    expect(await queueCounts(queueUrl)).toEqual({ ready: 0, delayed: 0 });
    expect(await receiveGroups(queueUrl)).toEqual([]);
    expect(
      new SqsWorkQueue({ client: fauxqs.sqs, queueUrl: await fauxqs.createQueue(uniqueName("std")) })
        .holdBack,
    ).toBeUndefined();
  });
});

describe("parseCopyJob", () => {
  it("reads back what the queue sends", () => {
    // Prepare
    const body = serializeCopyJob(job);
    // Act
    const parsed = parseCopyJob(body);
    // Assess
    expect(parsed).toEqual(job);
  });

  it("ignores unknown fields so a newer lister does not break an older copier", () => {
    // Prepare
    const body = JSON.stringify({ ...job, addedLater: true });
    // Act
    const parsed = parseCopyJob(body);
    // Assess
    expect(parsed).toEqual(job);
  });

  it.each([
    ["not JSON", "{tenant:"],
    ["a JSON array", "[]"],
    ["a missing uidl", JSON.stringify({ ...job, uidl: undefined })],
    ["a UIDL with a space", JSON.stringify({ ...job, uidl: "a b" })],
    ["a negative size", JSON.stringify({ ...job, listedSize: -1 })],
    ["a string timestamp", JSON.stringify({ ...job, listedAt: "yesterday" })],
  ])("rejects %s with a non-retryable ProtocolError", (_label, body) => {
    // Prepare
    const parse = () => parseCopyJob(body);
    // Act + Assess
    expect(parse).toThrow(ProtocolError);
    try {
      parse();
    } catch (error) {
      expect(error).toMatchObject({ retryable: false, service: "queue" });
    }
  });
});
