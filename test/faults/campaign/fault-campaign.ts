import { createHash } from "node:crypto";
import { inspect } from "node:util";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import type { Message } from "@aws-sdk/client-sqs";
import type { SQSBatchResponse } from "aws-lambda";
import {
  FUNCTION_SETTINGS,
  MAX_RECEIVE_COUNT,
  VISIBILITY_TIMEOUT_FACTOR,
} from "../../../infra/function-settings";
import { createLedgerTable } from "../../../shared/adapters/dynamodb/create-ledger-table";
import { DynamoDbLedger } from "../../../shared/adapters/dynamodb/dynamodb-ledger";
import { S3_FORCE_PATH_STYLE_ENV } from "../../../shared/adapters/lambda/copy-message-deps";
import type { DeleteCopiedEvent } from "../../../shared/adapters/lambda/delete-invoker";
import { ENV_NAMES } from "../../../shared/config/env";
import { METRIC_SERVICE_NAME } from "../../../shared/config/metrics";
import { LEDGER_STATES, type LedgerEntry } from "../../../shared/core/model";
import type { PipelineEvent } from "../../../shared/ports/telemetry";
import { STAND_IN_REGION, uniqueName } from "../../fakes/aws-stand-ins";
import { EventLog } from "../../fakes/event-log";
import { fauxqsDedupWindowOn, fauxqsFifoBatchesLikeSqs } from "../../fakes/fauxqs-fifo";
import type { StoredMessage } from "../../fakes/gmail-api-stand-in";
import { OffsetClock } from "../../fakes/offset-clock";
import { quietMetrics } from "../../fakes/quiet-metrics";
import { RawPop3Reader, uidlListing } from "../../fakes/raw-pop3-reader";
import { lambdaContext, sqsEvent } from "../../fakes/sqs-lambda-events";
import { generateMailbox } from "../../fixtures/awkward-messages";
import { messageIdOf, shareMessageIds, withoutTraceLines } from "./campaign-corpus";
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
import { FifoEventSource, type FifoFigures, uidlOf } from "./fifo-event-source";
import { GmailFaultProxy, type GmailProxyRules } from "./gmail-fault-proxy";
import { buildLambdaFunctions, type LambdaFunctions } from "./lambda-functions";
import { emptyLedgerTable, scanLedgerItems } from "./ledger-table-tools";
import { RetrCuttingProxy } from "./retr-cutting-proxy";
import { SecretsWatch } from "./secrets-watch";
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

/** Probability per opportunity of each fault while faults are on (see `faultRounds`). */
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
  // Per job sent: a second send within SQS FIFO's deduplication window (SQS drops it) ...
  "duplicate-enqueue": 0.02,
  // ... and past it (SQS takes it: a duplicate delivery).
  "duplicate-past-dedup-window": 0.01,
  // Per hold-back of early FIFO jobs: ChangeMessageVisibility fails, the visibility timeout brings them back.
  "sqs-hold-back-fails": 0.2,
  // Per archive write: starts a stretch of 2-8 writes on a full or read-only disk.
  "archive-enospc": 0.006,
  "archive-erofs": 0.004,
  // Per S3 write call: starts a stretch of 1-6 writes a read-only bucket denies (403).
  "s3-access-denied": 0.003,
  // Per first import of a message that shares an earlier message's Message-ID.
  "gmail-5xx-shared-message-id": 0.75,
  // Per labels call.
  "gmail-labels-400": 0.3,
  // Counted per import of a message Gmail refuses (chosen in the corpus, see REJECTED_RATE).
  "gmail-400-rejects-message": 0,
  // Per error answer of the Gmail API or the token endpoint.
  "gmail-error-echoes-credentials": 0.5,
  // Per round with faults on: new mail takes over the UIDLs of messages whose DELE committed.
  "uidl-reuse-after-dele": 0.3,
  // Per round with faults on: a delete-copied event delivered (again) by Lambda's async invoke.
  "delete-event-redelivered": 0.2,
  // Once per run, at a point the dice choose (see `Campaign.maybeEmptyLedger`).
  "ledger-emptied": 0,
};

/** Share of the small messages Gmail refuses with a 400 (each such message is quarantined). */
export const REJECTED_RATE = 0.01;

/** Share of the small messages with a Message-ID that get the Message-ID of an earlier message. */
export const SHARED_MESSAGE_ID_RATE = 0.04;

export interface CampaignOptions {
  readonly seed: number;
  readonly messages: number;
  /** Where progress and the report go (the seed first). */
  readonly print: (line: string) => void;
  readonly rates?: Partial<Record<FaultKind, number>>;
  /** A factor on every rate (`FAULTS_INTENSITY`); default 1. */
  readonly intensity?: number;
  /**
   * Rounds (one scheduled poll, the delete passes it asks for, the copies it leads to) with faults
   * on, counted in rounds and not in virtual time, so retry delays cannot end the faults early:
   * every step of these rounds, delete passes included, runs under faults. Default 30 (past the
   * 16 min import claim in ticks alone). Later rounds are recovery, faults off.
   */
  readonly faultRounds?: number;
  /** Rounds of recovery after which an unsettled mailbox fails the run. Default 60. */
  readonly recoveryRounds?: number;
}

/** What the campaign proves and prints. */
export interface CampaignReport {
  readonly seed: number;
  readonly intensity: number;
  readonly messages: number;
  /** Of `messages`, the ones delivered later under the UIDL of a message whose DELE had committed. */
  readonly reusedUidlMessages: number;
  readonly withoutMessageId: number;
  /** Messages carrying the Message-ID of an earlier, different message. */
  readonly sharingMessageId: number;
  /** Of those, held by Gmail only as the earlier message: their own import returned its id (Gmail merged them). */
  readonly mergedByGmail: number;
  /** Messages Gmail refuses (400) that ended as they must: quarantined MESSAGE_REJECTED, archived, on POP3. */
  readonly rejectedByGmail: number;
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
  /** Faults met per kind of driver step (list, copy, delete, driver): faults stay on in every one. */
  readonly faultsByStep: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** delete-copied invocations while faults were on. */
  readonly deletePassesWithFaults: number;
  /** When the ledger table was emptied, and how many items it held. */
  readonly ledgerEmptied: string;
  /** Messages deleted from POP3 before the ledger was emptied (no ledger entry is expected for them). */
  readonly ledgerLostAfterDelete: number;
  /** Where a secret showed up (log line, event, ledger item, error): any entry fails the run. */
  readonly secretsFound: readonly string[];
  readonly textsScannedForSecrets: number;
  /** Sockets of the copier's S3 pool still held by a request after the run (bodies nobody read or closed). */
  readonly s3SocketsBusyAtEnd: number;
  /** The copier's S3 connection pool after the run (busy sockets here are requests that never ended). */
  readonly s3PoolAtEnd: string;
  /** Archive bodies (S3 GetObject) opened and neither read to the end nor let go, at the end. */
  readonly unreadArchiveBodies: string;
  /** Copy invocations that took more than 5 s of real time, with their events. */
  readonly slowSteps: readonly string[];
  readonly auditedCommits: number;
  readonly lockEpisode: { readonly pollOutcome: string; readonly busyReasons: readonly string[] };
  readonly busyByReason: Readonly<Record<string, number>>;
  readonly rounds: number;
  /** Rounds with faults on. */
  readonly faultRounds: number;
  readonly copyInvocations: number;
  /** The work queue as the event source saw it (FIFO, as the stack configures it). */
  readonly queue: FifoFigures;
  readonly durationMs: number;
}

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

/** One message as Dovecot served it, under the UIDL the pipeline sees. */
interface Served {
  /** The UIDL the pipeline sees (after the proxy's rewriting). */
  readonly uidl: string;
  /** Dovecot's own UIDL. */
  readonly realUidl: string;
  /** 1, or n for the n-th message seen under `uidl`. */
  readonly generation: number;
  /** `uidl`, or `uidl (generation n)`: how reports name it. */
  readonly label: string;
  readonly sha256: string;
  readonly size: number;
  readonly messageId: string | undefined;
  /** Carries the Message-ID of an earlier, different message. */
  readonly sharesMessageId: boolean;
}

/** The work queue and its dead-letter queue, as `Campaign.workQueue` made them. */
interface WorkQueueUrls {
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly deadLetterUrl: string;
  readonly visibilityTimeoutSeconds: number;
}

/** The kind of driver step a fault or event belongs to. */
type StepKind = "list" | "copy" | "delete" | "driver";

/**
 * The seeded fault campaign of issue 7: the real handlers (each built by its own factory) against
 * Dovecot (behind a proxy that cuts RETR replies), fauxqs, dynalite and the Gmail API stand-in,
 * driven like Lambda: the schedule calls the lister, delete-copied runs when it asks (with
 * Lambda's one async retry), the SQS event source receives batches of 10 from the stack's FIFO
 * work queue and calls the copier (`FifoEventSource`: virtual time, a group's failed records wait).
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
  const echo = () => dice.roll("gmail-error-echoes-credentials");
  const world = await CampaignWorld.start({
    users: { [USER]: CREDENTIALS },
    gmailSeed: seed ^ 0x5bd1e995,
    echoTokenErrors: echo,
  });
  /** Dovecot's UIDL -> the UIDL the pipeline sees (a reused one), for mail delivered later. */
  const presented = new Map<string, string>();
  const proxy = new RetrCuttingProxy(
    () => (dice.roll("retr-connection-cut") ? dice.between(20, 1500) : undefined),
    (real) => presented.get(real) ?? real,
  );
  // The Gmail side's rules are the campaign's; it exists only once the proxy's address is known.
  let rules: GmailProxyRules | undefined;
  const gmailProxy = new GmailFaultProxy(world.gmailBaseUrl, {
    before: (request) => rules?.before(request),
    afterImport: (raw, status, id) => rules?.afterImport(raw, status, id),
    echoCredentials: echo,
  });
  try {
    await proxy.start(world.dovecot.plainPort);
    await gmailProxy.start();
    const campaign = await Campaign.prepare(world, { proxy, gmailProxy, presented }, dice, options);
    rules = campaign.gmailRules;
    print(`prepared in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const report = await campaign.run(started);
    return report;
  } finally {
    await gmailProxy.stop();
    await proxy.stop();
    await world.stop();
  }
}

/** The proxies in front of Dovecot and Gmail. */
interface CampaignProxies {
  readonly proxy: RetrCuttingProxy;
  readonly gmailProxy: GmailFaultProxy;
  /** Dovecot's UIDL -> the UIDL the POP3 proxy presents instead. */
  readonly presented: Map<string, string>;
}

class Campaign {
  readonly clock = new OffsetClock();
  readonly hooks: CampaignHooks = { onImportStart: undefined };
  /** Every message Dovecot served, in delivery order (later generations of a UIDL included). */
  readonly served: Served[] = [];
  /** The message now behind each UIDL the pipeline sees (its latest generation). */
  readonly current = new Map<string, Served>();
  readonly breaches: string[] = [];
  /** Labels of the messages a committing QUIT was audited for. */
  readonly audited = new Set<string>();
  /** SHA-256 -> archive keys the ledger named for those bytes (kept across the emptied ledger). */
  readonly archiveKeys = new Map<string, Set<string>>();
  readonly deleteInvocations: DeleteCopiedEvent[] = [];
  readonly requestedDelays: number[] = [];
  readonly events: EventLog[] = [];
  readonly unexpectedErrors: string[] = [];
  /** What happened, in order: pipeline events, faults fired, driver steps (for replay traces). */
  readonly timeline: {
    readonly text: string;
    readonly uidls: readonly string[];
    readonly step: number;
    readonly at: number;
  }[] = [];
  /** The driver step (an invocation) that faults and events belong to, numbered in order. */
  private step = 0;
  /** The kind of the step in progress, and the faults met per step kind. */
  private stepKind: StepKind = "driver";
  readonly faultsByStep: Record<StepKind, Record<string, number>> = {
    list: {},
    copy: {},
    delete: {},
    driver: {},
  };
  deletePassesWithFaults = 0;
  readonly archives: FaultyArchive[] = [];
  /** Driver steps that took more than 5 s of real time (what slows a run down). */
  readonly slowSteps: string[] = [];
  readonly functions: LambdaFunctions;
  /** A ledger on its own client: the checks never meet an injected fault. */
  readonly checkLedger: DynamoDbLedger;
  readonly secrets: SecretsWatch;
  /** Import requests Gmail answered with an id, by the SHA-256 of the message they carried. */
  readonly importedIds = new Map<string, Set<string>>();
  /** Messages (by SHA-256) Gmail refuses with a 400 every time (quarantined `MESSAGE_REJECTED`). */
  private readonly rejected = new Set<string>();
  /** Messages (by SHA-256) whose first import got the injected 503 already. */
  private readonly failedOnce = new Set<string>();
  /** Message-IDs some later message shares. */
  private sharedMessageIds = new Set<string>();
  /** The copy invocation after which the ledger is emptied (when messages wait for their delete). */
  private readonly emptyLedgerAfter: number;
  ledgerEmptied = "no";
  auditedCommits = 0;
  copyInvocations = 0;
  private reuseBatches = 0;
  /** The round in progress (see `run`). */
  private round = 0;
  /** Lambda's event source on the FIFO work queue, in the campaign's virtual time. */
  readonly source: FifoEventSource;
  readonly queueArn: string;

  private constructor(
    readonly world: CampaignWorld,
    readonly proxies: CampaignProxies,
    readonly dice: CampaignDice,
    readonly options: CampaignOptions,
    queues: WorkQueueUrls,
    readonly bucket: string,
    readonly tableName: string,
  ) {
    this.queueArn = queues.queueArn;
    this.source = new FifoEventSource(
      world.fauxqs.sqs,
      queues.queueUrl,
      queues.deadLetterUrl,
      this.clock,
      queues.visibilityTimeoutSeconds,
      (text) => this.breaches.push(text),
    );
    fauxqsDedupWindowOn(() => this.clock.now());
    this.checkLedger = new DynamoDbLedger({ client: world.dynalite.newClient(), tableName });
    this.secrets = new SecretsWatch({ user: USER, ...CREDENTIALS }, () => world.issuedAccessTokens);
    this.emptyLedgerAfter = dice.between(1, Math.max(2, Math.ceil(options.messages / 10)));
    dice.onFire = (kind) => {
      const counts = this.faultsByStep[this.stepKind];
      counts[kind] = (counts[kind] ?? 0) + 1;
      this.note(`fault ${kind}`, [], true);
    };
    const config = {
      tenant: TENANT,
      google: { apiBaseUrl: proxies.gmailProxy.baseUrl, tokenUrl: world.tokenUrl },
      mailboxes: [
        {
          id: MAILBOX_ID,
          pop3: {
            host: "127.0.0.1",
            port: proxies.proxy.port,
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
      [ENV_NAMES.workQueueUrl]: queues.queueUrl,
      [ENV_NAMES.deleteFunctionName]: "pop2gmail-acme-delete-copied",
      [S3_FORCE_PATH_STYLE_ENV]: "true",
      ...world.awsEndpointEnv(),
    };
    const heldBack = (receipts: readonly string[], seconds: number) =>
      this.source.heldBackBy(receipts, seconds);
    const slow = (text: string) => this.note(text, [], true);
    const audit = (uidls: readonly string[]) => this.audit(uidls);
    this.functions = buildLambdaFunctions({
      env,
      clock: this.clock,
      // Every log line at DEBUG, scanned for secrets; printed only with FAULTS_LOG_LEVEL=DEBUG.
      logger: () => this.secrets.logger(METRIC_SERVICE_NAME, process.env.FAULTS_LOG_LEVEL === "DEBUG"),
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
          return {
            ...deps,
            telemetry: events,
            pop3: timed(new FaultyPop3Source(deps.pop3, dice, audit), "pop3", slow),
            ledger: timed(deps.ledger, "ledger", slow),
            leases: timed(deps.leases, "leases", slow),
          };
        },
        list: (deps) => ({
          ...deps,
          queue: new FaultyQueue(deps.queue, dice, this.requestedDelays, heldBack),
        }),
        copy: (deps) => ({
          ...deps,
          archive: timed(this.watchArchive(new FaultyArchive(deps.archive, dice)), "archive", slow),
          sink: timed(new FaultySink(deps.sink, dice, this.hooks), "sink", slow),
          queue: new FaultyQueue(deps.queue, dice, this.requestedDelays, heldBack),
        }),
      },
    });
    for (const client of this.functions.s3Clients) addServerErrorMiddleware(client, dice, "s3");
    for (const client of this.functions.dynamoDbClients) addServerErrorMiddleware(client, dice, "dynamodb");
  }

  static async prepare(
    world: CampaignWorld,
    proxies: CampaignProxies,
    dice: CampaignDice,
    options: CampaignOptions,
  ): Promise<Campaign> {
    const tableName = uniqueName("ledger");
    const bucket = uniqueName("archive");
    await createLedgerTable(world.dynalite.dynamodb, tableName);
    await world.fauxqs.createBucket(bucket);
    const queues = await Campaign.workQueue(world);
    const campaign = new Campaign(world, proxies, dice, options, queues, bucket, tableName);
    await campaign.deliver();
    campaign.injectGmailFaults();
    return campaign;
  }

  /**
   * The work queue exactly as `infra/constructs/work-queues.ts` makes it: FIFO, deduplication ids
   * from the sender (no content-based deduplication), deduplication and throughput per message
   * group, the visibility timeout of 6 x the copier's timeout, and a FIFO dead-letter queue after
   * `MAX_RECEIVE_COUNT` receives; fauxqs patched to batch a group's messages and to keep the
   * deduplication window on the campaign's clock (`test/fakes/fauxqs-fifo.ts`).
   */
  private static async workQueue(world: CampaignWorld): Promise<WorkQueueUrls> {
    fauxqsFifoBatchesLikeSqs();
    const queueName = `${uniqueName("work")}.fifo`;
    const deadName = `${uniqueName("work-dead-letters")}.fifo`;
    const arnOf = (name: string) => `arn:aws:sqs:${STAND_IN_REGION}:000000000000:${name}`;
    const deadLetterUrl = await world.fauxqs.createQueue(deadName, { FifoQueue: "true" });
    const visibility = FUNCTION_SETTINGS.copyMessage.timeout.toSeconds() * VISIBILITY_TIMEOUT_FACTOR;
    const queueUrl = await world.fauxqs.createQueue(queueName, {
      FifoQueue: "true",
      ContentBasedDeduplication: "false",
      DeduplicationScope: "messageGroup",
      FifoThroughputLimit: "perMessageGroupId",
      VisibilityTimeout: String(visibility),
      RedrivePolicy: JSON.stringify({
        deadLetterTargetArn: arnOf(deadName),
        maxReceiveCount: MAX_RECEIVE_COUNT,
      }),
    });
    return { queueUrl, queueArn: arnOf(queueName), deadLetterUrl, visibilityTimeoutSeconds: visibility };
  }

  /**
   * Drops the generated mailbox into Dovecot, some messages sharing an earlier one's Message-ID,
   * and records what Dovecot serves, per UIDL.
   */
  private async deliver(): Promise<void> {
    const generated = generateMailbox(this.options.messages, this.options.seed);
    const { messages, sharing } = shareMessageIds(generated, SHARED_MESSAGE_ID_RATE, this.dice.random);
    for (const message of messages) await this.world.dovecot.deliver(USER, message.bytes);
    this.sharedMessageIds = new Set(
      [...sharing].flatMap((index) => messages[index]?.messageId ?? []).map((id) => id.toLowerCase()),
    );
    const added = await this.recordServed(new Set(), () => undefined);
    if (added !== this.options.messages) {
      throw new Error(`Dovecot serves ${added} messages, ${this.options.messages} were delivered`);
    }
    // About 1 in 100 small messages (at least one) Gmail refuses: a quarantine whose reason is
    // Gmail's error text, the path an echoed credential takes into the ledger, events and logs.
    const small = this.served.filter((m) => m.size <= 24 * 1024 && !m.sharesMessageId);
    const refused = small.filter(() => this.dice.random() < REJECTED_RATE);
    if (refused.length === 0 && small.length > 0)
      refused.push(small[this.dice.between(0, small.length - 1)] as Served);
    for (const message of refused) this.rejected.add(message.sha256);
  }

  /**
   * Reads what Dovecot serves under UIDLs not in `known` and records each message, under the UIDL
   * `reuse(realUidl)` names (a UIDL whose message is gone) or its own. Returns how many it added.
   */
  private async recordServed(
    known: ReadonlySet<string>,
    reuse: (real: string) => string | undefined,
  ): Promise<number> {
    const reader = await this.login();
    let added = 0;
    try {
      for (const { number, uidl: realUidl } of await uidlListing(reader)) {
        if (known.has(realUidl)) continue;
        const bytes = await reader.retrieve(number);
        const uidl = reuse(realUidl) ?? realUidl;
        if (uidl !== realUidl) this.proxies.presented.set(realUidl, uidl);
        const generation = (this.current.get(uidl)?.generation ?? 0) + 1;
        const messageId = messageIdOf(bytes);
        const served: Served = {
          uidl,
          realUidl,
          generation,
          label: generation === 1 ? uidl : `${uidl} (generation ${generation})`,
          sha256: sha256(bytes),
          size: bytes.length,
          messageId,
          sharesMessageId: false,
        };
        this.served.push(served);
        this.current.set(uidl, served);
        added++;
      }
    } finally {
      await reader.quit();
    }
    this.markSharing();
    return added;
  }

  /** Marks each message whose Message-ID an earlier message carries. */
  private markSharing(): void {
    const seen = new Set<string>();
    this.served.forEach((message, index) => {
      const id = message.messageId?.toLowerCase();
      if (id === undefined) return;
      if (seen.has(id) && !message.sharesMessageId)
        this.served[index] = { ...message, sharesMessageId: true };
      seen.add(id);
    });
  }

  /** Dovecot's UIDLs of what it holds now (no proxy in between). */
  private async realListing(): Promise<Set<string>> {
    const reader = await this.login();
    try {
      return new Set((await uidlListing(reader)).map((m) => m.uidl));
    } finally {
      await reader.quit();
    }
  }

  /**
   * New mail under reused UIDLs (RFC 1939 §7 allows it once the old message is gone; issue 10
   * item 3): for a few messages whose DELE committed, a new message arrives and the POP3 proxy
   * presents it under the deleted message's UIDL.
   */
  private async reuseUidls(force: boolean): Promise<void> {
    this.stepKind = "driver";
    const rolled = this.dice.roll("uidl-reuse-after-dele");
    if (!rolled && !force) return;
    const onServer = await this.realListing();
    const gone = [...this.current.values()].filter((m) => !onServer.has(m.realUidl));
    if (gone.length === 0) return;
    const count = Math.min(
      gone.length,
      this.dice.between(1, Math.max(1, Math.round(this.options.messages / 150))),
    );
    if (!rolled) this.dice.count("uidl-reuse-after-dele");
    for (let extra = 1; extra < count; extra++) this.dice.count("uidl-reuse-after-dele");
    this.reuseBatches++;
    const reused: string[] = [];
    for (let i = 0; i < count; i++) {
      const pick = gone.splice(this.dice.between(0, gone.length - 1), 1)[0];
      if (pick !== undefined) reused.push(pick.uidl);
    }
    const seed = (this.options.seed + 7919 * this.reuseBatches) >>> 0;
    for (const message of generateMailbox(reused.length, seed)) {
      await this.world.dovecot.deliver(USER, message.bytes);
    }
    const known = new Set(this.served.map((m) => m.realUidl));
    const queue = [...reused];
    await this.recordServed(known, () => queue.shift());
    this.note(`new mail under reused UIDLs ${reused.join(", ")}`, reused);
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

  /**
   * A driver step of `kind` (it starts a new context for faults and events) or, with `within`, a
   * line inside the current one.
   */
  note(text: string, uidls: readonly string[] = [], within = false, kind: StepKind = "driver"): void {
    if (!within) {
      this.step++;
      this.stepKind = kind;
    }
    this.timeline.push({ text, uidls, step: this.step, at: Date.now() });
  }

  /**
   * The Gmail side played by the proxy: the first import of a message that shares an earlier
   * message's Message-ID gets a 503 before anything is stored (issue 10 item 1), and every import
   * answered with an id is recorded by the bytes it carried.
   */
  get gmailRules(): GmailProxyRules {
    return {
      before: ({ method, path, raw }) => {
        if (raw === undefined) {
          // A 400 on a labels call is a label problem, never the message's (issue 10 item 7).
          const labels = /\/labels$/.test(path) && this.dice.roll("gmail-labels-400");
          return labels
            ? { status: 400, reason: "invalidArgument", message: `Invalid label request (${method})` }
            : undefined;
        }
        const bytes = withoutTraceLines(raw);
        const digest = sha256(bytes);
        if (this.rejected.has(digest)) {
          // Gmail refuses this message for good, quoting the request's credentials (issue 10 item 7).
          this.dice.count("gmail-400-rejects-message");
          return { status: 400, reason: "invalidArgument", message: "Invalid raw message", echo: true };
        }
        const id = messageIdOf(bytes)?.toLowerCase();
        if (id === undefined || !this.sharedMessageIds.has(id)) return undefined;
        if (this.failedOnce.has(digest)) return undefined;
        if (!this.served.some((m) => m.sha256 === digest && m.sharesMessageId)) return undefined;
        this.failedOnce.add(digest);
        return this.dice.roll("gmail-5xx-shared-message-id")
          ? { status: 503, reason: "backendError", message: "Backend Error" }
          : undefined;
      },
      afterImport: (raw, status, gmailId) => {
        if (status !== 200 || gmailId === undefined) return;
        const digest = sha256(withoutTraceLines(raw));
        const ids = this.importedIds.get(digest) ?? new Set<string>();
        ids.add(gmailId);
        this.importedIds.set(digest, ids);
      },
      echoCredentials: () => false,
    };
  }

  /**
   * Empties the ledger table once per run (issue 10 item 6), after the copy invocation the dice
   * chose, at the first point where some message waits for its delete (copied, still on the
   * server), or at the end of round 2 at the latest. Its items are scanned for secrets first, and
   * the archive keys it named are kept for the final checks.
   */
  private async maybeEmptyLedger(endOfRound: number | undefined): Promise<void> {
    if (this.ledgerEmptied !== "no" || !this.dice.enabled) return;
    this.stepKind = "driver";
    if (endOfRound === undefined) {
      if (this.copyInvocations < this.emptyLedgerAfter) return;
      const waiting = await this.checkLedger.listByState({ tenant: TENANT, mailboxId: MAILBOX_ID }, [
        "imported",
        "retained",
        "importing",
      ]);
      if (waiting.length === 0) return;
    } else if (endOfRound < 2) {
      return;
    }
    await this.scanLedger("a ledger item (before it was emptied)");
    const items = await emptyLedgerTable(this.world.dynalite.dynamodb, this.tableName);
    this.ledgerEmptied = `after copy invocation ${this.copyInvocations} (${items} items)`;
    this.note(`ledger emptied ${this.ledgerEmptied}`);
    this.dice.count("ledger-emptied");
  }

  /** Scans every ledger item as stored for secrets, and keeps the archive keys it names. */
  private async scanLedger(where: string): Promise<void> {
    for (const item of await scanLedgerItems(this.world.dynalite.dynamodb, this.tableName)) {
      this.secrets.scan(where, JSON.stringify(item));
      const digest = item.sha256?.S;
      const key = item.archiveKey?.S;
      if (digest !== undefined && key !== undefined) this.keepArchiveKey(digest, key);
    }
  }

  private keepArchiveKey(digest: string, key: string): void {
    const keys = this.archiveKeys.get(digest) ?? new Set<string>();
    keys.add(key);
    this.archiveKeys.set(digest, keys);
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
    const names = (u: string) => u === uidl || u.startsWith(`${uidl} `);
    const steps = new Set(this.timeline.filter((e) => e.uidls.some(names)).map((e) => e.step));
    const parts: string[] = [];
    for (const step of [...steps].sort((a, b) => a - b)) {
      const entries = this.timeline.filter((e) => e.step === step);
      const lines = entries.flatMap((e, index) => {
        if (index === 0) return [e.text];
        if (e.uidls.length === 0 || e.uidls.some(names)) return [e.text.replace(` ${uidl}`, "")];
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
    const faultRounds = this.options.faultRounds ?? 30;
    const maxRounds = faultRounds + (this.options.recoveryRounds ?? 60);
    let lockEpisode: CampaignReport["lockEpisode"] = { pollOutcome: "not run", busyReasons: [] };
    let rounds = 0;
    let quiet = false;
    // The first QUIT that would commit DELEs drops, so a delete pass runs while faults are on;
    // the first poll's first DynamoDB attempt fails, so the lister meets a fault for sure too.
    this.dice.force("quit-never-came");
    this.dice.force("dynamodb-5xx-attempt");
    for (let round = 1; round <= maxRounds; round++) {
      rounds = round;
      this.round = round;
      if (round === faultRounds + 1) {
        this.dice.enabled = false;
        this.world.gmail.clearFaults();
        this.world.gmail.releaseStalled();
        print(`round ${round}: faults off, recovery`);
      }
      const phases: number[] = [Date.now()];
      await this.poll();
      if (round === 1) lockEpisode = await this.lockEpisode();
      phases.push(Date.now());
      await this.runDeletes();
      phases.push(Date.now());
      await this.drain();
      phases.push(Date.now());
      if (this.dice.enabled) {
        await this.maybeEmptyLedger(round);
        if (round >= 2) await this.reuseUidls(this.reuseBatches === 0);
        // Lambda delivers an async event at least once: a delete pass comes again (and one comes
        // at all, so delete passes run under faults whatever the lister asked for).
        this.stepKind = "driver";
        const extra = this.dice.roll("delete-event-redelivered");
        if (extra || (round >= 2 && this.deletePassesWithFaults === 0)) {
          if (!extra) this.dice.count("delete-event-redelivered");
          this.deleteInvocations.push({ mailboxId: MAILBOX_ID });
          await this.runDeletes();
        }
      }
      const open = await this.unsettled();
      phases.push(Date.now());
      if (round <= 3 || round % 10 === 0 || round === faultRounds) {
        const elapsed = ((Date.now() - started) / 1000).toFixed(1);
        const [poll, deletes, copies, checks] = phases
          .slice(1)
          .map((t, i) => ((t - (phases[i] ?? t)) / 1000).toFixed(1));
        print(
          `round ${round}: ${open.length} unsettled, ${this.copyInvocations} copy invocations, ${elapsed} s ` +
            `(poll ${poll} s, delete passes ${deletes} s, copies ${copies} s, driver and checks ${checks} s)`,
        );
      }
      if (round > faultRounds && open.length === 0 && (await this.queueDepth()) === 0) {
        quiet = true;
        break;
      }
      // The next EventBridge tick.
      this.clock.advance(60_000);
    }
    const report = {
      ...(await this.verify(started, rounds, lockEpisode)),
      faultRounds: Math.min(rounds, faultRounds),
    };
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
    this.note("list-new-messages invocation", [], false, "list");
    try {
      const result = await this.functions.list({ mailboxId: MAILBOX_ID }, lambdaContext("list-new-messages"));
      this.secrets.scan("a lister result", JSON.stringify(result));
      return result.outcome;
    } catch (error) {
      this.scanError("an error the lister threw", error);
      if (!(error instanceof CrashError)) this.unexpectedErrors.push(`lister threw ${describeError(error)}`);
      return "crashed";
    }
  }

  /**
   * Lambda's async invocations of delete-copied, each with its one retry after a failure. Faults
   * stay on here too: the first delete pass under faults crashes after its QUIT, at the least.
   */
  private async runDeletes(): Promise<void> {
    for (
      let event = this.deleteInvocations.shift();
      event !== undefined;
      event = this.deleteInvocations.shift()
    ) {
      for (let attempt = 1; attempt <= 2; attempt++) {
        this.note(`delete-copied invocation (attempt ${attempt})`, event.uidls ?? [], false, "delete");
        if (this.dice.enabled) {
          if (this.deletePassesWithFaults === 0) {
            // The first delete pass under faults meets some for sure: its first DynamoDB attempt
            // fails (every pass reads the ledger) and, if it commits DELEs, it dies after QUIT.
            this.dice.force("dynamodb-5xx-attempt");
            this.dice.force("crash-after-quit");
          }
          this.deletePassesWithFaults++;
        }
        try {
          await this.functions.remove(event, lambdaContext("delete-copied"));
          break;
        } catch (error) {
          this.scanError("an error delete-copied threw", error);
          if (!(error instanceof CrashError) && attempt === 2) {
            this.unexpectedErrors.push(`delete-copied threw ${describeError(error)}`);
          }
        }
      }
    }
  }

  /** The copier's archive, kept to count the bodies it opened that nobody read (see `FaultyArchive.open`). */
  private watchArchive(archive: FaultyArchive): FaultyArchive {
    this.archives.push(archive);
    return archive;
  }

  /** Archive bodies opened and neither read to the end nor let go, across the copier's containers. */
  private unreadBodies(): string {
    const open = this.archives.reduce((sum, archive) => sum + archive.openBodies.size, 0);
    const letGo = this.archives.reduce((sum, archive) => sum + archive.letGoUnread, 0);
    return `${open} never read nor let go, ${letGo} let go before the first read`;
  }

  /** Keeps a driver step that took more than 5 s of real time, with what happened in it. */
  private noteIfSlow(step: number, began: number): void {
    const seconds = (Date.now() - began) / 1000;
    if (seconds < 5) return;
    // The long waits, each named by what came after it.
    let last = began;
    let before = "the start";
    const waits: string[] = [];
    for (const entry of this.timeline.filter((e) => e.step === step)) {
      if (entry.at - last >= 1000) {
        waits.push(`${((entry.at - last) / 1000).toFixed(1)} s between "${before}" and "${entry.text}"`);
      }
      last = entry.at;
      before = entry.text;
    }
    if (Date.now() - last >= 1000)
      waits.push(`${((Date.now() - last) / 1000).toFixed(1)} s after the last event`);
    const first = this.timeline.find((e) => e.step === step)?.text ?? "";
    this.slowSteps.push(
      `${first}: ${seconds.toFixed(1)} s (${waits.join("; ")}); ${this.s3Sockets()}; archive bodies opened and never read ${this.unreadBodies()}`,
    );
  }

  /**
   * The copier's S3 connection pool as it is now (sockets busy, free, requests waiting for one):
   * a body nobody read keeps its socket, and a full pool makes every later S3 call wait.
   */
  private s3Sockets(): string {
    const agent = this.s3Agent();
    if (agent === undefined) return "S3 pool unknown";
    const count = (pool: object | undefined) =>
      Object.values(pool ?? {}).reduce(
        (sum: number, list: unknown) => sum + (Array.isArray(list) ? list.length : 0),
        0,
      );
    return `S3 pool: ${count(agent.sockets)} busy, ${count(agent.freeSockets)} free, ${count(agent.requests)} waiting`;
  }

  /** The copier's S3 HTTP agent (the SDK's node handler keeps it once it sent a request). */
  private s3Agent(): { sockets?: object; freeSockets?: object; requests?: object } | undefined {
    const handler = this.functions.s3Clients[0]?.config.requestHandler as unknown as
      | { config?: { httpAgent?: { sockets?: object; freeSockets?: object; requests?: object } } }
      | undefined;
    return handler?.config?.httpAgent;
  }

  /** Sockets of the copier's S3 pool still given to a request (after the run: requests that never ended). */
  private s3SocketsBusy(): number {
    const sockets = this.s3Agent()?.sockets ?? {};
    return Object.values(sockets).reduce(
      (sum: number, list: unknown) => sum + (Array.isArray(list) ? list.length : 0),
      0,
    );
  }

  /** Scans every readable form of an error and its causes for secrets. */
  private scanError(where: string, error: unknown): void {
    for (let cause = error, depth = 0; cause !== undefined && cause !== null && depth < 8; depth++) {
      const text = [String(cause), inspect(cause, { depth: 6, showHidden: true })];
      if (cause instanceof Error) text.push(cause.stack ?? "");
      this.secrets.scan(where, text.join("\n"));
      cause = cause instanceof Error ? cause.cause : undefined;
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

  /**
   * Copies batches until the work queue is empty, as Lambda's event source on the FIFO queue does
   * (`FifoEventSource`): when nothing is visible, the clock moves to the next delivery that comes
   * back (a held-back job when due, a failed one when its visibility timeout runs out).
   * Redeliveries come from the dice.
   */
  private async drain(): Promise<void> {
    const maxSteps = 50 + 2 * this.served.length;
    for (let steps = 0; steps < maxSteps; steps++) {
      await this.maybeEmptyLedger(undefined);
      const messages = await this.receive();
      if (messages.length === 0) {
        if (await this.source.releaseNext()) continue;
        if ((await this.queueDepth()) === 0) return;
        continue;
      }
      this.stepKind = "driver";
      if (this.dice.roll("sqs-concurrent-redelivery")) {
        await this.concurrentRedelivery(messages);
        continue;
      }
      await this.maybeDelayWholeQueue(messages);
      const { response, invokedAt } = await this.invokeCopy(messages);
      // The acknowledgement is lost: SQS delivers the batch again once its visibility timeout runs out.
      this.stepKind = "driver";
      const redeliver = this.dice.roll("sqs-redelivery");
      if (redeliver) this.note("acknowledgement lost: SQS delivers the batch again", messages.map(uidlOf));
      this.source.checkNotBefore(messages, response, invokedAt);
      await this.source.settle(
        messages,
        redeliver
          ? { batchItemFailures: messages.map((m) => ({ itemIdentifier: m.MessageId ?? "" })) }
          : response,
      );
    }
    throw new Error(`queue not drained after ${maxSteps} steps`);
  }

  /**
   * FIFO's delays must be met under faults (a copier holding back jobs that came early for their
   * `notBefore` while their group waits): until one was, a batch (from round 2 on) that holds
   * every job left on the queue meets the server's LOGIN-DELAY, so its jobs are re-sent for 5
   * minutes later and, nothing being ahead of them in their group, come back at once, early.
   */
  private async maybeDelayWholeQueue(messages: readonly Message[]): Promise<void> {
    if (!this.dice.enabled || this.round < 2 || this.source.heldBackSoFar > 0) return;
    if ((await this.queueDepth()) !== messages.length) return;
    this.dice.force("login-delay");
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
    await this.source.expireNow(messages);
    const again = await this.source.receive(true);
    await Promise.all([first, this.copyMessages(again)]);
  }

  /** One copy invocation; a thrown invocation returns the whole batch to the queue, as Lambda does. */
  private async invokeCopy(
    messages: readonly Message[],
  ): Promise<{ response: SQSBatchResponse; invokedAt: number }> {
    this.copyInvocations++;
    this.note(`copy invocation ${this.copyInvocations}`, messages.map(uidlOf), false, "copy");
    const step = this.step;
    const began = Date.now();
    const invokedAt = this.clock.now();
    try {
      const response = await this.functions.copy(
        sqsEvent(this.queueArn, messages),
        lambdaContext("copy-message"),
      );
      this.secrets.scan("a copy-message result", JSON.stringify(response));
      this.noteIfSlow(step, began);
      return { response, invokedAt };
    } catch (error) {
      this.scanError("an error copy-message threw", error);
      if (!(error instanceof CrashError))
        this.unexpectedErrors.push(`copy-message threw ${describeError(error)}`);
      return {
        response: { batchItemFailures: messages.map((m) => ({ itemIdentifier: m.MessageId ?? "" })) },
        invokedAt,
      };
    }
  }

  private async copyMessages(messages: readonly Message[]): Promise<void> {
    if (messages.length === 0) return;
    const { response, invokedAt } = await this.invokeCopy(messages);
    this.source.checkNotBefore(messages, response, invokedAt);
    await this.source.settle(messages, response);
  }

  private receive(): Promise<Message[]> {
    return this.source.receive();
  }

  private queueDepth(): Promise<number> {
    return this.source.depth();
  }

  /** Every ledger entry of the mailbox (all states), on the checks' own client. */
  private async entriesByUidl(): Promise<Map<string, LedgerEntry[]>> {
    const entries = await this.checkLedger.listByState(
      { tenant: TENANT, mailboxId: MAILBOX_ID },
      LEDGER_STATES,
    );
    const byUidl = new Map<string, LedgerEntry[]>();
    for (const entry of entries) {
      // A later generation's ledger id is `<uidl> <n>` (docs/pipeline.md); a UIDL has no space.
      const uidl = entry.uidl.split(" ")[0] ?? entry.uidl;
      byUidl.set(uidl, [...(byUidl.get(uidl) ?? []), entry]);
    }
    return byUidl;
  }

  /**
   * The ledger entry of `message`, found by its UIDL and its bytes (whatever generation its ledger
   * id names): the entry under its UIDL holding its SHA-256, or, for the message now behind the
   * UIDL, one that holds no bytes yet.
   */
  private entryOf(
    message: Served,
    byUidl: ReadonlyMap<string, readonly LedgerEntry[]>,
  ): LedgerEntry | undefined {
    const mine = byUidl.get(message.uidl) ?? [];
    const exact = mine.find((e) => e.sha256 === message.sha256);
    if (exact !== undefined || this.current.get(message.uidl) !== message) return exact;
    return mine.find((e) => e.sha256 === undefined);
  }

  /** Labels of the messages not settled yet: on the server and not quarantined, or their delete not recorded. */
  private async unsettled(): Promise<string[]> {
    const onServer = await this.realListing();
    const byUidl = await this.entriesByUidl();
    return this.served
      .filter((message) => {
        const entry = this.entryOf(message, byUidl);
        if (entry?.state === "quarantined") return false;
        if (onServer.has(message.realUidl)) return true;
        // Gone from the server: settled once the ledger says deleted (or lost it with the table).
        return entry !== undefined && entry.state !== "deleted";
      })
      .map((message) => message.label);
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
   * Gmail holds `message` under `gmailId`: a copy of its bytes (trace header lines aside), or,
   * for a message sharing an earlier one's Message-ID, the message its own import was merged into.
   */
  private gmailHolds(message: Served, gmailId: string, gmail: readonly StoredMessage[]): boolean {
    const held = gmail.find((m) => m.id === gmailId);
    if (held === undefined) return false;
    if (sha256(withoutTraceLines(held.raw)) === message.sha256) return true;
    return message.sharesMessageId && (this.importedIds.get(message.sha256)?.has(gmailId) ?? false);
  }

  /**
   * Right before a QUIT that would commit DELEs (invariant 1): each message must be `imported`
   * (or `retained`) in the ledger with its archive key and Gmail id, archived byte-exact in S3,
   * and held by Gmail under that id (see `gmailHolds`).
   */
  private async audit(uidls: readonly string[]): Promise<void> {
    this.auditedCommits++;
    const gmail = this.world.gmail.messages(gmailUserOf(USER));
    const byUidl = await this.entriesByUidl();
    for (const uidl of uidls) {
      const served = this.current.get(uidl);
      if (served !== undefined) this.audited.add(served.label);
      const entry = served === undefined ? undefined : this.entryOf(served, byUidl);
      const inGmail =
        entry?.gmailId !== undefined && served !== undefined && this.gmailHolds(served, entry.gmailId, gmail);
      const object = entry?.archiveKey === undefined ? undefined : await this.archived(entry.archiveKey);
      if (served !== undefined && entry?.archiveKey !== undefined)
        this.keepArchiveKey(served.sha256, entry.archiveKey);
      const recorded = entry?.state === "imported" || entry?.state === "retained";
      if (
        served === undefined ||
        !recorded ||
        !inGmail ||
        object === undefined ||
        sha256(object) !== served.sha256
      ) {
        this.breaches.push(
          `${served?.label ?? uidl}: DELE about to be committed while ledger=${entry?.state ?? "none"}, in Gmail=${inGmail}, ` +
            `archived=${object === undefined ? "no" : sha256(object) === served?.sha256 ? "exact" : "different"}`,
        );
      }
    }
  }

  /**
   * Archived byte-exact: the object the entry names, or, for an entry that names none (the ledger
   * was emptied, or a stale entry was written later), an object the ledger once named for it.
   */
  private async archivedExactly(message: Served, entry: LedgerEntry | undefined): Promise<boolean> {
    const keys =
      entry?.archiveKey !== undefined
        ? [entry.archiveKey]
        : [...(this.archiveKeys.get(message.sha256) ?? [])];
    for (const key of keys) {
      const object = await this.archived(key);
      if (object !== undefined && sha256(object) === message.sha256) return true;
    }
    return false;
  }

  /** The invariants after recovery, per served message, and the counts. */
  private async verify(
    started: number,
    rounds: number,
    lockEpisode: CampaignReport["lockEpisode"],
  ): Promise<Omit<CampaignReport, "faultRounds">> {
    const breaches = [...this.breaches];
    const problems = [...this.unexpectedErrors];
    const onServer = await this.realListing();
    const gmailUser = gmailUserOf(USER);
    const gmail = this.world.gmail.messages(gmailUser);
    const copiesBySha = new Map<string, number>();
    for (const message of gmail) {
      const digest = sha256(withoutTraceLines(message.raw));
      copiesBySha.set(digest, (copiesBySha.get(digest) ?? 0) + 1);
    }
    const servedShas = new Set(this.served.map((s) => s.sha256));
    for (const [digest, copies] of copiesBySha) {
      if (!servedShas.has(digest))
        breaches.push(`Gmail holds ${copies} message(s) with bytes Dovecot never served`);
    }
    const byUidl = await this.entriesByUidl();
    const quarantinedByCode: Record<string, number> = {};
    let archivedByteExact = 0;
    let inGmailExactlyOnce = 0;
    let inGmailExactlyOnceWithoutMessageId = 0;
    let notInGmail = 0;
    let deletedFromPop3 = 0;
    let mergedByGmail = 0;
    let ledgerLostAfterDelete = 0;
    let rejectedByGmail = 0;
    for (const message of this.served) {
      const { label } = message;
      const entry = this.entryOf(message, byUidl);
      const exact = await this.archivedExactly(message, entry);
      const copies = copiesBySha.get(message.sha256) ?? 0;
      // Gmail merged this message's own import into the earlier message with its Message-ID.
      const merged =
        copies === 0 &&
        message.sharesMessageId &&
        [...(this.importedIds.get(message.sha256) ?? [])].some((id) => gmail.some((m) => m.id === id));
      const held = copies === 1 || merged;
      const present = onServer.has(message.realUidl);
      if (exact) archivedByteExact++;
      if (this.rejected.has(message.sha256)) {
        // Gmail refuses it: archived, quarantined with Gmail's reason, left on the server.
        const code = entry?.quarantineCode ?? entry?.state ?? "missing";
        if (entry?.state === "quarantined") quarantinedByCode[code] = (quarantinedByCode[code] ?? 0) + 1;
        if (!present) breaches.push(`${label}: refused by Gmail but deleted from POP3`);
        if (copies > 0) breaches.push(`${label}: refused by Gmail but ${copies} copies in Gmail`);
        if (entry?.state !== "quarantined" || code !== "MESSAGE_REJECTED") {
          problems.push(`${label}: refused by Gmail, ledger ${entry?.state ?? "missing"} ${code}`);
        } else rejectedByGmail++;
        if (!exact) problems.push(`${label}: refused by Gmail, not archived byte-exact`);
        continue;
      }
      if (copies === 1) {
        inGmailExactlyOnce++;
        if (message.messageId === undefined) inGmailExactlyOnceWithoutMessageId++;
      }
      if (merged) mergedByGmail++;
      if (!held) notInGmail++;
      if (!present) deletedFromPop3++;
      if (copies > 1) breaches.push(`${label}: ${copies} copies in Gmail`);
      if (!present && (!exact || !held)) {
        breaches.push(
          `${label}: gone from POP3 but archived=${exact ? "exact" : "no/different"}, Gmail copies=${copies}`,
        );
      }
      if (!present && !this.audited.has(label))
        breaches.push(`${label}: gone from POP3 without an audited QUIT`);
      if (entry?.state === "quarantined") {
        const code = entry.quarantineCode ?? "none";
        quarantinedByCode[code] = (quarantinedByCode[code] ?? 0) + 1;
        // Deleted while quarantined; a quarantine written after an audited delete is a stale
        // entry (a problem below), not a delete of a quarantined message.
        if (!present && !this.audited.has(label))
          breaches.push(`${label}: quarantined ${code} but deleted from POP3`);
        // No message waits for a human (DESIGN.md invariant 1): any quarantine here is a failure.
        problems.push(
          `${label}: quarantined ${code}${message.messageId === undefined ? " (no Message-ID)" : ""}` +
            (present ? "" : " after it was copied and deleted (a stale ledger entry)"),
        );
        continue;
      }
      if (entry === undefined && !present && this.ledgerEmptied !== "no" && this.audited.has(label)) {
        // Deleted before the ledger was emptied: nothing can remember it, and nothing needs to.
        ledgerLostAfterDelete++;
      } else if ((entry?.state === "imported" || entry?.state === "retained") && !present) {
        // Copied and gone from the server, but the ledger never recorded the delete: no invariant
        // is breached, yet the ledger (and the Deleted metric, `pop2gmail status`) is wrong for good.
        problems.push(
          `${label}: ledger ${entry.state} although gone from POP3 (the delete was never recorded)`,
        );
      } else if (entry?.state !== "deleted") {
        problems.push(`${label}: ledger ${entry?.state ?? "missing"} after recovery`);
      }
      if (!exact) problems.push(`${label}: not archived byte-exact`);
      if (entry !== undefined && entry.sha256 !== message.sha256)
        problems.push(`${label}: ledger SHA-256 differs from the served bytes`);
      if (!held) problems.push(`${label}: ${copies} copies in Gmail`);
      if (present) problems.push(`${label}: still on POP3 after recovery`);
    }
    // Secrets (DESIGN.md invariant 6): log lines were scanned as printed; now the rest.
    for (const log of this.events)
      for (const event of log.events) this.secrets.scan("a pipeline event", JSON.stringify(event));
    await this.scanLedger("a ledger item");
    for (const text of [...breaches, ...problems]) this.secrets.scan("the campaign's own findings", text);
    const named = [...breaches, ...problems].flatMap(
      (text) => /^([\x21-\x39\x3b-\x7e]+)[: ]/.exec(text)?.[1] ?? [],
    );
    const traces = [...new Set(named)]
      .filter((uidl) => this.current.has(uidl))
      .slice(0, 5)
      .map((uidl) => this.trace(uidl));
    const imports = this.world.gmail.rawImports().filter((r) => r.user === gmailUser);
    const faultsInjected: Record<string, number> = {};
    for (const kind of FAULT_KINDS) faultsInjected[kind] = this.dice.fired.get(kind) ?? 0;
    const log = this.world.gmail.requestLog();
    const gmailStatus = (status: number, operations: readonly string[]) =>
      log.filter((e) => e.status === status && operations.includes(e.request.operation)).length;
    const uploads = ["import", "upload-session", "upload-chunk"];
    // The stand-in's own rules: Gmail is called from copy steps only.
    const standIn: Record<string, number> = {
      "gmail-429": gmailStatus(429, uploads),
      "gmail-5xx": gmailStatus(503, uploads),
      "gmail-5xx-after-store": gmailStatus(500, uploads),
      "gmail-reset": gmailStatus(-1, uploads),
      "gmail-timeout": gmailStatus(-2, uploads),
      "gmail-token-5xx": gmailStatus(502, ["token"]),
    };
    Object.assign(faultsInjected, standIn);
    Object.assign(this.faultsByStep.copy, standIn);
    faultsInjected["retr-connection-cut"] = this.proxies.proxy.cutsDone;
    const busyByReason: Record<string, number> = {};
    for (const reason of this.busyReasons()) busyByReason[reason] = (busyByReason[reason] ?? 0) + 1;
    return {
      seed: this.options.seed,
      intensity: this.options.intensity ?? 1,
      messages: this.served.length,
      reusedUidlMessages: this.served.filter((m) => m.generation > 1).length,
      withoutMessageId: this.served.filter((m) => m.messageId === undefined).length,
      sharingMessageId: this.served.filter((m) => m.sharesMessageId).length,
      mergedByGmail,
      rejectedByGmail,
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
      faultsByStep: this.faultsByStep,
      deletePassesWithFaults: this.deletePassesWithFaults,
      ledgerEmptied: this.ledgerEmptied,
      ledgerLostAfterDelete,
      secretsFound: [...new Set(this.secrets.found)],
      textsScannedForSecrets: this.secrets.scanned,
      slowSteps: this.slowSteps,
      unreadArchiveBodies: this.unreadBodies(),
      s3PoolAtEnd: this.s3Sockets(),
      s3SocketsBusyAtEnd: this.s3SocketsBusy(),
      auditedCommits: this.auditedCommits,
      lockEpisode,
      busyByReason,
      rounds,
      copyInvocations: this.copyInvocations,
      queue: await this.source.figures(),
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
    `messages ${report.messages} (without Message-ID ${report.withoutMessageId}; sharing an earlier message's Message-ID ${report.sharingMessageId}; new mail under a reused UIDL ${report.reusedUidlMessages})`,
    `archived byte-exact ${report.archivedByteExact}`,
    `in Gmail exactly once ${report.inGmailExactlyOnce} (of them without Message-ID ${report.inGmailExactlyOnceWithoutMessageId}); merged by Gmail into the earlier message with their Message-ID ${report.mergedByGmail}; refused by Gmail and quarantined as they must ${report.rejectedByGmail}; not in Gmail ${report.notInGmail}; import requests stored ${report.gmailImportRequests} (merged re-imports ${report.gmailMergedReimports})`,
    `deleted from POP3 ${report.deletedFromPop3}; still on POP3 ${report.stillOnPop3}`,
    `quarantined ${JSON.stringify(report.quarantinedByCode)}`,
    `breaches ${report.breaches.length}; problems ${report.problems.length}; audited committing QUITs ${report.auditedCommits}`,
    `faults injected: ${faults}`,
    `faults by step: ${Object.entries(report.faultsByStep)
      .map(
        ([step, counts]) =>
          `${step} ${Object.values(counts).reduce((a, b) => a + b, 0)} ${JSON.stringify(counts)}`,
      )
      .join("; ")}`,
    `delete passes with faults on ${report.deletePassesWithFaults}; ledger emptied ${report.ledgerEmptied}, deleted messages it forgot ${report.ledgerLostAfterDelete}`,
    `archive bodies opened: ${report.unreadArchiveBodies}; after the run ${report.s3PoolAtEnd}`,
    `secrets found ${report.secretsFound.length} in ${report.textsScannedForSecrets} texts scanned${report.secretsFound.length === 0 ? "" : `: ${report.secretsFound.join("; ")}`}`,
    `busy outcomes ${JSON.stringify(report.busyByReason)}; lock episode: poll ${report.lockEpisode.pollOutcome}, busy ${JSON.stringify(report.lockEpisode.busyReasons)}`,
    `work queue ${report.queue.queueType}: batches ${report.queue.batches}; held back for notBefore ${report.queue.heldBack} (released when due ${report.queue.releasedWhenDue}); back after the visibility timeout ${report.queue.visibilityTimeouts}; virtual time waited ${(report.queue.waitedMs / 60_000).toFixed(1)} min; dead-lettered ${report.queue.deadLettered}`,
    `rounds ${report.rounds} (with faults ${report.faultRounds}); copy invocations ${report.copyInvocations}; duration ${(report.durationMs / 1000).toFixed(1)} s`,
    ...report.slowSteps.slice(0, 5).map((step) => `SLOW ${step}`),
    ...report.breaches.slice(0, 20).map((b) => `BREACH ${b}`),
    ...report.problems.slice(0, 20).map((p) => `PROBLEM ${p}`),
    ...report.traces.map((t) => `TRACE ${t}`),
  ];
}

/**
 * `target` with every method that returns a promise timed: a call that takes a second or more of
 * real time is told to `slow` (so a slow run names the port call that held it up); the POP3
 * session `open` returns is timed too.
 */
function timed<T extends object>(target: T, name: string, slow: (text: string) => void): T {
  return new Proxy(target, {
    get(object, property) {
      const value: unknown = Reflect.get(object, property, object);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        const began = Date.now();
        const result: unknown = value.apply(object, args);
        if (!(result instanceof Promise)) return result;
        const report = () => {
          const seconds = (Date.now() - began) / 1000;
          if (seconds >= 1) slow(`slow ${name}.${String(property)}: ${seconds.toFixed(1)} s`);
        };
        return result.then(
          (resolved: unknown) => {
            report();
            const session =
              name === "pop3" && property === "open" && typeof resolved === "object" && resolved !== null;
            return session ? timed(resolved, "pop3 session", slow) : resolved;
          },
          (error: unknown) => {
            report();
            throw error;
          },
        );
      };
    },
  });
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
