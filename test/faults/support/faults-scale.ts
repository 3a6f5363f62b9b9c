/**
 * How many runs a property gets: `base` by default (the CI size, well under a minute for the
 * fault files together), times FAULTS_SCALE for a full run (e.g. FAULTS_SCALE=20).
 */
export function runs(base: number): number {
  const scale = Number(process.env.FAULTS_SCALE ?? "1");
  return Math.max(1, Math.round(base * (Number.isFinite(scale) && scale > 0 ? scale : 1)));
}

/** A test timeout that grows with FAULTS_SCALE, so a full run is not cut off at the CI size's limit. */
export function scaledTimeout(baseMs: number): number {
  const scale = Number(process.env.FAULTS_SCALE ?? "1");
  return Math.round(baseMs * Math.max(1, Number.isFinite(scale) ? scale : 1));
}
