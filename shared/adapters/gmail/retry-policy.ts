import { isRetryable, RateLimitedError } from "../../core/errors";
import type { Clock } from "../../ports/clock";

/** How often and how patiently to retry. */
export interface RetryPolicy {
  /** Attempts in total, including the first. */
  readonly maxAttempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** A number in [0, 1); injected so tests are deterministic. */
  readonly random: () => number;
}

/**
 * The wait before attempt `attempt + 1`: exponential backoff with full jitter (AWS Architecture
 * blog, "Exponential Backoff And Jitter"), but never less than a Retry-After the server sent.
 */
export function retryDelayMs(policy: RetryPolicy, attempt: number, error: unknown): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  const jittered = Math.floor(policy.random() * ceiling);
  return error instanceof RateLimitedError ? Math.max(error.retryAfterMs, jittered) : jittered;
}

/**
 * Runs `attempt(n, lastError)` until it succeeds, fails with a non-retryable error (or one
 * `retryHere` declines), or `maxAttempts` is used up; then the last typed error is thrown for
 * the pipeline to act on.
 */
export async function withRetries<T>(
  clock: Clock,
  policy: RetryPolicy,
  attempt: (n: number, lastError: unknown) => Promise<T>,
  onRetry?: (n: number, error: unknown, delayMs: number) => void,
  retryHere: (error: unknown) => boolean = () => true,
): Promise<T> {
  let lastError: unknown;
  for (let n = 1; ; n += 1) {
    try {
      return await attempt(n, lastError);
    } catch (error) {
      if (!isRetryable(error) || !retryHere(error) || n >= policy.maxAttempts) throw error;
      lastError = error;
      const delay = retryDelayMs(policy, n, error);
      onRetry?.(n, error, delay);
      await clock.sleep(delay);
    }
  }
}
