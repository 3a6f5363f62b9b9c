import { ArnFormat, Stack } from "aws-cdk-lib";
import type { Construct } from "constructs";
import type { TenantConfig } from "../shared/config/tenant-config";

/** The secret names a tenant's mailboxes use, by who needs them (deduplicated, sorted). */
export function secretNames(config: TenantConfig): { pop3: string[]; google: string[]; all: string[] } {
  const pop3 = [...new Set(config.mailboxes.map((m) => m.pop3.passwordSecret))].sort();
  const google = [...new Set(config.mailboxes.map((m) => m.gmail.credentialsSecret))].sort();
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
