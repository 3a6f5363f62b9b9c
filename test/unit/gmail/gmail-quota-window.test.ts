import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { GmailUserRateLimiter } from "../../../shared/adapters/gmail/gmail-user-rate-limiter";
import { VirtualClock } from "../../fakes/gmail-virtual-clock";

// VirtualClock, not TestClock: its time moves only once every caller has had its turn, so a
// task's `clock.now()` is the time its units were taken, with several takes pending at once.

/** Gmail's per-user quota on newer Cloud projects (../shared/DESIGN.md, "Facts"). */
const QUOTA = 6_000;

/** The most units spent in any 60 s window ([t - 60 s, t] for every spend at t) of a sorted log. */
function busiestMinute(log: ReadonlyArray<{ at: number; units: number }>): number {
  let busiest = 0;
  let sum = 0;
  let start = 0;
  for (const spend of log) {
    sum += spend.units;
    while ((log[start]?.at ?? spend.at) <= spend.at - 60_000) {
      sum -= log[start]?.units ?? 0;
      start += 1;
    }
    busiest = Math.max(busiest, sum);
  }
  return busiest;
}

/** Starts `count` imports at once through `limiter`; resolves with the time each one started. */
async function startImports(
  limiter: GmailUserRateLimiter,
  clock: VirtualClock,
  count: number,
): Promise<number[]> {
  const startedAt: number[] = [];
  await Promise.all(
    Array.from({ length: count }, () =>
      limiter.run(25, async () => {
        startedAt.push(clock.now());
      }),
    ),
  );
  return startedAt;
}

describe("Gmail pacing: bursts within the per-minute quota (docs/pipeline.md, the Gmail pacing rule)", () => {
  it("starts every import of a 50-message burst at once: 1,250 units are within a minute's 6,000", async () => {
    // Prepare: an idle user; the tasks take no time, so only the pacing can delay them.
    const clock = new VirtualClock(0);
    const limiter = new GmailUserRateLimiter({ unitsPerMinute: QUOTA, maxConcurrent: 4 }, clock);

    // Act
    const startedAt = await startImports(limiter, clock, 50);

    // Assess: no import waits for quota (today's smoothing started them 250 ms apart: 12.25 s).
    expect(startedAt).toHaveLength(50);
    expect(Math.max(...startedAt)).toBe(0);
  });

  it("never spends more than the quota in any 60 s window over long random sequences of bursts and gaps", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            gapMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 90_000 })),
            count: fc.integer({ min: 1, max: 80 }),
            units: fc.constantFrom(25, 25, 25, 5, 1),
          }),
          { minLength: 20, maxLength: 120 },
        ),
        async (steps) => {
          // Prepare
          const clock = new VirtualClock(0);
          const limiter = new GmailUserRateLimiter({ unitsPerMinute: QUOTA, maxConcurrent: 1_000 }, clock);
          const log: Array<{ at: number; units: number }> = [];

          // Act
          for (const step of steps) {
            await clock.sleep(step.gapMs);
            await Promise.all(
              Array.from({ length: step.count }, () =>
                limiter.run(step.units, async () => {
                  log.push({ at: clock.now(), units: step.units });
                }),
              ),
            );
          }

          // Assess
          expect(log.every((spend, i) => i === 0 || spend.at >= (log[i - 1]?.at ?? 0))).toBe(true);
          expect(busiestMinute(log)).toBeLessThanOrEqual(QUOTA);
        },
      ),
      { numRuns: 40, seed: 13 },
    );
  });

  it("holds a spent minute's units until they age out of the window, then goes on", async () => {
    // Prepare: a burst as large as the quota, so only the window limits.
    const clock = new VirtualClock(0);
    const limiter = new GmailUserRateLimiter(
      { unitsPerMinute: QUOTA, maxConcurrent: 1_000, burstUnits: QUOTA },
      clock,
    );

    // Act: a whole minute's worth at once, then one more.
    const startedAt = await startImports(limiter, clock, 240);
    startedAt.push(...(await startImports(limiter, clock, 1)));

    // Assess: the 241st waits until the first 25 units have left the last minute.
    expect(startedAt.slice(0, 240).every((t) => t === 0)).toBe(true);
    expect(startedAt[240]).toBeGreaterThanOrEqual(60_000);
    expect(busiestMinute(startedAt.map((at) => ({ at, units: 25 })))).toBe(QUOTA);
  });

  it("sustains the quota on a long backlog: 2,400 imports (ten minutes' worth) in ten minutes", async () => {
    // Prepare
    const clock = new VirtualClock(0);
    const limiter = new GmailUserRateLimiter({ unitsPerMinute: QUOTA, maxConcurrent: 4 }, clock);

    // Act
    const startedAt = await startImports(limiter, clock, 2_400);

    // Assess: never above the quota, yet ten minutes' worth started within ten minutes (the
    // window is a second longer than Gmail's minute, so the burst's head start pays for that).
    expect(busiestMinute(startedAt.map((at) => ({ at, units: 25 })))).toBeLessThanOrEqual(QUOTA);
    expect(Math.max(...startedAt)).toBeLessThanOrEqual(600_000);
  });
});
