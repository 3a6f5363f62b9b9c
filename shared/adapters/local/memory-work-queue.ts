import type { CopyJob } from "../../core/model";
import type { Clock } from "../../ports/clock";
import type { WorkQueue } from "../../ports/work-queue";

/**
 * The in-process work queue of the local runtime (and the tests). Like SQS it delivers at least
 * once and honours `delaySeconds`, measured on the injected clock.
 */
export class MemoryWorkQueue implements WorkQueue {
  private readonly pending: { job: CopyJob; visibleAt: number }[] = [];
  enqueueCalls = 0;

  constructor(private readonly clock: Pick<Clock, "now">) {}

  async enqueue(jobs: readonly CopyJob[], options: { delaySeconds?: number } = {}): Promise<void> {
    this.enqueueCalls++;
    const visibleAt = this.clock.now() + (options.delaySeconds ?? 0) * 1000;
    for (const job of jobs) this.pending.push({ job: { ...job }, visibleAt });
  }

  /** Removes and returns up to `max` jobs that are visible now, oldest first. */
  take(max: number): CopyJob[] {
    const now = this.clock.now();
    const taken: CopyJob[] = [];
    for (let i = 0; i < this.pending.length && taken.length < max; ) {
      const item = this.pending[i];
      if (item !== undefined && item.visibleAt <= now) {
        taken.push(item.job);
        this.pending.splice(i, 1);
      } else {
        i++;
      }
    }
    return taken;
  }

  /** Jobs waiting, visible or delayed. */
  get size(): number {
    return this.pending.length;
  }

  /** The next time a delayed job becomes visible, if any. */
  nextVisibleAt(): number | undefined {
    return this.pending.reduce<number | undefined>(
      (min, p) => (min === undefined ? p.visibleAt : Math.min(min, p.visibleAt)),
      undefined,
    );
  }
}
