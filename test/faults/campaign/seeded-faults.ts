import { seededRandom } from "../../fakes/seeded-random";

/**
 * The campaign's one source of randomness: a seeded PRNG (mulberry32) from which every fault
 * decision is drawn, so a failing run replays from its seed. The seed comes from `FAULTS_SEED`
 * or is drawn at random, and is printed at the start of every run and in every failure.
 */

/** `FAULTS_SEED` if set (decimal), else a random 31-bit seed. */
export function campaignSeed(env: NodeJS.ProcessEnv = process.env): number {
  const given = env.FAULTS_SEED;
  if (given !== undefined && given !== "") {
    const seed = Number(given);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new Error(`FAULTS_SEED must be an integer from 0 to 4294967295, not ${JSON.stringify(given)}`);
    }
    return seed;
  }
  return Math.floor(Math.random() * 0x7fffffff);
}

/** `FAULTS_MESSAGES` if set, else `fallback`. */
export function campaignMessages(fallback: number, env: NodeJS.ProcessEnv = process.env): number {
  const given = env.FAULTS_MESSAGES;
  if (given === undefined || given === "") return fallback;
  const count = Number(given);
  if (!Number.isInteger(count) || count < 1) {
    throw new Error(`FAULTS_MESSAGES must be a positive integer, not ${JSON.stringify(given)}`);
  }
  return count;
}

/**
 * Named fault switches drawn from one PRNG. `roll(kind)` fires with the kind's probability and
 * counts what fired, so the report can say which faults the run actually went through.
 */
export class FaultDice<K extends string> {
  readonly fired = new Map<K, number>();
  readonly random: () => number;
  /** Set false to stop every fault (the recovery phase). */
  enabled = true;
  /** Told of every fault that fires (the campaign's timeline). */
  onFire: ((kind: K) => void) | undefined;
  /** Kinds whose next roll fires whatever the draw (see `force`). */
  private readonly forced = new Set<K>();

  constructor(
    seed: number,
    private readonly rates: Readonly<Record<K, number>>,
  ) {
    this.random = seededRandom(seed);
  }

  /** True with the probability of `kind` (never while disabled); counts it. */
  roll(kind: K): boolean {
    // Always draw, so a disabled phase does not shift the sequence of later decisions.
    const draw = this.random();
    if (!this.enabled) return false;
    if (this.forced.delete(kind) || draw < this.rates[kind]) {
      this.count(kind);
      return true;
    }
    return false;
  }

  /**
   * Makes the next roll of `kind` (while enabled) fire whatever the draw, once: a fault the run
   * must go through at least once (the draws stay in step, so a seed still replays).
   */
  force(kind: K): void {
    this.forced.add(kind);
  }

  /** Counts a fault fired by other means (a stand-in rule, the driver). */
  count(kind: K): void {
    this.fired.set(kind, (this.fired.get(kind) ?? 0) + 1);
    this.onFire?.(kind);
  }

  /** An integer in [min, max]. */
  between(min: number, max: number): number {
    return min + Math.floor(this.random() * (max - min + 1));
  }
}

/** `FAULTS_INTENSITY` (a factor on every fault rate, default 1), e.g. 3 for a rougher run. */
export function campaignIntensity(env: NodeJS.ProcessEnv = process.env): number {
  const given = env.FAULTS_INTENSITY;
  if (given === undefined || given === "") return 1;
  const factor = Number(given);
  if (!Number.isFinite(factor) || factor < 0) {
    throw new Error(`FAULTS_INTENSITY must be a number of at least 0, not ${JSON.stringify(given)}`);
  }
  return factor;
}
