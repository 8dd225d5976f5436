// The blocking driver: the loop owns its thread until stop(), each iteration polls
// once with the real timeout, and promise continuations run between iterations.
import { IOLoop } from '../src/index';
import { loadNative } from '../src/native';
import { guardResources, newLoop } from './helpers';

guardResources();
const native = loadNative()!;

test('promise continuations run between iterations: a chain of awaits is done before the poll waits for a later timer', async () => {
  const loop = newLoop({ driver: 'blocking' });
  const order: string[] = [];
  loop.callLater(0.2, () => {
    order.push('timer');
    loop.stop();
  });
  loop.addCallback(async () => {
    for (let i = 0; i < 5; i++) await Promise.resolve(i);
    loop.addCallback(() => order.push('after the awaits'));
  });
  await loop.start();
  expect(order).toEqual(['after the awaits', 'timer']);
});

test('an async handler of loop work resumes while the loop runs', async () => {
  const loop = newLoop({ driver: 'blocking' });
  const sleep = (s: number): Promise<void> => new Promise((resolve) => loop.callLater(s, resolve));
  const seen: number[] = [];
  const result = await loop.run(async () => {
    for (let i = 0; i < 3; i++) {
      await sleep(0.01);
      seen.push(i);
    }
    return 'done';
  });
  expect(result).toBe('done');
  expect(seen).toEqual([0, 1, 2]);
});

test("the host's own loop waits until the loop stops", async () => {
  const loop = newLoop({ driver: 'blocking' });
  let hostTimerRan = false;
  const hostTimer = setTimeout(() => (hostTimerRan = true), 0);
  let ranBeforeStop: boolean | undefined;
  loop.callLater(0.05, () => {
    ranBeforeStop = hostTimerRan;
    loop.stop();
  });
  await loop.start();
  expect(ranBeforeStop).toBe(false);
  await new Promise((resolve) => setTimeout(resolve, 5));
  expect(hostTimerRan).toBe(true);
  clearTimeout(hostTimer);
});

test('each iteration makes exactly one poll, and waiting for a timer takes one or two of them', async () => {
  const loop = newLoop({ driver: 'blocking' });
  // A registered fd that never becomes ready, so that every iteration has something to poll.
  const [readFd, writeFd] = loop.sys.pipe();
  loop.addHandler(readFd, () => {
    throw new Error('never ready');
  }, IOLoop.READ);
  let step = 0;
  const tick = (): void => {
    if (++step < 10) loop.addCallback(tick);
    else loop.callLater(0.1, () => loop.stop());
  };
  loop.addCallback(tick);
  const polls = native.counters().epollWait;
  const iterations = loop.stats().iterations;
  await loop.start();
  const ranIterations = loop.stats().iterations - iterations;
  const madePolls = native.counters().epollWait - polls;
  // Ten iterations of callbacks, then the wait for the timer (rounded up, so one
  // poll reaches it; a second one only if the clock says it is a little early).
  expect(ranIterations).toBeGreaterThanOrEqual(11);
  expect(ranIterations).toBeLessThanOrEqual(13);
  // The iteration that runs stop()'s timer stops before its poll.
  expect(madePolls).toBe(ranIterations - 1);
  loop.removeHandler(readFd);
  loop.sys.close(readFd);
  loop.sys.close(writeFd);
});

test('start() resolves after stop(), and the loop can start again', async () => {
  const loop = newLoop({ driver: 'blocking' });
  for (let round = 0; round < 3; round++) {
    let ran = false;
    loop.addCallback(() => {
      ran = true;
      loop.stop();
    });
    await loop.start();
    expect(ran).toBe(true);
    expect(IOLoop.current({ instance: false })).toBe(null);
  }
});

test('stop() from a promise continuation ends the run', async () => {
  const loop = newLoop({ driver: 'blocking' });
  loop.addCallback(async () => {
    await null;
    loop.stop();
  });
  loop.callLater(3600, () => {
    throw new Error('must not run');
  });
  await loop.start();
  expect(loop.stats().pendingTimers).toBe(1);
});
