/**
 * W2 on the plain TypeScript loop: n timers at +10 s, 9 of every 10 removed
 * right after they are scheduled, then one loop turn. nsPerOp: CPU ns per
 * scheduled timer (each with a removal 9 times in 10). Removal is lazy, as in
 * Tornado, so the heap holds every timer until that turn sweeps it: peak RSS
 * shows the price. A removed timer's callback fails the program if it runs.
 */
import { emit, fail, jobs, main, Span } from '../../lib/measure';
import { PlainLoop } from '../../peers/plain-loop';

const what = 'W2 plain-loop';

function cancelled(i: number): void {
  fail(what, `removed timer ${i} ran`);
}

function run(config: string, n: number): void {
  const loop = new PlainLoop();
  let keptFired = 0;
  const kept = (_i: number): void => {
    keptFired++;
  };
  const span = new Span();
  loop.addCallback(() => {
    span.start();
    for (let i = 0; i < n; i++) {
      if (i % 10 === 9) loop.callLater(10, kept, i);
      else loop.removeTimeout(loop.callLater(10, cancelled, i));
    }
    // The next turn runs this, after the loop's own bookkeeping.
    loop.addCallback(() => {
      span.stop();
      loop.stop();
    });
  });
  loop.start();
  if (keptFired !== 0) fail(what, `${keptFired} timers due in 10 s ran within one turn`);
  const live = Math.floor(n / 10);
  if (n > 5120 && loop.heapSize() !== live) fail(what, `the heap holds ${loop.heapSize()} timers after the sweep, not ${live}`);
  emit({ scenario: 'W2', peer: 'plain-loop', config, n, wallMs: span.wallMs, cpuMs: span.cpuMs, nsPerOp: (span.cpuMs * 1e6) / n });
}

main(() => {
  for (const { config, n } of jobs(['churn'], 1_000_000)) run(config, n);
});
