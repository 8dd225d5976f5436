// PeriodicCallback as in Tornado 6: the grid, overruns, clocks going backwards,
// async callbacks, errors, jitter, and the current loop.
import { IOLoop, PeriodicCallback } from '../src/index';
import { RecordingLogger, guardResources, newLoop } from './helpers';

guardResources();

/**
 * Scheduling arithmetic on a simulated clock (Tornado's TestPeriodicCallbackMath):
 * each duration is how long a call takes (negative: the clock went backwards);
 * returns the times at which the calls are scheduled.
 */
function simulateCalls(pc: PeriodicCallback, durations: number[]): number[] {
  const internals = pc as unknown as { nextTimeout: number; updateNext(now: number): void };
  const calls: number[] = [];
  let now = 1000;
  internals.nextTimeout = now;
  for (const d of durations) {
    internals.updateNext(now);
    calls.push(internals.nextTimeout);
    now = internals.nextTimeout + d;
  }
  return calls;
}

const noop = (): void => {};

describe('scheduling arithmetic', () => {
  test('calls stay on the grid start + k·period', () => {
    const pc = new PeriodicCallback(noop, 10_000);
    expect(simulateCalls(pc, [0, 0, 0])).toEqual([1010, 1020, 1030]);
    expect(simulateCalls(pc, [1, 1, 1])).toEqual([1010, 1020, 1030]); // short calls don't shift the grid
  });

  test('after an overrun whole periods are skipped', () => {
    const pc = new PeriodicCallback(noop, 10_000);
    expect(simulateCalls(pc, [5, 15, 5, 25, 5])).toEqual([1010, 1020, 1040, 1050, 1080]);
  });

  test('a clock that goes backwards never repeats a call', () => {
    const pc = new PeriodicCallback(noop, 10_000);
    const calls = simulateCalls(pc, [-100, -2, 0, 0]);
    expect(calls).toEqual([1010, 1020, 1030, 1040]);
    for (let i = 1; i < calls.length; i++) expect(calls[i]).toBeGreaterThan(calls[i - 1]!);
  });

  test('jitter moves each call by at most ±jitter/2 of the period', () => {
    const pc = new PeriodicCallback(noop, 10_000, 0.5);
    const calls = simulateCalls(pc, new Array(200).fill(0));
    const gaps = calls.map((t, i) => t - (i === 0 ? 1000 : calls[i - 1]!));
    for (const g of gaps) {
      expect(g).toBeGreaterThanOrEqual(10 * 0.75);
      expect(g).toBeLessThanOrEqual(10 * 1.25);
    }
    expect(new Set(gaps.map((g) => g.toFixed(6))).size).toBeGreaterThan(100); // it really varies
  });
});

test('runs every period on its loop until stopped', async () => {
  const loop = newLoop({ backend: 'fake' });
  const at: number[] = [];
  const pc = new PeriodicCallback(() => {
    at.push(loop.time());
    if (at.length === 4) {
      pc.stop();
      loop.callLater(1, () => loop.stop());
    }
  }, 250, 0, loop);
  expect(pc.isRunning()).toBe(false);
  pc.start();
  expect(pc.isRunning()).toBe(true);
  await loop.start();
  expect(pc.isRunning()).toBe(false);
  expect(at).toEqual([0.25, 0.5, 0.75, 1]);
  expect(loop.stats().pendingTimers).toBe(0);
});

test('an async callback is awaited before the next call is scheduled', async () => {
  const loop = newLoop({ backend: 'fake' });
  const starts: number[] = [];
  let active = 0;
  let overlapped = false;
  const pc = new PeriodicCallback(async () => {
    starts.push(loop.time());
    if (active++ > 0) overlapped = true;
    await new Promise<void>((r) => loop.callLater(0.35, r)); // longer than the period
    active--;
    if (starts.length === 3) {
      pc.stop();
      loop.stop();
    }
  }, 100, 0, loop);
  pc.start();
  await loop.start();
  expect(overlapped).toBe(false);
  // 0.1 runs until 0.45; the next grid point after that is 0.5, then 0.85 → 0.9.
  expect(starts.map((t) => Math.round(t * 1000) / 1000)).toEqual([0.1, 0.5, 0.9]);
});

test("an error is logged through the loop's logger and the calls go on", async () => {
  const logger = new RecordingLogger();
  const loop = newLoop({ backend: 'fake', logger });
  let calls = 0;
  const pc = new PeriodicCallback(() => {
    calls++;
    if (calls === 1) throw new Error('periodic failure');
    if (calls === 2) return Promise.reject(new Error('async periodic failure'));
    pc.stop();
    loop.stop();
    return undefined;
  }, 10, 0, loop);
  pc.start();
  await loop.start();
  expect(calls).toBe(3);
  expect(logger.errors.map((a) => (a[1] as Error).message)).toEqual(['periodic failure', 'async periodic failure']);
});

test('without a loop argument it uses the current loop when started', async () => {
  const loop = newLoop({ backend: 'fake', makeCurrent: true });
  let ranOn: IOLoop | null = null;
  const pc = new PeriodicCallback(() => {
    ranOn = IOLoop.current({ instance: false });
    pc.stop();
    loop.stop();
  }, 1000);
  pc.start();
  await loop.start();
  expect(ranOn).toBe(loop);
});
