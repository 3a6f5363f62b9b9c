import { describe, expect, it } from "vitest";
import { GmailUserRateLimiter } from "../../../shared/adapters/gmail/gmail-user-rate-limiter";
import { VirtualClock } from "../../fakes/gmail-virtual-clock";

describe("GmailUserRateLimiter", () => {
  it("paces imports at the quota in the injected clock's time once the burst is spent", async () => {
    // Prepare: a burst of one import, so the sustained rate shows from the second import on.
    const clock = new VirtualClock(0);
    const limiter = new GmailUserRateLimiter(
      { unitsPerMinute: 6_000, maxConcurrent: 4, burstUnits: 25 },
      clock,
    );
    const startedAt: number[] = [];

    // Act
    await Promise.all(
      Array.from({ length: 121 }, () =>
        limiter.run(25, async () => {
          startedAt.push(clock.now());
        }),
      ),
    );

    // Assess: 6,000 units/min = 4 imports/s; 120 intervals of 250 ms after the first.
    expect(startedAt[0]).toBe(0);
    expect(clock.now()).toBe(30_000);
    expect(startedAt.every((t, i) => i === 0 || t - (startedAt[i - 1] ?? 0) === 250)).toBe(true);
  });

  it("never runs more than maxConcurrent tasks at once", async () => {
    // Prepare
    const clock = new VirtualClock(0);
    const limiter = new GmailUserRateLimiter({ unitsPerMinute: 1_000_000, maxConcurrent: 3 }, clock);
    let running = 0;
    let peak = 0;

    // Act
    await Promise.all(
      Array.from({ length: 20 }, () =>
        limiter.run(1, async () => {
          running += 1;
          peak = Math.max(peak, running);
          await clock.sleep(100);
          running -= 1;
        }),
      ),
    );

    // Assess
    expect(peak).toBe(3);
  });

  it("holds every caller back after a Retry-After pause", async () => {
    // Prepare
    const clock = new VirtualClock(0);
    const limiter = new GmailUserRateLimiter({ unitsPerMinute: 1_000_000, maxConcurrent: 4 }, clock);
    limiter.pause(5_000);

    // Act
    const startedAt = await limiter.run(1, async () => clock.now());

    // Assess
    expect(startedAt).toBe(5_000);
  });
});
