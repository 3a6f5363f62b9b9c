import type { z } from "zod";
import { ConfigError } from "../core/errors";
import { unknownKeyText } from "./strict-object";
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
  return issues
    .flatMap(issueLines)
    .map((line) => `${line.field || "(root)"}: ${line.message}`)
    .join("\n");
}

/**
 * The field an issue is about: for an unknown key the key itself (`mailboxes[0].deleteAftr`),
 * not the object that holds it.
 */
export function issueField(issue: z.core.$ZodIssue): string {
  return issueLines(issue)[0]?.field ?? formatPath(issue.path);
}

/** One line per problem; an unknown-keys issue (see strict-object.ts) has one per key. */
function issueLines(issue: z.core.$ZodIssue): { field: string; message: string }[] {
  if (issue.code !== "unrecognized_keys") return [{ field: formatPath(issue.path), message: issue.message }];
  const messages = issue.message.split("\n");
  return issue.keys.map((key, index) => ({
    field: formatPath([...issue.path, key]),
    message: messages.length === issue.keys.length ? (messages[index] ?? "") : unknownKeyText(key, []),
  }));
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
    first ? issueField(first) : "",
    `${source} is invalid:\n${describeIssues(result.error.issues)}`,
    { hint: "Fix the fields named above; see examples/ for a commented config." },
  );
}
