/**
 * W1 / W1e with Node's setTimeout: n one-shot timers, delays uniform over
 * 0..1000 ms ("random", scenario W1) or all 50 ms ("equal", W1e), scheduled
 * from one callback, run until all have fired. nsPerOp: CPU ns per timer.
 *
 * Node keeps one list per duration and gives no order between timers of
 * different durations that are due together, so the check holds it to what it
 * promises: every timer once, equal delays in insertion order.
 */
import { checkTimerRun } from '../../lib/checks';
import { emit, fail, jobs, main, Span } from '../../lib/measure';
import { delaysMs } from '../../lib/prng';

function run(config: string, n: number): Promise<void> {
  const delays = delaysMs(n, config);
  const fired = new Int32Array(n);
  let count = 0;
  const span = new Span();
  return new Promise<void>((resolve) => {
    const onFire = (i: number): void => {
      fired[count++] = i;
      if (count === n) {
        span.stop();
        resolve();
      }
    };
    setImmediate(() => {
      span.start();
      for (let i = 0; i < n; i++) setTimeout(onFire, delays[i], i);
    });
  }).then(() => {
    const what = `W1 ${config} node-settimeout`;
    const fault = checkTimerRun(fired, count, delays, null);
    if (fault !== null) fail(what, fault);
    emit({
      scenario: config === 'equal' ? 'W1e' : 'W1',
      peer: 'node',
      config,
      n,
      wallMs: span.wallMs,
      cpuMs: span.cpuMs,
      nsPerOp: (span.cpuMs * 1e6) / n,
    });
  });
}

main(async () => {
  for (const { config, n } of jobs(['random', 'equal'], 1_000_000)) await run(config, n);
});
