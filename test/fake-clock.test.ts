// The fake backend's virtual clock moves only when nothing is ready: no callback
// queued, no fd event, and no promise continuation of the loop's own work pending.
import { IOLoop, PeriodicCallback } from '../src/index';
import { guardResources, newLoop } from './helpers';

guardResources();

function fakeLoop(): IOLoop {
  return newLoop({ backend: 'fake' });
}

test('a PeriodicCallback of 10 s runs five times before a 55 s stop on the fake clock', async () => {
  const loop = fakeLoop();
  const calls: number[] = [];
  const pc = new PeriodicCallback(() => calls.push(loop.time()), 10_000, 0, loop);
  pc.start();
  loop.callLater(55, () => loop.stop());
  await loop.start();
  pc.stop();
  loop.close();
  expect(calls).toEqual([10, 20, 30, 40, 50]);
});

test('an async PeriodicCallback on the fake clock is called at every period', async () => {
  const loop = fakeLoop();
  const calls: number[] = [];
  const pc = new PeriodicCallback(
    async () => {
      calls.push(loop.time());
      await null;
      await Promise.resolve();
    },
    1000,
    0,
    loop,
  );
  pc.start();
  loop.callLater(5.5, () => loop.stop());
  await loop.start();
  pc.stop();
  loop.close();
  expect(calls).toEqual([1, 2, 3, 4, 5]);
});

test('an async callback that awaits and then schedules a timer sees it fire at its own deadline, before a later timer', async () => {
  const loop = fakeLoop();
  const trace: [number, string][] = [];
  loop.callLater(100, () => {
    trace.push([loop.time(), 'late']);
    loop.stop();
  });
  loop.addCallback(async () => {
    await null;
    loop.callLater(1, () => trace.push([loop.time(), 'f']));
  });
  await loop.start();
  loop.close();
  expect(trace).toEqual([
    [1, 'f'],
    [100, 'late'],
  ]);
});

test('a chain of awaits and timers on the fake clock ends at exactly the expected virtual times', async () => {
  const loop = fakeLoop();
  const sleep = (s: number): Promise<void> => new Promise((resolve) => loop.callLater(s, resolve));
  const seen: number[] = [];
  loop.callLater(1000, () => seen.push(-1)); // a far timer the clock must not jump to early
  const result = await loop.run(async () => {
    await sleep(1);
    seen.push(loop.time());
    await Promise.resolve();
    await sleep(0.5);
    seen.push(loop.time());
    for (let i = 0; i < 3; i++) {
      await null;
      await sleep(2);
      seen.push(loop.time());
    }
    await new Promise<void>((resolve) => loop.addCallback(resolve));
    await sleep(10);
    return loop.time();
  });
  loop.close();
  expect(seen).toEqual([1, 1.5, 3.5, 5.5, 7.5]);
  expect(result).toBe(17.5);
});

test('a synchronous PeriodicCallback schedules its next call in the same iteration', async () => {
  const loop = fakeLoop();
  let pendingAfterCall = -1;
  const pc = new PeriodicCallback(
    () => {
      // The next call is scheduled right after this returns, in the same iteration:
      // check from a callback queued now, which runs in the next iteration.
      loop.addCallback(() => {
        pendingAfterCall = loop.stats().pendingTimers;
        loop.stop();
      });
    },
    1000,
    0,
    loop,
  );
  pc.start();
  await loop.start();
  pc.stop();
  loop.close();
  expect(pendingAfterCall).toBe(1);
});

test('the fake clock does not move while a callback is queued by a promise continuation', async () => {
  const loop = fakeLoop();
  const times: number[] = [];
  loop.callLater(50, () => loop.stop());
  loop.addCallback(async () => {
    for (let i = 0; i < 20; i++) await null;
    loop.addCallback(() => times.push(loop.time()));
  });
  await loop.start();
  loop.close();
  expect(times).toEqual([0]);
});
