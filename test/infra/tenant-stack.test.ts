import { Match, type Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, it } from "vitest";
import { NONCURRENT_VERSION_DAYS } from "../../infra/constructs/archive-bucket";
import { ONBOARDING_URL_OUTPUT } from "../../infra/constructs/onboarding-url";
import { TENANT_ALARM_NAMES } from "../../infra/constructs/tenant-alarms";
import {
  COPY_MAX_CONCURRENCY,
  MAX_RECEIVE_COUNT,
  POLL_BATCH_SIZE,
  VISIBILITY_TIMEOUT_FACTOR,
} from "../../infra/function-settings";
import { STACK_OUTPUT } from "../../infra/stack-outputs";
import { LEDGER_TABLE } from "../../shared/adapters/dynamodb/ledger-table";
import { ENV_NAMES } from "../../shared/config/env";
import { METRIC, METRIC_DIMENSION, METRIC_NAMESPACE } from "../../shared/config/metrics";
import type { TenantConfig } from "../../shared/config/tenant-config";
import { KEEPER_EVENT } from "../../shared/core/poll-chain";
import { exampleConfig, resourcesOfType, synthTenants } from "./synth-tenants";

let config: TenantConfig;
let template: Template;

beforeAll(() => {
  config = exampleConfig("example");
  const [synthesized] = synthTenants([config]);
  template = synthesized!.template;
});

/** The one logical id of a resource type, or fails. */
function onlyLogicalId(type: string): string {
  const ids = Object.keys(resourcesOfType(template, type));
  expect(ids).toHaveLength(1);
  return ids[0]!;
}

/** The work queue and the queue that is its dead-letter target. */
function queueIds(): { work: string; deadLetters: string } {
  const queues = resourcesOfType(template, "AWS::SQS::Queue");
  const work = Object.entries(queues).find(([, q]) => q.Properties.RedrivePolicy !== undefined)!;
  const target = (work[1].Properties.RedrivePolicy as { deadLetterTargetArn: { "Fn::GetAtt": [string] } })
    .deadLetterTargetArn["Fn::GetAtt"][0];
  return { work: work[0], deadLetters: target };
}

function functionIdWithDescription(fragment: string): string {
  const entry = Object.entries(resourcesOfType(template, "AWS::Lambda::Function")).find(([, fn]) =>
    String(fn.Properties.Description).includes(fragment),
  );
  return entry![0];
}

describe("encryption at rest with the tenant key", () => {
  it("encrypts the archive bucket with SSE-KMS and a bucket key", () => {
    // Prepare
    const keyId = onlyLogicalId("AWS::KMS::Key");

    // Act
    const archive = template.findResources("AWS::S3::Bucket", {
      Properties: { VersioningConfiguration: { Status: "Enabled" } },
    });

    // Assess
    expect(Object.keys(archive)).toHaveLength(1);
    template.hasResourceProperties("AWS::S3::Bucket", {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          {
            BucketKeyEnabled: true,
            ServerSideEncryptionByDefault: {
              SSEAlgorithm: "aws:kms",
              KMSMasterKeyID: { "Fn::GetAtt": [keyId, "Arn"] },
            },
          },
        ],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      LoggingConfiguration: Match.objectLike({ LogFilePrefix: "archive/" }),
    });
  });

  it("moves archived objects to STANDARD_IA after infrequentAccessAfterDays and keeps the bucket on delete", () => {
    // Prepare
    const days = config.archive.infrequentAccessAfterDays;

    // Act
    const archive = Object.values(
      template.findResources("AWS::S3::Bucket", {
        Properties: { VersioningConfiguration: { Status: "Enabled" } },
      }),
    )[0] as { DeletionPolicy: string };

    // Assess
    expect(archive.DeletionPolicy).toBe("Retain");
    template.hasResourceProperties("AWS::S3::Bucket", {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({
            Status: "Enabled",
            Transitions: [{ StorageClass: "STANDARD_IA", TransitionInDays: days }],
          }),
        ]),
      },
    });
  });

  it("always expires noncurrent versions (the in-place metadata copy of a large message leaves one)", () => {
    // Prepare: example keeps mail forever, example-b expires it.
    const both = [template, synthTenants([exampleConfig("example-b")])[0]!.template];

    // Act
    const rules = both.map((t) => {
      const archive = Object.values(
        t.findResources("AWS::S3::Bucket", {
          Properties: { VersioningConfiguration: { Status: "Enabled" } },
        }),
      )[0] as { Properties: { LifecycleConfiguration: { Rules: Record<string, unknown>[] } } };
      return archive.Properties.LifecycleConfiguration.Rules.find((r) => r.Id === "ArchiveStorageClass");
    });

    // Assess
    for (const rule of rules) {
      expect(rule?.NoncurrentVersionExpiration).toEqual({ NoncurrentDays: NONCURRENT_VERSION_DAYS });
    }
  });

  it("encrypts the ledger with the tenant key and keeps its schema, PITR, TTL and index", () => {
    // Prepare
    const keyId = onlyLogicalId("AWS::KMS::Key");

    // Act
    const tables = resourcesOfType(template, "AWS::DynamoDB::Table");

    // Assess
    expect(Object.keys(tables)).toHaveLength(1);
    template.hasResourceProperties("AWS::DynamoDB::Table", {
      BillingMode: "PAY_PER_REQUEST",
      SSESpecification: {
        SSEEnabled: true,
        SSEType: "KMS",
        KMSMasterKeyId: { "Fn::GetAtt": [keyId, "Arn"] },
      },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      TimeToLiveSpecification: { AttributeName: LEDGER_TABLE.ttlAttribute, Enabled: true },
      KeySchema: [
        { AttributeName: LEDGER_TABLE.partitionKey, KeyType: "HASH" },
        { AttributeName: LEDGER_TABLE.sortKey, KeyType: "RANGE" },
      ],
      GlobalSecondaryIndexes: [
        Match.objectLike({
          IndexName: LEDGER_TABLE.stateIndex.name,
          KeySchema: [
            { AttributeName: LEDGER_TABLE.stateIndex.partitionKey, KeyType: "HASH" },
            { AttributeName: LEDGER_TABLE.stateIndex.sortKey, KeyType: "RANGE" },
          ],
          Projection: { ProjectionType: "ALL" },
        }),
      ],
    });
  });

  it("encrypts the queues and the alarm topic with the tenant key, the poll queue with SQS-managed keys", () => {
    // Prepare
    const keyArn = { "Fn::GetAtt": [onlyLogicalId("AWS::KMS::Key"), "Arn"] };

    // Act
    const queues = Object.entries(resourcesOfType(template, "AWS::SQS::Queue"));
    const topics = Object.values(resourcesOfType(template, "AWS::SNS::Topic"));

    // Assess
    expect(queues).toHaveLength(4);
    for (const [id, queue] of queues) {
      if (id.startsWith("QueuesPoll")) expect(queue.Properties.SqsManagedSseEnabled).toBe(true);
      else {
        expect(queue.Properties.KmsMasterKeyId).toEqual(keyArn);
        // Data keys reused for an hour: no KMS request per copy job (docs/deploy.md section 7).
        expect(queue.Properties.KmsDataKeyReusePeriodSeconds).toBe(3600);
      }
    }
    expect(topics).toHaveLength(1);
    expect(topics[0]!.Properties.KmsMasterKeyId).toEqual(keyArn);
  });

  it("rotates the key and retains it when the stack is deleted", () => {
    // Act
    const key = Object.values(template.findResources("AWS::KMS::Key"))[0] as {
      DeletionPolicy: string;
      Properties: { EnableKeyRotation: boolean };
    };

    // Assess
    expect(key.Properties.EnableKeyRotation).toBe(true);
    expect(key.DeletionPolicy).toBe("Retain");
  });
});

describe("TLS only", () => {
  const denyInsecure = Match.objectLike({
    Effect: "Deny",
    Condition: { Bool: { "aws:SecureTransport": "false" } },
  });

  it.each([
    ["AWS::S3::BucketPolicy", 2],
    ["AWS::SQS::QueuePolicy", 4],
    ["AWS::SNS::TopicPolicy", 1],
  ])("%s: every policy denies requests without TLS", (type, expected) => {
    // Act
    const policies = Object.values(resourcesOfType(template, type));

    // Assess
    expect(policies).toHaveLength(expected);
    for (const policy of policies) {
      const document = policy.Properties.PolicyDocument as { Statement: unknown[] };
      expect(document.Statement).toEqual(expect.arrayContaining([expect.anything()]));
      expect(Match.arrayWith([denyInsecure]).test(document.Statement).hasFailed()).toBe(false);
    }
  });
});

describe("work queue", () => {
  it("sends a job to the DLQ after a few receives", () => {
    // Prepare
    const { work, deadLetters } = queueIds();

    // Act
    const queue = resourcesOfType(template, "AWS::SQS::Queue")[work]!;

    // Assess
    expect(queue.Properties.RedrivePolicy).toEqual({
      deadLetterTargetArn: { "Fn::GetAtt": [deadLetters, "Arn"] },
      maxReceiveCount: MAX_RECEIVE_COUNT,
    });
  });

  it("is FIFO with a group per mailbox and a FIFO dead-letter queue, deduplicated by the sender", () => {
    // Prepare
    const { work, deadLetters } = queueIds();

    // Act
    const queues = resourcesOfType(template, "AWS::SQS::Queue");

    // Assess
    expect(queues[work]!.Properties).toMatchObject({
      FifoQueue: true,
      ContentBasedDeduplication: false,
      DeduplicationScope: "messageGroup",
      FifoThroughputLimit: "perMessageGroupId",
    });
    expect(queues[deadLetters]!.Properties.FifoQueue).toBe(true);
  });

  it("keeps a received job invisible for at least 6x the copier's timeout", () => {
    // Prepare
    const copier = resourcesOfType(template, "AWS::Lambda::Function")[
      functionIdWithDescription("Gmail import")
    ]!;
    const { work } = queueIds();

    // Act
    const visibility = resourcesOfType(template, "AWS::SQS::Queue")[work]!.Properties
      .VisibilityTimeout as number;

    // Assess
    expect(visibility).toBeGreaterThanOrEqual(
      VISIBILITY_TIMEOUT_FACTOR * (copier.Properties.Timeout as number),
    );
  });

  it("feeds the copier in batches of 10 with partial failures and a concurrency cap", () => {
    // Prepare
    const { work } = queueIds();

    // Act
    const mappings = Object.values(resourcesOfType(template, "AWS::Lambda::EventSourceMapping")).filter(
      (m) => JSON.stringify(m.Properties.EventSourceArn) === JSON.stringify({ "Fn::GetAtt": [work, "Arn"] }),
    );

    // Assess
    expect(mappings).toHaveLength(1);
    expect(mappings[0]!.Properties).toMatchObject({
      FunctionName: { Ref: functionIdWithDescription("Gmail import") },
      BatchSize: 10,
      FunctionResponseTypes: ["ReportBatchItemFailures"],
      ScalingConfig: { MaximumConcurrency: COPY_MAX_CONCURRENCY },
    });
  });
});

describe("functions", () => {
  it("runs all four (the pipeline's three and the onboarding pages) on nodejs24.x and arm64, traced but the lister, with JSON logs at INFO in their own log group", () => {
    // Prepare
    const listerId = functionIdWithDescription("poll POP3");

    // Act
    const functions = Object.entries(resourcesOfType(template, "AWS::Lambda::Function"));

    // Assess
    expect(functions).toHaveLength(4);
    for (const [id, fn] of functions) {
      expect(fn.Properties.Runtime).toBe("nodejs24.x");
      expect(fn.Properties.Architectures).toEqual(["arm64"]);
      // A trace per poll was the largest line of a mailbox's cost (docs/deploy.md section 7).
      expect(fn.Properties.TracingConfig).toEqual(id === listerId ? undefined : { Mode: "Active" });
      expect(fn.Properties.LoggingConfig).toEqual({
        LogGroup: { Ref: expect.any(String) },
        LogFormat: "JSON",
        ApplicationLogLevel: "INFO",
        SystemLogLevel: "WARN",
      });
    }
    for (const logGroup of Object.values(resourcesOfType(template, "AWS::Logs::LogGroup"))) {
      expect(logGroup.Properties.RetentionInDays).toBeGreaterThan(0);
    }
  });

  it("gives the lister more than the minute between triggers, and the copier's time for a LOGIN-DELAY poll", () => {
    // Act
    const functions = resourcesOfType(template, "AWS::Lambda::Function");
    const lister = functions[functionIdWithDescription("poll POP3")]!;
    const copier = functions[functionIdWithDescription("Gmail import")]!;

    // Assess: such a poll copies in its session (docs/pipeline.md "Login delay and UTF8").
    expect(lister.Properties.Timeout).toBeGreaterThan(60);
    expect(lister.Properties.Timeout).toBe(copier.Properties.Timeout);
  });

  it("passes every resource name through ENV_NAMES and the bundled config's file name, and source maps", () => {
    // Prepare
    const listerId = functionIdWithDescription("poll POP3");

    // Act
    const variables = (
      resourcesOfType(template, "AWS::Lambda::Function")[listerId]!.Properties.Environment as {
        Variables: Record<string, unknown>;
      }
    ).Variables;

    // Assess
    // The config is bundled with the code (docs/deploy.md, section 2), never in the 4 KB environment.
    expect(variables[ENV_NAMES.tenantConfig]).toBeUndefined();
    expect(variables[ENV_NAMES.tenantConfigFile]).toBe("tenant-config.json");
    for (const name of Object.values(ENV_NAMES).filter((n) => n !== ENV_NAMES.tenantConfig)) {
      expect(variables[name]).toBeDefined();
    }
    expect(variables.DELETE_FUNCTION_NAME).toEqual({ Ref: functionIdWithDescription("DELE") });
    expect(variables.POWERTOOLS_METRICS_NAMESPACE).toBe(METRIC_NAMESPACE);
    expect(variables.NODE_OPTIONS).toBe("--enable-source-maps");
  });
});

describe("poll trigger", () => {
  it("has one rule per tenant, not per mailbox: the keeper tick every minute, without retries", () => {
    // Prepare
    const listerArn = { "Fn::GetAtt": [functionIdWithDescription("poll POP3"), "Arn"] };

    // Act
    const rules = Object.values(resourcesOfType(template, "AWS::Events::Rule"));

    // Assess
    expect(config.mailboxes.length).toBeGreaterThan(1);
    expect(rules).toHaveLength(1);
    expect(rules[0]!.Properties.ScheduleExpression).toBe("rate(1 minute)");
    const [target] = rules[0]!.Properties.Targets as { Arn: unknown; Input: string; RetryPolicy: unknown }[];
    expect(target!.Arn).toEqual(listerArn);
    expect(JSON.parse(target!.Input)).toEqual(KEEPER_EVENT);
    expect(target!.RetryPolicy).toEqual({ MaximumEventAgeInSeconds: 60, MaximumRetryAttempts: 0 });
  });

  it("feeds the lister from a standard poll queue (per-message delays) with SQS-managed encryption, TLS only and partial failures", () => {
    // Prepare
    const queues = resourcesOfType(template, "AWS::SQS::Queue");
    const poll = Object.keys(queues).find((id) => id.startsWith("QueuesPoll"));
    const lister = resourcesOfType(template, "AWS::Lambda::Function")[
      functionIdWithDescription("poll POP3")
    ]!;

    // Act
    const mappings = Object.values(resourcesOfType(template, "AWS::Lambda::EventSourceMapping")).filter(
      (m) =>
        JSON.stringify(m.Properties.FunctionName) ===
        JSON.stringify({ Ref: functionIdWithDescription("poll POP3") }),
    );

    // Assess
    expect(poll).toBeDefined();
    expect(queues[poll!]!.Properties.FifoQueue).toBeUndefined();
    // SSE-SQS: a poll message is `{mailboxId, chain, seq}`; the tenant key would cost KMS requests per poll.
    expect(queues[poll!]!.Properties.KmsMasterKeyId).toBeUndefined();
    expect(queues[poll!]!.Properties.SqsManagedSseEnabled).toBe(true);
    expect(queues[poll!]!.Properties.VisibilityTimeout).toBeGreaterThanOrEqual(
      lister.Properties.Timeout as number,
    );
    const variables = (lister.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(variables[ENV_NAMES.pollQueueUrl]).toEqual({ Ref: poll });
    expect(mappings.map((m) => m.Properties)).toEqual([
      expect.objectContaining({
        EventSourceArn: { "Fn::GetAtt": [poll, "Arn"] },
        BatchSize: POLL_BATCH_SIZE,
        FunctionResponseTypes: ["ReportBatchItemFailures"],
      }),
    ]);
  });

  it("allows the lister's recursion (lister -> poll queue -> lister), and no other function's", () => {
    // Prepare
    const listerId = functionIdWithDescription("poll POP3");

    // Act
    const functions = Object.entries(resourcesOfType(template, "AWS::Lambda::Function"));

    // Assess: Lambda's recursive loop detection would stop each chain after ~16 polls.
    for (const [id, fn] of functions) {
      expect(fn.Properties.RecursiveLoop).toBe(id === listerId ? "Allow" : undefined);
    }
  });

  it("has no poll queue, no lister event source and no POLL_QUEUE_URL when no mailbox polls below a minute", () => {
    // Prepare
    const slow = {
      ...config,
      mailboxes: config.mailboxes.map((m) => ({ ...m, pollSeconds: Math.max(60, m.pollSeconds) })),
    };

    // Act
    const [synthesized] = synthTenants([slow]);
    const t = synthesized!.template;
    const lister = Object.values(resourcesOfType(t, "AWS::Lambda::Function")).find((fn) =>
      String(fn.Properties.Description).includes("poll POP3"),
    )!;
    const variables = (lister.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
    const statementIds = JSON.stringify(t.toJSON()).match(/"Sid":"[A-Za-z]+"/g) ?? [];

    // Assess
    expect(
      Object.keys(resourcesOfType(t, "AWS::SQS::Queue")).filter((id) => id.startsWith("QueuesPoll")),
    ).toEqual([]);
    expect(Object.keys(resourcesOfType(t, "AWS::Lambda::EventSourceMapping"))).toHaveLength(1);
    expect(variables[ENV_NAMES.pollQueueUrl]).toBeUndefined();
    expect(statementIds).not.toContain('"Sid":"PollQueueSend"');
    expect(Object.values(resourcesOfType(t, "AWS::Events::Rule"))).toHaveLength(1);
  });

  it("adds no resource per mailbox", () => {
    // Prepare: one sub-minute mailbox (the poll queue stays).
    const one = { ...config, mailboxes: [config.mailboxes.find((m) => m.pollSeconds < 60)!] };

    // Act
    const count = (t: Template) => Object.keys(t.toJSON().Resources as object).length;

    // Assess
    expect(count(synthTenants([one])[0]!.template)).toBe(count(template));
  });
});

describe("alarms", () => {
  it("sends every alarm and its recovery to the tenant topic", () => {
    // Prepare
    const topic = { Ref: onlyLogicalId("AWS::SNS::Topic") };

    // Act
    const alarms = Object.values(resourcesOfType(template, "AWS::CloudWatch::Alarm"));

    // Assess: the one outcome alarm of docs/deploy.md section 6, whatever the mailboxes.
    expect(alarms.map((a) => a.Properties.AlarmName).sort()).toEqual(
      TENANT_ALARM_NAMES.map((name) => `pop2gmail-${config.tenant}-${name}`).sort(),
    );
    for (const alarm of alarms) {
      expect(alarm.Properties.AlarmActions).toEqual([topic]);
      expect(alarm.Properties.OKActions).toEqual([topic]);
      // Descriptions arrive by mail and CloudWatch takes at most 1024 characters.
      expect(String(alarm.Properties.AlarmDescription).length).toBeLessThanOrEqual(1024);
    }
  });

  it("keeps the same alarms with one mailbox: nothing is per mailbox", () => {
    // Prepare
    expect(config.mailboxes.length).toBeGreaterThan(1);
    const one = { ...config, mailboxes: [config.mailboxes[0]!] };

    // Act
    const alarms = Object.values(resourcesOfType(synthTenants([one])[0]!.template, "AWS::CloudWatch::Alarm"));

    // Assess
    expect(alarms).toHaveLength(TENANT_ALARM_NAMES.length);
  });

  it("subscribes the tenant's alarm e-mail", () => {
    // Act
    const subscriptions = Object.values(resourcesOfType(template, "AWS::SNS::Subscription"));

    // Assess
    expect(subscriptions.map((s) => s.Properties)).toEqual([
      expect.objectContaining({ Protocol: "email", Endpoint: config.alarmEmail }),
    ]);
  });

  it("alarms on open problems or on no count at all (the keeper not running), counting silence as failure", () => {
    // Act
    const problems = Object.values(
      template.findResources("AWS::CloudWatch::Alarm", {
        Properties: { MetricName: METRIC.tenantProblems },
      }),
    ) as { Properties: Record<string, unknown> }[];

    // Assess
    expect(problems).toHaveLength(1);
    expect(problems[0]!.Properties).toMatchObject({
      Namespace: METRIC_NAMESPACE,
      Statistic: "Maximum",
      TreatMissingData: "breaching",
      ComparisonOperator: "GreaterThanOrEqualToThreshold",
      Threshold: 1,
      Dimensions: expect.arrayContaining([{ Name: METRIC_DIMENSION.tenant, Value: config.tenant }]),
    });
  });

  it("has no PipelineDelay alarm: late mail is counted by TenantProblems (mail-stuck 15 minutes after listing)", () => {
    // Act
    const alarms = Object.values(
      template.findResources("AWS::CloudWatch::Alarm", { Properties: { MetricName: METRIC.pipelineDelay } }),
    );

    // Assess
    expect(alarms).toEqual([]);
  });

  it("lets CloudWatch publish to the topic and use its key for exactly this tenant's alarms", () => {
    // Act
    const alarmNames = Object.values(resourcesOfType(template, "AWS::CloudWatch::Alarm")).map(
      (a) => a.Properties.AlarmName as string,
    );
    const topicPolicy = Object.values(resourcesOfType(template, "AWS::SNS::TopicPolicy"))[0]!;
    const statements = (topicPolicy.Properties.PolicyDocument as { Statement: Record<string, unknown>[] })
      .Statement;
    const publish = statements.find((s) => JSON.stringify(s.Principal).includes("cloudwatch.amazonaws.com"))!;

    // Assess
    expect(publish.Effect).toBe("Allow");
    expect(publish.Action).toBe("sns:Publish");
    const text = JSON.stringify(publish.Condition);
    expect(text).toContain("aws:SourceAccount");
    for (const name of alarmNames) expect(text).toContain(`:alarm:${name}"`);
    expect(
      (publish.Condition as { ArnEquals: { "aws:SourceArn": unknown[] } }).ArnEquals["aws:SourceArn"],
    ).toHaveLength(alarmNames.length);
  });

  it("builds no dashboard unless the tenant config asks for one", () => {
    // Act
    const without = Object.values(resourcesOfType(template, "AWS::CloudWatch::Dashboard"));
    const withDashboard = Object.values(
      resourcesOfType(
        synthTenants([{ ...config, dashboard: true }])[0]!.template,
        "AWS::CloudWatch::Dashboard",
      ),
    );

    // Assess
    expect(without).toEqual([]);
    expect(withDashboard).toHaveLength(1);
    expect(withDashboard[0]!.Properties.DashboardName).toBe(`pop2gmail-${config.tenant}`);
  });
});

describe("failed deletes", () => {
  it("sends a delete-copied invocation that failed its attempts to the failed-deletes queue", () => {
    // Prepare
    const deleter = functionIdWithDescription("DELE");
    const { work, deadLetters } = queueIds();
    const failedDeletes = Object.keys(resourcesOfType(template, "AWS::SQS::Queue")).find(
      (id) => id !== work && id !== deadLetters,
    )!;

    // Act
    const configs = Object.values(resourcesOfType(template, "AWS::Lambda::EventInvokeConfig")).filter(
      (c) => JSON.stringify(c.Properties.FunctionName) === JSON.stringify({ Ref: deleter }),
    );

    // Assess
    expect(configs).toHaveLength(1);
    expect(configs[0]!.Properties.DestinationConfig).toEqual({
      OnFailure: { Destination: { "Fn::GetAtt": [failedDeletes, "Arn"] } },
    });
  });
});

describe("outputs the CLI reads", () => {
  it("outputs the ledger table, both queues, the archive bucket and the onboarding URL, and exports nothing", () => {
    // Prepare
    const { work, deadLetters } = queueIds();
    const table = onlyLogicalId("AWS::DynamoDB::Table");
    const archive = Object.keys(
      template.findResources("AWS::S3::Bucket", {
        Properties: { VersioningConfiguration: { Status: "Enabled" } },
      }),
    )[0];

    // Act
    const outputs = template.findOutputs("*");

    // Assess
    expect(Object.fromEntries(Object.entries(outputs).map(([id, o]) => [id, o.Value]))).toEqual({
      [STACK_OUTPUT.ledgerTableName]: { Ref: table },
      [STACK_OUTPUT.workQueueUrl]: { Ref: work },
      [STACK_OUTPUT.deadLetterQueueUrl]: { Ref: deadLetters },
      [STACK_OUTPUT.archiveBucketName]: { Ref: archive },
      [ONBOARDING_URL_OUTPUT]: {
        "Fn::GetAtt": [expect.stringMatching(/^OnboardingPages.*Url/), "FunctionUrl"],
      },
    });
    expect(Object.values(outputs).filter((o) => o.Export !== undefined)).toEqual([]);
  });
});

/**
 * Asset hashes change whenever handler code (or esbuild) changes; they are not what this
 * snapshot guards, so each 64-hex-digit hash is replaced by a placeholder first.
 */
function withStableAssets(json: unknown): unknown {
  return JSON.parse(JSON.stringify(json).replace(/[0-9a-f]{64}/g, "<asset-hash>"));
}

describe("snapshot", () => {
  it("matches the reviewed template of the example tenant", () => {
    // Act
    const stable = withStableAssets(template.toJSON());

    // Assess
    expect(JSON.stringify(stable)).toContain("<asset-hash>.zip");
    expect(stable).toMatchSnapshot();
  });
});
