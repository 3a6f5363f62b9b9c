import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import type { Context } from "hono";
import type { LambdaEvent } from "hono/aws-lambda";
import { ENV_NAMES, requireEnv, tenantConfigFromEnv } from "../../config/env";
import type { Clock } from "../../ports/clock";
import type { Ledger } from "../../ports/ledger";
import type { SessionLeases } from "../../ports/session-leases";
import { DynamoDbLedger } from "../dynamodb/dynamodb-ledger";
import { leaseSecretWriteLock } from "../secrets-manager/secret-write-lock";
import { SecretsManagerSecretWriter } from "../secrets-manager/secrets-manager-secret-writer";
import { systemClock } from "../system-clock";
import { checkGoogleConnection, googleEndpoints } from "../web/google-oauth";
import { ledgerMailboxStatus } from "../web/ledger-status";
import { createOnboardingApp, onboardingSecretOf } from "../web/onboarding-app";

/** Set by the stack when the pages are reached through another domain than the Function URL's. */
export const ONBOARDING_PUBLIC_URL_ENV = "ONBOARDING_PUBLIC_URL";

/** Test seams; each defaults to what runs in Lambda. */
export interface OnboardingLambdaOverrides {
  readonly secretsManager?: SecretsManagerClient;
  readonly ledger?: Pick<Ledger, "listByState">;
  /** Where writers of a shared secret take turns (default the DynamoDB ledger's lease items). */
  readonly leases?: SessionLeases;
  readonly clock?: Clock;
  readonly log?: (line: string) => void;
}

/** The Function URL event Hono's adapter hands the app as `c.env.event`. */
function eventOf(c: Context): LambdaEvent | undefined {
  return (c.env as { event?: LambdaEvent } | undefined)?.event;
}

/**
 * The onboarding app for the Lambda behind the tenant's Function URL (docs/onboarding.md): the
 * same handler as `pop2gmail serve`, with Secrets Manager (read and PutSecretValue of the tenant's
 * Google secrets) and the DynamoDB ledger for the status view. Built once per container; no I/O.
 */
export function createOnboardingLambdaApp(env: NodeJS.ProcessEnv, overrides: OnboardingLambdaOverrides = {}) {
  const config = tenantConfigFromEnv(env);
  const clock = overrides.clock ?? systemClock;
  const dynamoDbLedger = new DynamoDbLedger({
    client: new DynamoDBClient({}),
    tableName: requireEnv(ENV_NAMES.ledgerTable, env),
    now: () => clock.now(),
  });
  const ledger = overrides.ledger ?? dynamoDbLedger;
  // Writers of the tenant's shared secret take turns through a lease item in the ledger table
  // (docs/onboarding.md, "One secret per tenant"): two Lambda containers may onboard at once.
  const lock = leaseSecretWriteLock({ leases: overrides.leases ?? dynamoDbLedger, tenant: config.tenant });
  const secrets = new SecretsManagerSecretWriter(overrides.secretsManager ?? new SecretsManagerClient({}), {
    lock,
  });
  const endpoints = googleEndpoints(config.google);
  const fixedUrl = env[ONBOARDING_PUBLIC_URL_ENV];
  const log = overrides.log ?? ((line: string) => console.log(line));
  return createOnboardingApp({
    tenant: config.tenant,
    mailboxes: config.mailboxes,
    google: endpoints,
    publicUrl:
      fixedUrl !== undefined && fixedUrl !== ""
        ? fixedUrl
        : (c) => {
            const event = eventOf(c);
            const domain =
              event !== undefined && "domainName" in event.requestContext
                ? event.requestContext.domainName
                : undefined;
            return `https://${domain ?? "localhost"}`;
          },
    secrets,
    onboardingSecret: onboardingSecretOf(config, "aws"),
    status: (mailboxId) =>
      ledgerMailboxStatus(
        ledger,
        { tenant: config.tenant, mailboxId },
        {
          // UTC midnight: a Lambda has no local time zone of the customer's.
          midnight: new Date(clock.now()).setUTCHours(0, 0, 0, 0),
          // Polls are recorded in CloudWatch, not in the DynamoDB ledger.
          lastPoll: "unknown",
          // init --mark-existing-delivered's entries (cli/commands/mark-existing.ts).
          hiddenCodes: ["PRE_EXISTING"],
        },
      ),
    checkGoogle: (mailbox) => checkGoogleConnection({ endpoints, secrets, clock }, mailbox),
    clock,
    clientKey: (c) => {
      const context = eventOf(c)?.requestContext as { http?: { sourceIp?: string } } | undefined;
      return context?.http?.sourceIp ?? "unknown";
    },
    log: (event) => log(JSON.stringify(event)),
    timeZone: "UTC",
  });
}
