import { ConfigError } from "../core/errors";
import { parseTenantConfig } from "./parse-tenant-config";
import type { TenantConfig } from "./tenant-config";

/**
 * The environment variables the Lambda functions read, set by the CDK stack. This is the only
 * place that reads `process.env` for them.
 */
export const ENV_NAMES = {
  /** The validated tenant config as JSON (no secret values, only secret names). */
  tenantConfig: "TENANT_CONFIG",
  ledgerTable: "LEDGER_TABLE_NAME",
  archiveBucket: "ARCHIVE_BUCKET_NAME",
  /** KMS key id or ARN used for SSE-KMS on archived objects. */
  archiveKmsKeyId: "ARCHIVE_KMS_KEY_ID",
  workQueueUrl: "WORK_QUEUE_URL",
  /** The delete-copied function, invoked asynchronously by the lister when deletes are due. */
  deleteFunctionName: "DELETE_FUNCTION_NAME",
} as const;

export type EnvName = (typeof ENV_NAMES)[keyof typeof ENV_NAMES];

/** Reads a required variable, failing with the variable's name so a misdeploy is obvious. */
export function requireEnv(name: EnvName, env: NodeJS.ProcessEnv = process.env): string {
  const value = env[name];
  if (value === undefined || value === "") {
    throw new ConfigError(name, `environment variable ${name} is not set`, {
      hint: "The CDK stack sets it; redeploy the tenant stack.",
    });
  }
  return value;
}

/** Parses and validates TENANT_CONFIG. */
export function tenantConfigFromEnv(env: NodeJS.ProcessEnv = process.env): TenantConfig {
  const raw = requireEnv(ENV_NAMES.tenantConfig, env);
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (cause) {
    throw new ConfigError(ENV_NAMES.tenantConfig, `${ENV_NAMES.tenantConfig} is not valid JSON`, { cause });
  }
  return parseTenantConfig(json, ENV_NAMES.tenantConfig);
}
