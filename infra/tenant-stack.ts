import { CfnOutput, Duration, Stack, type StackProps, Tags, Validations } from "aws-cdk-lib";
import {
  ApplicationLogLevel,
  type DestinationConfig,
  type IDestination,
  RecursiveLoop,
  Tracing,
} from "aws-cdk-lib/aws-lambda";
import { SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import type { CfnBucket } from "aws-cdk-lib/aws-s3";
import type { Construct } from "constructs";
import { ENV_NAMES } from "../shared/config/env";
import type { TenantConfig } from "../shared/config/tenant-config";
import { usesPollQueue } from "../shared/core/poll-chain";
import {
  archiveReadAccess,
  archiveWriteAccess,
  invokeAccess,
  keyAccess,
  ledgerAccess,
  queueDepthAccess,
  queueSendAccess,
  secretAccess,
} from "./access-statements";
import { ArchiveBucket } from "./constructs/archive-bucket";
import { LedgerTable } from "./constructs/ledger-table";
import { OnboardingUrl } from "./constructs/onboarding-url";
import { PipelineFunction } from "./constructs/pipeline-function";
import { PollSchedules } from "./constructs/poll-schedules";
import { TenantAlarms } from "./constructs/tenant-alarms";
import { TenantDashboard } from "./constructs/tenant-dashboard";
import { DEFAULT_BREAK_GLASS_ROLE_NAME, TenantKey } from "./constructs/tenant-key";
import { WorkQueues } from "./constructs/work-queues";
import { FEATURE_FLAGS } from "./feature-flags";
import { assertEnvironmentFits, functionEnvironment } from "./function-environment";
import { COPY_BATCH_SIZE, COPY_MAX_CONCURRENCY, FUNCTION_SETTINGS } from "./function-settings";
import { secretGrantArns, secretNames } from "./secret-arns";
import { STACK_OUTPUT, tenantStackId } from "./stack-outputs";

export { tenantStackId };

/** An on-failure destination given by ARN; the stack grants the send itself (no wildcard grants). */
function queueDestination(queueArn: string): IDestination {
  return { bind: (): DestinationConfig => ({ destination: queueArn }) };
}

export interface TenantStackProps extends StackProps {
  readonly config: TenantConfig;
  /** The only role that may disable or schedule deletion of the tenant key (default `pop2gmail-break-glass`). */
  readonly breakGlassRoleName?: string;
  /** A provider-wide operations topic every alarm also goes to. */
  readonly opsTopicArn?: string;
  /** The functions' lowest log level (default INFO). */
  readonly logLevel?: ApplicationLogLevel;
}

/**
 * Everything one customer needs, and nothing shared with another: key, archive bucket, ledger,
 * queues, the three functions, one keeper schedule and (with a sub-minute mailbox) a poll queue,
 * dashboard and alarms. Env-agnostic
 * (no account lookups), so `cdk synth` works offline without credentials.
 */
export class TenantStack extends Stack {
  readonly config: TenantConfig;
  readonly lister: PipelineFunction;
  readonly copier: PipelineFunction;
  readonly deleter: PipelineFunction;
  /** The onboarding pages behind a Function URL; absent when no mailbox uses OAuth. */
  readonly onboarding: OnboardingUrl | undefined;

  constructor(scope: Construct, props: TenantStackProps) {
    const { config } = props;
    super(scope, tenantStackId(config.tenant), {
      description: `pop2gmail for tenant ${config.tenant}: POP3 -> S3 archive -> Gmail`,
      ...props,
    });
    // Set on the stack, before any child exists, so the stack behaves the same in any App.
    for (const [flag, value] of Object.entries(FEATURE_FLAGS)) this.node.setContext(flag, value);
    this.config = config;
    Tags.of(this).add("pop2gmail:tenant", config.tenant);

    const { key } = new TenantKey(this, "Key", {
      tenant: config.tenant,
      breakGlassRoleName: props.breakGlassRoleName ?? DEFAULT_BREAK_GLASS_ROLE_NAME,
    });
    const logLevel = props.logLevel ?? ApplicationLogLevel.INFO;
    const archive = new ArchiveBucket(this, "Archive", { archive: config.archive, key });
    const ledger = new LedgerTable(this, "Ledger", { key });
    const queues = new WorkQueues(this, "Queues", {
      key,
      consumerTimeout: FUNCTION_SETTINGS.copyMessage.timeout,
      pollerTimeout: FUNCTION_SETTINGS.listNewMessages.timeout,
      withPollQueue: usesPollQueue(config.mailboxes),
    });

    // Each function's bundle carries the validated config (PipelineFunction, docs/deploy.md section 2).
    const tenantConfigJson = JSON.stringify(config);
    const environment = functionEnvironment(config, {
      ledgerTableName: ledger.table.tableName,
      archiveBucketName: archive.bucket.bucketName,
      archiveKeyArn: key.keyArn,
      workQueueUrl: queues.queue.queueUrl,
    });

    this.deleter = new PipelineFunction(this, "DeleteCopied", {
      ...FUNCTION_SETTINGS.deleteCopied,
      description: `pop2gmail ${config.tenant}: DELE messages safely archived and imported`,
      environment,
      tenantConfigJson,
      logLevel,
      // A missed delete is picked up by the next poll's due-delete check; one retry is enough,
      // and a pass that still fails lands in the failed-deletes queue, which is alarmed.
      asyncRetryAttempts: 1,
      asyncMaxEventAge: Duration.minutes(10),
      onFailure: queueDestination(queues.failedDeletes.queueArn),
    });
    const listerEnvironment = {
      ...environment,
      [ENV_NAMES.deleteFunctionName]: this.deleter.function.functionName,
      // The poll chains and the keeper's problem count (docs/lambda-handlers.md "Sub-minute polling").
      ...(queues.pollQueue === undefined ? {} : { [ENV_NAMES.pollQueueUrl]: queues.pollQueue.queueUrl }),
      [ENV_NAMES.deadLetterQueueUrl]: queues.deadLetterQueue.queueUrl,
      [ENV_NAMES.failedDeletesQueueUrl]: queues.failedDeletes.queueUrl,
    };
    this.lister = new PipelineFunction(this, "ListNewMessages", {
      ...FUNCTION_SETTINGS.listNewMessages,
      description: `pop2gmail ${config.tenant}: poll POP3 and enqueue new messages`,
      environment: listerEnvironment,
      tenantConfigJson,
      logLevel,
      // The keeper ticks again next minute; a retried tick would only overlap it.
      asyncRetryAttempts: 0,
      asyncMaxEventAge: Duration.minutes(1),
      // A trace per poll was the largest line of a mailbox's cost (docs/deploy.md section 7);
      // to diagnose, turn it on in the console (docs/deploy.md section 7, "Tracing").
      tracing: Tracing.DISABLED,
      // lister -> poll queue -> lister is a loop by design: Lambda's recursive loop detection
      // would stop each chain after ~16 polls (docs/lambda-handlers.md "Sub-minute polling").
      recursiveLoop: RecursiveLoop.ALLOW,
    });
    this.copier = new PipelineFunction(this, "CopyMessage", {
      ...FUNCTION_SETTINGS.copyMessage,
      description: `pop2gmail ${config.tenant}: POP3 RETR -> S3 -> Gmail import`,
      environment,
      tenantConfigJson,
      logLevel,
      asyncRetryAttempts: 0,
      asyncMaxEventAge: Duration.minutes(1),
    });
    // Every function gets the archive bucket and key: the lister copies for a LOGIN-DELAY server.
    // The lister's environment is the largest (the others lack DELETE_FUNCTION_NAME).
    assertEnvironmentFits(config.tenant, listerEnvironment);

    const secrets = secretNames(config);
    const pop3SecretArns = secretGrantArns(this, config.tenant, secrets.pop3, secrets.all);
    const googleSecretArns = secretGrantArns(this, config.tenant, secrets.google, secrets.all);
    const ledgerStatement = ledgerAccess(ledger.table.tableArn, ledger.stateIndexArn);
    const keyStatement = keyAccess(key.keyArn);

    const copierAccess = [
      ledgerStatement,
      keyStatement,
      // Copy jobs; busy or rate-limited jobs are re-sent with a delay.
      queueSendAccess(queues.queue.queueArn),
      ...archiveWriteAccess(archive.bucket.bucketArn, config.tenant),
      ...secretAccess("Pop3Passwords", pop3SecretArns, config.tenant),
      ...secretAccess("GoogleCredentials", googleSecretArns, config.tenant),
    ];
    this.copier.allow(...copierAccess);
    // The lister is a copier too: a server that announces a long LOGIN-DELAY refuses the copier's
    // own login, so the lister copies and deletes in its one session (docs/pipeline.md "Login
    // delay and UTF8"). Whether a server does is known only when it answers, so it always holds
    // the copier's grants, for this tenant only; it never deletes archive objects either.
    this.lister.allow(
      ...copierAccess,
      invokeAccess(this.deleter.function.functionArn),
      // The next poll message of a chain; the keeper's look at the two queues that hold failures.
      ...(queues.pollQueue === undefined
        ? []
        : [queueSendAccess(queues.pollQueue.queueArn, "PollQueueSend")]),
      queueDepthAccess([queues.deadLetterQueue.queueArn, queues.failedDeletes.queueArn]),
    );
    this.deleter.allow(
      ledgerStatement,
      keyStatement,
      ...archiveReadAccess(archive.bucket.bucketArn, config.tenant),
      ...secretAccess("Pop3Passwords", pop3SecretArns, config.tenant),
      // Lambda delivers a failed asynchronous invocation with the function's own role.
      queueSendAccess(queues.failedDeletes.queueArn, "FailedDeletesSend"),
    );

    // The onboarding pages, for tenants with consumer-Gmail (OAuth) mailboxes: Workspace
    // mailboxes use domain-wide delegation and need no link (docs/onboarding.md).
    if (config.mailboxes.some((m) => m.gmail.auth === "oauth")) {
      this.onboarding = new OnboardingUrl(this, "OnboardingPages", {
        config,
        tenantConfigJson,
        ledgerTableName: ledger.table.tableName,
        ledgerStateIndexArn: ledger.stateIndexArn,
        ledgerTableArn: ledger.table.tableArn,
        keyArn: key.keyArn,
        logLevel,
      });
    }

    this.copier.function.addEventSource(
      new SqsEventSource(queues.queue, {
        batchSize: COPY_BATCH_SIZE,
        reportBatchItemFailures: true,
        maxConcurrency: COPY_MAX_CONCURRENCY,
      }),
    );
    new PollSchedules(this, "Schedules", { lister: this.lister.function, pollQueue: queues.pollQueue });

    const functions = {
      "list-new-messages": this.lister.function,
      "copy-message": this.copier.function,
      "delete-copied": this.deleter.function,
    };
    const alarms = new TenantAlarms(this, "Alarms", {
      config,
      key,
      ...(props.opsTopicArn === undefined ? {} : { opsTopicArn: props.opsTopicArn }),
    });
    // Optional ($3 a month): the provider stack's fleet dashboard shows every tenant.
    if (config.dashboard === true) {
      new TenantDashboard(this, "Dashboard", {
        config,
        functions,
        logGroupNames: [this.lister, this.copier, this.deleter].map((f) => f.logGroup.logGroupName),
        workQueue: queues.queue,
        deadLetterQueue: queues.deadLetterQueue,
        failedDeletes: queues.failedDeletes,
        alarms: alarms.alarms,
      });
    }

    // What `pop2gmail status|redrive|quarantine --aws` reads with DescribeStacks. No exportName:
    // an export would let another stack depend on this tenant's resources and pin them.
    const outputs: [string, string, string][] = [
      [STACK_OUTPUT.ledgerTableName, ledger.table.tableName, "The ledger table (DynamoDB)"],
      [STACK_OUTPUT.workQueueUrl, queues.queue.queueUrl, "The copy-job queue (SQS)"],
      [STACK_OUTPUT.deadLetterQueueUrl, queues.deadLetterQueue.queueUrl, "The copy-job dead-letter queue"],
      [STACK_OUTPUT.archiveBucketName, archive.bucket.bucketName, "The archive bucket (S3)"],
    ];
    for (const [id, value, description] of outputs) new CfnOutput(this, id, { value, description });

    this.acknowledgeJustifiedFindings(archive.bucket.node.defaultChild as CfnBucket);
  }

  /** cdk-nag findings that are deliberate, each with the reason. */
  private acknowledgeJustifiedFindings(archiveBucket: CfnBucket): void {
    const bucketLogicalId = this.resolve(archiveBucket.logicalId) as string;
    for (const fn of [this.lister, this.copier, this.deleter]) {
      Validations.of(fn.role).acknowledge({
        id: `AwsSolutions-IAM5[Resource::<${bucketLogicalId}.Arn>/${this.config.tenant}/*]`,
        reason:
          "This tenant's objects in its own archive bucket: one key per message (<tenant>/<mailbox>/<uidl>.eml, archiveKeyFor), unknown until the message arrives.",
      });
    }
    // Per role, with the exact finding, so any other wildcard is still reported. The lister is
    // not traced (so its role has no X-Ray statement).
    for (const fn of [this.copier, this.deleter]) {
      Validations.of(fn.role).acknowledge({
        id: "AwsSolutions-IAM5[Resource::*]",
        reason:
          "X-Ray active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions, so AWS requires Resource '*' for them (and only them).",
      });
    }
  }
}
