/**
 * The names of the provider stack's resources (one provider stack per AWS account and region,
 * docs/deploy.md section 10). Fixed names, so a tenant stack can name the operations topic by its
 * ARN without a cross-stack export (an export would pin the topic for as long as any tenant
 * imports it). Kept free of aws-cdk-lib so the CLI can read it without loading CDK.
 */

/** The CloudFormation stack id of the provider stack (`npx cdk deploy Pop2Gmail-Provider`). */
export const PROVIDER_STACK_ID = "Pop2Gmail-Provider";

/** The SNS operations topic every tenant's alarms also go to. */
export const OPS_TOPIC_NAME = "pop2gmail-ops";

/** The fleet dashboard: every tenant on one page, found by SEARCH expressions. */
export const FLEET_DASHBOARD_NAME = "pop2gmail-fleet";

/** Every tenant alarm is named `pop2gmail-<tenant>-<name>` (infra/constructs/tenant-alarms.ts). */
export const TENANT_ALARM_PREFIX = "pop2gmail-";

/** The tag every tenant stack carries, valued with the tenant's name (infra/tenant-stack.ts). */
export const TENANT_TAG = "pop2gmail:tenant";

/** The ARN of the operations topic in an account and region. */
export function opsTopicArn(partition: string, region: string, account: string): string {
  return `arn:${partition}:sns:${region}:${account}:${OPS_TOPIC_NAME}`;
}
