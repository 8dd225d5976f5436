// docs/API.md: bad input gets a clear error that names the argument; nothing crashes.
import { IOLoop, PeriodicCallback, READ, sys } from '../src/index';
import { guardResources, newLoop } from './helpers';

guardResources();

type Case = [what: string, call: (loop: IOLoop) => unknown, error: ErrorConstructor, message: RegExp];
const fn = (): void => {};

const cases: Case[] = [
  ['callLater with a NaN delay', (l) => l.callLater(NaN, fn), RangeError, /^delay must not be NaN/],
  ['callLater with a string delay', (l) => l.callLater('1' as never, fn), TypeError, /^delay must be a number/],
  ['callAt with a NaN deadline', (l) => l.callAt(NaN, fn), RangeError, /^when must not be NaN/],
  ['addTimeout with a NaN deadline', (l) => l.addTimeout(NaN, fn), RangeError, /^deadline must not be NaN/],
  ['addTimeout with a NaN Duration field', (l) => l.addTimeout({ seconds: NaN }, fn), RangeError, /^deadline.seconds must not be NaN/],
  ['addTimeout with a non-object deadline', (l) => l.addTimeout('soon' as never, fn), TypeError, /^deadline must be a number or a Duration/],
  ['callLater with a callback that is not a function', (l) => l.callLater(1, 'x' as never), TypeError, /^callback must be a function/],
  ['callAt with a callback that is not a function', (l) => l.callAt(1, null as never), TypeError, /^callback must be a function/],
  ['addCallback with a callback that is not a function', (l) => l.addCallback(42 as never), TypeError, /^callback must be a function/],
  ['addHandler with a float fd', (l) => l.addHandler(1.5, fn, READ), TypeError, /^fd must be an integer/],
  ['addHandler with a handler that is not a function', (l) => l.addHandler(0, {} as never, READ), TypeError, /^handler must be a function/],
  ['addHandler with unknown event bits', (l) => l.addHandler(0, fn, 0x100), RangeError, /^events must combine/],
  ['addHandler with non-integer events', (l) => l.addHandler(0, fn, 'r' as never), TypeError, /^events must be an integer/],
  ['updateHandler with a string fd', (l) => l.updateHandler('0' as never, READ), TypeError, /^fd must be an integer/],
  ['removeHandler with an object without fileno', (l) => l.removeHandler({} as never), TypeError, /^fd must be an integer/],
  ['removeTimeout with a string', (l) => l.removeTimeout('t'), TypeError, /^timeout must be a handle/],
  ['addFuture with a non-promise', (l) => l.addFuture(5 as never, fn), TypeError, /^future must be a promise/],
  ['addFuture with a callback that is not a function', (l) => l.addFuture(Promise.resolve(), 5 as never), TypeError, /^cb must be a function/],
  ['run with a function that is not a function', (l) => l.run(5 as never), TypeError, /^fn must be a function/],
  ['run with a NaN timeout', (l) => l.run(fn, { timeout: NaN }), RangeError, /^opts.timeout must not be NaN/],
  ['addSignalHandler with a bad signal name', (l) => l.addSignalHandler('TERM', fn), TypeError, /^signal must be a signal name of this OS .* got string "TERM"/],
  ['addSignalHandler with a name that is no signal of this OS', (l) => l.addSignalHandler('SIGFOO', fn), TypeError, /^signal must be a signal name of this OS .* got string "SIGFOO"/],
  ['addSignalHandler with SIGKILL, which cannot be caught', (l) => l.addSignalHandler('SIGKILL', fn), TypeError, /^signal SIGKILL cannot be caught/],
  ['addSignalHandler with SIGSTOP, which cannot be caught', (l) => l.addSignalHandler('SIGSTOP', fn), TypeError, /^signal SIGSTOP cannot be caught/],
  ['addSignalHandler with SIGSEGV, a fault of the thread itself', (l) => l.addSignalHandler('SIGSEGV', fn), TypeError, /^signal SIGSEGV reports a fault of the thread itself/],
  ['removeSignalHandler with a name that is no signal of this OS', (l) => l.removeSignalHandler('SIGFOO'), TypeError, /^signal must be a signal name of this OS/],
  ['PeriodicCallback with a zero period', (l) => new PeriodicCallback(fn, 0, 0, l), RangeError, /^callbackTimeMs must be a positive/],
  ['PeriodicCallback with a jitter above 1', (l) => new PeriodicCallback(fn, 10, 2, l), RangeError, /^jitter must be a number from 0 to 1/],
  ['PeriodicCallback with a callback that is not a function', (l) => new PeriodicCallback('x' as never, 10, 0, l), TypeError, /^cb must be a function/],
  ['PeriodicCallback with a loop that is not an IOLoop', () => new PeriodicCallback(fn, 10, 0, {} as never), TypeError, /^loop must be an IOLoop/],
  ['sys.read with a non-buffer', () => sys.read(0, [] as never), TypeError, /^buf must be a Uint8Array/],
  ['sys.write with a negative fd', () => sys.write(-1, new Uint8Array(1)), RangeError, /^fd must be >= 0/],
  ['sys.listenTcp with a port out of range', () => sys.listenTcp('127.0.0.1', 70000), RangeError, /^port must be <= 65535/],
  ['sys.connectTcp with an empty host', () => sys.connectTcp('', 80), TypeError, /^host must be a non-empty string/],
];

test.each(cases)('%s throws a clear error', (_what, call, error, message) => {
  const loop = newLoop();
  let thrown: unknown;
  try {
    call(loop);
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(error);
  expect((thrown as Error).message).toMatch(message);
  // The loop still works after the misuse.
  expect(loop.stats().pendingTimers).toBe(0);
});

test('constructor options are checked', () => {
  expect(() => new IOLoop({ backend: 'kqueue' as never })).toThrow(/options.backend must be one of epoll, poll, wasi, fake/);
  expect(() => new IOLoop({ driver: 'threads' as never })).toThrow(/options.driver must be one of guest, blocking, portable/);
  expect(() => new IOLoop({ time: 5 as never })).toThrow(/options.time must be a function/);
  expect(() => new IOLoop({ logger: {} as never })).toThrow(/options.logger must have error\(\) and warn\(\)/);
  expect(() => new IOLoop({ backend: 'fake', time: () => 1 })).toThrow(/options.time cannot be used with backend 'fake'/);
  expect(() => new IOLoop({ backend: 'wasi', driver: 'guest' })).toThrow(/^driver 'guest' watches the poller's fd, and backend 'wasi' has none/);
  expect(() => new IOLoop({ backend: 'epoll', wasi: {} })).toThrow(/^options.wasi is for backend 'wasi' only; this loop's backend is 'epoll'$/);
  expect(() => new IOLoop({ driver: 'portable', backend: 'epoll' })).toThrow(/^driver 'portable' watches no fds: it works with backend 'fake' or with none named, not 'epoll'/);
  expect(() => IOLoop.configure('kqueue' as never)).toThrow(/^backend must be one of epoll, poll, wasi, fake/);
});

test('sys failures are SysErrors with code, errno and syscall', () => {
  let err: unknown;
  try {
    sys.close(1_000_000);
  } catch (e) {
    err = e;
  }
  expect(err).toMatchObject({ name: 'SysError', code: 'EBADF', errno: 9, syscall: 'close' });
  expect(() => sys.connectTcp('not a host', 80)).toThrow();
});
