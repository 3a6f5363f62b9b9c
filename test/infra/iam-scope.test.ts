import type { Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, it } from "vitest";
import { onboardingSecretName } from "../../shared/adapters/web/onboarding-app";
import type { TenantConfig } from "../../shared/config/tenant-config";
import {
  asList,
  exampleConfig,
  iamStatements,
  type PolicyStatementJson,
  resourcesOfType,
  synthTenants,
} from "./synth-tenants";

let config: TenantConfig;
let template: Template;

beforeAll(() => {
  config = exampleConfig("example");
  template = synthTenants([config])[0]!.template;
});

/** The statements of the role whose function's description contains `fragment`. */
function statementsOfFunction(fragment: string): PolicyStatementJson[] {
  const functions = Object.values(resourcesOfType(template, "AWS::Lambda::Function"));
  const fn = functions.find((f) => String(f.Properties.Description).includes(fragment))!;
  const roleId = (fn.Properties.Role as { "Fn::GetAtt": [string, string] })["Fn::GetAtt"][0];
  const policies = Object.values(resourcesOfType(template, "AWS::IAM::Policy")).filter((p) =>
    asList(p.Properties.Roles as unknown[]).some(
      (r) => JSON.stringify(r) === JSON.stringify({ Ref: roleId }),
    ),
  );
  return policies.flatMap(
    (p) => (p.Properties.PolicyDocument as { Statement: PolicyStatementJson[] }).Statement,
  );
}

function actionsOf(statements: readonly PolicyStatementJson[]): string[] {
  return statements.flatMap((s) => asList(s.Action)).sort();
}

/** Secret names in the statements' resources (the part after `:secret:` without `-??????`). */
function secretNamesIn(statements: readonly PolicyStatementJson[]): string[] {
  const text = JSON.stringify(statements);
  return [...text.matchAll(/:secret:([^"]+?)-\?{6}/g)].map((m) => m[1]!).sort();
}

describe("IAM statements are scoped to this tenant", () => {
  it("has Resource '*' only for X-Ray's trace actions, which support no resource-level permissions", () => {
    // Act
    const statements = iamStatements(template);

    // Assess
    expect(statements.length).toBeGreaterThan(10);
    const unscoped = statements.filter((s) => asList(s.Resource as unknown).includes("*"));
    expect(unscoped.flatMap((s) => asList(s.Action)).sort()).toEqual(
      // The traced functions: copier, deleter and the onboarding pages (not the lister).
      Array(3).fill(["xray:PutTelemetryRecords", "xray:PutTraceSegments"]).flat().sort(),
    );
  });

  it("allows '*' only in the KMS key policy, where it means 'this key'", () => {
    // Act
    const keyPolicies = Object.values(resourcesOfType(template, "AWS::KMS::Key")).map(
      (k) => (k.Properties.KeyPolicy as { Statement: PolicyStatementJson[] }).Statement,
    );

    // Assess: the account administers it (but for disabling or deleting it, which only the
    // break-glass role may), and CloudWatch publishes this tenant's alarms.
    expect(keyPolicies).toHaveLength(1);
    const principals = keyPolicies[0]!.map((s) => JSON.stringify(s.Principal));
    expect(principals).toHaveLength(3);
    expect(principals[0]).toMatch(/:root/);
    expect(principals[1]).toMatch(/:root/);
    expect(JSON.stringify(keyPolicies[0]![1]!.Condition)).toMatch(
      /aws:PrincipalArn.*role\/pop2gmail-break-glass/,
    );
    expect(principals[2]).toBe('{"Service":"cloudwatch.amazonaws.com"}');
    expect(JSON.stringify(keyPolicies[0]![2]!.Condition)).toMatch(/aws:SourceAccount.*aws:SourceArn/);
  });

  it("names every secret of the config and the tenant's onboarding secret, and only those, by its exact ARN pattern", () => {
    // Prepare
    const configured = new Set([
      ...config.mailboxes.flatMap((m) => [m.pop3.passwordSecret, m.gmail.credentialsSecret]),
      onboardingSecretName(config.tenant, "aws"),
    ]);

    // Act
    const named = new Set(secretNamesIn(iamStatements(template)));

    // Assess
    expect([...named].sort()).toEqual([...configured].sort());
  });

  it("gives the Google credentials to the copier and the lister, never to the deleter", () => {
    // Prepare
    const google = config.mailboxes.map((m) => m.gmail.credentialsSecret);

    // Act
    const lister = secretNamesIn(statementsOfFunction("poll POP3"));
    const deleter = secretNamesIn(statementsOfFunction("DELE"));
    const copier = secretNamesIn(statementsOfFunction("Gmail import"));

    // Assess
    for (const name of google) {
      expect(lister).toContain(name);
      expect(deleter).not.toContain(name);
      expect(copier).toContain(name);
    }
  });

  it("gives the lister exactly the copier's grants plus invoking the deleter (it copies for a LOGIN-DELAY server) and its poll chains' queue grants", () => {
    // Prepare: each function writes its own log group.
    const grants = (fragment: string) =>
      statementsOfFunction(fragment)
        .filter((s) => s.Sid !== "WriteOwnLogGroup")
        .map((s) => JSON.stringify(s));

    // Act
    const lister = grants("poll POP3");
    const copier = grants("Gmail import");

    // Assess: docs/pipeline.md "Login delay and UTF8"; the same statements, not copies of them.
    expect(
      lister.filter((s) => !copier.includes(s)).map((s) => (JSON.parse(s) as PolicyStatementJson).Sid),
    ).toEqual(["InvokeDeleteCopied", "PollQueueSend", "ProblemQueueDepth", undefined]);
    // The unnamed one is its poll-queue event source's (docs/lambda-handlers.md "Sub-minute polling").
    const pollSource = lister
      .map((s) => JSON.parse(s) as PolicyStatementJson)
      .filter((s) => s.Sid === undefined && !copier.includes(JSON.stringify(s)));
    expect(pollSource.flatMap((s) => asList(s.Resource)).map((r) => JSON.stringify(r))).toEqual(
      expect.arrayContaining([expect.stringMatching(/QueuesPoll/)]),
    );
    expect(JSON.stringify(pollSource)).not.toMatch(/QueuesWork/);
    // All the copier has beyond: its SQS event source's receive and the key's Decrypt for it (the
    // lister never receives jobs; its poll queue is SSE-SQS), and X-Ray (the lister is not traced).
    const eventSource = copier
      .filter((s) => !lister.includes(s))
      .flatMap((s) => asList((JSON.parse(s) as PolicyStatementJson).Action))
      .sort();
    expect(eventSource).toEqual([
      "kms:Decrypt",
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
      "sqs:ReceiveMessage",
      "xray:PutTelemetryRecords",
      "xray:PutTraceSegments",
    ]);
  });

  it("lets the copier and the lister write the archive, the deleter only read it, and no function delete from it", () => {
    // Act
    const lister = actionsOf(statementsOfFunction("poll POP3"));
    const deleter = actionsOf(statementsOfFunction("DELE"));
    const copier = actionsOf(statementsOfFunction("Gmail import"));

    // Assess
    expect(copier).toContain("s3:PutObject");
    expect(lister).toContain("s3:PutObject");
    expect(deleter.filter((a) => a.startsWith("s3:"))).toEqual(["s3:GetObject", "s3:ListBucket"]);
    for (const actions of [lister, deleter, copier]) {
      expect(actions.filter((a) => /^s3:(Delete|PutBucket|PutLifecycle)/.test(a))).toEqual([]);
    }
  });

  it("lets the lister invoke exactly the delete function, send to the work and poll queues, and receive only poll messages", () => {
    // Act
    const lister = statementsOfFunction("poll POP3");

    // Assess
    const invoke = lister.find((s) => asList(s.Action).includes("lambda:InvokeFunction"))!;
    expect(asList(invoke.Resource)).toHaveLength(1);
    expect(JSON.stringify(invoke.Resource)).toMatch(/DeleteCopiedFunction/);
    expect(actionsOf(lister)).toContain("sqs:SendMessage");
    const receive = lister.filter((s) => asList(s.Action).includes("sqs:ReceiveMessage"));
    expect(receive.flatMap((s) => asList(s.Resource)).map((r) => JSON.stringify(r))).toEqual([
      expect.stringMatching(/QueuesPoll/),
    ]);
  });

  it("uses no action wildcard and no AWS managed policy", () => {
    // Act
    const actions = actionsOf(iamStatements(template));
    const roles = Object.values(resourcesOfType(template, "AWS::IAM::Role"));

    // Assess
    expect(actions.filter((a) => a.includes("*"))).toEqual([]);
    for (const role of roles) expect(role.Properties.ManagedPolicyArns).toBeUndefined();
  });
});
