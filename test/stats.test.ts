// Loop health in stats(): idle time (a wait in progress counts) and timer lag,
// each checked against an independent measure.
import { performance } from 'node:perf_hooks';
import { guardResources, newLoop } from './helpers';

guardResources();

function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

test("a guest loop idle for 1 s reports at least 0.9 s idle, as Node's event loop utilization does", async () => {
  const loop = newLoop();
  const elu = performance.eventLoopUtilization();
  loop.callLater(1, () => loop.stop());
  await loop.start();
  const nodeIdle = performance.eventLoopUtilization(elu).idle / 1000;
  const ours = loop.stats().idleTime;
  expect(ours).toBeGreaterThanOrEqual(0.9);
  expect(nodeIdle).toBeGreaterThanOrEqual(0.9);
  // Both measure the same wait: Node's poll is where our loop waits.
  expect(Math.abs(ours - nodeIdle)).toBeLessThan(0.1);
});

test('a read of idleTime during a wait counts the wait so far', async () => {
  const loop = newLoop();
  const done = loop.start();
  await new Promise((resolve) => setTimeout(resolve, 300));
  const during = loop.stats().idleTime;
  loop.stop();
  await done;
  expect(during).toBeGreaterThanOrEqual(0.25);
});

test('a blocking loop idle for 1 s reports at least 0.9 s idle', async () => {
  const loop = newLoop({ driver: 'blocking' });
  const start = performance.now();
  loop.callLater(1, () => loop.stop());
  await loop.start();
  const wall = (performance.now() - start) / 1000;
  const idle = loop.stats().idleTime;
  expect(idle).toBeGreaterThanOrEqual(0.9);
  expect(idle).toBeLessThanOrEqual(wall);
});

test('a 50 ms spin before a due timer shows in lag.max, and busy work is not idle', async () => {
  const loop = newLoop();
  loop.addCallback(() => spin(50));
  loop.callLater(0.001, () => loop.stop());
  await loop.start();
  const { lag, idleTime } = loop.stats();
  expect(lag.count).toBe(1);
  expect(lag.max).toBeGreaterThanOrEqual(0.045);
  expect(lag.p50).toBeLessThanOrEqual(lag.max);
  expect(idleTime).toBeLessThan(0.045);
});

test('lag has one sample per iteration that fires timers, its earliest, and none for iterations without', async () => {
  const loop = newLoop({ backend: 'fake' });
  for (let i = 1; i <= 5; i++) loop.callLater(i, () => {});
  loop.callLater(5, () => {}); // same iteration as the fifth: no second sample
  loop.addCallback(() => {});
  loop.callLater(6, () => loop.stop());
  await loop.start();
  const { lag } = loop.stats();
  expect(lag).toEqual({ count: 6, p50: 0, p99: 0, max: 0 }); // the fake clock is never late
});
