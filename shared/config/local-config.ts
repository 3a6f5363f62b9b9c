import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import * as z from "zod";
import { ConfigError } from "../core/errors";
import { parseJsonc } from "./jsonc";
import { describeIssues, issueField } from "./parse-tenant-config";
import { strictObject } from "./strict-object";
import { tenantConfigSchema } from "./tenant-config";

/**
 * The config of the local runtime: the tenant schema (the same file a tenant deploys with) plus a
 * `local` section. The Gmail API base URL and token URL are the tenant's `google` settings.
 */
export const localSectionSchema = strictObject({
  /** Ledger, archive, credentials file and event log; default `./.data/<tenant>` beside the config. */
  dataDir: z.string().min(1).optional(),
  /** Jobs copied per POP3 session. */
  batchSize: z.number().int().min(1).max(1000).default(50),
  /** Longest `run --once` waits for messages whose retry is scheduled (rate limits, passing faults). */
  maxRetryWaitSeconds: z.number().int().min(0).max(3600).default(120),
  /**
   * Mailboxes worked on at once, each still one POP3 session at a time (docs/pipeline.md,
   * "Mailboxes in parallel"); default `defaultParallelMailboxes()`. 1 works on them one by one.
   */
  parallelMailboxes: z.number().int().min(1).max(256).optional(),
}).prefault({});

/** The tenant schema extended, not intersected: a strict tenant object would refuse `local`. */
export const localConfigSchema = tenantConfigSchema.extend({ local: localSectionSchema });

/** A validated local config; `local.dataDir` is resolved to an absolute path. */
export type LocalConfig = z.infer<typeof localConfigSchema> & {
  readonly local: { readonly dataDir: string };
};

/**
 * Validates a parsed local config. `baseDir` resolves a relative `dataDir` (the config file's
 * folder). Throws `ConfigError` naming the first offending field and listing every problem.
 */
export function parseLocalConfig(input: unknown, baseDir: string, source = "config"): LocalConfig {
  const result = localConfigSchema.safeParse(input);
  if (!result.success) {
    const first = result.error.issues[0];
    throw new ConfigError(
      first ? issueField(first) : "",
      `${source} is invalid:\n${describeIssues(result.error.issues)}`,
      {
        hint: "Fix the fields named above; see examples/local.jsonc for a commented config.",
      },
    );
  }
  const config = result.data;
  const dataDir = config.local.dataDir ?? `./.data/${config.tenant}`;
  return {
    ...config,
    local: { ...config.local, dataDir: isAbsolute(dataDir) ? dataDir : resolve(baseDir, dataDir) },
  };
}

/**
 * Reads, parses (JSON with comments and trailing commas; syntax errors at `file:line:column`) and
 * validates a local config file.
 */
export async function loadLocalConfig(path: string): Promise<LocalConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (cause) {
    throw new ConfigError("--config", `cannot read the config file ${path}`, {
      cause,
      hint: "Give the path of a config file; `pop2gmail init <tenant>` writes one.",
    });
  }
  return parseLocalConfig(parseJsonc(text, path), dirname(resolve(path)), path);
}
