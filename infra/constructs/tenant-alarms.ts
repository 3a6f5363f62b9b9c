import { ArnFormat, Stack } from "aws-cdk-lib";
import { Alarm, ComparisonOperator, type IMetric, TreatMissingData } from "aws-cdk-lib/aws-cloudwatch";
import { SnsAction } from "aws-cdk-lib/aws-cloudwatch-actions";
import { PolicyStatement, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import type { IKey } from "aws-cdk-lib/aws-kms";
import { type ITopic, Topic } from "aws-cdk-lib/aws-sns";
import { EmailSubscription } from "aws-cdk-lib/aws-sns-subscriptions";
import { Construct } from "constructs";
import { METRIC } from "../../shared/config/metrics";
import type { TenantConfig } from "../../shared/config/tenant-config";
import { tenantMetric } from "../tenant-metric";

/** TenantProblems is read in 5-minute windows; two in a row (problems, or no keeper at all) alarm. */
const PROBLEM_PERIODS = 2;

/**
 * The alarm names, after `pop2gmail-<tenant>-`. One alarm reading one metric: the budget of
 * docs/deploy.md section 7 (`test/infra/cloudwatch-budget.test.ts` prices it). `problems` is
 * every outcome the keeper counts (shared/core/tenant-problems.ts: mail not in Gmail 15 minutes
 * after listing whatever held it, a quarantine, a mailbox not polled, refused credentials, dead
 * letters, failed deletes) and the keeper's own silence (missing data breaches). The earlier
 * `pipeline-delay` alarm (PipelineDelay p95 above 10 minutes for 15 minutes) is gone: mail that
 * late is mail not in Gmail 15 minutes after listing, which `problems` counts per mailbox
 * already, and a dead keeper breaches `problems` itself. The failures the earlier per-function,
 * per-queue, `queue-stuck`, `quarantined` and `gmail-rate-limited` alarms watched show up there
 * too (docs/deploy.md section 6).
 */
export const TENANT_ALARM_NAMES = ["problems"] as const;

export type TenantAlarmName = (typeof TENANT_ALARM_NAMES)[number];

export interface TenantAlarmsProps {
  readonly config: TenantConfig;
  readonly key: IKey;
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

    // Replaces the per-mailbox no-poll, dead-letters, failed-deletes, credentials-pop3,
    // queue-stuck, quarantined and gmail-rate-limited alarms: the keeper counts each of those
    // outcomes, once a minute, into this one metric (docs/pipeline.md "What counts as a tenant
    // problem").
    this.add("Problems", {
      name: "problems",
      description: `The tenant has open problems (the alarm value is how many), or no count arrived at all. The list-new-messages log has one "tenant problem" line per problem (Logs Insights: filter message = "tenant problem") naming the mailbox, the cause and what to do. mail-stuck: mail listed 15+ minutes ago is not in Gmail (copy-message log: renew the Google credentials, another client using the Gmail quota, Lambda throttles). quarantined: \`pop2gmail quarantine list --aws --tenant ${tenant}\`. not-polled / credentials: the POP3 server is down, locked or refuses the password. dead-letters: fix, then \`pop2gmail redrive --aws --tenant ${tenant}\`. failed-deletes: read the delete-copied log, then purge that queue. No data: the keeper (the lister's once-a-minute tick) is not running: check the lister's errors and its schedule.`,
      metric: tenantMetric(tenant, METRIC.tenantProblems, { statistic: "Maximum" }),
      threshold: 1,
      periods: PROBLEM_PERIODS,
      // Zero is sent every minute: silence is exactly the failure of the keeper itself.
      missing: TreatMissingData.BREACHING,
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
