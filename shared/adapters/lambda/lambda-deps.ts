import type { LambdaClient } from "@aws-sdk/client-lambda";
import type { S3Client } from "@aws-sdk/client-s3";
import type { SQSClient } from "@aws-sdk/client-sqs";
import { createArchiveDeps, createGmailSink, type GmailOverrides } from "./copy-message-deps";
import type { DeleteInvoker } from "./delete-invoker";
import {
  type BaseClients,
  type ContainerPipelineDeps,
  createLambdaBase,
  type FunctionDeps,
  functionDeps,
  type LambdaBaseOverrides,
} from "./lambda-base";
import { createDeleteInvokerDeps } from "./list-new-messages-deps";
import { createWorkQueueDeps } from "./work-queue-deps";

export { S3_FORCE_PATH_STYLE_ENV } from "./copy-message-deps";
export type { ContainerPipelineDeps } from "./lambda-base";

/*
 * Every port of all three handlers in one object: for tests that run the three handlers against
 * one set of stand-ins (the pipeline rig). The functions themselves never import this module;
 * each builds only its own deps (`createListNewMessagesDeps`, `createCopyMessageDeps`,
 * `createDeleteCopiedDeps`), so its bundle holds only the adapters it uses.
 */

export interface LambdaClients extends BaseClients {
  readonly s3: S3Client;
  readonly sqs: SQSClient;
  /** Built (and its SDK package loaded) on first use. */
  lambda(): Promise<LambdaClient>;
}

/** What the three handlers use, together; each handler accepts it. */
export interface LambdaDeps extends FunctionDeps<ContainerPipelineDeps, LambdaClients> {
  /** The async invoker of delete-copied; only the lister has `DELETE_FUNCTION_NAME`, so built on first use. */
  deleteInvoker(): DeleteInvoker;
}

/** Test seams: everything here defaults to what runs in Lambda. */
export interface LambdaDepsOverrides extends LambdaBaseOverrides<ContainerPipelineDeps> {
  /** Extra `GmailMailSink` options (backoff, attempts); `secrets`, `google`, `clock`, `logger` are set here. */
  readonly gmail?: GmailOverrides;
  readonly deleteInvoker?: DeleteInvoker;
}

/**
 * Builds every dependency of the three handlers from one environment, as the three function
 * factories do each for their own: the base (`createLambdaBase`), the S3 archive, the Gmail
 * sink, the SQS work queue and the delete-copied invoker. Nothing here does I/O.
 */
export function createLambdaDeps(env: NodeJS.ProcessEnv, overrides: LambdaDepsOverrides = {}): LambdaDeps {
  const base = createLambdaBase(env, overrides);
  const { s3, archive } = createArchiveDeps(base);
  const sink = createGmailSink(base, overrides.gmail);
  const { sqs, queue } = createWorkQueueDeps(base);
  const { lambda, deleteInvoker } = createDeleteInvokerDeps(base, overrides.deleteInvoker);
  return {
    ...functionDeps(
      base,
      { ...base.pipeline, archive, sink, queue },
      { ...base.clients, s3, sqs, lambda },
      overrides.decorate,
    ),
    deleteInvoker,
  };
}
