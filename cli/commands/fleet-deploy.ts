import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { loadAllTenantConfigs, loadTenantConfig } from "../../infra/load-tenant-configs";
import { tenantStackId } from "../../infra/stack-outputs";
import { EXIT, UsageError } from "../output";
import { packageRoot } from "../package-root";

/** Stacks CloudFormation deploys at once inside a wave (cdk deploy --concurrency). */
export const DEFAULT_CONCURRENCY = 4;
/** Tenants per wave: a failed wave stops the rollout, so this bounds what one bad change reaches. */
export const DEFAULT_WAVE_SIZE = 10;

/** Runs one command to its end, passing each output line to `onLine`; resolves with the exit code. */
export type CommandRunner = (
  command: string,
  args: readonly string[],
  options: { cwd: string; onLine: (line: string) => void },
) => Promise<number>;

/** One wave of the plan: its tenants and the cdk arguments that deploy them. */
export interface Wave {
  readonly index: number;
  readonly tenants: readonly string[];
  readonly args: readonly string[];
}

/** The rollout as planned (`--dry-run` prints it) and, after a run, what came of it. */
export interface FleetDeployReport {
  readonly cdk: readonly string[];
  readonly synth: readonly string[];
  readonly waves: readonly Wave[];
  /** Tenants whose stack cdk reported deployed (or unchanged). */
  readonly deployed: readonly string[];
  /** Tenants whose stack cdk reported failed. */
  readonly failed: readonly string[];
  /** Tenants of the failed wave cdk said nothing about (check with `fleet status`). */
  readonly unconfirmed: readonly string[];
  /** Tenants of the waves after the failed one. */
  readonly notAttempted: readonly string[];
  /** The wave that failed (1-based), or null; 0 when the one synth before the waves failed. */
  readonly failedWave: number | null;
}

export interface FleetDeployDeps {
  readonly run: CommandRunner;
  /** Where the cloud assembly is written once and every wave deploys from. */
  makeAssemblyDir(): string;
  removeAssemblyDir(dir: string): void;
  write(text: string): void;
  /** cdk's own output (progress), passed through. */
  log(line: string): void;
}

/** Splits `tenants` into waves of `size` tenants each, in the given order. */
export function planWaves(tenants: readonly string[], size: number): string[][] {
  const waves: string[][] = [];
  for (let i = 0; i < tenants.length; i += size) waves.push(tenants.slice(i, i + size));
  return waves;
}

/**
 * What cdk's deploy output says of each stack: `✅  <stack>` (or `✅  <stack> (no changes)`) when
 * deployed, `❌  <stack> failed: …` when it failed (the aws-cdk CLI's own messages; it may wrap the
 * name in colour codes, which are removed first). Other lines, stack events such as
 * `UPDATE_FAILED` included, are ignored: the ❌ line is cdk's verdict on the stack.
 */
export function stackOutcomes(
  lines: readonly string[],
  stacks: readonly string[],
): Map<string, "deployed" | "failed"> {
  const outcome = new Map<string, "deployed" | "failed">();
  // Longest id first, so Pop2Gmail-acme-eu is not read as Pop2Gmail-acme.
  const ids = [...stacks].sort((a, b) => b.length - a.length);
  const named = (line: string) =>
    ids.find((id) =>
      new RegExp(`[✅❌]\\s+${id.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}($|[\\s:])`).test(line),
    );
  for (const raw of lines) {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI colour codes start with ESC.
    const line = raw.replace(/\u001b\[[0-9;]*m/g, "");
    const id = named(line);
    if (id === undefined) continue;
    if (line.includes("❌")) outcome.set(id, "failed");
    else if (outcome.get(id) !== "failed") outcome.set(id, "deployed");
  }
  return outcome;
}

/**
 * Deploys the tenants in waves: one `cdk synth` of the whole app into a cloud assembly, then per
 * wave `cdk deploy --app <assembly> <stacks> --concurrency N --require-approval never`, and stops
 * at the first wave whose cdk exits non-zero (docs/deploy.md section 10).
 */
export async function runFleetDeploy(
  plan: {
    cdk: readonly string[];
    synthArgs: readonly string[];
    waves: readonly string[][];
    concurrency: number;
  },
  deps: FleetDeployDeps,
  dryRun: boolean,
): Promise<FleetDeployReport> {
  const assembly = dryRun ? "<assembly>" : deps.makeAssemblyDir();
  const [command = "npx", ...prefix] = plan.cdk;
  const synth = [...prefix, "synth", "--quiet", "--output", assembly, ...plan.synthArgs];
  const waves = plan.waves.map(
    (tenants, i): Wave => ({
      index: i + 1,
      tenants,
      args: [
        ...prefix,
        "deploy",
        "--app",
        assembly,
        ...tenants.map(tenantStackId),
        "--concurrency",
        String(plan.concurrency),
        "--require-approval",
        "never",
      ],
    }),
  );
  const report = {
    cdk: plan.cdk,
    synth: [command, ...synth],
    waves: waves.map((w) => ({ ...w, args: [command, ...w.args] })),
  };
  const all = plan.waves.flat();
  if (dryRun)
    return { ...report, deployed: [], failed: [], unconfirmed: [], notAttempted: all, failedWave: null };
  try {
    const cwd = packageRoot();
    const passThrough = (line: string) => deps.log(line);
    if ((await deps.run(command, synth, { cwd, onLine: passThrough })) !== 0) {
      return { ...report, deployed: [], failed: [], unconfirmed: [], notAttempted: all, failedWave: 0 };
    }
    const deployed: string[] = [];
    for (const wave of waves) {
      const lines: string[] = [];
      const code = await deps.run(command, wave.args, {
        cwd,
        onLine: (line) => {
          lines.push(line);
          deps.log(line);
        },
      });
      if (code === 0) {
        deployed.push(...wave.tenants);
        continue;
      }
      const outcomes = stackOutcomes(lines, wave.tenants.map(tenantStackId));
      const of = (state: "deployed" | "failed") =>
        wave.tenants.filter((t) => outcomes.get(tenantStackId(t)) === state);
      return {
        ...report,
        deployed: [...deployed, ...of("deployed")],
        failed: of("failed"),
        unconfirmed: wave.tenants.filter((t) => !outcomes.has(tenantStackId(t))),
        notAttempted: waves.filter((w) => w.index > wave.index).flatMap((w) => w.tenants),
        failedWave: wave.index,
      };
    }
    return { ...report, deployed, failed: [], unconfirmed: [], notAttempted: [], failedWave: null };
  } finally {
    deps.removeAssemblyDir(assembly);
  }
}

/** The report as text: the plan (dry run) or the outcome. */
export function renderFleetDeploy(report: FleetDeployReport, dryRun: boolean): string {
  const lines: string[] = [];
  const total = report.waves.reduce((n, w) => n + w.tenants.length, 0);
  if (dryRun) {
    lines.push(`plan: ${total} tenant(s) in ${report.waves.length} wave(s); nothing is deployed`);
    lines.push(`  once: ${report.synth.join(" ")}`);
    for (const wave of report.waves) {
      lines.push(`  wave ${wave.index}: ${wave.tenants.join(", ")}`);
      lines.push(`    ${wave.args.join(" ")}`);
    }
    lines.push("a wave that fails stops the rollout: later waves are not attempted");
    return lines.join("\n");
  }
  if (report.failedWave === 0) {
    lines.push("cdk synth failed: nothing was deployed (its output above says why)");
  } else if (report.failedWave !== null) {
    lines.push(`wave ${report.failedWave} of ${report.waves.length} failed: the rollout stopped`);
  } else {
    lines.push(`all ${report.waves.length} wave(s) deployed`);
  }
  const list = (label: string, tenants: readonly string[]) => {
    if (tenants.length > 0) lines.push(`${label} (${tenants.length}): ${tenants.join(", ")}`);
  };
  list("deployed", report.deployed);
  list("failed", report.failed);
  list("unconfirmed (in the failed wave; see pop2gmail fleet status)", report.unconfirmed);
  list("not attempted", report.notAttempted);
  if (report.failedWave !== null) {
    lines.push(
      "what to do: read the failed stack's events (cdk's output above, or the CloudFormation console), fix the cause, then run fleet deploy again with the failed and remaining tenants",
    );
  }
  return lines.join("\n");
}

/** Runs a command without a shell, line by line; a command that cannot start exits 127. */
export const spawnRunner: CommandRunner = (command, args, { cwd, onLine }) =>
  new Promise((resolveExit) => {
    const child = spawn(command, [...args], { cwd, stdio: ["ignore", "pipe", "pipe"] });
    for (const stream of [child.stdout, child.stderr]) {
      let rest = "";
      stream.on("data", (chunk: Buffer) => {
        const text = rest + chunk.toString("utf8");
        const parts = text.split(/\r?\n/);
        rest = parts.pop() ?? "";
        for (const line of parts) onLine(line);
      });
      stream.on("end", () => {
        if (rest !== "") onLine(rest);
        rest = "";
      });
    }
    child.on("error", (error) => {
      onLine(`pop2gmail: cannot run ${command}: ${error.message}`);
      resolveExit(127);
    });
    child.on("close", (code) => resolveExit(code ?? 1));
  });

const DEFAULT_DEPS: FleetDeployDeps = {
  run: spawnRunner,
  makeAssemblyDir: () => mkdtempSync(join(tmpdir(), "pop2gmail-fleet-")),
  removeAssemblyDir: (dir) => rmSync(dir, { recursive: true, force: true }),
  write: (text) => process.stdout.write(text),
  log: (line) => process.stderr.write(`${line}\n`),
};

function positiveInteger(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^[1-9]\d{0,3}$/.test(value))
    throw new UsageError(`${flag} must be a whole number from 1 to 9999, not "${value}"`);
  return Number(value);
}

/**
 * `pop2gmail fleet deploy [--concurrency N] [--wave-size N] [--dry-run] [--json] [tenants...]`:
 * every tenant of tenants/ (or the ones named), in waves. Exit 0 when every wave deployed, 1 when
 * one failed, 2 for a usage or config error (a tenant file that does not parse stops it before
 * anything is deployed).
 */
export async function fleetDeployCommand(
  args: readonly string[],
  deps: FleetDeployDeps = DEFAULT_DEPS,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    options: {
      concurrency: { type: "string" },
      "wave-size": { type: "string" },
      "dry-run": { type: "boolean" },
      json: { type: "boolean" },
      "tenants-dir": { type: "string" },
      cdk: { type: "string" },
      context: { type: "string", short: "c", multiple: true },
      "without-provider-topic": { type: "boolean" },
    },
    allowPositionals: true,
  });
  const concurrency = positiveInteger("--concurrency", values.concurrency, DEFAULT_CONCURRENCY);
  const waveSize = positiveInteger("--wave-size", values["wave-size"], DEFAULT_WAVE_SIZE);
  const tenantsDirFlag = values["tenants-dir"];
  const tenantsDir = tenantsDirFlag === undefined ? join(packageRoot(), "tenants") : resolve(tenantsDirFlag);
  // Every file is parsed first (the app refuses to synthesize otherwise); named tenants must exist.
  const all = loadAllTenantConfigs(tenantsDir).map((c) => c.tenant);
  const tenants = positionals.length === 0 ? all : [...new Set(positionals)];
  for (const tenant of tenants) loadTenantConfig(tenantsDir, tenant);
  if (tenants.length === 0)
    throw new UsageError(`no tenant configs in ${tenantsDir}`, "Add tenants/<tenant>.json first.");
  for (const pair of values.context ?? []) {
    if (!/^[A-Za-z][\w.:-]*=/.test(pair)) throw new UsageError(`--context takes key=value, not "${pair}"`);
    if (/^tenant=/.test(pair))
      throw new UsageError("--context tenant=… would synthesize one tenant only; name tenants as arguments");
  }
  const synthArgs = [
    ...(values["without-provider-topic"] ? [] : ["-c", "provider=true"]),
    ...(tenantsDirFlag === undefined ? [] : ["-c", `tenantsDir=${tenantsDir}`]),
    ...(values.context ?? []).flatMap((pair) => ["-c", pair]),
  ];
  const cdk = (values.cdk ?? "npx cdk").split(/\s+/).filter((part) => part !== "");
  const dryRun = values["dry-run"] === true;
  const report = await runFleetDeploy(
    { cdk, synthArgs, waves: planWaves(tenants, waveSize), concurrency },
    deps,
    dryRun,
  );
  deps.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderFleetDeploy(report, dryRun)}\n`);
  return report.failedWave === null ? EXIT.ok : EXIT.failure;
}
