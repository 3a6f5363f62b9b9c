import { describe, expect, it } from "vitest";
import { BUSY_RESEND_MS, delaySecondsOf } from "../../../shared/core/retry-rule";

describe("retry rule (mutation survivors)", () => {
  it("leaves a busy mailbox alone 30 s for our own lease, 60 s for IN-USE, 300 s for LOGIN-DELAY", () => {
    // Assess
    expect(BUSY_RESEND_MS).toEqual({ "no-lease": 30_000, "IN-USE": 60_000, "LOGIN-DELAY": 300_000 });
  });

  it("gives SQS whole seconds", () => {
    // Act
    const seconds = [delaySecondsOf(30_000), delaySecondsOf(1), delaySecondsOf(0)];
    // Assess
    expect(seconds).toEqual([30, 1, 0]);
  });
});
