import { describe, expect, it } from "vitest";
import type { CopyOutcome } from "../../../shared/core/copy-message";
import { RateLimitedError, ShutdownRequestedError } from "../../../shared/core/errors";
import type { LedgerEntry } from "../../../shared/core/model";
import {
  BUSY_RESEND_MS,
  environmentBackoffMs,
  MAX_RESEND_DELAY_MS,
  resendAfter,
  tallyOutcomes,
} from "../../../shared/core/retry-rule";

/** docs/pipeline.md, "Re-sending jobs (one rule)". */
const entry = { uidl: "u" } as LedgerEntry;

describe("resendAfter", () => {
  it.each<[string, CopyOutcome]>([
    ["copied", { kind: "copied", entry }],
    ["already-copied", { kind: "already-copied", entry }],
    ["quarantined", { kind: "quarantined", entry }],
    ["gone", { kind: "gone", uidl: "u" }],
  ])("settles %s: nothing is re-sent", (_label, outcome) => {
    // Act / Assess
    expect(resendAfter(outcome)).toEqual({ resend: false });
  });

  it("waits for a busy mailbox as long as its reason asks: our lease 30 s, IN-USE 60 s, LOGIN-DELAY 300 s", () => {
    // Act
    const delays = (["no-lease", "IN-USE", "LOGIN-DELAY"] as const).map((reason) =>
      resendAfter({ kind: "busy", reason }),
    );

    // Assess
    expect(delays).toEqual([
      { resend: true, delayMs: 30_000 },
      { resend: true, delayMs: 60_000 },
      { resend: true, delayMs: 300_000 },
    ]);
    expect(BUSY_RESEND_MS["IN-USE"]).toBe(60_000);
  });

  it("waits what the core asked for a retry-later, in whole seconds within 0-900 s", () => {
    // Prepare
    const later = (ms: number): CopyOutcome => ({
      kind: "retry-later",
      error: new RateLimitedError("google", ms, "429"),
      retryAfterMs: ms,
    });

    // Act
    const delays = [-5, 0, 1, 2_500, 899_001, 10_000_000, Number.POSITIVE_INFINITY].map(
      (ms) => (resendAfter(later(ms)) as { delayMs: number }).delayMs,
    );

    // Assess
    expect(delays).toEqual([0, 0, 1_000, 3_000, 900_000, 900_000, MAX_RESEND_DELAY_MS]);
  });

  it("re-sends a job not started at once", () => {
    // Act
    const verdict = resendAfter({
      kind: "retry-later",
      error: new ShutdownRequestedError("not started"),
      retryAfterMs: 0,
    });

    // Assess
    expect(verdict).toEqual({ resend: true, delayMs: 0 });
  });
});

describe("environmentBackoffMs", () => {
  it("starts at 30 s and doubles up to 15 minutes", () => {
    // Act / Assess
    expect([1, 2, 3, 5, 6, 50].map(environmentBackoffMs)).toEqual([
      30_000, 60_000, 120_000, 480_000, 900_000, 900_000,
    ]);
  });
});

describe("tallyOutcomes", () => {
  it("counts gone apart from quarantined", () => {
    // Act
    const tally = tallyOutcomes([
      { kind: "gone", uidl: "a" },
      { kind: "quarantined", entry },
      { kind: "busy", reason: "IN-USE" },
    ]);

    // Assess
    expect(tally).toMatchObject({ gone: 1, quarantined: 1, busy: 1, copied: 0 });
  });
});
