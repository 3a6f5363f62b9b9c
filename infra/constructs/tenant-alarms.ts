import { ArnFormat, Duration, Stack } from "aws-cdk-lib";
import { Alarm, ComparisonOperator, type IMetric, TreatMissingData } from "aws-cdk-lib/aws-cloudwatch";
import { SnsAction } from "aws-cdk-lib/aws-cloudwatch-actions";
import { PolicyStatement, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import type { IKey } from "aws-cdk-lib/aws-kms";
import { type ITopic, Topic } from "aws-cdk-lib/aws-sns";
import { EmailSubscription } from "aws-cdk-lib/aws-sns-subscriptions";
import type { Queue } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { METRIC } from "../../shared/config/metrics";
import type { TenantConfig } from "../../shared/config/tenant-config";
import { tenantMetric } from "../tenant-metric";

/** A queued copy job older than this means the copiers are failing, throttled or far behind. */
const OLDEST_MESSAGE_SECONDS = 15 * 60;

/** PipelineDelay p95 (listed -> in Gmail) above this for 15 minutes is an alarm. */
export const PIPELINE_DELAY_TARGET_MS = 10 * 60 * 1000;

/** Gmail 429s in every 5-minute period for this long is an alarm. */
const SUSTAINED_RATE_LIMIT_PERIODS = 6;

/** TenantProblems is read in 5-minute windows; two in a row (problems, or no keeper at all) alarm. */
const PROBLEM_PERIODS = 2;

/**
 * The alarm names, after `pop2gmail-<tenant>-`. Five alarms, each reading one metric: the
 * budget of docs/deploy.md section 7 (`test/infra/cloudwatch-budget.test.ts` prices them). Each
 * is an outcome an operator acts on; the failures the earlier per-function and per-queue alarms
 * watched show up as one of these (docs/deploy.md section 6, "Alarms").
 */
export const TENANT_ALARM_NAMES = [
  "problems",
  "queue-stuck",
  "quarantined",
  "pipeline-delay",
  "gmail-rate-limited",
] as const;

export type TenantAlarmName = (typeof TENANT_ALARM_NAMES)[number];

export interface TenantAlarmsProps {
  readonly config: TenantConfig;
  readonly key: IKey;
  /** The copy-job queue: the age of its oldest message is a free SQS metric. */
  readonly workQueue: Queue;
  /** A provider-wide operations topic every alarm also goes to (given at deploy time). */
  readonly opsTopicArn?: string;
}

/**
 * The alarms an operator acts on, each sent (on ALARM and back to OK) to the tenant's encrypted
 * SNS topic, with the tenant's alarm e-mail subscribed, and to the provider's operations topic
 * when one is given. Descriptions say what to do, since they arrive by mail.
 *
 * The topic's policy lets CloudWatch publish exactly these alarms of this account (the topic
 * policy CDK writes for `enforceSSL` replaces SNS's default one, which would otherwise be the
 * only thing letting CloudWatch in), and the key policy lets CloudWatch use the topic's key for
 * the same alarms only.
 */
export class TenantAlarms extends Construct {
  readonly topic: Topic;
  readonly alarms: Alarm[] = [];
  private readonly targets: ITopic[];
  private readonly tenant: string;
  /** The alarms' names as literals (an alarm's `alarmName` attribute is a token). */
  private readonly alarmNames: string[] = [];

  constructor(scope: Construct, id: string, props: TenantAlarmsProps) {
    super(scope, id);
    const { config } = props;
    const tenant = config.tenant;
    this.tenant = tenant;
    this.topic = new Topic(this, "Topic", {
      displayName: `pop2gmail ${tenant} alarms`,
      masterKey: props.key,
      enforceSSL: true,
    });
    if (config.alarmEmail !== undefined) {
      this.topic.addSubscription(new EmailSubscription(config.alarmEmail));
    }
    this.targets = [
      this.topic,
      ...(props.opsTopicArn === undefined ? [] : [Topic.fromTopicArn(this, "OpsTopic", props.opsTopicArn)]),
    ];

    // Replaces the per-mailbox no-poll, dead-letters, failed-deletes and credentials-pop3 alarms:
    // the keeper counts each of those, once a minute, into this one metric.
    this.add("Problems", {
      name: "problems",
      description: `The tenant has open problems (the alarm value is how many), or no count arrived at all. The list-new-messages log has one "tenant problem" line per problem (Logs Insights: filter message = "tenant problem"), naming the mailbox and the cause. Mailbox not polled for 10+ minutes: the POP3 server is down, refuses TLS, stays locked (another client: Gmail's own POP fetcher?) or refuses the password (update the secret). Dead letters: read the copy-message log, fix the cause, then \`pop2gmail redrive --aws --tenant ${tenant}\`. Failed deletes: read the delete-copied log; once fixed, purge the failed-deletes queue (the next poll deletes again). No data: the keeper (the lister's once-a-minute tick) is not running: check the lister's errors and its EventBridge rule.`,
      metric: tenantMetric(tenant, METRIC.tenantProblems, { statistic: "Maximum" }),
      threshold: 1,
      periods: PROBLEM_PERIODS,
      // Zero is sent every minute: silence is exactly the failure of the keeper itself.
      missing: TreatMissingData.BREACHING,
    });

    // Replaces errors/throttles of the copier and credentials-google: a failing, throttled or
    // unauthorised copier leaves its jobs in the queue, which is what this watches.
    this.add("OldestJob", {
      name: "queue-stuck",
      description:
        "A copy job has waited over 15 minutes: the copiers fail (the copy-message log: CREDENTIALS_REJECTED means renew the Google credentials secret, see docs/deploy.md), are throttled (account concurrency), or cannot keep up. Mail is not reaching Gmail meanwhile; nothing is lost.",
      metric: props.workQueue.metricApproximateAgeOfOldestMessage({
        statistic: "Maximum",
        period: Duration.minutes(5),
      }),
      threshold: OLDEST_MESSAGE_SECONDS,
      comparison: ComparisonOperator.GREATER_THAN_THRESHOLD,
    });

    this.add("Quarantined", {
      name: "quarantined",
      description: `A message was quarantined (too large, rejected by Gmail, or failing repeatedly). It is archived in S3 and left on the POP3 server. \`pop2gmail quarantine list --aws --tenant ${tenant}\` names it and the reason; once the cause is fixed, \`pop2gmail quarantine retry --aws --tenant ${tenant}\` copies it again.`,
      metric: tenantMetric(tenant, METRIC.messagesQuarantined),
      threshold: 1,
    });

    this.add("PipelineDelay", {
      name: "pipeline-delay",
      description: `PipelineDelay p95 (listed -> in Gmail) stayed above ${PIPELINE_DELAY_TARGET_MS / 60_000} minutes for 15 minutes: mail arrives, late. Usually Gmail pushback (429s) or a maildrop other clients keep locked; the copy-message log says which.`,
      metric: tenantMetric(tenant, METRIC.pipelineDelay, { statistic: "p95" }),
      threshold: PIPELINE_DELAY_TARGET_MS,
      comparison: ComparisonOperator.GREATER_THAN_THRESHOLD,
      periods: 3,
    });

    // The one failure the others miss: a re-sent job is a new SQS message (its age starts again)
    // and a job that never completes sends no PipelineDelay, so a Gmail quota used up by someone
    // else would go unseen.
    this.add("GmailRateLimited", {
      name: "gmail-rate-limited",
      description: `For ${SUSTAINED_RATE_LIMIT_PERIODS * 5} minutes Gmail answered 429 in every 5-minute period: jobs keep being re-sent. Another client probably shares the Gmail user's quota (another import tool, a script, Gmail's own fetcher); stop it, or raise the project's quota.`,
      metric: tenantMetric(tenant, METRIC.gmailRateLimited),
      threshold: 1,
      periods: SUSTAINED_RATE_LIMIT_PERIODS,
    });

    this.allowCloudWatchToPublish(props.key);
  }

  private add(
    id: string,
    spec: {
      name: TenantAlarmName;
      description: string;
      metric: IMetric;
      threshold: number;
      comparison?: ComparisonOperator;
      periods?: number;
      missing?: TreatMissingData;
    },
  ): void {
    const periods = spec.periods ?? 1;
    const alarmName = `pop2gmail-${this.tenant}-${spec.name}`;
    this.alarmNames.push(alarmName);
    const alarm = new Alarm(this, id, {
      alarmName,
      alarmDescription: spec.description,
      metric: spec.metric,
      threshold: spec.threshold,
      comparisonOperator: spec.comparison ?? ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: periods,
      datapointsToAlarm: periods,
      treatMissingData: spec.missing ?? TreatMissingData.NOT_BREACHING,
    });
    for (const topic of this.targets) {
      const action = new SnsAction(topic);
      alarm.addAlarmAction(action);
      alarm.addOkAction(action);
    }
    this.alarms.push(alarm);
  }

  /**
   * CloudWatch may publish to the topic, and use its key, for exactly this tenant's alarms in
   * this account. The ARNs are built from the alarm names (not the alarms' attributes), so the
   * key policy does not depend on the alarms, which depend on the topic, which needs the key.
   */
  private allowCloudWatchToPublish(key: IKey): void {
    const stack = Stack.of(this);
    const alarmArns = this.alarmNames.map((alarmName) =>
      stack.formatArn({
        service: "cloudwatch",
        resource: "alarm",
        resourceName: alarmName,
        arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      }),
    );
    const conditions = {
      StringEquals: { "aws:SourceAccount": stack.account },
      ArnEquals: { "aws:SourceArn": alarmArns },
    };
    this.topic.addToResourcePolicy(
      new PolicyStatement({
        sid: "CloudWatchAlarmsOfThisTenantPublish",
        principals: [new ServicePrincipal("cloudwatch.amazonaws.com")],
        actions: ["sns:Publish"],
        resources: [this.topic.topicArn],
        conditions,
      }),
    );
    // In a key policy "*" means "this key". The actions are the ones AWS documents for
    // CloudWatch alarms publishing to an SSE-KMS topic.
    key.addToResourcePolicy(
      new PolicyStatement({
        sid: "CloudWatchAlarmsOfThisTenantUseTheTopicKey",
        principals: [new ServicePrincipal("cloudwatch.amazonaws.com")],
        actions: ["kms:Decrypt", "kms:GenerateDataKey*"],
        resources: ["*"],
        conditions,
      }),
    );
  }
}
