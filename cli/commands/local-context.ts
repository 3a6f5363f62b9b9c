import { existsSync } from "node:fs";
import { type ParseArgsConfig, parseArgs } from "node:util";
import { type LocalConfig, loadLocalConfig } from "../../shared/config/local-config";
import { UsageError } from "../output";

/** Flag values as `parseArgs` returns them. */
export type FlagValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

/**
 * Parses `--config FILE [--json]` plus `extra` options, and loads and validates the config.
 * Without `--config`, the first positional names the config: a file path, or a tenant whose
 * config `init` wrote as `<tenant>.local.json` here (so `pop2gmail status acme` works).
 */
export async function configAndFlags(
  verb: string,
  args: readonly string[],
  extra: NonNullable<ParseArgsConfig["options"]>,
): Promise<{ config: LocalConfig; values: FlagValues; positionals: string[] }> {
  const parsed = parseArgs({
    args: [...args],
    options: { config: { type: "string", short: "c" }, json: { type: "boolean" }, ...extra },
    allowPositionals: true,
  });
  const values = parsed.values as FlagValues;
  let positionals = parsed.positionals;
  let path = values.config;
  if (typeof path !== "string" && positionals[0] !== undefined) {
    path = configPathFor(positionals[0]);
    positionals = positionals.slice(1);
  }
  if (typeof path !== "string") throw new UsageError(`${verb} needs a tenant or --config FILE`);
  return { config: await loadLocalConfig(path), values, positionals };
}

function configPathFor(tenantOrFile: string): string {
  return existsSync(tenantOrFile) || /\.jsonc?$/.test(tenantOrFile)
    ? tenantOrFile
    : `${tenantOrFile}.local.json`;
}
