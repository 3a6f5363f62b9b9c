/**
 * Records uncaught exceptions and unhandled rejections while installed. Vitest reports them too,
 * but only after the test; recording them lets a property fail on the run that caused them, so
 * fast-check shrinks it and prints its seed.
 */
export class ProcessGuards {
  readonly uncaught: unknown[] = [];
  readonly unhandled: unknown[] = [];
  readonly #onUncaught = (error: unknown): void => {
    this.uncaught.push(error);
  };
  readonly #onUnhandled = (reason: unknown): void => {
    this.unhandled.push(reason);
  };

  install(): this {
    process.on("uncaughtException", this.#onUncaught);
    process.on("unhandledRejection", this.#onUnhandled);
    return this;
  }

  uninstall(): void {
    process.off("uncaughtException", this.#onUncaught);
    process.off("unhandledRejection", this.#onUnhandled);
  }

  /** Everything recorded so far, emptied; lets pending ticks and immediates run first. */
  async drain(): Promise<unknown[]> {
    for (let turn = 0; turn < 3; turn++) await new Promise<void>((resolve) => setImmediate(resolve));
    const all = [...this.uncaught, ...this.unhandled];
    this.uncaught.length = 0;
    this.unhandled.length = 0;
    return all;
  }
}

/** Settles with `onTimeout()` if `promise` has not settled after `ms` (the outer guard against hangs). */
export async function withGuard<T>(promise: Promise<T>, ms: number, onTimeout: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(onTimeout()), ms);
  });
  try {
    return await Promise.race([promise, guard]);
  } finally {
    clearTimeout(timer);
  }
}
