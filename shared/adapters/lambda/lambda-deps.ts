import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { S3Client, type S3ClientConfig } from "@aws-sdk/client-s3";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { SQSClient } from "@aws-sdk/client-sqs";
import { ENV_NAMES, requireEnv, tenantConfigFromEnv } from "../../config/env";
import { METRIC_DIMENSION, METRIC_NAMESPACE, METRIC_SERVICE_NAME } from "../../config/metrics";
import type { MailboxConfig, TenantConfig } from "../../config/tenant-config";
import { ConfigError } from "../../core/errors";
import type { PipelineDeps } from "../../core/pipeline-deps";
import type { Clock } from "../../ports/clock";
import type { SecretStore } from "../../ports/secret-store";
import { DynamoDbLedger } from "../dynamodb/dynamodb-ledger";
import { GmailMailSink, type GmailMailSinkOptions } from "../gmail/gmail-mail-sink";
import type { Pop3ConnectOptions } from "../pop3/pop3-client";
import { Pop3MailboxSource } from "../pop3/pop3-mailbox-source";
import { S3ArchiveStore } from "../s3/s3-archive-store";
import { SecretsManagerSecretStore } from "../secrets-manager/secrets-manager-secret-store";
import { SqsWorkQueue } from "../sqs/sqs-work-queue";
import { systemClock } from "../system-clock";
import { type DeleteInvoker, LambdaDeleteInvoker } from "./delete-invoker";
import { PowertoolsTelemetry } from "./powertools-telemetry";

/**
 * Not an `ENV_NAMES` entry because the stack never sets it: S3 stand-ins (fauxqs) need path-style
 * URLs, real S3 does not. Endpoints themselves come from the SDK's own variables
 * (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL_SQS`, ...), read here from `env` so a test can pass them.
 */
export const S3_FORCE_PATH_STYLE_ENV = "POP2GMAIL_S3_FORCE_PATH_STYLE";

/** Pipeline dependencies without the per-invocation `holderId`. */
export type ContainerPipelineDeps = Omit<PipelineDeps, "holderId">;

/** What the three handlers share in one Lambda container, built once at module load. */
export interface LambdaDeps {
  readonly config: TenantConfig;
  readonly pipeline: ContainerPipelineDeps;
  readonly logger: Logger;
  readonly telemetry: PowertoolsTelemetry;
  /** The async invoker of delete-copied; only the lister has `DELETE_FUNCTION_NAME`, so built on first use. */
  deleteInvoker(): DeleteInvoker;
  /** The SDK clients, exposed so tests can add middleware (fault injection, call counting). */
  readonly clients: {
    readonly s3: S3Client;
    readonly sqs: SQSClient;
    readonly dynamodb: DynamoDBClient;
    readonly secretsManager: SecretsManagerClient;
    lambda(): LambdaClient;
  };
  /** The mailbox with this id, or a `ConfigError` naming it (an event for another tenant or a stale rule). */
  mailbox(mailboxId: string): MailboxConfig;
}

/** Test seams: everything here defaults to what runs in Lambda. */
export interface LambdaDepsOverrides {
  /** Region and credentials for every SDK client (tests: dummy keys; Lambda: the role's, from the env). */
  readonly aws?: {
    readonly region?: string;
    readonly credentials?: S3ClientConfig["credentials"];
    readonly maxAttempts?: number;
  };
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly metrics?: Metrics;
  readonly secrets?: SecretStore;
  readonly pop3ConnectOptions?: Partial<Pop3ConnectOptions>;
  /** Extra `GmailMailSink` options (backoff, attempts); `secrets`, `google`, `clock`, `logger` are set here. */
  readonly gmail?: Omit<Partial<GmailMailSinkOptions>, "secrets" | "google" | "clock" | "logger">;
  readonly deleteInvoker?: DeleteInvoker;
  /** Wraps the built ports, e.g. with fault-injecting decorators. */
  readonly decorate?: (deps: ContainerPipelineDeps) => ContainerPipelineDeps;
}

/**
 * Builds every dependency of the three handlers from the function's environment: the tenant
 * config (`TENANT_CONFIG`), the resource names of `ENV_NAMES`, SDK clients (endpoints from the
 * SDK's `AWS_ENDPOINT_URL_*` variables when set), Secrets Manager for POP3 and Google
 * credentials (cached per container), and Powertools logger, metrics and telemetry.
 * Called once per container at module load; nothing here does I/O.
 */
export function createLambdaDeps(env: NodeJS.ProcessEnv, overrides: LambdaDepsOverrides = {}): LambdaDeps {
  const config = tenantConfigFromEnv(env);
  const clock = overrides.clock ?? systemClock;
  const base = clientBase(env, overrides.aws);
  const s3 = new S3Client({
    ...base,
    ...endpoint(env, "S3"),
    ...(isTrue(env[S3_FORCE_PATH_STYLE_ENV]) ? { forcePathStyle: true } : {}),
  });
  const sqs = new SQSClient({ ...base, ...endpoint(env, "SQS") });
  const dynamodb = new DynamoDBClient({ ...base, ...endpoint(env, "DYNAMODB") });
  const secretsManager = new SecretsManagerClient({ ...base, ...endpoint(env, "SECRETS_MANAGER") });
  let lambda: LambdaClient | undefined;
  const lambdaClient = () => {
    lambda ??= new LambdaClient({ ...base, ...endpoint(env, "LAMBDA") });
    return lambda;
  };

  const logger =
    overrides.logger ??
    new Logger({
      serviceName: env.POWERTOOLS_SERVICE_NAME ?? METRIC_SERVICE_NAME,
      persistentKeys: { tenant: config.tenant },
    });
  const metrics =
    overrides.metrics ??
    new Metrics({
      namespace: env.POWERTOOLS_METRICS_NAMESPACE ?? METRIC_NAMESPACE,
      serviceName: env.POWERTOOLS_SERVICE_NAME ?? METRIC_SERVICE_NAME,
    });
  // Here rather than in the constructor, so an injected instance gets it too: every metric
  // carries the tenant (METRIC_DIMENSIONS).
  metrics.setDefaultDimensions({ [METRIC_DIMENSION.tenant]: config.tenant });
  const telemetry = new PowertoolsTelemetry(logger, metrics);

  const secrets =
    overrides.secrets ?? new SecretsManagerSecretStore({ client: secretsManager, now: () => clock.now() });
  const ledger = new DynamoDbLedger({
    client: dynamodb,
    tableName: requireEnv(ENV_NAMES.ledgerTable, env),
    now: () => clock.now(),
  });
  const kmsKeyId = env[ENV_NAMES.archiveKmsKeyId];
  const built: ContainerPipelineDeps = {
    ledger,
    leases: ledger,
    archive: new S3ArchiveStore({
      client: s3,
      bucket: requireEnv(ENV_NAMES.archiveBucket, env),
      ...(kmsKeyId === undefined || kmsKeyId === "" ? {} : { kmsKeyId }),
    }),
    sink: new GmailMailSink({
      ...overrides.gmail,
      secrets,
      google: config.google,
      clock,
      logger: {
        info: (message, fields) => logger.info(message, { ...fields }),
        warn: (message, fields) => logger.warn(message, { ...fields }),
      },
    }),
    queue: new SqsWorkQueue({ client: sqs, queueUrl: requireEnv(ENV_NAMES.workQueueUrl, env) }),
    pop3: new Pop3MailboxSource({
      secrets,
      ...(overrides.pop3ConnectOptions === undefined ? {} : { connectOptions: overrides.pop3ConnectOptions }),
    }),
    clock,
    telemetry,
  };
  const pipeline = overrides.decorate?.(built) ?? built;

  let invoker = overrides.deleteInvoker;
  return {
    config,
    pipeline,
    logger,
    telemetry,
    deleteInvoker() {
      invoker ??= new LambdaDeleteInvoker(lambdaClient(), requireEnv(ENV_NAMES.deleteFunctionName, env));
      return invoker;
    },
    clients: { s3, sqs, dynamodb, secretsManager, lambda: lambdaClient },
    mailbox(mailboxId) {
      const found = config.mailboxes.find((m) => m.id === mailboxId);
      if (found === undefined) {
        throw new ConfigError(
          "mailboxId",
          `tenant ${config.tenant} has no mailbox ${JSON.stringify(mailboxId)}`,
          {
            hint: "The event names a mailbox this stack does not configure; redeploy the tenant stack.",
          },
        );
      }
      return found;
    },
  };
}

function clientBase(env: NodeJS.ProcessEnv, aws: LambdaDepsOverrides["aws"]) {
  const region = aws?.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  return {
    ...(region === undefined ? {} : { region }),
    ...(aws?.credentials === undefined ? {} : { credentials: aws.credentials }),
    ...(aws?.maxAttempts === undefined ? {} : { maxAttempts: aws.maxAttempts }),
  };
}

/** The SDK's service-specific endpoint variable, else the global one (as the SDK itself reads them). */
function endpoint(env: NodeJS.ProcessEnv, service: string): { endpoint?: string } {
  const value = env[`AWS_ENDPOINT_URL_${service}`] ?? env.AWS_ENDPOINT_URL;
  return value === undefined || value === "" ? {} : { endpoint: value };
}

function isTrue(value: string | undefined): boolean {
  return value === "true" || value === "1";
}
