import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App, Validations } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { AwsSolutionsChecks } from "cdk-nag";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { providerOpsTopicArn } from "../../infra/provider-app";
import {
  FLEET_DASHBOARD_NAME,
  OPS_TOPIC_NAME,
  PROVIDER_STACK_ID,
  TENANT_ALARM_PREFIX,
  TENANT_TAG,
} from "../../infra/provider-names";
import { ProviderStack } from "../../infra/provider-stack";
import { STACK_OUTPUT } from "../../infra/stack-outputs";
import { addTenantStacks, addTenantStacksFromContext } from "../../infra/tenant-app";
import { METRIC } from "../../shared/config/metrics";
import { exampleConfig, resourcesOfType, TENANTS_DIR } from "./synth-tenants";

/** The provider stack as `cdk synth` builds it: its own app, the cdk-nag plugin, a report on disk. */
describe("provider stack (ops topic, fleet dashboard)", () => {
  let outdir: string;
  let template: Template;
  let validationReport: { pluginReports: { violations?: unknown[] }[] };

  beforeAll(() => {
    // Prepare
    outdir = mkdtempSync(join(tmpdir(), "pop2gmail-provider-"));
    const app = new App({ outdir, builtinCloudFormationValidation: false });
    const stack = new ProviderStack(app, { opsEmail: "noc@provider.example" });
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));

    // Act
    app.synth();
    template = Template.fromStack(stack);
    validationReport = JSON.parse(readFileSync(join(outdir, "validation-report.json"), "utf8"));
  });

  afterAll(() => {
    rmSync(outdir, { recursive: true, force: true });
  });

  it("is cdk-nag clean", () => {
    // Assess
    expect(validationReport.pluginReports.flatMap((r) => r.violations ?? [])).toEqual([]);
  });

  it("has a topic of a fixed name, encrypted with a rotating key of its own, SSL enforced, with the e-mail", () => {
    // Assess
    template.hasResourceProperties("AWS::SNS::Topic", {
      TopicName: OPS_TOPIC_NAME,
      KmsMasterKeyId: Match.objectLike({ "Fn::GetAtt": [Match.stringLikeRegexp("OpsTopicKey"), "Arn"] }),
    });
    template.hasResourceProperties("AWS::KMS::Key", { EnableKeyRotation: true });
    template.hasResourceProperties("AWS::SNS::Subscription", {
      Protocol: "email",
      Endpoint: "noc@provider.example",
    });
    template.hasResourceProperties("AWS::SNS::TopicPolicy", {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
        ]),
      },
    });
  });

  it("lets CloudWatch publish and use the key for pop2gmail-* alarms of this account only", () => {
    // Prepare
    const fleetAlarms = {
      StringEquals: { "aws:SourceAccount": { Ref: "AWS::AccountId" } },
      ArnLike: {
        "aws:SourceArn": {
          "Fn::Join": [
            "",
            [
              "arn:",
              { Ref: "AWS::Partition" },
              ":cloudwatch:",
              { Ref: "AWS::Region" },
              ":",
              { Ref: "AWS::AccountId" },
              ":alarm:pop2gmail-*",
            ],
          ],
        },
      },
    };

    // Assess
    template.hasResourceProperties("AWS::SNS::TopicPolicy", {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: "Allow",
            Principal: { Service: "cloudwatch.amazonaws.com" },
            Action: "sns:Publish",
            Condition: fleetAlarms,
          }),
        ]),
      },
    });
    template.hasResourceProperties("AWS::KMS::Key", {
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Principal: { Service: "cloudwatch.amazonaws.com" },
            Action: ["kms:Decrypt", "kms:GenerateDataKey*"],
            Condition: fleetAlarms,
          }),
        ]),
      },
    });
  });

  it("builds the fleet dashboard from SEARCH expressions only, so new tenants need no redeploy", () => {
    // Prepare
    const dashboards = Object.values(resourcesOfType(template, "AWS::CloudWatch::Dashboard"));

    // Act
    const expressions = dashboardExpressions(template);

    // Assess
    expect(dashboards).toHaveLength(1);
    expect(dashboards[0]?.Properties.DashboardName).toBe(FLEET_DASHBOARD_NAME);
    for (const metric of [METRIC.tenantProblems, METRIC.pipelineDelay, METRIC.messagesQuarantined]) {
      expect(
        expressions.some((e) => e.includes(`SEARCH('{Pop2Gmail,service,Tenant} MetricName="${metric}"'`)),
      ).toBe(true);
    }
    expect(expressions).toContainEqual(
      expect.stringContaining(
        `SEARCH('{AWS/SQS,QueueName} MetricName="ApproximateNumberOfMessagesVisible" Pop2Gmail QueuesWork'`,
      ),
    );
    expect(expressions).toContainEqual(
      expect.stringContaining(`SEARCH('{AWS/Lambda,FunctionName} MetricName="Errors" Pop2Gmail'`),
    );
    // Every metric line is an expression: no tenant, queue or function is named.
    expect(expressions).toHaveLength(6);
    expect(expressions.every((e) => e.startsWith("SORT(SEARCH("))).toBe(true);
  });

  it("exports nothing: tenants name the topic by ARN", () => {
    // Assess
    const outputs = template.toJSON().Outputs as Record<string, { Export?: unknown }>;
    expect(Object.keys(outputs).sort()).toEqual(["FleetDashboardName", "OpsTopicArn"]);
    expect(Object.values(outputs).filter((o) => o.Export !== undefined)).toEqual([]);
  });
});

describe("tenant stacks deployed with -c provider=true", () => {
  it("send every alarm to the provider topic by its ARN in the tenant's own account and region", () => {
    // Prepare
    const app = new App({ builtinCloudFormationValidation: false });
    const [stack] = addTenantStacks(app, [exampleConfig("example")], { opsTopicArn: providerOpsTopicArn() });

    // Act
    const template = Template.fromStack(stack!);
    const alarms = Object.values(resourcesOfType(template, "AWS::CloudWatch::Alarm"));

    // Assess
    const providerTopic = {
      "Fn::Join": [
        "",
        [
          "arn:",
          { Ref: "AWS::Partition" },
          ":sns:",
          { Ref: "AWS::Region" },
          ":",
          { Ref: "AWS::AccountId" },
          `:${OPS_TOPIC_NAME}`,
        ],
      ],
    };
    expect(alarms.length).toBeGreaterThan(0);
    for (const alarm of alarms) {
      expect(alarm.Properties.AlarmActions).toContainEqual(providerTopic);
      expect(alarm.Properties.OKActions).toContainEqual(providerTopic);
    }
    expect(JSON.stringify(template.toJSON())).not.toContain("Fn::ImportValue");
    expect(stack!.dependencies.map((d) => d.stackName)).not.toContain(PROVIDER_STACK_ID);
  });

  it("get the provider topic from -c provider=true, and an explicit -c opsTopicArn wins", () => {
    // Prepare
    const withContext = (context: Record<string, string>) => {
      const app = new App({
        builtinCloudFormationValidation: false,
        context: { tenant: "example", ...context },
      });
      const [stack] = addTenantStacksFromContext(app, TENANTS_DIR);
      return JSON.stringify(Template.fromStack(stack!).toJSON());
    };

    // Act
    const provider = withContext({ provider: "true" });
    const explicit = withContext({ provider: "true", opsTopicArn: "arn:aws:sns:eu-west-1:111122223333:noc" });

    // Assess
    expect(provider).toContain(`":${OPS_TOPIC_NAME}"`);
    expect(explicit).toContain("arn:aws:sns:eu-west-1:111122223333:noc");
    expect(explicit).not.toContain(`":${OPS_TOPIC_NAME}"`);
  });

  it("carry what fleet status reads: the tenant tag, the stack id, pop2gmail-<tenant>-* alarm names, the work-queue output", () => {
    // Prepare
    const app = new App({ builtinCloudFormationValidation: false });
    const [stack] = addTenantStacks(app, [exampleConfig("example")], { opsTopicArn: providerOpsTopicArn() });

    // Act
    const template = Template.fromStack(stack!);
    const alarmNames = Object.values(resourcesOfType(template, "AWS::CloudWatch::Alarm")).map(
      (a) => a.Properties.AlarmName,
    );

    // Assess
    expect(stack!.stackName).toBe(`Pop2Gmail-example`);
    expect(stack!.tags.tagValues()).toMatchObject({ [TENANT_TAG]: "example" });
    expect(alarmNames.length).toBeGreaterThan(0);
    for (const name of alarmNames) expect(name).toMatch(new RegExp(`^${TENANT_ALARM_PREFIX}example-[a-z]`));
    expect(Object.keys(template.toJSON().Outputs as object)).toContain(STACK_OUTPUT.workQueueUrl);
  });
});

/** The metric lines of the dashboard: the body with its region references filled in, parsed. */
function dashboardExpressions(template: Template): string[] {
  const dashboard = Object.values(resourcesOfType(template, "AWS::CloudWatch::Dashboard"))[0];
  const joined = dashboard?.Properties.DashboardBody as { "Fn::Join": [string, unknown[]] } | undefined;
  const parts = joined?.["Fn::Join"][1] ?? [];
  const body = JSON.parse(parts.map((p) => (typeof p === "string" ? p : "us-east-1")).join("")) as {
    widgets: { properties: { metrics?: unknown[][] } }[];
  };
  return body.widgets.flatMap((w) =>
    (w.properties.metrics ?? [])
      .flat()
      .flatMap((m) =>
        typeof m === "object" && m !== null && "expression" in m
          ? [String(m.expression)]
          : ["<not an expression>"],
      ),
  );
}
