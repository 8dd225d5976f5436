/**
 * The one pseudo-random generator of the TypeScript benchmark programs:
 * mulberry32 (32-bit state, full 2^32 period). bench/lib/prng.py and
 * bench/peers/cloop.c implement the same function, so every peer schedules the
 * same delays; `npm run bench -- --check` compares their first outputs.
 */

/** The seed of every scenario's sequence. */
export const SEED = 0x2545f491;

/** Returns a generator of unsigned 32-bit integers. */
export function mulberry32(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Delay that the equal-deadline configuration gives every timer. */
export const EQUAL_DELAY_MS = 50;

/**
 * The delays, in whole milliseconds, of a timer scenario: uniform over 0..1000
 * (`floor(u32 * 1001 / 2^32)`, exact in every language) or all EQUAL_DELAY_MS.
 * Whole milliseconds keep Node's timers, which truncate to them, on the same
 * schedule as the loops that take seconds.
 */
export function delaysMs(n: number, config: string): Int32Array {
  const out = new Int32Array(n);
  if (config === 'equal') return out.fill(EQUAL_DELAY_MS);
  if (config !== 'random') throw new Error(`unknown timer configuration '${config}'`);
  const next = mulberry32(SEED);
  for (let i = 0; i < n; i++) out[i] = Math.floor((next() * 1001) / 4294967296);
  return out;
}

/**
 * The delays of the scaling scenarios (S1, S2) in whole milliseconds: uniform over
 * 0..span with span = max(1, floor(n / 1000)), so that at every size about a
 * thousand timers fall due per millisecond and a loop wakes about as often per
 * timer; a fixed 0..1000 ms (W1's) would make a thousand timers cost one wake-up each.
 * `floor(u32 * (span + 1) / 2^32)` is exact in doubles (below 2^44), as in cloop.c.
 */
export function spreadDelaysMs(n: number): Int32Array {
  const span = Math.max(1, Math.floor(n / 1000));
  const out = new Int32Array(n);
  const next = mulberry32(SEED);
  for (let i = 0; i < n; i++) out[i] = Math.floor((next() * (span + 1)) / 4294967296);
  return out;
}

/** The seed of the removal order of S2. */
export const PERMUTATION_SEED = 0x9e3779b9;

/** `floor(u * m / 2^32)` exactly, for u and m below 2^32 (the product can pass 2^53). */
export function scaleU32(u: number, m: number): number {
  const hi = Math.floor(u / 65536);
  const lo = u - hi * 65536;
  const a = hi * m;
  const q = Math.floor(a / 65536);
  return q + Math.floor(((a - q * 65536) * 65536 + lo * m) / 4294967296);
}

/** A permutation of 0..n-1: Fisher-Yates from the end, j = scaleU32(next, i + 1), as in cloop.c. */
export function permutation(n: number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  const next = mulberry32(PERMUTATION_SEED);
  for (let i = n - 1; i > 0; i--) {
    const j = scaleU32(next(), i + 1);
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

// `node --import tsx bench/lib/prng.ts 8` prints the first outputs for the harness's cross-language check.
// Deno loads this file as an ES module, where `require` does not exist.
if (typeof require !== 'undefined' && require.main === module) {
  const next = mulberry32(SEED);
  const k = Number(process.argv[2] ?? 8);
  console.log(Array.from({ length: k }, () => next()).join(' '));
}
