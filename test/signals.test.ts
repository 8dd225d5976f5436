// IOLoop.addSignalHandler / removeSignalHandler under every driver, on the main
// thread and in worker threads, and what they do to the process's own handling of
// the signal. Each scenario runs in a child process (test/fixtures/signals.ts), so
// no signal reaches jest's own handlers; inside it a helper process sends the
// signals, so they arrive asynchronously on whatever thread the kernel picks.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { IOLoop } from '../src/index';
import { nativeStatus } from '../src/native';
import { bunPath, denoPath } from './hosts';

const ROOT = path.join(__dirname, '..');
const FIXTURE = path.join(__dirname, 'fixtures', 'signals.ts');
const DENO_FIXTURE = path.join(__dirname, 'fixtures', 'signals-deno.ts');

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  lines: string[];
  stderr: string;
}

/**
 * Runs one scenario and waits for the process to end. With `kill`, sends that
 * signal once the scenario prints `ready` (after its report).
 */
function scenario(name: string, opts: { kill?: NodeJS.Signals; host?: 'node' | 'bun' | 'deno'; env?: Record<string, string>; nodeArgs?: string[] } = {}): Promise<Run> {
  const [command, args] =
    opts.host === 'bun'
      ? [bunPath(), [FIXTURE, name]]
      : opts.host === 'deno'
        ? [denoPath(), ['run', '-A', '--sloppy-imports', DENO_FIXTURE, name]]
        : [process.execPath, [...(opts.nodeArgs ?? []), '--import', 'tsx', FIXTURE, name]];
  return new Promise((resolve, reject) => {
    const env = { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1', DENO_NO_PROMPT: '1', ...opts.env };
    const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let sent = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      if (opts.kill && !sent && /^ready$/m.test(stdout)) {
        sent = true;
        child.kill(opts.kill);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, lines: stdout.split('\n').filter(Boolean), stderr });
    });
  });
}

/** The scenario's JSON report: its first line that parses. */
function report(run: Run): Record<string, unknown> {
  for (const line of run.lines) {
    if (line.startsWith('{')) return JSON.parse(line) as Record<string, unknown>;
  }
  throw new Error(`no report; exit ${run.code ?? run.signal}; stdout ${run.lines.join('\\n')}; stderr ${run.stderr}`);
}

async function expectHandledTwice(name: string): Promise<void> {
  const run = await scenario(name);
  expect({ code: run.code, signal: run.signal, stderr: run.stderr }).toEqual({ code: 0, signal: null, stderr: '' });
  // Two signals, each a callback on the loop's thread while the shim's handler is
  // installed; removal gives SIG_DFL back; the helper process exited cleanly.
  expect(report(run)).toMatchObject({ hits: 2, onLoop: true, during: 'loop', duringLoops: 1, restored: true, helperExit: 0 });
}

describe('a signal runs the handler as a loop callback', () => {
  test('guest driver on the main thread (epoll, nested in Node\'s loop)', () => expectHandledTwice('guest'));
  test('guest driver on the main thread with the poll backend (the watcher thread)', () => expectHandledTwice('guest-poll'));
  test('blocking driver on the main thread, which never returns to Node\'s loop', () => expectHandledTwice('blocking'));
  test('blocking driver with the poll backend', () => expectHandledTwice('blocking-poll'));
  test('fake backend (virtual clock)', () => expectHandledTwice('fake'));
  test('guest driver in a worker thread, where Node delivers no process.on signals', () => expectHandledTwice('worker-guest'));
  test('guest driver with the poll backend in a worker thread', () => expectHandledTwice('worker-guest-poll'));
  test('blocking driver in a worker thread', () => expectHandledTwice('worker-blocking'));

  test('one signal reaches every loop that watches it: two on the main thread, one blocking in a worker', async () => {
    const run = await scenario('many');
    expect(run.code).toBe(0);
    expect(report(run)).toMatchObject({ all: true, loops: 3, hits: { a: 1, b: 1 }, workerHits: 1, workerExit: 0, after: 'default' });
  });
});

describe('the process\'s own handling comes back', () => {
  test('after removeSignalHandler, SIGUSR2 is SIG_DFL again: it kills the process', async () => {
    const run = await scenario('remove-then-die', { kill: 'SIGUSR2' });
    expect(report(run)).toMatchObject({ hits: 2, restored: true, after: { action: 'default' } });
    expect({ signal: run.signal, survived: run.lines.includes('survived') }).toEqual({ signal: 'SIGUSR2', survived: false });
  });

  test('after close() of a blocking loop, SIGUSR2 is SIG_DFL again: it kills the process', async () => {
    const run = await scenario('close-then-die', { kill: 'SIGUSR2' });
    expect(report(run)).toMatchObject({ hits: 2, restored: true });
    expect(run.signal).toBe('SIGUSR2');
  });

  test('a loop that handled SIGINT keeps the process alive; once removed, Node\'s own SIGINT handler is back and Ctrl-C kills', async () => {
    const run = await scenario('sigint-then-die', { kill: 'SIGINT' });
    const r = report(run);
    // Node's handler, installed at startup with SA_RESETHAND, which the loop's does not call.
    expect(r).toMatchObject({ hits: 2, restored: true, before: { action: 'handler' } });
    expect(((r.before as { flags: number }).flags & 0x80000000) >>> 0).toBe(0x80000000);
    expect(run.signal).toBe('SIGINT');
  });

  test('the same for SIGTERM and a blocking loop closed while watching it', async () => {
    const run = await scenario('sigterm-then-die', { kill: 'SIGTERM' });
    expect(report(run)).toMatchObject({ hits: 2, restored: true, before: { action: 'handler' } });
    expect(run.signal).toBe('SIGTERM');
  });

  test('a loop dropped without close() gives the signal back once it is collected', async () => {
    const run = await scenario('collected', { nodeArgs: ['--expose-gc'] });
    expect(run.code).toBe(0);
    expect(report(run)).toMatchObject({ watched: 'loop', given: true, restored: true });
  });

  test('a worker that ends with its loop still watching gives the signal back', async () => {
    const run = await scenario('worker-teardown');
    expect(run.code).toBe(0);
    expect(report(run)).toMatchObject({ watched: 'loop', restored: true });
  });
});

describe('process.on listeners for the same signal', () => {
  test('one added before the loop\'s handler keeps firing beside it, and alone after removal', async () => {
    const run = await scenario('process-on-before');
    expect(run.code).toBe(0);
    expect(report(run)).toMatchObject({ both: true, loopHits: 1, listenerHits: 2, listenerAgain: true, restored: true });
  });

  test('one added after it fires beside it (the loop\'s handler is put back over libuv\'s), and its removal leaves the loop\'s', async () => {
    const run = await scenario('process-on-after');
    expect(run.code).toBe(0);
    expect(report(run)).toMatchObject({ both: true, loopAgain: true, loopHits: 2, listenerHits: 1, withListener: 'loop', listenerGone: 'loop', restored: true });
  });

  test('one added after it and kept: after the loop\'s handler is removed, the listener alone gets the signal', async () => {
    const run = await scenario('process-on-after-kept');
    expect(run.code).toBe(0);
    expect(report(run)).toMatchObject({ both: true, listenerAlone: true, loopHits: 1, listenerHits: 2, withListener: 'loop', afterRemove: 'handler' });
  });
});

test('watches opened and closed leave no descriptor open', async () => {
  const run = await scenario('fds');
  expect(run.code).toBe(0);
  expect(report(run)).toEqual({ leaked: 0, helperExit: 0 });
});

describe('other hosts, where the shim loads', () => {
  const basics = { hits: 2, onLoop: true, restored: true };
  const alongside = { both: true, listenerAlone: true, loopHits: 1, listenerHits: 2, withListener: 'loop', afterRemove: 'handler' };

  test('Bun: guest (the watcher thread) and blocking loops, on the main thread and in workers; process.on beside them', async () => {
    const expected: Record<string, object> = {
      guest: basics,
      blocking: basics,
      'worker-guest': basics,
      'worker-blocking': basics,
      'process-on-before': { both: true, listenerAgain: true, restored: true },
      'process-on-after-kept': alongside,
    };
    for (const [name, want] of Object.entries(expected)) {
      const run = await scenario(name, { host: 'bun' });
      expect({ name, code: run.code, report: report(run) }).toMatchObject({ name, code: 0, report: want });
    }
    const run = await scenario('sigint-then-die', { host: 'bun', kill: 'SIGINT' });
    expect({ report: report(run), signal: run.signal }).toMatchObject({ report: basics, signal: 'SIGINT' });
  });

  test('Deno: guest (the watcher thread) and blocking loops on the main thread; process.on beside them', async () => {
    const expected: Record<string, object> = {
      guest: basics,
      blocking: basics,
      'process-on-before': { both: true, listenerAgain: true, restored: true },
      // Deno's listener calls the handler it replaced: the loop's stays under it.
      'process-on-after-kept': { ...alongside, withListener: 'handler' },
    };
    for (const [name, want] of Object.entries(expected)) {
      const run = await scenario(name, { host: 'deno' });
      expect({ name, code: run.code, report: report(run) }).toMatchObject({ name, code: 0, report: want });
    }
  });
});

test('a signal that arrives while the loop is stopped runs the handler once the loop runs again, once for two arrivals', async () => {
  const run = await scenario('stopped');
  expect(run.code).toBe(0);
  expect(report(run)).toMatchObject({ whileStopped: 0, hits: 1 });
});

test('without the shim: a process.on listener on the main thread, and an error in a worker thread', async () => {
  const run = await scenario('no-native', { env: { WASM_IOLOOP_NO_NATIVE: '1' } });
  expect(run.code).toBe(0);
  expect(report(run)).toMatchObject({
    native: 'disabled by WASM_IOLOOP_NO_NATIVE=1',
    hits: 1,
    listeners: 1,
    listenersAfter: 0,
    worker: expect.stringMatching(/^addSignalHandler\('SIGUSR2'\) in a worker thread needs a backend with the native shim's poller \(epoll, poll or fake; this loop's is '\w+'\): the host delivers no signal events to worker threads$/),
  });
});

test('the shim\'s signal functions refuse misuse without aborting, and leave nothing installed or open', async () => {
  const script = `
    const fs = require('fs');
    const n = require(process.argv[1]);
    const fdsAtStart = fs.readdirSync('/proc/self/fd').length;
    const efd = n.eventfdOpen();
    const [r, w] = n.pipe();
    const closedFd = 999999; // past any open descriptor
    const h = n.signalOpen(efd);
    const closed = n.signalOpen(efd);
    n.signalClose(closed);
    const calls = {
      openString: () => n.signalOpen('3'),
      openClosed: () => n.signalOpen(closedFd),
      openPipe: () => n.signalOpen(r),
      addNotHandle: () => n.signalAdd({}, 12),
      addZero: () => n.signalAdd(h, 0),
      add65: () => n.signalAdd(h, 65),
      addFraction: () => n.signalAdd(h, 1.5),
      addKill: () => n.signalAdd(h, 9),
      addStop: () => n.signalAdd(h, 19),
      addReserved: () => n.signalAdd(h, 32),
      addClosed: () => n.signalAdd(closed, 12),
      removeUnwatched: () => n.signalRemove(h, 12),
      nextNone: () => n.signalNext(h),
      nextClosed: () => n.signalNext(closed),
      closeTwice: () => n.signalClose(closed),
      closeNotHandle: () => n.signalClose(42),
      reassertUnwatched: () => n.signalReassert(12),
      reassertBad: () => n.signalReassert('SIGUSR2'),
      dispositionBad: () => n.signalDisposition(-1),
      dispositionKill: () => n.signalDisposition(9).action,
    };
    const out = {};
    for (const [name, call] of Object.entries(calls)) {
      try {
        out[name] = { returned: call() ?? null };
      } catch (e) {
        out[name] = { name: e.name, code: e.code, message: e.message };
      }
    }
    // Still works after the misuse.
    out.works = [n.signalAdd(h, 12), process.kill(process.pid, 'SIGUSR2'), n.consume(efd), n.signalNext(h), n.signalNext(h)];
    n.signalClose(h);
    out.after = n.signalDisposition(12).action;
    for (const fd of [efd, r, w]) n.close(fd);
    out.leaked = fs.readdirSync('/proc/self/fd').length - fdsAtStart;
    process.stdout.write(JSON.stringify(out));
  `;
  const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script, nativeStatus().path], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
  const out = JSON.parse(run.stdout) as Record<string, { name?: string; code?: string; message?: string; returned?: unknown }>;
  const typeError = (message: RegExp): object => ({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: expect.stringMatching(message) });
  expect(out).toEqual({
    openString: typeError(/^signalOpen: wakerFd must be an integer >= 0 \(got string\)$/),
    openClosed: { name: 'Error', code: 'EBADF', message: expect.stringMatching(/^signalOpen: cannot duplicate wakerFd \d+: .* \(EBADF\)$/) },
    openPipe: { name: 'Error', code: 'EINVAL', message: expect.stringMatching(/^signalOpen: wakerFd \d+ is not an eventfd/) },
    addNotHandle: typeError(/^signalAdd: h must be an object returned by signalOpen \(got object\)$/),
    addZero: typeError(/^signalAdd: signo must be an integer in \[1, 64\] \(got 0\)$/),
    add65: typeError(/^signalAdd: signo must be an integer in \[1, 64\] \(got 65\)$/),
    addFraction: typeError(/^signalAdd: signo must be an integer in \[1, 64\] \(got 1.5\)$/),
    addKill: { returned: -22 },
    addStop: { returned: -22 },
    addReserved: { returned: -22 },
    addClosed: { name: 'Error', code: 'ERR_SIGNAL_CLOSED', message: 'signalAdd: signal handle is closed' },
    removeUnwatched: { returned: 0 },
    nextNone: { returned: 0 },
    nextClosed: { name: 'Error', code: 'ERR_SIGNAL_CLOSED', message: 'signalNext: signal handle is closed' },
    closeTwice: { returned: null },
    closeNotHandle: typeError(/^signalClose: h must be an object returned by signalOpen \(got 42\)$/),
    reassertUnwatched: { returned: 0 },
    reassertBad: typeError(/^signalReassert: signo must be an integer in \[1, 64\] \(got string\)$/),
    dispositionBad: typeError(/^signalDisposition: signo must be an integer in \[1, 64\] \(got -1\)$/),
    dispositionKill: { returned: 'default' },
    works: [0, true, 1, 12, 0],
    after: 'default',
    leaked: 0,
  });
});

test('signal names are checked: SIGFOO and SIGKILL are refused', () => {
  const loop = new IOLoop({ makeCurrent: false });
  try {
    expect(() => loop.addSignalHandler('SIGFOO', () => {})).toThrow(TypeError);
    expect(() => loop.addSignalHandler('SIGKILL', () => {})).toThrow(/cannot be caught/);
    expect(() => loop.removeSignalHandler('SIGSTOP')).toThrow(/cannot be caught/);
  } finally {
    loop.close();
  }
});
