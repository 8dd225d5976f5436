/**
 * S2 with Node's setTimeout/clearTimeout: n timers as S1's, then every one cleared
 * in S2's random order (permutation); rounds as S1's (scalingRounds). nsPerOp: CPU
 * ns per clearTimeout, the clears alone. Checked each round: no Timeout is left
 * among the process's active resources; a cleared timer's callback fails the
 * program if it runs.
 */
import { emit, fail, jobs, main, scalingRounds, Span } from '../../lib/measure';
import { permutation, spreadDelaysMs } from '../../lib/prng';

const SIZES = ['1k', '10k', '100k', '1M', '4M'];
const what = 'S2 node-settimeout';

function cleared(i: number): void {
  fail(what, `cleared timer ${i} ran`);
}

async function run(config: string, n: number): Promise<void> {
  const delays = spreadDelaysMs(n);
  const order = permutation(n);
  const handles: NodeJS.Timeout[] = new Array(n);
  const rounds = scalingRounds(n);
  const measured = new Span();
  let cpuMs = 0;
  let wallMs = 0;
  for (let round = 0; round < rounds.total; round++) {
    await new Promise<void>((resolve) => {
      setImmediate(() => {
        for (let i = 0; i < n; i++) handles[i] = setTimeout(cleared, delays[i], i);
        measured.start();
        for (let k = 0; k < n; k++) clearTimeout(handles[order[k]]);
        measured.stop();
        setImmediate(resolve);
      });
    });
    const left = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    if (left !== 0) fail(what, `${left} timers still active after all were cleared`);
    if (round >= rounds.total - rounds.measured) {
      cpuMs += measured.cpuMs;
      wallMs += measured.wallMs;
    }
  }
  emit({ scenario: 'S2', peer: 'node', config, n, rounds: rounds.measured, wallMs, cpuMs, nsPerOp: (cpuMs * 1e6) / (n * rounds.measured) });
}

main(async () => {
  for (const { config, n } of jobs(SIZES, 1_000_000)) await run(config, n);
});
