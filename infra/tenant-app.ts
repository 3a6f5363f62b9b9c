import { type App, Token, Validations } from "aws-cdk-lib";
import { ApplicationLogLevel } from "aws-cdk-lib/aws-lambda";
import { AwsSolutionsChecks } from "cdk-nag";
import {
  deployedSecretNameProblem,
  type TenantConfig,
  tenantSecretPrefix,
} from "../shared/config/tenant-config";
import { ConfigError } from "../shared/core/errors";
import { DEFAULT_BREAK_GLASS_ROLE_NAME } from "./constructs/tenant-key";
import { loadAllTenantConfigs, loadTenantConfig } from "./load-tenant-configs";
import { providerOpsTopicArn } from "./provider-app";
import { secretNames } from "./secret-arns";
import { TenantStack } from "./tenant-stack";

/** Deploy-time settings that are the provider's, not a tenant's (CDK context, `-c name=value`). */
export interface TenantAppOptions {
  /**
   * Every tenant config of the deployment (all of tenants/), checked against each other even
   * when only some are synthesized: a tenant's secrets must not be reachable from another's.
   * Defaults to the synthesized configs.
   */
  readonly allTenants?: readonly TenantConfig[];
  /** A provider-wide SNS operations topic every alarm also goes to. */
  readonly opsTopicArn?: string;
  /** The only role that may disable or schedule deletion of a tenant key. */
  readonly breakGlassRoleName?: string;
  /** The functions' lowest log level (default INFO). */
  readonly logLevel?: ApplicationLogLevel;
}

/**
 * Adds one `TenantStack` per config to the app and runs cdk-nag's AWS Solutions checks on them.
 * The CLI entry point and the tests both build through here, so tests check what deploys.
 * Refuses, before building anything, a secret name outside `pop2gmail/<tenant>/`, a secret
 * shared by two tenants, and a tenant whose alarms would reach nobody.
 */
export function addTenantStacks(
  app: App,
  configs: readonly TenantConfig[],
  options: TenantAppOptions = {},
): TenantStack[] {
  const everyTenant = [
    ...(options.allTenants ?? []),
    ...configs.filter((c) => !options.allTenants?.some((a) => a.tenant === c.tenant)),
  ];
  for (const config of everyTenant) assertDeployableSecretNames(config);
  assertNoSharedSecrets(everyTenant);
  for (const config of configs) assertAlarmsReachSomeone(config, options.opsTopicArn);
  const stacks = configs.map(
    (config) =>
      new TenantStack(app, {
        config,
        breakGlassRoleName: options.breakGlassRoleName ?? DEFAULT_BREAK_GLASS_ROLE_NAME,
        logLevel: options.logLevel ?? ApplicationLogLevel.INFO,
        ...(options.opsTopicArn === undefined ? {} : { opsTopicArn: options.opsTopicArn }),
      }),
  );
  // cdk-nag 3 is a policy-validation plugin: any unacknowledged finding fails `cdk synth`.
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return stacks;
}

/**
 * What `cdk synth|deploy` builds (infra/app.ts): every tenant file is loaded and checked on every
 * synth, `-c tenant=<name>` selects the one to synthesize. Context: `tenantsDir` (default
 * `defaultTenantsDir`), `tenant`, `opsTopicArn`, `provider` (`true`: the provider stack's topic),
 * `breakGlassRoleName`, `logLevel`.
 */
export function addTenantStacksFromContext(app: App, defaultTenantsDir: string): TenantStack[] {
  const context = (name: string): string | undefined => {
    const value: unknown = app.node.tryGetContext(name);
    return typeof value === "string" && value !== "" ? value : undefined;
  };
  const tenantsDir = context("tenantsDir") ?? defaultTenantsDir;
  const tenant = context("tenant");
  // The selected tenant first, so a typo in its name is the error reported.
  const selected = tenant === undefined ? undefined : loadTenantConfig(tenantsDir, tenant);
  const allTenants = loadAllTenantConfigs(tenantsDir);
  // `-c provider=true` (or `"provider": true` in cdk.json): the provider stack's topic
  // (infra/provider-stack.ts), named by ARN.
  const provider: unknown = app.node.tryGetContext("provider");
  const opsTopicArn =
    context("opsTopicArn") ?? (provider === true || provider === "true" ? providerOpsTopicArn() : undefined);
  const breakGlassRoleName = context("breakGlassRoleName");
  return addTenantStacks(app, selected === undefined ? allTenants : [selected], {
    allTenants,
    logLevel: logLevelOf(context("logLevel")),
    ...(opsTopicArn === undefined
      ? {}
      : { opsTopicArn: Token.isUnresolved(opsTopicArn) ? opsTopicArn : checkedTopicArn(opsTopicArn) }),
    ...(breakGlassRoleName === undefined ? {} : { breakGlassRoleName }),
  });
}

/**
 * Secret names must be `pop2gmail/<tenant>/...` without `*` or `?` (tenant-config.ts): the grant
 * names them as ARN patterns, where a wildcard or another tenant's prefix would reach that
 * tenant's secrets.
 */
export function assertDeployableSecretNames(config: TenantConfig): void {
  if (config.onboardingSecret !== undefined) {
    const problem = deployedSecretNameProblem(config.tenant, config.onboardingSecret);
    if (problem !== undefined) {
      throw new ConfigError("onboardingSecret", `tenant ${config.tenant}: onboardingSecret: ${problem}`, {
        hint: `Name the tenant's secrets ${tenantSecretPrefix(config.tenant)}..., as docs/deploy.md does.`,
      });
    }
  }
  for (const [index, mailbox] of config.mailboxes.entries()) {
    for (const [field, name] of [
      ["pop3.passwordSecret", mailbox.pop3.passwordSecret],
      ["gmail.credentialsSecret", mailbox.gmail.credentialsSecret],
    ] as const) {
      const problem = deployedSecretNameProblem(config.tenant, name);
      if (problem === undefined) continue;
      const path = `mailboxes[${index}].${field}`;
      throw new ConfigError(path, `tenant ${config.tenant}: ${path}: ${problem}`, {
        hint: `Name the tenant's secrets ${tenantSecretPrefix(config.tenant)}..., as docs/deploy.md does.`,
      });
    }
  }
}

/**
 * Two tenants naming the same secret would let one customer's functions read the other's
 * credentials: refuse it (the prefix rule already prevents it; this stays as a second check).
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

/** Every alarm must reach a person: the tenant's alarm e-mail, or the provider's operations topic. */
export function assertAlarmsReachSomeone(config: TenantConfig, opsTopicArn: string | undefined): void {
  if (config.alarmEmail !== undefined || opsTopicArn !== undefined) return;
  throw new ConfigError(
    "alarmEmail",
    `tenant ${config.tenant}: its alarms would reach nobody: no alarmEmail and no operations topic`,
    {
      hint: `Set "alarmEmail" in tenants/${config.tenant}.json, or deploy with -c provider=true (the provider stack's topic, docs/deploy.md section 10) or -c opsTopicArn=<the provider's SNS operations topic ARN>.`,
    },
  );
}

function logLevelOf(value: string | undefined): ApplicationLogLevel {
  if (value === undefined) return ApplicationLogLevel.INFO;
  const levels = Object.values(ApplicationLogLevel) as string[];
  if (!levels.includes(value.toUpperCase())) {
    throw new ConfigError("logLevel", `-c logLevel=${value} is not one of ${levels.join(", ")}`);
  }
  return value.toUpperCase() as ApplicationLogLevel;
}

function checkedTopicArn(value: string): string {
  if (!/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$/.test(value)) {
    throw new ConfigError("opsTopicArn", `-c opsTopicArn=${value} is not an SNS topic ARN`);
  }
  return value;
}
