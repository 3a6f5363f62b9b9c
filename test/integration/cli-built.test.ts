import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to its end with plain `node` (no tsx loader), in the repository. */
function run(args: readonly string[]): Promise<Result> {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString("utf8");
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
  });
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

// Issue 13 item 4: `bin` is JavaScript built by esbuild, run by plain node; tsx is for development.
describe("the built pop2gmail command (scripts/build-cli.mjs)", () => {
  // Inside the repository (gitignored dist/): the build leaves better-sqlite3 to node_modules.
  let outdir = "";
  let command = "";

  beforeAll(async () => {
    mkdirSync(join(ROOT, "dist"), { recursive: true });
    outdir = mkdtempSync(join(ROOT, "dist", "test-build-"));
    const build = await run(["scripts/build-cli.mjs", "--outdir", outdir]);
    expect(build.code, build.stderr).toBe(0);
    command = join(outdir, "pop2gmail.mjs");
  });

  afterAll(() => {
    if (outdir !== "") rmSync(outdir, { recursive: true, force: true });
  });

  it("writes the file package.json's bin names, executable, starting with a node shebang", () => {
    // Prepare
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
      bin: Record<string, string>;
    };
    // Act
    const head = readFileSync(command, "utf8").slice(0, 40);
    // Assess
    expect(pkg.bin.pop2gmail).toBe("dist/cli/pop2gmail.mjs");
    expect(head.startsWith("#!/usr/bin/env node\n")).toBe(true);
    expect(statSync(command).mode & 0o111).not.toBe(0);
  });

  it("pop2gmail help lists the verbs and exits 0", async () => {
    // Act
    const result = await run([command, "help"]);
    // Assess
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^Usage: pop2gmail <verb>/m);
    expect(result.stdout).toMatch(/^ {2}run --config FILE/m);
  });

  it("pop2gmail run --help prints run's usage and exits 0", async () => {
    // Act
    const result = await run([command, "run", "--help"]);
    // Assess
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^Usage: pop2gmail run --config FILE/);
  });

  it("pop2gmail demo moves the generated mailbox and passes every check", async () => {
    // Act
    const result = await run([command, "demo"]);
    // Assess
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(/ok {3}archived byte-exact .* 50\/50/);
    expect(result.stdout).toMatch(/ok {3}in Gmail exactly once .* 50\/50/);
    expect(result.stdout).toContain("demo passed");
  });
});
