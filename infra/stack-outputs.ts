/**
 * What a deployed tenant stack tells the `pop2gmail … --aws` verbs: its id and the names of its
 * CloudFormation outputs. Kept free of aws-cdk-lib so the CLI can read it without loading CDK.
 */

/** The CloudFormation stack id of a tenant: `Pop2Gmail-<tenant>`. */
export function tenantStackId(tenant: string): string {
  return `Pop2Gmail-${tenant}`;
}

/**
 * Output keys of `TenantStack` (outputs of this stack only; nothing is exported cross-stack, so
 * no other stack can come to depend on a tenant's resources).
 */
export const STACK_OUTPUT = {
  ledgerTableName: "LedgerTableName",
  workQueueUrl: "WorkQueueUrl",
  deadLetterQueueUrl: "DeadLetterQueueUrl",
  archiveBucketName: "ArchiveBucketName",
} as const;
