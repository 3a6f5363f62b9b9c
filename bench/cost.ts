/**
 * Dollars per mailbox-month (pollSeconds 60 and 10), per tenant-month fixed, and a 500-tenant x
 * 5-mailbox projection (issue 14), from handler runs measured here and requests counted on the
 * wire, priced with infra/aws-prices.ts (us-east-1, arm64). docs/deploy.md section 7 shows the
 * result; bench/README.md "Cost per mailbox and per tenant" the run.
 *
 * What runs: the three pipeline function modules, bundled by esbuild and run by plain `node` in
 * one child process (`support/cost-child.ts`, one warm container per function), against Dovecot
 * (implicit TLS), fauxqs (SQS, S3), dynalite, the Gmail API stand-in and a Secrets Manager
 * stand-in on loopback, through counting proxies (`support/cost-proxy.ts`: every request by
 * action, DynamoDB capacity units by DynamoDB's rules). The bench plays the AWS side: it hands
 * the lister the keeper event and each poll message the previous poll sent (as the poll queue's
 * event source mapping would, without waiting out the delay), the copier each job the lister
 * queued, and delete-copied each payload the lister invoked it with.
 *
 * Counted per invocation: Lambda duration (wall time here, and a CPU-scaled figure, see below),
 * SQS/DynamoDB/S3/Secrets Manager requests, DynamoDB read and write units, log bytes and lines at
 * the stack's log level (INFO, JSON; system logs at WARN, so no START/REPORT lines), EMF metric
 * lines. Modelled from AWS documentation (cited where used): the event source mappings' own
 * receives and deletes, KMS requests, X-Ray traces. Counted from the synthesized tenant template
 * (infra/cloudwatch-budget.ts): alarms, the metrics they read, always-emitted custom metrics,
 * dashboards; and from it the memory sizes, event source mappings and tracing mode.
 *
 * Durations: this machine is not Lambda. Loopback has no network latency, and Lambda gives a
 * function CPU in proportion to memory (a full vCPU at 1,769 MB). The headline scales each
 * invocation's measured CPU time by 1769 / memory and takes the larger of that and the measured
 * wall time ("scaled"); "measured" is the wall time as is. A sensitivity line prices 100 ms more
 * per poll (a POP3 server 10-20 ms away: TLS, greeting, USER/PASS, UIDL, LIST, QUIT).
 *
 *   npx tsx bench/cost.ts [idlePolls=30] [messages=10] [keeperTicks=10] [messagesPerDay=50]
 */
import { spawn } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { DeleteMessageCommand } from "@aws-sdk/client-sqs";
import { DynamoDBDocumentClient, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import type { SQSEvent } from "aws-lambda";
import { AWS_PRICE, HOURS_PER_MONTH } from "../infra/aws-prices";
import { type CloudWatchFixedCost, cloudWatchFixedCost, type TemplateJson } from "../infra/cloudwatch-budget";
import { FUNCTION_SETTINGS } from "../infra/function-settings";
import { ProviderStack } from "../infra/provider-stack";
import { chainKey } from "../shared/adapters/dynamodb/dynamodb-poll-chains";
import { ENV_NAMES } from "../shared/config/env";
import { LISTER_ENV_NAMES } from "../shared/config/lister-env";
import { METRIC_EMISSION, type MetricName } from "../shared/config/metrics";
import type { TenantConfig } from "../shared/config/tenant-config";
import { MAIL_CHECK_EVERY_TICKS, mailChecksDue, queueDepthsDue } from "../shared/core/tenant-problems";
import { STAND_IN_REGION } from "../test/fakes/aws-stand-ins";
import { startSecretsManagerStandIn } from "../test/fakes/secrets-manager-stand-in";
import { sqsEvent } from "../test/fakes/sqs-lambda-events";
import { messageWithAttachment } from "../test/fixtures/awkward-messages";
import { exampleConfig, synthTenants } from "../test/infra/synth-tenants";
import { startAwsRig } from "./support/aws-rig";
import type { CountedRequest } from "./support/cost-proxy";
import { startCostProxies } from "./support/cost-proxy";
import { machineLine, median } from "./support/local-rig";

const SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600;
const MINUTES_PER_MONTH = HOURS_PER_MONTH * 60;
const FULL_VCPU_MIB = 1769;
const MESSAGE_BYTES = 100 * 1024;
const GIB = 1024 ** 3;
/**
 * CloudWatch Logs counts 26 bytes per event on top of its message (PutLogEvents' batch size rule,
 * https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html);
 * counted as ingested here, an upper bound. With system logs at WARN Lambda writes no START or
 * REPORT line (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html).
 */
const LOG_EVENT_OVERHEAD_BYTES = 26;
/**
 * Long polls per minute of one idle event source mapping poller: 20 s waits, SQS's longest
 * (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/best-practices-setting-up-long-polling.html).
 * Lambda long-polls an idle queue with five pollers, "as few as 2" when traffic is low, and not
 * fewer than five with maximum concurrency set
 * (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html).
 */
const LONG_POLLS_PER_POLLER_MINUTE = 3;
/**
 * DynamoDB caches a table's key per caller and asks KMS again after 5 minutes without use
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/EncryptionAtRest.html): counted
 * as one request per caller and 5 minutes, an upper bound for a caller active all month.
 */
const DYNAMODB_TABLE_KEY_SECONDS = 300;
/**
 * Lambda documents no container lifetime: counted as one cold start per function and hour. The
 * INIT phase is billed since 2025-08-01
 * (https://aws.amazon.com/blogs/compute/aws-lambda-standardizes-billing-for-init-phase/).
 */
const COLD_STARTS_PER_FUNCTION_MONTH = HOURS_PER_MONTH;
const KMS_REQUEST = AWS_PRICE.kms.requestsPer10k / 10_000;

type Fn = "list-new-messages" | "copy-message" | "delete-copied";
const MEMORY: Record<Fn, number> = {
  "list-new-messages": FUNCTION_SETTINGS.listNewMessages.memoryMiB,
  "copy-message": FUNCTION_SETTINGS.copyMessage.memoryMiB,
  "delete-copied": FUNCTION_SETTINGS.deleteCopied.memoryMiB,
};

/** One measured invocation with the requests it made. */
interface Invocation {
  readonly fn: Fn;
  readonly response: unknown;
  readonly initMs: number;
  readonly durationMs: number;
  readonly cpuMs: number;
  readonly logBytes: number;
  readonly logLines: number;
  readonly metrics: readonly string[];
  readonly requests: readonly CountedRequest[];
}

type Scaling = "scaled" | "measured";

/** Dollars by line (`lambda duration`, `sqs`, ...). */
type Lines = Record<string, number>;

function add(into: Lines, from: Lines, times = 1): Lines {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v * times;
  return into;
}
function total(lines: Lines): number {
  return Object.values(lines).reduce((a, b) => a + b, 0);
}
function minus(a: Lines, b: Lines): Lines {
  const out: Lines = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) - v;
  return out;
}

function billedSeconds(inv: Pick<Invocation, "fn" | "durationMs" | "cpuMs">, scaling: Scaling): number {
  const mem = MEMORY[inv.fn];
  const ms =
    scaling === "measured" ? inv.durationMs : Math.max(inv.durationMs, (inv.cpuMs * FULL_VCPU_MIB) / mem);
  // Lambda rounds duration up to the millisecond.
  return Math.ceil(ms) / 1000;
}

function isFifo(request: CountedRequest): boolean {
  try {
    return String((JSON.parse(request.body ?? "{}") as { QueueUrl?: string }).QueueUrl).endsWith(".fifo");
  } catch {
    return false;
  }
}

const S3_PUT_CLASS = new Set([
  "PutObject",
  "UploadPart",
  "CreateMultipartUpload",
  "CompleteMultipartUpload",
  "ListObjectsV2",
]);

/** What the requests of one invocation cost, by line. */
function priceRequests(requests: readonly CountedRequest[]): Lines {
  const lines: Lines = {};
  const put = (k: string, v: number) => {
    lines[k] = (lines[k] ?? 0) + v;
  };
  for (const r of requests) {
    if (r.service === "sqs")
      put("sqs", isFifo(r) ? AWS_PRICE.sqs.fifoRequest : AWS_PRICE.sqs.standardRequest);
    if (r.service === "dynamodb") {
      put(
        "dynamodb",
        (r.writeUnits ?? 0) * AWS_PRICE.dynamodb.writeUnit + (r.readUnits ?? 0) * AWS_PRICE.dynamodb.readUnit,
      );
    }
    if (r.service === "s3") {
      if (S3_PUT_CLASS.has(r.action)) put("s3 requests", AWS_PRICE.s3.putPer1k / 1000);
      else if (r.action === "GetObject" || r.action === "HeadObject")
        put("s3 requests", AWS_PRICE.s3.getPer1k / 1000);
      // SSE-KMS: at most one KMS request per object written or read (the bucket key makes it far fewer).
      if (r.action === "PutObject" || r.action === "CreateMultipartUpload" || r.action === "GetObject") {
        put("kms requests", KMS_REQUEST);
      }
    }
    if (r.service === "secretsmanager")
      put("secrets manager calls", AWS_PRICE.secretsManager.callsPer10k / 10_000);
    // Lambda Invoke (async) is billed as the invoked function's request, priced with that invocation.
  }
  return lines;
}

/** What one invocation costs, by line: Lambda, its requests, its logs, its X-Ray trace if its function is traced. */
function priceInvocation(inv: Invocation, scaling: Scaling, traced: ReadonlySet<Fn>): Lines {
  const lines: Lines = {
    "lambda requests": AWS_PRICE.lambda.request,
    "lambda duration": billedSeconds(inv, scaling) * (MEMORY[inv.fn] / 1024) * AWS_PRICE.lambda.arm64GbSecond,
    "logs ingested":
      ((inv.logBytes + LOG_EVENT_OVERHEAD_BYTES * inv.logLines) / GIB) *
      AWS_PRICE.cloudWatch.logsIngestedPerGb,
  };
  // Active tracing: Lambda samples 1 request a second and 5% of the rest
  // (https://docs.aws.amazon.com/lambda/latest/dg/services-xray.html); a tenant's functions stay
  // far below 1 a second, so every invocation is counted as a trace recorded (an upper bound if
  // the reservoir is shared).
  if (traced.has(inv.fn)) lines["x-ray traces"] = AWS_PRICE.xray.traceRecorded;
  return add(lines, priceRequests(inv.requests));
}

/** The mean of each line over invocations (request counts are the same each time; durations vary). */
function meanLines(invs: readonly Invocation[], scaling: Scaling, traced: ReadonlySet<Fn>): Lines {
  const sum: Lines = {};
  for (const inv of invs) add(sum, priceInvocation(inv, scaling, traced));
  for (const k of Object.keys(sum)) sum[k] = (sum[k] ?? 0) / invs.length;
  return sum;
}

/** Requests by `service:action` (mean per invocation), for the table of counts. */
function requestCounts(invs: readonly Invocation[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const inv of invs) {
    for (const r of inv.requests) {
      const key = `${r.service}:${r.action}${r.service === "sqs" && isFifo(r) ? " (fifo)" : ""}`;
      counts[key] = (counts[key] ?? 0) + 1 / invs.length;
    }
  }
  return counts;
}

function units(invs: readonly Invocation[]): { read: number; write: number; items: number[] } {
  let read = 0;
  let write = 0;
  const items: number[] = [];
  for (const inv of invs) {
    for (const r of inv.requests) {
      read += r.readUnits ?? 0;
      write += r.writeUnits ?? 0;
      if (r.itemBytes !== undefined) items.push(r.itemBytes);
    }
  }
  return { read: read / invs.length, write: write / invs.length, items };
}

/** The DynamoDB calls of one invocation, with units and item sizes, e.g. `UpdateItem 1W (187 B)`. */
function dynamoCalls(inv: Invocation): string[] {
  return inv.requests
    .filter((r) => r.service === "dynamodb")
    .map((r) => {
      const u = (r.writeUnits ?? 0) > 0 ? `${r.writeUnits}W` : `${r.readUnits ?? 0}R`;
      return `${r.action} ${u}${r.itemBytes === undefined ? "" : ` (${r.itemBytes} B)`}`;
    });
}

/** What the synthesized tenant template says the bench needs. */
interface TemplateFacts {
  readonly cloudWatch: CloudWatchFixedCost;
  readonly cloudWatchWithDashboard: CloudWatchFixedCost;
  readonly eventSourceMappings: { readonly queueFifo: boolean; readonly maxConcurrency: boolean }[];
  /** The functions with X-Ray active tracing. */
  readonly traced: ReadonlySet<Fn>;
  /** The work queue's KmsDataKeyReusePeriodSeconds (SQS's default 300 when unset). */
  readonly workQueueDataKeyReuseSeconds: number;
  readonly memory: Record<string, number>;
  readonly kmsKeys: number;
  readonly rules: number;
  /** The provider stack (one per account): its CloudWatch cost and KMS keys. */
  readonly provider: { readonly cloudWatch: CloudWatchFixedCost; readonly kmsKeys: number };
}

function templateFacts(mailboxes: number): TemplateFacts {
  const example = exampleConfig("example");
  const first = example.mailboxes[0];
  if (first === undefined) throw new Error("tenants/example.json has no mailbox");
  const five: TenantConfig = {
    ...example,
    tenant: "cost",
    mailboxes: Array.from({ length: mailboxes }, (_, i) => ({ ...first, id: `box-${i + 1}@example.com` })),
  };
  const rename = (config: TenantConfig, tenant: string, changes: Partial<TenantConfig>) =>
    ({
      ...(JSON.parse(
        JSON.stringify({ ...config, ...changes }).replaceAll('"pop2gmail/example/', `"pop2gmail/${tenant}/`),
      ) as TenantConfig),
      tenant,
    }) as TenantConfig;
  const [plain, dashboard] = synthTenants([
    rename(five, "cost", {}),
    rename(five, "cost-dash", { dashboard: true } as Partial<TenantConfig>),
  ]);
  if (plain === undefined || dashboard === undefined) throw new Error("synth gave no stacks");
  const json = plain.template.toJSON() as TemplateJson & {
    Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
  };
  const resources = Object.entries(json.Resources);
  const queues = new Map(resources.filter(([, r]) => r.Type === "AWS::SQS::Queue"));
  const esms = resources
    .filter(([, r]) => r.Type === "AWS::Lambda::EventSourceMapping")
    .map(([, r]) => {
      const arn = JSON.stringify(r.Properties?.EventSourceArn ?? "");
      const queueId = [...queues.keys()].find((id) => arn.includes(`"${id}"`));
      const queue = queueId === undefined ? undefined : queues.get(queueId);
      return {
        queueFifo: queue?.Properties?.FifoQueue === true,
        maxConcurrency:
          (r.Properties?.ScalingConfig as { MaximumConcurrency?: number } | undefined)?.MaximumConcurrency !==
          undefined,
      };
    });
  const functions = resources.filter(([, r]) => r.Type === "AWS::Lambda::Function");
  const FN_OF_ID: [string, Fn][] = [
    ["ListNewMessages", "list-new-messages"],
    ["CopyMessage", "copy-message"],
    ["DeleteCopied", "delete-copied"],
  ];
  const traced = new Set<Fn>(
    functions
      .filter(([, r]) => (r.Properties?.TracingConfig as { Mode?: string } | undefined)?.Mode === "Active")
      .flatMap(([id]) => FN_OF_ID.filter(([prefix]) => id.startsWith(prefix)).map(([, fn]) => fn)),
  );
  const memory: Record<string, number> = {};
  for (const [id, r] of functions) memory[id] = Number(r.Properties?.MemorySize ?? 128);
  const providerJson = Template.fromStack(
    new ProviderStack(new App(), { opsEmail: "noc@provider.example" }),
  ).toJSON() as TemplateJson & { Resources: Record<string, { Type: string }> };
  return {
    provider: {
      cloudWatch: cloudWatchFixedCost(providerJson),
      kmsKeys: Object.values(providerJson.Resources).filter((r) => r.Type === "AWS::KMS::Key").length,
    },
    cloudWatch: cloudWatchFixedCost(json),
    cloudWatchWithDashboard: cloudWatchFixedCost(dashboard.template.toJSON() as TemplateJson),
    eventSourceMappings: esms,
    traced,
    workQueueDataKeyReuseSeconds: Number(
      [...queues.values()].find(
        (q) => q.Properties?.FifoQueue === true && q.Properties?.RedrivePolicy !== undefined,
      )?.Properties?.KmsDataKeyReusePeriodSeconds ?? 300,
    ),
    memory,
    kmsKeys: resources.filter(([, r]) => r.Type === "AWS::KMS::Key").length,
    rules: resources.filter(([, r]) => r.Type === "AWS::Events::Rule").length,
  };
}

/** The child container: invoke a function with an event, get the measured invocation. */
interface Container {
  invoke(fn: Fn, event: unknown): Promise<Invocation>;
  stop(): void;
}

async function startContainer(
  script: string,
  env: NodeJS.ProcessEnv,
  take: () => CountedRequest[],
): Promise<Container> {
  const child = spawn(process.execPath, [script], { env, stdio: ["ignore", "ignore", "inherit", "ipc"] });
  let next = 0;
  const waiting = new Map<number, (message: Record<string, unknown>) => void>();
  await new Promise<void>((resolve, reject) => {
    child.once("error", reject);
    child.on("message", (message: Record<string, unknown>) => {
      if (message.ready === true) resolve();
      const id = message.id as number | undefined;
      if (id !== undefined) waiting.get(id)?.(message);
    });
  });
  return {
    async invoke(fn, event) {
      take();
      const id = ++next;
      const message = await new Promise<Record<string, unknown>>((resolve) => {
        waiting.set(id, resolve);
        child.send({ id, fn, event, memoryMiB: MEMORY[fn] });
      });
      waiting.delete(id);
      if (message.error !== undefined) throw new Error(`${fn} failed: ${String(message.error)}`);
      return {
        fn,
        response: message.response,
        initMs: message.initMs as number,
        durationMs: message.durationMs as number,
        cpuMs: message.cpuMs as number,
        logBytes: message.logBytes as number,
        logLines: message.logLines as number,
        metrics: message.metrics as string[],
        requests: take(),
      };
    },
    stop: () => {
      if (child.exitCode === null) child.kill("SIGKILL");
    },
  };
}

/** The last message a function sent to the queue whose URL ends with `queueSuffix`. */
function sentBodies(inv: Invocation, queueUrl: string): string[] {
  const bodies: string[] = [];
  for (const r of inv.requests) {
    if (r.service !== "sqs" || r.body === undefined) continue;
    const input = JSON.parse(r.body) as {
      QueueUrl?: string;
      MessageBody?: string;
      Entries?: { MessageBody: string }[];
    };
    if (input.QueueUrl !== queueUrl) continue;
    if (input.MessageBody !== undefined) bodies.push(input.MessageBody);
    for (const e of input.Entries ?? []) bodies.push(e.MessageBody);
  }
  return bodies;
}

function pollEvent(queueArn: string, body: string) {
  return sqsEvent(queueArn, [
    { MessageId: crypto.randomUUID(), ReceiptHandle: crypto.randomUUID(), Body: body },
  ]);
}

interface Measured {
  /** The keeper's first tick (cold container): it writes the mailbox's chain item, polls nothing. */
  readonly keeperCold: Invocation;
  /** Keeper ticks with no poll due (the mailbox's next poll set far ahead). */
  readonly keeper: Invocation[];
  /** Keeper ticks that poll the mailbox (pollSeconds 60: the keeper polls it itself). */
  readonly firstPoll: Invocation;
  readonly idle: Invocation[];
  readonly pollNew: Invocation[];
  /** The poll after the copy (the message gone from the server, or due for a delete pass). */
  readonly pollAfter: Invocation[];
  readonly copyCold: Invocation;
  readonly copy: Invocation[];
  /** Delete-copied, when the poll after the copy started a pass (not with deleteAfter "immediately"). */
  readonly deleteCold: Invocation | undefined;
  readonly deletes: Invocation[];
  /** The same mailbox at pollSeconds 10 (a second container): the keeper's restart of its chain, then idle chain polls. */
  readonly chainStart: Invocation;
  readonly chainFirst: Invocation;
  readonly chainIdle: Invocation[];
  /**
   * Warm keeper ticks, no poll due, that checked the mailbox's mail (it is checked at one tick in
   * `MAIL_CHECK_EVERY_TICKS`, by the minute: shared/core/tenant-problems.ts `mailChecksDue`).
   */
  readonly mailChecks: Invocation[];
  /**
   * Warm keeper ticks that read the two problem queues' depth (at one tick in
   * `MAIL_CHECK_EVERY_TICKS`, the minutes 0 mod 5: shared/core/tenant-problems.ts `queueDepthsDue`).
   */
  readonly depthReads: Invocation[];
}

/** The keeper's mail checks: the only Queries with a filter (`Ledger.findInState` on `byState`). */
function isMailCheck(r: CountedRequest): boolean {
  return r.filtered === true;
}

/** The keeper's read of the problem queues' depth: the only GetQueueAttributes of the lister. */
function isDepthRead(r: CountedRequest): boolean {
  return r.service === "sqs" && r.action === "GetQueueAttributes";
}

/**
 * The invocation without its mail checks and queue depth reads: they are priced once per check
 * or read (`keeperPerMailbox`, `depthReadsPerTick`), whichever tick of the run happened to fall on
 * their minute.
 */
function withoutMailChecks(inv: Invocation): Invocation {
  return { ...inv, requests: inv.requests.filter((r) => !isMailCheck(r) && !isDepthRead(r)) };
}

/**
 * The price per tick of the requests `pick` selects, made at one tick in MAIL_CHECK_EVERY_TICKS:
 * the mean over the ticks that made them, spread over the five.
 */
function perRotatedTick(ticks: readonly Invocation[], pick: (r: CountedRequest) => boolean): Lines {
  const lines: Lines = {};
  for (const inv of ticks) {
    add(lines, priceRequests(inv.requests.filter(pick)), 1 / ticks.length / MAIL_CHECK_EVERY_TICKS);
  }
  return lines;
}

/** Sleeps until 2 s into the next minute whose tick is `due` (at most 5 minutes). */
async function untilMinute(due: (at: number) => boolean): Promise<void> {
  const now = Date.now();
  for (let k = 0; k <= MAIL_CHECK_EVERY_TICKS; k++) {
    const at = (Math.floor(now / 60_000) + k) * 60_000 + 2_000;
    if (at > now && due(at)) {
      await new Promise((resolve) => setTimeout(resolve, at - now));
      return;
    }
  }
}

/** Far enough ahead that no keeper tick of the run finds the mailbox due. */
const NEVER_DUE = 8_640_000_000_000_000;

async function measure(idlePolls: number, messages: number, keeperTicks: number): Promise<Measured> {
  const rig = await startAwsRig({ pollSeconds: 60, fifo: true });
  const stamp = Date.now().toString(36);
  const pollQueueUrl = await rig.fauxqs.createQueue(`poll-${stamp}`, { VisibilityTimeout: "1800" });
  const pollQueueArn = `arn:aws:sqs:${STAND_IN_REGION}:000000000000:poll-${stamp}`;
  const deadLetters = await rig.fauxqs.createQueue(`dead-${stamp}.fifo`, { FifoQueue: "true" });
  const failedDeletes = await rig.fauxqs.createQueue(`failed-${stamp}`);
  // One Secrets Manager secret per tenant (docs/deploy.md section 2): the rig's POP3 password
  // and Google credentials become two keys of one JSON secret, read once per container.
  const tenantSecret = await oneSecretPerTenant(rig.env);
  const proxies = await startCostProxies({
    sqs: String(rig.env.AWS_ENDPOINT_URL_SQS),
    dynamodb: String(rig.env.AWS_ENDPOINT_URL_DYNAMODB),
    s3: String(rig.env.AWS_ENDPOINT_URL_S3),
    secretsManager: tenantSecret.endpoint,
  });
  // "A minute passed": the bench moves the mailbox's next poll time in the chain item directly
  // (not through the counting proxy), as the keeper's clock would.
  const config = JSON.parse(tenantSecret.tenantConfig) as { tenant: string; mailboxes: { id: string }[] };
  const mailboxId = config.mailboxes[0]?.id ?? "";
  const direct = DynamoDBDocumentClient.from(
    new DynamoDBClient({
      endpoint: String(rig.env.AWS_ENDPOINT_URL_DYNAMODB),
      region: STAND_IN_REGION,
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
    }),
  );
  const nextPollAt = (at: number) =>
    direct.send(
      new UpdateCommand({
        TableName: String(rig.env[ENV_NAMES.ledgerTable]),
        Key: chainKey(config.tenant, mailboxId),
        UpdateExpression: "SET nextPollAt = :at",
        ExpressionAttributeValues: { ":at": at },
      }),
    );
  const { POWERTOOLS_LOG_LEVEL: _quiet, ...rigEnv } = rig.env;
  const env: NodeJS.ProcessEnv = {
    ...rigEnv,
    ...proxies.env,
    [ENV_NAMES.tenantConfig]: tenantSecret.tenantConfig,
    // No POLL_QUEUE_URL: a tenant whose mailboxes poll every minute or slower has no poll queue.
    [LISTER_ENV_NAMES.deadLetterQueueUrl]: deadLetters,
    [LISTER_ENV_NAMES.failedDeletesQueueUrl]: failedDeletes,
    // The stack's levels: application INFO (Lambda sets AWS_LAMBDA_LOG_LEVEL), metrics on.
    AWS_LAMBDA_LOG_LEVEL: "INFO",
    POWERTOOLS_METRICS_DISABLED: "false",
  };
  const script = await rig.bundleEntry(fileURLToPath(new URL("./support/cost-child.ts", import.meta.url)));
  let container = await startContainer(script, env, () => proxies.take());
  try {
    const lister = (event: unknown) => container.invoke("list-new-messages", event);
    const polled = (inv: Invocation) => (inv.response as { polled?: number }).polled ?? 0;
    const keeperCold = await lister({ keeper: true });
    if ((keeperCold.response as { started?: number }).started !== 1) {
      throw new Error(`the keeper started no chain: ${JSON.stringify(keeperCold.response)}`);
    }
    const keeper: Invocation[] = [];
    for (let i = 0; i < keeperTicks; i++) {
      await nextPollAt(NEVER_DUE);
      const tick = await lister({ keeper: true });
      if (polled(tick) !== 0) throw new Error("a keeper tick polled a mailbox not due");
      keeper.push(tick);
    }
    // Each mailbox's mail is checked, and the problem queues' depth read, at one tick in five,
    // by the minute: when none of these ticks fell on such a minute, wait for it and tick once more.
    const mailChecks = keeper.filter((inv) => inv.requests.some(isMailCheck));
    const depthReads = keeper.filter((inv) => inv.requests.some(isDepthRead));
    while (mailChecks.length === 0 || depthReads.length === 0) {
      await untilMinute(
        (at) =>
          (mailChecks.length === 0 && mailChecksDue(mailboxId, at)) ||
          (depthReads.length === 0 && queueDepthsDue(at)),
      );
      await nextPollAt(NEVER_DUE);
      const tick = await lister({ keeper: true });
      if (tick.requests.some(isMailCheck)) mailChecks.push(tick);
      if (tick.requests.some(isDepthRead)) depthReads.push(tick);
    }
    const poll = async () => {
      await nextPollAt(0);
      const inv = await lister({ keeper: true });
      if (polled(inv) !== 1) throw new Error(`the keeper did not poll: ${JSON.stringify(inv.response)}`);
      if (sentBodies(inv, pollQueueUrl).length > 0) throw new Error("a keeper-run poll sent a poll message");
      return inv;
    };
    const firstPoll = await poll();
    const idle: Invocation[] = [];
    for (let i = 0; i < idlePolls; i++) idle.push(await poll());

    const attachment = Math.floor(((MESSAGE_BYTES - 1200) * 57) / 78);
    const pollNew: Invocation[] = [];
    const pollAfter: Invocation[] = [];
    const copy: Invocation[] = [];
    const deletes: Invocation[] = [];
    let copyCold: Invocation | undefined;
    let deleteCold: Invocation | undefined;
    for (let i = 0; i <= messages; i++) {
      await rig.deliver(messageWithAttachment(attachment, 9000 + i).bytes);
      const listed = await poll();
      const { file, records } = await rig.receiveEventFile(1);
      if (records !== 1) throw new Error(`expected one copy job, got ${records}`);
      const job = JSON.parse(await readFile(file, "utf8")) as SQSEvent;
      const copied = await container.invoke("copy-message", job);
      // As the event source mapping does after a successful batch (a FIFO group stays blocked until then).
      for (const record of job.Records) {
        await rig.fauxqs.sqs.send(
          new DeleteMessageCommand({ QueueUrl: rig.queueUrl, ReceiptHandle: record.receiptHandle }),
        );
      }
      // With deleteAfter "immediately" the copier deletes in its own session; a retained message
      // (deleteAfter Nd) falls due later and the lister starts delete-copied for it.
      const after = await poll();
      const invoke = after.requests.find((r) => r.service === "lambda");
      const deleted =
        invoke?.body === undefined
          ? undefined
          : await container.invoke("delete-copied", JSON.parse(invoke.body));
      if (i === 0) {
        copyCold = copied;
        deleteCold = deleted;
        continue;
      }
      pollNew.push(listed);
      pollAfter.push(after);
      copy.push(copied);
      if (deleted !== undefined) deletes.push(deleted);
    }
    if (copyCold === undefined) throw new Error("no message measured");
    const imported = rig.gmail.messages().length;
    if (imported !== messages + 1) throw new Error(`Gmail holds ${imported} of ${messages + 1} messages`);

    // The same mailbox at pollSeconds 10, in a new container of a stack with a poll queue: the
    // keeper restarts its chain (the item's next poll is long overdue), then each poll message
    // polls once and sends the next, as the poll queue's event source mapping would deliver it.
    container.stop();
    const tenSecondConfig = JSON.parse(tenantSecret.tenantConfig) as { mailboxes: { pollSeconds: number }[] };
    for (const mailbox of tenSecondConfig.mailboxes) mailbox.pollSeconds = 10;
    container = await startContainer(
      script,
      {
        ...env,
        [ENV_NAMES.tenantConfig]: JSON.stringify(tenSecondConfig),
        [LISTER_ENV_NAMES.pollQueueUrl]: pollQueueUrl,
      },
      () => proxies.take(),
    );
    await nextPollAt(0);
    const chainStart = await lister({ keeper: true });
    let [pollBody] = sentBodies(chainStart, pollQueueUrl);
    if (pollBody === undefined) throw new Error("the keeper restarted no poll chain");
    const chainPoll = async () => {
      const inv = await lister(pollEvent(pollQueueArn, pollBody ?? ""));
      const [sent] = sentBodies(inv, pollQueueUrl);
      if (sent === undefined)
        throw new Error(`a poll sent no next poll message: ${JSON.stringify(inv.response)}`);
      pollBody = sent;
      return inv;
    };
    const chainFirst = await chainPoll();
    const chainIdle: Invocation[] = [];
    for (let i = 0; i < idlePolls; i++) chainIdle.push(await chainPoll());
    return {
      keeperCold,
      keeper,
      firstPoll,
      idle,
      pollNew,
      pollAfter,
      copyCold,
      copy,
      deleteCold,
      deletes,
      chainStart,
      chainFirst,
      chainIdle,
      mailChecks,
      depthReads,
    };
  } finally {
    container.stop();
    direct.destroy();
    await proxies.stop();
    await tenantSecret.stop();
    await rig.close();
  }
}

/**
 * A Secrets Manager stand-in holding the tenant's one secret (`pop2gmail/<tenant>/credentials`,
 * a JSON object: the POP3 password and the Google credentials object under their keys), and the
 * rig's tenant config with its references rewritten to `name#key`.
 */
async function oneSecretPerTenant(
  rigEnv: NodeJS.ProcessEnv,
): Promise<{ endpoint: string; tenantConfig: string; stop(): Promise<void> }> {
  const client = new SecretsManagerClient({
    endpoint: String(rigEnv.AWS_ENDPOINT_URL_SECRETS_MANAGER),
    region: STAND_IN_REGION,
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
  });
  const config = JSON.parse(String(rigEnv[ENV_NAMES.tenantConfig])) as {
    tenant: string;
    mailboxes: { id: string; pop3: { passwordSecret: string }; gmail: { credentialsSecret: string } }[];
  };
  const name = `pop2gmail/${config.tenant}/credentials`;
  const value: Record<string, unknown> = {};
  for (const mailbox of config.mailboxes) {
    const read = async (secret: string) =>
      (await client.send(new GetSecretValueCommand({ SecretId: secret }))).SecretString ?? "";
    value[`pop3:${mailbox.id}`] = await read(mailbox.pop3.passwordSecret);
    value[`google:${mailbox.id}`] = JSON.parse(await read(mailbox.gmail.credentialsSecret)) as unknown;
    mailbox.pop3.passwordSecret = `${name}#pop3:${mailbox.id}`;
    mailbox.gmail.credentialsSecret = `${name}#google:${mailbox.id}`;
  }
  client.destroy();
  const standIn = await startSecretsManagerStandIn();
  standIn.secrets.set(name, JSON.stringify(value));
  return { endpoint: standIn.endpoint, tenantConfig: JSON.stringify(config), stop: () => standIn.stop() };
}

function fmt(d: number): string {
  return d >= 1 ? `$${d.toFixed(2)}` : d >= 0.01 ? `$${d.toFixed(3)}` : `$${d.toFixed(4)}`;
}

function dominant(lines: Lines, scale = 1): string {
  const sorted = Object.entries(lines).sort((a, b) => b[1] - a[1]);
  const t = total(lines);
  return sorted
    .slice(0, 3)
    .map(([k, v]) => `${k} ${fmt(v * scale)} (${Math.round((v / t) * 100)}%)`)
    .join(", ");
}

async function main(): Promise<void> {
  const idlePolls = Number(process.argv[2] ?? 30);
  const messageCount = Number(process.argv[3] ?? 10);
  const keeperTicks = Number(process.argv[4] ?? 10);
  const perDay = Number(process.argv[5] ?? 50);
  const mailboxesPerTenant = 5;
  const tenants = 500;
  const machine = await machineLine();
  console.log(`cost: ${machine}`);
  const synthStart = performance.now();
  const facts = templateFacts(mailboxesPerTenant);
  console.log(
    `template (${mailboxesPerTenant} mailboxes, synthesized in ${((performance.now() - synthStart) / 1000).toFixed(0)} s): ${facts.cloudWatch.alarms} alarms reading ${facts.cloudWatch.alarmMetrics.length} metrics, always-emitted metrics ${facts.cloudWatch.alwaysEmittedMetrics.join(", ")}, ${facts.eventSourceMappings.length} event source mappings (${facts.eventSourceMappings.map((e) => `${e.queueFifo ? "FIFO" : "standard"}${e.maxConcurrency ? " with max concurrency" : ""}`).join("; ")}), traced ${[...facts.traced].join(", ") || "none"}, work queue data keys reused ${facts.workQueueDataKeyReuseSeconds} s, ${facts.kmsKeys} KMS key(s), ${facts.rules} EventBridge rule(s), memory ${Object.values(facts.memory).join("/")} MB`,
  );
  const measured = await measure(idlePolls, messageCount, keeperTicks);
  // Every keeper tick of the run without its mail checks, priced apart per check below.
  const m: Measured = {
    ...measured,
    keeperCold: withoutMailChecks(measured.keeperCold),
    keeper: measured.keeper.map(withoutMailChecks),
    firstPoll: withoutMailChecks(measured.firstPoll),
    idle: measured.idle.map(withoutMailChecks),
    pollNew: measured.pollNew.map(withoutMailChecks),
    pollAfter: measured.pollAfter.map(withoutMailChecks),
    chainStart: withoutMailChecks(measured.chainStart),
  };
  const traced = facts.traced;

  const describe = (name: string, invs: readonly Invocation[]) => {
    const u = units(invs);
    console.log(
      `${name} (n=${invs.length}): wall median ${median(invs.map((i) => i.durationMs)).toFixed(1)} ms, CPU ${median(invs.map((i) => i.cpuMs)).toFixed(1)} ms, scaled ${(median(invs.map((i) => billedSeconds(i, "scaled"))) * 1000).toFixed(0)} ms; logs ${median(invs.map((i) => i.logBytes)).toFixed(0)} B in ${median(invs.map((i) => i.logLines)).toFixed(0)} lines; metrics ${[...new Set(invs.flatMap((i) => i.metrics))].join(", ") || "none"}; DynamoDB ${u.read.toFixed(1)} RRU + ${u.write.toFixed(1)} WRU (items written ${u.items.length ? `${Math.min(...u.items)}-${Math.max(...u.items)} B` : "none"}); requests ${Object.entries(
        requestCounts(invs),
      )
        .map(([k, v]) => `${k} ${Number(v.toFixed(2))}`)
        .join(", ")}`,
    );
  };
  for (const [name, inv] of [
    ["keeper tick", m.keeper[0]],
    ["keeper tick with an idle poll (60 s)", m.idle[0]],
    ["idle chain poll (10 s)", m.chainIdle[0]],
    ["poll listing one new message", m.pollNew[0]],
    ["poll after the copy", m.pollAfter[0]],
    ["copy", m.copy[0]],
  ] as const) {
    if (inv !== undefined) console.log(`DynamoDB calls, ${name}: ${dynamoCalls(inv).join(", ")}`);
  }
  describe("keeper tick, cold container", [m.keeperCold]);
  describe("keeper tick, warm", m.keeper);
  describe("keeper tick checking the mailbox's mail (with its checks)", m.mailChecks);
  describe("keeper tick reading the problem queues' depth (with its reads)", m.depthReads);
  describe("keeper tick with the container's first poll", [m.firstPoll]);
  describe("keeper tick with an idle poll (pollSeconds 60)", m.idle);
  describe("keeper tick restarting the 10 s chain", [m.chainStart]);
  describe("first chain poll", [m.chainFirst]);
  describe("idle chain poll (pollSeconds 10)", m.chainIdle);
  describe("poll listing one new message", m.pollNew);
  describe("poll after the copy", m.pollAfter);
  describe("copy, cold", [m.copyCold]);
  describe("copy one ~100 KB message", m.copy);
  if (m.deleteCold !== undefined) describe("delete-copied, cold", [m.deleteCold]);
  if (m.deletes.length > 0) describe("delete-copied one message", m.deletes);

  const esmPollers = (fifo: boolean) => facts.eventSourceMappings.filter((e) => e.queueFifo === fifo);
  const results: Record<string, unknown> = {};
  for (const scaling of ["scaled", "measured"] as const) {
    const mean = (invs: readonly Invocation[]) => meanLines(invs, scaling, traced);
    // The keeper's tick, and the part of it that grows with the mailboxes: its mail checks on the
    // byState index (shared/core/tenant-problems.ts), one mailbox's worth here, at one tick in
    // MAIL_CHECK_EVERY_TICKS (the mean over the ticks that checked, spread over the five).
    const keeper = mean(m.keeper);
    const keeperPerMailbox = perRotatedTick(m.mailChecks, isMailCheck);
    // The problem queues' depth (2 GetQueueAttributes), read at one tick in MAIL_CHECK_EVERY_TICKS.
    const depthReadsPerTick = perRotatedTick(m.depthReads, isDepthRead);
    // pollSeconds 60 and slower: the keeper's tick polls the mailbox in its own invocation; a poll
    // costs what a tick with a poll costs over one without (no Lambda request, no SQS).
    const idle = mean(m.idle);
    const perPollKeeper = minus(idle, keeper);
    // Below 60: each poll is an invocation from the poll queue: the poll, its SendMessage, and
    // the mapping's one receive that returns the message and one DeleteMessageBatch (a batch of
    // one at these rates), standard queue, SSE-SQS (no KMS request).
    const perPollChain = add(mean(m.chainIdle), {
      "sqs (event source mappings)": 2 * AWS_PRICE.sqs.standardRequest,
    });
    // One message: the extra of the poll that lists it and of the poll that starts its delete
    // pass over an idle poll, the copier, delete-copied, and the work queue's (FIFO) event
    // source mapping: one receive and one delete for the batch.
    const perMessage: Lines = {};
    add(perMessage, minus(mean(m.pollNew), idle));
    add(perMessage, minus(mean(m.pollAfter), idle));
    add(perMessage, mean(m.copy));
    if (m.deletes.length > 0) add(perMessage, mean(m.deletes));
    add(perMessage, { "sqs (event source mappings)": 2 * AWS_PRICE.sqs.fifoRequest });
    // SQS SSE-KMS, the work queue: KMS requests = (period / data-key reuse) x (2 x producers +
    // consumers) (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html).
    // At most one window per message (its send and its receive: 3), and at most one window per
    // reuse period for the tenant (2 producers, the lister and the copier re-sending, and one
    // consumer: 5): the smaller bound is taken, per message below or per tenant in the fixed part.
    // Plus the copier's DynamoDB table key, as if every message opened a new 5-minute window.
    const sqsWindowsPerMonth = SECONDS_PER_MONTH / facts.workQueueDataKeyReuseSeconds;
    const sqsKmsPerMessage = 3;
    const sqsKmsPerTenant = sqsWindowsPerMonth * 5;
    const tenantMessagesPerMonth = perDay * 30 * mailboxesPerTenant;
    const sqsKmsPerTenantBound = sqsKmsPerTenant < tenantMessagesPerMonth * sqsKmsPerMessage;
    add(perMessage, { "kms requests": (sqsKmsPerTenantBound ? 1 : 1 + sqsKmsPerMessage) * KMS_REQUEST });
    // S3: the archived copy's first month in Standard. S3 lifecycle does not move objects under
    // 128 KB to IA (https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-transition-general-considerations.html),
    // so a ~100 KB message pays no transition and stays in Standard: each month kept adds this again.
    add(perMessage, {
      "s3 storage (first month)":
        (MESSAGE_BYTES / GIB) * AWS_PRICE.s3.standardGbMonth +
        (MESSAGE_BYTES >= 128 * 1024 ? AWS_PRICE.s3.iaTransitionPer1k / 1000 : 0),
    });

    const perPollAt = (pollSeconds: number) => (pollSeconds < 60 ? perPollChain : perPollKeeper);
    const variable = (pollSeconds: number): Lines => {
      const lines: Lines = {};
      add(lines, perPollAt(pollSeconds), SECONDS_PER_MONTH / pollSeconds);
      add(lines, keeperPerMailbox, MINUTES_PER_MONTH);
      add(lines, perMessage, perDay * 30);
      return lines;
    };
    const perPoll = perPollKeeper;

    // Fixed per tenant-month, for a tenant whose mailboxes poll every minute or slower (no poll queue).
    const fixed: Lines = {
      "kms key": AWS_PRICE.kms.keyMonth * facts.kmsKeys,
      "secrets manager secret (one per tenant)": AWS_PRICE.secretsManager.secretMonth,
      "cloudwatch alarms": facts.cloudWatch.dollars.alarms,
      "cloudwatch always-on metrics": facts.cloudWatch.dollars.alwaysEmittedMetrics,
    };
    add(fixed, keeper, MINUTES_PER_MONTH);
    add(fixed, depthReadsPerTick, MINUTES_PER_MONTH);
    // Idle long polling of the event source mappings: documented at five concurrent pollers when
    // traffic is low, two at best, and no fewer than five with maximum concurrency set
    // (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html); five counted.
    const idleMapping = (fifo: boolean) =>
      5 *
      LONG_POLLS_PER_POLLER_MINUTE *
      MINUTES_PER_MONTH *
      (fifo ? AWS_PRICE.sqs.fifoRequest : AWS_PRICE.sqs.standardRequest);
    for (const fifo of [true, false]) {
      add(fixed, { "sqs (event source mappings)": esmPollers(fifo).length * idleMapping(fifo) });
    }
    // With a mailbox below a minute the stack adds the poll queue and its mapping (standard).
    const pollQueueFixed: Lines = { "sqs (poll queue's mapping, idle long polls)": idleMapping(false) };
    // KMS requests on the tenant key that happen whatever the traffic: the lister's DynamoDB
    // table key every 5 minutes (the poll queue, when there is one, is SSE-SQS: none).
    add(fixed, { "kms requests": (SECONDS_PER_MONTH / DYNAMODB_TABLE_KEY_SECONDS) * KMS_REQUEST });
    // The work queue's data keys, when the tenant bound is the smaller (see perMessage).
    if (sqsKmsPerTenantBound) add(fixed, { "kms requests": sqsKmsPerTenant * KMS_REQUEST });
    // Cold starts: the init phase is billed; one per function and hour (assumed), each the
    // module load plus what the first invocation took over a warm one, and its secret reads.
    const coldExtra = (cold: Invocation, warm: readonly Invocation[]): Lines => {
      const extra: Invocation = {
        ...cold,
        durationMs: cold.initMs + Math.max(0, cold.durationMs - median(warm.map((w) => w.durationMs))),
        cpuMs: cold.cpuMs,
        logBytes: 0,
        logLines: 0,
        requests: cold.requests.filter((r) => r.service === "secretsmanager"),
      };
      const lines = priceInvocation(extra, scaling, new Set());
      delete lines["lambda requests"];
      return lines;
    };
    const cold: Lines = {};
    add(cold, coldExtra(m.keeperCold, m.keeper));
    add(cold, coldExtra(m.firstPoll, m.idle));
    add(cold, coldExtra(m.copyCold, m.copy));
    if (m.deleteCold !== undefined && m.deletes.length > 0) add(cold, coldExtra(m.deleteCold, m.deletes));
    const coldLines: Lines = {};
    for (const [k, v] of Object.entries(cold)) coldLines[`cold starts: ${k}`] = v;
    add(fixed, coldLines, COLD_STARTS_PER_FUNCTION_MONTH);

    // On-event custom metrics: a metric costs in the hours it gets data. Per tenant, Poisson
    // arrivals of the tenant's messages.
    const onEvent = [...new Set([...m.copy, ...m.deletes, ...m.pollNew].flatMap((i) => i.metrics))].filter(
      (name) => METRIC_EMISSION[name as MetricName] === "on-event",
    );
    const tenantOnEvent = (mailboxes: number): Lines => {
      const perHour = (perDay * mailboxes) / 24;
      return {
        "cloudwatch on-event metrics":
          onEvent.length * (1 - Math.exp(-perHour)) * AWS_PRICE.cloudWatch.customMetricMonth,
      };
    };

    const v60 = variable(60);
    const v10 = variable(10);
    const tenantFixed = total(fixed);
    const dashboard = facts.cloudWatchWithDashboard.dollars.dashboards;
    const projection = (pollSeconds: number) => {
      const v = variable(pollSeconds);
      const lines: Lines = {};
      add(lines, fixed, tenants);
      if (pollSeconds < 60) add(lines, pollQueueFixed, tenants);
      add(lines, tenantOnEvent(mailboxesPerTenant), tenants);
      add(lines, v, tenants * mailboxesPerTenant);
      add(lines, {
        "provider stack (fleet dashboard, ops key)":
          facts.provider.cloudWatch.dollars.total + facts.provider.kmsKeys * AWS_PRICE.kms.keyMonth,
      });
      return lines;
    };
    const p60 = projection(60);
    const p10 = projection(10);
    const sensitivity = (pollSeconds: number) =>
      (SECONDS_PER_MONTH / pollSeconds) *
      0.1 *
      (MEMORY["list-new-messages"] / 1024) *
      AWS_PRICE.lambda.arm64GbSecond;

    console.log(
      `\n== ${scaling === "scaled" ? "durations scaled to Lambda's CPU share (headline)" : "durations as measured here"} ==`,
    );
    console.log("| line | dollars/month | target | dominant lines |");
    console.log("|---|---|---|---|");
    console.log(
      `| variable per mailbox, pollSeconds 60, ${perDay} msgs/day | ${fmt(total(v60))} | <= $0.15 | ${dominant(v60)} |`,
    );
    console.log(
      `| variable per mailbox, pollSeconds 10, ${perDay} msgs/day | ${fmt(total(v10))} | <= $1.00 | ${dominant(v10)} |`,
    );
    console.log(
      `| of which idle (0 msgs/day), 60 s (keeper's tick) / 10 s (poll chain) | ${fmt(total(variable(60)) - total(perMessage) * perDay * 30)} / ${fmt(total(variable(10)) - total(perMessage) * perDay * 30)} | | per poll, per million: keeper-run ${fmt(total(perPollKeeper) * 1e6)} (${dominant(perPollKeeper, 1e6)}), chain ${fmt(total(perPollChain) * 1e6)} (${dominant(perPollChain, 1e6)}); keeper's mail checks ${fmt(total(keeperPerMailbox) * MINUTES_PER_MONTH)} a mailbox-month |`,
    );
    console.log(
      `| of which per message | ${fmt(total(perMessage) * 1000)} per 1,000 | | per 1,000: ${dominant(perMessage, 1000)} |`,
    );
    console.log(
      `| fixed per tenant, no dashboard, no mailbox below 60 s | ${fmt(tenantFixed)} | <= $2.50 | ${dominant(fixed)} |`,
    );
    console.log(
      `| fixed per tenant, no dashboard, a mailbox below 60 s (+ poll queue's mapping) | ${fmt(tenantFixed + total(pollQueueFixed))} | | + ${fmt(total(pollQueueFixed))} |`,
    );
    console.log(
      `| fixed per tenant, with dashboard | ${fmt(tenantFixed + dashboard)} | | + dashboard ${fmt(dashboard)} |`,
    );
    console.log(
      `| on-event metrics per tenant (${mailboxesPerTenant} x ${perDay} msgs/day) | ${fmt(total(tenantOnEvent(mailboxesPerTenant)))} | | ${onEvent.join(", ") || "none"} |`,
    );
    console.log(
      `| ${tenants} tenants x ${mailboxesPerTenant} mailboxes, 60 s | ${fmt(total(p60))} | | ${dominant(p60)} |`,
    );
    console.log(
      `| ${tenants} tenants x ${mailboxesPerTenant} mailboxes, 10 s | ${fmt(total(p10))} | | ${dominant(p10)} |`,
    );
    // The poll queue's mapping may run 2 pollers instead of 5 (no maximum concurrency set on it).
    console.log(
      `| fixed with a mailbox below 60 s, the poll queue's mapping at 2 pollers (documented best case) | ${fmt(tenantFixed + (total(pollQueueFixed) * 2) / 5)} | | |`,
    );
    console.log(
      `| sensitivity: +100 ms network wait per poll | +${fmt(sensitivity(60))} (60 s), +${fmt(sensitivity(10))} (10 s) per mailbox | | |`,
    );
    console.log(
      "fixed lines:",
      Object.entries(fixed)
        .map(([k, v]) => `${k} ${fmt(v)}`)
        .join("; "),
    );
    for (const [name, lines] of [
      ["per keeper-run poll", perPoll],
      ["per chain poll", perPollChain],
    ] as const) {
      console.log(
        `${name} (millionths of a dollar):`,
        Object.entries(lines)
          .map(([k, v]) => `${k} ${(v * 1e6).toFixed(3)}`)
          .join("; "),
      );
    }
    console.log(
      "per-message lines (millionths):",
      Object.entries(perMessage)
        .map(([k, v]) => `${k} ${(v * 1e6).toFixed(2)}`)
        .join("; "),
    );
    results[scaling] = {
      perPollKeeper,
      perPollChain,
      keeperPerMailbox,
      pollQueueFixed,
      perMessage,
      variable60: v60,
      variable10: v10,
      fixed,
      dashboard,
      onEventPerTenant: tenantOnEvent(mailboxesPerTenant),
      projection60: p60,
      projection10: p10,
      totals: {
        variable60: total(v60),
        variable10: total(v10),
        fixedNoDashboard: tenantFixed,
        fixedWithDashboard: tenantFixed + dashboard,
        projection60: total(p60),
        projection10: total(p10),
      },
    };
  }

  const summary = (invs: readonly Invocation[]) => ({
    n: invs.length,
    wallMedianMs: median(invs.map((i) => i.durationMs)),
    cpuMedianMs: median(invs.map((i) => i.cpuMs)),
    logBytesMedian: median(invs.map((i) => i.logBytes)),
    logLinesMedian: median(invs.map((i) => i.logLines)),
    metrics: [...new Set(invs.flatMap((i) => i.metrics))],
    dynamodbUnits: units(invs),
    dynamodbCalls: invs[0] === undefined ? [] : dynamoCalls(invs[0]),
    requests: requestCounts(invs),
  });
  await mkdir(new URL("./results/", import.meta.url), { recursive: true });
  await writeFile(
    new URL("./results/cost.json", import.meta.url),
    `${JSON.stringify(
      {
        machine,
        command: `npx tsx bench/cost.ts ${idlePolls} ${messageCount} ${keeperTicks} ${perDay}`,
        assumptions: {
          messageBytes: MESSAGE_BYTES,
          messagesPerDay: perDay,
          mailboxesPerTenant,
          tenants,
          eventSourceMappingPollers: 5,
          longPollsPerPollerMinute: LONG_POLLS_PER_POLLER_MINUTE,
          coldStartsPerFunctionMonth: COLD_STARTS_PER_FUNCTION_MONTH,
          xrayTracedFunctions: [...traced],
        },
        template: {
          alarms: facts.cloudWatch.alarms,
          alarmMetrics: facts.cloudWatch.alarmMetrics.length,
          alwaysEmittedMetrics: facts.cloudWatch.alwaysEmittedMetrics,
          eventSourceMappings: facts.eventSourceMappings,
          traced: [...traced],
          kmsKeys: facts.kmsKeys,
        },
        measured: {
          keeperCold: summary([m.keeperCold]),
          keeper: summary(m.keeper),
          mailChecks: summary(m.mailChecks),
          firstPoll: summary([m.firstPoll]),
          keeperIdlePoll: summary(m.idle),
          chainStart: summary([m.chainStart]),
          chainFirst: summary([m.chainFirst]),
          chainIdlePoll: summary(m.chainIdle),
          pollNew: summary(m.pollNew),
          pollAfter: summary(m.pollAfter),
          copyCold: summary([m.copyCold]),
          copy: summary(m.copy),
          ...(m.deleteCold === undefined ? {} : { deleteCold: summary([m.deleteCold]) }),
          ...(m.deletes.length === 0 ? {} : { deletes: summary(m.deletes) }),
        },
        dollars: results,
      },
      null,
      2,
    )}\n`,
  );
  console.log("\nwrote bench/results/cost.json");
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
