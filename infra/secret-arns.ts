import { ArnFormat, Stack, Validations } from "aws-cdk-lib";
import type { Construct } from "constructs";
import { secretNamesOf } from "../shared/config/secret-reference";
import { type TenantConfig, tenantSecretPrefix } from "../shared/config/tenant-config";

/**
 * The secret names a tenant's mailboxes use, by who needs them (deduplicated, sorted). A
 * `name#key` reference counts as its secret `name`: a tenant secret shared by 200 mailboxes is
 * one name, one ARN, one GetSecretValue per container.
 */
export function secretNames(config: TenantConfig): { pop3: string[]; google: string[]; all: string[] } {
  const pop3 = secretNamesOf(config.mailboxes.map((m) => m.pop3.passwordSecret));
  const google = secretNamesOf(config.mailboxes.map((m) => m.gmail.credentialsSecret));
  return { pop3, google, all: [...new Set([...pop3, ...google])].sort() };
}

/**
 * The ARN pattern of a secret the operator created by name. Secrets Manager appends a dash and
 * six random characters to every secret's ARN; `??????` matches exactly those, so a secret named
 * `<name>-more` is not matched (a bare `*` would match it).
 */
export function secretArn(scope: Construct, name: string): string {
  return Stack.of(scope).formatArn({
    service: "secretsmanager",
    resource: "secret",
    resourceName: `${name}-??????`,
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
}

/**
 * Above this many distinct secrets a tenant's grants name its prefix instead of each secret.
 * At about 85 characters an ARN, 40 secrets per statement would fill a third of a role's
 * 10,240-character inline-policy limit (test/infra/tenant-limits.test.ts measures the roles);
 * 20 keeps the exact list for every tenant that uses one secret per tenant, or per-mailbox secrets
 * up to 10 mailboxes.
 */
export const MAX_EXACT_SECRET_ARNS = 20;

/** The ARN pattern of every secret of `tenant`: `pop2gmail/<tenant>/*`. */
export function tenantSecretsArn(scope: Construct, tenant: string): string {
  return Stack.of(scope).formatArn({
    service: "secretsmanager",
    resource: "secret",
    resourceName: `${tenantSecretPrefix(tenant)}*`,
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
}

/**
 * What a grant on `names` (secrets of `tenant`) lists as resources: each secret's ARN, or, when
 * the tenant has more than `MAX_EXACT_SECRET_ARNS` secrets (`allNames`, so every grant of the
 * stack decides alike), the tenant prefix `pop2gmail/<tenant>/*`. The prefix reaches no other
 * tenant's secret: synth refuses a secret outside it (`deployedSecretNameProblem`), and every
 * grant also requires the tenant's tag (access-statements.ts). Its cdk-nag IAM5 finding is
 * acknowledged on `scope`, for exactly that ARN (docs/deploy.md, section 2).
 */
export function secretGrantArns(
  scope: Construct,
  tenant: string,
  names: readonly string[],
  allNames: readonly string[],
): string[] {
  if (names.length === 0) return [];
  if (allNames.length <= MAX_EXACT_SECRET_ARNS) return names.map((name) => secretArn(scope, name));
  const prefixArn = tenantSecretsArn(scope, tenant);
  const stack = Stack.of(scope);
  Validations.of(scope).acknowledge({
    id: `AwsSolutions-IAM5[Resource::${nagResourceName(stack.resolve(prefixArn))}]`,
    reason: `Tenant ${tenant} has ${allNames.length} secrets, more than ${MAX_EXACT_SECRET_ARNS}: one ARN each would outgrow IAM's 10,240-character role policy limit, so the grant names the tenant's prefix; synth refuses any secret outside it, and the grant also requires the secret's pop2gmail:tenant tag (stack ${stack.stackName}).`,
  });
  return [prefixArn];
}

/** How cdk-nag writes a resolved ARN in a finding id: `{ Ref: X }` as `<X>`, joined. */
function nagResourceName(resolved: unknown): string {
  if (typeof resolved === "string") return resolved;
  const join = (resolved as { "Fn::Join"?: [string, unknown[]] })["Fn::Join"];
  if (join === undefined) return JSON.stringify(resolved);
  return join[1]
    .map((part) => (typeof part === "string" ? part : `<${(part as { Ref: string }).Ref}>`))
    .join(join[0]);
}
