import { randomUUID } from "node:crypto";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { LambdaClient } from "@aws-sdk/client-lambda";
import type { SQSClient } from "@aws-sdk/client-sqs";
import { ENV_NAMES, requireEnv } from "../../config/env";
import { ConfigError } from "../../core/errors";
import type { KeeperDeps } from "../../core/poll-chain";
import type { CopyPorts } from "../../core/poll-in-one-session";
import type { Clock } from "../../ports/clock";
import type { PollQueue } from "../../ports/poll-chains";
import type { SessionSlots } from "../../ports/session-leases";
import { DynamoDbLedger } from "../dynamodb/dynamodb-ledger";
import { DynamoDbPollChains } from "../dynamodb/dynamodb-poll-chains";
import { DynamoDbSessionSlots } from "../dynamodb/dynamodb-session-slots";
import { SqsPollQueue, visibleMessages } from "../sqs/sqs-poll-queue";
import { type DeleteInvoker, LambdaDeleteInvoker } from "./delete-invoker";
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

/** The ports of list-new-messages: the base ones and the work queue it fills. */
export type ListPipelineDeps = BasePipelineDeps & Pick<ContainerPipelineDeps, "queue">;

export interface ListNewMessagesClients extends BaseClients {
  readonly sqs: SQSClient;
  /** Built (and its SDK package loaded) on first use: only a poll with deletes due needs it. */
  lambda(): Promise<LambdaClient>;
}

/** What the list-new-messages handler uses. */
export interface ListNewMessagesDeps extends FunctionDeps<ListPipelineDeps, ListNewMessagesClients> {
  /** The async invoker of delete-copied; only the lister has `DELETE_FUNCTION_NAME`, so built on first use. */
  deleteInvoker(): DeleteInvoker;
  /**
   * The S3 archive and the Gmail sink, built (and their SDKs loaded) on first use: only a poll of
   * a server that announces LOGIN-DELAY copies in the lister (docs/pipeline.md "Login delay and
   * UTF8"). Needs the copier's environment (`ARCHIVE_BUCKET_NAME`, ...) and grants. Absent where the
   * pipeline already holds an archive and a sink (the all-in-one test deps).
   */
  copyPorts?(): Promise<CopyPorts>;
}

export interface ListNewMessagesOverrides extends LambdaBaseOverrides<ListPipelineDeps> {
  readonly deleteInvoker?: DeleteInvoker;
}

/**
 * The dependencies of list-new-messages: the shared base (`createLambdaBase`) plus the SQS work
 * queue (`WORK_QUEUE_URL`) and the invoker of delete-copied (`DELETE_FUNCTION_NAME`). Called
 * once per container at module load; nothing here does I/O.
 */
export function createListNewMessagesDeps(
  env: NodeJS.ProcessEnv,
  overrides: ListNewMessagesOverrides = {},
): ListNewMessagesDeps & { chainPorts(): KeeperDeps; sessionSlots(): SessionSlots } {
  const base = createLambdaBase(env, overrides);
  const { sqs, queue } = createWorkQueueDeps(base);
  const { lambda, deleteInvoker } = createDeleteInvokerDeps(base, overrides.deleteInvoker);
  let copyPorts: Promise<CopyPorts> | undefined;
  let chainPorts: KeeperDeps | undefined;
  let sessionSlots: SessionSlots | undefined;
  return {
    ...functionDeps(base, { ...base.pipeline, queue }, { ...base.clients, sqs, lambda }, overrides.decorate),
    deleteInvoker,
    copyPorts() {
      copyPorts ??= import("./copy-message-deps").then(({ createArchiveDeps, createGmailSink }) => ({
        archive: createArchiveDeps(base).archive,
        sink: createGmailSink(base, undefined),
      }));
      return copyPorts;
    },
    chainPorts() {
      chainPorts ??= createChainPorts({
        env: base.env,
        dynamodb: base.clients.dynamodb,
        sqs,
        clock: base.clock,
      });
      return chainPorts;
    },
    sessionSlots() {
      sessionSlots ??= new DynamoDbSessionSlots({
        client: base.clients.dynamodb,
        tableName: requireEnv(ENV_NAMES.ledgerTable, base.env),
        now: () => base.clock.now(),
      });
      return sessionSlots;
    },
  };
}

/**
 * The poll chains in the ledger table, the ledger itself for the keeper's mail checks, the poll
 * queue (`POLL_QUEUE_URL`) and the depth of the copy dead-letter and failed-deletes queues, on
 * the lister's SQS client; built on first use.
 */
export function createChainPorts(from: {
  readonly env: NodeJS.ProcessEnv;
  readonly dynamodb: DynamoDBClient;
  readonly sqs: SQSClient;
  readonly clock: Clock;
  /** Spreads first polls (`KeeperDeps.random`); default `Math.random`. */
  readonly random?: () => number;
}): KeeperDeps {
  const { env, sqs } = from;
  const deadLetters = requireEnv(ENV_NAMES.deadLetterQueueUrl, env);
  const failedDeletes = requireEnv(ENV_NAMES.failedDeletesQueueUrl, env);
  const tableName = requireEnv(ENV_NAMES.ledgerTable, env);
  return {
    chains: new DynamoDbPollChains({ client: from.dynamodb, tableName }),
    // The keeper's mail checks (shared/core/tenant-problems.ts): the byState index, a few small
    // queries per mailbox a minute.
    ledger: new DynamoDbLedger({ client: from.dynamodb, tableName }),
    pollQueue: pollQueueOf(sqs, env),
    clock: from.clock,
    ...(from.random === undefined ? {} : { random: from.random }),
    newChainId: () => randomUUID(),
    problemQueueDepths: async () => {
      const [dead, failed] = await Promise.all([
        visibleMessages(sqs, deadLetters),
        visibleMessages(sqs, failedDeletes),
      ]);
      return { deadLetters: dead, failedDeletes: failed };
    },
  };
}

/**
 * The poll queue (`POLL_QUEUE_URL`), which the stack creates only for a tenant with a sub-minute
 * mailbox; without it, a send (a sub-minute mailbox the stack did not know) fails with the hint.
 */
function pollQueueOf(sqs: SQSClient, env: NodeJS.ProcessEnv): PollQueue {
  const url = env[ENV_NAMES.pollQueueUrl];
  if (url !== undefined && url !== "") return new SqsPollQueue(sqs, url);
  return {
    send: async () => {
      throw new ConfigError(ENV_NAMES.pollQueueUrl, "this stack has no poll queue", {
        hint: "A mailbox with pollSeconds below 60 needs the tenant's poll queue: redeploy the tenant stack with this config.",
      });
    },
  };
}

/** The Lambda client and the delete-copied invoker, both built on first use. */
export function createDeleteInvokerDeps(
  base: LambdaBase,
  override: DeleteInvoker | undefined,
): { lambda(): Promise<LambdaClient>; deleteInvoker(): DeleteInvoker } {
  let client: Promise<LambdaClient> | undefined;
  const lambda = () => {
    client ??= import("@aws-sdk/client-lambda").then(
      ({ LambdaClient }) => new LambdaClient(base.sdkClientSettings("LAMBDA")),
    );
    return client;
  };
  let invoker = override;
  return {
    lambda,
    deleteInvoker() {
      invoker ??= new LambdaDeleteInvoker(lambda, requireEnv(ENV_NAMES.deleteFunctionName, base.env));
      return invoker;
    },
  };
}
