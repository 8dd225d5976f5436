// The loop's contract, written once and run over every combination of backend and
// driver (combos.ts): under jest in Node (test/contract.test.ts) and under Bun, Deno
// and Node without the shim (run-host.ts, spawned by test/contract-hosts.test.ts).
//
// Rules every case keeps, so that it means the same under every driver:
// - Loops come from `ctx.makeLoop`, fds from `ctx.pipe` / `ctx.socketpair` /
//   `ctx.track` (all over `loop.sys`). A case closes every loop and fd it opened;
//   the harness fails a case that leaves one open.
// - While a loop runs, only the loop's own facilities make things happen: its
//   callbacks, timers and handlers. No host timers: under the blocking driver the
//   host's loop does not run until the loop stops. Every run ends by the loop's own
//   work calling stop() (or close()).
// - Expectations are checked after the loop stops, not inside its callbacks: an
//   error thrown there would only be logged. Errors logged by a loop whose logger
//   the case did not give fail the case.
// - A case throws on failure (assert.ts); it uses no test framework.
import { ERROR, IOLoop, PeriodicCallback, READ, TimeoutError, WRITE, type IOLoopOptions, type Logger } from '../../src/index';
import { assert, equal, matches, rejection, thrown } from './assert';

/** What a case may need from its combination; without it the case is not applicable there. */
export type Requirement = 'fds' | 'virtual clock';

/** What a case gets from the harness (harness.ts). */
export interface Context {
  /** The combination's name, e.g. 'epoll+blocking'. */
  readonly combo: string;
  /** Whether the loops run on the fake backend's virtual clock. */
  readonly virtualClock: boolean;
  /** A loop of the combination; `extra` adds to (or overrides) its options. Not current unless asked. */
  makeLoop(extra?: IOLoopOptions): IOLoop;
  /** A pipe from `loop.sys`, tracked: `[readFd, writeFd]`. */
  pipe(loop: IOLoop): [number, number];
  /** A socketpair from `loop.sys`, tracked. */
  socketpair(loop: IOLoop): [number, number];
  /** Tracks an fd that `loop.sys` made (listenTcp, accept, connectTcp); returns it. */
  track(loop: IOLoop, fd: number): number;
  /** Closes tracked fds with the `sys` that made them. */
  closeFds(...fds: number[]): void;
  /** Stops tracking fds that something else closed (close({ allFds })). */
  untrack(...fds: number[]): void;
}

/** One clause of the contract. */
export interface Case {
  readonly name: string;
  readonly requires?: readonly Requirement[];
  run(ctx: Context): Promise<void> | void;
}

/** A logger that keeps what it is given, for cases that check what was logged. */
export class RecordingLogger implements Logger {
  readonly errors: unknown[][] = [];
  readonly warnings: unknown[][] = [];
  error(...a: unknown[]): void {
    this.errors.push(a);
  }
  warn(...a: unknown[]): void {
    this.warnings.push(a);
  }
  /** The messages of the errors logged (the Error after the description). */
  messages(): string[] {
    return this.errors.map((a) => (a[1] instanceof Error ? a[1].message : String(a[1])));
  }
}

const iteration = (loop: IOLoop): number => loop.stats().iterations;

/** The counters of stats() that this suite checks (it may report more). */
function counters(loop: IOLoop): Record<string, number> {
  const s = loop.stats();
  const { iterations, callbacks, timers, events, pendingCallbacks, pendingTimers, handlers } = s;
  return { iterations, callbacks, timers, events, pendingCallbacks, pendingTimers, handlers };
}
const one = new Uint8Array([1]);
/** 2^-10 s: deadlines built from it add up exactly, so the fake clock can be compared with ===. */
const TICK = 1 / 1024;

// ---------------------------------------------------------------- one iteration

const iterationCases: Case[] = [
  {
    name: 'one iteration runs the callbacks queued before it, then the timers due at its start; what they add waits',
    async run(ctx) {
      const loop = ctx.makeLoop();
      const order: [string, number][] = [];
      loop.callLater(-1, () => order.push(['timer', iteration(loop)]));
      loop.addCallback(() => {
        order.push(['callback 1', iteration(loop)]);
        loop.addCallback(() => order.push(['added callback', iteration(loop)]));
        loop.callAt(loop.time() - 10, () => {
          order.push(['added past timer', iteration(loop)]);
          loop.stop();
        });
      });
      loop.addCallback(() => order.push(['callback 2', iteration(loop)]));
      await loop.start();
      equal(order.map(([what]) => what), ['callback 1', 'callback 2', 'timer', 'added callback', 'added past timer'], 'order');
      const first = order[0]![1];
      equal(order.slice(0, 3).map(([, i]) => i), [first, first, first], 'iterations of the first three');
      equal(order[3]![1], first + 1, 'iteration of the callback added by a callback');
      assert(order[4]![1] > first, `the past timer added during iteration ${first} ran in iteration ${order[4]![1]}`);
      loop.close();
    },
  },
  {
    name: 'a callback added by a callback runs in the next iteration',
    async run(ctx) {
      const loop = ctx.makeLoop();
      const seen: number[] = [];
      const step = (): void => {
        seen.push(iteration(loop));
        if (seen.length < 5) loop.addCallback(step);
        else loop.stop();
      };
      loop.addCallback(step);
      await loop.start();
      equal(seen.map((i) => i - seen[0]!), [0, 1, 2, 3, 4], 'iterations, relative to the first');
      loop.close();
    },
  },
  {
    name: 'a timer removed by an earlier timer of the same iteration does not run',
    async run(ctx) {
      const loop = ctx.makeLoop();
      const ran: string[] = [];
      const when = loop.time() - 1;
      let second: unknown;
      loop.callAt(when, () => {
        ran.push('first');
        loop.removeTimeout(second);
      });
      second = loop.callAt(when, () => ran.push('second'));
      loop.callAt(when + 0.5, () => loop.stop());
      await loop.start();
      equal(ran, ['first'], 'timers run');
      equal(loop.stats().pendingTimers, 0, 'pending timers');
      loop.close();
    },
  },
  {
    name: 'timers with equal deadlines run in the order they were added',
    async run(ctx) {
      const loop = ctx.makeLoop();
      const fired: number[] = [];
      // All due in the first iteration, and then spread over later ones.
      const past = loop.time() - 1;
      for (let i = 0; i < 200; i++) loop.callAt(past + (i % 4) * 0.25, () => fired.push(i));
      const base = loop.time();
      for (let i = 200; i < 400; i++) loop.callAt(base + (i % 4) * TICK, () => fired.push(i));
      loop.callAt(base + 4 * TICK, () => loop.stop());
      await loop.start();
      const expected = (from: number): number[] => [0, 1, 2, 3].flatMap((d) => Array.from({ length: 50 }, (_, k) => from + k * 4 + d));
      equal(fired, [...expected(0), ...expected(200)], 'firing order');
      loop.close();
    },
  },
  {
    name: 'callLater with a negative delay and callAt with a past deadline run in the next iteration',
    async run(ctx) {
      const loop = ctx.makeLoop();
      const seen: string[] = [];
      loop.addCallback(() => {
        const now = iteration(loop);
        loop.callLater(-5, () => seen.push(`later +${iteration(loop) - now}`));
        loop.callAt(loop.time() - 1, () => {
          seen.push(`at +${iteration(loop) - now}`);
          loop.stop();
        });
      });
      await loop.start();
      equal(seen, ['later +1', 'at +1'], 'iterations after the one that added them');
      loop.close();
    },
  },
  {
    name: 'the poll does not wait while callbacks are pending',
    async run(ctx) {
      const loop = ctx.makeLoop();
      const distant = loop.callLater(5, () => {});
      const times: number[] = [];
      const step = (): void => {
        times.push(loop.time());
        if (times.length < 100) loop.addCallback(step);
        else {
          loop.removeTimeout(distant);
          loop.stop();
        }
      };
      loop.addCallback(step);
      await loop.start();
      equal(times.length, 100, 'callbacks run');
      if (ctx.virtualClock) equal(new Set(times).size, 1, 'distinct fake times while callbacks were pending');
      else assert(times[99]! - times[0]! < 0.5, `100 chained callbacks took ${times[99]! - times[0]!} s with a timer 5 s away`);
      loop.close();
    },
  },
  {
    name: 'an idle loop does not spin: a handful of iterations while it waits for one timer',
    async run(ctx) {
      const loop = ctx.makeLoop();
      loop.callLater(0.1, () => loop.stop());
      await loop.start();
      const n = iteration(loop);
      assert(n >= 1 && n <= 5, `${n} iterations while waiting 0.1 s for one timer`);
      loop.close();
    },
  },
  {
    name: 'timers run no earlier than their deadline',
    async run(ctx) {
      const loop = ctx.makeLoop();
      const start = loop.time();
      const lateness: number[] = [];
      for (const d of [0.005, 0.02, 0.04]) loop.callLater(d, () => lateness.push(loop.time() - (start + d)));
      loop.callLater(0.05, () => loop.stop());
      await loop.start();
      equal(lateness.length, 3, 'timers run');
      for (const l of lateness) assert(l >= 0, `a timer ran ${-l} s before its deadline`);
      if (ctx.virtualClock) equal(lateness, [0, 0, 0], 'lateness on the fake clock');
      loop.close();
    },
  },
  {
    name: 'removeTimeout is safe on fired, removed and stale handles',
    async run(ctx) {
      const loop = ctx.makeLoop();
      const fired = loop.callLater(TICK, () => {});
      const removed = loop.callLater(2 * TICK, () => {});
      loop.removeTimeout(removed);
      loop.callLater(3 * TICK, () => loop.stop());
      await loop.start();
      // The slots of both are free now: new timers may reuse them.
      const ran: number[] = [];
      for (const i of [1, 2, 3]) loop.callLater(i * TICK, () => ran.push(i));
      loop.removeTimeout(fired);
      loop.removeTimeout(removed);
      loop.removeTimeout(removed);
      loop.removeTimeout(undefined);
      loop.removeTimeout(null);
      loop.callLater(4 * TICK, () => loop.stop());
      await loop.start();
      equal(ran, [1, 2, 3], 'the new timers that ran');
      loop.close();
    },
  },
  {
    name: 'addTimeout takes an absolute deadline or a relative Duration',
    async run(ctx) {
      const loop = ctx.makeLoop();
      const at: Record<string, number> = {};
      const t0 = loop.time();
      loop.addTimeout(t0 + 3 * TICK, () => (at.absolute = loop.time()));
      loop.addTimeout({ milliseconds: 5, microseconds: 250 }, () => (at.relative = loop.time()));
      loop.callLater(0.01, () => loop.stop());
      await loop.start();
      equal(Object.keys(at).sort(), ['absolute', 'relative'], 'timers run');
      assert(at.absolute! >= t0 + 3 * TICK, `the absolute deadline ran at ${at.absolute! - t0} s`);
      assert(at.relative! >= t0 + 0.00525, `the 5.25 ms Duration ran after ${at.relative! - t0} s`);
      if (ctx.virtualClock) {
        equal(at.absolute, 3 * TICK, 'fake time of the absolute deadline');
        assert(Math.abs(at.relative! - 0.00525) < 1e-12, `the Duration ran at fake time ${at.relative}`);
      }
      loop.close();
    },
  },
  {
    name: 'callbacks and timers get the arguments given with them',
    async run(ctx) {
      const loop = ctx.makeLoop();
      const got: unknown[][] = [];
      loop.addCallback((a: number, b: string) => got.push([a, b]), 1, 'x');
      loop.addCallback((...a: unknown[]) => got.push(a));
      loop.addCallback((a: unknown) => got.push([a]), [1, 2]); // one argument that is an array
      loop.addCallback((a: unknown) => got.push([a]), undefined);
      loop.callLater(TICK, (c: boolean) => got.push([c]), true);
      loop.callLater(2 * TICK, (a: number, b: number, c: number) => got.push([a, b, c]), 1, 2, 3);
      loop.callAt(loop.time() + 3 * TICK, () => loop.stop());
      await loop.start();
      equal(got, [[1, 'x'], [], [[1, 2]], [undefined], [true], [1, 2, 3]], 'arguments');
      loop.close();
    },
  },
  {
    name: 'stats() counts iterations, callbacks and timers, and what is pending; removed timers are not pending',
    async run(ctx) {
      const loop = ctx.makeLoop();
      const t = loop.callLater(5, () => {});
      loop.callLater(TICK, () => {});
      loop.addCallback(() => {});
      equal(counters(loop), { iterations: 0, callbacks: 0, timers: 0, events: 0, pendingCallbacks: 1, pendingTimers: 2, handlers: 0 }, 'stats before start');
      loop.removeTimeout(t);
      equal(loop.stats().pendingTimers, 1, 'pending timers after removeTimeout');
      loop.callLater(2 * TICK, () => loop.stop());
      await loop.start();
      const s = counters(loop);
      equal({ ...s, iterations: 0 }, { iterations: 0, callbacks: 1, timers: 2, events: 0, pendingCallbacks: 0, pendingTimers: 0, handlers: 0 }, 'stats after the run');
      assert(s.iterations >= 1, `${s.iterations} iterations counted`);
      loop.close();
    },
  },
];

// ---------------------------------------------------------------- the fake clock

const fakeClockCases: Case[] = [
  {
    name: 'the fake clock jumps to the next deadline when nothing else is ready',
    requires: ['virtual clock'],
    async run(ctx) {
      const loop = ctx.makeLoop();
      equal(loop.time(), 0, 'fake time at first');
      const at: number[] = [];
      loop.callLater(30, () => at.push(loop.time()));
      loop.callLater(90.5, () => {
        at.push(loop.time());
        loop.stop();
      });
      await loop.start();
      equal(at, [30, 90.5], 'fake times the timers ran at');
      loop.close();
    },
  },
  {
    name: 'the fake clock moves at most 3600 seconds per poll, as a real poll would wait',
    requires: ['virtual clock'],
    async run(ctx) {
      const loop = ctx.makeLoop();
      loop.callLater(10_000, () => loop.stop());
      await loop.start();
      equal(loop.time(), 10_000, 'fake time');
      // 3600 + 3600 + 2800: three waits at least.
      assert(iteration(loop) >= 3, `${iteration(loop)} iterations to get 10000 s ahead`);
      loop.close();
    },
  },
  {
    name: 'run() with a timeout on the fake clock expires as soon as the clock gets there',
    requires: ['virtual clock'],
    async run(ctx) {
      const loop = ctx.makeLoop();
      const e = await rejection(loop.run(() => new Promise(() => {}), { timeout: 3600 * 24 }), 'run() past its timeout');
      equal(e.message, 'Operation timed out after 86400 seconds', 'message');
      equal(loop.time(), 86400, 'fake time');
      loop.close();
    },
  },
];

// ---------------------------------------------------------------- file descriptors

const fdCases: Case[] = [
  {
    name: 'addHandler for an fd that is already registered throws EEXIST',
    requires: ['fds'],
    run(ctx) {
      const loop = ctx.makeLoop();
      const [r, w] = ctx.pipe(loop);
      loop.addHandler(r, () => {}, READ);
      const e = thrown(() => loop.addHandler(r, () => {}, READ), 'a second addHandler');
      equal(e.code, 'EEXIST', 'code');
      matches(e.message, 'already registered', 'message');
      equal(loop.stats().handlers, 1, 'handlers');
      loop.close();
      ctx.closeFds(r, w);
    },
  },
  {
    name: 'addHandler for a closed or invalid fd throws EBADF',
    requires: ['fds'],
    run(ctx) {
      const loop = ctx.makeLoop();
      const [r, w] = ctx.pipe(loop);
      ctx.closeFds(r, w);
      equal(thrown(() => loop.addHandler(r, () => {}, READ), 'addHandler of a closed fd').code, 'EBADF', 'code for a closed fd');
      equal(thrown(() => loop.addHandler(-1, () => {}, READ), 'addHandler of -1').code, 'EBADF', 'code for -1');
      equal(loop.stats().handlers, 0, 'handlers');
      loop.close();
    },
  },
  {
    name: 'updateHandler for an fd that is not registered throws ENOENT',
    requires: ['fds'],
    run(ctx) {
      const loop = ctx.makeLoop();
      const [r, w] = ctx.pipe(loop);
      const e = thrown(() => loop.updateHandler(r, WRITE), 'updateHandler');
      equal(e.code, 'ENOENT', 'code');
      matches(e.message, 'not registered', 'message');
      loop.close();
      ctx.closeFds(r, w);
    },
  },
  {
    name: 'removeHandler is idempotent, and the fd can be registered again',
    requires: ['fds'],
    run(ctx) {
      const loop = ctx.makeLoop();
      const [r, w] = ctx.pipe(loop);
      loop.addHandler(r, () => {}, READ);
      loop.removeHandler(r);
      loop.removeHandler(r);
      equal(loop.stats().handlers, 0, 'handlers after removing');
      loop.addHandler(r, () => {}, READ);
      equal(loop.stats().handlers, 1, 'handlers after adding again');
      loop.close();
      ctx.closeFds(r, w);
    },
  },
  {
    name: 'readiness is level-triggered: an undrained pipe is reported again in each iteration',
    requires: ['fds'],
    async run(ctx) {
      const loop = ctx.makeLoop();
      const [r, w] = ctx.pipe(loop);
      loop.sys.write(w, one);
      const iterations: number[] = [];
      const events: number[] = [];
      loop.addHandler(r, (_fd, ev) => {
        iterations.push(iteration(loop));
        events.push(ev);
        if (iterations.length === 3) {
          loop.sys.read(r, new Uint8Array(8));
          loop.stop();
        }
      }, READ);
      await loop.start();
      equal(iterations.map((i) => i - iterations[0]!), [0, 1, 2], 'iterations of the handler calls, relative to the first');
      equal(events, [READ, READ, READ], 'events');
      const s = loop.stats();
      equal([s.events, s.handlers], [3, 1], 'stats events and handlers');
      loop.close();
      ctx.closeFds(r, w);
    },
  },
  {
    name: 'a handler is told only the events it asked for, plus the ERROR bits',
    requires: ['fds'],
    async run(ctx) {
      const loop = ctx.makeLoop();
      const [a, b] = ctx.socketpair(loop); // a is always writable, and readable once b writes
      loop.sys.write(b, one);
      const seen: Record<string, number> = {};
      loop.addHandler(a, (_fd, events) => {
        seen.readOnly = events;
        loop.removeHandler(a);
        loop.addHandler(a, (_fd2, events2) => {
          seen.writeOnly = events2;
          loop.removeHandler(a);
          loop.stop();
        }, WRITE);
      }, READ);
      await loop.start();
      equal(seen, { readOnly: READ, writeOnly: WRITE }, 'events');

      // A hang-up is reported with the ERROR bits although only READ was asked for.
      const [r, w] = ctx.pipe(loop);
      ctx.closeFds(w);
      loop.addHandler(r, (_fd, events) => {
        seen.hangup = events;
        loop.removeHandler(r);
        loop.stop();
      }, READ);
      await loop.start();
      assert((seen.hangup! & ERROR) !== 0, `hang-up reported as 0x${seen.hangup!.toString(16)}, without ERROR bits`);
      equal(seen.hangup! & WRITE, 0, 'WRITE bit of the hang-up');
      loop.close();
      ctx.closeFds(a, b, r);
    },
  },
  {
    name: 'updateHandler changes the events reported',
    requires: ['fds'],
    async run(ctx) {
      const loop = ctx.makeLoop();
      const [a, b] = ctx.socketpair(loop);
      const seen: number[] = [];
      loop.addHandler(a, (_fd, events) => {
        seen.push(events);
        loop.stop();
      }, READ);
      loop.updateHandler(a, READ | WRITE);
      await loop.start();
      equal(seen, [WRITE], 'events');
      loop.close();
      ctx.closeFds(a, b);
    },
  },
  {
    name: 'removeHandler from a handler drops the events of that fd not yet dispatched',
    requires: ['fds'],
    async run(ctx) {
      const loop = ctx.makeLoop();
      const [r1, w1] = ctx.pipe(loop);
      const [r2, w2] = ctx.pipe(loop);
      loop.sys.write(w1, one);
      loop.sys.write(w2, one);
      const calls: string[] = [];
      loop.addHandler(r1, () => {
        calls.push('r1');
        loop.removeHandler(r2);
        loop.stop();
      }, READ);
      loop.addHandler(r2, () => {
        calls.push('r2');
        loop.removeHandler(r1);
        loop.stop();
      }, READ);
      await loop.start();
      // Both were ready in the same poll: whichever ran first removed the other,
      // whose event was already among the ready ones.
      equal(calls.length, 1, `handler calls (${calls.join(', ')})`);
      loop.close();
      ctx.closeFds(r1, w1, r2, w2);
    },
  },
  {
    name: "an fd removed and added again during a dispatch does not get the old registration's event",
    requires: ['fds'],
    async run(ctx) {
      const loop = ctx.makeLoop();
      const [r1, w1] = ctx.pipe(loop);
      const [r2, w2] = ctx.pipe(loop);
      loop.sys.write(w1, one);
      loop.sys.write(w2, one);
      const at: Record<string, number> = {};
      const reAdd = (fd: number) => (): void => {
        if (at.first !== undefined) return;
        at.first = iteration(loop);
        const other = fd === r1 ? r2 : r1;
        loop.removeHandler(other);
        loop.addHandler(other, () => {
          at.newHandler = iteration(loop);
          loop.stop();
        }, READ);
      };
      loop.addHandler(r1, reAdd(r1), READ);
      loop.addHandler(r2, reAdd(r2), READ);
      await loop.start();
      assert(at.newHandler! > at.first!, `the new handler ran in iteration ${at.newHandler}, its fd was re-added in ${at.first}`);
      loop.close();
      ctx.closeFds(r1, w1, r2, w2);
    },
  },
  {
    name: 'a handler that throws or rejects is logged and the loop goes on; EPIPE is ignored',
    requires: ['fds'],
    async run(ctx) {
      const logger = new RecordingLogger();
      const loop = ctx.makeLoop({ logger });
      const [a, b] = ctx.socketpair(loop);
      loop.sys.write(b, one);
      let calls = 0;
      loop.addHandler(a, () => {
        calls++;
        if (calls === 1) throw Object.assign(new Error('peer went away'), { code: 'EPIPE' });
        if (calls === 2) throw new Error('handler failed');
        if (calls === 3) return Promise.reject(new Error('async handler failed'));
        loop.stop();
        return undefined;
      }, READ);
      await loop.start();
      equal(calls, 4, 'handler calls');
      equal(logger.messages(), ['handler failed', 'async handler failed'], 'errors logged');
      loop.close();
      ctx.closeFds(a, b);
    },
  },
  {
    name: 'a handler gets the object it was registered with',
    requires: ['fds'],
    async run(ctx) {
      const loop = ctx.makeLoop();
      const [r, w] = ctx.pipe(loop);
      loop.sys.write(w, one);
      const obj = { fileno: () => r };
      let got: unknown;
      loop.addHandler(obj, (fd) => {
        got = fd;
        loop.stop();
      }, READ);
      await loop.start();
      assert(got === obj, 'the handler did not get the registered object');
      loop.removeHandler(obj);
      equal(loop.stats().handlers, 0, 'handlers after removeHandler(obj)');
      loop.close();
      ctx.closeFds(r, w);
    },
  },
  {
    name: 'close({ allFds: true }) closes numbers with sys.close and objects with their close()',
    requires: ['fds'],
    run(ctx) {
      const loop = ctx.makeLoop();
      const [r, w] = ctx.pipe(loop);
      const [a, b] = ctx.pipe(loop);
      const closed: number[] = [];
      const obj = {
        fileno: () => a,
        close: () => {
          closed.push(a);
          loop.sys.close(a);
        },
      };
      loop.addHandler(r, () => {}, READ);
      loop.addHandler(obj, () => {}, READ);
      loop.close({ allFds: true });
      ctx.untrack(r, a);
      equal(closed, [a], 'objects closed with their close()');
      equal(thrown(() => loop.sys.close(r), 'closing the registered number again').code, 'EBADF', 'the registered number');
      equal(thrown(() => loop.sys.close(a), 'closing the registered object again').code, 'EBADF', "the registered object's fd");
      ctx.closeFds(w, b);
    },
  },
  {
    name: 'close() without allFds leaves registered fds open',
    requires: ['fds'],
    run(ctx) {
      const loop = ctx.makeLoop();
      const [r, w] = ctx.pipe(loop);
      loop.addHandler(r, () => {}, READ);
      loop.close();
      equal(loop.sys.write(w, one), 1, 'bytes written after close()');
      equal(loop.sys.read(r, new Uint8Array(4)), 1, 'bytes read after close()');
      ctx.closeFds(r, w);
    },
  },
  {
    name: 'a TCP echo round trip runs through handlers',
    requires: ['fds'],
    async run(ctx) {
      const loop = ctx.makeLoop();
      const listener = ctx.track(loop, loop.sys.listenTcp('127.0.0.1', 0));
      const client = ctx.track(loop, loop.sys.connectTcp('127.0.0.1', loop.sys.localPort(listener)));
      const conns: number[] = [];
      const reply = new Uint8Array(5);
      loop.addHandler(listener, () => {
        const conn = loop.sys.accept(listener);
        if (conn < 0) return;
        conns.push(ctx.track(loop, conn));
        loop.addHandler(conn, () => {
          const buf = new Uint8Array(64);
          const n = loop.sys.read(conn, buf);
          if (n > 0) loop.sys.write(conn, buf.subarray(0, n));
        }, READ);
      }, READ);
      loop.addHandler(client, (_fd, events) => {
        if (events & WRITE) {
          loop.updateHandler(client, READ);
          loop.sys.write(client, new TextEncoder().encode('hello'));
        } else if (loop.sys.read(client, reply) > 0) {
          loop.stop();
        }
      }, WRITE);
      await loop.start();
      equal(new TextDecoder().decode(reply), 'hello', 'reply');
      equal(conns.length, 1, 'connections accepted');
      loop.close();
      ctx.closeFds(client, listener, ...conns);
    },
  },
];

// ---------------------------------------------------------------- lifecycle and run()

const lifecycleCases: Case[] = [
  {
    name: 'start() and run() while running reject with "IOLoop is already running"',
    async run(ctx) {
      const loop = ctx.makeLoop();
      const messages: string[] = [];
      loop.addCallback(async () => {
        messages.push((await rejection(loop.start(), 'start() while running')).message);
        messages.push((await rejection(loop.run(() => 1), 'run() while running')).message);
        loop.stop();
      });
      await loop.start();
      equal(messages, ['IOLoop is already running', 'IOLoop is already running'], 'rejections');
      loop.close();
    },
  },
  {
    name: 'a stop() before start() makes the next start() return at once, and only that one',
    async run(ctx) {
      const loop = ctx.makeLoop();
      let ran = false;
      loop.addCallback(() => (ran = true));
      loop.stop();
      await loop.start();
      equal(ran, false, 'the callback ran');
      equal(iteration(loop), 0, 'iterations');
      loop.addCallback(() => loop.stop());
      await loop.start();
      equal(ran, true, 'the callback ran in the next start()');
      loop.close();
    },
  },
  {
    name: 'a running loop is current, and the previous current loop is current again after',
    async run(ctx) {
      const outer = ctx.makeLoop({ makeCurrent: true });
      const inner = ctx.makeLoop();
      assert(IOLoop.current() === outer, 'makeCurrent: true did not make the loop current');
      let during = null as IOLoop | null;
      inner.addCallback(() => {
        during = IOLoop.current({ instance: false });
        inner.stop();
      });
      await inner.start();
      assert(during === inner, 'the running loop was not current');
      assert(IOLoop.current({ instance: false }) === outer, 'the previous loop is not current again');

      IOLoop.clearCurrent();
      inner.addCallback(() => inner.stop());
      await inner.start();
      equal(IOLoop.current({ instance: false }), null, 'current loop after a run with none current before');
      inner.close();
      outer.close();
    },
  },
  {
    name: 'makeCurrent: true throws while another loop is current; by default a loop becomes current only if none is',
    run(ctx) {
      const first = ctx.makeLoop({ makeCurrent: undefined });
      assert(IOLoop.current({ instance: false }) === first, 'the first loop made is not current');
      const second = ctx.makeLoop({ makeCurrent: undefined });
      assert(IOLoop.current({ instance: false }) === first, 'a second loop replaced the current one');
      matches(thrown(() => ctx.makeLoop({ makeCurrent: true }), 'makeCurrent: true').message, 'current IOLoop already exists', 'message');
      second.makeCurrent();
      assert(IOLoop.current() === second, 'makeCurrent() did not make the loop current');
      second.close();
      equal(IOLoop.current({ instance: false }), null, 'current loop after closing it');
      first.close();
    },
  },
  {
    name: 'run() resolves with a plain value, or with what a promise resolved by the loop resolves to',
    async run(ctx) {
      const loop = ctx.makeLoop();
      equal(await loop.run(() => 42), 42, 'plain value');
      equal(await loop.run(() => new Promise((r) => loop.callLater(0.01, () => r('later')))), 'later', 'promise');
      equal(loop.stats().pendingTimers, 0, 'pending timers');
      loop.close();
    },
  },
  {
    name: "run() resolves with an async function's result and rejects with what it throws",
    async run(ctx) {
      const loop = ctx.makeLoop();
      const value = await loop.run(async () => {
        await new Promise((r) => loop.callLater(0.005, () => r(undefined)));
        await new Promise((r) => loop.addCallback(() => r(undefined)));
        return 'async';
      });
      equal(value, 'async', 'result');
      equal((await rejection(loop.run(async () => Promise.reject(new Error('boom'))), 'an async function that throws')).message, 'boom', 'rejection');
      const sync = await rejection(
        loop.run(() => {
          throw new Error('sync boom');
        }),
        'a function that throws',
      );
      equal(sync.message, 'sync boom', 'rejection of a synchronous throw');
      loop.close();
    },
  },
  {
    name: 'stop() during run() makes it reject',
    async run(ctx) {
      const loop = ctx.makeLoop();
      const result = loop.run(() => new Promise(() => {}));
      loop.addCallback(() => loop.stop());
      matches((await rejection(result, 'run() stopped')).message, 'stopped before', 'message');
      loop.close();
    },
  },
  {
    name: 'a stop() before run() makes it reject without calling fn',
    async run(ctx) {
      const loop = ctx.makeLoop();
      let called = false;
      loop.stop();
      const e = await rejection(
        loop.run(() => {
          called = true;
        }),
        'run() after stop()',
      );
      matches(e.message, 'stopped before', 'message');
      equal(called, false, 'fn called');
      const s = loop.stats();
      equal([s.pendingCallbacks, s.pendingTimers], [0, 0], 'pending callbacks and timers');
      equal(await loop.run(() => 'next run works'), 'next run works', 'the next run');
      loop.close();
    },
  },
  {
    name: 'run() past its timeout rejects with TimeoutError("Operation timed out after N seconds")',
    async run(ctx) {
      const loop = ctx.makeLoop();
      const e = await rejection(loop.run(() => new Promise(() => {}), { timeout: 0.02 }), 'run() past its timeout');
      assert(e instanceof TimeoutError, `rejected with ${e.name}, not a TimeoutError`);
      equal(e.message, 'Operation timed out after 0.02 seconds', 'message');
      equal(loop.stats().pendingTimers, 0, 'pending timers');
      loop.close();
    },
  },
  {
    name: 'a run() result that settles before the timeout cancels the timeout',
    async run(ctx) {
      const loop = ctx.makeLoop();
      equal(await loop.run(() => new Promise((r) => loop.callLater(TICK, () => r('ok'))), { timeout: 5 }), 'ok', 'result');
      equal(loop.stats().pendingTimers, 0, 'pending timers');
      loop.close();
    },
  },
  {
    name: 'addFuture never calls back synchronously, for a resolved or a rejected promise',
    async run(ctx) {
      const loop = ctx.makeLoop();
      const calls: Promise<unknown>[] = [];
      loop.addFuture(Promise.resolve(7), (f) => calls.push(f));
      loop.addFuture(Promise.reject(new Error('nope')), (f) => {
        calls.push(f);
        loop.stop();
      });
      equal(calls.length, 0, 'calls before the loop ran');
      await loop.start();
      equal(calls.length, 2, 'calls');
      equal(await calls[0], 7, 'the resolved future');
      equal((await rejection(calls[1]!, 'the rejected future')).message, 'nope', 'the rejected future');
      loop.close();
    },
  },
  {
    name: 'a callback or timer that throws or rejects is logged and the loop goes on',
    async run(ctx) {
      const logger = new RecordingLogger();
      const loop = ctx.makeLoop({ logger });
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
      equal(ran, ['after'], 'callbacks after the failing ones');
      equal(logger.messages().sort(), ['from a timer', 'rejected', 'thrown'], 'errors logged');
      loop.close();
    },
  },
  {
    name: 'spawnCallback and addCallbackFromSignal run like addCallback',
    async run(ctx) {
      const loop = ctx.makeLoop();
      const seen: unknown[] = [];
      loop.spawnCallback((x: number) => seen.push(x), 1);
      loop.addCallbackFromSignal((x: number) => seen.push(x), 2);
      loop.addCallback((x: number) => seen.push(x), 3);
      loop.callLater(0, () => loop.stop());
      await loop.start();
      equal(seen, [1, 2, 3], 'arguments, in order');
      loop.close();
    },
  },
  {
    name: "async callbacks that await the loop's own work resume while the loop runs",
    async run(ctx) {
      const loop = ctx.makeLoop();
      let stopped = false;
      const steps: string[] = [];
      loop.addCallback(async () => {
        for (let i = 0; i < 3; i++) {
          await new Promise((r) => loop.callLater(0.005, () => r(undefined)));
          steps.push(`timer ${i}${stopped ? ' after stop' : ''}`);
          await new Promise((r) => loop.addCallback(() => r(undefined)));
          steps.push(`callback ${i}${stopped ? ' after stop' : ''}`);
        }
        loop.stop();
      });
      await loop.start().then(() => (stopped = true));
      equal(steps, ['timer 0', 'callback 0', 'timer 1', 'callback 1', 'timer 2', 'callback 2'], 'resumptions');
      assert(loop.stats().timers >= 3, `${loop.stats().timers} timers fired`);
      loop.close();
    },
  },
  {
    name: 'PeriodicCallback calls on the grid start + k·period until stopped',
    async run(ctx) {
      const loop = ctx.makeLoop();
      const periodMs = 1000 / 128;
      const period = periodMs / 1000;
      const at: number[] = [];
      const pc = new PeriodicCallback(() => {
        at.push(loop.time());
        if (at.length === 4) {
          pc.stop();
          loop.callLater(2 * period, () => loop.stop());
        }
      }, periodMs, 0, loop);
      assert(!pc.isRunning(), 'running before start()');
      const start = loop.time();
      pc.start();
      assert(pc.isRunning(), 'not running after start()');
      await loop.start();
      assert(!pc.isRunning(), 'running after stop()');
      equal(at.length, 4, 'calls');
      at.forEach((t, i) => assert(t >= start + (i + 1) * period, `call ${i + 1} ran ${start + (i + 1) * period - t} s before its grid point`));
      if (ctx.virtualClock) equal(at, [1, 2, 3, 4].map((k) => k * period), 'fake times of the calls');
      equal(loop.stats().pendingTimers, 0, 'pending timers after stop()');
      loop.close();
    },
  },
  {
    name: 'close() of a running loop settles start(): before its first turn and from a callback',
    async run(ctx) {
      const loop = ctx.makeLoop();
      const running = loop.start();
      loop.close();
      equal(await running, undefined, 'start() of a loop closed before its first turn');

      const other = ctx.makeLoop();
      let after = false;
      other.addCallback(() => other.close());
      other.addCallback(() => (after = true));
      equal(await other.start(), undefined, 'start() of a loop closed by its callback');
      equal(after, false, 'a callback queued after close() ran');
      matches(thrown(() => other.stats(), 'stats() of a closed loop').message, 'IOLoop is closed', 'message');
    },
  },
  {
    name: 'a non-integer fd is refused with a TypeError naming fd, whatever the backend',
    run(ctx) {
      const loop = ctx.makeLoop();
      for (const bad of [1.5, '3', null, undefined, {}, { fileno: () => 'x' }, NaN]) {
        const e = thrown(() => loop.addHandler(bad as never, () => {}, READ), `addHandler(${String(bad)})`);
        assert(e instanceof TypeError, `addHandler(${String(bad)}) threw ${e.name}, not a TypeError`);
        matches(e.message, /^fd must be an integer/, 'message');
      }
      loop.close();
    },
  },
];

/** Every case, in the order they run. */
export const CASES: readonly Case[] = [...iterationCases, ...fakeClockCases, ...fdCases, ...lifecycleCases];
