// A million timers through the whole loop: every one fires, in (deadline, insertion)
// order, with no trap, and the loop holds nothing afterwards.
import { engineOf } from '../src/ioloop';
import { guardResources, newLoop } from './helpers';

guardResources();

/** mulberry32: a small seeded PRNG, so a failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('1,000,000 timers fire in (deadline, insertion) order with no trap', async () => {
  const N = 1_000_000;
  const loop = newLoop({ backend: 'fake' });
  const random = prng(0x10c0);
  // Deadlines on a coarse grid, so many are equal and insertion order decides.
  const deadlines = new Float64Array(N);
  for (let i = 0; i < N; i++) deadlines[i] = Math.floor(random() * 5000) / 1000;
  let fired = 0;
  let lastDeadline = -Infinity;
  let lastIndex = -1;
  let outOfOrder = 0;
  const onTimer = (i: number): void => {
    const d = deadlines[i]!;
    if (d < lastDeadline || (d === lastDeadline && i < lastIndex)) outOfOrder++;
    if (loop.time() < d) outOfOrder++;
    lastDeadline = d;
    lastIndex = i;
    fired++;
  };
  for (let i = 0; i < N; i++) loop.callAt(deadlines[i]!, onTimer, i);
  expect(loop.stats().pendingTimers).toBe(N);
  loop.callAt(10, () => loop.stop());
  await loop.start();
  expect(fired).toBe(N);
  expect(outOfOrder).toBe(0);
  expect(loop.stats()).toMatchObject({ timers: N + 1, pendingTimers: 0 });
});

test('past the memory limit callLater throws a clear RangeError, and the loop keeps working', async () => {
  const loop = newLoop({ backend: 'fake' });
  // The core's test hook lowers its memory cap, so the limit is reached without gigabytes.
  const core = engineOf(loop).core;
  core.memory_limit(64); // 4 MiB
  const handles: unknown[] = [];
  let error: unknown;
  try {
    for (let i = 0; i < 10_000_000; i++) handles.push(loop.callLater(1 + (i % 7), () => {}));
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(RangeError);
  expect((error as Error).message).toMatch(/^too many pending timers: \d+ are pending, and the core has no room for another/);
  expect(loop.stats().pendingTimers).toBe(handles.length);
  // Removing two makes room for two: one more timer and the one that stops the loop.
  loop.removeTimeout(handles.pop());
  loop.removeTimeout(handles.pop());
  let fired = 0;
  handles.push(loop.callLater(0.5, () => fired++));
  loop.callLater(8, () => loop.stop());
  await loop.start();
  expect(loop.stats().timers).toBe(handles.length + 1);
  expect(fired).toBe(1);
});
