/**
 * Bundle size and cold import time of the three Lambda handlers (issue 5, item 4; targets: under
 * 1 MB minified each, under 150 ms to load).
 *
 *   npx tsx bench/bundle-size.ts [runs=5] [--sdk=external|bundled|both] [--load=idle|busy|both]
 *
 * Bundles each `functions/<name>/handler.ts` with the options CDK's NodejsFunction gets
 * (`FUNCTION_BUNDLING` of `infra/constructs/pipeline-function.ts`: minified ESM for node24, source
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
 * nothing is called), including `NODE_OPTIONS=--enable-source-maps`. It also checks that delete-copied contains none of the
 * adapters only copy-message uses (Gmail, S3, lib-storage), and names the largest inputs of each
 * bundle from esbuild's metafile. Prints a Markdown table for bench/README.md; results go to
 * bench/results/bundle-size.json.
 *
 * Against a bare start: every round also starts a plain `node` that loads nothing, and each
 * process's wall time (spawn to exit) is taken, so each function's cold start is also given as a
 * ratio to bare node measured in the same rounds. `--load=busy` runs the rounds with one
 * CPU-burning sibling process per core (started before, killed after); `both` runs idle rounds,
 * then busy ones, and prints a table for each. With the stack's variant, copy-message is also
 * bundled as before issue 13 (Google's auth library and web-streams-polyfill inside), in the
 * same rounds, for a before/after.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { isBuiltin } from "node:module";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build, type Metafile } from "esbuild";
import { functionEsbuildOptions } from "../infra/bundling/function-esbuild-options";
import { FUNCTION_BUNDLING } from "../infra/constructs/pipeline-function";
import { functionEnvironment } from "../infra/function-environment";
import { ENV_NAMES } from "../shared/config/env";
import { parseTenantConfig } from "../shared/config/parse-tenant-config";

const FUNCTIONS = ["list-new-messages", "copy-message", "delete-copied"] as const;
type FunctionName = (typeof FUNCTIONS)[number];
type Variant = "external" | "bundled";

const TARGET_BYTES = 1_000_000;
const TARGET_MS = 150;
/**
 * Inputs delete-copied must not contain: it never imports into Gmail or writes S3. (The lister
 * holds them behind a lazy import, for servers with a long LOGIN-DELAY: docs/pipeline.md.)
 */
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
type Load = "idle" | "busy";
const loadArg = args.find((a) => a.startsWith("--load="))?.slice("--load=".length) ?? "idle";
const LOADS: Load[] = loadArg === "both" ? ["idle", "busy"] : [loadArg as Load];
if (!LOADS.every((l) => l === "idle" || l === "busy")) {
  throw new Error(`--load must be idle, busy or both, not ${loadArg}`);
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
  readonly asBefore: boolean;
  readonly name: FunctionName;
  readonly file: string;
  readonly bytes: number;
  readonly mapBytes: number;
  /** Largest inputs, by package (or by source folder for our own code), bytes in the output. */
  readonly largest: { readonly input: string; readonly bytes: number }[];
  /** Packages imported at run time rather than bundled (static or `import()`), node builtins aside. */
  readonly externals: string[];
  /** COPY_ONLY inputs or externals found in delete-copied. */
  readonly misplaced: string[];
}

/**
 * `asBefore`: without the stack's aliases and extra externals (Google's auth library and
 * web-streams-polyfill bundled), as copy-message was bundled before issue 13, for a before/after
 * in the same rounds.
 */
async function bundle(
  variant: Variant,
  name: FunctionName,
  outDir: string,
  asBefore = false,
): Promise<Bundle> {
  const file = join(outDir, variant, asBefore ? `${name}-before` : name, "index.mjs");
  const options = functionEsbuildOptions();
  const result = await build({
    ...options,
    ...(asBefore ? { alias: {} } : {}),
    entryPoints: [`${ROOT}functions/${name}/handler.ts`],
    external: [
      ...(variant === "external" ? ["@aws-sdk/*"] : []),
      ...(asBefore ? [] : (options.external ?? [])),
    ],
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
    name !== "delete-copied"
      ? []
      : [...Object.keys(output.inputs), ...externals].filter((i) => COPY_ONLY.some((c) => i.includes(c)));
  return {
    variant,
    asBefore,
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

interface Sample {
  /** From before `import()` to its resolution, inside the process. */
  readonly importMs: number;
  /** The whole process, spawn to exit, as the parent saw it. */
  readonly wallMs: number;
}

/** One fresh process importing the bundle (or nothing, for bare node), or the error it threw. */
function coldStart(file: string | undefined, env: NodeJS.ProcessEnv): Sample | string {
  const script =
    file === undefined
      ? "process.stdout.write('0')"
      : `const t=performance.now();await import(${JSON.stringify(pathToFileURL(file).href)});process.stdout.write(String(performance.now()-t));`;
  const started = performance.now();
  const result = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    env,
    encoding: "utf8",
  });
  const wallMs = performance.now() - started;
  if (result.status !== 0) return `import failed: ${result.stderr.split("\n").slice(0, 3).join(" ")}`;
  return { importMs: Number(result.stdout), wallMs };
}

/** One busy-looping `node` per core, for the busy rounds; the caller kills them. */
function startBurners(): ChildProcess[] {
  return Array.from({ length: availableParallelism() }, () =>
    spawn(process.execPath, ["-e", "for(;;){}"], { stdio: "ignore" }),
  );
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
  if (variant === STACK_VARIANT) bundles.push(await bundle(variant, "copy-message", outDirs[variant], true));
}
type Row = ReturnType<typeof measure>[number];

/** `RUNS` interleaved rounds: bare node, then every bundle, each in a fresh process. */
function measure(load: Load) {
  const samples = new Map<Bundle | "bare", (Sample | string)[]>();
  for (const key of ["bare" as const, ...bundles]) samples.set(key, []);
  const burners = load === "busy" ? startBurners() : [];
  const uptimeAtStart = spawnSync("uptime", { encoding: "utf8" }).stdout.trim();
  try {
    for (let run = 0; run < RUNS; run++) {
      samples.get("bare")?.push(coldStart(undefined, env));
      for (const b of bundles) samples.get(b)?.push(coldStart(b.file, env));
    }
  } finally {
    for (const burner of burners) burner.kill("SIGKILL");
  }
  const ok = (key: Bundle | "bare") =>
    (samples.get(key) ?? []).filter((x): x is Sample => typeof x !== "string");
  const bareWallMs = median(ok("bare").map((x) => x.wallMs));
  const rows = bundles.map((b) => {
    const runs = samples.get(b) ?? [];
    const failure = runs.find((x) => typeof x === "string");
    const times = ok(b).map((x) => Math.round(x.importMs));
    const coldImportMsMedian = failure ?? median(times);
    const wallMsMedian = median(ok(b).map((x) => x.wallMs));
    return {
      load,
      sdk: b.variant === STACK_VARIANT ? `${b.variant} (stack)` : b.variant,
      function: b.asBefore ? `${b.name} (before: auth library bundled)` : b.name,
      bytes: b.bytes,
      sourceMapBytes: b.mapBytes,
      coldImportMsMedian,
      coldImportMsRuns: times,
      wallMsMedian: Math.round(wallMsMedian),
      bareNodeWallMsMedian: Math.round(bareWallMs),
      ratioToBareNode: Number((wallMsMedian / bareWallMs).toFixed(2)),
      targetsMet:
        typeof coldImportMsMedian === "number" && b.bytes < TARGET_BYTES && coldImportMsMedian < TARGET_MS,
      largestInputs: b.largest,
      externals: b.externals,
      copyOnlyInputsElsewhere: b.misplaced,
    };
  });
  return rows.map((r) => ({ ...r, uptimeAtStart }));
}

const rows: Row[] = LOADS.flatMap((load) => measure(load));
rmSync(outDirs.bundled, { recursive: true, force: true });

console.table(
  rows.map((r) => ({
    load: r.load,
    sdk: r.sdk,
    function: r.function,
    size: kb(r.bytes),
    "source map": kb(r.sourceMapBytes),
    "cold import median (ms)": r.coldImportMsMedian,
    "process / bare node": `${r.wallMsMedian} / ${r.bareNodeWallMsMedian} ms`,
    runs: r.coldImportMsRuns.join(" "),
  })),
);
const once = rows.filter((r) => r.load === LOADS[0]);
console.log("\nLargest inputs (bytes in the minified output):");
for (const r of once) {
  console.log(
    `  ${r.sdk} ${r.function}: ${r.largestInputs.map((i) => `${i.input} ${kb(i.bytes)}`).join(", ")}`,
  );
}
console.log("\nLoaded at run time (external):");
for (const r of once) console.log(`  ${r.sdk} ${r.function}: ${r.externals.join(", ") || "nothing"}`);

const uptime = spawnSync("uptime", { encoding: "utf8" }).stdout.trim();
console.log(
  `\nFor bench/README.md (${new Date().toISOString().slice(0, 16)}Z, node ${process.version}, ${RUNS} runs, ${availableParallelism()} cores, ${uptime.replace(/.*load/, "load")} at the end):\n`,
);
console.log(
  "| load | SDK | function | minified | source map | cold import, median | runs (ms) | process, median | bare node, median | ratio | targets (< 1 MB, < 150 ms) |",
);
console.log("|---|---|---|---|---|---|---|---|---|---|---|");
for (const r of rows) {
  const ms = typeof r.coldImportMsMedian === "number" ? `${r.coldImportMsMedian} ms` : r.coldImportMsMedian;
  const load = r.load === "busy" ? `busy (${availableParallelism()} burners)` : "idle";
  console.log(
    `| ${load} | ${r.sdk} | ${r.function} | ${kb(r.bytes)} | ${kb(r.sourceMapBytes)} | ${ms} | ${r.coldImportMsRuns.join(", ")} | ${r.wallMsMedian} ms | ${r.bareNodeWallMsMedian} ms | ${r.ratioToBareNode}x | ${r.targetsMet ? "met" : "missed"} |`,
  );
}
for (const load of LOADS) {
  console.log(`  ${load} rounds started at: ${rows.find((r) => r.load === load)?.uptimeAtStart ?? ""}`);
}

const misplaced = once.filter((r) => r.copyOnlyInputsElsewhere.length > 0);
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
