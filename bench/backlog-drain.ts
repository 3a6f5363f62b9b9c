/**
 * Backlog drain through the whole local pipeline: N messages of ~50 KB already in a real Dovecot
 * mailbox, then one `runOnce` of the local runtime (child process) with the Gmail API stand-in in
 * this process. Reports messages/s and the runtime's CPU ms per message (its own `cpuUsage`).
 * Then the same with the stand-in's quota (and the sink's pacing) at 6,000 units/min on a subset.
 *
 *   npx tsx bench/backlog-drain.ts [messages=2000] [runs=3] [quotaMessages=400] [--profile]
 *
 * `quotaMessages=0` skips the quota run. `--profile` writes a V8 CPU profile of each runtime
 * child into bench/results/tmp/; `--stages` sums the wall time of each port method (ledger,
 * archive, sink, POP3) per message (both for "where does the time go"). `--whatif-no-fsync`
 * turns the ledger's and the archive's fsyncs off in the runtime child: a what-if that shows
 * their cost, never a configuration of the product. `--strace` runs each runtime child under
 * `strace -f -c -e trace=fsync,fdatasync` and reports its fsyncs per message (the runtime's own,
 * not Dovecot's or the stand-in's).
 */
import { readFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { messageWithAttachment } from "../test/fixtures/awkward-messages";
import { type LocalRig, machineLine, median, sha256, startLocalRig } from "./support/local-rig";

/** base64 turns 57 bytes into 78: 36,500 raw bytes make a message of ~50 KB. */
const ATTACHMENT_BYTES = 36_500;

interface DrainResult {
  readonly messages: number;
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly inGmail: number;
  readonly exact: number;
  readonly leftOnServer: number;
  readonly peakRssMiB: number;
  readonly cpuUserMs: number;
  readonly cpuSystemMs: number;
  /** 429 answers of the stand-in (its quota refused a request). */
  readonly rateLimited: number;
  /** CPU of this process (the Gmail API stand-in) during the drain; Dovecot's is not counted. */
  readonly standInCpuMs: number;
  readonly stages?: Record<string, { calls: number; ms: number }>;
  /** fsync + fdatasync calls of the runtime process (with `--strace`). */
  readonly fsyncs?: number;
}

/** Sums the `calls` column of fsync and fdatasync in an `strace -c` summary. */
async function fsyncCalls(path: string): Promise<number> {
  const text = await readFile(path, "utf8");
  let calls = 0;
  for (const line of text.split("\n")) {
    const fields = line.trim().split(/\s+/);
    const name = fields.at(-1);
    if (name !== "fsync" && name !== "fdatasync") continue;
    // % time, seconds, usecs/call, calls, [errors,] syscall
    calls += Number(fields[3]);
  }
  return calls;
}

async function fill(rig: LocalRig, count: number, seed: number): Promise<Map<string, number>> {
  const hashes = new Map<string, number>();
  const batch = 50;
  for (let start = 0; start < count; start += batch) {
    const messages = [];
    for (let i = start; i < Math.min(count, start + batch); i++) {
      messages.push(messageWithAttachment(ATTACHMENT_BYTES, seed * 1_000_000 + i).bytes);
    }
    for (const bytes of messages) hashes.set(sha256(bytes), bytes.length);
    await Promise.all(messages.map((bytes) => rig.deliver(bytes)));
  }
  return hashes;
}

async function drainOnce(
  count: number,
  seed: number,
  quotaUnitsPerMinute: number | undefined,
  profile: boolean,
): Promise<DrainResult> {
  const straceTo = process.argv.includes("--strace")
    ? join(tmpdir(), `backlog-drain-strace-${process.pid}-${seed}.txt`)
    : undefined;
  const rig = await startLocalRig({
    ...(quotaUnitsPerMinute === undefined ? {} : { quotaUnitsPerMinute }),
    ...(straceTo === undefined ? {} : { straceTo }),
  });
  try {
    const hashes = await fill(rig, count, seed);
    const nodeArgs = profile
      ? ["--cpu-prof", `--cpu-prof-dir=${fileURLToPath(new URL("./results/tmp/", import.meta.url))}`]
      : [];
    const child = await rig.startRuntime("once", nodeArgs);
    const parentCpu0 = process.cpuUsage();
    const report = await child.done;
    const parentCpu = process.cpuUsage(parentCpu0);
    const stored = rig.gmail.messages(rig.gmailUser);
    const exact = stored.filter((m) => hashes.has(sha256(m.raw))).length;
    return {
      messages: report.copied,
      wallMs: report.wallMs,
      cpuMs: report.cpuUserMs + report.cpuSystemMs,
      inGmail: stored.length,
      exact,
      leftOnServer: await rig.dovecot.storedMessageCount("bench"),
      peakRssMiB: report.peakRssBytes / 2 ** 20,
      rateLimited: rig.gmail.countStatus(429),
      standInCpuMs: (parentCpu.user + parentCpu.system) / 1000,
      cpuUserMs: report.cpuUserMs,
      cpuSystemMs: report.cpuSystemMs,
      ...(report.stages === undefined ? {} : { stages: report.stages }),
      ...(straceTo === undefined ? {} : { fsyncs: await fsyncCalls(straceTo) }),
    };
  } finally {
    await rig.close();
  }
}

function describe(label: string, r: DrainResult): string {
  const stages =
    r.stages === undefined
      ? ""
      : `\n  per message (wall ms, calls): ${Object.entries(r.stages)
          .sort((a, b) => b[1].ms - a[1].ms)
          .map(([name, s]) => `${name} ${(s.ms / r.messages).toFixed(2)} (${s.calls})`)
          .join(", ")}`;
  return `${label}: ${r.messages} copied in ${(r.wallMs / 1000).toFixed(1)} s = ${((r.messages * 1000) / r.wallMs).toFixed(1)} msg/s (${((r.messages * 60_000) / r.wallMs).toFixed(0)}/min), CPU ${(r.cpuMs / r.messages).toFixed(2)} ms/msg, in Gmail ${r.inGmail} (byte-exact ${r.exact}), left on POP3 ${r.leftOnServer}, Gmail 429s ${r.rateLimited}, peak RSS ${r.peakRssMiB.toFixed(0)} MiB; CPU user ${(r.cpuUserMs / r.messages).toFixed(2)} + system ${(r.cpuSystemMs / r.messages).toFixed(2)} ms/msg, stand-in (parent) ${(r.standInCpuMs / r.messages).toFixed(2)} ms/msg${r.fsyncs === undefined ? "" : `, fsyncs ${r.fsyncs} = ${(r.fsyncs / r.messages).toFixed(2)}/msg`}${stages}`;
}

async function main(): Promise<void> {
  const positional = process.argv.slice(2).filter((a) => !a.startsWith("--"));
  const profile = process.argv.includes("--profile");
  if (process.argv.includes("--stages")) process.env.BENCH_STAGE_TIMING = "1";
  // What-if only (not the product): no fsync in the ledger or the archive.
  if (process.argv.includes("--whatif-no-fsync")) process.env.BENCH_WHATIF_NO_FSYNC = "1";
  const count = Number(positional[0] ?? 2000);
  const runs = Number(positional[1] ?? 3);
  const quotaCount = Number(positional[2] ?? 400);
  console.log(`backlog-drain: ${await machineLine()}`);
  console.log(`messages of ~50 KB: ${messageWithAttachment(ATTACHMENT_BYTES, 1).bytes.length} bytes each`);
  const results: DrainResult[] = [];
  for (let run = 0; run < runs; run++) {
    const r = await drainOnce(count, run + 1, undefined, profile);
    results.push(r);
    console.log(describe(`no quota, run ${run + 1}/${runs}`, r));
  }
  let failed = results.some((r) => r.inGmail !== count || r.exact !== count || r.leftOnServer !== 0);
  if (results.length > 0) {
    const rate = median(results.map((r) => (r.messages * 1000) / r.wallMs));
    const cpu = median(results.map((r) => r.cpuMs / r.messages));
    console.log(
      `no quota, median of ${runs}: ${rate.toFixed(1)} msg/s, ${cpu.toFixed(2)} CPU ms/msg (runtime process only; ${cpus().length} cores shared with Dovecot, the stand-in and others) -> target >= 100 msg/s ${rate >= 100 ? "MET" : "NOT met"}`,
    );
  }
  if (quotaCount > 0) {
    const r = await drainOnce(quotaCount, 99, 6000, false);
    console.log(describe("quota 6,000 units/min", r));
    const perMinute = (r.messages * 60_000) / r.wallMs;
    const within = Math.abs(perMinute - 240) <= 24;
    console.log(
      `quota 6,000 units/min: ${perMinute.toFixed(1)} msg/min vs 240 (${((perMinute / 240 - 1) * 100).toFixed(1)}%) -> within 10% ${within ? "MET" : "NOT met"}`,
    );
    failed ||= r.inGmail !== quotaCount || r.exact !== quotaCount || r.leftOnServer !== 0;
  }
  if (failed) {
    console.log("FAILED: a message is missing, not byte-exact or left on the server");
    process.exitCode = 1;
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
