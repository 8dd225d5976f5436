/**
 * Result checks shared by the TypeScript benchmark programs. Each returns null
 * when the run is right and a description of the first fault otherwise.
 */

/** A program reads the loop's clock once per this many timers it schedules. */
export const SAMPLE_EVERY = 1024;

/**
 * Checks a run of one-shot timers.
 *
 * `fired[0..count)` lists timer indices in the order they ran; timer i had a
 * delay of `delaysMs[i]`. Always: every timer ran exactly once, and timers of
 * equal delay ran in the order they were scheduled (their deadlines are ordered
 * that way on any non-decreasing clock, and equal deadlines keep insertion
 * order).
 *
 * With `clock` (the loop's time() in seconds, read before timer
 * k·SAMPLE_EVERY is scheduled and once after the last), also: timers ran in
 * deadline order. Timer i's deadline is `t_i + d_i` for some `t_i` between the
 * samples around it, so a timer b that runs after a may not have a deadline
 * that is surely earlier: `hi(b) >= lo(a)`. Node's timers give no order across
 * different durations, so its programs pass no clock.
 */
export function checkTimerRun(
  fired: Int32Array,
  count: number,
  delaysMs: Int32Array,
  clock: Float64Array | null,
  maxDelayMs = 1000,
): string | null {
  const n = delaysMs.length;
  if (count !== n) return `${count} of ${n} timers ran`;
  const seen = new Uint8Array(n);
  const lastOfDelay = new Int32Array(maxDelayMs + 1).fill(-1);
  let maxLo = -Infinity;
  for (let j = 0; j < n; j++) {
    const i = fired[j];
    if (!(i >= 0 && i < n)) return `run ${j} reports timer ${i}, out of range`;
    if (seen[i]) return `timer ${i} ran twice`;
    seen[i] = 1;
    const d = delaysMs[i];
    if (lastOfDelay[d] > i) {
      return `timer ${i} (${d} ms) ran after timer ${lastOfDelay[d]} of the same delay, which was scheduled later`;
    }
    lastOfDelay[d] = i;
    if (clock !== null) {
      const k = Math.floor(i / SAMPLE_EVERY);
      const lo = clock[k] + d / 1000;
      const hi = clock[k + 1] + d / 1000;
      if (hi + 1e-6 < maxLo) {
        return `timer ${i} (${d} ms, deadline <= ${hi.toFixed(6)} s) ran after one with deadline >= ${maxLo.toFixed(6)} s`;
      }
      if (lo > maxLo) maxLo = lo;
    }
  }
  return null;
}
