/**
 * W3 with Node's setImmediate: n callbacks, either a chain (each one queues
 * the next) or a batch (one callback queues all n). nsPerOp: CPU ns per
 * callback. Each callback checks that it runs in its turn.
 */
import { emit, fail, jobs, main, Span } from '../../lib/measure';

function run(config: string, n: number): Promise<void> {
  const what = `W3 ${config} node-setimmediate`;
  const span = new Span();
  let next = 0;
  return new Promise<void>((resolve) => {
    const step = (i: number): void => {
      if (i !== next) fail(what, `callback ${i} ran when ${next} was due`);
      next++;
      if (next === n) {
        span.stop();
        resolve();
      } else if (config === 'chain') {
        setImmediate(step, next);
      }
    };
    setImmediate(() => {
      span.start();
      if (config === 'chain') setImmediate(step, 0);
      else for (let i = 0; i < n; i++) setImmediate(step, i);
    });
  }).then(() => {
    if (next !== n) fail(what, `${next} of ${n} callbacks ran`);
    emit({ scenario: 'W3', peer: 'node', config, n, wallMs: span.wallMs, cpuMs: span.cpuMs, nsPerOp: (span.cpuMs * 1e6) / n });
  });
}

main(async () => {
  for (const { config, n } of jobs(['chain', 'batch'], 1_000_000)) await run(config, n);
});
