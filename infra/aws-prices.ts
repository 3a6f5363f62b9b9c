/**
 * AWS list prices in USD, us-east-1, the one place the cost figures of this repository take them
 * from (docs/deploy.md section 7, bench/cost.ts, test/infra/cloudwatch-budget.test.ts). Checked
 * 2026-12-01 against the pricing pages below; other Regions differ, and free tiers (10 alarm
 * metrics, 10 custom metrics, 3 dashboards, 1M SQS requests per account and month...) are left
 * out on purpose: a fleet of tenants uses them up in the first few.
 *
 * - CloudWatch https://aws.amazon.com/cloudwatch/pricing/ : a standard-resolution alarm is billed
 *   per metric it reads (an alarm on a metric-math expression pays for each metric in it); a
 *   custom metric (one combination of namespace, name and dimension values) is $0.30 a month for
 *   the first 10,000, prorated by the hour and metered only in hours it receives data; a
 *   dashboard is $3 a month beyond the account's first three; logs $0.50 per GB ingested.
 * - KMS https://aws.amazon.com/kms/pricing/ : $1 per customer managed key-month, $0.03 per 10,000
 *   requests.
 * - Secrets Manager https://aws.amazon.com/secrets-manager/pricing/ : $0.40 per secret-month,
 *   $0.05 per 10,000 API calls.
 * - SQS https://aws.amazon.com/sqs/pricing/ : per million requests (64 KB chunks), standard and
 *   FIFO queues priced apart.
 * - Lambda https://aws.amazon.com/lambda/pricing/ : arm64 per GB-second and per request.
 * - DynamoDB https://aws.amazon.com/dynamodb/pricing/on-demand/ : on-demand read and write units.
 * - S3 https://aws.amazon.com/s3/pricing/ , X-Ray https://aws.amazon.com/xray/pricing/ .
 */
export const AWS_PRICE = {
  cloudWatch: {
    /** One standard-resolution alarm metric, per month. */
    alarmMetricMonth: 0.1,
    /** One custom metric receiving data every hour of the month (first 10,000 metrics). */
    customMetricMonth: 0.3,
    /** One dashboard, per month, beyond the account's first three. */
    dashboardMonth: 3.0,
    logsIngestedPerGb: 0.5,
    logsInsightsScannedPerGb: 0.005,
  },
  kms: { keyMonth: 1.0, requestsPer10k: 0.03 },
  secretsManager: { secretMonth: 0.4, callsPer10k: 0.05 },
  sqs: { standardRequest: 0.4e-6, fifoRequest: 0.5e-6 },
  lambda: { request: 0.2e-6, arm64GbSecond: 13.3334e-6 },
  dynamodb: { writeUnit: 0.625e-6, readUnit: 0.125e-6 },
  s3: { putPer1k: 0.005, getPer1k: 0.0004, iaTransitionPer1k: 0.01, standardGbMonth: 0.023 },
  xray: { traceRecorded: 5e-6 },
} as const;

/** The month these figures count in: 30 days, as docs/deploy.md section 7 does (43,200 minutes). */
export const HOURS_PER_MONTH = 720;
