import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import * as z from "zod";
import { ConfigError } from "../core/errors";
import { describeIssues, formatPath } from "./parse-tenant-config";
import { tenantConfigSchema } from "./tenant-config";

/**
 * The config of the local runtime: the tenant schema (the same file a tenant deploys with) plus a
 * `local` section. The Gmail API base URL and token URL are the tenant's `google` settings.
 */
export const localSectionSchema = z
  .object({
    /** Ledger, archive, credentials file and event log; default `./.data/<tenant>` beside the config. */
    dataDir: z.string().min(1).optional(),
    /** Jobs copied per POP3 session. */
    batchSize: z.number().int().min(1).max(1000).default(50),
    /** Longest `run --once` waits for messages whose retry is scheduled (rate limits, passing faults). */
    maxRetryWaitSeconds: z.number().int().min(0).max(3600).default(120),
  })
  .prefault({});

export const localConfigSchema = z.intersection(tenantConfigSchema, z.object({ local: localSectionSchema }));

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
      first ? formatPath(first.path) : "",
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

/** Strips `//` and `/* *\/` comments outside strings, so a `.jsonc` config can explain itself. */
export function stripJsonComments(text: string): string {
  let out = "";
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    const next = text[i + 1];
    if (inString) {
      out += c;
      if (c === "\\") out += text[++i] ?? "";
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
      out += c;
    } else if (c === "/" && next === "/") {
      while (i < text.length && text[i] !== "\n") i++;
      out += "\n";
    } else if (c === "/" && next === "*") {
      i += 2;
      while (i < text.length && !(text[i] === "*" && text[i + 1] === "/")) i++;
      i++;
    } else {
      out += c;
    }
  }
  return out;
}

/** Reads, parses (JSON with comments) and validates a local config file. */
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
  let json: unknown;
  try {
    // Trailing commas are common in hand-edited JSONC: drop those before } and ].
    json = JSON.parse(stripJsonComments(text).replace(/,(\s*[}\]])/g, "$1"));
  } catch (cause) {
    throw new ConfigError("--config", `${path} is not valid JSON: ${(cause as Error).message}`, {
      hint: "Fix the syntax (comments and trailing commas are allowed).",
    });
  }
  return parseLocalConfig(json, dirname(resolve(path)), path);
}
