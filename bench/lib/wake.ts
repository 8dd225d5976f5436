/**
 * What the two W6 programs share (wasm-ioloop's channel and Node's MessagePort):
 * their configurations and sizes, and the latency summary each checks and reports.
 */
import { fail, jobs, type Job } from './measure';

/** Messages whose latency is measured (the size of `latency`). */
export const LATENCY_N = 10_000;
/** Messages sent before those, not measured: the JIT and the caches warm up. */
export const WARMUP = 1_000;
/** Messages of `throughput`, across all posting workers. */
export const THROUGHPUT_N = 400_000;
/** Posting workers of `throughput`. */
export const THROUGHPUT_WORKERS = 4;
/** Messages each of them posts first, not measured: the JIT and the caches warm up. */
export const THROUGHPUT_WARMUP = 50_000;

const CONFIGS = ['latency', 'throughput'] as const;

/**
 * The configurations to run, as measure.ts's jobs() reads them (`<config> [n]`),
 * each with its own default size when none is given.
 */
export function parseJob(): Job[] {
  const sized = process.argv[3] !== undefined || process.env.BENCH_N !== undefined;
  return jobs(CONFIGS, LATENCY_N).map((j) => (sized ? j : { ...j, n: j.config === 'latency' ? LATENCY_N : THROUGHPUT_N }));
}

/** Median, 99th percentile and maximum of latencies given in ns, in µs; fails on a value that cannot be one. */
export function latencySummary(ns: Float64Array, what: string): { p50Us: number; p99Us: number; maxUs: number } {
  for (let i = 0; i < ns.length; i++) {
    if (!(ns[i]! > 0 && Number.isFinite(ns[i]))) fail(what, `latency ${i} is ${ns[i]} ns`);
  }
  const sorted = Float64Array.from(ns).sort();
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! / 1000;
  return { p50Us: at(0.5), p99Us: at(0.99), maxUs: sorted[sorted.length - 1]! / 1000 };
}
