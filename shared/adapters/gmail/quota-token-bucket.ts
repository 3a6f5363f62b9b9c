import type { Clock } from "../../ports/clock";

interface Waiter {
  readonly units: number;
  readonly resolve: () => void;
}

/**
 * A token bucket measured in Gmail quota units. Waiters are served first come, first served, so
 * a large request is not starved by small ones. All waiting goes through the injected clock.
 */
export class QuotaTokenBucket {
  readonly #unitsPerMs: number;
  readonly #capacity: number;
  readonly #clock: Clock;
  #tokens: number;
  #updatedAt: number;
  #heldUntil = 0;
  readonly #queue: Waiter[] = [];
  #pumping = false;

  /**
   * @param unitsPerMinute the sustained rate.
   * @param capacity the most units that may be spent at once after an idle spell (the burst).
   */
  constructor(unitsPerMinute: number, capacity: number, clock: Clock) {
    this.#unitsPerMs = unitsPerMinute / 60_000;
    this.#capacity = capacity;
    this.#clock = clock;
    this.#tokens = capacity;
    this.#updatedAt = clock.now();
  }

  /** Resolves once `units` have been taken from the bucket. */
  take(units: number): Promise<void> {
    // A cost above the burst could never be paid in one go; cap it so it still goes through.
    const cost = Math.min(units, this.#capacity);
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
        if (now >= this.#heldUntil && this.#tokens >= head.units) {
          this.#tokens -= head.units;
          this.#queue.shift();
          head.resolve();
          continue;
        }
        const untilTokens = Math.ceil((head.units - this.#tokens) / this.#unitsPerMs);
        await this.#clock.sleep(Math.max(1, this.#heldUntil - now, untilTokens));
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
}
