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
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import type { SQSEvent } from "aws-lambda";
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
import { GMAIL_SCOPES, GmailApiStandIn } from "../../test/fakes/gmail-api-stand-in";
import { startSecretsManagerStandIn as startSecretsStandIn } from "../../test/fakes/secrets-manager-stand-in";
import type { LambdaChildReport } from "./lambda-child";

const USER = "bench";
export const MAILBOX_ID = "bench@acme.test";
export const GMAIL_USER = "bench.acme@gmail.example";

export interface AwsRig {
  readonly dovecot: DovecotServer;
  readonly gmail: GmailApiStandIn;
  readonly fauxqs: FauxqsStandIn;
  deliver(bytes: Buffer): Promise<string>;
  /** Runs the child once with these arguments and returns its report. */
  runChild(args: readonly string[], extraEnv?: NodeJS.ProcessEnv): Promise<LambdaChildReport>;
  /** Receives up to 10 copy jobs from the work queue as an SQS event file for the copier. */
  receiveEventFile(maxMessages?: number): Promise<{ file: string; records: number }>;
  close(): Promise<void>;
}

async function bundle(outdir: string): Promise<string> {
  await build({
    entryPoints: [fileURLToPath(new URL("./lambda-child.ts", import.meta.url))],
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
  return join(outdir, "lambda-child.mjs");
}

export async function startAwsRig(options: { pollSeconds?: number } = {}): Promise<AwsRig> {
  const dir = await mkdtemp(join(tmpdir(), "pop2gmail-bench-aws-"));
  const stops: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const password = randomUUID();
    const dovecot = await startDovecot({ users: { [USER]: password } });
    stops.push(() => dovecot.stop());
    const fauxqs = await startFauxqsStandIn();
    stops.push(() => fauxqs.stop());
    const dynalite = await startDynaliteStandIn();
    stops.push(() => dynalite.stop());
    const gmail = new GmailApiStandIn();
    const google = await gmail.start();
    stops.push(() => gmail.stop());
    const secrets = await startSecretsStandIn();
    stops.push(() => secrets.stop());
    const oauth = { clientId: "client-id", clientSecret: randomUUID(), refreshToken: randomUUID() };
    gmail.registerOAuthUser({
      user: GMAIL_USER,
      ...oauth,
      scopes: [GMAIL_SCOPES.insert, GMAIL_SCOPES.labels, GMAIL_SCOPES.readonly],
    });
    secrets.secrets.set("pop3/bench", password);
    secrets.secrets.set("google/bench", JSON.stringify(oauth));
    const caFile = join(dir, "ca.pem");
    await writeFile(caFile, dovecot.caPem);
    const table = `ledger-${Date.now().toString(36)}`;
    const bucket = `archive-${Date.now().toString(36)}`;
    const queueName = `work-${Date.now().toString(36)}`;
    await createLedgerTable(dynalite.dynamodb, table);
    await fauxqs.createBucket(bucket);
    const queueUrl = await fauxqs.createQueue(queueName, { VisibilityTimeout: "1800" });
    const queueArn = `arn:aws:sqs:${STAND_IN_REGION}:000000000000:${queueName}`;
    const config = {
      tenant: "acme",
      google: { apiBaseUrl: google.baseUrl, tokenUrl: google.tokenUrl },
      mailboxes: [
        {
          id: MAILBOX_ID,
          pollSeconds: options.pollSeconds ?? 60,
          pop3: {
            host: "127.0.0.1",
            port: dovecot.tlsPort,
            tls: "implicit",
            caFile,
            user: USER,
            passwordSecret: "pop3/bench",
          },
          gmail: { user: GMAIL_USER, credentialsSecret: "google/bench" },
        },
      ],
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
      AWS_ENDPOINT_URL_SQS: fauxqs.endpoint,
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
        const event: SQSEvent = {
          Records: Messages.map((m) => ({
            messageId: m.MessageId ?? randomUUID(),
            receiptHandle: m.ReceiptHandle ?? "",
            body: m.Body ?? "",
            attributes: {
              ApproximateReceiveCount: m.Attributes?.ApproximateReceiveCount ?? "1",
              SentTimestamp: m.Attributes?.SentTimestamp ?? String(Date.now()),
              SenderId: "000000000000",
              ApproximateFirstReceiveTimestamp:
                m.Attributes?.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
            },
            messageAttributes: {},
            md5OfBody: m.MD5OfBody ?? "",
            eventSource: "aws:sqs",
            eventSourceARN: queueArn,
            awsRegion: STAND_IN_REGION,
          })),
        };
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
