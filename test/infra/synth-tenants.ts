import { fileURLToPath } from "node:url";
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { loadTenantConfig } from "../../infra/load-tenant-configs";
import { addTenantStacks } from "../../infra/tenant-app";
import type { TenantStack } from "../../infra/tenant-stack";
import type { TenantConfig } from "../../shared/config/tenant-config";

/** The repository's tenants folder, holding the two example tenants. */
export const TENANTS_DIR = fileURLToPath(new URL("../../tenants/", import.meta.url));

export interface SynthesizedTenant {
  readonly stack: TenantStack;
  readonly template: Template;
}

/**
 * Builds the app the CLI builds (same stacks, same cdk-nag plugin) for the given configs
 * and synthesizes each stack once. Bundling stays on: skipping it makes CDK fingerprint the whole
 * project root instead, which is slower than esbuild. CDK's built-in CloudFormation schema
 * validation (a WASM engine, ~10 s per synth on two cores, warnings only) runs only when
 * `schemaValidation` is set; `cdk synth` always runs it.
 */
export function synthTenants(
  configs: readonly TenantConfig[],
  options: { schemaValidation?: boolean; outdir?: string } = {},
): SynthesizedTenant[] {
  const app = new App({
    builtinCloudFormationValidation: options.schemaValidation ?? false,
    ...(options.outdir === undefined ? {} : { outdir: options.outdir }),
  });
  const stacks = addTenantStacks(app, configs);
  return stacks.map((stack) => ({ stack, template: Template.fromStack(stack) }));
}

/** The example tenants shipped in tenants/. */
export function exampleConfig(tenant: "example" | "example-b"): TenantConfig {
  return loadTenantConfig(TENANTS_DIR, tenant);
}

/** CloudFormation resources of one type, by logical id. */
export function resourcesOfType(template: Template, type: string): Record<string, CfnResource> {
  return template.findResources(type) as Record<string, CfnResource>;
}

/** The loose shape of a synthesized resource, enough for property checks. */
export interface CfnResource {
  readonly Type: string;
  readonly Properties: Record<string, unknown>;
}

/** Every IAM policy statement attached to a role or managed/inline policy in the template. */
export function iamStatements(template: Template): PolicyStatementJson[] {
  const statements: PolicyStatementJson[] = [];
  for (const policy of Object.values(resourcesOfType(template, "AWS::IAM::Policy"))) {
    const document = policy.Properties.PolicyDocument as { Statement: PolicyStatementJson[] };
    statements.push(...document.Statement);
  }
  for (const role of Object.values(resourcesOfType(template, "AWS::IAM::Role"))) {
    const inline = (role.Properties.Policies ?? []) as {
      PolicyDocument: { Statement: PolicyStatementJson[] };
    }[];
    for (const policy of inline) statements.push(...policy.PolicyDocument.Statement);
  }
  return statements;
}

export interface PolicyStatementJson {
  readonly Sid?: string;
  readonly Effect: string;
  readonly Action: string | string[];
  readonly Resource: unknown;
  readonly Principal?: unknown;
  readonly Condition?: unknown;
}

/** A value as a list: IAM allows a single string or an array for Action and Resource. */
export function asList<T>(value: T | T[]): T[] {
  return Array.isArray(value) ? value : [value];
}
