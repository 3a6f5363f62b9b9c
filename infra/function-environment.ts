import { Token } from "aws-cdk-lib";
import { ENV_NAMES } from "../shared/config/env";
import { METRIC_NAMESPACE, METRIC_SERVICE_NAME } from "../shared/config/metrics";
import type { TenantConfig } from "../shared/config/tenant-config";
import { ConfigError } from "../shared/core/errors";
import { TENANT_CONFIG_BUNDLE_FILE } from "./constructs/pipeline-function";
import { LAMBDA_ENV_LIMIT_BYTES } from "./function-settings";

/**
 * Bytes reserved for a value CloudFormation fills in at deploy time (a generated table or function
 * name, a queue URL, a key ARN): all are well under this, so the check below errs on the safe side.
 */
const DEPLOY_TIME_VALUE_BYTES = 160;

/** The deploy-time values the functions need, as CDK tokens. */
export interface DeployedResources {
  readonly ledgerTableName: string;
  readonly archiveBucketName: string;
  readonly archiveKeyArn: string;
  readonly workQueueUrl: string;
}

/**
 * The environment of every pipeline function (names from `ENV_NAMES`): the resource names and
 * where the bundled tenant config lies. The config itself is bundled with the code
 * (`PipelineFunction`'s `tenantConfigJson`), not put here: in Lambda's 4 KB environment it left
 * room for only 5-10 mailboxes (docs/deploy.md, section 2). `config` stays a parameter for what
 * a tenant may one day add here, and so callers keep one shape.
 */
export function functionEnvironment(
  _config: TenantConfig,
  resources: DeployedResources,
): Record<string, string> {
  return {
    [ENV_NAMES.tenantConfigFile]: TENANT_CONFIG_BUNDLE_FILE,
    [ENV_NAMES.ledgerTable]: resources.ledgerTableName,
    [ENV_NAMES.archiveBucket]: resources.archiveBucketName,
    [ENV_NAMES.archiveKmsKeyId]: resources.archiveKeyArn,
    [ENV_NAMES.workQueueUrl]: resources.workQueueUrl,
    POWERTOOLS_SERVICE_NAME: METRIC_SERVICE_NAME,
    POWERTOOLS_METRICS_NAMESPACE: METRIC_NAMESPACE,
    NODE_OPTIONS: "--enable-source-maps",
  };
}

/**
 * Fails synth with a readable message when an environment would exceed Lambda's 4 KB limit
 * (keys and values), instead of letting CloudFormation fail half-way through a deploy.
 * Values that are still tokens count as `DEPLOY_TIME_VALUE_BYTES`.
 */
export function assertEnvironmentFits(tenant: string, environment: Readonly<Record<string, string>>): void {
  let bytes = 0;
  for (const [key, value] of Object.entries(environment)) {
    bytes +=
      Buffer.byteLength(key) +
      (Token.isUnresolved(value) ? DEPLOY_TIME_VALUE_BYTES : Buffer.byteLength(value));
  }
  if (bytes > LAMBDA_ENV_LIMIT_BYTES) {
    throw new ConfigError(
      "environment",
      `tenant ${tenant}: the functions' environment would be about ${bytes} bytes, over Lambda's ${LAMBDA_ENV_LIMIT_BYTES}-byte limit`,
      { hint: "The tenant config belongs in the bundle (TENANT_CONFIG_FILE), not in the environment." },
    );
  }
}
