import { type App, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import type { TenantConfig } from "../shared/config/tenant-config";
import { ConfigError } from "../shared/core/errors";
import { secretNames } from "./secret-arns";
import { TenantStack } from "./tenant-stack";

/**
 * Adds one `TenantStack` per config to the app and runs cdk-nag's AWS Solutions checks on them.
 * The CLI entry point and the tests both build through here, so tests check what deploys.
 */
export function addTenantStacks(app: App, configs: readonly TenantConfig[]): TenantStack[] {
  assertNoSharedSecrets(configs);
  const stacks = configs.map((config) => new TenantStack(app, { config }));
  // cdk-nag 3 is a policy-validation plugin: any unacknowledged finding fails `cdk synth`.
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return stacks;
}

/**
 * Two tenants naming the same secret would let one customer's functions read the other's
 * credentials: refuse it when both are synthesized together.
 */
export function assertNoSharedSecrets(configs: readonly TenantConfig[]): void {
  const owner = new Map<string, string>();
  for (const config of configs) {
    for (const name of secretNames(config).all) {
      const other = owner.get(name);
      if (other !== undefined && other !== config.tenant) {
        throw new ConfigError(
          "mailboxes",
          `tenants ${other} and ${config.tenant} both use the secret "${name}"; each tenant needs its own secrets`,
          { hint: "Name secrets pop2gmail/<tenant>/..., as docs/deploy.md does." },
        );
      }
      owner.set(name, config.tenant);
    }
  }
}
