/**
 * The CloudWatch metrics contract: the handlers emit these (Powertools EMF) and the CDK stack's
 * alarms (and the optional dashboard, and the provider's fleet dashboard) read them. A CloudWatch
 * metric is identified by its namespace, name and its exact set of dimensions, so an alarm only
 * sees a datapoint emitted with exactly the dimension set listed in `METRIC_DIMENSIONS` below.
 * Keep both sides on this file.
 *
 * Cost (docs/deploy.md section 7, prices in infra/aws-prices.ts): every distinct combination of
 * dimension values is one custom metric, billed $0.30 a month prorated by the hours in which it
 * receives data. So the contract is small and every metric but `TenantProblems` is emitted only
 * when something happened (never a zero): a healthy idle tenant emits exactly one custom metric
 * (`METRIC_EMISSION`). Per-message counts and sizes (listed, archived, imported, deleted, bytes,
 * DeliveryDelay) are not metrics: they are fields of the JSON log lines, which the optional
 * dashboard queries with Logs Insights. No metric carries the mailbox (one metric per mailbox
 * would scale the bill with the tenant); the logs name it.
 */

/** The CloudWatch namespace; the stack sets it as `POWERTOOLS_METRICS_NAMESPACE`. */
export const METRIC_NAMESPACE = "Pop2Gmail";

/**
 * The service name the stack sets as `POWERTOOLS_SERVICE_NAME` on all three functions.
 * Powertools Metrics adds a `service` dimension with this value to every metric by default, so
 * the alarms include it too: all three functions must emit the same value.
 */
export const METRIC_SERVICE_NAME = "pop2gmail";

/** Dimension names. `service` is Powertools' default dimension (lower-case, as it writes it). */
export const METRIC_DIMENSION = {
  service: "service",
  tenant: "Tenant",
  /**
   * Which system refused the credentials: `pop3` or `google` (see `CREDENTIAL_SERVICES`).
   * Not named `Service`, which would sit next to Powertools' `service` and differ only in case.
   */
  remoteService: "RemoteService",
} as const;

export type MetricDimensionName = (typeof METRIC_DIMENSION)[keyof typeof METRIC_DIMENSION];

/** Metric names and what one datapoint means. */
export const METRIC = {
  /**
   * The tenant's open problems, counted once a minute by the lister's keeper tick (0 when healthy,
   * so a missing datapoint means the keeper itself is not running): mailboxes not polled
   * successfully for max(10 min, 2 x pollSeconds), mailboxes whose last poll met a credentials
   * error, mailboxes with mail not in Gmail 15 minutes after listing, mailboxes with a message
   * quarantined within the hour (shared/core/tenant-problems.ts), and 1 each for a non-empty
   * dead-letter and failed-deletes queue. Count.
   */
  tenantProblems: "TenantProblems",
  /** First listed -> in Gmail, one datapoint per import (its SampleCount is the imports). Milliseconds. */
  pipelineDelay: "PipelineDelay",
  /** Messages set aside with a reason (too large, rejected by Gmail, failing repeatedly). Count. */
  messagesQuarantined: "MessagesQuarantined",
  /** A wrong POP3 password or a revoked/expired Google token. Count. */
  credentialsBroken: "CredentialsBroken",
  /** Gmail answered 429 / rateLimitExceeded; the job was re-enqueued with a delay. Count. */
  gmailRateLimited: "GmailRateLimited",
  /** The maildrop was locked (`IN-USE`, `LOGIN-DELAY`) or no session lease was free. Count. */
  mailboxBusy: "MailboxBusy",
} as const;

export type MetricName = (typeof METRIC)[keyof typeof METRIC];

/** CloudWatch units, as Powertools' `MetricUnit` spells them. */
export type MetricUnitName = "Count" | "Milliseconds" | "Bytes";

/** The unit each metric is emitted with; statistics over mixed units do not combine. */
export const METRIC_UNIT: Readonly<Record<MetricName, MetricUnitName>> = {
  TenantProblems: "Count",
  PipelineDelay: "Milliseconds",
  MessagesQuarantined: "Count",
  CredentialsBroken: "Count",
  GmailRateLimited: "Count",
  MailboxBusy: "Count",
};

const TENANT_LEVEL = [METRIC_DIMENSION.service, METRIC_DIMENSION.tenant] as const;

/**
 * The exact dimension set each metric must be emitted with. Metrics with the tenant-level set
 * can share one Powertools flush (default dimensions `Tenant`); the others need
 * `metrics.singleMetric()` with the extra dimension added.
 */
export const METRIC_DIMENSIONS: Readonly<Record<MetricName, readonly MetricDimensionName[]>> = {
  TenantProblems: TENANT_LEVEL,
  PipelineDelay: TENANT_LEVEL,
  MessagesQuarantined: TENANT_LEVEL,
  CredentialsBroken: [...TENANT_LEVEL, METRIC_DIMENSION.remoteService],
  GmailRateLimited: TENANT_LEVEL,
  MailboxBusy: TENANT_LEVEL,
};

/** The values of the `RemoteService` dimension on `CredentialsBroken`. */
export const CREDENTIAL_SERVICES = ["pop3", "google"] as const;

export type CredentialService = (typeof CREDENTIAL_SERVICES)[number];

/**
 * When each metric receives data, which is what CloudWatch bills (per metric, per hour with
 * data): `every-minute` metrics cost the full $0.30 a month whatever happens; `on-event` ones
 * only in the hours something happened, and a healthy idle tenant emits none of them. Adding a
 * metric here is a budget decision: `test/infra/cloudwatch-budget.test.ts` prices the
 * `every-minute` ones into the fixed cost per tenant.
 */
export const METRIC_EMISSION: Readonly<Record<MetricName, "every-minute" | "on-event">> = {
  TenantProblems: "every-minute",
  PipelineDelay: "on-event",
  MessagesQuarantined: "on-event",
  CredentialsBroken: "on-event",
  GmailRateLimited: "on-event",
  MailboxBusy: "on-event",
};

/** How many custom metrics (dimension-value combinations) each metric name makes per tenant. */
export const METRIC_SERIES_PER_TENANT: Readonly<Record<MetricName, number>> = {
  TenantProblems: 1,
  PipelineDelay: 1,
  MessagesQuarantined: 1,
  CredentialsBroken: CREDENTIAL_SERVICES.length,
  GmailRateLimited: 1,
  MailboxBusy: 1,
};

/**
 * The log lines (Powertools `message`) that stand in for the per-message metrics this contract
 * does not emit: each carries `tenant`, `mailboxId`, `uidl` and, where it applies, `bytes`,
 * `pipelineDelayMs` and `deliveryDelayMs`. The optional dashboard counts them with Logs Insights
 * (infra/constructs/tenant-dashboard.ts), so both sides read them from here.
 */
export const PIPELINE_LOG_MESSAGE = {
  listed: "message listed",
  archived: "message archived",
  imported: "message imported into Gmail",
  deleted: "message deleted from POP3",
  quarantined: "message quarantined: left on the server, needs a look",
} as const;
