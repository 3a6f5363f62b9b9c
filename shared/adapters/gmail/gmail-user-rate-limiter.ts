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
  /**
   * Units that may be spent at once after an idle spell. Default: this process's own bucket
   * (`QuotaTokenBucket`, which also caps every window at the quota) a quarter of a minute's
   * units (`localBurstUnits`); a shared bucket from a `QuotaBucketFactory` gets one import,
   * since it keeps no window and a larger burst would exceed the quota in a busy minute.
   */
  readonly burstUnits?: number;
}

/**
 * The burst of this process's own bucket: a quarter of a minute's units (1,500 at 6,000
 * units/min: 60 imports), so a burst of mail goes out at once while the bucket's window keeps
 * every minute within the quota (docs/pipeline.md, the Gmail pacing rule).
 */
export function localBurstUnits(settings: RateLimitSettings): number {
  return settings.burstUnits ?? Math.max(GMAIL_QUOTA_UNITS.import, Math.floor(settings.unitsPerMinute / 4));
}

/**
 * Where one Gmail user's quota units come from: this process's own `QuotaTokenBucket`, or a
 * bucket every copier container shares (`DynamoDbQuotaBucket`, docs/lambda-handlers.md "Gmail
 * pacing on AWS"), since Gmail's quota is per user, not per process.
 */
export interface QuotaBucket {
  /** Resolves once `units` have been taken. */
  take(units: number): Promise<void>;
  /** Spends nothing until `epochMs` (Gmail said Retry-After); resolves once that is recorded. */
  holdUntil(epochMs: number): void | Promise<void>;
}

/** Builds the bucket of one Gmail user (lower-cased) with the limiter's rate and burst capacity. */
export type QuotaBucketFactory = (user: string, settings: RateLimitSettings, capacity: number) => QuotaBucket;

/**
 * Paces every API call for one Gmail user: first a concurrency slot, then quota units, then the
 * call. Taking the slot first means units are spent just before the request leaves, so the
 * server sees requests at the paced rate rather than in clumps.
 */
export class GmailUserRateLimiter {
  readonly #gate: ConcurrencyGate;
  readonly #bucket: QuotaBucket;
  readonly #clock: Clock;

  constructor(settings: RateLimitSettings, clock: Clock, bucket?: QuotaBucket) {
    this.#gate = new ConcurrencyGate(settings.maxConcurrent);
    this.#bucket = bucket ?? new QuotaTokenBucket(settings.unitsPerMinute, localBurstUnits(settings), clock);
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

  /** Pauses all calls for this user for `ms` (Gmail said Retry-After); never rejects. */
  async pause(ms: number): Promise<void> {
    await this.#bucket.holdUntil(this.#clock.now() + ms);
  }
}

/** One limiter per Gmail user, shared by every import of that user in this process. */
export class GmailRateLimiters {
  readonly #byUser = new Map<string, GmailUserRateLimiter>();
  readonly #settings: RateLimitSettings;
  readonly #clock: Clock;
  readonly #bucketFor: QuotaBucketFactory | undefined;

  /** `bucketFor`: each user's quota bucket; default one `QuotaTokenBucket` per user in this process. */
  constructor(settings: RateLimitSettings, clock: Clock, bucketFor?: QuotaBucketFactory) {
    this.#settings = settings;
    this.#clock = clock;
    this.#bucketFor = bucketFor;
  }

  /** The limiter of `user` (case-insensitive: Gmail addresses are). */
  forUser(user: string): GmailUserRateLimiter {
    const key = user.toLowerCase();
    let limiter = this.#byUser.get(key);
    if (!limiter) {
      // A shared bucket keeps no window: its burst stays one import unless set (see `burstUnits`).
      const capacity = this.#settings.burstUnits ?? GMAIL_QUOTA_UNITS.import;
      limiter = new GmailUserRateLimiter(
        this.#settings,
        this.#clock,
        this.#bucketFor?.(key, this.#settings, capacity),
      );
      this.#byUser.set(key, limiter);
    }
    return limiter;
  }
}
