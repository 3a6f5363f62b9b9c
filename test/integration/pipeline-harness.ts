import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Logger } from "@aws-lambda-powertools/logger";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  type Message,
} from "@aws-sdk/client-sqs";
import type { SQSBatchResponse } from "aws-lambda";
import { createLedgerTable } from "../../shared/adapters/dynamodb/create-ledger-table";
import { DynamoDbSessionSlots } from "../../shared/adapters/dynamodb/dynamodb-session-slots";
import { makeCopyMessageHandler } from "../../shared/adapters/lambda/copy-message-handler";
import { makeDeleteCopiedHandler } from "../../shared/adapters/lambda/delete-copied-handler";
import { type DeleteCopiedEvent, LambdaDeleteInvoker } from "../../shared/adapters/lambda/delete-invoker";
import {
  type ContainerPipelineDeps,
  createLambdaDeps,
  type LambdaDeps,
  S3_FORCE_PATH_STYLE_ENV,
} from "../../shared/adapters/lambda/lambda-deps";
import { createChainPorts } from "../../shared/adapters/lambda/list-new-messages-deps";
import {
  KEEPER_EVENT,
  makeKeeperHandler,
  makeListNewMessagesHandler,
  makePollChainHandler,
} from "../../shared/adapters/lambda/list-new-messages-handler";
import { ENV_NAMES } from "../../shared/config/env";
import { METRIC_SERVICE_NAME } from "../../shared/config/metrics";
import type { LedgerEntry, ServerMessage } from "../../shared/core/model";
import type { ArchiveStore } from "../../shared/ports/archive-store";
import type { ImportRequest, MailSink } from "../../shared/ports/mail-sink";
import type { Pop3Session, Pop3Source } from "../../shared/ports/pop3-source";
import type { WorkQueue } from "../../shared/ports/work-queue";
import { AwsCallRecorder } from "../fakes/aws-call-recorder";
import {
  type DynaliteStandIn,
  type FauxqsStandIn,
  STAND_IN_REGION,
  startDynaliteStandIn,
  startFauxqsStandIn,
  uniqueName,
} from "../fakes/aws-stand-ins";
import { type DovecotServer, startDovecot } from "../fakes/dovecot";
import { EventLog } from "../fakes/event-log";
import { GMAIL_SCOPES, GmailApiStandIn } from "../fakes/gmail-api-stand-in";
import { OffsetClock } from "../fakes/offset-clock";
import { quietMetrics } from "../fakes/quiet-metrics";
import { RawPop3Reader, uidlListing } from "../fakes/raw-pop3-reader";
import { startSecretsManagerStandIn } from "../fakes/secrets-manager-stand-in";
import { lambdaContext, sqsEvent } from "../fakes/sqs-lambda-events";
import { queueDepth, receiptEntries, receiveBatch } from "../fakes/sqs-queue-driver";
import type { GeneratedMessage } from "../fixtures/awkward-messages";

/**
 * The end-to-end rig of issue 4: the real handlers, built by the real `createLambdaDeps`, against
 * a real Dovecot, fauxqs (SQS and S3), dynalite, the Gmail API stand-in and a small Secrets
 * Manager stand-in, all on 127.0.0.1. A driver plays Lambda's part: the schedule calls the
 * lister, the SQS event source receives batches of 10 and calls the copier with SQS-shaped
 * events, deleting what the response acknowledges, and async invocations of delete-copied run
 * when the lister asks for them. Fault decorators wrap the ports at the seams.
 */

export const TENANT = "acme";
const DUMMY_CREDENTIALS = { accessKeyId: "test", secretAccessKey: "test" };

/** The Gmail address the rig of Dovecot user `user` imports into. */
export function gmailUserOf(user: string): string {
  return `${user}.acme@gmail.com`;
}

/**
 * Every AWS call the rig's handlers make, attributed to the function that made it; written to
 * `recordedCallsDir()` when a world stops, for the IAM proof (test/infra/iam-proof.test.ts).
 */
export const pipelineAwsCalls = new AwsCallRecorder();

/** The delete-copied function name the lister is given (its invocations run in process). */
const DELETE_FUNCTION_NAME = "pop2gmail-acme-delete-copied";

/** Stands for the process dying at a seam: not one of our errors, so the core never handles it. */
export class CrashError extends Error {}

/** A one-shot (or n-shot) trigger for a fault; `when` narrows which call fires it. */
export class Trigger<A extends unknown[] = []> {
  fired = 0;
  constructor(
    private remaining: number,
    private readonly when: (...args: A) => boolean = () => true,
  ) {}
  fire(...args: A): boolean {
    if (this.remaining <= 0 || !this.when(...args)) return false;
    this.remaining--;
    this.fired++;
    return true;
  }
}

/** Faults the decorators inject; each is a `Trigger` or absent. */
export interface FaultPlan {
  /** Throw `CrashError` once RETR has streamed the whole message, before the archive write ends. */
  crashAfterRetr?: Trigger;
  /** Throw `CrashError` after the archive `put` returned. */
  crashAfterArchivePut?: Trigger;
  /** Throw `CrashError` after Gmail returned an id, before the ledger write. */
  crashAfterImport?: Trigger<[ImportRequest]>;
  /** Throw `CrashError` instead of QUIT in a session that sent DELEs: the socket is dropped. */
  crashBeforeQuit?: Trigger;
  /** Awaited before each Gmail import: lets a test hold a copy "still running". */
  beforeImport?: (request: ImportRequest) => Promise<void>;
}

export const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

/**
 * A TCP proxy in front of Dovecot's plaintext port that can cut a connection in the middle of a
 * RETR reply: after the client sends `RETR`, it forwards `cutAfterBytes` of the reply, then
 * destroys both sockets (the client sees a reset, as when a provider drops the line).
 */
export class CuttingProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  /** How many RETR replies to cut from now on. */
  cuts = 0;
  cutAfterBytes = 1500;
  /** Cuts done so far. */
  cutsDone = 0;
  port = 0;

  async start(targetPort: number): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect({ host: "127.0.0.1", port: targetPort });
      this.sockets.add(client);
      this.sockets.add(upstream);
      let replyBytes: number | undefined;
      const close = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on("data", (chunk: Buffer) => {
        if (/^RETR /im.test(chunk.toString("latin1")) && this.cuts > 0) {
          this.cuts--;
          replyBytes = 0;
        }
        upstream.write(chunk);
      });
      upstream.on("data", (chunk: Buffer) => {
        if (replyBytes === undefined) {
          client.write(chunk);
          return;
        }
        const room = this.cutAfterBytes - replyBytes;
        if (chunk.length < room) {
          replyBytes += chunk.length;
          client.write(chunk);
          return;
        }
        this.cutsDone++;
        client.write(chunk.subarray(0, room), () => close());
        replyBytes = undefined;
      });
      client.on("error", close);
      upstream.on("error", close);
      client.on("close", close);
      upstream.on("close", close);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    this.port = typeof address === "object" && address !== null ? address.port : 0;
    this.server = server;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** The servers one suite shares; each test gets its own mailbox, table, bucket and queue. */
export class PipelineWorld {
  private constructor(
    readonly dovecot: DovecotServer,
    readonly fauxqs: FauxqsStandIn,
    readonly dynalite: DynaliteStandIn,
    readonly gmail: GmailApiStandIn,
    readonly gmailUrls: { baseUrl: string; tokenUrl: string },
    readonly secretsManager: Awaited<ReturnType<typeof startSecretsManagerStandIn>>,
    readonly caFile: string,
    private readonly dir: string,
    readonly users: Record<string, string>,
  ) {}

  /** Starts everything; `users` are the Dovecot mailboxes the suite's tests will use. */
  static async start(options: { users: readonly string[]; lockSession?: boolean }): Promise<PipelineWorld> {
    // Single metrics (CredentialsBroken) are new Metrics objects that read this
    // when created; each test file runs in its own process, so setting it here stays local.
    process.env.POWERTOOLS_METRICS_DISABLED = "true";
    const users = Object.fromEntries(options.users.map((u) => [u, `${u}-password`]));
    const started: { stop(): Promise<void> }[] = [];
    try {
      const dovecot = await startDovecot({ users, lockSession: options.lockSession ?? false });
      started.push(dovecot);
      const fauxqs = await startFauxqsStandIn();
      started.push(fauxqs);
      const dynalite = await startDynaliteStandIn();
      started.push(dynalite);
      const gmail = new GmailApiStandIn();
      const gmailUrls = await gmail.start();
      started.push(gmail);
      const secretsManager = await startSecretsManagerStandIn();
      started.push(secretsManager);
      const dir = await mkdtemp(join(tmpdir(), "pop2gmail-pipeline-"));
      const caFile = join(dir, "ca.pem");
      await writeFile(caFile, dovecot.caPem);
      // One Gmail user per mailbox, so each test counts only its own copies.
      for (const [user, password] of Object.entries(users)) {
        secretsManager.secrets.set(`pop3/${user}`, password);
        gmail.registerOAuthUser({
          user: gmailUserOf(user),
          clientId: "client-id",
          clientSecret: "client-secret",
          refreshToken: `refresh-${user}`,
          scopes: [GMAIL_SCOPES.insert, GMAIL_SCOPES.labels, GMAIL_SCOPES.readonly],
        });
        secretsManager.secrets.set(
          `google/${user}`,
          JSON.stringify({
            clientId: "client-id",
            clientSecret: "client-secret",
            refreshToken: `refresh-${user}`,
          }),
        );
      }
      return new PipelineWorld(
        dovecot,
        fauxqs,
        dynalite,
        gmail,
        gmailUrls,
        secretsManager,
        caFile,
        dir,
        users,
      );
    } catch (error) {
      for (const server of started.reverse()) await server.stop().catch(() => undefined);
      throw error;
    }
  }

  async stop(): Promise<void> {
    const users = Object.keys(this.users);
    pipelineAwsCalls.writeTo("pipeline-harness", {
      tenant: TENANT,
      secrets: { pop3: users.map((u) => `pop3/${u}`), google: users.map((u) => `google/${u}`) },
    });
    await this.gmail.stop();
    await this.secretsManager.stop();
    await this.fauxqs.stop();
    await this.dynalite.stop();
    await this.dovecot.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}

export interface RigOptions {
  /** The Dovecot user (one per test). */
  readonly user: string;
  /** `tls`: implicit TLS with the harness CA file (default); `plain`: plaintext opt-in; `proxy`: plaintext through a `CuttingProxy`. */
  readonly transport?: "tls" | "plain" | "proxy";
  /**
   * A plaintext POP3 server of the test's own on 127.0.0.1 in place of Dovecot (e.g. a
   * `ScriptedPop3Server` that announces LOGIN-DELAY); `deliver` and `onServer` still use Dovecot.
   */
  readonly pop3Port?: number;
  readonly pollSeconds?: number;
  readonly deleteAfter?: string;
  readonly faults?: FaultPlan;
}

/** One mailbox wired end to end, with the driver and the invariant checks. */
export class PipelineRig {
  readonly clock = new OffsetClock();
  readonly faults: FaultPlan;
  readonly deps: LambdaDeps;
  readonly events: EventLog;
  readonly list: ReturnType<typeof makeListNewMessagesHandler>;
  /** The lister on the poll queue's events (docs/lambda-handlers.md "Sub-minute polling"). */
  readonly chain: ReturnType<typeof makePollChainHandler>;
  /** The lister on the tenant schedule's keeper event. */
  readonly keeper: ReturnType<typeof makeKeeperHandler>;
  readonly copy: ReturnType<typeof makeCopyMessageHandler>;
  readonly remove: ReturnType<typeof makeDeleteCopiedHandler>;
  /** Delete-copied events the lister started (run by `runDeletes`, as Lambda would run them). */
  readonly deleteInvocations: DeleteCopiedEvent[] = [];
  /** `DelaySeconds` the copier asked for when it re-sent postponed jobs. */
  readonly requestedDelays: number[] = [];
  /** Messages committed for deletion while ledger, S3 or Gmail did not hold them (must stay empty). */
  readonly violations: string[] = [];
  /** UIDL -> the bytes Dovecot serves (read by the independent raw reader). */
  readonly served = new Map<string, Buffer>();
  /** Most receives any job needed. */
  maxReceiveCount = 0;
  readonly proxy: CuttingProxy | undefined;

  private constructor(
    readonly world: PipelineWorld,
    readonly options: RigOptions,
    readonly queueUrl: string,
    readonly queueArn: string,
    readonly bucket: string,
    readonly tableName: string,
    proxy: CuttingProxy | undefined,
    /** The poll queue, the copy dead-letter queue and the failed-deletes queue (standard, on fauxqs). */
    readonly chainQueues: {
      readonly poll: string;
      readonly deadLetters: string;
      readonly failedDeletes: string;
    },
  ) {
    this.faults = options.faults ?? {};
    this.proxy = proxy;
    const pop3 =
      options.pop3Port !== undefined
        ? { host: "127.0.0.1", port: options.pop3Port, tls: "none", allowPlaintext: true }
        : options.transport === "proxy"
          ? { host: "127.0.0.1", port: proxy?.port ?? 0, tls: "none", allowPlaintext: true }
          : options.transport === "plain"
            ? { host: "127.0.0.1", port: world.dovecot.plainPort, tls: "none", allowPlaintext: true }
            : { host: "127.0.0.1", port: world.dovecot.tlsPort, tls: "implicit", caFile: world.caFile };
    const config = {
      tenant: TENANT,
      google: { apiBaseUrl: world.gmailUrls.baseUrl, tokenUrl: world.gmailUrls.tokenUrl },
      mailboxes: [
        {
          id: this.mailboxId,
          pop3: { ...pop3, user: options.user, passwordSecret: `pop3/${options.user}` },
          gmail: { user: gmailUserOf(options.user), credentialsSecret: `google/${options.user}` },
          ...(options.pollSeconds === undefined ? {} : { pollSeconds: options.pollSeconds }),
          ...(options.deleteAfter === undefined ? {} : { deleteAfter: options.deleteAfter }),
        },
      ],
    };
    const env: NodeJS.ProcessEnv = {
      [ENV_NAMES.tenantConfig]: JSON.stringify(config),
      [ENV_NAMES.ledgerTable]: tableName,
      [ENV_NAMES.archiveBucket]: bucket,
      [ENV_NAMES.workQueueUrl]: queueUrl,
      [ENV_NAMES.deleteFunctionName]: DELETE_FUNCTION_NAME,
      [ENV_NAMES.pollQueueUrl]: chainQueues.poll,
      [ENV_NAMES.deadLetterQueueUrl]: chainQueues.deadLetters,
      [ENV_NAMES.failedDeletesQueueUrl]: chainQueues.failedDeletes,
      AWS_REGION: STAND_IN_REGION,
      AWS_ENDPOINT_URL_S3: world.fauxqs.endpoint,
      AWS_ENDPOINT_URL_SQS: world.fauxqs.endpoint,
      AWS_ENDPOINT_URL_DYNAMODB: world.dynalite.endpoint,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: world.secretsManager.endpoint,
      [S3_FORCE_PATH_STYLE_ENV]: "true",
    };
    let events: EventLog | undefined;
    // The real invoker and SDK Lambda client; the call is recorded and runs in process.
    const invoker = new LambdaDeleteInvoker(
      pipelineAwsCalls.lambdaClient((_name, payload) => {
        this.deleteInvocations.push(payload as DeleteCopiedEvent);
      }),
      DELETE_FUNCTION_NAME,
    );
    this.deps = createLambdaDeps(env, {
      aws: { credentials: DUMMY_CREDENTIALS },
      clock: this.clock,
      // Quiet: the e2e suites assert on the ledger, S3 and Gmail; handler tests check the output.
      logger: new Logger({
        serviceName: METRIC_SERVICE_NAME,
        logLevel: process.env.PIPELINE_LOG_LEVEL === "DEBUG" ? "DEBUG" : "SILENT",
      }),
      metrics: quietMetrics(),
      gmail: { backoff: { baseDelayMs: 200, maxDelayMs: 2_000 } },
      deleteInvoker: invoker,
      decorate: (built) => {
        events = new EventLog(built.telemetry);
        return this.decorate({ ...built, telemetry: events });
      },
    });
    if (events === undefined) throw new Error("createLambdaDeps did not call decorate");
    this.events = events;
    const { clients } = this.deps;
    pipelineAwsCalls.attach(clients.dynamodb, "dynamodb");
    pipelineAwsCalls.attach(clients.secretsManager, "secretsmanager");
    pipelineAwsCalls.attach(clients.s3, "s3");
    pipelineAwsCalls.attach(clients.sqs, "sqs");
    const list = makeListNewMessagesHandler(this.deps);
    const copy = makeCopyMessageHandler(this.deps);
    const remove = makeDeleteCopiedHandler(this.deps);
    this.list = (...args) => pipelineAwsCalls.within("list-new-messages", () => list(...args));
    const chainPorts = createChainPorts({
      env,
      dynamodb: clients.dynamodb,
      sqs: clients.sqs,
      clock: this.clock,
      // A new chain polls at once here, so a test needs no wait for its first poll.
      random: () => 0,
    });
    const sessionSlots = new DynamoDbSessionSlots({
      client: clients.dynamodb,
      tableName: env[ENV_NAMES.ledgerTable] ?? "",
      now: () => this.clock.now(),
    });
    const listerDeps = { ...this.deps, chainPorts: () => chainPorts, sessionSlots: () => sessionSlots };
    const chain = makePollChainHandler(listerDeps);
    const keeper = makeKeeperHandler(listerDeps);
    this.chain = (...args) => pipelineAwsCalls.within("list-new-messages", () => chain(...args));
    this.keeper = (...args) => pipelineAwsCalls.within("list-new-messages", () => keeper(...args));
    this.copy = (...args) => pipelineAwsCalls.within("copy-message", () => copy(...args));
    this.remove = (...args) => pipelineAwsCalls.within("delete-copied", () => remove(...args));
  }

  static async create(world: PipelineWorld, options: RigOptions): Promise<PipelineRig> {
    const tableName = uniqueName("ledger");
    const bucket = uniqueName("archive");
    const queueName = uniqueName("work");
    await createLedgerTable(world.dynalite.dynamodb, tableName);
    await world.fauxqs.createBucket(bucket);
    const queueUrl = await world.fauxqs.createQueue(queueName, { VisibilityTimeout: "300" });
    const queueArn = `arn:aws:sqs:${STAND_IN_REGION}:000000000000:${queueName}`;
    const chainQueues = {
      poll: await world.fauxqs.createQueue(uniqueName("poll"), { VisibilityTimeout: "300" }),
      deadLetters: await world.fauxqs.createQueue(uniqueName("deadletters")),
      failedDeletes: await world.fauxqs.createQueue(uniqueName("faileddeletes")),
    };
    let proxy: CuttingProxy | undefined;
    if (options.transport === "proxy") {
      proxy = new CuttingProxy();
      await proxy.start(world.dovecot.plainPort);
    }
    return new PipelineRig(world, options, queueUrl, queueArn, bucket, tableName, proxy, chainQueues);
  }

  get mailboxId(): string {
    return `${this.options.user}@acme.test`;
  }

  /** Delivers the messages to Dovecot and records what Dovecot serves for each, by UIDL. */
  async deliver(messages: readonly GeneratedMessage[]): Promise<void> {
    for (const message of messages) await this.world.dovecot.deliver(this.options.user, message.bytes);
    const reader = await this.login();
    try {
      for (const { number, uidl } of await uidlListing(reader)) {
        if (!this.served.has(uidl)) this.served.set(uidl, await reader.retrieve(number));
      }
    } finally {
      await reader.quit();
    }
  }

  /** UIDLs Dovecot holds now (an independent session). */
  async onServer(): Promise<string[]> {
    const reader = await this.login();
    try {
      return (await uidlListing(reader)).map((m) => m.uidl);
    } finally {
      await reader.quit();
    }
  }

  login(): Promise<RawPop3Reader> {
    const user = this.options.user;
    return RawPop3Reader.login("127.0.0.1", this.world.dovecot.plainPort, user, this.world.users[user] ?? "");
  }

  /** One scheduled invocation of the lister. */
  poll() {
    return this.list({ mailboxId: this.mailboxId }, lambdaContext("list-new-messages", 90_000));
  }

  /** One tick of the tenant's schedule: the keeper (restarts lost chains, counts problems). */
  keeperTick() {
    return this.keeper(KEEPER_EVENT, lambdaContext("list-new-messages", 300_000));
  }

  /**
   * Receives the visible poll messages (fauxqs honours their DelaySeconds on the wall clock) and
   * hands them to the lister as the poll queue's event source would, deleting what it
   * acknowledged. Returns how many it handled (0: none was due yet).
   */
  async pollChainOnce(): Promise<number> {
    const sqs = this.world.fauxqs.sqs;
    const messages = await receiveBatch(sqs, this.chainQueues.poll);
    if (messages.length === 0) return 0;
    const arn = `arn:aws:sqs:${STAND_IN_REGION}:000000000000:${this.chainQueues.poll.split("/").pop()}`;
    const response = await this.chain(sqsEvent(arn, messages), lambdaContext("list-new-messages", 300_000));
    const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
    const done = messages.filter((m) => !failed.has(m.MessageId ?? ""));
    if (done.length > 0) {
      await sqs.send(
        new DeleteMessageBatchCommand({ QueueUrl: this.chainQueues.poll, Entries: receiptEntries(done) }),
      );
    }
    return messages.length;
  }

  /** Runs the delete-copied invocations the lister started, in order, as Lambda would. */
  async runDeletes(): Promise<void> {
    while (this.deleteInvocations.length > 0) {
      const event = this.deleteInvocations.shift();
      if (event !== undefined) await this.remove(event, lambdaContext("delete-copied", 120_000));
    }
  }

  /** Receives up to 10 visible jobs (a fresh visibility timeout), as the event source mapping does. */
  async receive(): Promise<Message[]> {
    const messages = await receiveBatch(this.world.fauxqs.sqs, this.queueUrl);
    for (const m of messages) {
      this.maxReceiveCount = Math.max(
        this.maxReceiveCount,
        Number(m.Attributes?.ApproximateReceiveCount ?? 1),
      );
    }
    return messages;
  }

  /** Calls the copier with `messages` and settles them with SQS as Lambda would. */
  async copyMessages(messages: readonly Message[]): Promise<SQSBatchResponse> {
    const event = sqsEvent(this.queueArn, messages);
    let response: SQSBatchResponse;
    try {
      response = await this.copy(event, lambdaContext("copy-message"));
    } catch {
      // A thrown invocation: Lambda returns the whole batch to the queue.
      response = { batchItemFailures: event.Records.map((r) => ({ itemIdentifier: r.messageId })) };
    }
    await this.settle(messages, response);
    return response;
  }

  /**
   * Deletes acknowledged messages; failed ones become visible again at once (SQS would wait out
   * the visibility timeout: the rig does not wait for time, it compresses it).
   */
  async settle(messages: readonly Message[], response: SQSBatchResponse): Promise<void> {
    const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
    const done = messages.filter((m) => !failed.has(m.MessageId ?? ""));
    const retry = messages.filter((m) => failed.has(m.MessageId ?? ""));
    if (done.length > 0) {
      await this.world.fauxqs.sqs.send(
        new DeleteMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: receiptEntries(done) }),
      );
    }
    if (retry.length > 0) {
      await this.world.fauxqs.sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: this.queueUrl,
          Entries: receiptEntries(retry).map((e) => ({ ...e, VisibilityTimeout: 0 })),
        }),
      );
    }
  }

  /** Copies batches until the queue holds nothing visible, in flight or delayed. */
  async drain(maxBatches = 200): Promise<number> {
    let batches = 0;
    for (; batches < maxBatches; batches++) {
      const messages = await this.receive();
      if (messages.length === 0) {
        if ((await this.queueDepth()) === 0) return batches;
        continue;
      }
      await this.copyMessages(messages);
    }
    throw new Error(`queue not drained after ${maxBatches} batches`);
  }

  queueDepth(): Promise<number> {
    return queueDepth(this.world.fauxqs.sqs, this.queueUrl);
  }

  /**
   * Schedule ticks until every served message is settled in the ledger (deleted, or quarantined)
   * and the queue is empty. A crash surfaces as a failed batch or a thrown poll and is lived
   * through; anything else that is thrown fails the test.
   */
  async runUntilSettled(maxRounds = 40): Promise<number> {
    for (let round = 1; round <= maxRounds; round++) {
      try {
        await this.poll();
      } catch (error) {
        if (!(error instanceof CrashError)) throw error;
      }
      await this.runDeletes();
      await this.drain();
      if ((await this.unsettled()).length === 0 && (await this.queueDepth()) === 0) return round;
      // The next EventBridge tick.
      this.clock.advance(60_000);
    }
    throw new Error(`not settled after ${maxRounds} rounds: ${(await this.unsettled()).join(", ")}`);
  }

  /** UIDLs whose ledger entry is not final yet. */
  async unsettled(): Promise<string[]> {
    const open: string[] = [];
    for (const uidl of this.served.keys()) {
      const entry = await this.entry(uidl);
      if (entry?.state !== "deleted" && entry?.state !== "quarantined") open.push(uidl);
    }
    return open;
  }

  entry(uidl: string): Promise<LedgerEntry | undefined> {
    return this.deps.pipeline.ledger.get({ tenant: TENANT, mailboxId: this.mailboxId, uidl });
  }

  /** The archived bytes under `key`, or undefined. */
  async archived(key: string): Promise<Buffer | undefined> {
    try {
      const response = await this.world.fauxqs.s3.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key }),
      );
      return Buffer.from((await response.Body?.transformToByteArray()) ?? new Uint8Array());
    } catch {
      return undefined;
    }
  }

  /** Gmail copies of the served message: stored messages whose raw bytes end with it. */
  gmailCopies(served: Buffer): number {
    return this.world.gmail.messages(gmailUserOf(this.options.user)).filter((m) => endsWith(m.raw, served))
      .length;
  }

  /** Imports (merged re-imports included) that carried exactly these bytes. */
  /**
   * The invariant after recovery, per served message: archived byte-exact (SHA-256 of the S3
   * object = SHA-256 of what Dovecot served), exactly one copy in Gmail with those bytes, and
   * gone from the server with `deleted` in the ledger. The one allowed exception: a message
   * without Message-ID whose import was uncertain is quarantined `IMPORT_UNCERTAIN`, has at most
   * one Gmail copy, and is still on the server.
   */
  async verifyInvariant(): Promise<{ deleted: number; uncertain: number; problems: string[] }> {
    const problems: string[] = [...this.violations];
    const onServer = new Set(await this.onServer());
    let deleted = 0;
    let uncertain = 0;
    for (const [uidl, served] of this.served) {
      const entry = await this.entry(uidl);
      const object = entry?.archiveKey === undefined ? undefined : await this.archived(entry.archiveKey);
      const copies = this.gmailCopies(served);
      if (entry?.state === "quarantined" && entry.quarantineCode === "IMPORT_UNCERTAIN") {
        uncertain++;
        if (entry.messageIdHeader !== undefined) problems.push(`${uidl}: IMPORT_UNCERTAIN with a Message-ID`);
        if (copies > 1) problems.push(`${uidl}: ${copies} Gmail copies`);
        if (!onServer.has(uidl)) problems.push(`${uidl}: quarantined but deleted from POP3`);
        if (object === undefined || sha256(object) !== sha256(served))
          problems.push(`${uidl}: archive differs`);
        continue;
      }
      if (entry?.state !== "deleted") problems.push(`${uidl}: ledger ${entry?.state ?? "missing"}`);
      if (object === undefined) problems.push(`${uidl}: not archived`);
      else if (sha256(object) !== sha256(served))
        problems.push(`${uidl}: archive differs from what Dovecot served`);
      if (entry?.sha256 !== sha256(served)) problems.push(`${uidl}: ledger SHA-256 differs`);
      if (copies !== 1) problems.push(`${uidl}: ${copies} Gmail copies`);
      if (onServer.has(uidl)) problems.push(`${uidl}: still on the POP3 server`);
      else deleted++;
    }
    return { deleted, uncertain, problems };
  }

  async stop(): Promise<void> {
    await this.proxy?.stop();
  }

  /** Wraps the built ports with the audit (always) and the plan's faults. */
  private decorate(deps: ContainerPipelineDeps): ContainerPipelineDeps {
    return {
      ...deps,
      pop3: new AuditedPop3Source(deps.pop3, this.faults, (uidls) => this.audit(uidls)),
      archive: new FaultyArchive(deps.archive, this.faults),
      sink: new FaultySink(deps.sink, this.faults),
      queue: new TimeCompressingQueue(deps.queue, this.clock, this.requestedDelays),
    };
  }

  /** Checked right before a QUIT that would commit DELEs: each must be archived, imported and recorded. */
  private async audit(uidls: readonly string[]): Promise<void> {
    for (const uidl of uidls) {
      const served = this.served.get(uidl);
      const entry = await this.entry(uidl);
      const ok =
        served !== undefined &&
        (entry?.state === "imported" || entry?.state === "retained") &&
        entry.gmailId !== undefined &&
        entry.archiveKey !== undefined &&
        this.world.gmail
          .messages(gmailUserOf(this.options.user))
          .some((m) => m.id === entry.gmailId && endsWith(m.raw, served));
      const object =
        ok && entry?.archiveKey !== undefined ? await this.archived(entry.archiveKey) : undefined;
      if (!ok || object === undefined || served === undefined || sha256(object) !== sha256(served)) {
        this.violations.push(`${uidl}: DELE committed while state=${entry?.state ?? "none"}`);
      }
    }
  }
}

function endsWith(haystack: Buffer, needle: Buffer): boolean {
  return (
    haystack.length >= needle.length && haystack.subarray(haystack.length - needle.length).equals(needle)
  );
}

/** The Pop3Source the handlers see: audits every committing QUIT and injects POP3-side faults. */
class AuditedPop3Source implements Pop3Source {
  constructor(
    private readonly inner: Pop3Source,
    private readonly faults: FaultPlan,
    private readonly audit: (uidls: readonly string[]) => Promise<void>,
  ) {}

  async open(mailbox: Parameters<Pop3Source["open"]>[0]): Promise<Pop3Session> {
    const session = await this.inner.open(mailbox);
    const faults = this.faults;
    const audit = this.audit;
    let listing: ServerMessage[] = [];
    const marked: number[] = [];
    return {
      // What the server announced (LOGIN-DELAY, UTF8) decides how the poll runs.
      ...(session.capabilities === undefined ? {} : { capabilities: session.capabilities }),
      async listMessages() {
        listing = await session.listMessages();
        return listing;
      },
      async retrieve(number, options) {
        const stream = await session.retrieve(number, options);
        if (!faults.crashAfterRetr?.fire()) return stream;
        return (async function* () {
          yield* stream;
          throw new CrashError("crash after RETR");
        })();
      },
      async markDeleted(number) {
        await session.markDeleted(number);
        marked.push(number);
      },
      async quit() {
        if (marked.length > 0) {
          if (faults.crashBeforeQuit?.fire()) throw new CrashError("crash between DELE and QUIT");
          await audit(marked.map((n) => listing.find((m) => m.number === n)?.uidl ?? `#${n}`));
        }
        return session.quit();
      },
      abort() {
        session.abort();
      },
    };
  }
}

class FaultyArchive implements ArchiveStore {
  constructor(
    private readonly inner: ArchiveStore,
    private readonly faults: FaultPlan,
  ) {}
  async put(...args: Parameters<ArchiveStore["put"]>) {
    const digest = await this.inner.put(...args);
    if (this.faults.crashAfterArchivePut?.fire()) throw new CrashError("crash after the archive write");
    return digest;
  }
  verify(...args: Parameters<ArchiveStore["verify"]>) {
    return this.inner.verify(...args);
  }
  open(...args: Parameters<ArchiveStore["open"]>) {
    return this.inner.open(...args);
  }
  list(prefix: string) {
    return this.inner.list(prefix);
  }
}

class FaultySink implements MailSink {
  constructor(
    private readonly inner: MailSink,
    private readonly faults: FaultPlan,
  ) {}
  async import(request: ImportRequest) {
    await this.faults.beforeImport?.(request);
    const result = await this.inner.import(request);
    if (this.faults.crashAfterImport?.fire(request)) throw new CrashError("crash after the Gmail import");
    return result;
  }
  findExisting(...args: Parameters<MailSink["findExisting"]>) {
    return this.inner.findExisting(...args);
  }
}

/**
 * Sends postponed jobs at once and moves the rig's clock by the delay instead: the delay the
 * copier asked for is recorded (and checked by the tests), and no test waits for it to pass.
 */
class TimeCompressingQueue implements WorkQueue {
  constructor(
    private readonly inner: WorkQueue,
    private readonly clock: OffsetClock,
    private readonly delays: number[],
  ) {}
  async enqueue(jobs: Parameters<WorkQueue["enqueue"]>[0], options: { delaySeconds?: number } = {}) {
    if (options.delaySeconds !== undefined) {
      this.delays.push(options.delaySeconds);
      this.clock.advance(options.delaySeconds * 1000);
    }
    await this.inner.enqueue(jobs);
  }
}
