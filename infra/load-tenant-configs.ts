import { readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { parseTenantConfig } from "../shared/config/parse-tenant-config";
import type { TenantConfig } from "../shared/config/tenant-config";
import { ConfigError } from "../shared/core/errors";

/**
 * Reads and validates `tenants/<tenant>.json`. The file name must equal the config's `tenant`, so
 * `-c tenant=acme` can never deploy another customer's file under acme's stack name.
 */
export function loadTenantConfig(tenantsDir: string, tenant: string): TenantConfig {
  const available = listTenantFiles(tenantsDir);
  if (!available.includes(tenant)) {
    throw new ConfigError(
      "tenant",
      `no tenant config ${join(tenantsDir, `${tenant}.json`)} (available: ${available.join(", ") || "none"})`,
      { hint: "Create the file (see tenants/example.json) or check the -c tenant=<name> spelling." },
    );
  }
  return readTenantFile(join(tenantsDir, `${tenant}.json`), tenant);
}

/** Reads and validates every `*.json` in the tenants folder, in name order. */
export function loadAllTenantConfigs(tenantsDir: string): TenantConfig[] {
  return listTenantFiles(tenantsDir).map((tenant) =>
    readTenantFile(join(tenantsDir, `${tenant}.json`), tenant),
  );
}

function listTenantFiles(tenantsDir: string): string[] {
  return readdirSync(tenantsDir)
    .filter((file) => file.endsWith(".json"))
    .map((file) => basename(file, ".json"))
    .sort();
}

function readTenantFile(path: string, expectedTenant: string): TenantConfig {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (cause) {
    throw new ConfigError("(file)", `${path} is not valid JSON`, { cause });
  }
  const config = parseTenantConfig(json, path);
  if (config.tenant !== expectedTenant) {
    throw new ConfigError(
      "tenant",
      `${path}: tenant is "${config.tenant}" but the file is named ${expectedTenant}.json`,
      {
        hint: "Name the file after the tenant id.",
      },
    );
  }
  return config;
}
