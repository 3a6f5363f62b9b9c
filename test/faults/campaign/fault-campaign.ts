import { createHash } from "node:crypto";
import { Logger } from "@aws-lambda-powertools/logger";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  type Message,
} from "@aws-sdk/client-sqs";
import type { SQSBatchResponse } from "aws-lambda";
import { createLedgerTable } from "../../../shared/adapters/dynamodb/create-ledger-table";
import { DynamoDbLedger } from "../../../shared/adapters/dynamodb/dynamodb-ledger";
import { S3_FORCE_PATH_STYLE_ENV } from "../../../shared/adapters/lambda/copy-message-deps";
import type { DeleteCopiedEvent } from "../../../shared/adapters/lambda/delete-invoker";
import { ENV_NAMES } from "../../../shared/config/env";
import { METRIC_SERVICE_NAME } from "../../../shared/config/metrics";
import type { LedgerEntry } from "../../../shared/core/model";
import type { PipelineEvent } from "../../../shared/ports/telemetry";
import { STAND_IN_REGION, uniqueName } from "../../fakes/aws-stand-ins";
import { EventLog } from "../../fakes/event-log";
import { OffsetClock } from "../../fakes/offset-clock";
import { quietMetrics } from "../../fakes/quiet-metrics";
import { RawPop3Reader, uidlListing } from "../../fakes/raw-pop3-reader";
import { lambdaContext, sqsEvent } from "../../fakes/sqs-lambda-events";
import { queueDepth, receiptEntries, receiveBatch } from "../../fakes/sqs-queue-driver";
import { generateMailbox } from "../../fixtures/awkward-messages";
import { CampaignWorld, gmailUserOf, type MailboxCredentials, secretNames } from "./campaign-world";
import {
  addServerErrorMiddleware,
  type CampaignDice,
  type CampaignHooks,
  CrashError,
  FAULT_KINDS,
  type FaultKind,
  FaultyArchive,
  FaultyPop3Source,
  FaultyQueue,
  FaultySink,
} from "./fault-decorators";
import { buildLambdaFunctions, type LambdaFunctions } from "./lambda-functions";
import { RetrCuttingProxy } from "./retr-cutting-proxy";
import { FaultDice } from "./seeded-faults";

export const TENANT = "acme";
const USER = "campaign";
const MAILBOX_ID = `${USER}@acme.test`;
const CREDENTIALS: MailboxCredentials = {
  pop3Password: "campaign-pop3-password",
  clientId: "campaign-client-id",
  clientSecret: "campaign-client-secret",
  refreshToken: "campaign-refresh-token",
};

/** Probability per opportunity of each fault while faults are on (see `faultWindowMs`). */
export const DEFAULT_RATES: Readonly<Record<FaultKind, number>> = {
  "crash-after-retr": 0.015,
  "crash-after-archive-put": 0.01,
  "crash-after-verify": 0.01,
  "crash-after-import": 0.015,
  "crash-between-dele-and-quit": 0.07,
  "crash-after-quit": 0.07,
  "crash-after-enqueue": 0.02,
  "quit-never-came": 0.07,
  "login-delay": 0.02,
  "retr-connection-cut": 0.01,
  "s3-5xx-attempt": 0.02,
  "s3-5xx-call": 0.004,
  "dynamodb-5xx-attempt": 0.005,
  "dynamodb-5xx-call": 0.0007,
  "gmail-429": 0.02,
  "gmail-5xx": 0.015,
  "gmail-5xx-after-store": 0.01,
  "gmail-timeout": 0.002,
  "gmail-reset": 0.01,
  "gmail-token-5xx": 0.05,
  "sqs-redelivery": 0.04,
  "sqs-concurrent-redelivery": 0.03,
  "duplicate-enqueue": 0.02,
};

export interface CampaignOptions {
  readonly seed: number;
  readonly messages: number;
  /** Where progress and the report go (the seed first). */
  readonly print: (line: string) => void;
  readonly rates?: Partial<Record<FaultKind, number>>;
  /** A factor on every rate (`FAULTS_INTENSITY`); default 1. */
  readonly intensity?: number;
  /**
   * Virtual time with faults on, from the first poll (default 50 min: past the lister's 30 min
   * re-send of stuck jobs and the 16 min import claim, so those recovery paths and the delete
   * passes they lead to run under faults too). Later rounds are recovery, faults off.
   */
  readonly faultWindowMs?: number;
  /** Rounds after which an unsettled mailbox fails the run. Default 90. */
  readonly maxRounds?: number;
}

/** What the campaign proves and prints. */
export interface CampaignReport {
  readonly seed: number;
  readonly intensity: number;
  readonly messages: number;
  readonly withoutMessageId: number;
  readonly archivedByteExact: number;
  readonly inGmailExactlyOnce: number;
  readonly inGmailExactlyOnceWithoutMessageId: number;
  readonly notInGmail: number;
  readonly gmailImportRequests: number;
  readonly gmailMergedReimports: number;
  readonly deletedFromPop3: number;
  readonly stillOnPop3: number;
  readonly quarantinedByCode: Readonly<Record<string, number>>;
  /** Invariant breaches: any entry fails the run. */
  readonly breaches: readonly string[];
  /** Messages not settled as the invariant requires after recovery: any entry fails the run. */
  readonly problems: readonly string[];
  /** The sequence of events, driver steps and faults of the first messages named in a breach or problem. */
  readonly traces: readonly string[];
  readonly faultsInjected: Readonly<Record<string, number>>;
  readonly auditedCommits: number;
  readonly lockEpisode: { readonly pollOutcome: string; readonly busyReasons: readonly string[] };
  readonly busyByReason: Readonly<Record<string, number>>;
  readonly rounds: number;
  /** Rounds with faults on. */
  readonly faultRounds: number;
  readonly copyInvocations: number;
  readonly durationMs: number;
}

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

interface Served {
  readonly sha256: string;
  readonly size: number;
  readonly hasMessageId: boolean;
}

/**
 * The seeded fault campaign of issue 7: the real handlers (each built by its own factory) against
 * Dovecot (behind a proxy that cuts RETR replies), fauxqs, dynalite and the Gmail API stand-in,
 * driven like Lambda: the schedule calls the lister, delete-copied runs when it asks (with
 * Lambda's one async retry), the SQS event source receives batches of 10 and calls the copier.
 * Faults come from one seeded PRNG (decorators at every seam, SDK middleware, stand-in rules, the
 * driver's redeliveries). Then faults stop and the rounds go on until the mailbox is quiet; every
 * message is then checked against the invariants and the counts are returned.
 */
export async function runFaultCampaign(options: CampaignOptions): Promise<CampaignReport> {
  const started = Date.now();
  const { seed, print } = options;
  const intensity = options.intensity ?? 1;
  print(
    `fault campaign: seed ${seed} (replay with FAULTS_SEED=${seed}), ${options.messages} messages` +
      (intensity === 1 ? "" : `, FAULTS_INTENSITY=${intensity}`),
  );
  const dice: CampaignDice = new FaultDice(seed, ratesOf(options));
  const world = await CampaignWorld.start({ users: { [USER]: CREDENTIALS }, gmailSeed: seed ^ 0x5bd1e995 });
  const proxy = new RetrCuttingProxy(() =>
    dice.roll("retr-connection-cut") ? dice.between(20, 1500) : undefined,
  );
  try {
    await proxy.start(world.dovecot.plainPort);
    const campaign = await Campaign.prepare(world, proxy, dice, options);
    print(`prepared in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const report = await campaign.run(started);
    return report;
  } finally {
    await proxy.stop();
    await world.stop();
  }
}

class Campaign {
  readonly clock = new OffsetClock();
  readonly hooks: CampaignHooks = { onImportStart: undefined };
  readonly served = new Map<string, Served>();
  readonly breaches: string[] = [];
  readonly audited = new Set<string>();
  readonly deleteInvocations: DeleteCopiedEvent[] = [];
  readonly requestedDelays: number[] = [];
  readonly events: EventLog[] = [];
  readonly unexpectedErrors: string[] = [];
  /** What happened, in order: pipeline events, faults fired, driver steps (for replay traces). */
  readonly timeline: { readonly text: string; readonly uidls: readonly string[]; readonly step: number }[] =
    [];
  /** The driver step (an invocation) that faults and events belong to, numbered in order. */
  private step = 0;
  readonly functions: LambdaFunctions;
  /** A ledger on its own client: the checks never meet an injected fault. */
  readonly checkLedger: DynamoDbLedger;
  auditedCommits = 0;
  copyInvocations = 0;

  private constructor(
    readonly world: CampaignWorld,
    readonly proxy: RetrCuttingProxy,
    readonly dice: CampaignDice,
    readonly options: CampaignOptions,
    readonly queueUrl: string,
    readonly queueArn: string,
    readonly bucket: string,
    tableName: string,
  ) {
    this.checkLedger = new DynamoDbLedger({ client: world.dynalite.newClient(), tableName });
    dice.onFire = (kind) => this.note(`fault ${kind}`, [], true);
    const config = {
      tenant: TENANT,
      google: { apiBaseUrl: world.gmailBaseUrl, tokenUrl: world.tokenUrl },
      mailboxes: [
        {
          id: MAILBOX_ID,
          pop3: {
            host: "127.0.0.1",
            port: proxy.port,
            tls: "none",
            allowPlaintext: true,
            user: USER,
            passwordSecret: secretNames(USER).pop3,
          },
          gmail: { user: gmailUserOf(USER), credentialsSecret: secretNames(USER).google },
        },
      ],
    };
    const env: NodeJS.ProcessEnv = {
      [ENV_NAMES.tenantConfig]: JSON.stringify(config),
      [ENV_NAMES.ledgerTable]: tableName,
      [ENV_NAMES.archiveBucket]: bucket,
      [ENV_NAMES.workQueueUrl]: queueUrl,
      [ENV_NAMES.deleteFunctionName]: "pop2gmail-acme-delete-copied",
      [S3_FORCE_PATH_STYLE_ENV]: "true",
      ...world.awsEndpointEnv(),
    };
    const advance = (ms: number) => this.clock.advance(ms);
    const audit = (uidls: readonly string[]) => this.audit(uidls);
    this.functions = buildLambdaFunctions({
      env,
      clock: this.clock,
      logger: () =>
        new Logger({
          serviceName: METRIC_SERVICE_NAME,
          logLevel: process.env.FAULTS_LOG_LEVEL === "DEBUG" ? "DEBUG" : "SILENT",
        }),
      metrics: quietMetrics,
      gmail: {
        backoff: { baseDelayMs: 200, maxDelayMs: 2_000 },
        // A stalled request (the stand-in's "stall") times out quickly in real time.
        requestTimeoutMs: 1_500,
        // Larger messages go by resumable upload, so a reset can cut an upload in the middle.
        resumableThresholdBytes: 32 * 1024,
        resumableChunkBytes: 256 * 1024,
      },
      deleteInvoker: {
        invoke: async (event) => {
          this.deleteInvocations.push(event);
        },
      },
      decorators: {
        base: (deps) => {
          const events = new EventLog(deps.telemetry, (event) => this.noteEvent(event));
          this.events.push(events);
          return { ...deps, telemetry: events, pop3: new FaultyPop3Source(deps.pop3, dice, audit) };
        },
        list: (deps) => ({
          ...deps,
          queue: new FaultyQueue(deps.queue, dice, advance, this.requestedDelays),
        }),
        copy: (deps) => ({
          ...deps,
          archive: new FaultyArchive(deps.archive, dice),
          sink: new FaultySink(deps.sink, dice, this.hooks),
          queue: new FaultyQueue(deps.queue, dice, advance, this.requestedDelays),
        }),
      },
    });
    for (const client of this.functions.s3Clients) addServerErrorMiddleware(client, dice, "s3");
    for (const client of this.functions.dynamoDbClients) addServerErrorMiddleware(client, dice, "dynamodb");
  }

  static async prepare(
    world: CampaignWorld,
    proxy: RetrCuttingProxy,
    dice: CampaignDice,
    options: CampaignOptions,
  ): Promise<Campaign> {
    const tableName = uniqueName("ledger");
    const bucket = uniqueName("archive");
    const queueName = uniqueName("work");
    await createLedgerTable(world.dynalite.dynamodb, tableName);
    await world.fauxqs.createBucket(bucket);
    const queueUrl = await world.fauxqs.createQueue(queueName, { VisibilityTimeout: "300" });
    const queueArn = `arn:aws:sqs:${STAND_IN_REGION}:000000000000:${queueName}`;
    const campaign = new Campaign(world, proxy, dice, options, queueUrl, queueArn, bucket, tableName);
    await campaign.deliver();
    campaign.injectGmailFaults();
    return campaign;
  }

  /** Drops the generated mailbox into Dovecot and records what Dovecot serves, per UIDL. */
  private async deliver(): Promise<void> {
    for (const message of generateMailbox(this.options.messages, this.options.seed)) {
      await this.world.dovecot.deliver(USER, message.bytes);
    }
    const reader = await this.login();
    try {
      for (const { number, uidl } of await uidlListing(reader)) {
        const bytes = await reader.retrieve(number);
        this.served.set(uidl, {
          sha256: sha256(bytes),
          size: bytes.length,
          hasMessageId: hasMessageId(bytes),
        });
      }
    } finally {
      await reader.quit();
    }
    if (this.served.size !== this.options.messages) {
      throw new Error(`Dovecot serves ${this.served.size} messages, ${this.options.messages} were delivered`);
    }
  }

  /** Gmail-side faults as stand-in rules, each drawn with its probability by the stand-in's seeded PRNG. */
  private injectGmailFaults(): void {
    const rates = ratesOf(this.options);
    const user = gmailUserOf(USER);
    const upload = (r: { operation: string; user: string | undefined }) =>
      r.user === user && (r.operation === "import" || r.operation === "upload-session");
    const chunkOrImport = (r: { operation: string; user: string | undefined }) =>
      r.user === user && (r.operation === "import" || r.operation === "upload-chunk");
    const gmail = this.world.gmail;
    gmail.injectFault({
      match: (r) => r.operation === "token",
      probability: rates["gmail-token-5xx"],
      action: { kind: "status", status: 502, reason: "backendError" },
    });
    gmail.injectFault({
      match: upload,
      probability: rates["gmail-429"],
      action: { kind: "status", status: 429, reason: "rateLimitExceeded", retryAfterSeconds: 7 },
    });
    gmail.injectFault({
      match: upload,
      probability: rates["gmail-5xx"],
      action: { kind: "status", status: 503, reason: "backendError" },
    });
    gmail.injectFault({
      match: (r) => r.user === user && r.operation === "import",
      probability: rates["gmail-5xx-after-store"],
      action: { kind: "status", status: 500, reason: "backendError", afterStore: true },
    });
    gmail.injectFault({ match: chunkOrImport, probability: rates["gmail-reset"], action: { kind: "reset" } });
    gmail.injectFault({
      match: chunkOrImport,
      probability: rates["gmail-timeout"],
      action: { kind: "stall" },
    });
  }

  /** A driver step (it starts a new context for faults and events) or, with `within`, a line inside the current one. */
  note(text: string, uidls: readonly string[] = [], within = false): void {
    if (!within) this.step++;
    this.timeline.push({ text, uidls, step: this.step });
  }

  private noteEvent(event: PipelineEvent): void {
    const detail =
      "code" in event
        ? ` ${event.code}`
        : "state" in event
          ? ` ${event.state}`
          : "reason" in event
            ? ` ${event.reason}`
            : "";
    if ("uidl" in event) this.note(`${event.type}${detail} ${event.uidl}`, [event.uidl], true);
    else this.note(`${event.type}${detail}`, [], true);
  }

  /**
   * The timeline as it concerns one message: each driver step that named it or recorded an event
   * for it, with its events for this message, the mailbox-level events and the faults that fired
   * in that step, so a failing seed shows its sequence.
   */
  trace(uidl: string): string {
    const steps = new Set(this.timeline.filter((e) => e.uidls.includes(uidl)).map((e) => e.step));
    const parts: string[] = [];
    for (const step of [...steps].sort((a, b) => a - b)) {
      const entries = this.timeline.filter((e) => e.step === step);
      const lines = entries.flatMap((e, index) => {
        if (index === 0) return [e.text];
        if (e.uidls.length === 0 || e.uidls.includes(uidl)) return [e.text.replace(` ${uidl}`, "")];
        return [];
      });
      parts.push(`[${lines.join("; ")}]`);
    }
    return `${uidl}: ${parts.join(" -> ")}`;
  }

  login(): Promise<RawPop3Reader> {
    return RawPop3Reader.login("127.0.0.1", this.world.dovecot.plainPort, USER, CREDENTIALS.pop3Password);
  }

  async run(started: number): Promise<CampaignReport> {
    const { print } = this.options;
    const faultsUntil = this.clock.now() + (this.options.faultWindowMs ?? 50 * 60_000);
    const maxRounds = this.options.maxRounds ?? 90;
    let faultRounds = maxRounds;
    let lockEpisode: CampaignReport["lockEpisode"] = { pollOutcome: "not run", busyReasons: [] };
    let rounds = 0;
    let quiet = false;
    for (let round = 1; round <= maxRounds; round++) {
      rounds = round;
      if (this.dice.enabled && this.clock.now() >= faultsUntil) {
        faultRounds = round - 1;
        this.dice.enabled = false;
        this.world.gmail.clearFaults();
        this.world.gmail.releaseStalled();
        print(`round ${round}: faults off, recovery`);
      }
      await this.poll();
      if (round === 1) lockEpisode = await this.lockEpisode();
      await this.runDeletes();
      await this.drain();
      const open = await this.unsettled();
      if (round <= 3 || round % 10 === 0) {
        const elapsed = ((Date.now() - started) / 1000).toFixed(1);
        print(
          `round ${round}: ${open.length} unsettled, ${this.copyInvocations} copy invocations, ${elapsed} s`,
        );
      }
      if (round > faultRounds && open.length === 0 && (await this.queueDepth()) === 0) {
        quiet = true;
        break;
      }
      // The next EventBridge tick.
      this.clock.advance(60_000);
    }
    const report = { ...(await this.verify(started, rounds, lockEpisode)), faultRounds };
    if (!quiet) {
      return {
        ...report,
        problems: [
          `not quiescent after ${maxRounds} rounds: ${(await this.unsettled()).length} messages unsettled`,
          ...report.problems,
        ],
      };
    }
    return report;
  }

  /** One scheduled lister invocation; a crash is lived through, anything else unexpected is kept. */
  private async poll(): Promise<string> {
    this.note("list-new-messages invocation");
    try {
      const result = await this.functions.list({ mailboxId: MAILBOX_ID }, lambdaContext("list-new-messages"));
      return result.outcome;
    } catch (error) {
      if (!(error instanceof CrashError)) this.unexpectedErrors.push(`lister threw ${describeError(error)}`);
      return "crashed";
    }
  }

  /** Lambda's async invocations of delete-copied, each with its one retry after a failure. */
  private async runDeletes(): Promise<void> {
    for (
      let event = this.deleteInvocations.shift();
      event !== undefined;
      event = this.deleteInvocations.shift()
    ) {
      for (let attempt = 1; attempt <= 2; attempt++) {
        try {
          await this.functions.remove(event, lambdaContext("delete-copied"));
          break;
        } catch (error) {
          if (!(error instanceof CrashError) && attempt === 2) {
            this.unexpectedErrors.push(`delete-copied threw ${describeError(error)}`);
          }
        }
      }
    }
  }

  /**
   * Another client holds the maildrop (Dovecot `pop3_lock_session`): one poll and one copy batch
   * run while it does, both at once (Dovecot answers IN-USE only after ~10 s), then it lets go.
   */
  private async lockEpisode(): Promise<CampaignReport["lockEpisode"]> {
    const holder = await this.login();
    const busyBefore = this.busyReasons().length;
    let pollOutcome = "";
    // No other fault meanwhile, so the episode shows the lock itself (IN-USE) and nothing else.
    const enabled = this.dice.enabled;
    this.dice.enabled = false;
    try {
      const batch = await this.receive();
      const [outcome] = await Promise.all([this.poll(), this.copyMessages(batch)]);
      pollOutcome = outcome;
    } finally {
      this.dice.enabled = enabled;
      await holder.quit();
    }
    return { pollOutcome, busyReasons: this.busyReasons().slice(busyBefore) };
  }

  private busyReasons(): string[] {
    return this.events.flatMap((log) => log.events.flatMap((e) => (e.type === "busy" ? [e.reason] : [])));
  }

  /** Copies batches until nothing is visible, in flight or delayed; redeliveries come from the dice. */
  private async drain(): Promise<void> {
    const maxBatches = 50 + this.served.size;
    for (let batches = 0; batches < maxBatches; batches++) {
      const messages = await this.receive();
      if (messages.length === 0) {
        if ((await this.queueDepth()) === 0) return;
        continue;
      }
      if (this.dice.roll("sqs-concurrent-redelivery")) {
        await this.concurrentRedelivery(messages);
        continue;
      }
      const response = await this.invokeCopy(messages);
      // The acknowledgement is lost (or the visibility timeout ran out): SQS delivers the batch again.
      const redeliver = this.dice.roll("sqs-redelivery");
      if (redeliver) this.note("acknowledgement lost: SQS delivers the batch again", messages.map(uidlOf));
      await this.settle(
        messages,
        redeliver
          ? { batchItemFailures: messages.map((m) => ({ itemIdentifier: m.MessageId ?? "" })) }
          : response,
      );
    }
    throw new Error(`queue not drained after ${maxBatches} batches`);
  }

  /**
   * SQS hands the same batch to a second copier while the first still runs (its visibility
   * timeout ran out mid-import): both run at once, and both settle their receipts.
   */
  private async concurrentRedelivery(messages: readonly Message[]): Promise<void> {
    let importStarted = () => {};
    const inImport = new Promise<void>((resolve) => {
      importStarted = resolve;
    });
    this.hooks.onImportStart = () => importStarted();
    const first = this.copyMessages(messages);
    await Promise.race([inImport, first]);
    this.hooks.onImportStart = undefined;
    await this.makeVisible(messages);
    const again = await this.receive();
    await Promise.all([first, this.copyMessages(again)]);
  }

  /** One copy invocation; a thrown invocation returns the whole batch to the queue, as Lambda does. */
  private async invokeCopy(messages: readonly Message[]): Promise<SQSBatchResponse> {
    this.copyInvocations++;
    this.note(`copy invocation ${this.copyInvocations}`, messages.map(uidlOf));
    try {
      return await this.functions.copy(sqsEvent(this.queueArn, messages), lambdaContext("copy-message"));
    } catch (error) {
      if (!(error instanceof CrashError))
        this.unexpectedErrors.push(`copy-message threw ${describeError(error)}`);
      return { batchItemFailures: messages.map((m) => ({ itemIdentifier: m.MessageId ?? "" })) };
    }
  }

  private async copyMessages(messages: readonly Message[]): Promise<void> {
    if (messages.length === 0) return;
    await this.settle(messages, await this.invokeCopy(messages));
  }

  private async receive(): Promise<Message[]> {
    return receiveBatch(this.world.fauxqs.sqs, this.queueUrl);
  }

  /** Deletes acknowledged messages; failed ones become visible again at once (time is compressed). */
  private async settle(messages: readonly Message[], response: SQSBatchResponse): Promise<void> {
    const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
    const done = messages.filter((m) => !failed.has(m.MessageId ?? ""));
    if (done.length > 0) {
      // A receipt handle made stale by a redelivery may fail to delete: SQS then delivers again.
      await this.world.fauxqs.sqs
        .send(new DeleteMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: receiptEntries(done) }))
        .catch(() => undefined);
    }
    await this.makeVisible(messages.filter((m) => failed.has(m.MessageId ?? "")));
  }

  private async makeVisible(messages: readonly Message[]): Promise<void> {
    if (messages.length === 0) return;
    await this.world.fauxqs.sqs
      .send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: this.queueUrl,
          Entries: receiptEntries(messages).map((e) => ({ ...e, VisibilityTimeout: 0 })),
        }),
      )
      .catch(() => undefined);
  }

  private queueDepth(): Promise<number> {
    return queueDepth(this.world.fauxqs.sqs, this.queueUrl);
  }

  private entry(uidl: string): Promise<LedgerEntry | undefined> {
    return this.checkLedger.get({ tenant: TENANT, mailboxId: MAILBOX_ID, uidl });
  }

  /** UIDLs whose ledger entry is not final (deleted or quarantined) yet. */
  private async unsettled(): Promise<string[]> {
    const settled = new Set(
      (
        await this.checkLedger.listByState({ tenant: TENANT, mailboxId: MAILBOX_ID }, [
          "deleted",
          "quarantined",
        ])
      ).map((e) => e.uidl),
    );
    return [...this.served.keys()].filter((uidl) => !settled.has(uidl));
  }

  private async archived(key: string): Promise<Buffer | undefined> {
    try {
      const response = await this.world.fauxqs.s3.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key }),
      );
      return Buffer.from((await response.Body?.transformToByteArray()) ?? new Uint8Array());
    } catch {
      return undefined;
    }
  }

  /**
   * Right before a QUIT that would commit DELEs (invariant 1): each message must be `imported`
   * (or `retained`) in the ledger with its archive key and Gmail id, archived byte-exact in S3,
   * and held by Gmail under that id with the served bytes.
   */
  private async audit(uidls: readonly string[]): Promise<void> {
    this.auditedCommits++;
    const gmail = this.world.gmail.messages(gmailUserOf(USER));
    for (const uidl of uidls) {
      this.audited.add(uidl);
      const served = this.served.get(uidl);
      const entry = await this.entry(uidl);
      const inGmail =
        entry?.gmailId !== undefined &&
        gmail.some((m) => m.id === entry.gmailId && served !== undefined && sha256(m.raw) === served.sha256);
      const object = entry?.archiveKey === undefined ? undefined : await this.archived(entry.archiveKey);
      const recorded = entry?.state === "imported" || entry?.state === "retained";
      if (
        served === undefined ||
        !recorded ||
        !inGmail ||
        object === undefined ||
        sha256(object) !== served.sha256
      ) {
        this.breaches.push(
          `${uidl}: DELE about to be committed while ledger=${entry?.state ?? "none"}, in Gmail=${inGmail}, ` +
            `archived=${object === undefined ? "no" : sha256(object) === served?.sha256 ? "exact" : "different"}`,
        );
      }
    }
  }

  /** The invariants after recovery, per served message, and the counts. */
  private async verify(
    started: number,
    rounds: number,
    lockEpisode: CampaignReport["lockEpisode"],
  ): Promise<Omit<CampaignReport, "faultRounds">> {
    const breaches = [...this.breaches];
    const problems = [...this.unexpectedErrors];
    const reader = await this.login();
    let onServer: Set<string>;
    try {
      onServer = new Set((await uidlListing(reader)).map((m) => m.uidl));
    } finally {
      await reader.quit();
    }
    const gmailUser = gmailUserOf(USER);
    const copiesBySha = new Map<string, number>();
    for (const message of this.world.gmail.messages(gmailUser)) {
      const digest = sha256(message.raw);
      copiesBySha.set(digest, (copiesBySha.get(digest) ?? 0) + 1);
    }
    const servedShas = new Set([...this.served.values()].map((s) => s.sha256));
    for (const [digest, copies] of copiesBySha) {
      if (!servedShas.has(digest))
        breaches.push(`Gmail holds ${copies} message(s) with bytes Dovecot never served`);
    }
    const quarantinedByCode: Record<string, number> = {};
    let archivedByteExact = 0;
    let inGmailExactlyOnce = 0;
    let inGmailExactlyOnceWithoutMessageId = 0;
    let notInGmail = 0;
    let deletedFromPop3 = 0;
    for (const [uidl, served] of this.served) {
      const entry = await this.entry(uidl);
      const object = entry?.archiveKey === undefined ? undefined : await this.archived(entry.archiveKey);
      const exact = object !== undefined && sha256(object) === served.sha256;
      const copies = copiesBySha.get(served.sha256) ?? 0;
      const present = onServer.has(uidl);
      if (exact) archivedByteExact++;
      if (copies === 1) {
        inGmailExactlyOnce++;
        if (!served.hasMessageId) inGmailExactlyOnceWithoutMessageId++;
      }
      if (copies === 0) notInGmail++;
      if (!present) deletedFromPop3++;
      if (copies > 1) breaches.push(`${uidl}: ${copies} copies in Gmail`);
      if (!present && (!exact || copies !== 1)) {
        breaches.push(
          `${uidl}: gone from POP3 but archived=${exact ? "exact" : "no/different"}, Gmail copies=${copies}`,
        );
      }
      if (!present && !this.audited.has(uidl))
        breaches.push(`${uidl}: gone from POP3 without an audited QUIT`);
      if (entry?.state === "quarantined") {
        const code = entry.quarantineCode ?? "none";
        quarantinedByCode[code] = (quarantinedByCode[code] ?? 0) + 1;
        if (!present) breaches.push(`${uidl}: quarantined ${code} but deleted from POP3`);
        if (code === "IMPORT_UNCERTAIN" && !served.hasMessageId) {
          if (!exact) problems.push(`${uidl}: quarantined IMPORT_UNCERTAIN, archive not byte-exact`);
          continue;
        }
        problems.push(`${uidl}: quarantined ${code}${served.hasMessageId ? " (has a Message-ID)" : ""}`);
        continue;
      }
      if ((entry?.state === "imported" || entry?.state === "retained") && !present) {
        // Copied and gone from the server, but the ledger never recorded the delete: no invariant
        // is breached, yet the ledger (and the Deleted metric, `pop2gmail status`) is wrong for good.
        problems.push(
          `${uidl}: ledger ${entry.state} although gone from POP3 (the delete was never recorded)`,
        );
      } else if (entry?.state !== "deleted") {
        problems.push(`${uidl}: ledger ${entry?.state ?? "missing"} after recovery`);
      }
      if (!exact) problems.push(`${uidl}: not archived byte-exact`);
      if (entry?.sha256 !== served.sha256)
        problems.push(`${uidl}: ledger SHA-256 differs from the served bytes`);
      if (copies !== 1) problems.push(`${uidl}: ${copies} copies in Gmail`);
      if (present) problems.push(`${uidl}: still on POP3 after recovery`);
    }
    const named = [...breaches, ...problems].flatMap((text) => /^([\x21-\x7e]+): /.exec(text)?.[1] ?? []);
    const traces = [...new Set(named)]
      .filter((uidl) => this.served.has(uidl))
      .slice(0, 5)
      .map((uidl) => this.trace(uidl));
    const imports = this.world.gmail.rawImports().filter((r) => r.user === gmailUser);
    const faultsInjected: Record<string, number> = {};
    for (const kind of FAULT_KINDS) faultsInjected[kind] = this.dice.fired.get(kind) ?? 0;
    const log = this.world.gmail.requestLog();
    const gmailStatus = (status: number, operations: readonly string[]) =>
      log.filter((e) => e.status === status && operations.includes(e.request.operation)).length;
    const uploads = ["import", "upload-session", "upload-chunk"];
    faultsInjected["gmail-429"] = gmailStatus(429, uploads);
    faultsInjected["gmail-5xx"] = gmailStatus(503, uploads);
    faultsInjected["gmail-5xx-after-store"] = gmailStatus(500, uploads);
    faultsInjected["gmail-reset"] = gmailStatus(-1, uploads);
    faultsInjected["gmail-timeout"] = gmailStatus(-2, uploads);
    faultsInjected["gmail-token-5xx"] = gmailStatus(502, ["token"]);
    faultsInjected["retr-connection-cut"] = this.proxy.cutsDone;
    const busyByReason: Record<string, number> = {};
    for (const reason of this.busyReasons()) busyByReason[reason] = (busyByReason[reason] ?? 0) + 1;
    return {
      seed: this.options.seed,
      intensity: this.options.intensity ?? 1,
      messages: this.served.size,
      withoutMessageId: [...this.served.values()].filter((s) => !s.hasMessageId).length,
      archivedByteExact,
      inGmailExactlyOnce,
      inGmailExactlyOnceWithoutMessageId,
      notInGmail,
      gmailImportRequests: imports.length,
      gmailMergedReimports: imports.filter((r) => r.merged).length,
      deletedFromPop3,
      stillOnPop3: onServer.size,
      quarantinedByCode,
      breaches,
      problems,
      traces,
      faultsInjected,
      auditedCommits: this.auditedCommits,
      lockEpisode,
      busyByReason,
      rounds,
      copyInvocations: this.copyInvocations,
      durationMs: Date.now() - started,
    };
  }
}

/** The rates of a run: the defaults, overridden, times the intensity (at most 0.5 each). */
function ratesOf(options: CampaignOptions): Record<FaultKind, number> {
  const rates = { ...DEFAULT_RATES, ...options.rates };
  const factor = options.intensity ?? 1;
  for (const kind of FAULT_KINDS) rates[kind] = Math.min(0.5, rates[kind] * factor);
  return rates;
}

/** The report as printed lines: the seed first, so a failure can be replayed. */
export function formatReport(report: CampaignReport): string[] {
  const faults = Object.entries(report.faultsInjected)
    .map(([kind, n]) => `${kind}=${n}`)
    .join(" ");
  return [
    `seed ${report.seed} (replay: FAULTS_SEED=${report.seed} FAULTS_MESSAGES=${report.messages} FAULTS_INTENSITY=${report.intensity})`,
    `messages ${report.messages} (without Message-ID ${report.withoutMessageId})`,
    `archived byte-exact ${report.archivedByteExact}`,
    `in Gmail exactly once ${report.inGmailExactlyOnce} (of them without Message-ID ${report.inGmailExactlyOnceWithoutMessageId}); not in Gmail ${report.notInGmail}; import requests stored ${report.gmailImportRequests} (merged re-imports ${report.gmailMergedReimports})`,
    `deleted from POP3 ${report.deletedFromPop3}; still on POP3 ${report.stillOnPop3}`,
    `quarantined ${JSON.stringify(report.quarantinedByCode)}`,
    `breaches ${report.breaches.length}; problems ${report.problems.length}; audited committing QUITs ${report.auditedCommits}`,
    `faults injected: ${faults}`,
    `busy outcomes ${JSON.stringify(report.busyByReason)}; lock episode: poll ${report.lockEpisode.pollOutcome}, busy ${JSON.stringify(report.lockEpisode.busyReasons)}`,
    `rounds ${report.rounds} (with faults ${report.faultRounds}); copy invocations ${report.copyInvocations}; duration ${(report.durationMs / 1000).toFixed(1)} s`,
    ...report.breaches.slice(0, 20).map((b) => `BREACH ${b}`),
    ...report.problems.slice(0, 20).map((p) => `PROBLEM ${p}`),
    ...report.traces.map((t) => `TRACE ${t}`),
  ];
}

/** The UIDL of a copy job's SQS body, or "?" (the timeline names messages by UIDL). */
function uidlOf(message: Message): string {
  try {
    const job = JSON.parse(message.Body ?? "") as { uidl?: unknown };
    return typeof job.uidl === "string" ? job.uidl : "?";
  } catch {
    return "?";
  }
}

function hasMessageId(bytes: Buffer): boolean {
  const end = bytes.indexOf("\r\n\r\n");
  const head = bytes.subarray(0, end < 0 ? bytes.length : end).toString("latin1");
  return /^message-id:/im.test(head);
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
