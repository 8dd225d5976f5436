/**
 * W3 on wasm-ioloop's WASI build over the package's own WASI provider, portable
 * driver: the program of ../wasm-ioloop/w3-callbacks.ts on
 * `new IOLoop({ backend: 'wasi', driver: 'portable' })`. n callbacks, a chain
 * (each one adds the next) or a batch (one callback adds all n). nsPerOp: CPU ns
 * per callback. Each callback checks that it runs in its turn.
 */
import { IOLoop } from 'wasm-ioloop';
import { emit, fail, jobs, main, Span } from '../../lib/measure';

const PEER = 'wasm-ioloop-wasi';

async function run(config: string, n: number): Promise<void> {
  const what = `W3 ${config} ${PEER}`;
  const loop = new IOLoop({ backend: 'wasi', driver: 'portable' });
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
  await loop.start();
  loop.close();
  if (next !== n) fail(what, `${next} of ${n} callbacks ran`);
  emit({ scenario: 'W3', peer: PEER, config, n, wallMs: span.wallMs, cpuMs: span.cpuMs, nsPerOp: (span.cpuMs * 1e6) / n });
}

main(async () => {
  for (const { config, n } of jobs(['chain', 'batch'], 1_000_000)) await run(config, n);
});
