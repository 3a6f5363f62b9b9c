/**
 * The rig of the Lambda benches: a real Dovecot (implicit TLS), fauxqs (S3 + SQS), dynalite, the
 * Gmail API stand-in and a Secrets Manager stand-in in this process; the function modules run in
 * a child (`lambda-child.ts`, bundled by esbuild, run by plain `node` as on Lambda) whose
 * environment is what the CDK stack sets plus the stand-ins' endpoints. `close()` stops it all.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import { build } from "esbuild";
import { createLedgerTable } from "../../shared/adapters/dynamodb/create-ledger-table";
import { ENV_NAMES } from "../../shared/config/env";
import {
  type FauxqsStandIn,
  STAND_IN_REGION,
  startDynaliteStandIn,
  startFauxqsStandIn,
} from "../../test/fakes/aws-stand-ins";
import { type DovecotServer, startDovecot } from "../../test/fakes/dovecot";
import {
  GMAIL_SCOPES,
  GmailApiStandIn,
  type GmailApiStandInOptions,
} from "../../test/fakes/gmail-api-stand-in";
import { startSecretsManagerStandIn as startSecretsStandIn } from "../../test/fakes/secrets-manager-stand-in";
import { sqsEvent } from "../../test/fakes/sqs-lambda-events";
import type { LambdaChildReport } from "./lambda-child";

const USER = "bench";
export const MAILBOX_ID = "bench@acme.test";
export const GMAIL_USER = "bench.acme@gmail.example";

/** Options of {@link startAwsRig}; all default to the single-mailbox rig of the first benches. */
export interface AwsRigOptions {
  readonly pollSeconds?: number;
  /** A FIFO work queue, as the stack makes it (docs/lambda-handlers.md, "One mailbox, one copier"). */
  readonly fifo?: boolean;
  /** Mailboxes (Dovecot users); the first is `MAILBOX_ID`, the others `bench-<n>@acme.test`. */
  readonly mailboxes?: number;
  /** Whether every mailbox delivers into its own Gmail user (else all into `GMAIL_USER`). */
  readonly gmailUserPerMailbox?: boolean;
  readonly gmail?: GmailApiStandInOptions;
  /** The SQS endpoint the functions use instead of fauxqs's own (e.g. a request-counting proxy). */
  readonly sqsEndpoint?: (fauxqsEndpoint: string) => Promise<string>;
}

export interface AwsRig {
  readonly dovecot: DovecotServer;
  /** The mailbox ids, in order, and the work queue's URL. */
  readonly mailboxIds: readonly string[];
  readonly queueUrl: string;
  readonly queueArn: string;
  /** The environment the function modules run with (what the stack sets plus the endpoints). */
  readonly env: NodeJS.ProcessEnv;
  /** Delivers a message into the mailbox at `index` of `mailboxIds`. */
  deliverTo(index: number, bytes: Buffer): Promise<string>;
  /** Bundles a child entry point like `lambda-child.ts` (ESM, node target) and returns its path. */
  bundleEntry(entry: string): Promise<string>;
  readonly gmail: GmailApiStandIn;
  readonly fauxqs: FauxqsStandIn;
  deliver(bytes: Buffer): Promise<string>;
  /** Runs the child once with these arguments and returns its report. */
  runChild(args: readonly string[], extraEnv?: NodeJS.ProcessEnv): Promise<LambdaChildReport>;
  /** Receives up to 10 copy jobs from the work queue as an SQS event file for the copier. */
  receiveEventFile(maxMessages?: number): Promise<{ file: string; records: number }>;
  close(): Promise<void>;
}

async function bundle(
  outdir: string,
  entry = fileURLToPath(new URL("./lambda-child.ts", import.meta.url)),
): Promise<string> {
  await build({
    entryPoints: [entry],
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    outdir,
    outExtension: { ".js": ".mjs" },
    // ESM bundles of CommonJS packages need `require` (as the functions' own bundles do).
    banner: {
      js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
    },
    logLevel: "error",
  });
  return join(outdir, `${basename(entry, ".ts")}.mjs`);
}

/** Dovecot user of the mailbox at `index`. */
function userOf(index: number): string {
  return index === 0 ? USER : `${USER}-${index + 1}`;
}

export async function startAwsRig(options: AwsRigOptions = {}): Promise<AwsRig> {
  const dir = await mkdtemp(join(tmpdir(), "pop2gmail-bench-aws-"));
  const stops: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const password = randomUUID();
    const mailboxCount = Math.max(1, options.mailboxes ?? 1);
    const users = Array.from({ length: mailboxCount }, (_, i) => userOf(i));
    const dovecot = await startDovecot({ users: Object.fromEntries(users.map((u) => [u, password])) });
    stops.push(() => dovecot.stop());
    const fauxqs = await startFauxqsStandIn();
    stops.push(() => fauxqs.stop());
    const dynalite = await startDynaliteStandIn();
    stops.push(() => dynalite.stop());
    const gmail = new GmailApiStandIn(options.gmail);
    const google = await gmail.start();
    stops.push(() => gmail.stop());
    const secrets = await startSecretsStandIn();
    stops.push(() => secrets.stop());
    const oauth = { clientId: "client-id", clientSecret: randomUUID(), refreshToken: randomUUID() };
    const gmailUserOf = (index: number) =>
      options.gmailUserPerMailbox === true && index > 0
        ? `bench-${index + 1}.acme@gmail.example`
        : GMAIL_USER;
    // One OAuth client and refresh token (and secret) per Gmail user: a token belongs to one user.
    const googleSecretOf = (index: number) =>
      gmailUserOf(index) === GMAIL_USER ? "google/bench" : `google/bench-${index + 1}`;
    for (const index of users.keys()) {
      const secret = googleSecretOf(index);
      if (secrets.secrets.has(secret)) continue;
      const credentials = index === 0 ? oauth : { ...oauth, refreshToken: randomUUID() };
      gmail.registerOAuthUser({
        user: gmailUserOf(index),
        ...credentials,
        scopes: [GMAIL_SCOPES.insert, GMAIL_SCOPES.labels, GMAIL_SCOPES.readonly],
      });
      secrets.secrets.set(secret, JSON.stringify(credentials));
    }
    secrets.secrets.set("pop3/bench", password);
    const caFile = join(dir, "ca.pem");
    await writeFile(caFile, dovecot.caPem);
    const table = `ledger-${Date.now().toString(36)}`;
    const bucket = `archive-${Date.now().toString(36)}`;
    const queueName = `work-${Date.now().toString(36)}${options.fifo === true ? ".fifo" : ""}`;
    await createLedgerTable(dynalite.dynamodb, table);
    await fauxqs.createBucket(bucket);
    const queueUrl = await fauxqs.createQueue(queueName, {
      VisibilityTimeout: "1800",
      ...(options.fifo === true ? { FifoQueue: "true" } : {}),
    });
    const queueArn = `arn:aws:sqs:${STAND_IN_REGION}:000000000000:${queueName}`;
    const config = {
      tenant: "acme",
      google: { apiBaseUrl: google.baseUrl, tokenUrl: google.tokenUrl },
      mailboxes: users.map((user, index) => ({
        id: index === 0 ? MAILBOX_ID : `${user}@acme.test`,
        pollSeconds: options.pollSeconds ?? 60,
        pop3: {
          host: "127.0.0.1",
          port: dovecot.tlsPort,
          tls: "implicit",
          caFile,
          user,
          passwordSecret: "pop3/bench",
        },
        gmail: { user: gmailUserOf(index), credentialsSecret: googleSecretOf(index) },
      })),
    };
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      // The AWS SDK's "node >= 22 from 2027" notice on every start.
      NODE_NO_WARNINGS: "1",
      [ENV_NAMES.tenantConfig]: JSON.stringify(config),
      [ENV_NAMES.ledgerTable]: table,
      [ENV_NAMES.archiveBucket]: bucket,
      [ENV_NAMES.workQueueUrl]: queueUrl,
      [ENV_NAMES.deleteFunctionName]: "pop2gmail-acme-delete-copied",
      AWS_REGION: STAND_IN_REGION,
      AWS_ACCESS_KEY_ID: "test",
      AWS_SECRET_ACCESS_KEY: "test",
      AWS_ENDPOINT_URL_S3: fauxqs.endpoint,
      AWS_ENDPOINT_URL_SQS: options.sqsEndpoint
        ? await options.sqsEndpoint(fauxqs.endpoint)
        : fauxqs.endpoint,
      AWS_ENDPOINT_URL_DYNAMODB: dynalite.endpoint,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.endpoint,
      // Nothing listens there: an idle poll must not invoke delete-copied.
      AWS_ENDPOINT_URL_LAMBDA: "http://127.0.0.1:9",
      POP2GMAIL_S3_FORCE_PATH_STYLE: "true",
      POWERTOOLS_METRICS_DISABLED: "true",
      POWERTOOLS_LOG_LEVEL: "WARN",
      AWS_LAMBDA_LOG_LEVEL: "WARN",
      BENCH_MAILBOX_ID: MAILBOX_ID,
    };
    const script = await bundle(join(dir, "bundle"));
    let events = 0;
    return {
      dovecot,
      gmail,
      fauxqs,
      mailboxIds: config.mailboxes.map((m) => m.id),
      queueUrl,
      queueArn,
      env,
      deliverTo: (index, bytes) => dovecot.deliver(userOf(index), bytes),
      bundleEntry: (entry) => bundle(join(dir, `bundle-${basename(entry, ".ts")}`), entry),
      deliver: (bytes) => dovecot.deliver(USER, bytes),
      async runChild(args, extraEnv = {}) {
        const reportFile = join(dir, `report-${randomUUID()}.json`);
        const code = await new Promise<number | null>((resolve, reject) => {
          const child = spawn(process.execPath, [script, ...args], {
            env: { ...env, ...extraEnv, BENCH_REPORT_FILE: reportFile },
            stdio: ["ignore", "ignore", "inherit"],
          });
          stops.push(async () => {
            if (child.exitCode === null) child.kill("SIGKILL");
          });
          child.on("error", reject);
          child.on("exit", resolve);
        });
        if (code !== 0) throw new Error(`lambda child ${args.join(" ")} exited with ${code}`);
        return JSON.parse(await readFile(reportFile, "utf8")) as LambdaChildReport;
      },
      async receiveEventFile(maxMessages = 10) {
        const { Messages = [] } = await fauxqs.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: maxMessages,
            WaitTimeSeconds: 1,
            MessageSystemAttributeNames: ["All"],
          }),
        );
        const event = sqsEvent(queueArn, Messages);
        const file = join(dir, `event-${++events}.json`);
        await writeFile(file, JSON.stringify(event));
        return { file, records: Messages.length };
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
