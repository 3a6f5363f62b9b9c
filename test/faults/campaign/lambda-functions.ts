import type { Logger } from "@aws-lambda-powertools/logger";
import type { Metrics } from "@aws-lambda-powertools/metrics";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { S3Client } from "@aws-sdk/client-s3";
import {
  type CopyPipelineDeps,
  createCopyMessageDeps,
  type GmailOverrides,
} from "../../../shared/adapters/lambda/copy-message-deps";
import { makeCopyMessageHandler } from "../../../shared/adapters/lambda/copy-message-handler";
import { createDeleteCopiedDeps } from "../../../shared/adapters/lambda/delete-copied-deps";
import { makeDeleteCopiedHandler } from "../../../shared/adapters/lambda/delete-copied-handler";
import type { DeleteInvoker } from "../../../shared/adapters/lambda/delete-invoker";
import type { BasePipelineDeps } from "../../../shared/adapters/lambda/lambda-base";
import {
  createListNewMessagesDeps,
  type ListPipelineDeps,
} from "../../../shared/adapters/lambda/list-new-messages-deps";
import { makeListNewMessagesHandler } from "../../../shared/adapters/lambda/list-new-messages-handler";
import type { Clock } from "../../../shared/ports/clock";

const DUMMY_CREDENTIALS = { accessKeyId: "test", secretAccessKey: "test" };

/** How the campaign wraps each function's ports (fault decorators, the audit, the event log). */
export interface PortDecorators {
  base<P extends BasePipelineDeps>(deps: P): P;
  list(deps: ListPipelineDeps): ListPipelineDeps;
  copy(deps: CopyPipelineDeps): CopyPipelineDeps;
}

/** What the three containers get besides the environment. */
export interface FunctionSettings {
  readonly env: NodeJS.ProcessEnv;
  readonly clock: Clock;
  /** One logger per container; undefined lets the factory build it from the environment. */
  readonly logger?: () => Logger;
  readonly metrics?: () => Metrics;
  readonly gmail: GmailOverrides;
  readonly deleteInvoker: DeleteInvoker;
  readonly decorators: PortDecorators;
}

/** The three handlers, each built by its own factory as in its own Lambda container. */
export interface LambdaFunctions {
  readonly list: ReturnType<typeof makeListNewMessagesHandler>;
  readonly copy: ReturnType<typeof makeCopyMessageHandler>;
  readonly remove: ReturnType<typeof makeDeleteCopiedHandler>;
  /** Every container's S3 and DynamoDB clients, for fault-injecting middleware. */
  readonly s3Clients: readonly S3Client[];
  readonly dynamoDbClients: readonly DynamoDBClient[];
}

/**
 * Builds the three functions the way `functions/<name>/handler.ts` do, one container each, with
 * the test seams: dummy AWS credentials, the rig's clock, the campaign's decorators.
 */
export function buildLambdaFunctions(settings: FunctionSettings): LambdaFunctions {
  // Each container builds its own logger and metrics, as separate Lambda functions do.
  const container = () => ({
    aws: { credentials: DUMMY_CREDENTIALS },
    clock: settings.clock,
    ...(settings.logger === undefined ? {} : { logger: settings.logger() }),
    ...(settings.metrics === undefined ? {} : { metrics: settings.metrics() }),
  });
  const { decorators } = settings;
  const listDeps = createListNewMessagesDeps(settings.env, {
    ...container(),
    deleteInvoker: settings.deleteInvoker,
    decorate: (deps) => decorators.list(decorators.base(deps)),
  });
  const copyDeps = createCopyMessageDeps(settings.env, {
    ...container(),
    gmail: settings.gmail,
    decorate: (deps) => decorators.copy(decorators.base(deps)),
  });
  const deleteDeps = createDeleteCopiedDeps(settings.env, {
    ...container(),
    decorate: (deps) => decorators.base(deps),
  });
  return {
    list: makeListNewMessagesHandler(listDeps),
    copy: makeCopyMessageHandler(copyDeps),
    remove: makeDeleteCopiedHandler(deleteDeps),
    s3Clients: [copyDeps.clients.s3],
    dynamoDbClients: [listDeps.clients.dynamodb, copyDeps.clients.dynamodb, deleteDeps.clients.dynamodb],
  };
}
