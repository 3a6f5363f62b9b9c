import { App, Stack, Validations } from "aws-cdk-lib";
import { Queue } from "aws-cdk-lib/aws-sqs";
import { AwsSolutionsChecks } from "cdk-nag";
import { beforeAll, describe, expect, it } from "vitest";
import { tenantStackId } from "../../infra/tenant-stack";
import { exampleConfig, iamStatements, type SynthesizedTenant, synthTenants } from "./synth-tenants";

/**
 * The app with both example tenants, built as `cdk synth` builds it. cdk-nag 3 reports through
 * CDK's policy-validation plugins, not annotations, so its check runs the pack on the
 * synthesized construct tree (`validateScope`), as `cdk synth` does.
 */
let tenants: SynthesizedTenant[];

beforeAll(() => {
  tenants = synthTenants([exampleConfig("example"), exampleConfig("example-b")]);
});

/** Resource types that hold a tenant's data or credentials access. */
const OWNED_TYPES = [
  "AWS::KMS::Key",
  "AWS::S3::Bucket",
  "AWS::DynamoDB::Table",
  "AWS::SQS::Queue",
  "AWS::SNS::Topic",
  "AWS::Lambda::Function",
];

describe("two tenants", () => {
  it("synthesize into two stacks named after the tenants", () => {
    // Act
    const names = tenants.map((t) => t.stack.stackName);

    // Assess
    expect(names).toEqual([tenantStackId("example"), tenantStackId("example-b")]);
  });

  it("each own their key, buckets, table, queues, topic and functions", () => {
    // Act
    const counts = tenants.map((t) =>
      OWNED_TYPES.map((type) => Object.keys(t.template.findResources(type)).length),
    );

    // Assess
    // Queues: work, dead letters, failed deletes (delete-copied's on-failure destination), and
    // the poll queue where a mailbox polls below a minute (example; example-b polls every 300 s).
    // Functions: the pipeline's three, and the onboarding pages where a mailbox uses OAuth
    // (example; example-b imports with a Workspace service account and needs no link).
    expect(counts).toEqual([
      [1, 2, 1, 4, 1, 4],
      [1, 2, 1, 3, 1, 3],
    ]);
  });

  it("have one schedule each, the keeper's minute, whatever their mailboxes' pollSeconds (the poll chains pace the polls)", () => {
    // Prepare: example-b polls every 300 s.
    const tenantB = tenants[1]!;

    // Act
    const expressions = tenants.map((t) =>
      Object.values(t.template.findResources("AWS::Events::Rule")).map(
        (rule) => (rule.Properties as { ScheduleExpression: string }).ScheduleExpression,
      ),
    );

    // Assess
    expect(tenantB.stack.config.mailboxes.map((m) => m.pollSeconds)).toEqual([300]);
    expect(expressions).toEqual([["rate(1 minute)"], ["rate(1 minute)"]]);
  });

  it("share nothing: no fixed physical names, imports or references to the other stack", () => {
    // Act
    const templates = tenants.map((t) => JSON.stringify(t.template.toJSON()));

    // Assess
    for (const [index, text] of templates.entries()) {
      expect(text).not.toMatch(/Fn::ImportValue/);
      expect(text).not.toContain(tenantStackId(tenants[1 - index]!.stack.config.tenant));
      for (const type of ["AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::SQS::Queue"]) {
        for (const resource of Object.values(tenants[index]!.template.findResources(type))) {
          const props = (resource as { Properties: Record<string, unknown> }).Properties;
          expect([props.BucketName, props.TableName, props.QueueName]).toEqual([
            undefined,
            undefined,
            undefined,
          ]);
        }
      }
    }
  });

  it("read disjoint sets of secrets", () => {
    // Act
    const secretSets = tenants.map(
      (t) =>
        new Set(
          [...JSON.stringify(iamStatements(t.template)).matchAll(/:secret:([^"]+?)-\?{6}/g)].map((m) => m[1]),
        ),
    );

    // Assess
    expect(secretSets[0]!.size).toBeGreaterThan(0);
    expect(secretSets[1]!.size).toBeGreaterThan(0);
    expect([...secretSets[0]!].filter((name) => secretSets[1]!.has(name))).toEqual([]);
  });

  it("name their own alias, dashboard and alarms", () => {
    // Act
    const named = tenants.map((t) => {
      const text = JSON.stringify(t.template.toJSON());
      return [...text.matchAll(/"(?:AliasName|DashboardName|AlarmName)":"([^"]+)"/g)].map((m) => m[1]!);
    });

    // Assess
    expect(
      named[0]!.every(
        (name) => name.includes("/example") || name.includes("-example-") || name.endsWith("-example"),
      ),
    ).toBe(true);
    expect(named[0]!.filter((name) => named[1]!.includes(name))).toEqual([]);
  });
});

describe("cdk-nag AwsSolutionsChecks", () => {
  it.each([0, 1])("finds no unacknowledged error or warning in tenant stack %i", (index) => {
    // Act
    const report = new AwsSolutionsChecks().validateScope(tenants[index]!.stack);

    // Assess
    expect(report.violations.map((v) => `${v.ruleName}: ${v.violatingResources[0]?.constructPath}`)).toEqual(
      [],
    );
    expect(report.success).toBe(true);
  });

  it("would catch a finding: an unencrypted queue without DLQ or TLS policy fails", () => {
    // Prepare
    const stack = new Stack(new App(), "Probe");
    new Queue(stack, "Plain");

    // Act
    const report = new AwsSolutionsChecks().validateScope(stack);

    // Assess
    expect(report.violations.map((v) => v.ruleName)).toEqual(
      expect.arrayContaining(["AwsSolutions-SQS3", "AwsSolutions-SQS4"]),
    );
  });

  it("gives every acknowledgement a written reason", () => {
    // Act
    const acknowledgements = tenants.flatMap(({ stack }) =>
      stack.node
        .findAll()
        .flatMap((c) => c.node.metadata)
        .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
        .flatMap((m) => Object.entries(m.data as Record<string, string>)),
    );

    // Assess, per stack: IAM5 for the archive objects on each role (the lister copies for a
    // LOGIN-DELAY server) and for X-Ray on the copier's and the deleter's (the lister is not
    // traced), IAM5 for X-Ray on the onboarding role of example; S1 on the access-log bucket;
    // SQS3 on the failed-deletes queue and on the poll queue (example only: example-b has none).
    expect(acknowledgements.map(([id]) => id.replace(/\[.*/, "")).sort()).toEqual(
      [
        ...Array(11).fill("Annotation::AwsSolutions-IAM5"),
        ...Array(2).fill("Annotation::AwsSolutions-S1"),
        ...Array(3).fill("Annotation::AwsSolutions-SQS3"),
      ].sort(),
    );
    for (const [, reason] of acknowledgements) expect(reason.length).toBeGreaterThan(40);
  });
});
