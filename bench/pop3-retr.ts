/**
 * RETR of a ~50 MiB message from a real Dovecot over loopback: our Pop3Client next to node-pop3
 * 0.11, each run in a child process of its own so that peak RSS (`maxRSS`) belongs to one client.
 *
 *   npx tsx bench/pop3-retr.ts [runs=5] [node-pop3 runs=3]
 *
 * Every child connects, logs in, RETRs message 1, hashes what it got and QUITs; the child times
 * connect-to-last-byte and reports its peak RSS. The parent prints a table of medians and ratios
 * and whether each client's bytes are exactly what Dovecot served (SHA-256 against a raw reader).
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { startDovecot } from "../test/fakes/dovecot";
import { RawPop3Reader } from "../test/fakes/raw-pop3-reader";
import { messageWithAttachment } from "../test/fixtures/awkward-messages";
import type { ChildConfig, ChildResult, ClientName } from "./pop3-retr-child";

const MESSAGE_BYTES = 50 * 1024 * 1024;
/** base64 makes 57 bytes into 76 characters plus CRLF: 57 raw bytes per 78 message bytes. */
const ATTACHMENT_BYTES = Math.floor((MESSAGE_BYTES * 57) / 78);
const USER = "bench";
const PASSWORD = "bench-password";

/** Bundles the child for plain Node (no TypeScript loader in its RSS); each client is its own chunk. */
async function bundleChild(outdir: string): Promise<string> {
  await build({
    entryPoints: [fileURLToPath(new URL("./pop3-retr-child.ts", import.meta.url))],
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    outdir,
    outExtension: { ".js": ".mjs" },
    logLevel: "error",
  });
  return join(outdir, "pop3-retr-child.mjs");
}

/** Runs one measurement in a fresh Node process. */
function measureInChild(childScript: string, client: ClientName, config: ChildConfig): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [childScript, client], {
      env: { ...process.env, POP3_RETR_BENCH: JSON.stringify(config) },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8");
    });
    child.on("error", reject);
    child.on("exit", (code) => {
      const line = output.trim().split("\n").at(-1) ?? "";
      if (code === 0 && line.startsWith("{")) resolve(JSON.parse(line) as ChildResult);
      else reject(new Error(`${client} child exited with ${code}: ${output.slice(-500)}`));
    });
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** Runs per client: node-pop3 takes minutes per 50 MiB here, so it gets fewer by default. */
function runsFor(client: ClientName, runs: number, nodePop3Runs: number): number {
  return client === "node-pop3-plain" ? nodePop3Runs : runs;
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 5);
  const nodePop3Runs = Number(process.argv[3] ?? 3);
  const message = messageWithAttachment(ATTACHMENT_BYTES, 50);
  const bundleDir = await mkdtemp(join(tmpdir(), "pop2gmail-bench-"));
  const dovecot = await startDovecot({ users: { [USER]: PASSWORD } });
  try {
    const childScript = await bundleChild(bundleDir);
    await dovecot.deliver(USER, message.bytes);
    const oracle = await RawPop3Reader.login(dovecot.host, dovecot.plainPort, USER, PASSWORD);
    const served = await oracle.retrieve(1);
    await oracle.quit();
    const expected = createHash("sha256").update(served).digest("hex");
    const config: ChildConfig = {
      host: dovecot.host,
      plainPort: dovecot.plainPort,
      tlsPort: dovecot.tlsPort,
      caPem: dovecot.caPem,
      user: USER,
      password: PASSWORD,
    };
    const clients: ClientName[] = ["runtime-floor", "ours-plain", "node-pop3-plain", "ours-implicit-tls"];
    const results = new Map<ClientName, ChildResult[]>(clients.map((client) => [client, []]));
    // Interleaved, so that a noisy moment on the shared machine hits every client alike.
    for (let run = 0; run < Math.max(runs, nodePop3Runs); run += 1) {
      for (const client of clients) {
        if (run >= runsFor(client, runs, nodePop3Runs)) continue;
        const result = await measureInChild(childScript, client, config);
        console.error(
          `run ${run + 1} ${client}: ${result.ms.toFixed(0)} ms, ${(result.maxRssKiB / 1024).toFixed(1)} MiB`,
        );
        results.get(client)?.push(result);
      }
    }

    console.log(
      `message: ${served.length} bytes as served (stored ${message.bytes.length}), sha256 ${expected.slice(0, 16)}…, node ${process.version}, ${new Date().toISOString()}`,
    );
    console.log("client              median ms   median peak RSS MiB   byte-exact   (all runs ms)");
    const summary = new Map<ClientName, { ms: number; rss: number }>();
    for (const client of clients) {
      const rows = results.get(client) ?? [];
      if (rows.length === 0) continue;
      const ms = median(rows.map((row) => row.ms));
      const rss = median(rows.map((row) => row.maxRssKiB)) / 1024;
      summary.set(client, { ms, rss });
      const exact =
        client === "runtime-floor" ? "-" : rows.every((row) => row.sha256 === expected) ? "yes" : "NO";
      console.log(
        `${client.padEnd(20)}${ms.toFixed(0).padStart(9)}   ${rss.toFixed(1).padStart(19)}   ${exact.padStart(10)}   (${rows.map((row) => row.ms.toFixed(0)).join(", ")})`,
      );
    }
    const ours = summary.get("ours-plain");
    const theirs = summary.get("node-pop3-plain");
    if (ours && theirs) {
      console.log(
        `node-pop3 / ours (plaintext): ${(theirs.ms / ours.ms).toFixed(1)}x the time, ${(theirs.rss / ours.rss).toFixed(1)}x the peak RSS (targets: >= 10x time, >= 3x RSS)`,
      );
    }
  } finally {
    await dovecot.stop();
    await rm(bundleDir, { recursive: true, force: true });
  }
}

await main();
