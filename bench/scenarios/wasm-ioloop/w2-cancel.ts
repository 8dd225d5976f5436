/**
 * W2 on wasm-ioloop (guest driver): n timers at +10 s, 9 of every 10 removed
 * right after they are scheduled, then one loop turn. nsPerOp: CPU ns per
 * scheduled timer (each with a removal 9 times in 10); peak RSS is the other
 * figure. A removed timer's callback fails the program if it runs, and the
 * loop's stats() must count only the kept timers as pending.
 */
import { IOLoop } from 'wasm-ioloop';
import { emit, fail, jobs, main, Span } from '../../lib/measure';

const what = 'W2 wasm-ioloop';

function cancelled(i: number): void {
  fail(what, `removed timer ${i} ran`);
}

async function run(config: string, n: number): Promise<void> {
  const loop = new IOLoop();
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
  await loop.start();
  const pending = loop.stats().pendingTimers;
  loop.close();
  if (keptFired !== 0) fail(what, `${keptFired} timers due in 10 s ran within one turn`);
  const live = Math.floor(n / 10);
  if (pending !== live) fail(what, `stats().pendingTimers is ${pending}, not ${live}`);
  emit({ scenario: 'W2', peer: 'wasm-ioloop', config, n, wallMs: span.wallMs, cpuMs: span.cpuMs, nsPerOp: (span.cpuMs * 1e6) / n });
}

main(async () => {
  for (const { config, n } of jobs(['churn'], 1_000_000)) await run(config, n);
});
