/**
 * Bundle size and cold import time of the three Lambda handlers (issue 5, item 4; targets: under
 * 1 MB minified each, under 150 ms to load).
 *
 *   npx tsx bench/bundle-size.ts [runs=5] [--sdk=external|bundled|both]
 *
 * Bundles each `functions/<name>/handler.ts` with the options CDK's NodejsFunction gets
 * (`FUNCTION_BUNDLING` of `infra/constructs/pipeline-function.ts`: minified ESM for node22, source
 * map without sources content, the CommonJS `require` banner) in two variants of the AWS SDK,
 * one of which is what the stack deploys:
 * - `external`: `@aws-sdk/*` left out, as the Lambda runtime ships an SDK v3. The bundles sit
 *   under bench/results/tmp/ so those imports resolve from node_modules, as they resolve from the
 *   runtime's copy (also plain, unbundled packages) in Lambda.
 * - `bundled`: the SDK inside the bundle (our pinned versions). These bundles are written to the
 *   system temp directory, where no node_modules is in reach, so the run also proves they are
 *   self-contained.
 * Then it imports each bundle `runs` times, each in a fresh plain `node` process (not tsx), runs
 * interleaved so machine load hits every bundle alike, and prints the median time from before
 * `import()` to its resolution. Importing runs the handler module, which builds every dependency
 * (SDK clients, adapters, Powertools) from the environment the stack sets (`functionEnvironment`,
 * with stand-in resource names;
 * nothing is called), including `NODE_OPTIONS=--enable-source-maps`. It also checks that list-new-messages and delete-copied contain none of the
 * adapters only copy-message uses (Gmail, S3, lib-storage), and names the largest inputs of each
 * bundle from esbuild's metafile. Prints a Markdown table for bench/README.md; results go to
 * bench/results/bundle-size.json.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { isBuiltin } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build, type Metafile } from "esbuild";
import { FUNCTION_BUNDLING } from "../infra/constructs/pipeline-function";
import { functionEnvironment } from "../infra/function-environment";
import { ENV_NAMES } from "../shared/config/env";
import { parseTenantConfig } from "../shared/config/parse-tenant-config";

const FUNCTIONS = ["list-new-messages", "copy-message", "delete-copied"] as const;
type FunctionName = (typeof FUNCTIONS)[number];
type Variant = "external" | "bundled";

const TARGET_BYTES = 1_000_000;
const TARGET_MS = 150;
/** Inputs only copy-message may contain: the other two functions never import into Gmail or write S3. */
const COPY_ONLY = [
  "@googleapis/",
  "googleapis-common",
  "google-auth-library",
  "gaxios",
  "@aws-sdk/client-s3",
  "@aws-sdk/lib-storage",
  "shared/adapters/gmail/",
  "shared/adapters/s3/",
];

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const args = process.argv.slice(2);
const RUNS = Number(args.find((a) => /^\d+$/.test(a)) ?? 5);
const sdkArg = args.find((a) => a.startsWith("--sdk="))?.slice("--sdk=".length) ?? "both";
const VARIANTS: Variant[] = sdkArg === "both" ? ["external", "bundled"] : [sdkArg as Variant];
if (!VARIANTS.every((v) => v === "external" || v === "bundled")) {
  throw new Error(`--sdk must be external, bundled or both, not ${sdkArg}`);
}

const STACK_VARIANT: Variant = FUNCTION_BUNDLING.bundleAwsSDK ? "bundled" : "external";

/** The environment the stack gives the lister (the others lack DELETE_FUNCTION_NAME), stand-in values. */
function standInEnvironment(): NodeJS.ProcessEnv {
  const config = parseTenantConfig(JSON.parse(readFileSync(`${ROOT}tenants/example.json`, "utf8")));
  return {
    PATH: process.env.PATH,
    AWS_REGION: "eu-west-1",
    AWS_ACCESS_KEY_ID: "bench",
    AWS_SECRET_ACCESS_KEY: "bench",
    ...functionEnvironment(config, {
      ledgerTableName: "bench-ledger",
      archiveBucketName: "bench-archive",
      archiveKeyArn: "arn:aws:kms:eu-west-1:123456789012:key/bench",
      workQueueUrl: "https://sqs.eu-west-1.amazonaws.com/123456789012/bench",
    }),
    [ENV_NAMES.deleteFunctionName]: "bench-delete",
  };
}

interface Bundle {
  readonly variant: Variant;
  readonly name: FunctionName;
  readonly file: string;
  readonly bytes: number;
  readonly mapBytes: number;
  /** Largest inputs, by package (or by source folder for our own code), bytes in the output. */
  readonly largest: { readonly input: string; readonly bytes: number }[];
  /** Packages imported at run time rather than bundled (static or `import()`), node builtins aside. */
  readonly externals: string[];
  /** COPY_ONLY inputs or externals found in a bundle other than copy-message. */
  readonly misplaced: string[];
}

async function bundle(variant: Variant, name: FunctionName, outDir: string): Promise<Bundle> {
  const file = join(outDir, variant, name, "index.mjs");
  const result = await build({
    entryPoints: [`${ROOT}functions/${name}/handler.ts`],
    bundle: true,
    minify: FUNCTION_BUNDLING.minify,
    sourcemap: FUNCTION_BUNDLING.sourceMap,
    sourcesContent: FUNCTION_BUNDLING.sourcesContent,
    format: FUNCTION_BUNDLING.format,
    platform: "node",
    target: FUNCTION_BUNDLING.target,
    mainFields: FUNCTION_BUNDLING.mainFields,
    external: variant === "external" ? ["@aws-sdk/*"] : [],
    banner: { js: FUNCTION_BUNDLING.banner },
    outfile: file,
    metafile: true,
    logLevel: "error",
  });
  const output = Object.values(result.metafile.outputs).find((o) => o.entryPoint !== undefined);
  if (output === undefined) throw new Error(`esbuild wrote no entry point for ${name}`);
  const externals = [
    ...new Set(
      output.imports
        .filter((i) => i.external && !isBuiltin(i.path))
        .map((i) => (i.kind === "dynamic-import" ? `${i.path} (on first use)` : i.path)),
    ),
  ].sort();
  const misplaced =
    name === "copy-message"
      ? []
      : [...Object.keys(output.inputs), ...externals].filter((i) => COPY_ONLY.some((c) => i.includes(c)));
  return {
    variant,
    name,
    file,
    bytes: statSync(file).size,
    mapBytes: statSync(`${file}.map`).size,
    largest: largestInputs(output.inputs, 5),
    externals,
    misplaced: [...new Set(misplaced.map(packageOf))],
  };
}

/** `node_modules/@scope/pkg/...` -> `@scope/pkg`; our own files -> their folder. */
function packageOf(input: string): string {
  const match = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  if (match?.[1] !== undefined) return match[1];
  return input.split("/").slice(0, -1).join("/") || input;
}

function largestInputs(inputs: Metafile["outputs"][string]["inputs"], count: number) {
  const byPackage = new Map<string, number>();
  for (const [input, { bytesInOutput }] of Object.entries(inputs)) {
    const key = packageOf(input);
    byPackage.set(key, (byPackage.get(key) ?? 0) + bytesInOutput);
  }
  return [...byPackage]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([input, bytes]) => ({ input, bytes }));
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

const kb = (bytes: number) => `${(bytes / 1000).toFixed(0)} KB`;

const env = standInEnvironment();
// external bundles must resolve @aws-sdk/* from node_modules; bundled ones must not reach it.
const outDirs: Record<Variant, string> = {
  external: `${ROOT}bench/results/tmp/bundles`,
  bundled: mkdtempSync(join(tmpdir(), "pop2gmail-bundles-")),
};
const bundles: Bundle[] = [];
for (const variant of VARIANTS) {
  for (const name of FUNCTIONS) bundles.push(await bundle(variant, name, outDirs[variant]));
}
const samples = new Map<Bundle, (number | string)[]>(bundles.map((b) => [b, []]));
for (let run = 0; run < RUNS; run++) {
  for (const b of bundles) samples.get(b)?.push(coldImportMs(b.file, env));
}
rmSync(outDirs.bundled, { recursive: true, force: true });

const rows = bundles.map((b) => {
  const runs = samples.get(b) ?? [];
  const failure = runs.find((s) => typeof s === "string");
  const times = runs.filter((s): s is number => typeof s === "number").map((t) => Math.round(t));
  const coldImportMsMedian = failure ?? median(times);
  return {
    sdk: b.variant === STACK_VARIANT ? `${b.variant} (stack)` : b.variant,
    function: b.name,
    bytes: b.bytes,
    sourceMapBytes: b.mapBytes,
    coldImportMsMedian,
    coldImportMsRuns: times,
    targetsMet:
      typeof coldImportMsMedian === "number" && b.bytes < TARGET_BYTES && coldImportMsMedian < TARGET_MS,
    largestInputs: b.largest,
    externals: b.externals,
    copyOnlyInputsElsewhere: b.misplaced,
  };
});

console.table(
  rows.map((r) => ({
    sdk: r.sdk,
    function: r.function,
    size: kb(r.bytes),
    "source map": kb(r.sourceMapBytes),
    "cold import median (ms)": r.coldImportMsMedian,
    runs: r.coldImportMsRuns.join(" "),
  })),
);
console.log("\nLargest inputs (bytes in the minified output):");
for (const r of rows) {
  console.log(
    `  ${r.sdk} ${r.function}: ${r.largestInputs.map((i) => `${i.input} ${kb(i.bytes)}`).join(", ")}`,
  );
}
console.log("\nLoaded at run time (external):");
for (const r of rows) console.log(`  ${r.sdk} ${r.function}: ${r.externals.join(", ") || "nothing"}`);

const uptime = spawnSync("uptime", { encoding: "utf8" }).stdout.trim();
console.log(
  `\nFor bench/README.md (${new Date().toISOString().slice(0, 16)}Z, node ${process.version}, ${RUNS} runs, ${uptime.replace(/.*load/, "load")}):\n`,
);
console.log(
  "| SDK | function | minified | source map | cold import, median | runs (ms) | targets (< 1 MB, < 150 ms) |",
);
console.log("|---|---|---|---|---|---|---|");
for (const r of rows) {
  const ms = typeof r.coldImportMsMedian === "number" ? `${r.coldImportMsMedian} ms` : r.coldImportMsMedian;
  console.log(
    `| ${r.sdk} | ${r.function} | ${kb(r.bytes)} | ${kb(r.sourceMapBytes)} | ${ms} | ${r.coldImportMsRuns.join(", ")} | ${r.targetsMet ? "met" : "missed"} |`,
  );
}

const misplaced = rows.filter((r) => r.copyOnlyInputsElsewhere.length > 0);
for (const r of misplaced) {
  console.error(
    `\n${r.sdk} ${r.function} contains copy-message-only code: ${r.copyOnlyInputsElsewhere.join(", ")}`,
  );
}
if (misplaced.length > 0 || rows.some((r) => typeof r.coldImportMsMedian === "string")) process.exitCode = 1;

mkdirSync(`${ROOT}bench/results`, { recursive: true });
writeFileSync(
  `${ROOT}bench/results/bundle-size.json`,
  `${JSON.stringify({ measuredAt: new Date().toISOString(), node: process.version, uptime, runs: RUNS, rows }, null, 2)}\n`,
);
