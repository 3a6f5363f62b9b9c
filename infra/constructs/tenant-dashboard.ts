import { Duration } from "aws-cdk-lib";
import {
  type Alarm,
  AlarmStatusWidget,
  Dashboard,
  GraphWidget,
  type IMetric,
  TextWidget,
} from "aws-cdk-lib/aws-cloudwatch";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import type { Queue } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { CREDENTIAL_SERVICES, METRIC, METRIC_DIMENSION } from "../../shared/config/metrics";
import type { TenantConfig } from "../../shared/config/tenant-config";
import { tenantMetric } from "../tenant-metric";

export interface TenantDashboardProps {
  readonly config: TenantConfig;
  readonly functions: Readonly<Record<string, IFunction>>;
  readonly workQueue: Queue;
  readonly deadLetterQueue: Queue;
  readonly alarms: readonly Alarm[];
}

const WIDTH = 12;
const HEIGHT = 6;

/**
 * One dashboard per tenant, named `pop2gmail-<tenant>`: alarm states on top, then flow
 * (listed -> imported -> deleted, quarantined), delays, the queue, errors and Gmail/POP3 pushback.
 */
export class TenantDashboard extends Construct {
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: TenantDashboardProps) {
    super(scope, id);
    const tenant = props.config.tenant;
    const metric = (name: Parameters<typeof tenantMetric>[1], options?: Parameters<typeof tenantMetric>[2]) =>
      tenantMetric(tenant, name, options);
    const percentiles = (name: typeof METRIC.pipelineDelay | typeof METRIC.deliveryDelay): IMetric[] =>
      ["p50", "p95"].map((statistic) => metric(name, { statistic, label: `${name} ${statistic}` }));

    this.dashboard = new Dashboard(this, "Dashboard", {
      dashboardName: `pop2gmail-${tenant}`,
      defaultInterval: Duration.hours(24),
    });
    this.dashboard.addWidgets(
      new TextWidget({
        markdown: `# pop2gmail: ${tenant}\n${props.config.mailboxes.length} mailbox(es). Delays in ms. Alarms mail ${props.config.alarmEmail ?? "nobody (no alarmEmail set)"}.`,
        width: 24,
        height: 2,
      }),
      new AlarmStatusWidget({ title: "Alarms", alarms: [...props.alarms], width: 24, height: 3 }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: "Messages (per 5 min)",
        left: [
          metric(METRIC.messagesListed),
          metric(METRIC.messagesImported),
          metric(METRIC.messagesDeleted),
          metric(METRIC.messagesQuarantined),
        ],
        width: WIDTH,
        height: HEIGHT,
      }),
      new GraphWidget({
        title: "Delays (ms): pipeline = listed -> Gmail, delivery = Received -> Gmail",
        left: [...percentiles(METRIC.pipelineDelay), ...percentiles(METRIC.deliveryDelay)],
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
        title: "Dead-letter queue depth",
        left: [
          props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
            statistic: "Maximum",
            label: "DLQ messages",
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
        title: "Pushback: Gmail 429s, busy maildrop, broken credentials",
        left: [
          metric(METRIC.gmailRateLimited),
          metric(METRIC.mailboxBusy),
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
    this.dashboard.addWidgets(
      new GraphWidget({
        title: "Successful polls per mailbox (per minute)",
        left: props.config.mailboxes.map((mailbox) =>
          metric(METRIC.pollSucceeded, {
            period: Duration.minutes(1),
            extra: { [METRIC_DIMENSION.mailbox]: mailbox.id },
            label: mailbox.id,
          }),
        ),
        width: WIDTH,
        height: HEIGHT,
      }),
      new GraphWidget({
        title: "Bytes archived (per 5 min)",
        left: [metric(METRIC.bytesArchived)],
        width: WIDTH,
        height: HEIGHT,
      }),
    );
  }
}
