/**
 * Peak RSS of copying one ~50 MiB message end to end through the copy-message function: the real
 * `functions/copy-message/handler.ts` (bundled, plain `node`, as on Lambda) in a child process,
 * POP3 RETR over implicit TLS from a real Dovecot -> S3ArchiveStore on fauxqs -> GmailMailSink on
 * the Gmail API stand-in, ledger in DynamoDbLedger on dynalite; servers in this process. The lister
 * (another child) puts the job on the queue first. Peak is the child's VmHWM.
 * Also: the local runtime (`runOnce`, tsx child) copying the same message, beside its own baseline.
 *
 *   npx tsx bench/end-to-end-memory.ts [runs=3] [messageMiB=50]
 */
import { messageWithAttachment } from "../test/fixtures/awkward-messages";
import { GMAIL_USER, startAwsRig } from "./support/aws-rig";
import { machineLine, median, sha256, startLocalRig } from "./support/local-rig";

/** Message size in MiB (second argument); the target is stated for 50 MB. */
const MESSAGE_BYTES = Number(process.argv[3] ?? 50) * 1024 * 1024;
/** base64 makes 57 bytes into 76 characters plus CRLF: 57 raw bytes per 78 message bytes. */
const ATTACHMENT_BYTES = Math.floor((MESSAGE_BYTES * 57) / 78);
const MiB = 2 ** 20;

interface Run {
  readonly peakMiB: number;
  readonly baselineMiB: number;
  /** RSS once the function module is loaded (deps built), before the invocation. */
  readonly loadedMiB: number;
  readonly durationMs: number;
  readonly exact: boolean;
}

async function lambdaRun(message: Buffer, digest: string): Promise<Run> {
  const rig = await startAwsRig();
  try {
    const baseline = await rig.runChild(["baseline"]);
    await rig.deliver(message);
    await rig.runChild(["list", "1"]);
    const { file, records } = await rig.receiveEventFile();
    if (records !== 1) throw new Error(`expected 1 copy job, got ${records}`);
    const copy = await rig.runChild(["copy", file]);
    const stored = rig.gmail.messages(GMAIL_USER);
    return {
      peakMiB: copy.peakRssBytes / MiB,
      baselineMiB: baseline.peakRssBytes / MiB,
      loadedMiB: copy.loadedRssBytes / MiB,
      durationMs: copy.durationsMs[0] ?? Number.NaN,
      exact: stored.length === 1 && sha256(stored[0]?.raw ?? Buffer.alloc(0)) === digest,
    };
  } finally {
    await rig.close();
  }
}

async function localRun(message: Buffer, digest: string): Promise<Run> {
  const rig = await startLocalRig();
  try {
    // Baseline: the same runtime process polling the empty mailbox.
    const idle = await (await rig.startRuntime("once")).done;
    await rig.deliver(message);
    const report = await (await rig.startRuntime("once")).done;
    const stored = rig.gmail.messages(rig.gmailUser);
    return {
      peakMiB: report.peakRssBytes / MiB,
      baselineMiB: idle.peakRssBytes / MiB,
      loadedMiB: idle.peakRssBytes / MiB,
      durationMs: report.wallMs,
      exact: stored.length === 1 && sha256(stored[0]?.raw ?? Buffer.alloc(0)) === digest,
    };
  } finally {
    await rig.close();
  }
}

function line(label: string, runs: readonly Run[]): string {
  const peak = median(runs.map((r) => r.peakMiB));
  const base = median(runs.map((r) => r.baselineMiB));
  return `${label}: median peak ${peak.toFixed(1)} MiB (${(peak * 1.048576).toFixed(0)} MB), baseline ${base.toFixed(1)} MiB, loaded ${median(runs.map((r) => r.loadedMiB)).toFixed(1)} MiB, growth ${(peak - base).toFixed(1)} MiB, peak/message ${((peak * MiB) / MESSAGE_BYTES).toFixed(2)}x, median ${(median(runs.map((r) => r.durationMs)) / 1000).toFixed(2)} s; byte-exact ${runs.every((r) => r.exact) ? "yes" : "NO"}; runs (peak MiB): ${runs.map((r) => r.peakMiB.toFixed(1)).join(", ")}`;
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 3);
  console.log(`end-to-end-memory: ${await machineLine()}`);
  const message = messageWithAttachment(ATTACHMENT_BYTES, 50).bytes;
  const digest = sha256(message);
  console.log(`message: ${message.length} bytes`);
  const lambda: Run[] = [];
  const local: Run[] = [];
  for (let run = 0; run < runs; run++) {
    lambda.push(await lambdaRun(message, digest));
    console.log(`  lambda run ${run + 1}: ${JSON.stringify(lambda.at(-1))}`);
    local.push(await localRun(message, digest));
    console.log(`  local run ${run + 1}: ${JSON.stringify(local.at(-1))}`);
  }
  const lambdaPeakMB = (median(lambda.map((r) => r.peakMiB)) * MiB) / 1e6;
  console.log(line("copy-message handler (node, bundled)", lambda));
  console.log(line("local runtime runOnce (tsx)", local));
  console.log(
    `target (stated for a 50 MB message): copy-message peak < 200 MB: ${lambdaPeakMB < 200 ? "MET" : "NOT met"} (${lambdaPeakMB.toFixed(0)} MB)`,
  );
  if (![...lambda, ...local].every((r) => r.exact)) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
