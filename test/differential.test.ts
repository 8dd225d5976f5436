// Differential test: random programs (test/oracle/programs.ts) run on the
// package's IOLoop (fake backend, every driver this host has) and on the Tornado
// port in bench/peers/plain-loop.ts (virtual clock); their traces of (loop time,
// label) must be identical.
//
// Where promise continuations run relative to the iterations of one virtual
// instant is not part of the loop contract (only that they run before the clock
// moves). So the port runs each program under several legal host-turn schedules:
// - if they all give the same trace, the IOLoop must give exactly that trace;
// - else, if they agree once what continuations log is sorted within its instant
//   (Trace.canonical), the IOLoop must agree on that;
// - else the program does not pin down one answer and is skipped (fc.pre).
//
// Replay: WASM_IOLOOP_DIFF_SEED=<seed> (and WASM_IOLOOP_DIFF_PROGRAMS=<count>);
// fast-check's failure message also gives the seed and path of the failing run.
import fc from 'fast-check';
import type { HostTurns } from '../bench/peers/plain-loop';
import { IOLoop, type IOLoopOptions } from '../src/index';
import { fdCount, guardResources } from './helpers';
import { mulberry32, openIOLoop, openPlainLoop, type OpenLoop } from './oracle/loops';
import { Trace, formatProgram, programArb, runProgram, type Body, type Program } from './oracle/programs';

const SEED = Number(process.env.WASM_IOLOOP_DIFF_SEED ?? 1_234_567);
const PROGRAMS = Number(process.env.WASM_IOLOOP_DIFF_PROGRAMS ?? 2000);

/** Every driver this host can run the fake backend on. */
const DRIVERS = IOLoop.host().drivers as NonNullable<IOLoopOptions['driver']>[];

guardResources();

async function traceOn(p: Program, open: (trace: Trace) => OpenLoop): Promise<Trace> {
  const trace = new Trace();
  const loop = open(trace);
  try {
    await runProgram(p, loop.api, trace);
    return trace;
  } finally {
    loop.close();
  }
}

type Reference = { how: 'full' | 'canonical'; trace: string[] } | { how: 'none' };

/**
 * The port's trace of `p` under several host-turn schedules: the full trace if
 * all agree on it, else the canonical one if all agree on that, else none.
 */
async function reference(p: Program): Promise<Reference> {
  const random = mulberry32(p.seed);
  const schedules: HostTurns[] = ['every-iteration', 'when-idle', 'no-callbacks', () => random() < 0.5];
  const traces: Trace[] = [];
  for (const turns of schedules) traces.push(await traceOn(p, (t) => openPlainLoop(t, turns)));
  const agree = (view: (t: Trace) => string[]): string[] | null => {
    const first = view(traces[0]!);
    const text = first.join('\n');
    return traces.every((t) => view(t).join('\n') === text) ? first : null;
  };
  const full = agree((t) => t.full());
  if (full !== null) return { how: 'full', trace: full };
  const canonical = agree((t) => t.canonical());
  if (canonical !== null) return { how: 'canonical', trace: canonical };
  return { how: 'none' };
}

/** Both traces side by side from a few lines before the first difference. */
function sideBySide(expected: string[], actual: string[], driver: string): string {
  let i = 0;
  while (i < expected.length && i < actual.length && expected[i] === actual[i]) i++;
  const rows = [` ${'tornado port'.padEnd(31)}| IOLoop (fake, ${driver})`];
  for (let k = Math.max(0, i - 3); k < Math.max(expected.length, actual.length); k++) {
    const mark = k === i ? '>' : ' ';
    rows.push(`${mark}${(expected[k] ?? '').padEnd(31)}| ${actual[k] ?? ''}`);
  }
  return rows.join('\n');
}

/** Runs `p` on the IOLoop under every driver; throws, with both traces, at the first that differs from `ref`. Checks no fd is left open. */
async function checkAgainst(p: Program, ref: Exclude<Reference, { how: 'none' }>): Promise<void> {
  for (const driver of DRIVERS) {
    const fds = fdCount();
    const trace = await traceOn(p, (t) => openIOLoop(t, driver));
    expect(fdCount()).toBe(fds);
    const got = ref.how === 'full' ? trace.full() : trace.canonical();
    if (got.join('\n') !== ref.trace.join('\n')) {
      throw new Error(`${ref.how} traces differ (driver ${driver})\n\nprogram:\n${formatProgram(p)}\n\n${sideBySide(ref.trace, got, driver)}`);
    }
  }
}

test(`differential seed=${SEED}, programs=${PROGRAMS}: IOLoop (fake backend; drivers ${DRIVERS.join(', ')}) traces equal the Tornado port's`, async () => {
  console.log(`differential seed=${SEED}, programs=${PROGRAMS}, drivers ${DRIVERS.join(', ')}`);
  const count = { full: 0, canonical: 0, skipped: 0 };
  const started = performance.now();
  await fc.assert(
    fc.asyncProperty(programArb, async (p) => {
      const ref = await reference(p);
      if (ref.how === 'none') count.skipped++;
      fc.pre(ref.how !== 'none');
      await checkAgainst(p, ref);
      count[ref.how]++;
    }),
    { seed: SEED, numRuns: PROGRAMS, maxSkipsPerRun: 1 },
  );
  console.log(
    `differential seed=${SEED}: ${count.full + count.canonical} programs compared ` +
      `(${count.full} in full, ${count.canonical} with continuations sorted within their instant), ` +
      `${count.skipped} skipped (the port's trace depends on the host-turn schedule), ` +
      `${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  expect(count.full + count.canonical).toBeGreaterThanOrEqual(PROGRAMS);
}, 300_000);

// ---------------------------------------------------------------- minimal programs

const body = (sync: Body['sync'] = [], awaits: Body['awaits'] = [], after: Body['after'] = []): Body => ({ sync, awaits, after });

/** Small programs that pin down one rule each (found by the property above, then cut down). */
const MINIMAL: [string, Program, string[]][] = [
  [
    // The clock must not move before the continuation ran: t1 fires at 1, not after the bound.
    'an async run function that awaits a settled promise, then schedules a timer',
    { main: body([], [{ k: 'resolved' }], [{ k: 'later', id: 1, delay: 1, body: body() }]), settle: 'never', pcs: [], seed: 0 },
    ['0 m', '0 m~1', '1 t1', '30 bound', 'end timed out at 30'],
  ],
  [
    // Calls at 10, 20 and 30 (the grid), whatever else is scheduled.
    'a PeriodicCallback of 10 s over 30 s',
    { main: body([{ k: 'pcStart', pc: 0 }]), settle: 'never', pcs: [{ periodMs: 10_000, ret: 'void', body: body() }], seed: 0 },
    ['0 m', '10 p0', '20 p0', '30 bound', '30 p0', 'end timed out at 30'],
  ],
  [
    // run_sync stops the loop with a callback once fn's result settles: c1, queued before, still runs.
    "run(fn) where fn queues a callback and returns",
    { main: body([{ k: 'cb', id: 1, body: body() }]), settle: 'value', pcs: [], seed: 0 },
    ['0 m', '0 c1', 'end ok undefined at 0'],
  ],
  [
    // Likewise a timer with a past deadline, due in that last iteration.
    'run(fn) where fn adds a timer with a past deadline and returns',
    { main: body([{ k: 'later', id: 1, delay: -1, body: body() }]), settle: 'value', pcs: [], seed: 0 },
    ['0 m', '0 t1', 'end ok undefined at 0'],
  ],
  [
    // PeriodicCallback.stop() removes the last timer the callback scheduled, as Tornado's _timeout:
    // after the restart at 1.25 the call in flight schedules 3.25 when it ends; stop() at 2.5 removes it.
    'a PeriodicCallback with an async callback, stopped and restarted while a call is in flight',
    {
      main: body([
        { k: 'pcStart', pc: 0 },
        { k: 'later', id: 1, delay: 1.25, body: body([{ k: 'pcStop', pc: 0 }, { k: 'pcStart', pc: 0 }]) },
        { k: 'later', id: 2, delay: 2.5, body: body([{ k: 'pcStop', pc: 0 }, { k: 'pcStart', pc: 0 }]) },
        { k: 'later', id: 3, delay: 4, body: body([{ k: 'stop' }]) },
      ]),
      settle: 'never',
      pcs: [{ periodMs: 1000, ret: 'async', body: body([], [{ k: 'sleep', delay: 0.5 }]) }],
      seed: 0,
    },
    ['0 m', '1 p0', '1.25 t1', '1.5 p0~1', '2.25 p0', '2.5 t2', '2.75 p0~1', '3.5 p0', '4 t3', 'end stopped at 4'],
  ],
];

describe('minimal programs', () => {
  test.each(MINIMAL)('%s', async (_name, p, expected) => {
    const ref = await reference(p);
    expect(ref).toEqual({ how: 'full', trace: expected });
    await checkAgainst(p, { how: 'full', trace: expected });
  });
});
