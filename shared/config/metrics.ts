/**
 * The CloudWatch metrics contract: the handlers emit these (Powertools EMF) and the CDK stack's
 * dashboard and alarms read them. A CloudWatch metric is identified by its namespace, name and
 * its exact set of dimensions, so an alarm only sees a datapoint emitted with exactly the
 * dimension set listed in `METRIC_DIMENSIONS` below. Keep both sides on this file.
 *
 * Cost: every distinct combination of dimension values is one custom metric (about $0.30 a month).
 * Only `PollSucceeded` carries the mailbox, because its alarm must be per mailbox; the rest are
 * per tenant and the logs name the mailbox.
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
  mailbox: "Mailbox",
  /**
   * Which system refused the credentials: `pop3` or `google` (see `CREDENTIAL_SERVICES`).
   * Not named `Service`, which would sit next to Powertools' `service` and differ only in case.
   */
  remoteService: "RemoteService",
} as const;

export type MetricDimensionName = (typeof METRIC_DIMENSION)[keyof typeof METRIC_DIMENSION];

/** Metric names and what one datapoint means. */
export const METRIC = {
  /** New messages the lister found on the server and enqueued. Count. */
  messagesListed: "MessagesListed",
  /** Messages written to S3 and verified (size and SHA-256). Count. */
  messagesArchived: "MessagesArchived",
  /** Messages Gmail returned an id for. Count. */
  messagesImported: "MessagesImported",
  /** Messages removed from the POP3 server (QUIT committed the DELEs). Count. */
  messagesDeleted: "MessagesDeleted",
  /** Messages set aside with a reason (too large, rejected by Gmail, failing repeatedly). Count. */
  messagesQuarantined: "MessagesQuarantined",
  /** Bytes written to the archive bucket. Bytes. */
  bytesArchived: "BytesArchived",
  /** First listed -> in Gmail. Milliseconds. */
  pipelineDelay: "PipelineDelay",
  /** Topmost `Received:` date -> in Gmail (what the reader feels). Milliseconds. */
  deliveryDelay: "DeliveryDelay",
  /** One per completed poll of a mailbox (server reached, list diffed). Count. */
  pollSucceeded: "PollSucceeded",
  /**
   * The tenant's open problems, counted once a minute by the lister's keeper tick (0 when healthy,
   * so a missing datapoint means the keeper itself is not running): mailboxes not polled
   * successfully for max(10 min, 2 x pollSeconds), mailboxes whose last poll met a credentials
   * error, and 1 each for a non-empty dead-letter and failed-deletes queue. Count.
   */
  tenantProblems: "TenantProblems",
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
  MessagesListed: "Count",
  MessagesArchived: "Count",
  MessagesImported: "Count",
  MessagesDeleted: "Count",
  MessagesQuarantined: "Count",
  BytesArchived: "Bytes",
  PipelineDelay: "Milliseconds",
  DeliveryDelay: "Milliseconds",
  PollSucceeded: "Count",
  TenantProblems: "Count",
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
  MessagesListed: TENANT_LEVEL,
  MessagesArchived: TENANT_LEVEL,
  MessagesImported: TENANT_LEVEL,
  MessagesDeleted: TENANT_LEVEL,
  MessagesQuarantined: TENANT_LEVEL,
  BytesArchived: TENANT_LEVEL,
  PipelineDelay: TENANT_LEVEL,
  DeliveryDelay: TENANT_LEVEL,
  PollSucceeded: [...TENANT_LEVEL, METRIC_DIMENSION.mailbox],
  TenantProblems: TENANT_LEVEL,
  CredentialsBroken: [...TENANT_LEVEL, METRIC_DIMENSION.remoteService],
  GmailRateLimited: TENANT_LEVEL,
  MailboxBusy: TENANT_LEVEL,
};

/** The values of the `RemoteService` dimension on `CredentialsBroken`; one alarm each. */
export const CREDENTIAL_SERVICES = ["pop3", "google"] as const;

export type CredentialService = (typeof CREDENTIAL_SERVICES)[number];
