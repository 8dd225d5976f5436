// A histogram of durations for loop health (stats().lag): log-linear buckets over
// whole microseconds, as HdrHistogram keeps them, so recording is a few integer
// operations and no allocation, and a percentile is within 1/SUB_BUCKETS (12.5 %)
// of the true value. The maximum is kept exactly.
//
// Invariants
// - counts[i] holds the samples whose bucket is i; `count` is their sum.
// - Bucket 0..SUB_BUCKETS-1 hold 0..7 µs exactly; above, each power of two is cut
//   into SUB_BUCKETS equal buckets.

/** Buckets per power of two. */
const SUB_BITS = 3;
const SUB_BUCKETS = 1 << SUB_BITS;
/** Microseconds up to 2^31 (about 36 minutes) are told apart; longer ones share the last bucket. */
const MAX_US = 0x7fffffff;
const BUCKETS = (32 - SUB_BITS) * SUB_BUCKETS;

/** Summary of a histogram, in seconds. */
export interface HistogramSummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

/** Durations, recorded in seconds. Not thread-safe: one thread only. */
export class DurationHistogram {
  private readonly counts = new Float64Array(BUCKETS);
  private count = 0;
  private max = 0;

  /** Records one duration in seconds; negative durations count as 0. */
  record(seconds: number): void {
    const s = seconds > 0 ? seconds : 0;
    if (s > this.max) this.max = s;
    const us = s * 1e6 < MAX_US ? Math.floor(s * 1e6) : MAX_US;
    this.counts[bucketOf(us)]!++;
    this.count++;
  }

  /** Count, median, 99th percentile and maximum, in seconds (0 when empty). */
  summary(): HistogramSummary {
    return { count: this.count, p50: this.percentile(0.5), p99: this.percentile(0.99), max: this.max };
  }

  private percentile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.ceil(q * this.count);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      // A bucket's upper edge, but never more than the largest sample.
      if (seen >= rank) return Math.min(upperEdge(i) / 1e6, this.max);
    }
    return this.max;
  }
}

function bucketOf(us: number): number {
  if (us < SUB_BUCKETS) return us;
  const exponent = 31 - Math.clz32(us); // >= SUB_BITS
  const shift = exponent - SUB_BITS;
  return (shift + 1) * SUB_BUCKETS + ((us >>> shift) - SUB_BUCKETS);
}

/** The largest whole microsecond that falls in bucket `i`. */
function upperEdge(i: number): number {
  if (i < SUB_BUCKETS) return i;
  const shift = (i >> SUB_BITS) - 1;
  const sub = i & (SUB_BUCKETS - 1);
  return ((SUB_BUCKETS + sub + 1) << shift) - 1;
}
