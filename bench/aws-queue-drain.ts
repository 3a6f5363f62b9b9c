/**
 * Backlog and burst drains through the real bundled handlers on AWS stand-ins (issue 13 item 0):
 * Dovecot (TLS), fauxqs (SQS, S3), dynalite, the Gmail API stand-in (30% of imports answered
 * 503 or 429) and a Secrets Manager stand-in; the functions run in warm "containers" (child
 * processes of `support/lambda-worker.ts`, bundled by esbuild, plain `node`). This process plays
 * Lambda's SQS event source: `concurrency` pollers, each receiving up to 10 jobs (the stack's
 * batch size), invoking a container with the SQS event, deleting what it did not report failed.
 * SQS requests are counted by a proxy in front of fauxqs (the functions' own and the pollers').
 *
 *   npx tsx bench/aws-queue-drain.ts [messages=300] [runs=1] [burstMailboxes=20] [burstEach=15] [--today]
 *   npx tsx bench/aws-queue-drain.ts [messages=200] [runs=1] [mailboxes=5] --quota
 *
 * Setups: "one copier" (standard queue, one poller: the single-worker time), "stack" (the
 * stack's FIFO queue, a group per mailbox, concurrency 5), and with `--today` the standard
 * queue at concurrency 5 (before issue 13; its bounced jobs wait 30 s each, so it is slow).
 * Runs are interleaved; each prints its figures, then the ratios of the same run.
 */
import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import type { SQSBatchResponse } from "aws-lambda";
import { COPY_BATCH_SIZE, COPY_MAX_CONCURRENCY } from "../infra/function-settings";
import { STAND_IN_REGION } from "../test/fakes/aws-stand-ins";
import { fauxqsFifoBatchesLikeSqs } from "../test/fakes/fauxqs-fifo";
import { sqsEvent } from "../test/fakes/sqs-lambda-events";
import { messageWithAttachment } from "../test/fixtures/awkward-messages";
import { type AwsRig, startAwsRig } from "./support/aws-rig";
import { machineLine } from "./support/local-rig";
import { type SqsRequestCounter, startSqsRequestCounter } from "./support/sqs-request-counter";

/** Share of Gmail imports answered with a fault (half 503 backendError, half 429 without Retry-After). */
const GMAIL_FAULT_SHARE = 0.3;
/** A drain that has not finished by then is reported as such. */
const DRAIN_LIMIT_MS = 25 * 60_000;
/** Lambda arm64 price per GB-second and per request, SQS per request (FIFO and standard), USD. */
const PRICE = {
  gbSecond: 0.0000133334,
  invocation: 0.2 / 1e6,
  fifoRequest: 0.5 / 1e6,
  standardRequest: 0.4 / 1e6,
};
const COPY_MEMORY_GB = 0.5;

interface Setup {
  readonly name: string;
  readonly fifo: boolean;
  readonly concurrency: number;
  /** Gmail pacing of the containers (the quota comparison): the product's shared bucket by default. */
  readonly pacing?: "shared" | "per-container" | "mailbox-shares";
}

/** How the Gmail side of a drain behaves. */
interface GmailSide {
  /** Every mailbox into its own Gmail user, or all into one. */
  readonly userPerMailbox: boolean;
  readonly faultShare: number;
  /** The stand-in's per-user quota; unlimited when absent. */
  readonly quotaUnitsPerMinute?: number;
}

const FAULTY_GMAIL: GmailSide = { userPerMailbox: true, faultShare: GMAIL_FAULT_SHARE };

interface DrainResult {
  readonly setup: Setup;
  readonly mailboxes: number;
  readonly messages: number;
  readonly wallMs: number;
  readonly inGmail: number;
  readonly leftOnServer: number;
  readonly invocations: number;
  readonly heldOnly: number;
  readonly billedMs: number;
  readonly sqs: Record<string, number>;
  readonly entries: Record<string, number>;
  readonly emptyReceives: number;
  readonly gmailFaults: number;
  readonly rateLimited: number;
}

/** A warm container: one forked `lambda-worker` answering one invocation at a time. */
class Container {
  readonly #child: ChildProcess;
  readonly #pending = new Map<
    number,
    (reply: { response?: unknown; durationMs?: number; error?: string }) => void
  >();
  #next = 0;
  readonly ready: Promise<void>;

  constructor(script: string, env: NodeJS.ProcessEnv) {
    this.#child = fork(script, [], {
      env,
      // Plain node, as on Lambda: not the tsx loader this process runs under.
      execArgv: [],
      stdio: ["ignore", "ignore", "inherit", "ipc"],
      serialization: "advanced",
    });
    this.ready = new Promise((resolve) => {
      this.#child.on("message", (message: { id?: number; ready?: boolean }) => {
        if (message.ready === true) return resolve();
        const done = message.id === undefined ? undefined : this.#pending.get(message.id);
        if (done !== undefined && message.id !== undefined) {
          this.#pending.delete(message.id);
          done(message as { response?: unknown; durationMs?: number; error?: string });
        }
      });
    });
  }

  invoke(
    request: Record<string, unknown>,
  ): Promise<{ response?: unknown; durationMs?: number; error?: string }> {
    const id = ++this.#next;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      this.#child.send({ ...request, id });
    });
  }

  stop(): void {
    this.#child.kill("SIGKILL");
  }
}

async function fill(rig: AwsRig, perMailbox: number, seed: number): Promise<void> {
  for (let index = 0; index < rig.mailboxIds.length; index++) {
    for (let start = 0; start < perMailbox; start += 50) {
      const batch = [];
      for (let i = start; i < Math.min(perMailbox, start + 50); i++) {
        batch.push(
          rig.deliverTo(index, messageWithAttachment(2_000, seed * 1_000_000 + index * 10_000 + i).bytes),
        );
      }
      await Promise.all(batch);
    }
  }
}

async function queueEmpty(rig: AwsRig): Promise<boolean> {
  const { Attributes = {} } = await rig.fauxqs.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: rig.queueUrl,
      AttributeNames: [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
      ],
    }),
  );
  return (
    Number(Attributes.ApproximateNumberOfMessages) +
      Number(Attributes.ApproximateNumberOfMessagesNotVisible) +
      Number(Attributes.ApproximateNumberOfMessagesDelayed) ===
    0
  );
}

async function drainOnce(
  setup: Setup,
  mailboxes: number,
  perMailbox: number,
  seed: number,
  side: GmailSide = FAULTY_GMAIL,
): Promise<DrainResult> {
  let counter: SqsRequestCounter | undefined;
  const rig = await startAwsRig({
    fifo: setup.fifo,
    mailboxes,
    gmailUserPerMailbox: side.userPerMailbox,
    gmail: {
      seed,
      ...(side.quotaUnitsPerMinute === undefined ? {} : { quotaUnitsPerMinute: side.quotaUnitsPerMinute }),
    },
    sqsEndpoint: async (endpoint) => {
      counter = await startSqsRequestCounter(endpoint);
      return counter.endpoint;
    },
  });
  const containers: Container[] = [];
  try {
    if (counter === undefined) throw new Error("no SQS counter");
    const sqsCounter = counter;
    await fill(rig, perMailbox, seed);
    const isImport = (r: { operation: string }) => r.operation === "import";
    const half = side.faultShare / 2;
    if (half > 0) {
      rig.gmail.injectFault({ match: isImport, probability: half, action: { kind: "status", status: 503 } });
      rig.gmail.injectFault({
        match: isImport,
        probability: half / (1 - half),
        action: { kind: "status", status: 429, reason: "rateLimitExceeded" },
      });
    }
    const script = await rig.bundleEntry(
      fileURLToPath(new URL("./support/lambda-worker.ts", import.meta.url)),
    );
    const env = {
      ...rig.env,
      POWERTOOLS_LOG_LEVEL: "ERROR",
      AWS_LAMBDA_LOG_LEVEL: "ERROR",
      ...(setup.pacing === undefined || setup.pacing === "shared"
        ? {}
        : {
            // What-if only (not the product): pace per container, with the whole quota or a share.
            BENCH_WHATIF_CONTAINER_QUOTA_SHARE: String(setup.pacing === "mailbox-shares" ? 1 / mailboxes : 1),
          }),
    };
    const lister = new Container(script, env);
    containers.push(lister);
    for (let i = 0; i < setup.concurrency; i++) containers.push(new Container(script, env));
    await Promise.all(containers.map((c) => c.ready));
    const sqs = new SQSClient({
      region: STAND_IN_REGION,
      endpoint: sqsCounter.endpoint,
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
    });
    sqsCounter.reset();
    const total = mailboxes * perMailbox;
    const start = performance.now();
    // EventBridge: every mailbox's lister at once.
    const lists = Promise.all(rig.mailboxIds.map((mailboxId) => lister.invoke({ kind: "list", mailboxId })));
    let done = false;
    let invocations = 0;
    let heldOnly = 0;
    let billedMs = 0;
    let emptyReceives = 0;
    const poll = async (container: Container) => {
      while (!done) {
        const { Messages = [] } = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: rig.queueUrl,
            MaxNumberOfMessages: COPY_BATCH_SIZE,
            WaitTimeSeconds: 1,
            MessageSystemAttributeNames: ["All"],
          }),
        );
        if (Messages.length === 0) {
          emptyReceives++;
          continue;
        }
        invocations++;
        const reply = await container.invoke({ kind: "copy", event: sqsEvent(rig.queueArn, Messages) });
        billedMs += Math.ceil(reply.durationMs ?? 0);
        const failed = new Set(
          ((reply.response as SQSBatchResponse | undefined)?.batchItemFailures ?? []).map(
            (f) => f.itemIdentifier,
          ),
        );
        if (reply.error !== undefined) for (const m of Messages) failed.add(m.MessageId ?? "");
        if (failed.size === Messages.length) heldOnly++;
        const acknowledged = Messages.filter((m) => !failed.has(m.MessageId ?? ""));
        if (acknowledged.length > 0) {
          await sqs.send(
            new DeleteMessageBatchCommand({
              QueueUrl: rig.queueUrl,
              Entries: acknowledged.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle ?? "" })),
            }),
          );
        }
      }
    };
    const pollers = containers.slice(1).map((c) => poll(c));
    await lists;
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      const inGmail = rig.gmail.messages().length;
      if ((inGmail >= total && (await queueEmpty(rig))) || performance.now() - start > DRAIN_LIMIT_MS) break;
    }
    const wallMs = performance.now() - start;
    done = true;
    await Promise.all(pollers);
    const leftOnServer = (
      await Promise.all(
        rig.mailboxIds.map((_, i) => rig.dovecot.storedMessageCount(i === 0 ? "bench" : `bench-${i + 1}`)),
      )
    ).reduce((a, b) => a + b, 0);
    return {
      setup,
      mailboxes,
      messages: total,
      wallMs,
      inGmail: rig.gmail.messages().length,
      leftOnServer,
      invocations,
      heldOnly,
      billedMs,
      sqs: Object.fromEntries(sqsCounter.requests),
      entries: Object.fromEntries(sqsCounter.entries),
      emptyReceives,
      gmailFaults: rig.gmail.countStatus(503) + rig.gmail.countStatus(429),
      rateLimited: rig.gmail.countStatus(429),
    };
  } finally {
    for (const c of containers) c.stop();
    await rig.close();
    await counter?.stop();
  }
}

function describe(r: DrainResult): string {
  const sqsTotal = Object.values(r.sqs).reduce((a, b) => a + b, 0);
  const busyRequests = sqsTotal - r.emptyReceives;
  const resent = (r.entries.SendMessageBatch ?? 0) - r.messages;
  const price = r.setup.fifo ? PRICE.fifoRequest : PRICE.standardRequest;
  const cost =
    (r.billedMs / 1000) * COPY_MEMORY_GB * PRICE.gbSecond +
    r.invocations * PRICE.invocation +
    busyRequests * price;
  const perAction = Object.entries(r.sqs)
    .sort()
    .map(([action, n]) => `${action} ${n}`)
    .join(", ");
  return [
    `${r.setup.name} (${r.setup.fifo ? "FIFO" : "standard"} queue, concurrency ${r.setup.concurrency}, batch ${COPY_BATCH_SIZE}): ` +
      `${r.messages} messages in ${r.mailboxes} mailbox(es) drained in ${(r.wallMs / 1000).toFixed(1)} s; ` +
      `in Gmail ${r.inGmail}, left on POP3 ${r.leftOnServer}, Gmail faults answered ${r.gmailFaults} (429: ${r.rateLimited})`,
    `  copy invocations ${r.invocations} (${r.heldOnly} that only handed jobs back), billed ${(r.billedMs / 1000).toFixed(1)} s; ` +
      `jobs re-sent ${resent}, held back ${r.entries.ChangeMessageVisibilityBatch ?? 0}`,
    `  SQS requests ${busyRequests} without the pollers' ${r.emptyReceives} empty receives (${perAction}); ` +
      `cost of the drain $${(cost * 1000).toFixed(4)} per 1,000 drains`,
  ].join("\n");
}

async function main(): Promise<void> {
  fauxqsFifoBatchesLikeSqs();
  const positional = process.argv.slice(2).filter((a) => !a.startsWith("--"));
  const messages = Number(positional[0] ?? 300);
  const runs = Number(positional[1] ?? 1);
  const burstMailboxes = Number(positional[2] ?? 20);
  const burstEach = Number(positional[3] ?? 15);
  const one: Setup = { name: "one copier", fifo: false, concurrency: 1 };
  const stack: Setup = { name: "stack", fifo: true, concurrency: COPY_MAX_CONCURRENCY };
  const today: Setup = { name: "before (standard queue)", fifo: false, concurrency: COPY_MAX_CONCURRENCY };
  const setups = process.argv.includes("--today") ? [one, stack, today] : [one, stack];
  if (process.argv.includes("--quota")) return quotaComparison(messages, runs, burstMailboxes);
  console.log(`aws-queue-drain: ${await machineLine()}; Gmail faults ${GMAIL_FAULT_SHARE * 100}% of imports`);
  let failed = false;
  for (let run = 1; run <= runs; run++) {
    const backlog = new Map<string, DrainResult>();
    for (const setup of setups) {
      const r = await drainOnce(setup, 1, messages, run);
      backlog.set(setup.name, r);
      console.log(`backlog, run ${run}/${runs}: ${describe(r)}`);
      failed ||= r.inGmail !== r.messages || r.leftOnServer !== 0;
    }
    const single = backlog.get(one.name);
    const fifo = backlog.get(stack.name);
    if (single !== undefined && fifo !== undefined) {
      const ratio = fifo.wallMs / single.wallMs;
      console.log(
        `backlog, run ${run}: stack / one copier = ${ratio.toFixed(2)} -> within 1.2x ${ratio <= 1.2 ? "MET" : "NOT met"}`,
      );
    }
    if (burstMailboxes > 0) {
      const burst = new Map<string, DrainResult>();
      for (const setup of [one, stack]) {
        const r = await drainOnce(setup, burstMailboxes, burstEach, 100 + run);
        burst.set(setup.name, r);
        console.log(`burst, run ${run}/${runs}: ${describe(r)}`);
        failed ||= r.inGmail !== r.messages || r.leftOnServer !== 0;
      }
      const s = burst.get(one.name);
      const p = burst.get(stack.name);
      if (s !== undefined && p !== undefined) {
        console.log(
          `burst, run ${run}: ${burstMailboxes} mailboxes x ${burstEach}: one copier / stack = ${(s.wallMs / p.wallMs).toFixed(2)}x`,
        );
      }
    }
  }
  if (failed) {
    console.log("FAILED: a message is missing from Gmail or left on the server");
    process.exitCode = 1;
  }
}

/**
 * Gmail pacing on AWS (issue 13 item 1): `mailboxes` mailboxes into ONE Gmail user whose quota
 * is 6,000 units/min (4 imports/s), no injected faults, the stack's queue and concurrency; the
 * containers pace with the shared DynamoDB bucket (the product), each with the whole quota
 * (before), or each with a 1/mailboxes share. The stand-in's 429s show who overran the quota.
 */
async function quotaComparison(messages: number, runs: number, mailboxes: number): Promise<void> {
  const side: GmailSide = { userPerMailbox: false, faultShare: 0, quotaUnitsPerMinute: 6000 };
  const perMailbox = Math.max(1, Math.round(messages / mailboxes));
  const ideal = (mailboxes * perMailbox) / 4;
  console.log(
    `aws-queue-drain --quota: ${await machineLine()}; ${mailboxes} mailboxes x ${perMailbox} into one Gmail user at 6,000 units/min (ideal ${ideal.toFixed(0)} s)`,
  );
  for (let run = 1; run <= runs; run++) {
    for (const pacing of ["shared", "per-container", "mailbox-shares"] as const) {
      const setup: Setup = {
        name: `pacing ${pacing}`,
        fifo: true,
        concurrency: COPY_MAX_CONCURRENCY,
        pacing,
      };
      const r = await drainOnce(setup, mailboxes, perMailbox, 200 + run, side);
      console.log(`quota, run ${run}/${runs}: ${describe(r)}`);
      console.log(
        `  -> ${((r.messages * 1000) / r.wallMs).toFixed(2)} imports/s of 4; ${r.rateLimited} answered 429`,
      );
    }
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
