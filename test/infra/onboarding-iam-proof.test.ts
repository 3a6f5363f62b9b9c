import { App } from "aws-cdk-lib";
import { beforeAll, describe, expect, it } from "vitest";
import { loadAllTenantConfigs } from "../../infra/load-tenant-configs";
import { secretNames } from "../../infra/secret-arns";
import { addTenantStacks } from "../../infra/tenant-app";
import { onboardingSecretName } from "../../shared/adapters/web/onboarding-app";
import { parseTenantConfig } from "../../shared/config/parse-tenant-config";
import type { TenantConfig } from "../../shared/config/tenant-config";
import { deployTemplate } from "./iam-proof/deployed-stack";
import { HOSTILE_TENANT } from "./iam-proof/hostile-tenant";
import { type IamRequest, ProofAccount } from "./iam-proof/proof-account";
import { deployedSecretArn, secretTagContext, tenantResources } from "./iam-proof/proof-requests";
import { TENANTS_DIR } from "./synth-tenants";

/**
 * The IAM proof (test/infra/iam-proof.test.ts) for the onboarding pages' function behind the
 * Function URL (docs/onboarding.md): what its handler calls is Allowed, and it can write nothing
 * but this tenant's Google secrets: no POP3 password, no onboarding secret, no ledger item, no
 * archive, nothing of another tenant.
 */

let tenants: TenantConfig[];
let account: ProofAccount;

beforeAll(() => {
  tenants = [...loadAllTenantConfigs(TENANTS_DIR), parseTenantConfig(HOSTILE_TENANT, "other tenant")];
  const app = new App();
  const stacks = addTenantStacks(app, tenants);
  const assembly = app.synth({ validateOnSynthesis: false });
  account = new ProofAccount(
    stacks.map((stack) => deployTemplate(stack.stackName, assembly.getStackByName(stack.stackName).template)),
  );
}, 120_000);

/** The onboarding function's role in `tenant`'s stack, or undefined when the stack has none. */
function onboardingRole(tenant: string): string | undefined {
  const fn = account
    .stack(tenant)
    .byType("AWS::Lambda::Function")
    .find((r) => r.logicalId.startsWith("OnboardingPagesOnboardingFunction"));
  return fn === undefined ? undefined : String(fn.properties.Role);
}

async function decisions(requests: readonly IamRequest[]): Promise<string[]> {
  const out: string[] = [];
  for (const r of requests)
    out.push(`${await account.evaluate(r)} ${r.action} ${r.resource.split(":").pop()}`);
  return out;
}

describe("the onboarding function's role", () => {
  it("exists where a mailbox uses OAuth, and not for a Workspace-only tenant", () => {
    // Act + Assess
    expect(onboardingRole("example")).toBeDefined();
    expect(onboardingRole("exampl")).toBeDefined();
    expect(onboardingRole("example-b")).toBeUndefined();
  });

  it("may read its onboarding secret and its Google secrets, write those Google secrets, query the ledger's state index", async () => {
    // Prepare
    const config = tenants.find((t) => t.tenant === "example") as TenantConfig;
    const principal = onboardingRole("example") as string;
    const own = tenantResources(account, "example");
    const tagged = secretTagContext("example");
    const google = secretNames(config).google;
    const requests: IamRequest[] = [
      {
        principal,
        action: "secretsmanager:GetSecretValue",
        resource: deployedSecretArn(onboardingSecretName("example", "aws")),
        context: tagged,
      },
      ...google.flatMap((name) => [
        {
          principal,
          action: "secretsmanager:GetSecretValue",
          resource: deployedSecretArn(name),
          context: tagged,
        },
        {
          principal,
          action: "secretsmanager:PutSecretValue",
          resource: deployedSecretArn(name),
          context: tagged,
        },
      ]),
      { principal, action: "dynamodb:Query", resource: `${own.tableArn}/index/byState` },
      { principal, action: "kms:Decrypt", resource: own.keyArn },
      // The write lease of a shared secret (secret-write-lock.ts): its own partition only.
      ...["dynamodb:PutItem", "dynamodb:DeleteItem"].map((action) => ({
        principal,
        action,
        resource: own.tableArn,
        context: { "dynamodb:LeadingKeys": ["example#secret:pop2gmail/example/credentials"] },
      })),
    ];
    // Act
    const got = await decisions(requests);
    // Assess
    expect(got.filter((d) => !d.startsWith("Allowed"))).toEqual([]);
    expect(got.length).toBe(5 + 2 * google.length);
  });

  it("may not write a POP3 password or its own link key, read a POP3 password, touch the archive, queues or ledger items, or anything of another tenant", async () => {
    // Prepare
    const config = tenants.find((t) => t.tenant === "example") as TenantConfig;
    const principal = onboardingRole("example") as string;
    const own = tenantResources(account, "example");
    const other = tenantResources(account, "exampl");
    const tagged = secretTagContext("example");
    const requests: IamRequest[] = [
      ...secretNames(config).pop3.flatMap((name) => [
        {
          principal,
          action: "secretsmanager:GetSecretValue",
          resource: deployedSecretArn(name),
          context: tagged,
        },
        {
          principal,
          action: "secretsmanager:PutSecretValue",
          resource: deployedSecretArn(name),
          context: tagged,
        },
      ]),
      {
        principal,
        action: "secretsmanager:PutSecretValue",
        resource: deployedSecretArn(onboardingSecretName("example", "aws")),
        context: tagged,
      },
      // Its own Google secret without this tenant's tag: not this tenant's secret.
      ...secretNames(config).google.map((name) => ({
        principal,
        action: "secretsmanager:PutSecretValue",
        resource: deployedSecretArn(name),
        context: secretTagContext("someone-else"),
      })),
      {
        principal,
        action: "secretsmanager:PutSecretValue",
        resource: deployedSecretArn("pop2gmail/exampl/google-oauth"),
        context: secretTagContext("exampl"),
      },
      {
        principal,
        action: "secretsmanager:GetSecretValue",
        resource: deployedSecretArn(onboardingSecretName("exampl", "aws")),
        context: secretTagContext("exampl"),
      },
      {
        principal,
        action: "secretsmanager:CreateSecret",
        resource: deployedSecretArn("pop2gmail/example/new"),
      },
      {
        principal,
        action: "secretsmanager:DeleteSecret",
        resource: deployedSecretArn("pop2gmail/example/google-oauth"),
      },
      ...[
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:Scan",
      ].map((action) => ({ principal, action, resource: own.tableArn })),
      // A ledger item of a mailbox is not a secret's write lease.
      ...["dynamodb:PutItem", "dynamodb:DeleteItem"].map((action) => ({
        principal,
        action,
        resource: own.tableArn,
        context: { "dynamodb:LeadingKeys": ["example#info@example.com"] },
      })),
      { principal, action: "dynamodb:Query", resource: `${other.tableArn}/index/byState` },
      { principal, action: "s3:GetObject", resource: `${own.bucketArn}/example/info@example.com/1.eml` },
      { principal, action: "s3:PutObject", resource: `${own.bucketArn}/example/info@example.com/1.eml` },
      { principal, action: "sqs:SendMessage", resource: own.workQueueArn },
      { principal, action: "kms:GenerateDataKey", resource: own.keyArn },
      { principal, action: "kms:Decrypt", resource: other.keyArn },
      { principal, action: "lambda:InvokeFunction", resource: own.functions["copy-message"] },
    ];
    // Act
    const got = await decisions(requests);
    // Assess
    expect(got.filter((d) => d.startsWith("Allowed"))).toEqual([]);
  });
});
