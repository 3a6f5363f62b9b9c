import { Duration } from "aws-cdk-lib";
import {
  type Alarm,
  AlarmStatusWidget,
  Dashboard,
  GraphWidget,
  LogQueryVisualizationType,
  LogQueryWidget,
  TextWidget,
} from "aws-cdk-lib/aws-cloudwatch";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import type { Queue } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import {
  CREDENTIAL_SERVICES,
  METRIC,
  METRIC_DIMENSION,
  PIPELINE_LOG_MESSAGE,
} from "../../shared/config/metrics";
import type { TenantConfig } from "../../shared/config/tenant-config";
import { tenantMetric } from "../tenant-metric";

export interface TenantDashboardProps {
  readonly config: TenantConfig;
  readonly functions: Readonly<Record<string, IFunction>>;
  /** The three pipeline functions' log groups, which the message widgets query. */
  readonly logGroupNames: readonly string[];
  readonly workQueue: Queue;
  readonly deadLetterQueue: Queue;
  readonly failedDeletes: Queue;
  readonly alarms: readonly Alarm[];
}

const WIDTH = 12;
const HEIGHT = 6;

/** A Logs Insights string literal (the log messages hold no quotes, but keep the query valid). */
function quoted(text: string): string {
  return JSON.stringify(text);
}

/**
 * The optional per-tenant dashboard (`"dashboard": true` in the tenant config; $3 a month beyond
 * the account's first three), named `pop2gmail-<tenant>`: alarm states, open problems, delays,
 * queues, errors and pushback from metrics; message counts, bytes and DeliveryDelay from the logs
 * with Logs Insights (no custom metric for them, shared/config/metrics.ts; each view of those
 * widgets is a query, billed by the data it scans). The provider stack's fleet dashboard shows
 * every tenant at once and costs nothing per tenant.
 */
export class TenantDashboard extends Construct {
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: TenantDashboardProps) {
    super(scope, id);
    const tenant = props.config.tenant;
    const metric = (name: Parameters<typeof tenantMetric>[1], options?: Parameters<typeof tenantMetric>[2]) =>
      tenantMetric(tenant, name, options);
    const logGroupNames = [...props.logGroupNames];

    this.dashboard = new Dashboard(this, "Dashboard", {
      dashboardName: `pop2gmail-${tenant}`,
      defaultInterval: Duration.hours(24),
    });
    this.dashboard.addWidgets(
      new TextWidget({
        markdown: `# pop2gmail: ${tenant}\n${props.config.mailboxes.length} mailbox(es). Delays in ms. Alarms mail ${props.config.alarmEmail ?? "nobody (no alarmEmail set)"}. The list-new-messages log names each open problem.`,
        width: 24,
        height: 2,
      }),
      new AlarmStatusWidget({ title: "Alarms", alarms: [...props.alarms], width: 24, height: 3 }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: "Open problems (the keeper's count, once a minute; a gap = the keeper is not running)",
        left: [metric(METRIC.tenantProblems, { statistic: "Maximum", period: Duration.minutes(1) })],
        width: WIDTH,
        height: HEIGHT,
      }),
      new GraphWidget({
        title: "PipelineDelay (ms, listed -> Gmail) and imports",
        left: ["p50", "p95"].map((statistic) =>
          metric(METRIC.pipelineDelay, { statistic, label: `PipelineDelay ${statistic}` }),
        ),
        right: [metric(METRIC.pipelineDelay, { statistic: "SampleCount", label: "Imports (per 5 min)" })],
        width: WIDTH,
        height: HEIGHT,
      }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: "Work queue: backlog and oldest job (s)",
        left: [
          props.workQueue.metricApproximateNumberOfMessagesVisible({
            statistic: "Maximum",
            label: "Backlog",
          }),
        ],
        right: [
          props.workQueue.metricApproximateAgeOfOldestMessage({
            statistic: "Maximum",
            label: "Oldest job (s)",
          }),
        ],
        width: WIDTH,
        height: HEIGHT,
      }),
      new GraphWidget({
        title: "Dead letters and failed deletes",
        left: [
          props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
            statistic: "Maximum",
            label: "Dead-lettered copy jobs",
          }),
          props.failedDeletes.metricApproximateNumberOfMessagesVisible({
            statistic: "Maximum",
            label: "Failed delete passes",
          }),
        ],
        width: WIDTH,
        height: HEIGHT,
      }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: "Function errors and throttles",
        left: Object.entries(props.functions).flatMap(([name, fn]) => [
          fn.metricErrors({ statistic: "Sum", label: `${name} errors` }),
          fn.metricThrottles({ statistic: "Sum", label: `${name} throttles` }),
        ]),
        width: WIDTH,
        height: HEIGHT,
      }),
      new GraphWidget({
        title: "Pushback and quarantine: Gmail 429s, busy maildrop, broken credentials",
        left: [
          metric(METRIC.gmailRateLimited),
          metric(METRIC.mailboxBusy),
          metric(METRIC.messagesQuarantined),
          ...CREDENTIAL_SERVICES.map((service) =>
            metric(METRIC.credentialsBroken, {
              extra: { [METRIC_DIMENSION.remoteService]: service },
              label: `CredentialsBroken ${service}`,
            }),
          ),
        ],
        width: WIDTH,
        height: HEIGHT,
      }),
    );
    const messages = Object.values(PIPELINE_LOG_MESSAGE).map(quoted).join(", ");
    this.dashboard.addWidgets(
      new LogQueryWidget({
        title: "Messages by step (from the logs)",
        logGroupNames,
        view: LogQueryVisualizationType.TABLE,
        queryLines: [
          `filter message in [${messages}]`,
          "stats count(*) as messages, sum(bytes) as bytes by message",
        ],
        width: WIDTH,
        height: HEIGHT,
      }),
      new LogQueryWidget({
        title: "DeliveryDelay (ms, Received: -> Gmail) per hour, from the logs",
        logGroupNames,
        view: LogQueryVisualizationType.LINE,
        queryLines: [
          `filter message = ${quoted(PIPELINE_LOG_MESSAGE.imported)} and ispresent(deliveryDelayMs)`,
          "stats pct(deliveryDelayMs, 50) as p50, pct(deliveryDelayMs, 95) as p95 by bin(1h)",
        ],
        width: WIDTH,
        height: HEIGHT,
      }),
    );
  }
}
