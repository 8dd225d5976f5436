/**
 * S2 on wasm-ioloop (guest driver): n callLater timers as S1's (so n are pending),
 * then every one removed, in a random order (permutation: the same in every
 * language); rounds as S1's (scalingRounds). nsPerOp: CPU ns per removeTimeout,
 * the removals alone. Checked each round: no timer is pending after (stats()), and
 * none runs (the loop turns once more).
 */
import { IOLoop } from 'wasm-ioloop';
import { emit, fail, jobs, main, scalingRounds, Span } from '../../lib/measure';
import { permutation, spreadDelaysMs } from '../../lib/prng';

const SIZES = ['1k', '10k', '100k', '1M', '4M'];
const what = 'S2 wasm-ioloop';

function removed(i: number): void {
  fail(what, `removed timer ${i} ran`);
}

async function run(config: string, n: number): Promise<void> {
  const seconds = Float64Array.from(spreadDelaysMs(n), (d) => d / 1000);
  const order = permutation(n);
  const handles: unknown[] = new Array(n).fill(0);
  const rounds = scalingRounds(n);
  const measured = new Span();
  const loop = new IOLoop();
  let pending = -1;
  let cpuMs = 0;
  let wallMs = 0;
  const kickoff = (): void => {
    for (let i = 0; i < n; i++) handles[i] = loop.callLater(seconds[i], removed, i);
    measured.start();
    for (let k = 0; k < n; k++) loop.removeTimeout(handles[order[k]]);
    measured.stop();
    pending = loop.stats().pendingTimers;
    loop.addCallback(() => loop.stop());
  };
  for (let round = 0; round < rounds.total; round++) {
    loop.addCallback(kickoff);
    await loop.start();
    if (pending !== 0) fail(what, `${pending} timers pending after all were removed`);
    if (round >= rounds.total - rounds.measured) {
      cpuMs += measured.cpuMs;
      wallMs += measured.wallMs;
    }
  }
  loop.close();
  emit({ scenario: 'S2', peer: 'wasm-ioloop', config, n, rounds: rounds.measured, wallMs, cpuMs, nsPerOp: (cpuMs * 1e6) / (n * rounds.measured) });
}

main(async () => {
  for (const { config, n } of jobs(SIZES, 1_000_000)) await run(config, n);
});
