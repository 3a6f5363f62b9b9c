import { Duration } from "aws-cdk-lib";
import { Alarm, ComparisonOperator, TreatMissingData } from "aws-cdk-lib/aws-cloudwatch";
import { SnsAction } from "aws-cdk-lib/aws-cloudwatch-actions";
import type { IKey } from "aws-cdk-lib/aws-kms";
import { Topic } from "aws-cdk-lib/aws-sns";
import { EmailSubscription } from "aws-cdk-lib/aws-sns-subscriptions";
import type { Queue } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { CREDENTIAL_SERVICES, METRIC, METRIC_DIMENSION } from "../../shared/config/metrics";
import type { TenantConfig } from "../../shared/config/tenant-config";
import { tenantMetric } from "../tenant-metric";

/** The shortest silence that counts as "no successful poll" (DESIGN: mail within a minute). */
const NO_POLL_MINUTES = 10;

/** A queued job older than this means the copiers are stuck or far behind. */
const OLDEST_MESSAGE_SECONDS = 15 * 60;

export interface TenantAlarmsProps {
  readonly config: TenantConfig;
  readonly key: IKey;
  readonly workQueue: Queue;
  readonly deadLetterQueue: Queue;
}

/**
 * The alarms an operator acts on, each sent (on ALARM and back to OK) to an encrypted SNS topic
 * with the tenant's alarm e-mail subscribed. Descriptions say what to do, since they arrive by mail.
 */
export class TenantAlarms extends Construct {
  readonly topic: Topic;
  readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: TenantAlarmsProps) {
    super(scope, id);
    const { config } = props;
    const tenant = config.tenant;
    this.topic = new Topic(this, "Topic", {
      displayName: `pop2gmail ${tenant} alarms`,
      masterKey: props.key,
      enforceSSL: true,
    });
    if (config.alarmEmail !== undefined) {
      this.topic.addSubscription(new EmailSubscription(config.alarmEmail));
    }

    this.add(
      new Alarm(this, "DeadLetters", {
        alarmName: `pop2gmail-${tenant}-dead-letters`,
        alarmDescription:
          "Copy jobs failed 5 receives and sit in the dead-letter queue. Read the copy-message log for their UIDLs; after fixing the cause, redrive the DLQ from the SQS console.",
        metric: props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
          statistic: "Maximum",
          period: Duration.minutes(5),
        }),
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      }),
    );

    config.mailboxes.forEach((mailbox, index) => {
      // A mailbox polled less often than every 5 minutes gets twice its interval of silence.
      const minutes = Math.max(NO_POLL_MINUTES, Math.ceil((2 * mailbox.pollSeconds) / 60));
      this.add(
        new Alarm(this, `NoPoll${index}`, {
          alarmName: `pop2gmail-${tenant}-no-poll-${mailbox.id}`,
          alarmDescription: `No successful POP3 poll of ${mailbox.id} for ${minutes} minutes: mail is not flowing. Check the list-new-messages log (server down, TLS, busy maildrop, credentials).`,
          metric: tenantMetric(tenant, METRIC.pollSucceeded, {
            period: Duration.minutes(1),
            extra: { [METRIC_DIMENSION.mailbox]: mailbox.id },
          }),
          threshold: 1,
          comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD,
          evaluationPeriods: minutes,
          datapointsToAlarm: minutes,
          // No datapoint at all is exactly the failure this alarm exists for.
          treatMissingData: TreatMissingData.BREACHING,
        }),
      );
    });

    for (const service of CREDENTIAL_SERVICES) {
      this.add(
        new Alarm(this, `CredentialsBroken-${service}`, {
          alarmName: `pop2gmail-${tenant}-credentials-${service}`,
          alarmDescription:
            service === "pop3"
              ? "The POP3 server refused the password. Update the secret named in the tenant config (aws secretsmanager put-secret-value)."
              : "Google refused the token or service-account key (revoked, expired, or the app is still in Testing). Renew the Google credentials secret; see docs/deploy.md.",
          metric: tenantMetric(tenant, METRIC.credentialsBroken, {
            extra: { [METRIC_DIMENSION.remoteService]: service },
          }),
          threshold: 1,
          comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          evaluationPeriods: 1,
          treatMissingData: TreatMissingData.NOT_BREACHING,
        }),
      );
    }

    this.add(
      new Alarm(this, "OldestJob", {
        alarmName: `pop2gmail-${tenant}-queue-stuck`,
        alarmDescription:
          "A copy job has waited over 15 minutes: copiers are failing, throttled, or Gmail keeps rate-limiting. Check copy-message errors and the GmailRateLimited metric.",
        metric: props.workQueue.metricApproximateAgeOfOldestMessage({
          statistic: "Maximum",
          period: Duration.minutes(5),
        }),
        threshold: OLDEST_MESSAGE_SECONDS,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      }),
    );

    this.add(
      new Alarm(this, "Quarantined", {
        alarmName: `pop2gmail-${tenant}-quarantined`,
        alarmDescription:
          "A message was quarantined (too large, rejected by Gmail, or failing repeatedly). It is archived in S3 and left on the POP3 server; the copy-message log names it and the reason.",
        metric: tenantMetric(tenant, METRIC.messagesQuarantined),
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      }),
    );
  }

  private add(alarm: Alarm): void {
    const action = new SnsAction(this.topic);
    alarm.addAlarmAction(action);
    alarm.addOkAction(action);
    this.alarms.push(alarm);
  }
}
