// Shared pieces of the runtime tests: loops that are always closed, a logger that
// records, and the process's open fd count (every test leaves it as it found it).
import * as fs from 'node:fs';
import { IOLoop, type IOLoopOptions, type Logger } from '../src/index';

/** A logger that keeps what it is given. */
export class RecordingLogger implements Logger {
  readonly errors: unknown[][] = [];
  readonly warnings: unknown[][] = [];
  error(...a: unknown[]): void {
    this.errors.push(a);
  }
  warn(...a: unknown[]): void {
    this.warnings.push(a);
  }
}

/**
 * What this process has open, as /proc names it (`pipe:[inode]`, `socket:[inode]`,
 * `anon_inode:[eventpoll]`, …), one entry per fd. The inode makes each pipe and
 * socket distinct, so a comparison is not fooled by the host closing fds of its own.
 */
export function openFds(): string[] {
  const out: string[] = [];
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      out.push(fs.readlinkSync(`/proc/self/fd/${fd}`));
    } catch {
      // the fd of the directory listing itself, already closed
    }
  }
  return out.sort();
}

/** The number of fds this process has open. */
export function fdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

/** Waits for the descriptors jest itself opens at startup to settle, so that a per-test count sees only the test's own. */
export async function settleFds(): Promise<void> {
  for (let i = 0, last = -1; i < 40; i++) {
    const now = fdCount();
    if (now === last) return;
    last = now;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * Installs the per-test fd guard: after jest's own fds settle, each test ends with
 * `cleanup()` (closing what it tracked) and then exactly the fd count it began with.
 */
export function guardFdCountPerTest(cleanup: () => void = () => {}): void {
  let before = 0;
  beforeAll(settleFds);
  beforeEach(() => {
    before = fdCount();
  });
  afterEach(() => {
    cleanup();
    expect(fdCount()).toBe(before);
  });
}

/** The entries of `after` that `before` does not have (as a multiset). */
export function newFds(before: string[], after: string[]): string[] {
  const left = new Map<string, number>();
  for (const f of before) left.set(f, (left.get(f) ?? 0) + 1);
  const added: string[] = [];
  for (const f of after) {
    const n = left.get(f) ?? 0;
    if (n > 0) left.set(f, n - 1);
    else added.push(f);
  }
  return added;
}

const opened: IOLoop[] = [];

/** A new loop (not current unless asked; errors go to a RecordingLogger unless a logger is given) that `closeLoops` closes after the test. */
export function newLoop(options: IOLoopOptions = {}): IOLoop {
  const loop = new IOLoop({ makeCurrent: false, logger: new RecordingLogger(), ...options });
  opened.push(loop);
  return loop;
}

/** Closes every loop made by `newLoop` and clears the current loop. */
export function closeLoops(): void {
  for (const loop of opened.splice(0)) loop.close();
  IOLoop.clearCurrent();
}

/**
 * Installs the per-file guards: loops closed after each test, and no fd open at the
 * end of the file that was not open at its start.
 */
export function guardResources(): void {
  let atStart: string[] = [];
  beforeAll(() => {
    atStart = openFds();
  });
  afterEach(() => closeLoops());
  afterAll(() => {
    // Files, pipes, sockets, epoll fds and eventfds opened by the tests are all closed.
    expect(newFds(atStart, openFds())).toEqual([]);
  });
}
