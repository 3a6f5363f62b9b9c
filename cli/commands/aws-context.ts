import { join } from "node:path";
import { type ParseArgsConfig, parseArgs } from "node:util";
import { CloudFormationClient, DescribeStacksCommand } from "@aws-sdk/client-cloudformation";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SQSClient } from "@aws-sdk/client-sqs";
import { loadTenantConfig } from "../../infra/load-tenant-configs";
import { STACK_OUTPUT, tenantStackId } from "../../infra/stack-outputs";
import { awsErrorName, mapAwsError } from "../../shared/adapters/aws/map-aws-error";
import type { TenantConfig } from "../../shared/config/tenant-config";
import { ConfigError, Pop2GmailError } from "../../shared/core/errors";
import { UsageError } from "../output";
import { packageRoot } from "../package-root";
import type { FlagValues } from "./local-context";

/** The deployed resources an AWS verb works on. */
export interface TenantResources {
  readonly tableName: string;
  readonly queueUrl: string;
  readonly deadLetterQueueUrl: string;
}

export type ResourceName = keyof TenantResources;

/** A deployed tenant as the `--aws` verbs see it. */
export interface AwsContext {
  readonly config: TenantConfig;
  readonly stackName: string;
  /** `--region`, else whatever the SDK resolves (AWS_REGION, the profile). */
  readonly region: string | undefined;
  readonly resources: TenantResources;
  readonly values: FlagValues;
  readonly positionals: string[];
  readonly dynamodb: DynamoDBClient;
  readonly sqs: SQSClient;
  close(): void;
}

/** A setup problem on the operator's side (AWS unreachable, no stack outputs): exit 1 with a fix. */
export class AwsSetupError extends Pop2GmailError {
  readonly code = "AWS_SETUP";
  readonly retryable = false;
}

const TENANTS_DIR = join(packageRoot(), "tenants");

const FLAG_FOR: Record<ResourceName, string> = {
  tableName: "--table",
  queueUrl: "--queue-url",
  deadLetterQueueUrl: "--dlq-url",
};

/** The flags every `--aws` verb takes; `--help` texts quote this. */
export const AWS_FLAGS_HELP =
  "--aws --tenant T [--region R] [--stack NAME] [--tenants-dir DIR] [--table NAME] [--queue-url URL] [--dlq-url URL] [--json]";

/**
 * Parses the `--aws` flags, loads `tenants/<tenant>.json` (for the mailbox list) and resolves the
 * resources `needs` names: from `--table` / `--queue-url` / `--dlq-url` when given, else from the
 * outputs of the stack `Pop2Gmail-<tenant>` (CloudFormation DescribeStacks). Clients use the SDK's
 * own configuration: credentials chain, AWS_REGION, and AWS_ENDPOINT_URL_<SERVICE> endpoints.
 */
export async function awsContext(
  verb: string,
  args: readonly string[],
  needs: readonly ResourceName[],
  extra: NonNullable<ParseArgsConfig["options"]> = {},
): Promise<AwsContext> {
  const parsed = parseArgs({
    args: [...args],
    options: {
      aws: { type: "boolean" },
      tenant: { type: "string", short: "t" },
      region: { type: "string" },
      stack: { type: "string" },
      "tenants-dir": { type: "string" },
      table: { type: "string" },
      "queue-url": { type: "string" },
      "dlq-url": { type: "string" },
      json: { type: "boolean" },
      ...extra,
    },
    allowPositionals: true,
  });
  const values = parsed.values as FlagValues;
  let positionals = parsed.positionals;
  let tenant = values.tenant;
  if (typeof tenant !== "string" && positionals[0] !== undefined) {
    tenant = positionals[0];
    positionals = positionals.slice(1);
  }
  if (typeof tenant !== "string") {
    throw new UsageError(
      `${verb} --aws needs a tenant`,
      `Run \`pop2gmail ${verb} --aws --tenant <tenant>\` (the name of tenants/<tenant>.json).`,
    );
  }
  const tenantsDir = typeof values["tenants-dir"] === "string" ? values["tenants-dir"] : TENANTS_DIR;
  const config = loadTenantConfig(tenantsDir, tenant);
  const region = typeof values.region === "string" ? values.region : undefined;
  const stackName = typeof values.stack === "string" ? values.stack : tenantStackId(tenant);
  const explicit: Partial<Record<ResourceName, string>> = {};
  const given = (flag: string) => (typeof values[flag] === "string" ? (values[flag] as string) : undefined);
  for (const [name, flag] of Object.entries(FLAG_FOR) as [ResourceName, string][]) {
    const value = given(flag.slice(2));
    if (value !== undefined) explicit[name] = value;
  }
  const resources = needs.every((name) => explicit[name] !== undefined)
    ? explicit
    : { ...(await stackResources(stackName, region, needs)), ...explicit };
  const clientConfig = region === undefined ? {} : { region };
  const dynamodb = new DynamoDBClient(clientConfig);
  // With an endpoint override (a stand-in, LocalStack), send to it even when a queue URL names
  // another host, as fauxqs's `sqs.<region>.localhost` URLs do; in AWS the two agree anyway.
  const endpointOverride = process.env.AWS_ENDPOINT_URL_SQS ?? process.env.AWS_ENDPOINT_URL;
  const sqs = new SQSClient({
    ...clientConfig,
    ...(endpointOverride === undefined ? {} : { useQueueUrlAsEndpoint: false }),
  });
  return {
    config,
    stackName,
    region,
    resources: {
      tableName: resources.tableName ?? "",
      queueUrl: resources.queueUrl ?? "",
      deadLetterQueueUrl: resources.deadLetterQueueUrl ?? "",
    },
    values,
    positionals,
    dynamodb,
    sqs,
    close() {
      dynamodb.destroy();
      sqs.destroy();
    },
  };
}

const OUTPUT_FOR: Record<ResourceName, string> = {
  tableName: STACK_OUTPUT.ledgerTableName,
  queueUrl: STACK_OUTPUT.workQueueUrl,
  deadLetterQueueUrl: STACK_OUTPUT.deadLetterQueueUrl,
};

/** Reads the stack's outputs with DescribeStacks; every failure says what to do instead. */
async function stackResources(
  stackName: string,
  region: string | undefined,
  needs: readonly ResourceName[],
): Promise<Partial<Record<ResourceName, string>>> {
  const orPass = `or pass ${needs.map((n) => FLAG_FOR[n]).join(", ")} explicitly`;
  // Two attempts: an unreachable endpoint or a missing stack should answer in seconds, not minutes.
  const cloudFormation = new CloudFormationClient({
    ...(region === undefined ? {} : { region }),
    maxAttempts: 2,
  });
  try {
    let outputs: { OutputKey?: string | undefined; OutputValue?: string | undefined }[];
    try {
      const answer = await cloudFormation.send(new DescribeStacksCommand({ StackName: stackName }));
      outputs = answer.Stacks?.[0]?.Outputs ?? [];
    } catch (error) {
      if (
        awsErrorName(error) === "ValidationError" &&
        /does not exist/i.test(String((error as Error).message))
      ) {
        throw new ConfigError(
          "stack",
          `no CloudFormation stack ${stackName} in ${region ?? "the default region"}`,
          {
            cause: error,
            hint: `Deploy it (npx cdk deploy -c tenant=<tenant>), name the region it lives in (--region or AWS_REGION), ${orPass}.`,
          },
        );
      }
      throw explainAwsError(error, {
        action: "cloudformation:DescribeStacks",
        resource: stackName,
        hint: `Check AWS credentials, region and network (aws cloudformation describe-stacks --stack-name ${stackName}), ${orPass}.`,
      });
    }
    const found: Partial<Record<ResourceName, string>> = {};
    for (const name of needs) {
      const value = outputs.find((o) => o.OutputKey === OUTPUT_FOR[name])?.OutputValue;
      if (value === undefined) {
        throw new AwsSetupError(`stack ${stackName} has no output ${OUTPUT_FOR[name]}`, {
          hint: `Deploy the current version (npx cdk deploy -c tenant=<tenant>) to add it, ${orPass}.`,
        });
      }
      found[name] = value;
    }
    return found;
  } finally {
    cloudFormation.destroy();
  }
}

/** The first error in `error`'s cause chain that `match` accepts. */
function inCauses(error: unknown, match: (e: Error) => boolean): Error | undefined {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (match(e)) return e;
  }
  return undefined;
}

/**
 * Turns what the SDK throws when the operator's AWS setup is incomplete into a message with a fix:
 * no credentials or no region (exit 2), an unreachable endpoint (exit 1). Other errors pass
 * through as project errors (mapped with `context` when still raw).
 */
export function explainAwsError(
  error: unknown,
  context: { action: string; resource: string; hint?: string } = { action: "aws", resource: "AWS" },
): Pop2GmailError {
  if (inCauses(error, (e) => e.name === "CredentialsProviderError")) {
    return new ConfigError("credentials", "no AWS credentials found", {
      cause: error,
      hint: "Set AWS credentials (AWS_PROFILE with `aws sso login`, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), then run again.",
    });
  }
  if (inCauses(error, (e) => /region is missing/i.test(e.message))) {
    return new ConfigError("region", "no AWS region given", {
      cause: error,
      hint: "Pass --region (the region the tenant stack is deployed in) or set AWS_REGION.",
    });
  }
  const mapped = mapAwsError(error, { service: "queue", ...context });
  if (mapped.hint !== undefined || context.hint === undefined) return mapped;
  // A socket failure's name is a bare "Error"; its code (ECONNREFUSED, ENOTFOUND) says more.
  const socket = inCauses(error, (e) => typeof (e as { code?: unknown }).code === "string");
  const detail = socket === undefined ? "" : ` (${String((socket as Error & { code: string }).code)})`;
  return new AwsSetupError(`${mapped.message}${detail}`, { cause: error, hint: context.hint });
}

/** Runs `act`, turning AWS setup failures into errors that say what to do. */
export async function withAwsErrors<T>(
  act: () => Promise<T>,
  context: { action: string; resource: string } = { action: "AWS call", resource: "the tenant's resources" },
): Promise<T> {
  try {
    return await act();
  } catch (error) {
    throw explainAwsError(error, {
      ...context,
      hint: "Check AWS credentials, region and network; with --table/--queue-url/--dlq-url, check the names and URLs.",
    });
  }
}
