/**
 * W1 / W1e on wasm-ioloop's WASI build (wasm/core-wasi.wasm) over the package's
 * own WASI provider, portable driver: the program of ../wasm-ioloop/w1-timers.ts
 * on `new IOLoop({ backend: 'wasi', driver: 'portable' })`. n one-shot callLater
 * timers, delays uniform over 0..1000 ms ("random", W1) or all 50 ms ("equal",
 * W1e), scheduled from one callback, run until all have fired. nsPerOp: CPU ns per
 * timer. Checked: every timer once, in deadline order, equal deadlines in
 * insertion order.
 */
import { IOLoop } from 'wasm-ioloop';
import { checkTimerRun, SAMPLE_EVERY } from '../../lib/checks';
import { emit, fail, jobs, main, Span } from '../../lib/measure';
import { delaysMs } from '../../lib/prng';

const PEER = 'wasm-ioloop-wasi';

async function run(config: string, n: number): Promise<void> {
  const delays = delaysMs(n, config);
  const seconds = Float64Array.from(delays, (d) => d / 1000);
  const clock = new Float64Array(Math.ceil(n / SAMPLE_EVERY) + 1);
  const fired = new Int32Array(n);
  let count = 0;
  const span = new Span();
  const loop = new IOLoop({ backend: 'wasi', driver: 'portable' });
  const onFire = (i: number): void => {
    fired[count++] = i;
    if (count === n) {
      span.stop();
      loop.stop();
    }
  };
  loop.addCallback(() => {
    span.start();
    for (let i = 0; i < n; i++) {
      if (i % SAMPLE_EVERY === 0) clock[i / SAMPLE_EVERY] = loop.time();
      loop.callLater(seconds[i], onFire, i);
    }
    clock[clock.length - 1] = loop.time();
  });
  await loop.start();
  loop.close();
  const fault = checkTimerRun(fired, count, delays, clock);
  if (fault !== null) fail(`W1 ${config} ${PEER}`, fault);
  emit({
    scenario: config === 'equal' ? 'W1e' : 'W1', peer: PEER, config, n,
    wallMs: span.wallMs, cpuMs: span.cpuMs, nsPerOp: (span.cpuMs * 1e6) / n,
  });
}

main(async () => {
  for (const { config, n } of jobs(['random', 'equal'], 1_000_000)) await run(config, n);
});
