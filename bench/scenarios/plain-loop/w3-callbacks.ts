/**
 * W3 on the plain TypeScript loop: n callbacks, a chain (each one adds the
 * next) or a batch (one callback adds all n). nsPerOp: CPU ns per callback.
 * Each callback checks that it runs in its turn.
 */
import { emit, fail, jobs, main, Span } from '../../lib/measure';
import { PlainLoop } from '../../peers/plain-loop';

function run(config: string, n: number): void {
  const what = `W3 ${config} plain-loop`;
  const loop = new PlainLoop();
  const span = new Span();
  let next = 0;
  const step = (i: number): void => {
    if (i !== next) fail(what, `callback ${i} ran when ${next} was due`);
    next++;
    if (next === n) {
      span.stop();
      loop.stop();
    } else if (config === 'chain') {
      loop.addCallback(step, next);
    }
  };
  loop.addCallback(() => {
    span.start();
    if (config === 'chain') loop.addCallback(step, 0);
    else for (let i = 0; i < n; i++) loop.addCallback(step, i);
  });
  loop.start();
  if (next !== n) fail(what, `${next} of ${n} callbacks ran`);
  emit({ scenario: 'W3', peer: 'plain-loop', config, n, wallMs: span.wallMs, cpuMs: span.cpuMs, nsPerOp: (span.cpuMs * 1e6) / n });
}

main(() => {
  for (const { config, n } of jobs(['chain', 'batch'], 1_000_000)) run(config, n);
});
