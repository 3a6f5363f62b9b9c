import { PolicyStatement } from "aws-cdk-lib/aws-iam";

/**
 * The IAM statements the pipeline functions get, each naming this tenant's resources exactly.
 * Written out rather than taken from CDK's `grant*` helpers, which add wildcard actions
 * (`s3:GetObject*`, `s3:Abort*`) and `function:*` version ARNs that this code never needs.
 */

/**
 * Item reads and conditional writes on the ledger table and its `byState` index: exactly the
 * operations `DynamoDbLedger` sends (the IAM proof, test/infra/iam-proof.test.ts, records them).
 */
export function ledgerAccess(tableArn: string, indexArn: string): PolicyStatement {
  return new PolicyStatement({
    sid: "LedgerItems",
    actions: [
      "dynamodb:GetItem",
      "dynamodb:Query",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:DeleteItem",
    ],
    resources: [tableArn, indexArn],
  });
}

/**
 * The tenant's objects in its archive bucket: `archiveKeyFor` puts every key under
 * `<tenant>/`, so the grant names that prefix.
 */
export function archiveObjectsArn(bucketArn: string, tenant: string): string {
  return `${bucketArn}/${tenant}/*`;
}

/** Writing and reading archived messages (PutObject covers the multipart upload calls). */
export function archiveWriteAccess(bucketArn: string, tenant: string): PolicyStatement[] {
  return [
    new PolicyStatement({
      sid: "ArchiveObjectsReadWrite",
      actions: ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],
      resources: [archiveObjectsArn(bucketArn, tenant)],
    }),
    archiveListAccess(bucketArn, tenant),
  ];
}

/** Reading archived messages, e.g. to check an object before deleting its POP3 original. */
export function archiveReadAccess(bucketArn: string, tenant: string): PolicyStatement[] {
  return [
    new PolicyStatement({
      sid: "ArchiveObjectsRead",
      actions: ["s3:GetObject"],
      resources: [archiveObjectsArn(bucketArn, tenant)],
    }),
    archiveListAccess(bucketArn, tenant),
  ];
}

/**
 * ListBucket lets a missing object answer 404 instead of 403, which the idempotent steps rely on.
 * A listing must stay under the tenant's prefix; `IfExists` because S3's 404-or-403 check of a
 * GET carries no `s3:prefix` (docs/deploy.md: what only a real account can show).
 */
function archiveListAccess(bucketArn: string, tenant: string): PolicyStatement {
  return new PolicyStatement({
    sid: "ArchiveList",
    actions: ["s3:ListBucket"],
    resources: [bucketArn],
    conditions: { StringLikeIfExists: { "s3:prefix": [`${tenant}/*`] } },
  });
}

/**
 * The tenant key, for SSE-KMS objects, the encrypted table and the encrypted queues: S3 and SQS
 * ask KMS for a data key when writing (GenerateDataKey) and decrypt it when reading; nothing
 * calls Encrypt.
 */
export function keyAccess(keyArn: string): PolicyStatement {
  return new PolicyStatement({
    sid: "TenantKey",
    actions: ["kms:Decrypt", "kms:GenerateDataKey"],
    resources: [keyArn],
  });
}

/** Sending copy jobs (SendMessageBatch is authorised by sqs:SendMessage). */
export function queueSendAccess(queueArn: string, sid = "WorkQueueSend"): PolicyStatement {
  return new PolicyStatement({ sid, actions: ["sqs:SendMessage"], resources: [queueArn] });
}

/** Reading the depth of the named queues (the keeper counts a non-empty one as a problem). */
export function queueDepthAccess(queueArns: readonly string[]): PolicyStatement {
  return new PolicyStatement({
    sid: "ProblemQueueDepth",
    actions: ["sqs:GetQueueAttributes"],
    resources: [...queueArns],
  });
}

/** Invoking exactly one function (its unqualified ARN). */
export function invokeAccess(functionArn: string): PolicyStatement {
  return new PolicyStatement({
    sid: "InvokeDeleteCopied",
    actions: ["lambda:InvokeFunction"],
    resources: [functionArn],
  });
}

/** The tag that marks a secret as a tenant's (docs/deploy.md creates every secret with it). */
export const TENANT_TAG_KEY = "pop2gmail:tenant";

/**
 * Reading the named secrets' values, and only while the secret carries this tenant's tag: a name
 * alone is not enough (a secret created under a wrong name stays unreadable until tagged for this
 * tenant). No statement at all when there are none.
 */
export function secretAccess(sid: string, secretArns: readonly string[], tenant: string): PolicyStatement[] {
  if (secretArns.length === 0) return [];
  return [
    new PolicyStatement({
      sid,
      actions: ["secretsmanager:GetSecretValue"],
      resources: [...secretArns],
      conditions: { StringEquals: { [`aws:ResourceTag/${TENANT_TAG_KEY}`]: tenant } },
    }),
  ];
}
