/**
 * Peak RSS of a child process importing one 30 MB message through GmailMailSink into the Gmail
 * API stand-in (which runs here, in the parent, so its copy of the message is not counted).
 * The child generates the message as a stream, so only the sink's own buffering shows. The
 * child is this file bundled with esbuild and run by plain node, as on Lambda (tsx's loader
 * alone would add tens of MB to the baseline).
 *
 *   npx tsx bench/gmail-import-memory.ts
 *   CHUNK_MB=2 npx tsx bench/gmail-import-memory.ts        (resumable chunk size, default 8)
 *   RUNS=5 npx tsx bench/gmail-import-memory.ts             (child runs per path, default 3)
 *   NODE_FLAGS="--max-semi-space-size=2" npx tsx bench/gmail-import-memory.ts
 *
 * Peak is VmHWM (bench/peak-rss.ts); "loaded" is RSS once the bundle is evaluated, "after
 * warm-up" once one small message went through (token, label, lazily loaded modules).
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { GmailApiStandIn } from "../test/fakes/gmail-api-stand-in";

const SIZE = 30 * 1024 * 1024;
const MB = 1024 * 1024;

async function parent(): Promise<void> {
  const standIn = new GmailApiStandIn();
  const { baseUrl, tokenUrl } = await standIn.start();
  standIn.registerOAuthUser({ user: "info@acme.it", clientId: "c", clientSecret: "s", refreshToken: "r" });
  const dir = mkdtempSync(join(tmpdir(), "gmail-bench-"));
  const self = join(dir, "child.mjs");
  await build({
    entryPoints: [fileURLToPath(new URL("./gmail-import-child.ts", import.meta.url))],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile: self,
    banner: {
      js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
    },
    logLevel: "error",
  });
  try {
    console.log(`node ${process.version}, message ${SIZE / MB} MB`);
    // NODE_FLAGS: extra node flags for the child, e.g. "--max-semi-space-size=2" to see V8's share.
    const flags = (process.env.NODE_FLAGS ?? "").split(" ").filter((f) => f !== "");
    if (flags.length > 0) console.log(`child node flags: ${flags.join(" ")}`);
    // RUNS: child processes per upload path (default 3); the summary line gives median and range.
    const runs = Math.max(1, Number(process.env.RUNS ?? 3));
    for (const mode of ["resumable", "multipart"]) {
      const peaks: number[] = [];
      for (let run = 1; run <= runs; run += 1) {
        // Asynchronous, so this process's stand-in keeps answering while the child uploads.
        const output = await runChild(self, baseUrl, tokenUrl, mode, `${mode}-${run}`, flags);
        const { loaded, baseline, peak, ms } = JSON.parse(output) as {
          loaded: number;
          baseline: number;
          peak: number;
          ms: number;
        };
        const stored = standIn.messages().filter((m) => m.raw.length === SIZE && m.uploadType === mode);
        if (stored.length !== run) throw new Error("the stand-in did not receive the whole message");
        peaks.push(peak);
        console.log(
          `${mode.padEnd(9)} peak RSS ${(peak / MB).toFixed(1)} MB = ${(peak / SIZE).toFixed(2)}x message` +
            ` (loaded ${(loaded / MB).toFixed(0)} MB, after warm-up ${(baseline / MB).toFixed(0)} MB,` +
            ` growth ${((peak - baseline) / MB).toFixed(0)} MB), ${ms.toFixed(0)} ms`,
        );
      }
      peaks.sort((a, b) => a - b);
      const median = peaks[Math.floor((peaks.length - 1) / 2)] ?? 0;
      console.log(
        `${mode.padEnd(9)} median peak ${(median / MB).toFixed(1)} MB = ${(median / SIZE).toFixed(2)}x` +
          ` (range ${((peaks[0] ?? 0) / MB).toFixed(1)}-${((peaks.at(-1) ?? 0) / MB).toFixed(1)} MB, ${runs} runs;` +
          ` target under 3x = ${((3 * SIZE) / MB).toFixed(0)} MB)`,
      );
    }
  } finally {
    await standIn.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function runChild(
  self: string,
  baseUrl: string,
  tokenUrl: string,
  mode: string,
  tag: string,
  flags: string[],
): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [...flags, self, baseUrl, tokenUrl, mode, tag],
      { maxBuffer: 1024 * 1024 },
      (error, stdout) => (error ? reject(error) : resolve(stdout)),
    );
  });
}

await parent();
