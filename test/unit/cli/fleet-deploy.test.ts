import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type CommandRunner,
  type FleetDeployDeps,
  type FleetDeployReport,
  fleetDeployCommand,
  spawnRunner,
  stackOutcomes,
} from "../../../cli/commands/fleet-deploy";

const TENANTS = ["acme", "beta", "delta", "epsilon", "gamma", "omega", "zeta"];

/** A tenants folder with a minimal valid config per tenant. */
function writeTenants(dir: string, tenants: readonly string[]): void {
  for (const tenant of tenants) {
    const config = {
      tenant,
      alarmEmail: `ops@${tenant}.example`,
      mailboxes: [
        {
          id: `info@${tenant}.example`,
          pop3: { host: `pop.${tenant}.example`, user: "info", passwordSecret: `pop2gmail/${tenant}/pop3` },
          gmail: { user: `${tenant}@gmail.com`, credentialsSecret: `pop2gmail/${tenant}/google` },
        },
      ],
    };
    writeFileSync(join(dir, `${tenant}.json`), JSON.stringify(config));
  }
}

/** A cdk that records each call and prints what the real one prints; stacks in `failing` fail. */
function fakeCdk(failing: readonly string[] = [], synthFails = false) {
  const calls: string[][] = [];
  const run: CommandRunner = async (_command, args, { onLine }) => {
    calls.push([...args]);
    if (args.includes("synth")) return synthFails ? 1 : 0;
    const stacks = args.filter((a) => a.startsWith("Pop2Gmail-"));
    let code = 0;
    for (const stack of stacks) {
      if (failing.includes(stack)) {
        onLine(` ❌  ${stack} failed: The stack named ${stack} failed to deploy: UPDATE_ROLLBACK_COMPLETE`);
        code = 1;
        break; // cdk starts no further stack once one failed (concurrency 1 here)
      }
      onLine(` ✅  ${stack}`);
    }
    return code;
  };
  return { calls, run };
}

async function fleetDeploy(args: readonly string[], run: CommandRunner) {
  let out = "";
  const log: string[] = [];
  const deps: FleetDeployDeps = {
    run,
    makeAssemblyDir: () => "/tmp/assembly-for-test",
    removeAssemblyDir: () => {},
    write: (text) => {
      out += text;
    },
    log: (line) => log.push(line),
  };
  const code = await fleetDeployCommand(args, deps);
  return { code, out, log };
}

describe("pop2gmail fleet deploy", () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "pop2gmail-fleet-tenants-"));
    writeTenants(dir, TENANTS);
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("--dry-run prints the waves and the cdk commands and runs nothing", async () => {
    // Prepare
    const cdk = fakeCdk();

    // Act
    const { code, out } = await fleetDeploy(
      ["--tenants-dir", dir, "--wave-size", "2", "--concurrency", "3", "--dry-run"],
      cdk.run,
    );

    // Assess
    expect(code).toBe(0);
    expect(cdk.calls).toEqual([]);
    expect(out).toContain("plan: 7 tenant(s) in 4 wave(s); nothing is deployed");
    expect(out).toContain("wave 1: acme, beta");
    expect(out).toContain("wave 4: zeta");
    expect(out).toContain(
      "npx cdk deploy --app <assembly> Pop2Gmail-acme Pop2Gmail-beta --concurrency 3 --require-approval never",
    );
    expect(out).toMatch(/once: npx cdk synth --quiet --output <assembly> -c provider=true -c tenantsDir=/);
  });

  it("synthesizes once, then deploys every wave from that assembly, and exits 0", async () => {
    // Prepare
    const cdk = fakeCdk();

    // Act
    const { code, out } = await fleetDeploy(["--tenants-dir", dir, "--wave-size", "2", "--json"], cdk.run);
    const report = JSON.parse(out) as FleetDeployReport;

    // Assess
    expect(code).toBe(0);
    expect(cdk.calls.map((c) => c.slice(0, 2))).toEqual([
      ["cdk", "synth"],
      ["cdk", "deploy"],
      ["cdk", "deploy"],
      ["cdk", "deploy"],
      ["cdk", "deploy"],
    ]);
    expect(cdk.calls[1]).toEqual([
      "cdk",
      "deploy",
      "--app",
      "/tmp/assembly-for-test",
      "Pop2Gmail-acme",
      "Pop2Gmail-beta",
      "--concurrency",
      "4",
      "--require-approval",
      "never",
    ]);
    expect(report).toMatchObject({ deployed: TENANTS, failed: [], notAttempted: [], failedWave: null });
  });

  it("stops at the first failed wave and says which tenants deployed, failed, are unconfirmed and were not attempted", async () => {
    // Prepare: waves [acme beta gamma] [delta epsilon omega] [zeta]; epsilon fails, so cdk says
    // nothing of omega, and zeta's wave never starts.
    const cdk = fakeCdk(["Pop2Gmail-epsilon"]);
    const order = ["acme", "beta", "gamma", "delta", "epsilon", "omega", "zeta", "acme"];

    // Act
    const { code, out } = await fleetDeploy(["--tenants-dir", dir, "--wave-size", "3", ...order], cdk.run);
    const json = await fleetDeploy(
      ["--tenants-dir", dir, "--wave-size", "3", "--json", ...order],
      fakeCdk(["Pop2Gmail-epsilon"]).run,
    );
    const report = JSON.parse(json.out) as FleetDeployReport;

    // Assess
    expect(code).toBe(1);
    expect(cdk.calls.map((c) => c[1])).toEqual(["synth", "deploy", "deploy"]);
    expect(out).toContain("wave 2 of 3 failed: the rollout stopped");
    expect(out).toContain("deployed (4): acme, beta, gamma, delta");
    expect(out).toContain("failed (1): epsilon");
    expect(out).toContain("unconfirmed (in the failed wave; see pop2gmail fleet status) (1): omega");
    expect(out).toContain("not attempted (1): zeta");
    expect(json.code).toBe(1);
    expect(report).toMatchObject({
      deployed: ["acme", "beta", "gamma", "delta"],
      failed: ["epsilon"],
      unconfirmed: ["omega"],
      notAttempted: ["zeta"],
      failedWave: 2,
    });
  });

  it("deploys nothing when the one synth fails", async () => {
    // Prepare
    const cdk = fakeCdk([], true);

    // Act
    const { code, out } = await fleetDeploy(["--tenants-dir", dir, "--json"], cdk.run);

    // Assess
    expect(code).toBe(1);
    expect(cdk.calls).toHaveLength(1);
    expect(JSON.parse(out)).toMatchObject({ deployed: [], notAttempted: TENANTS, failedWave: 0 });
  });

  it("refuses a tenant without a config, and bad numbers, before running anything", async () => {
    // Prepare
    const cdk = fakeCdk();

    // Act
    const unknown = fleetDeploy(["--tenants-dir", dir, "nobody"], cdk.run);
    const zero = fleetDeploy(["--tenants-dir", dir, "--wave-size", "0"], cdk.run);

    // Assess
    await expect(unknown).rejects.toThrow(/no tenant config .*nobody\.json/);
    await expect(zero).rejects.toThrow(/--wave-size must be a whole number/);
    expect(cdk.calls).toEqual([]);
  });

  it("runs a real cdk executable (a fake one given with --cdk) as a child process, line by line", async () => {
    // Prepare: a script that logs its arguments and fails for the stack named in fail.txt.
    const bin = mkdtempSync(join(tmpdir(), "pop2gmail-fake-cdk-"));
    const script = join(bin, "cdk");
    writeFileSync(join(bin, "fail.txt"), "Pop2Gmail-gamma");
    writeFileSync(
      script,
      `#!${process.execPath}
const fs = require("node:fs");
const path = require("node:path");
const args = process.argv.slice(2);
fs.appendFileSync(path.join(__dirname, "calls.txt"), JSON.stringify(args) + "\\n");
const failing = fs.readFileSync(path.join(__dirname, "fail.txt"), "utf8");
for (const stack of args.filter((a) => a.startsWith("Pop2Gmail-"))) {
  if (stack === failing) { process.stderr.write(" ❌  " + stack + " failed: Error: boom\\n"); process.exit(1); }
  process.stdout.write(" ✅  " + stack + "\\n");
}
`,
    );
    chmodSync(script, 0o755);
    let out = "";
    const log: string[] = [];

    // Act
    const code = await fleetDeployCommand(
      ["--tenants-dir", dir, "--cdk", script, "--wave-size", "2", "--concurrency", "2"],
      {
        run: spawnRunner,
        makeAssemblyDir: () => join(bin, "assembly"),
        removeAssemblyDir: () => {},
        write: (text) => {
          out += text;
        },
        log: (line) => log.push(line),
      },
    );
    const calls = readFileSync(join(bin, "calls.txt"), "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as string[]);
    rmSync(bin, { recursive: true, force: true });

    // Assess: waves [acme beta] [delta epsilon] [gamma omega] [zeta]
    expect(code).toBe(1);
    expect(calls.map((c) => c[0])).toEqual(["synth", "deploy", "deploy", "deploy"]);
    expect(log).toContain(" ❌  Pop2Gmail-gamma failed: Error: boom");
    expect(out).toContain("wave 3 of 4 failed");
    expect(out).toContain("failed (1): gamma");
    expect(out).toContain("unconfirmed (in the failed wave; see pop2gmail fleet status) (1): omega");
    expect(out).toContain("not attempted (1): zeta");
  });
});

describe("stackOutcomes", () => {
  it("reads cdk's ✅ and ❌ lines (colour codes or not), telling Pop2Gmail-acme from Pop2Gmail-acme-eu", () => {
    // Prepare: the aws-cdk CLI's own messages; stack events are not verdicts.
    const lines = [
      " ✅  Pop2Gmail-acme-eu (no changes)",
      "Pop2Gmail-beta | 3/40 | 12:00:01 | UPDATE_FAILED | AWS::SQS::Queue | Queues/Work failed",
      "",
      " ❌  \u001b[1mPop2Gmail-acme\u001b[22m failed: ValidationError: boom",
      " ✅  Pop2Gmail-gamma",
    ];

    // Act
    const outcomes = stackOutcomes(lines, [
      "Pop2Gmail-acme",
      "Pop2Gmail-acme-eu",
      "Pop2Gmail-beta",
      "Pop2Gmail-gamma",
    ]);

    // Assess
    expect([...outcomes.entries()].sort()).toEqual([
      ["Pop2Gmail-acme", "failed"],
      ["Pop2Gmail-acme-eu", "deployed"],
      ["Pop2Gmail-gamma", "deployed"],
    ]);
  });
});
