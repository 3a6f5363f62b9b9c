import { fileURLToPath } from "node:url";
import { App } from "aws-cdk-lib";
import { Pop2GmailError } from "../shared/core/errors";
import { addProviderStackFromContext } from "./provider-app";
import { addTenantStacksFromContext } from "./tenant-app";

/**
 * The CDK app (`cdk.json`: `npx tsx infra/app.ts`). `-c tenant=acme` synthesizes only
 * `tenants/acme.json`; without it every tenant in `tenants/`, so `cdk deploy --all` deploys all.
 * Either way every tenant file is loaded and checked against the others (secrets). Other
 * context: `-c opsTopicArn=`, `-c provider=true` (alarms also to the provider stack's topic),
 * `-c opsEmail=` (provider stack), `-c breakGlassRoleName=`, `-c logLevel=`, `-c tenantsDir=`.
 * Without `-c tenant` the app also holds the provider stack `Pop2Gmail-Provider` (docs/deploy.md section 10).
 */
const TENANTS_DIR = fileURLToPath(new URL("../tenants/", import.meta.url));

try {
  const app = new App();
  // The provider stack only in the whole app: `-c tenant=acme` keeps a one-stack app, so a bare
  // `cdk deploy -c tenant=acme` still works. `cdk deploy Pop2Gmail-Provider` deploys it.
  const tenant: unknown = app.node.tryGetContext("tenant");
  if (typeof tenant !== "string" || tenant === "") addProviderStackFromContext(app);
  addTenantStacksFromContext(app, TENANTS_DIR);
  app.synth();
} catch (error) {
  // A config mistake should read as one clear message naming the field, not a stack trace.
  if (error instanceof Pop2GmailError) {
    console.error(`pop2gmail: ${error.message}${error.hint ? `\nhint: ${error.hint}` : ""}`);
    process.exit(1);
  }
  throw error;
}
