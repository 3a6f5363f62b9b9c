import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { secretNames } from "../../../infra/secret-arns";
import type { TenantConfig } from "../../../shared/config/tenant-config";
import {
  RECORDED_ACCOUNT,
  RECORDED_REGION,
  type RecordedAwsCall,
  type RecordedCallsFile,
  type RecordedIamRequest,
} from "../../fakes/aws-call-recorder";
import { type DeployedStack, PROOF_ACCOUNT, PROOF_REGION } from "./deployed-stack";
import { FUNCTION_IDS, type FunctionName, type IamRequest, type ProofAccount } from "./proof-account";

/** The tag every tenant secret carries (docs/deploy.md) and the grants require. */
export const TENANT_TAG = "pop2gmail:tenant";

/** A deployed secret's ARN: Secrets Manager appends `-` and six random characters. */
export function deployedSecretArn(name: string): string {
  return `arn:aws:secretsmanager:${PROOF_REGION}:${PROOF_ACCOUNT}:secret:${name}-Xy12Zq`;
}

/** The request context of reading a secret tagged as `tenant`'s. */
export function secretTagContext(tenant: string | undefined): Record<string, string> {
  return tenant === undefined ? {} : { [`aws:ResourceTag/${TENANT_TAG}`]: tenant };
}

/** The one resource of `type` whose logical id is `id` plus CDK's 8-character hash. */
export function resourceOf(stack: DeployedStack, type: string, id: string) {
  const pattern = new RegExp(`^${id}[0-9A-F]{8}$`);
  const found = stack.byType(type).filter((r) => pattern.test(r.logicalId));
  if (found.length !== 1) throw new Error(`${stack.stackName}: ${found.length} ${type} with id ${id}`);
  return found[0]!;
}

/** The concrete names of one tenant's resources. */
export function tenantResources(account: ProofAccount, tenant: string) {
  const stack = account.stack(tenant);
  const archive = resourceOf(stack, "AWS::S3::Bucket", "Archive");
  const table = resourceOf(stack, "AWS::DynamoDB::Table", "LedgerTable");
  const workQueue = resourceOf(stack, "AWS::SQS::Queue", "QueuesWork");
  const deadLetters = resourceOf(stack, "AWS::SQS::Queue", "QueuesDeadLetters");
  const failedDeletes = resourceOf(stack, "AWS::SQS::Queue", "QueuesFailedDeletes");
  // Only a tenant with a mailbox polled more often than once a minute has one.
  const pollQueue = stack.byType("AWS::SQS::Queue").some((r) => /^QueuesPoll[0-9A-F]{8}$/.test(r.logicalId))
    ? resourceOf(stack, "AWS::SQS::Queue", "QueuesPoll")
    : undefined;
  const key = resourceOf(stack, "AWS::KMS::Key", "Key");
  return {
    stack,
    bucketArn: archive.attributes.Arn!,
    tableArn: table.attributes.Arn!,
    workQueueArn: workQueue.attributes.Arn!,
    deadLetterQueueArn: deadLetters.attributes.Arn!,
    failedDeletesQueueArn: failedDeletes.attributes.Arn!,
    pollQueueArn: pollQueue?.attributes.Arn,
    keyArn: key.attributes.Arn!,
    functions: Object.fromEntries(
      (Object.keys(FUNCTION_IDS) as FunctionName[]).map((fn) => [
        fn,
        account.functionOf(tenant, fn).attributes.Arn!,
      ]),
    ) as Record<FunctionName, string>,
  };
}

/** Recorded-call files written by the other suites within `maxAgeMs` (none when the folder is absent). */
export function readRecordedFiles(dir: string, maxAgeMs: number, now: number): RecordedCallsFile[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => name.endsWith(".json"))
    .map((name) => join(dir, name))
    .filter((file) => now - statSync(file).mtimeMs <= maxAgeMs)
    .map((file) => JSON.parse(readFileSync(file, "utf8")) as RecordedCallsFile);
}

/**
 * Maps a request recorded against the stand-ins onto the deployed tenant `config`'s stack: the
 * stand-ins' bucket, table, queue and function names become the stack's (they are generated at
 * deploy time in both worlds); an object key or list prefix keeps its shape with the recorded
 * tenant segment replaced by the deployed tenant; a secret becomes the deployed tenant's secret of
 * the same kind (POP3 password or Google credentials), tagged with its tenant. Anything the map
 * does not know keeps its recorded ARN, which no deployed policy names: it fails the proof.
 * Undefined for a poll-queue call on a tenant without a poll queue (its lister makes none).
 */
export function deployedRequest(
  account: ProofAccount,
  config: TenantConfig,
  recorded: RecordedCallsFile,
  call: RecordedAwsCall,
  request: RecordedIamRequest,
): IamRequest | undefined {
  const target = tenantResources(account, config.tenant);
  const retenant = (key: string) =>
    key.startsWith(`${recorded.tenant}/`) ? `${config.tenant}/${key.slice(recorded.tenant.length + 1)}` : key;
  const principal = account.roleOf(config.tenant, call.function as FunctionName);
  const context: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.context ?? {})) {
    if (name === "s3:prefix") context[name] = retenant(value);
    else if (name === "kms:ViaService") context[name] = value.replace(RECORDED_REGION, PROOF_REGION);
    else if (name === "kms:EncryptionContext:aws:s3:arn") context[name] = target.bucketArn;
    else context[name] = value;
  }
  if (request.keyOf !== undefined) {
    return { principal, action: request.action, resource: target.keyArn, context };
  }
  const resource = request.resource;
  const [, , service] = resource.split(":");
  const recordedArn = (kind: string) => `arn:aws:${kind}:${RECORDED_REGION}:${RECORDED_ACCOUNT}:`;
  if (service === "s3") {
    const [, key] = splitOnce(resource.slice("arn:aws:s3:::".length), "/");
    return {
      principal,
      action: request.action,
      resource: key === undefined ? target.bucketArn : `${target.bucketArn}/${retenant(key)}`,
      context,
    };
  }
  if (service === "dynamodb") {
    const suffix = resource.slice(recordedArn("dynamodb").length).replace(/^table\/[^/]+/, "");
    return { principal, action: request.action, resource: `${target.tableArn}${suffix}`, context };
  }
  if (service === "sqs") {
    // The rig names its queues after their role (test/integration/pipeline-harness.ts).
    const name = resource.split(":").pop() ?? "";
    if (name.startsWith("poll-")) {
      if (target.pollQueueArn === undefined) return undefined;
      return { principal, action: request.action, resource: target.pollQueueArn, context };
    }
    const queueArn = name.startsWith("deadletters-")
      ? target.deadLetterQueueArn
      : name.startsWith("faileddeletes-")
        ? target.failedDeletesQueueArn
        : target.workQueueArn;
    return { principal, action: request.action, resource: queueArn, context };
  }
  if (service === "lambda" && resource.endsWith("delete-copied")) {
    return { principal, action: request.action, resource: target.functions["delete-copied"], context };
  }
  if (service === "secretsmanager") {
    const name = resource
      .slice(recordedArn("secretsmanager").length + "secret:".length)
      .replace(/-\w{6}$/, "");
    const names = secretNames(config);
    const deployed = recorded.secrets.pop3.includes(name)
      ? names.pop3[0]
      : recorded.secrets.google.includes(name)
        ? names.google[0]
        : undefined;
    if (deployed !== undefined) {
      return {
        principal,
        action: request.action,
        resource: deployedSecretArn(deployed),
        context: { ...context, ...secretTagContext(config.tenant) },
      };
    }
  }
  return { principal, action: request.action, resource, context };
}

function splitOnce(text: string, separator: string): [string, string | undefined] {
  const at = text.indexOf(separator);
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)];
}
