import type { BusyReason } from "../ports/telemetry";
import type { CopyOutcome } from "./copy-message";

/**
 * The one rule for "this job's outcome -> send it again later, after how long" (docs/pipeline.md,
 * "Re-sending jobs"). The copy-message function (SQS `DelaySeconds`), the local runtime (its
 * in-process queue) and the test harnesses all ask it, so they cannot disagree.
 */
export type ResendVerdict =
  /** Nothing more to do for this job: the outcome is settled (copied, in quarantine, gone). */
  | { readonly resend: false }
  /** Send the job again after `delayMs` (already within `MAX_RESEND_DELAY_MS`). */
  | { readonly resend: true; readonly delayMs: number };

/** SQS's longest `DelaySeconds` (900 s); a longer wait is re-sent again when it comes back. */
export const MAX_RESEND_DELAY_MS = 900_000;

/**
 * How long a busy mailbox is left alone. `no-lease`: our own session (a copier or the lister)
 * holds it and is done within a batch. `IN-USE`: another client holds the maildrop (RFC 2449
 * §8). `LOGIN-DELAY`: the server itself asked for a pause, usually minutes.
 */
export const BUSY_RESEND_MS: Readonly<Record<BusyReason, number>> = {
  "no-lease": 30_000,
  "IN-USE": 60_000,
  "LOGIN-DELAY": 300_000,
};

/**
 * What to do with a job after `outcome`: `copied`, `already-copied`, `quarantined` and `gone`
 * (it left the server before we read it; quarantined `VANISHED` in the ledger) are settled;
 * `busy` waits the reason's `BUSY_RESEND_MS`; `retry-later` waits what the core asked (a Gmail
 * Retry-After, a growing backoff, the rest of another copier's claim, 0 for a job not started).
 */
export function resendAfter(outcome: CopyOutcome): ResendVerdict {
  switch (outcome.kind) {
    case "copied":
    case "already-copied":
    case "quarantined":
    case "gone":
      return { resend: false };
    case "busy":
      return { resend: true, delayMs: BUSY_RESEND_MS[outcome.reason] };
    case "retry-later":
      return { resend: true, delayMs: boundedDelayMs(outcome.retryAfterMs) };
  }
}

/** `ms` within 0..`MAX_RESEND_DELAY_MS`, rounded up to whole seconds (SQS counts seconds). */
export function boundedDelayMs(ms: number): number {
  const seconds = Math.ceil(Math.max(0, Number.isFinite(ms) ? ms : MAX_RESEND_DELAY_MS) / 1000);
  return Math.min(MAX_RESEND_DELAY_MS, seconds * 1000);
}

/** A delay in milliseconds as SQS `DelaySeconds`. */
export function delaySecondsOf(delayMs: number): number {
  return boundedDelayMs(delayMs) / 1000;
}

/**
 * How long a mailbox whose pass stopped on a fault of our environment (`EnvironmentError`: full
 * disk, read-only folder, failing ledger) is left alone before the next try: 30 s, doubling with
 * each consecutive failure, at most 15 minutes. The jobs wait with it; no attempt is spent.
 */
export function environmentBackoffMs(consecutiveFailures: number): number {
  const n = Math.max(1, Math.floor(consecutiveFailures));
  return Math.min(MAX_RESEND_DELAY_MS, 30_000 * 2 ** (n - 1));
}

/** Counts of outcomes by kind, the way every caller reports a batch. */
export type OutcomeTally = Record<CopyOutcome["kind"], number>;

/** Counts `outcomes` by kind. */
export function tallyOutcomes(outcomes: readonly CopyOutcome[]): OutcomeTally {
  const tally: OutcomeTally = {
    copied: 0,
    "already-copied": 0,
    gone: 0,
    quarantined: 0,
    busy: 0,
    "retry-later": 0,
  };
  for (const outcome of outcomes) tally[outcome.kind]++;
  return tally;
}
