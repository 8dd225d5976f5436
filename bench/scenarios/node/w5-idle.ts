/**
 * W5 with Node's setTimeout: one timer at a third of the window (1 s of 3 s),
 * nothing else, and a timer at the window's end. Reports CPU ms over the
 * window and its wall-clock bounds, which the harness matches against a
 * syscall trace to count poll calls. The size argument is the window in ms.
 */
import { emit, fail, jobs, main, settle, Span } from '../../lib/measure';

async function run(config: string, windowMs: number): Promise<void> {
  await settle();
  const what = 'W5 node-settimeout';
  const span = new Span();
  let firedAt = -1;
  let fires = 0;
  await new Promise<void>((resolve) => {
    setImmediate(() => {
      span.start();
      const t0 = performance.now();
      setTimeout(() => {
        fires++;
        firedAt = performance.now() - t0;
      }, windowMs / 3);
      setTimeout(() => {
        span.stop();
        resolve();
      }, windowMs);
    });
  });
  if (fires !== 1) fail(what, `the timer ran ${fires} times`);
  // Node truncates delays to whole milliseconds.
  if (firedAt < Math.trunc(windowMs / 3) - 1) fail(what, `the timer ran early, at ${firedAt.toFixed(3)} ms`);
  emit({
    scenario: 'W5', peer: 'node', config, n: 1, wallMs: span.wallMs, cpuMs: span.cpuMs, nsPerOp: span.cpuMs * 1e6,
    windowMs, timerAtMs: firedAt, epochStartMs: span.epochStartMs, epochEndMs: span.epochEndMs,
  });
}

main(async () => {
  for (const { config, n } of jobs(['idle'], 3000)) await run(config, n);
});
