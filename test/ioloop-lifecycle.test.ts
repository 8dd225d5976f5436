// docs/API.md "Semantics": what the contract suite (test/contract/cases.ts, run over
// every backend and driver) leaves out: the host's own timers beside a running loop,
// IOLoop.current() and configure(), signals, and closed loops.
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { IOLoop } from '../src/index';
import { guardResources, newLoop } from './helpers';

guardResources();

test('stop() from outside the loop (a Node timer) stops it', async () => {
  const loop = newLoop();
  setTimeout(() => loop.stop(), 10);
  await loop.start();
  expect(loop.stats().pendingCallbacks).toBe(0);
});

test('IOLoop.current() creates a loop when there is none', () => {
  IOLoop.clearCurrent();
  expect(IOLoop.current({ instance: false })).toBeNull();
  const loop = IOLoop.current();
  try {
    expect(loop).toBeInstanceOf(IOLoop);
    expect(IOLoop.current()).toBe(loop);
  } finally {
    loop.close();
  }
  expect(IOLoop.current({ instance: false })).toBeNull();
});

test('configure() sets the backend of new loops', () => {
  const before = IOLoop.configuredBackend();
  try {
    IOLoop.configure('fake');
    expect(IOLoop.configuredBackend()).toBe('fake');
    const loop = newLoop();
    expect(loop.time()).toBe(0); // the fake clock
    expect(() => IOLoop.configure('kqueue' as never)).toThrow(/backend must be one of epoll, poll, wasi, fake/);
  } finally {
    IOLoop.configure(undefined);
  }
  expect(IOLoop.configuredBackend()).toBe(before);
});

test('under the default driver, run() of an async function that awaits a host timer resolves: the host loop runs beside the loop', async () => {
  const loop = newLoop();
  await expect(
    loop.run(async () => {
      await new Promise((r) => setTimeout(r, 1));
      return 'async';
    }),
  ).resolves.toBe('async');
});

test('addSignalHandler runs its callback on the loop when the signal arrives, until removed', async () => {
  // In a child process: a signal sent to a jest worker would reach jest's own handlers.
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(__dirname, 'fixtures', 'signal.ts')], {
    cwd: path.join(__dirname, '..'),
  });
  expect(JSON.parse(stdout)).toEqual({ ranOnLoop: true, listenersAfterRemove: 0 });
});

test('removeSignalHandler without a handler does nothing', () => {
  const loop = newLoop();
  expect(() => loop.removeSignalHandler('SIGUSR2')).not.toThrow();
});

describe('a closed loop', () => {
  const closedLoop = (): IOLoop => {
    const loop = new IOLoop({ makeCurrent: false });
    loop.close();
    return loop;
  };

  test('throws "IOLoop is closed" from every method but addCallback and close', () => {
    const loop = closedLoop();
    const fn = (): void => {};
    const calls: [string, () => unknown][] = [
      ['addHandler', () => loop.addHandler(0, fn, 1)],
      ['updateHandler', () => loop.updateHandler(0, 1)],
      ['removeHandler', () => loop.removeHandler(0)],
      ['addCallbackFromSignal', () => loop.addCallbackFromSignal(fn)],
      ['spawnCallback', () => loop.spawnCallback(fn)],
      ['addFuture', () => loop.addFuture(Promise.resolve(), fn)],
      ['time', () => loop.time()],
      ['callAt', () => loop.callAt(1, fn)],
      ['callLater', () => loop.callLater(1, fn)],
      ['addTimeout', () => loop.addTimeout(1, fn)],
      ['removeTimeout', () => loop.removeTimeout(1)],
      ['stop', () => loop.stop()],
      ['run', () => loop.run(fn)],
      ['makeCurrent', () => loop.makeCurrent()],
      ['createChannel', () => loop.createChannel(fn)],
      ['addSignalHandler', () => loop.addSignalHandler('SIGUSR2', fn)],
      ['removeSignalHandler', () => loop.removeSignalHandler('SIGUSR2')],
      ['setBlockingLogThreshold', () => loop.setBlockingLogThreshold(1)],
      ['stats', () => loop.stats()],
    ];
    for (const [name, call] of calls) {
      let message = 'no error';
      try {
        call();
      } catch (e) {
        message = (e as Error).message;
      }
      expect(`${name}: ${message}`).toBe(`${name}: IOLoop is closed`);
    }
  });

  test('ignores addCallback, and close() is idempotent', () => {
    const loop = closedLoop();
    expect(() => loop.addCallback(() => {})).not.toThrow();
    expect(() => loop.close()).not.toThrow();
    expect(() => loop.close({ allFds: true })).not.toThrow();
  });

  test('rejects start()', async () => {
    await expect(closedLoop().start()).rejects.toThrow('IOLoop is closed');
  });
});
