/**
 * CDK feature flags the tenant stack relies on. `TenantStack` sets them on itself, so it
 * synthesizes the same in `cdk synth`, in tests and in any other App, whatever cdk.json says.
 */
export const FEATURE_FLAGS = {
  // Grant S3 log delivery through the log bucket's policy instead of an ACL: the log bucket
  // keeps ObjectOwnership BucketOwnerEnforced (ACLs disabled).
  "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": true,
} as const;
