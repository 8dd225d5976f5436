// docs/API.md "Semantics": one iteration, the poll timeout, timer order, the fake clock.
import { IOLoop } from '../src/index';
import { guardResources, newLoop } from './helpers';

guardResources();

const iteration = (loop: IOLoop): number => loop.stats().iterations;

test('callbacks queued before an iteration run before the timers due at its start', async () => {
  const loop = newLoop();
  const order: string[] = [];
  loop.callLater(-1, () => {
    order.push('timer');
    loop.stop();
  });
  loop.addCallback(() => order.push('callback 1'));
  loop.addCallback(() => order.push('callback 2'));
  await loop.start();
  expect(order).toEqual(['callback 1', 'callback 2', 'timer']);
});

test('a callback added by a callback runs in a later iteration', async () => {
  const loop = newLoop();
  const seen: number[] = [];
  loop.addCallback(() => {
    seen.push(iteration(loop));
    loop.addCallback(() => {
      seen.push(iteration(loop));
      loop.stop();
    });
  });
  await loop.start();
  expect(seen[1]).toBe(seen[0]! + 1);
});

test('a timer added during an iteration with a past deadline runs in a later iteration', async () => {
  const loop = newLoop();
  const seen: number[] = [];
  loop.callLater(0, () => {
    seen.push(iteration(loop));
    loop.callAt(loop.time() - 10, () => {
      seen.push(iteration(loop));
      loop.stop();
    });
  });
  await loop.start();
  expect(seen[1]).toBeGreaterThan(seen[0]!);
});

test('a timer removed by an earlier timer of the same iteration does not run', async () => {
  const loop = newLoop();
  const ran: string[] = [];
  const when = loop.time() - 1;
  let second: unknown;
  loop.callAt(when, () => {
    ran.push('first');
    loop.removeTimeout(second);
  });
  second = loop.callAt(when, () => ran.push('second'));
  loop.callAt(when + 0.5, () => loop.stop());
  await loop.start();
  expect(ran).toEqual(['first']);
  expect(loop.stats().pendingTimers).toBe(0);
});

test('timers with the same deadline fire in the order they were added', async () => {
  const loop = newLoop({ backend: 'fake' });
  const fired: number[] = [];
  const base = loop.time();
  for (let i = 0; i < 200; i++) loop.callAt(base + (i % 4) * 0.25, () => fired.push(i));
  loop.callAt(base + 1, () => loop.stop());
  await loop.start();
  const expected = [0, 1, 2, 3].flatMap((d) => Array.from({ length: 50 }, (_, k) => k * 4 + d));
  expect(fired).toEqual(expected);
});

test('callLater with a negative delay and callAt with a past deadline run in the next iteration', async () => {
  const loop = newLoop();
  const seen: string[] = [];
  loop.addCallback(() => {
    const now = iteration(loop);
    loop.callLater(-5, () => seen.push(`later ${iteration(loop) - now}`));
    loop.callAt(loop.time() - 1, () => {
      seen.push(`at ${iteration(loop) - now}`);
      loop.stop();
    });
  });
  await loop.start();
  expect(seen).toEqual(['later 1', 'at 1']);
});

test('the poll does not wait while callbacks are pending (fake clock stays put)', async () => {
  const loop = newLoop({ backend: 'fake' });
  const times: number[] = [];
  loop.callLater(10, () => loop.stop());
  let left = 100;
  const step = (): void => {
    times.push(loop.time());
    if (--left > 0) loop.addCallback(step);
  };
  loop.addCallback(step);
  await loop.start();
  expect(times).toHaveLength(100);
  expect(new Set(times).size).toBe(1); // no jump while a callback was pending
  expect(loop.time()).toBe(10);
});

test('the fake clock jumps to the next deadline when nothing else is ready', async () => {
  const loop = newLoop({ backend: 'fake' });
  const at: number[] = [];
  loop.callLater(30, () => at.push(loop.time()));
  loop.callLater(90.5, () => {
    at.push(loop.time());
    loop.stop();
  });
  await loop.start();
  expect(at).toEqual([30, 90.5]);
});

test('the poll waits at most 3600 seconds at a time', async () => {
  const loop = newLoop({ backend: 'fake' });
  loop.callLater(10_000, () => loop.stop());
  await loop.start();
  expect(loop.time()).toBe(10_000);
  // 3600 + 3600 + 2800: at least three waits (three turns) to get there.
  expect(iteration(loop)).toBeGreaterThanOrEqual(3);
});

test('an idle loop does not spin: a handful of iterations while waiting for one timer', async () => {
  const loop = newLoop();
  loop.callLater(0.3, () => loop.stop());
  await loop.start();
  expect(iteration(loop)).toBeLessThanOrEqual(5);
});

test('timers fire no earlier than their deadline on the real clock', async () => {
  const loop = newLoop();
  const start = loop.time();
  const lateness: number[] = [];
  for (const d of [0.005, 0.02, 0.04]) loop.callLater(d, () => lateness.push(loop.time() - (start + d)));
  loop.callLater(0.05, () => loop.stop());
  await loop.start();
  expect(lateness).toHaveLength(3);
  for (const l of lateness) expect(l).toBeGreaterThanOrEqual(0);
});

test('stats count callbacks, timers and pending work; removed timers are not pending', async () => {
  const loop = newLoop({ backend: 'fake' });
  const t = loop.callLater(5, () => {});
  loop.callLater(1, () => {});
  loop.addCallback(() => {});
  expect(loop.stats()).toMatchObject({ pendingCallbacks: 1, pendingTimers: 2, handlers: 0, iterations: 0 });
  loop.removeTimeout(t);
  expect(loop.stats().pendingTimers).toBe(1);
  loop.callLater(2, () => loop.stop());
  await loop.start();
  expect(loop.stats()).toMatchObject({ callbacks: 1, timers: 2, pendingCallbacks: 0, pendingTimers: 0 });
});

test('removeTimeout is safe on fired, removed and stale handles', async () => {
  const loop = newLoop({ backend: 'fake' });
  const fired = loop.callLater(1, () => {});
  const removed = loop.callLater(2, () => {});
  loop.removeTimeout(removed);
  loop.callLater(3, () => loop.stop());
  await loop.start();
  // The slots of both are free now; new timers may reuse them.
  const ran: number[] = [];
  const fresh = [1, 2, 3].map((i) => loop.callLater(i, () => ran.push(i)));
  loop.removeTimeout(fired);
  loop.removeTimeout(removed);
  loop.removeTimeout(removed);
  loop.removeTimeout(undefined);
  loop.callLater(4, () => loop.stop());
  await loop.start();
  expect(ran).toEqual([1, 2, 3]);
  expect(fresh).toHaveLength(3);
});

test('addTimeout takes an absolute number or a relative Duration', async () => {
  const loop = newLoop({ backend: 'fake' });
  const at: Record<string, number> = {};
  loop.addTimeout(7, () => (at.absolute = loop.time()));
  loop.addTimeout({ seconds: 1, milliseconds: 500, microseconds: 250 }, () => (at.relative = loop.time()));
  loop.callLater(8, () => loop.stop());
  await loop.start();
  expect(at).toEqual({ absolute: 7, relative: 1.50025 });
});

test('arguments given with a callback or timer are passed to it', async () => {
  const loop = newLoop({ backend: 'fake' });
  const got: unknown[][] = [];
  loop.addCallback((a: number, b: string) => got.push([a, b]), 1, 'x');
  loop.addCallback((...a: unknown[]) => got.push(a));
  loop.addCallback((a: unknown) => got.push([a]), [1, 2]); // one argument that is an array
  loop.addCallback((a: unknown) => got.push([a]), undefined);
  loop.callLater(1, (c: boolean) => got.push([c]), true);
  loop.callLater(1.5, (a: number, b: number, c: number) => got.push([a, b, c]), 1, 2, 3);
  loop.callAt(2, () => loop.stop());
  await loop.start();
  expect(got).toEqual([[1, 'x'], [], [[1, 2]], [undefined], [true], [1, 2, 3]]);
});
