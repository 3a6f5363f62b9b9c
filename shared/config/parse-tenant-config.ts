import type { z } from "zod";
import { ConfigError } from "../core/errors";
import { type TenantConfig, tenantConfigSchema } from "./tenant-config";

/** Formats a zod issue path as `mailboxes[0].pop3.host`. */
export function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((part, index) =>
      typeof part === "number" ? `[${part}]` : `${index === 0 ? "" : "."}${String(part)}`,
    )
    .join("");
}

/** Turns zod issues into one readable message, each line naming the field. */
export function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues.map((issue) => `${formatPath(issue.path) || "(root)"}: ${issue.message}`).join("\n");
}

/**
 * Validates a parsed tenant config (from JSON or YAML). Throws `ConfigError` naming the first
 * offending field; the message lists every problem found, so one run shows them all.
 */
export function parseTenantConfig(input: unknown, source = "tenant config"): TenantConfig {
  const result = tenantConfigSchema.safeParse(input);
  if (result.success) return result.data;
  const first = result.error.issues[0];
  throw new ConfigError(
    first ? formatPath(first.path) : "",
    `${source} is invalid:\n${describeIssues(result.error.issues)}`,
    { hint: "Fix the fields named above; see examples/ for a commented config." },
  );
}
