import type { Template } from "aws-cdk-lib/assertions";
import { type TenantConfig, tenantConfigSchema } from "../../shared/config/tenant-config";
import { resourcesOfType } from "./synth-tenants";

/**
 * The longest value each deploy-time token can take, so sizes are measured as AWS will count
 * them: partition `aws-us-gov`, region `ap-southeast-1`, a 12-digit account; an attribute or a
 * resource reference (an ARN, a URL, a generated name) at 256 characters, more than any here.
 */
export function worstCase(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(worstCase);
  if (value === null || typeof value !== "object") return value;
  const object = value as Record<string, unknown>;
  const ref = object.Ref;
  if (typeof ref === "string") {
    const pseudo: Record<string, string> = {
      "AWS::Partition": "aws-us-gov",
      "AWS::Region": "ap-southeast-1",
      "AWS::AccountId": "123456789012",
      "AWS::URLSuffix": "amazonaws.com.cn",
      "AWS::StackName": "x".repeat(128),
    };
    return pseudo[ref] ?? "r".repeat(256);
  }
  if ("Fn::GetAtt" in object || "Fn::ImportValue" in object) return "a".repeat(256);
  const join = object["Fn::Join"] as [string, unknown[]] | undefined;
  if (join !== undefined) return join[1].map((part) => String(worstCase(part))).join(join[0]);
  return Object.fromEntries(Object.entries(object).map(([k, v]) => [k, worstCase(v)]));
}

/** A policy document's size as IAM counts it: its JSON without white space. */
export function policyCharacters(document: unknown): number {
  return JSON.stringify(worstCase(document)).length;
}

/** Each role's inline policies (its own `Policies` and every AWS::IAM::Policy naming it), summed. */
export function rolePolicyCharacters(template: Template): Record<string, number> {
  const sizes: Record<string, number> = {};
  for (const [id, role] of Object.entries(resourcesOfType(template, "AWS::IAM::Role"))) {
    const inline = (role.Properties.Policies ?? []) as { PolicyDocument: unknown }[];
    sizes[id] = inline.reduce((sum, p) => sum + policyCharacters(p.PolicyDocument), 0);
  }
  for (const policy of Object.values(resourcesOfType(template, "AWS::IAM::Policy"))) {
    for (const role of (policy.Properties.Roles ?? []) as { Ref: string }[]) {
      sizes[role.Ref] = (sizes[role.Ref] ?? 0) + policyCharacters(policy.Properties.PolicyDocument);
    }
  }
  return sizes;
}

/** Each function's environment in bytes (keys and values), tokens at their worst case. */
export function environmentBytes(template: Template): number[] {
  return Object.values(resourcesOfType(template, "AWS::Lambda::Function")).map((fn) => {
    const variables = ((fn.Properties.Environment as { Variables?: Record<string, unknown> } | undefined)
      ?.Variables ?? {}) as Record<string, unknown>;
    return Object.entries(variables).reduce(
      (sum, [key, value]) => sum + Buffer.byteLength(key) + Buffer.byteLength(String(worstCase(value))),
      0,
    );
  });
}

/**
 * A provider's tenant of `count` mailboxes on one POP3 host, each with its own Gmail user and
 * label: `secrets: "tenant"` keeps every credential in one secret (`name#key`), `"mailbox"`
 * gives each mailbox its own two secrets, as tenants did before.
 */
export function generatedTenant(tenant: string, count: number, secrets: "tenant" | "mailbox"): TenantConfig {
  const shared = `pop2gmail/${tenant}/credentials`;
  return tenantConfigSchema.parse({
    tenant,
    alarmEmail: `ops@${tenant}.example`,
    ...(secrets === "tenant" ? { onboardingSecret: `${shared}#onboarding` } : {}),
    mailboxes: Array.from({ length: count }, (_, i) => {
      const id = `mailbox-${String(i).padStart(3, "0")}@${tenant}-customer.example`;
      return {
        id,
        pop3: {
          host: `pop.${tenant}-customer.example`,
          user: id,
          passwordSecret: secrets === "tenant" ? `${shared}#${id}` : `pop2gmail/${tenant}/${id}/pop3`,
        },
        gmail: {
          user: `customer.${tenant}.${i}@gmail.example`,
          credentialsSecret:
            secrets === "tenant" ? `${shared}#${id}/google` : `pop2gmail/${tenant}/${id}/google`,
          mailboxLabel: `POP/${id}`,
        },
        deleteAfter: "30d",
        pollSeconds: 60,
      };
    }),
  });
}
