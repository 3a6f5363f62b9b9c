import type { Clock } from "../../shared/ports/clock";

/** A clock tests move by hand: `sleep` advances time at once instead of waiting. */
export class TestClock implements Clock {
  readonly sleeps: number[] = [];

  constructor(private current = Date.UTC(2026, 0, 15, 9, 0, 0)) {}

  now(): number {
    return this.current;
  }

  async sleep(ms: number): Promise<void> {
    this.sleeps.push(ms);
    this.current += Math.max(0, ms);
  }

  advance(ms: number): void {
    this.current += ms;
  }
}
