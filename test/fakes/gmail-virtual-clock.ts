import type { Clock } from "../../shared/ports/clock";

interface Timer {
  readonly due: number;
  readonly resolve: () => void;
}

/**
 * A clock whose time moves only when someone sleeps: after the event loop has had a few turns
 * (so in-flight I/O can land), it jumps to the earliest pending wake-up. Rates measured in its
 * time are exact and independent of how fast the machine is; nothing waits in real time.
 */
export class VirtualClock implements Clock {
  #now: number;
  #timers: Timer[] = [];
  #scheduled = false;

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#timers.push({ due: this.#now + Math.max(0, ms), resolve });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    // A few macrotask turns let requests already on the wire reach the server at the current
    // time before the clock jumps.
    let turns = 0;
    const step = () => {
      turns += 1;
      if (turns < 4) {
        setImmediate(step);
        return;
      }
      this.#scheduled = false;
      this.#fireEarliest();
    };
    setImmediate(step);
  }

  #fireEarliest(): void {
    if (this.#timers.length === 0) return;
    const earliest = Math.min(...this.#timers.map((t) => t.due));
    this.#now = Math.max(this.#now, earliest);
    const due = this.#timers.filter((t) => t.due <= this.#now);
    this.#timers = this.#timers.filter((t) => t.due > this.#now);
    for (const timer of due) timer.resolve();
    if (this.#timers.length > 0) this.#schedule();
  }
}
