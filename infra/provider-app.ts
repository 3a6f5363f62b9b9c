import { type App, Aws } from "aws-cdk-lib";
import { ConfigError } from "../shared/core/errors";
import { opsTopicArn } from "./provider-names";
import { ProviderStack } from "./provider-stack";

/**
 * The operations topic of the provider stack in the account and region a tenant stack deploys
 * to, by name (pseudo parameters resolve in the tenant's own stack). Deliberately not a
 * cross-stack reference: an export would stop the provider stack from ever replacing the topic
 * while any tenant imports it, and would make every tenant deploy wait for the provider's.
 */
export function providerOpsTopicArn(): string {
  return opsTopicArn(Aws.PARTITION, Aws.REGION, Aws.ACCOUNT_ID);
}

/**
 * Adds the provider stack (`Pop2Gmail-Provider`) to the app. Context: `opsEmail` subscribes an
 * address to the operations topic. cdk-nag runs on it through the app-wide plugin that
 * `addTenantStacks` registers (infra/app.ts builds both into one app).
 */
export function addProviderStackFromContext(app: App): ProviderStack {
  const value: unknown = app.node.tryGetContext("opsEmail");
  const opsEmail = typeof value === "string" && value !== "" ? value : undefined;
  if (opsEmail !== undefined && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(opsEmail)) {
    throw new ConfigError("opsEmail", `-c opsEmail=${opsEmail} is not an e-mail address`);
  }
  return new ProviderStack(app, opsEmail === undefined ? {} : { opsEmail });
}
