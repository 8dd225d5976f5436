/**
 * W2 with Node's setTimeout/clearTimeout: n timers at +10 s, 9 of every 10
 * cleared right after they are set, then one loop turn. nsPerOp: CPU ns per
 * scheduled timer (each with a clear 9 times in 10); rssPeakMb is the point.
 * A cleared timer's callback fails the program if it ever runs.
 */
import { emit, fail, jobs, main, Span } from '../../lib/measure';

const what = 'W2 node-settimeout';

function cancelled(i: number): void {
  fail(what, `cleared timer ${i} ran`);
}

function run(config: string, n: number): Promise<void> {
  let keptFired = 0;
  const kept = (_i: number): void => {
    keptFired++;
  };
  const survivors: NodeJS.Timeout[] = [];
  const span = new Span();
  return new Promise<void>((resolve) => {
    setImmediate(() => {
      span.start();
      for (let i = 0; i < n; i++) {
        if (i % 10 === 9) {
          survivors.push(setTimeout(kept, 10_000, i));
        } else {
          clearTimeout(setTimeout(cancelled, 10_000, i));
        }
      }
      // One more turn of the loop.
      setImmediate(() => {
        span.stop();
        resolve();
      });
    });
  }).then(() => {
    if (keptFired !== 0) fail(what, `${keptFired} timers due in 10 s ran within one turn`);
    if (survivors.length !== Math.floor(n / 10)) fail(what, `${survivors.length} timers kept`);
    for (const t of survivors) clearTimeout(t);
    emit({ scenario: 'W2', peer: 'node', config, n, wallMs: span.wallMs, cpuMs: span.cpuMs, nsPerOp: (span.cpuMs * 1e6) / n });
  });
}

main(async () => {
  for (const { config, n } of jobs(['churn'], 1_000_000)) await run(config, n);
});
