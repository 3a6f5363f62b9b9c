import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { ConfigError } from "../core/errors";
import { parseTenantConfig } from "./parse-tenant-config";
import type { TenantConfig } from "./tenant-config";

/**
 * The environment variables the Lambda functions read, set by the CDK stack. This is the only
 * place that reads `process.env` for them.
 */
export const ENV_NAMES = {
  /**
   * The validated tenant config as JSON (no secret values, only secret names). Tests and local
   * harnesses inject the config here; the stack does not (Lambda's 4 KB environment would hold
   * only 5-10 mailboxes): it bundles the config as a file, `TENANT_CONFIG_FILE`.
   */
  tenantConfig: "TENANT_CONFIG",
  /** The tenant config file the stack bundles with each function, relative to `LAMBDA_TASK_ROOT`. */
  tenantConfigFile: "TENANT_CONFIG_FILE",
  ledgerTable: "LEDGER_TABLE_NAME",
  archiveBucket: "ARCHIVE_BUCKET_NAME",
  /** KMS key id or ARN used for SSE-KMS on archived objects. */
  archiveKmsKeyId: "ARCHIVE_KMS_KEY_ID",
  workQueueUrl: "WORK_QUEUE_URL",
  /** The delete-copied function, invoked asynchronously by the lister when deletes are due. */
  deleteFunctionName: "DELETE_FUNCTION_NAME",
  /** The lister's poll chains (docs/lambda-handlers.md "Sub-minute polling"): the tenant's poll queue. */
  pollQueueUrl: "POLL_QUEUE_URL",
  /** The copy dead-letter queue and the failed-deletes queue, whose depth the keeper counts as problems. */
  deadLetterQueueUrl: "DEAD_LETTER_QUEUE_URL",
  failedDeletesQueueUrl: "FAILED_DELETES_QUEUE_URL",
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

/**
 * Parses and validates the tenant config: `TENANT_CONFIG` when set (tests, local harnesses),
 * else the file `TENANT_CONFIG_FILE` names, which the stack bundles next to the function's code
 * (infra/constructs/pipeline-function.ts; docs/deploy.md, section 2). Called once per container
 * at module load, so the synchronous read costs one cold start a few hundred microseconds.
 */
export function tenantConfigFromEnv(env: NodeJS.ProcessEnv = process.env): TenantConfig {
  const inline = env[ENV_NAMES.tenantConfig];
  if (inline !== undefined && inline !== "") return parseConfigJson(inline, ENV_NAMES.tenantConfig);
  const file = env[ENV_NAMES.tenantConfigFile];
  if (file === undefined || file === "") {
    throw new ConfigError(
      ENV_NAMES.tenantConfigFile,
      `neither ${ENV_NAMES.tenantConfig} nor ${ENV_NAMES.tenantConfigFile} is set`,
      { hint: "The CDK stack sets TENANT_CONFIG_FILE and bundles the file; redeploy the tenant stack." },
    );
  }
  // Lambda unpacks the bundle into LAMBDA_TASK_ROOT (/var/task) and runs with that as the cwd.
  const path = resolve(env.LAMBDA_TASK_ROOT ?? ".", file);
  let raw: string;
  try {
    raw = readFileSync(path, "utf8");
  } catch (cause) {
    throw new ConfigError(ENV_NAMES.tenantConfigFile, `the tenant config file ${path} cannot be read`, {
      cause,
      hint: "The CDK stack bundles it with the function's code; redeploy the tenant stack.",
    });
  }
  return parseConfigJson(raw, path);
}

function parseConfigJson(raw: string, source: string): TenantConfig {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (cause) {
    throw new ConfigError(source, `${source} is not valid JSON`, { cause });
  }
  return parseTenantConfig(json, source);
}
