import type { Clock } from "../../shared/ports/clock";

/**
 * Wall time plus an offset: `sleep` (backoff, poll intervals) and `advance` (a driver waiting out
 * an SQS delay or a schedule tick) move the offset at once, so nothing waits for time.
 */
export class OffsetClock implements Clock {
  offset = 0;
  now(): number {
    return Date.now() + this.offset;
  }
  async sleep(ms: number): Promise<void> {
    this.offset += Math.max(0, ms);
  }
  advance(ms: number): void {
    this.offset += Math.max(0, ms);
  }
}
