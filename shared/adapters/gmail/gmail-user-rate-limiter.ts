import type { Clock } from "../../ports/clock";
import { ConcurrencyGate } from "./concurrency-gate";
import { QuotaTokenBucket } from "./quota-token-bucket";

/** Quota costs of the Gmail API methods this adapter calls (Gmail API usage limits table). */
export const GMAIL_QUOTA_UNITS = {
  import: 25,
  list: 5,
  get: 5,
  labelsList: 1,
  labelsCreate: 5,
} as const;

/** How fast one Gmail user may be called from this process. */
export interface RateLimitSettings {
  /** Sustained quota units per minute (Gmail: 6,000 on newer Cloud projects, else 15,000). */
  readonly unitsPerMinute: number;
  /** Requests in flight at once; Gmail answers 429 "Too many concurrent requests" above its own cap. */
  readonly maxConcurrent: number;
  /** Units that may be spent at once after an idle spell; default one import, so no burst over the quota. */
  readonly burstUnits?: number;
}

/**
 * Paces every API call for one Gmail user: first a concurrency slot, then quota units, then the
 * call. Taking the slot first means units are spent just before the request leaves, so the
 * server sees requests at the paced rate rather than in clumps.
 */
export class GmailUserRateLimiter {
  readonly #gate: ConcurrencyGate;
  readonly #bucket: QuotaTokenBucket;
  readonly #clock: Clock;

  constructor(settings: RateLimitSettings, clock: Clock) {
    this.#gate = new ConcurrencyGate(settings.maxConcurrent);
    this.#bucket = new QuotaTokenBucket(
      settings.unitsPerMinute,
      settings.burstUnits ?? GMAIL_QUOTA_UNITS.import,
      clock,
    );
    this.#clock = clock;
  }

  /** Runs `task` once a slot and `units` of quota are available; the slot is held until it settles. */
  async run<T>(units: number, task: () => Promise<T>): Promise<T> {
    await this.#gate.acquire();
    try {
      await this.#bucket.take(units);
      return await task();
    } finally {
      this.#gate.release();
    }
  }

  /** Pauses all calls for this user for `ms` (Gmail said Retry-After). */
  pause(ms: number): void {
    this.#bucket.holdUntil(this.#clock.now() + ms);
  }
}

/** One limiter per Gmail user, shared by every import of that user in this process. */
export class GmailRateLimiters {
  readonly #byUser = new Map<string, GmailUserRateLimiter>();
  readonly #settings: RateLimitSettings;
  readonly #clock: Clock;

  constructor(settings: RateLimitSettings, clock: Clock) {
    this.#settings = settings;
    this.#clock = clock;
  }

  /** The limiter of `user` (case-insensitive: Gmail addresses are). */
  forUser(user: string): GmailUserRateLimiter {
    const key = user.toLowerCase();
    let limiter = this.#byUser.get(key);
    if (!limiter) {
      limiter = new GmailUserRateLimiter(this.#settings, this.#clock);
      this.#byUser.set(key, limiter);
    }
    return limiter;
  }
}
