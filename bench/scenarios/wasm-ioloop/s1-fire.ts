/**
 * S1 on wasm-ioloop (guest driver): n one-shot callLater timers, delays uniform
 * over 0..n/1000 ms (spreadDelaysMs: a thousand timers fall due per millisecond at
 * every size), scheduled from one callback, so n are pending when it returns; run
 * until all have fired. That round repeats until about a million timers have run
 * (scalingRounds), and every round but the first is measured, so that a small n
 * shows the per-timer cost of warm code rather than of the JIT. nsPerOp: CPU ns
 * per timer from the first schedule to the last fire of a round. rssBeforeMb: the
 * resident set before the first round, with this program's arrays touched; peak
 * RSS minus it is what n pending timers took. Checked each round as W1: every
 * timer once, in deadline order, equal deadlines in insertion order.
 */
import { IOLoop } from 'wasm-ioloop';
import { checkTimerRun, SAMPLE_EVERY } from '../../lib/checks';
import { emit, fail, jobs, main, rssNowMb, scalingRounds, Span } from '../../lib/measure';
import { spreadDelaysMs } from '../../lib/prng';

const SIZES = ['1k', '10k', '100k', '1M', '4M'];

async function run(config: string, n: number): Promise<void> {
  const delays = spreadDelaysMs(n);
  const span = Math.max(1, Math.floor(n / 1000));
  const seconds = Float64Array.from(delays, (d) => d / 1000);
  const clock = new Float64Array(Math.ceil(n / SAMPLE_EVERY) + 1);
  const fired = new Int32Array(n).fill(-1);
  const rounds = scalingRounds(n);
  const loop = new IOLoop();
  const measured = new Span();
  let count = 0;
  let cpuMs = 0;
  let wallMs = 0;
  const onFire = (i: number): void => {
    fired[count++] = i;
    if (count === n) {
      measured.stop();
      loop.stop();
    }
  };
  const kickoff = (): void => {
    measured.start();
    for (let i = 0; i < n; i++) {
      if (i % SAMPLE_EVERY === 0) clock[i / SAMPLE_EVERY] = loop.time();
      loop.callLater(seconds[i], onFire, i);
    }
    clock[clock.length - 1] = loop.time();
  };
  const before = rssNowMb();
  for (let round = 0; round < rounds.total; round++) {
    count = 0;
    loop.addCallback(kickoff);
    await loop.start();
    const fault = checkTimerRun(fired, count, delays, clock, span);
    if (fault !== null) fail(`S1 ${config} wasm-ioloop, round ${round + 1}`, fault);
    if (round >= rounds.total - rounds.measured) {
      cpuMs += measured.cpuMs;
      wallMs += measured.wallMs;
    }
  }
  loop.close();
  emit({
    scenario: 'S1', peer: 'wasm-ioloop', config, n, rounds: rounds.measured,
    wallMs, cpuMs, nsPerOp: (cpuMs * 1e6) / (n * rounds.measured), rssBeforeMb: before,
  });
}

main(async () => {
  for (const { config, n } of jobs(SIZES, 1_000_000)) await run(config, n);
});
