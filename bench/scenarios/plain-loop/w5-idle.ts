/**
 * W5 on the plain TypeScript loop: one timer at a third of the window (1 s of
 * 3 s), nothing else, and a timer that stops the loop at the window's end.
 * This loop waits in Atomics.wait (a futex), not in a poll call, so its count
 * of poll syscalls says nothing about it; its CPU ms still does. The size
 * argument is the window in ms.
 */
import { emit, fail, jobs, main, settle, Span } from '../../lib/measure';
import { PlainLoop } from '../../peers/plain-loop';

async function run(config: string, windowMs: number): Promise<void> {
  const what = 'W5 plain-loop';
  const loop = new PlainLoop();
  // Start-up work, the loop's included, is not what W5 measures.
  await settle();
  const span = new Span();
  let firedAt = -1;
  let fires = 0;
  loop.addCallback(() => {
    span.start();
    const t0 = performance.now();
    loop.callLater(windowMs / 3000, () => {
      fires++;
      firedAt = performance.now() - t0;
    });
    loop.callLater(windowMs / 1000, () => {
      span.stop();
      loop.stop();
    });
  });
  loop.start();
  if (fires !== 1) fail(what, `the timer ran ${fires} times`);
  if (firedAt < windowMs / 3 - 1) fail(what, `the timer ran early, at ${firedAt.toFixed(3)} ms`);
  emit({
    scenario: 'W5', peer: 'plain-loop', config, n: 1, wallMs: span.wallMs, cpuMs: span.cpuMs, nsPerOp: span.cpuMs * 1e6,
    windowMs, timerAtMs: firedAt, epochStartMs: span.epochStartMs, epochEndMs: span.epochEndMs, waitsIn: 'futex',
  });
}

main(async () => {
  for (const { config, n } of jobs(['idle'], 3000)) await run(config, n);
});
