import { PolicyStatement } from "aws-cdk-lib/aws-iam";

/**
 * The IAM statements the pipeline functions get, each naming this tenant's resources exactly.
 * Written out rather than taken from CDK's `grant*` helpers, which add wildcard actions
 * (`s3:GetObject*`, `s3:Abort*`) and `function:*` version ARNs that this code never needs.
 */

/** Item reads and conditional writes on the ledger table and its `byState` index. */
export function ledgerAccess(tableArn: string, indexArn: string): PolicyStatement {
  return new PolicyStatement({
    sid: "LedgerItems",
    actions: [
      "dynamodb:GetItem",
      "dynamodb:BatchGetItem",
      "dynamodb:Query",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:DeleteItem",
      "dynamodb:BatchWriteItem",
      "dynamodb:ConditionCheckItem",
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
    archiveListAccess(bucketArn),
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
    archiveListAccess(bucketArn),
  ];
}

/** ListBucket lets a missing object answer 404 instead of 403, which the idempotent steps rely on. */
function archiveListAccess(bucketArn: string): PolicyStatement {
  return new PolicyStatement({ sid: "ArchiveList", actions: ["s3:ListBucket"], resources: [bucketArn] });
}

/** The tenant key, for SSE-KMS objects, the encrypted table and the encrypted queue. */
export function keyAccess(keyArn: string): PolicyStatement {
  return new PolicyStatement({
    sid: "TenantKey",
    actions: ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
    resources: [keyArn],
  });
}

/** Sending copy jobs (SendMessageBatch is authorised by sqs:SendMessage). */
export function queueSendAccess(queueArn: string): PolicyStatement {
  return new PolicyStatement({ sid: "WorkQueueSend", actions: ["sqs:SendMessage"], resources: [queueArn] });
}

/** Invoking exactly one function (its unqualified ARN). */
export function invokeAccess(functionArn: string): PolicyStatement {
  return new PolicyStatement({
    sid: "InvokeDeleteCopied",
    actions: ["lambda:InvokeFunction"],
    resources: [functionArn],
  });
}

/** Reading the named secrets' values; no statement at all when there are none. */
export function secretAccess(sid: string, secretArns: readonly string[]): PolicyStatement[] {
  if (secretArns.length === 0) return [];
  return [
    new PolicyStatement({ sid, actions: ["secretsmanager:GetSecretValue"], resources: [...secretArns] }),
  ];
}
