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

// `node --import tsx bench/lib/prng.ts 8` prints the first outputs for the harness's cross-language check.
// Deno loads this file as an ES module, where `require` does not exist.
if (typeof require !== 'undefined' && require.main === module) {
  const next = mulberry32(SEED);
  const k = Number(process.argv[2] ?? 8);
  console.log(Array.from({ length: k }, () => next()).join(' '));
}
