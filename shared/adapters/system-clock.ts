import type { Clock } from "../ports/clock";

/** The real clock: wall time and real timers. Tests inject a controllable clock instead. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms))),
};
