import { existsSync } from "node:fs";
import { chmod, mkdir } from "node:fs/promises";
import { type ParseArgsConfig, parseArgs } from "node:util";
import { type LocalConfig, loadLocalConfig } from "../../shared/config/local-config";
import { UsageError } from "../output";
import {
  createLocalRuntime,
  type LocalRuntime,
  type LocalRuntimeOverrides,
  localPaths,
} from "../runtime/local-runtime";

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

/**
 * Builds the local runtime with the data dir readable by its owner only: the dir is created (or
 * tightened) to 0700 before anything is written into it, and `ledger.sqlite` with its WAL files
 * set to 0600 once SQLite has opened them. The archive and the ledger hold whole messages.
 */
export async function openLocalRuntime(
  config: LocalConfig,
  overrides: LocalRuntimeOverrides = {},
): Promise<LocalRuntime> {
  const dataDir = config.local.dataDir;
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await chmod(dataDir, 0o700);
  const runtime = createLocalRuntime(config, overrides);
  const ledger = localPaths(dataDir).ledger;
  for (const path of [ledger, `${ledger}-wal`, `${ledger}-shm`]) {
    await chmod(path, 0o600).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "ENOENT") throw error;
    });
  }
  return runtime;
}
