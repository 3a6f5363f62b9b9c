/**
 * Delivery delay: messages dropped into a real Dovecot mailbox (Maildir tmp/ -> new/, as an MTA
 * does) at seeded random moments while the local runtime polls it (`runForever`, child process);
 * the delay of each message is from its `deliver()` call to its arrival (storage) at the Gmail
 * API stand-in. One rig per pollSeconds; the rigs run at the same time to keep the wall time down
 * (the runtime is idle between polls, so they barely compete).
 *
 *   npx tsx bench/delivery-delay.ts [drops=200] [pollSeconds=10,60] [spreadSeconds=240,360] [seed=7]
 *
 * Smoke run: `npx tsx bench/delivery-delay.ts 20 10 30`.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { generateMailbox } from "../test/fixtures/awkward-messages";
import { machineLine, percentile, servedForm, sha256, startLocalRig } from "./support/local-rig";

interface DelayResult {
  readonly pollSeconds: number;
  readonly drops: number;
  readonly arrived: number;
  readonly delaysMs: readonly number[];
  readonly spreadSeconds: number;
}

/** mulberry32: a small seeded PRNG in [0, 1). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function measure(
  pollSeconds: number,
  drops: number,
  spreadSeconds: number,
  seed: number,
): Promise<DelayResult> {
  const rig = await startLocalRig({ pollSeconds });
  try {
    const mail = generateMailbox(drops, seed + pollSeconds);
    const random = prng(seed * 31 + pollSeconds);
    const offsets = mail.map(() => random() * spreadSeconds * 1000).sort((a, b) => a - b);
    const dropAt = new Map<string, number[]>();
    const child = await rig.startRuntime("forever");
    const start = Date.now();
    for (const [index, message] of mail.entries()) {
      const wait = start + (offsets[index] ?? 0) - Date.now();
      if (wait > 0) await sleep(wait);
      const hash = sha256(servedForm(message.bytes));
      dropAt.set(hash, [...(dropAt.get(hash) ?? []), Date.now()]);
      await rig.deliver(message.bytes);
    }
    // Wait for the last messages: at most one poll interval plus a margin.
    const deadline = Date.now() + (pollSeconds + 30) * 1000;
    while (rig.gmail.messages(rig.gmailUser).length < drops && Date.now() < deadline) await sleep(200);
    child.stop();
    const report = await child.done;
    const delaysMs: number[] = [];
    for (const stored of rig.gmail.messages(rig.gmailUser)) {
      const times = dropAt.get(sha256(stored.raw));
      const dropped = times?.shift();
      if (dropped !== undefined) delaysMs.push(stored.importedAt - dropped);
    }
    if (!report.ok) console.log(`pollSeconds ${pollSeconds}: the runtime reported a failed or busy pass`);
    return { pollSeconds, drops, arrived: delaysMs.length, delaysMs, spreadSeconds };
  } finally {
    await rig.close();
  }
}

async function main(): Promise<void> {
  const drops = Number(process.argv[2] ?? 200);
  const polls = (process.argv[3] ?? "10,60").split(",").map(Number);
  const spreads = (process.argv[4] ?? "240,360").split(",").map(Number);
  const seed = Number(process.argv[5] ?? 7);
  console.log(`delivery-delay: ${await machineLine()}; ${drops} drops per pollSeconds, seed ${seed}`);
  const results = await Promise.all(
    polls.map((poll, index) => measure(poll, drops, spreads[index] ?? spreads.at(-1) ?? 240, seed)),
  );
  let failed = false;
  for (const r of results) {
    const [p50, p95, max] = [50, 95, 100].map((p) => percentile(r.delaysMs, p) / 1000);
    const target = r.pollSeconds + 2;
    const met = r.arrived === r.drops && (p95 ?? Number.POSITIVE_INFINITY) <= target;
    failed ||= r.arrived !== r.drops;
    console.log(
      `pollSeconds ${r.pollSeconds}: ${r.arrived}/${r.drops} arrived (drops over ${r.spreadSeconds} s); delay p50 ${p50?.toFixed(2)} s, p95 ${p95?.toFixed(2)} s, max ${max?.toFixed(2)} s; target p95 <= ${target} s ${met ? "MET" : "NOT met"}`,
    );
  }
  console.log(`finished ${await machineLine()}`);
  if (failed) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
