import type { Clock } from "../../ports/clock";

interface Waiter {
  readonly units: number;
  readonly resolve: () => void;
}

/**
 * How long units spent count against the quota: Gmail's minute plus one second. Gmail counts a
 * request when it arrives, a little after we spend its units; a request that arrives later than
 * the one whose units it waited for would otherwise land inside that one's minute (the Gmail
 * pacing rule in docs/pipeline.md). Sustained, this leaves 60/61 = 98.4% of the quota.
 */
export const QUOTA_WINDOW_MS = 61_000;

/**
 * A token bucket measured in Gmail quota units, with a cap on the units of any window: the
 * bucket refills at `unitsPerMinute` a minute and holds up to `capacity` (the burst), and no
 * take makes the units spent in the last `windowMs` exceed `unitsPerMinute`. So a burst up to
 * `capacity` goes at once after an idle spell, and no minute ever holds more than the quota
 * (docs/pipeline.md, the Gmail pacing rule). Waiters are served first come, first served, so a
 * large request is not starved by small ones. All waiting goes through the injected clock.
 */
export class QuotaTokenBucket {
  readonly #unitsPerMs: number;
  readonly #unitsPerWindow: number;
  readonly #capacity: number;
  readonly #windowMs: number;
  readonly #clock: Clock;
  #tokens: number;
  #updatedAt: number;
  #heldUntil = 0;
  readonly #queue: Waiter[] = [];
  #pumping = false;
  /** Units spent within the last `windowMs`, oldest first, and their sum. */
  readonly #spent: Array<{ readonly at: number; readonly units: number }> = [];
  #spentSum = 0;

  /**
   * @param unitsPerMinute the sustained rate, and the most units of any window.
   * @param capacity the most units that may be spent at once after an idle spell (the burst).
   * @param windowMs how long spent units count against `unitsPerMinute` (default `QUOTA_WINDOW_MS`).
   */
  constructor(unitsPerMinute: number, capacity: number, clock: Clock, windowMs = QUOTA_WINDOW_MS) {
    this.#unitsPerMs = unitsPerMinute / 60_000;
    this.#unitsPerWindow = unitsPerMinute;
    this.#capacity = capacity;
    this.#windowMs = windowMs;
    this.#clock = clock;
    this.#tokens = capacity;
    this.#updatedAt = clock.now();
  }

  /** Resolves once `units` have been taken from the bucket. */
  take(units: number): Promise<void> {
    // A cost above the burst (or the window) could never be paid in one go; cap it so it still goes through.
    const cost = Math.min(units, this.#capacity, this.#unitsPerWindow);
    return new Promise((resolve) => {
      this.#queue.push({ units: cost, resolve });
      if (!this.#pumping) void this.#pump();
    });
  }

  /** Spends nothing until `epochMs`: the server said "retry after", so nobody should try sooner. */
  holdUntil(epochMs: number): void {
    this.#heldUntil = Math.max(this.#heldUntil, epochMs);
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      for (let head = this.#queue[0]; head !== undefined; head = this.#queue[0]) {
        const now = this.#clock.now();
        this.#refill(now);
        this.#forget(now);
        const untilWindow = this.#untilWindowAllows(head.units, now);
        if (now >= this.#heldUntil && this.#tokens >= head.units && untilWindow === 0) {
          this.#tokens -= head.units;
          this.#spent.push({ at: now, units: head.units });
          this.#spentSum += head.units;
          this.#queue.shift();
          head.resolve();
          continue;
        }
        const untilTokens = Math.ceil((head.units - this.#tokens) / this.#unitsPerMs);
        await this.#clock.sleep(Math.max(1, this.#heldUntil - now, untilTokens, untilWindow));
      }
    } finally {
      this.#pumping = false;
    }
  }

  #refill(now: number): void {
    const elapsed = Math.max(0, now - this.#updatedAt);
    this.#tokens = Math.min(this.#capacity, this.#tokens + elapsed * this.#unitsPerMs);
    this.#updatedAt = now;
  }

  /** Drops the spends that have left the window (a spend at `at` counts until `at + windowMs`). */
  #forget(now: number): void {
    for (let oldest = this.#spent[0]; oldest !== undefined; oldest = this.#spent[0]) {
      if (oldest.at + this.#windowMs > now) return;
      this.#spent.shift();
      this.#spentSum -= oldest.units;
    }
  }

  /** Milliseconds until enough of the oldest spends leave the window for `cost` more; 0 if they fit now. */
  #untilWindowAllows(cost: number, now: number): number {
    let excess = this.#spentSum + cost - this.#unitsPerWindow;
    if (excess <= 0) return 0;
    for (const spend of this.#spent) {
      excess -= spend.units;
      if (excess <= 0) return spend.at + this.#windowMs - now;
    }
    return this.#windowMs;
  }
}
