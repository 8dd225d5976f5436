/**
 * W5 on wasm-ioloop (guest driver): one timer at a third of the window (1 s of
 * 3 s), nothing else, and a timer that stops the loop at the window's end.
 * Reports CPU ms over the window and its wall-clock bounds, which the harness
 * matches against a syscall trace to count poll calls, and the epoll_wait
 * calls the native shim itself counted in the window (shimEpollWaits: ours
 * only, not libuv's). The window is given in milliseconds as the size argument.
 */
import { IOLoop } from 'wasm-ioloop';
// Not public API: the shim's syscall counters, which exist for bounds like this one.
import { loadNative } from '../../../src/native';
import { emit, fail, jobs, main, settle, Span } from '../../lib/measure';

async function run(config: string, windowMs: number): Promise<void> {
  const what = 'W5 wasm-ioloop';
  const loop = new IOLoop();
  // Start-up work, the loop's included, is not what W5 measures.
  await settle();
  const span = new Span();
  let firedAt = -1;
  let fires = 0;
  const shim = loadNative();
  let waits0 = 0;
  let shimEpollWaits: number | null = null;
  loop.addCallback(() => {
    waits0 = shim?.counters().epollWait ?? 0;
    span.start();
    const t0 = performance.now();
    loop.callLater(windowMs / 3000, () => {
      fires++;
      firedAt = performance.now() - t0;
    });
    loop.callLater(windowMs / 1000, () => {
      span.stop();
      if (shim) shimEpollWaits = shim.counters().epollWait - waits0;
      loop.stop();
    });
  });
  await loop.start();
  loop.close();
  if (fires !== 1) fail(what, `the timer ran ${fires} times`);
  if (firedAt < windowMs / 3 - 1) fail(what, `the timer ran early, at ${firedAt.toFixed(3)} ms`);
  emit({
    scenario: 'W5', peer: 'wasm-ioloop', config, n: 1, wallMs: span.wallMs, cpuMs: span.cpuMs, nsPerOp: span.cpuMs * 1e6,
    windowMs, timerAtMs: firedAt, shimEpollWaits, epochStartMs: span.epochStartMs, epochEndMs: span.epochEndMs,
  });
}

main(async () => {
  for (const { config, n } of jobs(['idle'], 3000)) await run(config, n);
});
