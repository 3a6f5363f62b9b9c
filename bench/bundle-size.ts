/**
 * Bundle size and cold import time of the three Lambda handlers (issue 5, item 4; targets: under
 * 1 MB minified each, under 150 ms to load).
 *
 *   npx tsx bench/bundle-size.ts [runs=5]
 *
 * Bundles each `functions/<name>/handler.ts` with the options `infra/constructs/pipeline-function.ts`
 * gives CDK's NodejsFunction (minified ESM for node22, source map, `@aws-sdk/*` external because
 * the Lambda runtime ships it), then imports each bundle `runs` times, each in a fresh `node`
 * process, and prints the median time from before `import()` to its resolution. The bundles sit
 * under bench/results/tmp/ so the external `@aws-sdk/*` imports resolve from node_modules, as
 * they resolve from the runtime's copy in Lambda. Results go to bench/results/bundle-size.json.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";
import { ENV_NAMES } from "../shared/config/env";
import { parseTenantConfig } from "../shared/config/parse-tenant-config";

const FUNCTIONS = ["list-new-messages", "copy-message", "delete-copied"] as const;
const ROOT = fileURLToPath(new URL("../", import.meta.url));
const OUT = `${ROOT}bench/results/tmp/bundles`;
const RUNS = Number(process.argv[2] ?? 5);

/** The environment the stack gives the functions, with stand-in values (nothing is called). */
function standInEnvironment(): NodeJS.ProcessEnv {
  const config = parseTenantConfig(JSON.parse(readFileSync(`${ROOT}tenants/example.json`, "utf8")));
  return {
    PATH: process.env.PATH,
    AWS_REGION: "eu-west-1",
    AWS_ACCESS_KEY_ID: "bench",
    AWS_SECRET_ACCESS_KEY: "bench",
    [ENV_NAMES.tenantConfig]: JSON.stringify(config),
    [ENV_NAMES.ledgerTable]: "bench-ledger",
    [ENV_NAMES.archiveBucket]: "bench-archive",
    [ENV_NAMES.archiveKmsKeyId]: "arn:aws:kms:eu-west-1:123456789012:key/bench",
    [ENV_NAMES.workQueueUrl]: "https://sqs.eu-west-1.amazonaws.com/123456789012/bench",
    [ENV_NAMES.deleteFunctionName]: "bench-delete",
    POWERTOOLS_SERVICE_NAME: "pop2gmail",
    POWERTOOLS_METRICS_NAMESPACE: "Pop2Gmail",
  };
}

async function bundle(name: string): Promise<string> {
  const outfile = `${OUT}/${name}/index.mjs`;
  await build({
    entryPoints: [`${ROOT}functions/${name}/handler.ts`],
    bundle: true,
    minify: true,
    sourcemap: true,
    format: "esm",
    platform: "node",
    target: "node22",
    mainFields: ["module", "main"],
    external: ["@aws-sdk/*"],
    banner: {
      js: "import { createRequire as __createRequire } from 'node:module';const require = __createRequire(import.meta.url);",
    },
    outfile,
    logLevel: "error",
  });
  return outfile;
}

/** Milliseconds to import the bundle in a fresh process, or the error it threw. */
function coldImportMs(file: string, env: NodeJS.ProcessEnv): number | string {
  const script = `const t=performance.now();await import(${JSON.stringify(pathToFileURL(file).href)});process.stdout.write(String(performance.now()-t));`;
  const result = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    env,
    encoding: "utf8",
  });
  if (result.status !== 0) return `import failed: ${result.stderr.split("\n").slice(0, 3).join(" ")}`;
  return Number(result.stdout);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const env = standInEnvironment();
const rows: { function: string; bytes: number; coldImportMsMedian: number | string }[] = [];
for (const name of FUNCTIONS) {
  const file = await bundle(name);
  const samples = Array.from({ length: RUNS }, () => coldImportMs(file, env));
  const failure = samples.find((s) => typeof s === "string");
  rows.push({
    function: name,
    bytes: statSync(file).size,
    coldImportMsMedian: failure ?? Math.round(median(samples as number[]) * 10) / 10,
  });
}
console.table(rows);
mkdirSync(`${ROOT}bench/results`, { recursive: true });
writeFileSync(
  `${ROOT}bench/results/bundle-size.json`,
  `${JSON.stringify({ measuredAt: new Date().toISOString(), node: process.version, runs: RUNS, rows }, null, 2)}\n`,
);
