// The duration histogram behind stats().lag: percentiles within one bucket (12.5 %)
// of the exact ones, and the maximum exact.
import fc from 'fast-check';
import { DurationHistogram } from '../src/histogram';

function exact(sorted: number[], q: number): number {
  return sorted[Math.ceil(q * sorted.length) - 1]!;
}

test('percentiles are within 12.5 % (plus 1 µs) above the exact ones, never below, and max is exact', () => {
  fc.assert(
    fc.property(fc.array(fc.double({ min: 0, max: 100, noNaN: true }), { minLength: 1, maxLength: 300 }), (samples) => {
      const h = new DurationHistogram();
      for (const s of samples) h.record(s);
      const sorted = [...samples].sort((a, b) => a - b);
      const got = h.summary();
      expect(got.count).toBe(samples.length);
      expect(got.max).toBe(sorted[sorted.length - 1]);
      for (const [q, value] of [[0.5, got.p50], [0.99, got.p99]] as const) {
        const want = Math.floor(exact(sorted, q) * 1e6) / 1e6;
        expect(value).toBeGreaterThanOrEqual(want - 1e-12);
        expect(value).toBeLessThanOrEqual(want * 1.125 + 1e-6);
      }
    }),
    { seed: 20261201, numRuns: 300 },
  );
});

test('an empty histogram reports zeros, and negative durations count as 0', () => {
  const h = new DurationHistogram();
  expect(h.summary()).toEqual({ count: 0, p50: 0, p99: 0, max: 0 });
  h.record(-1);
  expect(h.summary()).toEqual({ count: 1, p50: 0, p99: 0, max: 0 });
});
