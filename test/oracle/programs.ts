// Random loop programs for the differential test: their shape, a fast-check
// arbitrary, a printer, and an interpreter that runs one on any loop behind
// the small `LoopApi` interface and records its trace.
//
// A program is a main body, run by `run(fn, {timeout})`. A body logs its label
// when it is called, runs its synchronous ops, then (if it has any) awaits each
// of its awaits in turn, logging after each, and runs its `after` ops. Ops add
// callbacks and timers (with bodies of their own), remove timers, start and stop
// periodic callbacks, resolve gates (promises that awaits wait for) and stop the
// loop. Every delay and deadline is a multiple of 1/4, so virtual times add up
// exactly.
//
// The trace is a list of "<loop time> <label>" lines. What the loop contract
// leaves open is kept out of it:
// - stop() is only called from synchronous code (inside an iteration);
// - once the run is ending (stop() called, the main body settled, or the time
//   bound reached), continuations do nothing: they run after the loop stopped,
//   or before the stop callback of run(), at a point the contract does not fix;
// - `Trace.canonical()` keeps the order of what loop-called code logs and sorts
//   what continuations log (by time, then label): the contract fixes when a
//   continuation runs (before the clock moves) but not where among the other
//   work of that virtual instant.
import fc, { type WeightedArbitrary } from 'fast-check';

/** Virtual seconds a program may run: the `bound` timer and run()'s timeout. */
export const TIME_BOUND = 30;
/** Most ops in one program (bodies of PeriodicCallbacks included). */
export const MAX_OPS = 40;
const GATES = 2;

export type Await =
  | { k: 'resolved' } // await Promise.resolve()
  | { k: 'value' } // await of a plain value
  | { k: 'sleep'; delay: number } // await a promise that a loop timer resolves
  | { k: 'gate'; gate: number }; // await a promise that an `open` op resolves

export interface Body {
  sync: Op[];
  awaits: Await[];
  /** Run after the awaits; never `stop`. */
  after: Op[];
}

export type Op =
  | { k: 'cb'; id: number; body: Body }
  | { k: 'later'; id: number; delay: number; body: Body }
  | { k: 'at'; id: number; when: number; body: Body }
  | { k: 'remove'; target: number } // the timer of op `target` (an id), if it was made yet
  | { k: 'pcStart'; pc: number } // starts it unless it is running
  | { k: 'pcStop'; pc: number }
  | { k: 'open'; gate: number }
  | { k: 'stop' };

export interface PeriodicSpec {
  periodMs: number;
  /** What the callback returns: nothing, a plain value (not awaited), or its body's promise. */
  ret: 'void' | 'value' | 'async';
  body: Body;
}

export interface Program {
  main: Body;
  /**
   * 'never': main returns a promise that never settles. 'value': main returns (an
   * async main 'done', a synchronous one nothing); 'error': main throws. Either
   * settles the run.
   */
  settle: 'never' | 'value' | 'error';
  pcs: PeriodicSpec[];
  /** Seed of the random host-turn schedule the reference also runs under. */
  seed: number;
}

// ---------------------------------------------------------------- generation

const delayArb = fc.constantFrom(-1, -0.25, 0, 0, 0.25, 0.5, 1, 1, 1.5, 2, 3);
const whenArb = fc.constantFrom(0, 0.5, 1, 1, 2, 3.25, 5);
const periodArb = fc.constantFrom(250, 1000, 1000, 2500, 10_000);

const awaitArb: fc.Arbitrary<Await> = fc.oneof(
  fc.constant<Await>({ k: 'resolved' }),
  fc.constant<Await>({ k: 'value' }),
  { weight: 2, arbitrary: fc.record({ k: fc.constant('sleep' as const), delay: delayArb }) },
  fc.record({ k: fc.constant('gate' as const), gate: fc.nat(GATES - 1) }),
);

const awaitsArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant<Await[]>([]) },
  { weight: 2, arbitrary: fc.array(awaitArb, { minLength: 1, maxLength: 3 }) },
);

/** The ops without a body; `stop` (which ends the run) is the rarest. */
const leafOps = (withStop: boolean): WeightedArbitrary<Op>[] => [
  { weight: 12, arbitrary: fc.record({ k: fc.constant('remove' as const), target: fc.nat(40) }) },
  { weight: 6, arbitrary: fc.record({ k: fc.constant('pcStart' as const), pc: fc.nat(1) }) },
  { weight: 6, arbitrary: fc.record({ k: fc.constant('pcStop' as const), pc: fc.nat(1) }) },
  { weight: 6, arbitrary: fc.record({ k: fc.constant('open' as const), gate: fc.nat(GATES - 1) }) },
  ...(withStop ? [{ weight: 1, arbitrary: fc.constant<Op>({ k: 'stop' }) }] : []),
];

function opArb(depth: number, withStop: boolean): fc.Arbitrary<Op> {
  if (depth === 0) return fc.oneof(...leafOps(withStop));
  const body = bodyArb(depth - 1);
  return fc.oneof(
    { weight: 18, arbitrary: fc.record({ k: fc.constant('cb' as const), id: fc.constant(0), body }) },
    { weight: 24, arbitrary: fc.record({ k: fc.constant('later' as const), id: fc.constant(0), delay: delayArb, body }) },
    { weight: 12, arbitrary: fc.record({ k: fc.constant('at' as const), id: fc.constant(0), when: whenArb, body }) },
    ...leafOps(withStop),
  );
}

function bodyArb(depth: number): fc.Arbitrary<Body> {
  return fc.record({
    sync: fc.array(opArb(depth, true), { minLength: depth >= 3 ? 1 : 0, maxLength: depth >= 3 ? 6 : 3 }),
    awaits: awaitsArb,
    after: fc.array(opArb(depth, false), { maxLength: 2 }),
  });
}

const pcArb: fc.Arbitrary<PeriodicSpec> = fc
  .record({ periodMs: periodArb, ret: fc.constantFrom('void' as const, 'value' as const, 'async' as const), body: bodyArb(1) })
  // An async callback has at least one await; the others have none.
  .map((pc) => (pc.ret === 'async' ? (pc.body.awaits.length > 0 ? pc : { ...pc, ret: 'void' as const }) : { ...pc, body: { ...pc.body, awaits: [] } }));

/** Random programs, numbered and cut to at most MAX_OPS ops. */
export const programArb: fc.Arbitrary<Program> = fc
  .record({
    main: bodyArb(3),
    settle: fc.constantFrom('never' as const, 'never' as const, 'value' as const, 'error' as const),
    pcs: fc.array(pcArb, { maxLength: 2 }),
    seed: fc.integer({ min: 0, max: 0x7fffffff }),
  })
  // A main body without awaits would settle the run in its first iteration.
  .map((p) => (p.main.awaits.length === 0 ? { ...p, settle: 'never' as const } : p))
  .map(numberProgram);

/** Gives each op with a body an id (in print order) and drops ops past MAX_OPS. */
function numberProgram(p: Program): Program {
  let next = 1;
  let left = MAX_OPS;
  const ops = (list: Op[]): Op[] => {
    const out: Op[] = [];
    for (const op of list) {
      if (left <= 0) break;
      left--;
      if (op.k === 'cb' || op.k === 'later' || op.k === 'at') {
        const id = next++;
        out.push({ ...op, id, body: body(op.body) });
      } else out.push(op);
    }
    return out;
  };
  const body = (b: Body): Body => ({ sync: ops(b.sync), awaits: b.awaits, after: ops(b.after) });
  const main = body(p.main);
  const pcs = p.pcs.map((pc) => ({ ...pc, body: body(pc.body) }));
  const timers = timerIds({ ...p, main, pcs });
  // A removal names a timer op of this program (or nothing, when there is none).
  const retarget = (b: Body): Body => ({ sync: b.sync.map(fix), awaits: b.awaits, after: b.after.map(fix) });
  const fix = (op: Op): Op => {
    if (op.k === 'remove') return { ...op, target: timers.length === 0 ? 0 : timers[op.target % timers.length]! };
    if (op.k === 'cb' || op.k === 'later' || op.k === 'at') return { ...op, body: retarget(op.body) };
    return op;
  };
  return { ...p, main: retarget(main), pcs: pcs.map((pc) => ({ ...pc, body: retarget(pc.body) })) };
}

function timerIds(p: Program): number[] {
  const ids: number[] = [];
  const walk = (b: Body): void => {
    for (const op of [...b.sync, ...b.after]) {
      if (op.k === 'later' || op.k === 'at') ids.push(op.id);
      if (op.k === 'cb' || op.k === 'later' || op.k === 'at') walk(op.body);
    }
  };
  walk(p.main);
  for (const pc of p.pcs) walk(pc.body);
  return ids;
}

// ---------------------------------------------------------------- printing

function formatAwait(a: Await): string {
  switch (a.k) {
    case 'resolved':
      return 'await Promise.resolve()';
    case 'value':
      return 'await 0';
    case 'sleep':
      return `await new Promise((r) => loop.callLater(${a.delay}, r))`;
    case 'gate':
      return `await gate${a.gate}`;
  }
}

function formatBody(b: Body, label: string, indent: string, out: string[]): void {
  out.push(`${indent}log('${label}')`);
  for (const op of b.sync) formatOp(op, indent, out);
  b.awaits.forEach((a, i) => {
    out.push(`${indent}${formatAwait(a)}`);
    out.push(`${indent}log('${label}~${i + 1}')`);
  });
  for (const op of b.after) formatOp(op, indent, out);
}

function formatOp(op: Op, indent: string, out: string[]): void {
  const inner = indent + '  ';
  const async = (b: Body): string => (b.awaits.length > 0 ? 'async ' : '');
  switch (op.k) {
    case 'cb':
      out.push(`${indent}loop.addCallback(${async(op.body)}() => {  // c${op.id}`);
      formatBody(op.body, `c${op.id}`, inner, out);
      out.push(`${indent}})`);
      return;
    case 'later':
    case 'at':
      out.push(`${indent}h${op.id} = loop.${op.k === 'later' ? `callLater(${op.delay}` : `callAt(${op.when}`}, ${async(op.body)}() => {  // t${op.id}`);
      formatBody(op.body, `t${op.id}`, inner, out);
      out.push(`${indent}})`);
      return;
    case 'remove':
      out.push(`${indent}if (h${op.target}) loop.removeTimeout(h${op.target})`);
      return;
    case 'pcStart':
      out.push(`${indent}if (!pc${op.pc}.isRunning()) pc${op.pc}.start()`);
      return;
    case 'pcStop':
      out.push(`${indent}pc${op.pc}.stop()`);
      return;
    case 'open':
      out.push(`${indent}openGate${op.gate}()`);
      return;
    case 'stop':
      out.push(`${indent}loop.stop()`);
      return;
  }
}

/** The program as TypeScript-like text, for failure reports. */
export function formatProgram(p: Program): string {
  const out: string[] = [];
  p.pcs.forEach((pc, i) => {
    out.push(`pc${i} = new PeriodicCallback(${pc.ret === 'async' ? 'async ' : ''}() => {  // p${i}`);
    formatBody(pc.body, `p${i}`, '  ', out);
    if (pc.ret === 'value') out.push('  return 7');
    out.push(`}, ${pc.periodMs}, 0, loop)`);
  });
  out.push(`loop.callAt(${TIME_BOUND}, () => log('bound'))`);
  out.push(`loop.run(${p.main.awaits.length > 0 ? 'async ' : ''}() => {  // m`);
  formatBody(p.main, 'm', '  ', out);
  if (p.settle === 'never') out.push('  return new Promise(() => {})');
  else if (p.settle === 'value') out.push(p.main.awaits.length > 0 ? "  return 'done'" : '  return');
  else out.push("  throw new Error('boom')");
  out.push(`}, { timeout: ${TIME_BOUND} })`);
  return out.join('\n');
}

// ---------------------------------------------------------------- running

/** What the interpreter needs of a loop. */
export interface LoopApi {
  time(): number;
  addCallback(fn: () => unknown): void;
  callLater(delay: number, fn: () => unknown): unknown;
  callAt(when: number, fn: () => unknown): unknown;
  removeTimeout(handle: unknown): void;
  stop(): void;
  periodic(cb: () => unknown, periodMs: number): { start(): void; stop(): void; isRunning(): boolean };
  /** run(fn, {timeout}); resolves with 'ok <value>', 'error <message>', 'timed out' or 'stopped' (before fn's result settled). */
  run(fn: () => unknown, timeout: number): Promise<string>;
}

/** What a program logged, in order, and how its run ended. */
export class Trace {
  private readonly lines: { time: number; label: string; continuation: boolean }[] = [];
  private end = '(not ended)';

  /** `continuation`: logged by a promise continuation (or by the loop's logger), not by loop-called code. */
  add(time: number, label: string, continuation: boolean): void {
    this.lines.push({ time, label, continuation });
  }

  finish(outcome: string, time: number): void {
    this.end = `end ${outcome} at ${time}`;
  }

  /** Every line, in the order logged. */
  full(): string[] {
    return [...this.lines.map((l) => `${l.time} ${l.label}`), this.end];
  }

  /** Lines of loop-called code in order, then those of continuations sorted by (time, label). */
  canonical(): string[] {
    const fixed = this.lines.filter((l) => !l.continuation).map((l) => `${l.time} ${l.label}`);
    const floating = this.lines
      .filter((l) => l.continuation)
      .sort((a, b) => a.time - b.time || (a.label < b.label ? -1 : a.label > b.label ? 1 : 0))
      .map((l) => `${l.time} ${l.label}`);
    return [...fixed, this.end, '-- continuations, sorted:', ...floating];
  }
}

/**
 * Runs `p` on `loop`, logging into `trace` (which the caller may also give to
 * the loop's logger); resolves once the run has ended.
 */
export async function runProgram(p: Program, loop: LoopApi, trace: Trace): Promise<void> {
  let ending = false;
  const log = (label: string, continuation = false): void => trace.add(loop.time(), label, continuation);
  const handles = new Map<number, unknown>();
  const gates = Array.from({ length: GATES }, () => {
    let open!: () => void;
    const promise = new Promise<void>((resolve) => (open = resolve));
    return { promise, open };
  });
  const pcs = p.pcs.map((spec, i) =>
    loop.periodic(() => {
      const r = runBody(spec.body, `p${i}`);
      return spec.ret === 'value' ? 7 : r;
    }, spec.periodMs),
  );

  function awaited(a: Await): unknown {
    switch (a.k) {
      case 'resolved':
        return Promise.resolve();
      case 'value':
        return 0;
      case 'sleep':
        return new Promise<void>((resolve) => loop.callLater(a.delay, resolve));
      case 'gate':
        return gates[a.gate]!.promise;
    }
  }

  function exec(op: Op): void {
    switch (op.k) {
      case 'cb':
        loop.addCallback(() => runBody(op.body, `c${op.id}`));
        return;
      case 'later':
        handles.set(op.id, loop.callLater(op.delay, () => runBody(op.body, `t${op.id}`)));
        return;
      case 'at':
        handles.set(op.id, loop.callAt(op.when, () => runBody(op.body, `t${op.id}`)));
        return;
      case 'remove': {
        const h = handles.get(op.target);
        if (h !== undefined) loop.removeTimeout(h);
        return;
      }
      case 'pcStart': {
        const pc = pcs[op.pc];
        if (pc !== undefined && !pc.isRunning()) pc.start();
        return;
      }
      case 'pcStop':
        pcs[op.pc]?.stop();
        return;
      case 'open':
        gates[op.gate]!.open();
        return;
      case 'stop':
        ending = true;
        loop.stop();
        return;
    }
  }

  /** Logs, runs the sync ops; with awaits, returns the promise of the rest. */
  function runBody(b: Body, label: string): Promise<void> | undefined {
    log(label);
    for (const op of b.sync) exec(op);
    if (b.awaits.length === 0) {
      for (const op of b.after) exec(op);
      return undefined;
    }
    return (async () => {
      for (let i = 0; i < b.awaits.length; i++) {
        await awaited(b.awaits[i]!);
        if (ending) return;
        log(`${label}~${i + 1}`, true);
      }
      for (const op of b.after) exec(op);
    })();
  }

  loop.callAt(TIME_BOUND, () => {
    ending = true;
    log('bound');
  });
  const outcome = await loop.run(() => {
    const r = runBody(p.main, 'm');
    const settle = (): string | undefined => {
      ending = true;
      if (p.settle === 'error') throw new Error('boom');
      return r === undefined ? undefined : 'done';
    };
    if (p.settle === 'never') return new Promise(() => {});
    return r === undefined ? settle() : r.then(settle);
  }, TIME_BOUND);
  ending = true;
  trace.finish(outcome, loop.time());
}
