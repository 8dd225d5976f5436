// Runs one contract case (cases.ts) over one combination (combos.ts): the loops and
// fds it opens are tracked, and the case fails if it leaves one open or if a loop
// logs an error the case did not ask to see. Used by test/contract.test.ts (jest)
// and by run-host.ts (Bun, Deno, Node without the shim).
import { IOLoop, READ, type IOLoopOptions } from '../../src/index';
import { AssertionError } from './assert';
import { RecordingLogger, type Case, type Context } from './cases';
import { virtualClock, watchesFds, type Combo } from './combos';

/** What became of one case on one combination. */
export type Outcome =
  | { readonly status: 'ok' }
  | { readonly status: 'fail'; readonly error: unknown; readonly message: string }
  | { readonly status: 'n/a'; readonly reason: string };

/** A case that has not finished by then has failed (a host timer: under the blocking driver it fires only once the loop stops). */
export const CASE_TIMEOUT_MS = 15_000;

/** Why `c` does not apply to `combo`, or null when it does. */
export function notApplicable(combo: Combo, c: Case): string | null {
  for (const need of c.requires ?? []) {
    if (need === 'fds' && !watchesFds(combo)) return `backend ${combo.backend} watches no fds`;
    if (need === 'virtual clock' && !virtualClock(combo)) return `backend ${combo.backend} runs on the real clock, not the fake one`;
  }
  return null;
}

/**
 * Checks on a fresh loop of `combo` that the reason notApplicable gives holds: its
 * addHandler refuses every fd, or its clock moves by itself.
 * @throws AssertionError if it does not.
 */
export function checkNotApplicable(combo: Combo, c: Case): void {
  const loop = new IOLoop({ makeCurrent: false, ...combo.options });
  try {
    for (const need of c.requires ?? []) {
      if (need === 'fds' && !watchesFds(combo)) {
        let message = 'no error';
        try {
          loop.addHandler(0, () => {}, READ);
        } catch (e) {
          message = String((e as Error).message);
        }
        if (!message.includes('watches no fds')) throw new AssertionError(`addHandler on ${combo.name} was expected to refuse with "watches no fds", got: ${message}`);
      }
      if (need === 'virtual clock' && !virtualClock(combo)) {
        const t = loop.time();
        const until = performance.now() + 2;
        while (performance.now() < until) {
          // wait 2 ms of real time
        }
        if (!(loop.time() > t)) throw new AssertionError(`the clock of ${combo.name} did not move by itself: not a real clock`);
      }
    }
  } finally {
    loop.close();
  }
}

/** Runs `c` on `combo`; never throws. */
export async function runCase(combo: Combo, c: Case, timeoutMs = CASE_TIMEOUT_MS): Promise<Outcome> {
  const reason = notApplicable(combo, c);
  if (reason !== null) return { status: 'n/a', reason };
  IOLoop.clearCurrent();
  const ctx = new Tracker(combo);
  let timer: ReturnType<typeof setTimeout> | undefined;
  let error: unknown = null;
  try {
    await Promise.race([
      Promise.resolve().then(() => c.run(ctx)),
      new Promise<void>((_, reject) => {
        timer = setTimeout(() => reject(new AssertionError(`did not finish within ${timeoutMs / 1000} s`)), timeoutMs);
      }),
    ]);
  } catch (e) {
    error = e;
  } finally {
    clearTimeout(timer);
  }
  const problems = ctx.finish();
  IOLoop.clearCurrent();
  if (error === null && problems.length > 0) error = new AssertionError(problems.join('; '));
  if (error === null) return { status: 'ok' };
  return { status: 'fail', error, message: describeError(error) };
}

/** One line for an error: the message of an assertion, else its name, message and where it was thrown (when that is in src/ or test/). */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return `threw a non-Error: ${String(error)}`;
  if (error instanceof AssertionError) return error.message.replace(/\s+/g, ' ');
  const frame = (error.stack ?? '').split('\n').find((l) => /^\s+at /.test(l)) ?? '';
  const location = /(?:src|test)[/\\][\w/\\-]+\.ts:\d+/.exec(frame)?.[0];
  const fn = /at ([^(]+?) \(/.exec(frame)?.[1];
  const where = location ? ` (at ${fn ? `${fn}, ` : ''}${location})` : '';
  return `${error.name}: ${error.message}${where}`.replace(/\s+/g, ' ');
}

/** The Context a case gets: it remembers what the case opened. */
type Sys = IOLoop['sys'];

class Tracker implements Context {
  readonly combo: string;
  readonly virtualClock: boolean;
  private readonly loops: { loop: IOLoop; logger: RecordingLogger | null }[] = [];
  private readonly fds = new Map<number, Sys>();

  constructor(private readonly spec: Combo) {
    this.combo = spec.name;
    this.virtualClock = virtualClock(spec);
  }

  makeLoop(extra: IOLoopOptions = {}): IOLoop {
    const logger = extra.logger === undefined ? new RecordingLogger() : null;
    const loop = new IOLoop({ makeCurrent: false, ...(logger ? { logger } : {}), ...this.spec.options, ...extra });
    this.loops.push({ loop, logger });
    return loop;
  }

  pipe(loop: IOLoop): [number, number] {
    const p = loop.sys.pipe();
    for (const fd of p) this.fds.set(fd, loop.sys);
    return p;
  }

  socketpair(loop: IOLoop): [number, number] {
    const p = loop.sys.socketpair();
    for (const fd of p) this.fds.set(fd, loop.sys);
    return p;
  }

  track(loop: IOLoop, fd: number): number {
    this.fds.set(fd, loop.sys);
    return fd;
  }

  closeFds(...fds: number[]): void {
    for (const fd of fds) {
      const sys = this.fds.get(fd);
      if (sys === undefined) throw new AssertionError(`closeFds: fd ${fd} is not tracked (closed twice?)`);
      this.fds.delete(fd);
      sys.close(fd);
    }
  }

  untrack(...fds: number[]): void {
    for (const fd of fds) this.fds.delete(fd);
  }

  /** Closes what the case left open and says what that was, and what its loops logged. */
  finish(): string[] {
    const problems: string[] = [];
    this.loops.forEach(({ loop, logger }, i) => {
      if (!isClosed(loop)) {
        problems.push(`loop #${i + 1} was left open`);
        try {
          loop.close();
        } catch (e) {
          problems.push(`closing loop #${i + 1} threw ${describeError(e)}`);
        }
      }
      for (const args of logger?.errors ?? []) problems.push(`loop #${i + 1} logged an error: ${args.map(text).join(' ')}`);
      for (const args of logger?.warnings ?? []) problems.push(`loop #${i + 1} logged a warning: ${args.map(text).join(' ')}`);
    });
    for (const [fd, sys] of this.fds) {
      problems.push(`fd ${fd} was left open`);
      try {
        sys.close(fd);
      } catch {
        // already gone
      }
    }
    this.fds.clear();
    return problems;
  }
}

function isClosed(loop: IOLoop): boolean {
  try {
    loop.stats();
    return false;
  } catch {
    return true;
  }
}

function text(value: unknown): string {
  return value instanceof Error ? describeError(value) : String(value);
}
