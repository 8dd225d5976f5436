/**
 * S1 with Node's setTimeout: n one-shot timers, delays uniform over 0..n/1000 ms
 * (spreadDelaysMs), set from one callback, run until all have fired; rounds as the
 * wasm-ioloop program's (scalingRounds). nsPerOp: CPU ns per timer from the first
 * set to the last fire of a round; rssBeforeMb as the wasm-ioloop program's.
 * Node's timers give no order across different durations, so the check asks what
 * they promise: every timer once, equal delays in insertion order.
 */
import { checkTimerRun } from '../../lib/checks';
import { emit, fail, jobs, main, rssNowMb, scalingRounds, Span } from '../../lib/measure';
import { spreadDelaysMs } from '../../lib/prng';

const SIZES = ['1k', '10k', '100k', '1M', '4M'];

async function run(config: string, n: number): Promise<void> {
  const delays = spreadDelaysMs(n);
  const span = Math.max(1, Math.floor(n / 1000));
  const fired = new Int32Array(n).fill(-1);
  const rounds = scalingRounds(n);
  const measured = new Span();
  let count = 0;
  let cpuMs = 0;
  let wallMs = 0;
  const before = rssNowMb();
  for (let round = 0; round < rounds.total; round++) {
    count = 0;
    await new Promise<void>((resolve) => {
      const onFire = (i: number): void => {
        fired[count++] = i;
        if (count === n) {
          measured.stop();
          resolve();
        }
      };
      setImmediate(() => {
        measured.start();
        for (let i = 0; i < n; i++) setTimeout(onFire, delays[i], i);
      });
    });
    const fault = checkTimerRun(fired, count, delays, null, span);
    if (fault !== null) fail(`S1 ${config} node-settimeout, round ${round + 1}`, fault);
    if (round >= rounds.total - rounds.measured) {
      cpuMs += measured.cpuMs;
      wallMs += measured.wallMs;
    }
  }
  emit({
    scenario: 'S1', peer: 'node', config, n, rounds: rounds.measured,
    wallMs, cpuMs, nsPerOp: (cpuMs * 1e6) / (n * rounds.measured), rssBeforeMb: before,
  });
}

main(async () => {
  for (const { config, n } of jobs(SIZES, 1_000_000)) await run(config, n);
});
