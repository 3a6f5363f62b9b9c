/**
 * Wall time and peak RSS of the `pop2gmail` command, built (esbuild, plain node) against the
 * TypeScript under tsx, for `help` and for an idle `run --once` (one mailbox on a scripted POP3
 * server on loopback, empty: connect, login, UIDL, QUIT; the Gmail API stand-in is up but gets
 * no request).
 *
 *   npx tsx bench/cli-startup.ts [runs=10]
 *
 * Builds the command into bench/results/tmp/cli (scripts/build-cli.mjs), then runs every variant
 * `runs` times, interleaved (one of each per round), each a fresh process started by GNU time
 * (`/usr/bin/time -f %e %M`): wall = spawn to exit as this process saw it, RSS = the largest
 * process of the tree (for `npx`, npm's own node or the command's, whichever is larger).
 * Variants: `node dist/cli/pop2gmail.mjs` (what `bin` runs), `node --import tsx cli/main.ts`
 * (tsx's loader in the same process, as the CLI tests run it), `npx tsx cli/main.ts` (tsx's CLI,
 * which starts a second node: the old `bin` and `npm run pop2gmail`), and `npx pop2gmail` (npm
 * resolving this package's `bin`, now the built file). A bare `node -e 0` gives the floor.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { GmailApiStandIn } from "../test/fakes/gmail-api-stand-in";
import { ScriptedPop3Server } from "../test/fakes/scripted-pop3-server";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const RUNS = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 10);
const BUILT = join(ROOT, "bench/results/tmp/cli");

interface Sample {
  readonly wallMs: number;
  readonly rssKiB: number;
  readonly code: number | null;
}

/** Runs `command` under GNU time; resolves once it exited (asynchronously: the servers answer meanwhile). */
function timed(command: readonly string[], env: NodeJS.ProcessEnv): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn("/usr/bin/time", ["-f", "%e %M", ...command], {
      cwd: ROOT,
      env,
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8");
    });
    child.on("error", reject);
    child.on("close", (code) => {
      const wallMs = performance.now() - started;
      const last = stderr.trim().split("\n").at(-1) ?? "";
      const rssKiB = Number(last.split(" ")[1]);
      resolve({ wallMs, rssKiB, code });
    });
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

const build = spawnSync(process.execPath, ["scripts/build-cli.mjs", "--outdir", BUILT], {
  cwd: ROOT,
  encoding: "utf8",
});
if (build.status !== 0) throw new Error(`build failed: ${build.stderr}`);

const dir = await mkdtemp(join(tmpdir(), "pop2gmail-cli-bench-"));
const pop3 = new ScriptedPop3Server({ users: { idle: "idle-password" }, messages: [] });
const gmail = new GmailApiStandIn();
try {
  const { port } = await pop3.start();
  const google = await gmail.start();
  const oauth = { clientId: "bench", clientSecret: "bench-secret", refreshToken: "bench-refresh" };
  gmail.registerOAuthUser({ user: "idle@acme.example", ...oauth });
  const config = join(dir, "local.json");
  await writeFile(
    config,
    JSON.stringify({
      tenant: "acme",
      google: { apiBaseUrl: google.baseUrl, tokenUrl: google.tokenUrl },
      local: { dataDir: join(dir, "data") },
      mailboxes: [
        {
          id: "idle@acme.example",
          pop3: {
            host: "127.0.0.1",
            port,
            tls: "none",
            allowPlaintext: true,
            user: "idle",
            passwordSecret: "acme/pop3",
          },
          gmail: { user: "idle@acme.example", credentialsSecret: "acme/google" },
        },
      ],
    }),
  );
  const env = {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "/tmp",
    POP2GMAIL_SECRET_ACME_POP3: "idle-password",
    POP2GMAIL_SECRET_ACME_GOOGLE: JSON.stringify(oauth),
  };
  const runOnce = ["run", "--config", config, "--once"];
  const variants: { name: string; command: string[] }[] = [
    { name: "bare node (node -e 0)", command: [process.execPath, "-e", "0"] },
    {
      name: "help, built (node dist/cli/pop2gmail.mjs)",
      command: [process.execPath, `${BUILT}/pop2gmail.mjs`, "help"],
    },
    {
      name: "help, tsx loader (node --import tsx cli/main.ts)",
      command: [process.execPath, "--import", "tsx", "cli/main.ts", "help"],
    },
    { name: "help, npx tsx cli/main.ts", command: ["npx", "tsx", "cli/main.ts", "help"] },
    { name: "help, npx pop2gmail (bin: built)", command: ["npx", "pop2gmail", "help"] },
    { name: "idle run --once, built", command: [process.execPath, `${BUILT}/pop2gmail.mjs`, ...runOnce] },
    {
      name: "idle run --once, tsx loader",
      command: [process.execPath, "--import", "tsx", "cli/main.ts", ...runOnce],
    },
    { name: "idle run --once, npx tsx cli/main.ts", command: ["npx", "tsx", "cli/main.ts", ...runOnce] },
  ];
  const samples = new Map<string, Sample[]>(variants.map((v) => [v.name, []]));
  const uptimeAtStart = spawnSync("uptime", { encoding: "utf8" }).stdout.trim();
  // One warm-up round (npm's and the OS's caches), not counted.
  for (const v of variants) await timed(v.command, env);
  for (let run = 0; run < RUNS; run++) {
    for (const v of variants) samples.get(v.name)?.push(await timed(v.command, env));
  }
  const uptimeAtEnd = spawnSync("uptime", { encoding: "utf8" }).stdout.trim();
  const failed = [...samples].filter(([, s]) => s.some((x) => x.code !== 0)).map(([name]) => name);
  const bare = median(samples.get(variants[0]?.name ?? "")?.map((s) => s.wallMs) ?? []);
  console.log(
    `\n${new Date().toISOString().slice(0, 16)}Z, node ${process.version}, ${availableParallelism()} cores, ${RUNS} runs each, interleaved`,
  );
  console.log(
    `load at start: ${uptimeAtStart.replace(/.*load/, "load")}; at end: ${uptimeAtEnd.replace(/.*load/, "load")}\n`,
  );
  console.log("| command | wall, median | wall / bare node | runs (ms) | peak RSS, median |");
  console.log("|---|---|---|---|---|");
  for (const v of variants) {
    const s = samples.get(v.name) ?? [];
    const wall = median(s.map((x) => x.wallMs));
    console.log(
      `| ${v.name} | ${wall.toFixed(0)} ms | ${(wall / bare).toFixed(1)}x | ${s.map((x) => x.wallMs.toFixed(0)).join(", ")} | ${(median(s.map((x) => x.rssKiB)) / 1024).toFixed(1)} MiB |`,
    );
  }
  if (failed.length > 0) {
    console.error(`\nnon-zero exit: ${failed.join("; ")}`);
    process.exitCode = 1;
  }
} finally {
  await pop3.stop();
  await gmail.stop();
  await rm(dir, { recursive: true, force: true });
}
