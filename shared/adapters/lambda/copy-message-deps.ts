import { S3Client } from "@aws-sdk/client-s3";
import type { SQSClient } from "@aws-sdk/client-sqs";
import { ENV_NAMES, requireEnv } from "../../config/env";
import { DynamoDbQuotaBucket } from "../dynamodb/dynamodb-quota-bucket";
import { GmailMailSink, type GmailMailSinkOptions } from "../gmail/gmail-mail-sink";
import { GmailRateLimiters } from "../gmail/gmail-user-rate-limiter";
import { S3ArchiveStore } from "../s3/s3-archive-store";
import {
  type BaseClients,
  type BasePipelineDeps,
  type ContainerPipelineDeps,
  createLambdaBase,
  type FunctionDeps,
  functionDeps,
  type LambdaBase,
  type LambdaBaseOverrides,
} from "./lambda-base";
import { createWorkQueueDeps } from "./work-queue-deps";

/**
 * Not an `ENV_NAMES` entry because the stack never sets it: S3 stand-ins (fauxqs) need path-style
 * URLs, real S3 does not. Endpoints themselves come from the SDK's own variables
 * (`AWS_ENDPOINT_URL_S3`, ...), read from `env` so a test can pass them.
 */
export const S3_FORCE_PATH_STYLE_ENV = "POP2GMAIL_S3_FORCE_PATH_STYLE";

/** The ports of copy-message: the base ones, the S3 archive, the Gmail sink, and the queue for postponed jobs. */
export type CopyPipelineDeps = BasePipelineDeps & Pick<ContainerPipelineDeps, "archive" | "sink" | "queue">;

/** Extra `GmailMailSink` options (backoff, attempts); `secrets`, `google`, `clock`, `logger` are set here. */
export type GmailOverrides = Omit<Partial<GmailMailSinkOptions>, "secrets" | "google" | "clock" | "logger">;

export interface CopyMessageClients extends BaseClients {
  readonly s3: S3Client;
  readonly sqs: SQSClient;
}

/** What the copy-message handler uses. */
export type CopyMessageDeps = FunctionDeps<CopyPipelineDeps, CopyMessageClients>;

export interface CopyMessageOverrides extends LambdaBaseOverrides<CopyPipelineDeps> {
  readonly gmail?: GmailOverrides;
}

/**
 * The dependencies of copy-message: the shared base (`createLambdaBase`) plus the S3 archive
 * (`ARCHIVE_BUCKET_NAME`, `ARCHIVE_KMS_KEY_ID`), the Gmail sink and the SQS work queue
 * (`WORK_QUEUE_URL`). Called once per container at module load; nothing here does I/O.
 */
export function createCopyMessageDeps(
  env: NodeJS.ProcessEnv,
  overrides: CopyMessageOverrides = {},
): CopyMessageDeps {
  const base = createLambdaBase(env, overrides);
  const { s3, archive } = createArchiveDeps(base);
  const { sqs, queue } = createWorkQueueDeps(base);
  return functionDeps(
    base,
    { ...base.pipeline, archive, sink: createGmailSink(base, overrides.gmail), queue },
    { ...base.clients, s3, sqs },
    overrides.decorate,
  );
}

/** The S3 archive and its client. */
export function createArchiveDeps(base: LambdaBase): {
  readonly s3: S3Client;
  readonly archive: S3ArchiveStore;
} {
  const s3 = new S3Client({
    ...base.sdkClientSettings("S3"),
    ...(isTrue(base.env[S3_FORCE_PATH_STYLE_ENV]) ? { forcePathStyle: true } : {}),
  });
  const kmsKeyId = base.env[ENV_NAMES.archiveKmsKeyId];
  const archive = new S3ArchiveStore({
    client: s3,
    bucket: requireEnv(ENV_NAMES.archiveBucket, base.env),
    ...(kmsKeyId === undefined || kmsKeyId === "" ? {} : { kmsKeyId }),
  });
  return { s3, archive };
}

/**
 * The Gmail sink, with the container's secrets, clock and logger. Its pacing draws on one quota
 * bucket per Gmail user in the ledger table, shared by every container of the tenant
 * (docs/lambda-handlers.md, "Gmail pacing on AWS"); `gmail.rateLimiters` replaces that in tests.
 */
export function createGmailSink(base: LambdaBase, gmail: GmailOverrides | undefined): GmailMailSink {
  const logger = base.logger;
  const shared = {
    client: base.clients.dynamodb,
    tableName: requireEnv(ENV_NAMES.ledgerTable, base.env),
    tenant: base.config.tenant,
    clock: base.clock,
  };
  const rateLimiters = new GmailRateLimiters(
    {
      unitsPerMinute: base.config.google.quotaUnitsPerMinute,
      maxConcurrent: base.config.google.maxConcurrentImports,
    },
    base.clock,
    (user, settings, capacity) => DynamoDbQuotaBucket.forUser(shared, user, settings, capacity),
  );
  return new GmailMailSink({
    rateLimiters,
    ...gmail,
    secrets: base.secrets,
    google: base.config.google,
    clock: base.clock,
    logger: {
      info: (message, fields) => logger.info(message, { ...fields }),
      warn: (message, fields) => logger.warn(message, { ...fields }),
    },
  });
}

function isTrue(value: string | undefined): boolean {
  return value === "true" || value === "1";
}
