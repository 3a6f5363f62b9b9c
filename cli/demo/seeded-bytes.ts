/**
 * A fast seeded PRNG (xorshift32) for test data: the same seed gives the same bytes, and 50 MB
 * take tens of milliseconds (crypto.randomBytes is slower and not reproducible).
 */
export function seededRandom(seed: number): () => number {
  // xorshift32 must not start at 0, or it stays there.
  let state = seed >>> 0 || 0x9e3779b9;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
}

/** `length` pseudo-random bytes from `seed`, filled four at a time. */
export function seededBytes(length: number, seed: number): Buffer {
  const next = seededRandom(seed);
  const words = new Uint32Array(Math.ceil(length / 4));
  for (let index = 0; index < words.length; index += 1) words[index] = next();
  return Buffer.from(words.buffer, 0, length);
}

/** An integer in [min, max] drawn from `next`. */
export function seededInteger(next: () => number, min: number, max: number): number {
  return min + (next() % (max - min + 1));
}
