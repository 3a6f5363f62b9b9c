import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { DynamoDBClient, type DynamoDBClientConfig } from "@aws-sdk/client-dynamodb";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { ENV_NAMES, requireEnv, tenantConfigFromEnv } from "../../config/env";
import { METRIC_DIMENSION, METRIC_NAMESPACE, METRIC_SERVICE_NAME } from "../../config/metrics";
import type { MailboxConfig, TenantConfig } from "../../config/tenant-config";
import { chainCheckedLeases } from "../../core/chain-session-leases";
import { ConfigError } from "../../core/errors";
import type { PipelineDeps } from "../../core/pipeline-deps";
import type { Clock } from "../../ports/clock";
import type { SecretStore } from "../../ports/secret-store";
import { DynamoDbLedger } from "../dynamodb/dynamodb-ledger";
import { DynamoDbPollChains } from "../dynamodb/dynamodb-poll-chains";
import type { Pop3ConnectOptions } from "../pop3/pop3-client";
import { Pop3MailboxSource } from "../pop3/pop3-mailbox-source";
import { SecretsManagerSecretStore } from "../secrets-manager/secrets-manager-secret-store";
import { systemClock } from "../system-clock";
import { PowertoolsTelemetry } from "./powertools-telemetry";

/*
 * What every function needs, and nothing more. Each function's own factory
 * (`create<Function>Deps`) adds its ports on top, in its own module, so a bundle contains only
 * the adapters (and SDK clients) its function uses: the Gmail sink, S3 and lib-storage are
 * imported by copy-message alone. Keep it so: a static import of a port's adapter here puts it
 * in all three bundles (test/infra/bundling.test.ts checks the bundles).
 */

/** Pipeline dependencies without the per-invocation `holderId` and `sessionLeaseMs`. */
export type ContainerPipelineDeps = Omit<PipelineDeps, "holderId" | "sessionLeaseMs">;

/** A session lease outlives the invocation that took it by this much (clock skew, the release call). */
export const LEASE_MARGIN_MS = 10_000;

/**
 * The per-invocation part of the pipeline: the lease holder (the request id) and a lease that
 * ends `marginMs` after the invocation's own deadline (docs/pipeline.md, "Why leases"), so a
 * function killed at its timeout blocks its mailbox seconds, not `DEFAULT_SESSION_LEASE_MS`.
 */
export function invocationScope(
  context: { readonly awsRequestId: string; getRemainingTimeInMillis(): number },
  marginMs: number = LEASE_MARGIN_MS,
): { readonly holderId: string; readonly sessionLeaseMs: () => number } {
  return {
    holderId: context.awsRequestId,
    sessionLeaseMs: () => Math.max(0, context.getRemainingTimeInMillis()) + marginMs,
  };
}

/** The ports every function uses: the ledger (which also holds the session leases), POP3, clock, telemetry. */
export type BasePipelineDeps = Pick<
  ContainerPipelineDeps,
  "ledger" | "leases" | "pop3" | "clock" | "telemetry"
>;

/** The SDK clients every function has, exposed so tests can add middleware (fault injection, call counting). */
export interface BaseClients {
  readonly dynamodb: DynamoDBClient;
  readonly secretsManager: SecretsManagerClient;
}

/** What one handler uses in its Lambda container, built once at module load. */
export interface FunctionDeps<P extends BasePipelineDeps, C extends BaseClients> {
  readonly config: TenantConfig;
  readonly pipeline: P;
  readonly logger: Logger;
  readonly telemetry: PowertoolsTelemetry;
  /** The SDK clients, exposed so tests can add middleware (fault injection, call counting). */
  readonly clients: C;
  /** The mailbox with this id, or a `ConfigError` naming it (an event for another tenant or a stale rule). */
  mailbox(mailboxId: string): MailboxConfig;
}

/** Test seams shared by every function's factory: everything here defaults to what runs in Lambda. */
export interface LambdaBaseOverrides<P extends BasePipelineDeps> {
  /** Region and credentials for every SDK client (tests: dummy keys; Lambda: the role's, from the env). */
  readonly aws?: {
    readonly region?: string;
    readonly credentials?: DynamoDBClientConfig["credentials"];
    readonly maxAttempts?: number;
  };
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly metrics?: Metrics;
  readonly secrets?: SecretStore;
  readonly pop3ConnectOptions?: Partial<Pop3ConnectOptions>;
  /** Wraps the built ports, e.g. with fault-injecting decorators. */
  readonly decorate?: (deps: P) => P;
}

/** Settings shared by every SDK client of a container. */
export interface SdkClientSettings {
  readonly region?: string;
  readonly credentials?: NonNullable<DynamoDBClientConfig["credentials"]>;
  readonly maxAttempts?: number;
  readonly endpoint?: string;
}

/** The shared part of a container, from which each function's factory builds its own deps. */
export interface LambdaBase {
  readonly env: NodeJS.ProcessEnv;
  readonly config: TenantConfig;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly telemetry: PowertoolsTelemetry;
  readonly secrets: SecretStore;
  readonly clients: BaseClients;
  readonly pipeline: BasePipelineDeps;
  /**
   * Region, credentials, attempts and endpoint for the SDK client of `service`, named as in the
   * SDK's endpoint variables (`S3`, `SQS`, `DYNAMODB`, `SECRETS_MANAGER`, `LAMBDA`).
   */
  sdkClientSettings(service: string): SdkClientSettings;
  mailbox(mailboxId: string): MailboxConfig;
}

/**
 * Builds what all three handlers share from the function's environment: the tenant config
 * (`TENANT_CONFIG`), the DynamoDB ledger (`LEDGER_TABLE_NAME`), Secrets Manager for POP3 and
 * Google credentials (cached per container), the POP3 source, and Powertools logger, metrics
 * and telemetry. SDK endpoints come from the SDK's `AWS_ENDPOINT_URL_*` variables when set, read
 * from `env` so a test can pass them. Called once per container at module load; no I/O.
 */
export function createLambdaBase<P extends BasePipelineDeps>(
  env: NodeJS.ProcessEnv,
  overrides: LambdaBaseOverrides<P> = {},
): LambdaBase {
  const config = tenantConfigFromEnv(env);
  const clock = overrides.clock ?? systemClock;
  const sdkClientSettings = (service: string): SdkClientSettings => ({
    ...clientBase(env, overrides.aws),
    ...endpoint(env, service),
  });
  const dynamodb = new DynamoDBClient(sdkClientSettings("DYNAMODB"));
  const secretsManager = new SecretsManagerClient(sdkClientSettings("SECRETS_MANAGER"));

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
  const tableName = requireEnv(ENV_NAMES.ledgerTable, env);
  const ledger = new DynamoDbLedger({ client: dynamodb, tableName, now: () => clock.now() });
  const pop3 = new Pop3MailboxSource({
    secrets,
    ...(overrides.pop3ConnectOptions === undefined ? {} : { connectOptions: overrides.pop3ConnectOptions }),
  });

  return {
    env,
    config,
    clock,
    logger,
    telemetry,
    secrets,
    clients: { dynamodb, secretsManager },
    // A lease on a mailbox's last slot stands back while a chain poll holds it (the chain item's
    // pollUntil: shared/core/chain-session-leases.ts, docs/pipeline.md "Why leases").
    pipeline: {
      ledger,
      leases: chainCheckedLeases(ledger, new DynamoDbPollChains({ client: dynamodb, tableName }), () =>
        clock.now(),
      ),
      pop3,
      clock,
      telemetry,
    },
    sdkClientSettings,
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

/** One function's deps: the base, its own ports (passed through `decorate`) and its clients. */
export function functionDeps<P extends BasePipelineDeps, C extends BaseClients>(
  base: LambdaBase,
  built: P,
  clients: C,
  decorate: ((deps: P) => P) | undefined,
): FunctionDeps<P, C> {
  return {
    config: base.config,
    pipeline: decorate?.(built) ?? built,
    logger: base.logger,
    telemetry: base.telemetry,
    clients,
    mailbox: (mailboxId) => base.mailbox(mailboxId),
  };
}

function clientBase(env: NodeJS.ProcessEnv, aws: LambdaBaseOverrides<BasePipelineDeps>["aws"]) {
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
