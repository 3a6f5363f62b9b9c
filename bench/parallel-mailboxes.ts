/**
 * Mailboxes in parallel and imports in flight (issue 13 items 1 and 2), through the whole local
 * runtime (child process), a real Dovecot and the Gmail API stand-in answering each import after
 * `latencyMs` with a quota of 6,000 units/min per Gmail user (4 imports/s sustained), enforced
 * like Gmail: past 6,000 units in the last 60 s the stand-in answers 429 rateLimitExceeded, and
 * each run reports how many of those it sent (the sink's pacing should make it 0).
 *
 *   npx tsx bench/parallel-mailboxes.ts [mailboxes=20] [messages=50] [latencyMs=300] [pollSeconds=30] [rounds=1] [oneMailboxMessages=200] [--burst-after=1.5] [--default-only] [--quota=6000] [--strace]
 *
 * Burst: `run` (forever) is started on empty mailboxes, then `messages` land in each of the
 * `mailboxes` boxes (each delivering into its own Gmail user); the time from the end of the burst
 * until Gmail holds every message, with the default pool, with 8 slots and with
 * `parallelMailboxes: 1` (the serial runtime), interleaved, and their ratios per round.
 * One mailbox: a backlog of `oneMailboxMessages` drained by `run --once` with 4 imports in flight
 * (the default `maxConcurrentImports`) and with 1 (one import at a time), as a share of the quota;
 * a backlog above a burst's worth (60 imports at 6,000 units/min) shows the sustained rate too
 * ("after the first 61 s"). Each line gives the stand-in's 429s and the busiest 60 s of one user.
 * `--strace` counts fsyncs instead: the burst lands first, then `run --once` (under
 * `strace -f -c -e trace=fsync,fdatasync`, which stops a forever run's child uncleanly) drains the
 * 20 mailboxes at once; its line gives the runtime's fsyncs per message (start-up, poll, copy,
 * delete). strace slows every syscall: its times are not comparable with runs without it.
 */
import { readFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { messageWithAttachment } from "../test/fixtures/awkward-messages";
import { type LocalRig, machineLine, sha256, startLocalRig } from "./support/local-rig";

/** `--burst-after=S`: seconds from the runtime's start (its first polls) to the burst (default 1.5: the worst phase). */
const BURST_AFTER_MS =
  Number(process.argv.find((a) => a.startsWith("--burst-after="))?.slice("--burst-after=".length) ?? 1.5) *
  1000;
/** `--default-only`: the default pool only (no pool 8, no serial run), and one mailbox with 4 imports in flight only. */
const DEFAULT_ONLY = process.argv.includes("--default-only");
/** `--quota=N`: units/min per Gmail user, of the stand-in and the sink (default 6,000; a huge one: no pacing). */
const QUOTA = Number(process.argv.find((a) => a.startsWith("--quota="))?.slice("--quota=".length) ?? 6000);
/** Imports per second the quota allows (25 units each). */
const QUOTA_PER_SECOND = QUOTA / 25 / 60;
/** `--strace`: count the runtime child's fsync and fdatasync calls (bench/support/local-rig.ts). */
const STRACE = process.argv.includes("--strace");
/** ~10 KB messages: the bench is about waiting, not bytes. */
const ATTACHMENT_BYTES = 7_000;

/** The most imports one Gmail user received within any 60 s (the stand-in's arrival times). */
function busiestMinute(times: readonly number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  let busiest = 0;
  let start = 0;
  for (const [end, at] of sorted.entries()) {
    while ((sorted[start] ?? at) <= at - 60_000) start += 1;
    busiest = Math.max(busiest, end - start + 1);
  }
  return busiest;
}

function busiestMinuteOfAnyUser(rig: LocalRig): number {
  return Math.max(
    0,
    ...rig.gmailUsers.map((u) => busiestMinute(rig.gmail.messages(u).map((m) => m.importedAt))),
  );
}

async function totalInGmail(rig: LocalRig): Promise<number[]> {
  return rig.gmailUsers.map((user) => rig.gmail.messages(user).length);
}

interface BurstResult {
  readonly label: string;
  readonly burstMs: number;
  readonly deliveredMs: number;
  readonly firstImportMs: number;
  readonly slowestMailboxMs: number;
  readonly inGmail: number;
  readonly exact: number;
  readonly leftOnServer: number;
  readonly cpuMs: number;
  /** 429s the stand-in's per-user quota answered (the runtime spent more than a minute's units). */
  readonly quota429s: number;
  /** The most imports one user received within any 60 s. */
  readonly busiestMinute: number;
  /** The machine's 1-minute load average at the burst and once all was delivered. */
  readonly load: readonly [number, number];
  /** Per Gmail user, its first and last import (ms after the burst, the stand-in's clock). */
  readonly perUser: ReadonlyArray<{ readonly first: number; readonly last: number }>;
  /** fsync + fdatasync calls of the runtime child (with `--strace`). */
  readonly fsyncs?: number;
}

/** Sums the `calls` column of fsync and fdatasync in an `strace -c` summary. */
async function fsyncCalls(path: string): Promise<number> {
  let calls = 0;
  for (const line of (await readFile(path, "utf8")).split("\n")) {
    const fields = line.trim().split(/\s+/);
    // % time, seconds, usecs/call, calls, [errors,] syscall
    if (fields.at(-1) === "fsync" || fields.at(-1) === "fdatasync") calls += Number(fields[3]);
  }
  return calls;
}

async function burst(
  label: string,
  mailboxes: number,
  messages: number,
  latencyMs: number,
  pollSeconds: number,
  parallelMailboxes: number | undefined,
  seed: number,
): Promise<BurstResult> {
  const straceTo = STRACE
    ? join(tmpdir(), `parallel-mailboxes-strace-${process.pid}-${seed}.txt`)
    : undefined;
  const rig = await startLocalRig({
    mailboxes,
    importLatencyMs: latencyMs,
    quotaUnitsPerMinute: QUOTA,
    pollSeconds,
    ...(parallelMailboxes === undefined ? {} : { parallelMailboxes }),
    ...(straceTo === undefined ? {} : { straceTo }),
  });
  try {
    let child = straceTo === undefined ? await rig.startRuntime("forever") : undefined;
    // The first polls (empty mailboxes) run at start; the burst lands after them.
    if (child !== undefined) await sleep(BURST_AFTER_MS);
    const hashes = new Set<string>();
    const loadAtBurst = loadavg()[0] ?? 0;
    const t0 = performance.now();
    for (let m = 0; m < mailboxes; m++) {
      const bytes = Array.from(
        { length: messages },
        (_, i) => messageWithAttachment(ATTACHMENT_BYTES, seed * 1_000_000 + m * 1000 + i).bytes,
      );
      for (const b of bytes) hashes.add(sha256(b));
      await Promise.all(bytes.map((b) => rig.deliverTo(m, b)));
    }
    const burstEnd = performance.now();
    const burstEndEpoch = Date.now();
    child ??= await rig.startRuntime("once");
    const want = mailboxes * messages;
    let firstImportAt: number | undefined;
    const doneAt = new Map<number, number>();
    for (;;) {
      const counts = await totalInGmail(rig);
      const now = performance.now();
      if (firstImportAt === undefined && counts.some((c) => c > 0)) firstImportAt = now;
      for (const [i, c] of counts.entries()) if (c >= messages && !doneAt.has(i)) doneAt.set(i, now);
      if (counts.reduce((a, b) => a + b, 0) >= want) break;
      if (now - burstEnd > 900_000) break;
      await sleep(100);
    }
    const deliveredAt = performance.now();
    const loadDelivered = loadavg()[0] ?? 0;
    // Let the last batch's DELE + QUIT land, then stop the runtime.
    await sleep(1500);
    child.stop();
    const report = await child.done;
    let exact = 0;
    let inGmail = 0;
    for (const user of rig.gmailUsers) {
      for (const m of rig.gmail.messages(user)) {
        inGmail++;
        if (hashes.has(sha256(m.raw))) exact++;
      }
    }
    let leftOnServer = 0;
    for (let m = 0; m < mailboxes; m++) leftOnServer += await rig.storedIn(m);
    return {
      label,
      burstMs: burstEnd - t0,
      deliveredMs: deliveredAt - burstEnd,
      firstImportMs: (firstImportAt ?? deliveredAt) - burstEnd,
      slowestMailboxMs: Math.max(...doneAt.values()) - (firstImportAt ?? burstEnd),
      inGmail,
      exact,
      leftOnServer,
      cpuMs: report.cpuUserMs + report.cpuSystemMs,
      quota429s: rig.gmail.quotaRefusals(),
      busiestMinute: busiestMinuteOfAnyUser(rig),
      load: [loadAtBurst, loadDelivered],
      perUser: rig.gmailUsers.map((user) => {
        const times = rig.gmail.messages(user).map((m) => m.importedAt - burstEndEpoch);
        return { first: Math.min(...times), last: Math.max(...times) };
      }),
      ...(straceTo === undefined ? {} : { fsyncs: await fsyncCalls(straceTo) }),
    };
  } finally {
    await rig.close();
  }
}

function describeBurst(r: BurstResult, want: number, pollSeconds: number): string {
  const bound = (pollSeconds + 10) * 1000;
  return `${r.label}: burst delivered to POP3 in ${(r.burstMs / 1000).toFixed(1)} s; all ${want} in Gmail ${(r.deliveredMs / 1000).toFixed(1)} s after the burst (first import at +${(r.firstImportMs / 1000).toFixed(1)} s, i.e. the next poll; from there ${((r.deliveredMs - r.firstImportMs) / 1000).toFixed(1)} s) -> within pollSeconds + 10 s = ${bound / 1000} s: ${r.deliveredMs <= bound ? "MET" : "NOT met"}; in Gmail ${r.inGmail} (byte-exact ${r.exact}), left on POP3 ${r.leftOnServer}, runtime CPU ${(r.cpuMs / want).toFixed(2)} ms/msg; quota 429s ${r.quota429s}; busiest 60 s of one user ${r.busiestMinute} imports (quota ${QUOTA / 25}); load average ${r.load[0].toFixed(1)} at the burst, ${r.load[1].toFixed(1)} when delivered; per user: first import +${spread(r.perUser.map((u) => u.first))} s, first to last import ${spread(r.perUser.map((u) => u.last - u.first))} s${r.fsyncs === undefined ? "" : `; fsyncs ${r.fsyncs} = ${(r.fsyncs / want).toFixed(2)}/msg (strace: times slowed)`}`;
}

/** "min-max" of `ms` in seconds. */
function spread(ms: readonly number[]): string {
  return `${(Math.min(...ms) / 1000).toFixed(1)}-${(Math.max(...ms) / 1000).toFixed(1)}`;
}

interface OneMailboxResult {
  readonly label: string;
  readonly copied: number;
  readonly wallMs: number;
  readonly inGmail: number;
  readonly leftOnServer: number;
  readonly quota429s: number;
  readonly busiestMinute: number;
  /** Imports a second after the first 61 s (once a burst's credit is spent), if any came then. */
  readonly afterFirstWindow: number | undefined;
}

async function oneMailbox(
  label: string,
  messages: number,
  latencyMs: number,
  maxConcurrentImports: number,
  seed: number,
): Promise<OneMailboxResult> {
  const rig = await startLocalRig({
    importLatencyMs: latencyMs,
    quotaUnitsPerMinute: QUOTA,
    maxConcurrentImports,
  });
  try {
    const bytes = Array.from(
      { length: messages },
      (_, i) => messageWithAttachment(ATTACHMENT_BYTES, seed * 1_000_000 + i).bytes,
    );
    for (let i = 0; i < bytes.length; i += 50)
      await Promise.all(bytes.slice(i, i + 50).map((b) => rig.deliver(b)));
    const child = await rig.startRuntime("once");
    const report = await child.done;
    return {
      label,
      copied: report.copied,
      wallMs: report.wallMs,
      inGmail: rig.gmail.messages(rig.gmailUser).length,
      leftOnServer: await rig.storedIn(0),
      quota429s: rig.gmail.quotaRefusals(),
      busiestMinute: busiestMinuteOfAnyUser(rig),
      afterFirstWindow: rateAfterFirstWindow(rig.gmail.messages(rig.gmailUser).map((m) => m.importedAt)),
    };
  } finally {
    await rig.close();
  }
}

/** Imports a second from 61 s after the first import to the last one (undefined if none came then). */
function rateAfterFirstWindow(times: readonly number[]): number | undefined {
  const from = Math.min(...times) + 61_000;
  const later = times.filter((t) => t > from);
  const last = Math.max(...times);
  return later.length < 2 || last <= from ? undefined : (later.length * 1000) / (last - from);
}

function describeOne(r: OneMailboxResult): string {
  const rate = (r.copied * 1000) / r.wallMs;
  return `${r.label}: ${r.copied} copied in ${(r.wallMs / 1000).toFixed(1)} s = ${rate.toFixed(2)} msg/s = ${((rate / QUOTA_PER_SECOND) * 100).toFixed(1)}% of the quota's ${QUOTA_PER_SECOND} msg/s; in Gmail ${r.inGmail}, left on POP3 ${r.leftOnServer}; quota 429s ${r.quota429s}; busiest 60 s ${r.busiestMinute} imports (quota ${QUOTA / 25})${r.afterFirstWindow === undefined ? "" : `; after the first 61 s ${r.afterFirstWindow.toFixed(2)} msg/s = ${((r.afterFirstWindow / QUOTA_PER_SECOND) * 100).toFixed(1)}% of the quota`}`;
}

async function main(): Promise<void> {
  const [mailboxes = 20, messages = 50, latencyMs = 300, pollSeconds = 30, rounds = 1, oneMessages = 200] =
    process.argv
      .slice(2)
      .filter((a) => !a.startsWith("--"))
      .map(Number);
  console.log(`parallel-mailboxes: ${await machineLine()}`);
  console.log(
    `load: ${mailboxes} mailboxes x ${messages} messages of ~${(messageWithAttachment(ATTACHMENT_BYTES, 1).bytes.length / 1024).toFixed(0)} KB, each mailbox into its own Gmail user; stand-in import latency ${latencyMs} ms, quota ${QUOTA} units/min per user (${QUOTA_PER_SECOND} imports/s); pollSeconds ${pollSeconds}`,
  );
  let failed = false;
  const want = mailboxes * messages;
  if (mailboxes > 0) {
    for (let round = 1; round <= rounds; round++) {
      const parallel = await burst(
        `round ${round} pool default`,
        mailboxes,
        messages,
        latencyMs,
        pollSeconds,
        undefined,
        round * 2,
      );
      console.log(describeBurst(parallel, want, pollSeconds));
      if (DEFAULT_ONLY) {
        failed ||= parallel.exact !== want || parallel.inGmail !== want || parallel.leftOnServer !== 0;
        continue;
      }
      const eight = await burst(
        `round ${round} pool 8 (4 per CPU)`,
        mailboxes,
        messages,
        latencyMs,
        pollSeconds,
        8,
        round * 2 + 100,
      );
      console.log(describeBurst(eight, want, pollSeconds));
      const serial = await burst(
        `round ${round} pool 1 (serial)`,
        mailboxes,
        messages,
        latencyMs,
        pollSeconds,
        1,
        round * 2 + 1,
      );
      console.log(describeBurst(serial, want, pollSeconds));
      console.log(
        `round ${round}: serial / parallel, burst to all delivered: ${(serial.deliveredMs / parallel.deliveredMs).toFixed(2)}x; from the first import: ${((serial.deliveredMs - serial.firstImportMs) / (parallel.deliveredMs - parallel.firstImportMs)).toFixed(2)}x`,
      );
      console.log(
        `round ${round}: pool 8 / default, from the first import: ${((eight.deliveredMs - eight.firstImportMs) / (parallel.deliveredMs - parallel.firstImportMs)).toFixed(2)}x`,
      );
      for (const r of [parallel, eight, serial])
        failed ||= r.exact !== want || r.inGmail !== want || r.leftOnServer !== 0;
    }
  }
  if (oneMessages > 0) {
    for (let round = 1; round <= rounds; round++) {
      const inFlight = await oneMailbox(
        `one mailbox, round ${round}, 4 imports in flight`,
        oneMessages,
        latencyMs,
        4,
        50 + round,
      );
      console.log(describeOne(inFlight));
      if (DEFAULT_ONLY) {
        failed ||= inFlight.inGmail !== oneMessages || inFlight.leftOnServer !== 0;
        continue;
      }
      const single = await oneMailbox(
        `one mailbox, round ${round}, 1 import at a time`,
        oneMessages,
        latencyMs,
        1,
        60 + round,
      );
      console.log(describeOne(single));
      const a = (inFlight.copied * 1000) / inFlight.wallMs;
      const b = (single.copied * 1000) / single.wallMs;
      console.log(
        `round ${round}: in flight / one at a time: ${(a / b).toFixed(2)}x; ${((a / QUOTA_PER_SECOND) * 100).toFixed(1)}% of the quota -> >= 95% ${a >= 0.95 * QUOTA_PER_SECOND ? "MET" : "NOT met"}`,
      );
      for (const r of [inFlight, single]) failed ||= r.inGmail !== oneMessages || r.leftOnServer !== 0;
    }
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
