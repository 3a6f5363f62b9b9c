import { describe, expect, it } from "vitest";
import { describeRun, runVerdict } from "../../../cli/commands/run";
import type { MailboxRunSummary, RunSummary } from "../../../cli/runtime/run-local";

/** A run summary of one mailbox that did everything it should; `mailbox` overrides its fields. */
function runOf(
  mailbox: Partial<MailboxRunSummary> & Record<string, unknown> = {},
  run: Partial<RunSummary> = {},
) {
  const box = {
    mailboxId: "info@acme.it",
    onServer: 2,
    newMessages: 2,
    copied: 2,
    alreadyCopied: 0,
    quarantined: 0,
    retryLater: 0,
    deleted: 2,
    inFlight: 0,
    ...mailbox,
  } as MailboxRunSummary;
  return {
    tenant: "acme",
    startedAt: "2026-12-01T00:00:00.000Z",
    finishedAt: "2026-12-01T00:00:01.000Z",
    mailboxes: [box],
    inFlight: box.inFlight,
    ok: true,
    stopped: false,
    ...run,
  } as RunSummary;
}

describe("runVerdict (docs/pipeline.md: exit codes of the local runtime)", () => {
  it("is 0 with no reasons only when nothing is left to look at", () => {
    // Act
    const verdict = runVerdict(runOf());
    // Assess
    expect(verdict).toEqual({ exitCode: 0, reasons: [] });
    expect(describeRun(runOf())).toContain("done: nothing left in flight");
  });

  it("is 2 for a config failure, 1 for any other failure, each with its reason", () => {
    // Prepare
    const config = runOf(
      { failure: { code: "CONFIG_INVALID", message: 'the secret "pop3" is not set' } },
      { ok: false },
    );
    const disk = runOf(
      { failure: { code: "LOCAL_ENVIRONMENT", message: "the archive disk is full (ENOSPC)" } },
      { ok: false },
    );
    // Act
    const verdicts = [runVerdict(config), runVerdict(disk)];
    // Assess
    expect(verdicts.map((v) => v.exitCode)).toEqual([2, 1]);
    expect(verdicts[1]?.reasons).toEqual([
      "info@acme.it: failed: the archive disk is full (ENOSPC) [LOCAL_ENVIRONMENT]",
    ]);
  });

  it("is 1 for a run that quarantined, timed out or saw a message vanish, though `ok` says true", () => {
    // Act
    const verdicts = [
      runVerdict(runOf({ quarantined: 1 })),
      runVerdict(runOf({ timedOut: true })),
      runVerdict(runOf({ gone: 2 })),
    ];
    // Assess
    expect(verdicts.map((v) => v.exitCode)).toEqual([1, 1, 1]);
    expect(verdicts[0]?.reasons[0]).toContain("1 message(s) quarantined");
    expect(verdicts[1]?.reasons[0]).toContain("timed out");
    expect(verdicts[2]?.reasons[0]).toContain("2 message(s) left the server");
  });

  it("is 1 for busy, stopped or in-flight runs, and the summary lists each reason", () => {
    // Prepare
    const summary = runOf({ busy: "IN-USE", inFlight: 3 }, { ok: false, stopped: true, inFlight: 3 });
    // Act
    const verdict = runVerdict(summary);
    const text = describeRun(summary);
    // Assess
    expect(verdict.exitCode).toBe(1);
    expect(verdict.reasons).toHaveLength(3);
    expect(text).toContain("not ok (exit 1):");
    for (const reason of verdict.reasons) expect(text).toContain(reason);
  });
});
