// docs/API.md "Semantics": start, stop, run, current loop, addFuture, closed loops.
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { IOLoop, TimeoutError } from '../src/index';
import { RecordingLogger, guardResources, newLoop } from './helpers';

guardResources();

test('start() while running rejects with "IOLoop is already running"', async () => {
  const loop = newLoop();
  const running = loop.start();
  await expect(loop.start()).rejects.toThrow('IOLoop is already running');
  await expect(loop.run(() => 1)).rejects.toThrow('IOLoop is already running');
  loop.stop();
  await running;
});

test('a stop() before start() makes the next start() return at once', async () => {
  const loop = newLoop();
  let ran = false;
  loop.addCallback(() => (ran = true));
  loop.stop();
  await loop.start();
  expect(ran).toBe(false);
  expect(loop.stats().iterations).toBe(0);
  // Only the next one: the start after it runs.
  loop.addCallback(() => loop.stop());
  await loop.start();
  expect(ran).toBe(true);
});

test('stop() from outside the loop (a Node timer) stops it', async () => {
  const loop = newLoop();
  setTimeout(() => loop.stop(), 10);
  await loop.start();
  expect(loop.stats().pendingCallbacks).toBe(0);
});

test('a loop is current while it runs, and the previous one is current again after', async () => {
  const outer = newLoop({ makeCurrent: true });
  const inner = newLoop();
  expect(IOLoop.current()).toBe(outer);
  let during: IOLoop | null = null;
  inner.addCallback(() => {
    during = IOLoop.current({ instance: false });
    inner.stop();
  });
  await inner.start();
  expect(during).toBe(inner);
  expect(IOLoop.current({ instance: false })).toBe(outer);

  IOLoop.clearCurrent();
  inner.addCallback(() => inner.stop());
  await inner.start();
  expect(IOLoop.current({ instance: false })).toBeNull();
});

test('makeCurrent: true while another loop is current throws; default becomes current only if none is', () => {
  const first = newLoop({ makeCurrent: undefined });
  expect(IOLoop.current({ instance: false })).toBe(first);
  const second = newLoop({ makeCurrent: undefined });
  expect(IOLoop.current({ instance: false })).toBe(first);
  expect(() => newLoop({ makeCurrent: true })).toThrow(/current IOLoop already exists/);
  second.makeCurrent();
  expect(IOLoop.current()).toBe(second);
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

describe('run()', () => {
  test('resolves with a plain value', async () => {
    await expect(newLoop().run(() => 42)).resolves.toBe(42);
  });

  test('resolves with what a promise resolves to', async () => {
    const loop = newLoop();
    await expect(loop.run(() => new Promise((r) => loop.callLater(0.01, () => r('later'))))).resolves.toBe('later');
  });

  test("resolves with an async function's result and rejects with its error", async () => {
    const loop = newLoop();
    await expect(
      loop.run(async () => {
        await new Promise((r) => setTimeout(r, 1));
        return 'async';
      }),
    ).resolves.toBe('async');
    await expect(
      loop.run(async () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    await expect(
      loop.run(() => {
        throw new Error('sync boom');
      }),
    ).rejects.toThrow('sync boom');
  });

  test('stop() during run() makes it reject', async () => {
    const loop = newLoop();
    const result = loop.run(() => new Promise(() => {}));
    loop.addCallback(() => loop.stop());
    await expect(result).rejects.toThrow(/stopped before/);
  });

  test('a stop() before run() makes it reject without calling fn', async () => {
    const loop = newLoop();
    let called = false;
    loop.stop();
    await expect(
      loop.run(() => {
        called = true;
      }),
    ).rejects.toThrow(/stopped before/);
    expect(called).toBe(false);
    expect(loop.stats()).toMatchObject({ pendingCallbacks: 0, pendingTimers: 0 });
    await expect(loop.run(() => 'next run works')).resolves.toBe('next run works');
  });

  test('its timeout rejects with TimeoutError("Operation timed out after N seconds")', async () => {
    const loop = newLoop();
    const err = await loop.run(() => new Promise(() => {}), { timeout: 0.02 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as Error).message).toBe('Operation timed out after 0.02 seconds');
    expect(loop.stats().pendingTimers).toBe(0);
  });

  test('on the fake backend its timeout expires as soon as the clock gets there', async () => {
    const loop = newLoop({ backend: 'fake' });
    await expect(loop.run(() => new Promise(() => {}), { timeout: 3600 * 24 })).rejects.toThrow(
      'Operation timed out after 86400 seconds',
    );
    expect(loop.time()).toBe(86400);
  });

  test('a result that settles before the timeout cancels the timeout', async () => {
    const loop = newLoop({ backend: 'fake' });
    await expect(loop.run(() => new Promise((r) => loop.callLater(1, () => r('ok'))), { timeout: 5 })).resolves.toBe('ok');
    expect(loop.stats().pendingTimers).toBe(0);
  });
});

test('addFuture never calls back synchronously, even for a settled promise', async () => {
  const loop = newLoop();
  const settled = Promise.resolve(7);
  const calls: Promise<number>[] = [];
  loop.addFuture(settled, (f) => {
    calls.push(f);
    loop.stop();
  });
  expect(calls).toHaveLength(0);
  await loop.start();
  expect(calls).toHaveLength(1);
  await expect(calls[0]).resolves.toBe(7);
});

test('addFuture calls back with a rejected promise too', async () => {
  const loop = newLoop();
  let got: Promise<unknown> | undefined;
  loop.addFuture(Promise.reject(new Error('nope')), (f) => {
    got = f;
    loop.stop();
  });
  await loop.start();
  await expect(got).rejects.toThrow('nope');
});

test('a callback that throws or rejects is logged and the loop goes on', async () => {
  const logger = new RecordingLogger();
  const loop = newLoop({ logger });
  const ran: string[] = [];
  loop.addCallback(() => {
    throw new Error('thrown');
  });
  loop.addCallback(async () => {
    throw new Error('rejected');
  });
  loop.callLater(0, () => {
    throw new Error('from a timer');
  });
  loop.addCallback(() => ran.push('after'));
  loop.callLater(0.01, () => loop.stop());
  await loop.start();
  expect(ran).toEqual(['after']);
  const messages = logger.errors.map((a) => (a[1] as Error).message).sort();
  expect(messages).toEqual(['from a timer', 'rejected', 'thrown']);
});

test('spawnCallback and addCallbackFromSignal run like addCallback', async () => {
  const loop = newLoop();
  const seen: unknown[] = [];
  loop.spawnCallback((x: number) => seen.push(x), 1);
  loop.addCallbackFromSignal((x: number) => seen.push(x), 2);
  loop.callLater(0, () => loop.stop());
  await loop.start();
  expect(seen).toEqual([1, 2]);
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

  test('closing a running loop stops it and settles start()', async () => {
    const loop = new IOLoop({ makeCurrent: false });
    const running = loop.start();
    loop.close();
    await expect(running).resolves.toBeUndefined();
  });
});
