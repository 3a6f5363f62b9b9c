/** Time, injected so tests control it instead of sleeping. */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  /** Resolves after `ms` (a test clock may resolve at once and advance `now`). */
  sleep(ms: number): Promise<void>;
}
