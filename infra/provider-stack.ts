import { ArnFormat, CfnOutput, Duration, RemovalPolicy, Stack, type StackProps, Tags } from "aws-cdk-lib";
import {
  Dashboard,
  GraphWidget,
  type IMetric,
  MathExpression,
  TableWidget,
  TextWidget,
} from "aws-cdk-lib/aws-cloudwatch";
import { PolicyStatement, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Key } from "aws-cdk-lib/aws-kms";
import { Topic } from "aws-cdk-lib/aws-sns";
import { EmailSubscription } from "aws-cdk-lib/aws-sns-subscriptions";
import type { Construct } from "constructs";
import { METRIC, METRIC_DIMENSION, METRIC_NAMESPACE, type MetricName } from "../shared/config/metrics";
import { FEATURE_FLAGS } from "./feature-flags";
import {
  FLEET_DASHBOARD_NAME,
  OPS_TOPIC_NAME,
  PROVIDER_STACK_ID,
  TENANT_ALARM_PREFIX,
} from "./provider-names";
import { tenantStackId } from "./stack-outputs";

export interface ProviderStackProps extends StackProps {
  /** An address subscribed to the operations topic (it must confirm the subscription once). */
  readonly opsEmail?: string;
}

/** How many tenants a "worst N" graph shows; the table shows every tenant SEARCH returns (<= 500). */
const WORST = 20;

/** Every tenant stack is `Pop2Gmail-<tenant>`, and CloudFormation names its queues and functions after it. */
const STACK_NAME_TOKEN = tenantStackId("").replace(/-$/, "");

/**
 * The provider's own stack, one per AWS account and region (docs/deploy.md section 10):
 *
 * - the operations topic `pop2gmail-ops` that every tenant's alarms also go to (tenant stacks
 *   name it by ARN, `-c provider=true`; no cross-stack export, so no tenant pins it), encrypted
 *   with a key of its own (the AWS-managed SNS key cannot be used by CloudWatch, whose service
 *   principal its fixed key policy does not admit), SSL enforced, with an optional e-mail;
 * - the fleet dashboard `pop2gmail-fleet`, built only from SEARCH expressions, so a tenant deployed
 *   later shows up without redeploying this stack.
 *
 * It holds no tenant data and nothing a tenant stack depends on at deploy time.
 */
export class ProviderStack extends Stack {
  readonly topic: Topic;
  readonly dashboard: Dashboard;

  constructor(scope: Construct, props: ProviderStackProps = {}) {
    super(scope, PROVIDER_STACK_ID, {
      description: "pop2gmail provider: operations topic for every tenant's alarms, fleet dashboard",
      ...props,
    });
    for (const [flag, value] of Object.entries(FEATURE_FLAGS)) this.node.setContext(flag, value);
    Tags.of(this).add("pop2gmail:provider", "true");

    // Which alarms may publish: any `pop2gmail-*` alarm of this account and region, i.e. every
    // tenant's, including tenants deployed after this stack.
    const conditions = {
      StringEquals: { "aws:SourceAccount": this.account },
      ArnLike: {
        "aws:SourceArn": this.formatArn({
          service: "cloudwatch",
          resource: "alarm",
          resourceName: `${TENANT_ALARM_PREFIX}*`,
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        }),
      },
    };
    const key = new Key(this, "OpsTopicKey", {
      description: "pop2gmail provider: the operations topic's messages",
      enableKeyRotation: true,
      // The key protects notifications in transit only; nothing stays encrypted under it.
      removalPolicy: RemovalPolicy.DESTROY,
      pendingWindow: Duration.days(7),
    });
    // In a key policy "*" means "this key". The actions are the ones AWS documents for
    // CloudWatch alarms publishing to an SSE-KMS topic.
    key.addToResourcePolicy(
      new PolicyStatement({
        sid: "CloudWatchAlarmsOfTheFleetUseTheTopicKey",
        principals: [new ServicePrincipal("cloudwatch.amazonaws.com")],
        actions: ["kms:Decrypt", "kms:GenerateDataKey*"],
        resources: ["*"],
        conditions,
      }),
    );
    this.topic = new Topic(this, "OpsTopic", {
      topicName: OPS_TOPIC_NAME,
      displayName: "pop2gmail fleet alarms",
      masterKey: key,
      enforceSSL: true,
    });
    // The policy CDK writes for enforceSSL replaces SNS's default one: CloudWatch needs its own grant.
    this.topic.addToResourcePolicy(
      new PolicyStatement({
        sid: "CloudWatchAlarmsOfTheFleetPublish",
        principals: [new ServicePrincipal("cloudwatch.amazonaws.com")],
        actions: ["sns:Publish"],
        resources: [this.topic.topicArn],
        conditions,
      }),
    );
    if (props.opsEmail !== undefined) this.topic.addSubscription(new EmailSubscription(props.opsEmail));

    this.dashboard = fleetDashboard(this);

    new CfnOutput(this, "OpsTopicArn", {
      value: this.topic.topicArn,
      description: "Every tenant alarm also goes here (tenant stacks deployed with -c provider=true)",
    });
    new CfnOutput(this, "FleetDashboardName", {
      value: FLEET_DASHBOARD_NAME,
      description: "The CloudWatch dashboard of every tenant",
    });
  }
}

/** `SEARCH` over one pipeline metric of every tenant (exact dimension set: service, Tenant). */
export function tenantSearch(metric: MetricName, statistic: string, periodSeconds: number): string {
  const schema = `{${METRIC_NAMESPACE},${METRIC_DIMENSION.service},${METRIC_DIMENSION.tenant}}`;
  return `SEARCH('${schema} MetricName="${metric}"', '${statistic}', ${periodSeconds})`;
}

function expression(text: string, label: string, periodSeconds: number): IMetric {
  return new MathExpression({
    expression: text,
    usingMetrics: {},
    label,
    period: Duration.seconds(periodSeconds),
  });
}

/**
 * The fleet dashboard. Metric math over SEARCH results: SORT puts the worst tenants first and
 * keeps `WORST` of them on the graphs. A SEARCH returns at most 500 time series: past 500 tenants
 * the table shows 500 of them (the graphs, sorted, still show the worst).
 */
function fleetDashboard(scope: Construct): Dashboard {
  const dashboard = new Dashboard(scope, "FleetDashboard", {
    dashboardName: FLEET_DASHBOARD_NAME,
    defaultInterval: Duration.hours(3),
  });
  const problems = tenantSearch(METRIC.tenantProblems, "Maximum", 60);
  // Queue and function names are generated by CloudFormation from the stack name and the
  // logical id (`Pop2Gmail-<tenant>-QueuesWork4F2460A8-…`). SEARCH splits names into tokens at
  // capitals, digits and punctuation, and a term such as `QueuesWork` matches those tokens in a
  // row, case-sensitively: so the terms pick every tenant's work queue (not its dead-letter,
  // failed-deletes or poll queue) and every tenant stack's functions.
  const backlog = `SEARCH('{AWS/SQS,QueueName} MetricName="ApproximateNumberOfMessagesVisible" ${STACK_NAME_TOKEN} QueuesWork', 'Maximum', 300)`;
  const errors = `SEARCH('{AWS/Lambda,FunctionName} MetricName="Errors" ${STACK_NAME_TOKEN}', 'Sum', 300)`;
  dashboard.addWidgets(
    new TextWidget({
      markdown: [
        "# pop2gmail fleet",
        "Every deployed tenant, found by SEARCH (a new tenant appears with its first datapoint).",
        `**TenantProblems** is each tenant's count of open problems, sent once a minute: 0 is healthy, a gap means its keeper is not running. Alarms go to SNS \`${OPS_TOPIC_NAME}\`.`,
        "From a shell: `pop2gmail fleet status` lists every tenant with its alarms; `pop2gmail status --aws --tenant T` drills into one.",
      ].join("\n\n"),
      width: 24,
      height: 3,
    }),
  );
  dashboard.addWidgets(
    new TableWidget({
      title: "Tenants by health: TenantProblems (worst first; 0 = healthy)",
      metrics: [expression(`SORT(${problems}, MAX, DESC)`, "", 60)],
      width: 12,
      height: 8,
    }),
    new GraphWidget({
      title: `Tenants with problems (worst ${WORST})`,
      left: [expression(`SORT(${problems}, MAX, DESC, ${WORST})`, "", 60)],
      width: 12,
      height: 8,
    }),
  );
  dashboard.addWidgets(
    new GraphWidget({
      title: `PipelineDelay p95, ms (worst ${WORST} tenants)`,
      left: [
        expression(`SORT(${tenantSearch(METRIC.pipelineDelay, "p95", 300)}, MAX, DESC, ${WORST})`, "", 300),
      ],
      width: 12,
      height: 6,
    }),
    new GraphWidget({
      title: `Work-queue backlog, messages visible (worst ${WORST} queues)`,
      left: [expression(`SORT(${backlog}, MAX, DESC, ${WORST})`, "", 300)],
      width: 12,
      height: 6,
    }),
  );
  dashboard.addWidgets(
    new GraphWidget({
      title: `Messages quarantined per hour (worst ${WORST} tenants)`,
      left: [
        expression(
          `SORT(${tenantSearch(METRIC.messagesQuarantined, "Sum", 3600)}, SUM, DESC, ${WORST})`,
          "",
          3600,
        ),
      ],
      width: 12,
      height: 6,
    }),
    new GraphWidget({
      title: `Lambda errors per 5 min (worst ${WORST} functions)`,
      left: [expression(`SORT(${errors}, SUM, DESC, ${WORST})`, "", 300)],
      width: 12,
      height: 6,
    }),
  );
  return dashboard;
}
