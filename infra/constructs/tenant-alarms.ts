import { ArnFormat, Duration, Stack } from "aws-cdk-lib";
import {
  Alarm,
  ComparisonOperator,
  type IMetric,
  MathExpression,
  TreatMissingData,
} from "aws-cdk-lib/aws-cloudwatch";
import { SnsAction } from "aws-cdk-lib/aws-cloudwatch-actions";
import { PolicyStatement, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import type { IKey } from "aws-cdk-lib/aws-kms";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import { type ITopic, Topic } from "aws-cdk-lib/aws-sns";
import { EmailSubscription } from "aws-cdk-lib/aws-sns-subscriptions";
import type { Queue } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { CREDENTIAL_SERVICES, METRIC, METRIC_DIMENSION } from "../../shared/config/metrics";
import type { TenantConfig } from "../../shared/config/tenant-config";
import { mailboxConstructId } from "../mailbox-construct-id";
import { tenantMetric } from "../tenant-metric";

/** The shortest silence that counts as "no successful poll" (DESIGN: mail within a minute). */
const NO_POLL_MINUTES = 10;

/** A queued job older than this means the copiers are stuck or far behind. */
const OLDEST_MESSAGE_SECONDS = 15 * 60;

/** PipelineDelay p95 (listed -> in Gmail) above this for 15 minutes is an alarm. */
export const PIPELINE_DELAY_TARGET_MS = 10 * 60 * 1000;

/** Pushback (Gmail 429, busy maildrop) in every 5-minute period for this long is an alarm. */
const SUSTAINED_PUSHBACK_PERIODS = 6;

/** Imports without a single delete for this many 15-minute periods: deletes are lagging. */
const DELETES_LAGGING_PERIODS = 3;

export interface TenantAlarmsProps {
  readonly config: TenantConfig;
  readonly key: IKey;
  readonly workQueue: Queue;
  readonly deadLetterQueue: Queue;
  readonly failedDeletes: Queue;
  /** The pipeline functions by folder name: errors, throttles and dropped async events each. */
  readonly functions: Readonly<Record<string, IFunction>>;
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

    this.add("DeadLetters", {
      name: "dead-letters",
      description:
        "Copy jobs failed 5 receives and sit in the dead-letter queue. Read the copy-message log for their UIDLs; after fixing the cause, run `pop2gmail redrive --aws --tenant <tenant>`.",
      metric: props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        statistic: "Maximum",
        period: Duration.minutes(5),
      }),
      threshold: 1,
    });

    for (const mailbox of config.mailboxes) {
      // A mailbox polled less often than every 5 minutes gets twice its interval of silence.
      const minutes = Math.max(NO_POLL_MINUTES, Math.ceil((2 * mailbox.pollSeconds) / 60));
      this.add(mailboxConstructId("NoPoll", mailbox.id), {
        name: `no-successful-poll-${mailbox.id}`,
        description: `No successful POP3 poll of ${mailbox.id} for ${minutes} minutes: mail is not flowing. Check the list-new-messages log (server down, TLS, busy maildrop, credentials).`,
        metric: tenantMetric(tenant, METRIC.pollSucceeded, {
          period: Duration.minutes(1),
          extra: { [METRIC_DIMENSION.mailbox]: mailbox.id },
        }),
        threshold: 1,
        comparison: ComparisonOperator.LESS_THAN_THRESHOLD,
        periods: minutes,
        // No datapoint at all is exactly the failure this alarm exists for.
        missing: TreatMissingData.BREACHING,
      });
    }

    for (const service of CREDENTIAL_SERVICES) {
      this.add(`CredentialsBroken-${service}`, {
        name: `credentials-${service}`,
        description:
          service === "pop3"
            ? "The POP3 server refused the password. Update the secret named in the tenant config (aws secretsmanager put-secret-value)."
            : "Google refused the token or service-account key (revoked, expired, or the app is still in Testing). Renew the Google credentials secret; see docs/deploy.md.",
        metric: tenantMetric(tenant, METRIC.credentialsBroken, {
          extra: { [METRIC_DIMENSION.remoteService]: service },
        }),
        threshold: 1,
      });
    }

    this.add("OldestJob", {
      name: "queue-stuck",
      description:
        "A copy job has waited over 15 minutes: copiers are failing, throttled, or Gmail keeps rate-limiting. Check copy-message errors and the GmailRateLimited metric.",
      metric: props.workQueue.metricApproximateAgeOfOldestMessage({
        statistic: "Maximum",
        period: Duration.minutes(5),
      }),
      threshold: OLDEST_MESSAGE_SECONDS,
      comparison: ComparisonOperator.GREATER_THAN_THRESHOLD,
    });

    this.add("Quarantined", {
      name: "quarantined",
      description:
        "A message was quarantined (too large, rejected by Gmail, or failing repeatedly). It is archived in S3 and left on the POP3 server; the copy-message log names it and the reason.",
      metric: tenantMetric(tenant, METRIC.messagesQuarantined),
      threshold: 1,
    });

    for (const [name, fn] of Object.entries(props.functions)) {
      const fifteenMinutes = { statistic: "Sum", period: Duration.minutes(15) };
      this.add(`Errors-${name}`, {
        name: `errors-${name}`,
        description: `${name} failed 3 or more invocations in 15 minutes (a crash, a timeout, or an error it does not handle). Read its log group.`,
        metric: fn.metricErrors(fifteenMinutes),
        threshold: 3,
      });
      this.add(`Throttles-${name}`, {
        name: `throttles-${name}`,
        description: `Lambda throttled ${name} in 15 minutes: the account's concurrency is exhausted (other functions?) or a reserved concurrency is too low. Polls, copies or deletes are waiting.`,
        metric: fn.metricThrottles(fifteenMinutes),
        threshold: 1,
      });
      this.add(`AsyncEventsDropped-${name}`, {
        name: `async-events-dropped-${name}`,
        description: `Lambda dropped asynchronous invocations of ${name} (too old or out of retries). For the lister a poll was lost; for delete-copied a delete pass (see the failed-deletes queue).`,
        metric: fn.metric("AsyncEventsDropped", fifteenMinutes),
        threshold: 1,
      });
    }

    this.add("FailedDeletes", {
      name: "failed-deletes",
      description:
        "A delete-copied pass failed all its attempts and sits in the failed-deletes queue: copied messages stay on the POP3 server. Read the delete-copied log; the next poll starts a new pass once the cause is fixed, then purge the queue.",
      metric: props.failedDeletes.metricApproximateNumberOfMessagesVisible({
        statistic: "Maximum",
        period: Duration.minutes(5),
      }),
      threshold: 1,
    });

    // Only where every mailbox deletes at once: with `never` or `Nd`, imports without deletes are normal.
    if (config.mailboxes.every((m) => m.deleteAfter === "immediately")) {
      const period = Duration.minutes(15);
      this.add("DeletesLagging", {
        name: "deletes-lagging",
        description: `Messages were imported but none deleted from the POP3 server for ${DELETES_LAGGING_PERIODS * 15} minutes. Check the delete-copied log and the failed-deletes queue; the server fills up meanwhile.`,
        metric: new MathExpression({
          expression: "IF(FILL(imported, 0) > 0 AND FILL(deleted, 0) == 0, 1, 0)",
          usingMetrics: {
            imported: tenantMetric(tenant, METRIC.messagesImported, { period }),
            deleted: tenantMetric(tenant, METRIC.messagesDeleted, { period }),
          },
          period,
          label: "imports without deletes",
        }),
        threshold: 1,
        periods: DELETES_LAGGING_PERIODS,
      });
    }

    this.add("PipelineDelay", {
      name: "pipeline-delay",
      description: `PipelineDelay p95 (listed -> in Gmail) stayed above ${PIPELINE_DELAY_TARGET_MS / 60_000} minutes for 15 minutes. Check Gmail 429s, the work queue and copy-message errors.`,
      metric: tenantMetric(tenant, METRIC.pipelineDelay, { statistic: "p95" }),
      threshold: PIPELINE_DELAY_TARGET_MS,
      comparison: ComparisonOperator.GREATER_THAN_THRESHOLD,
      periods: 3,
    });

    // Re-sent jobs are new messages to SQS, which resets the queue-age alarm: watch the cause too.
    for (const [constructId, name, metricName, what] of [
      ["GmailRateLimited", "gmail-rate-limited", METRIC.gmailRateLimited, "Gmail answered 429"],
      [
        "MailboxBusy",
        "mailbox-busy",
        METRIC.mailboxBusy,
        "the POP3 maildrop was locked (IN-USE/LOGIN-DELAY)",
      ],
    ] as const) {
      this.add(constructId, {
        name,
        description: `For ${SUSTAINED_PUSHBACK_PERIODS * 5} minutes ${what} in every 5-minute period: jobs keep being re-sent. Another client may share the Gmail quota or hold the maildrop (Gmail's own POP fetcher?).`,
        metric: tenantMetric(tenant, metricName),
        threshold: 1,
        periods: SUSTAINED_PUSHBACK_PERIODS,
      });
    }

    this.allowCloudWatchToPublish(props.key);
  }

  private add(
    id: string,
    spec: {
      name: string;
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
