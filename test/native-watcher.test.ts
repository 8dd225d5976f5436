// The watcher: a thread that waits on an epoll fd or a poll set and turns the loop
// through a thread-safe function, once per arm. Turns come for readiness (1) and
// the armed timeout (2), never spin on a descriptor that stays ready, follow the
// set as pollCtl changes it, and a watcher keeps the process alive exactly while
// it is started. What could take a process down runs in a child process. Every
// test closes what it opens; afterEach proves it against /proc/self/fd.
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import { constants } from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { requireNative, type NativeShim } from '../src/native';
import { guardFdCountPerTest } from './helpers';

/** The watcher's and the poll set's functions, until src/native.ts declares them. */
type WatcherHandle = object;
interface WatcherShim {
  pollCreate(): number;
  pollCtl(pfd: number, op: number, fd: number, events?: number, token?: number): number;
  pollWait(pfd: number, buffer: ArrayBuffer, byteOffset: number, maxEvents: number, timeoutMs: number): number;
  watcherOpen(pollerFd: number, kind: 'epoll' | 'poll', onTurn: (reason: number) => void): WatcherHandle;
  watcherStart(w: WatcherHandle): void;
  watcherArm(w: WatcherHandle, timeoutMs: number): void;
  watcherStop(w: WatcherHandle): void;
  watcherClose(w: WatcherHandle): void;
}

const native = requireNative('test/native-watcher') as NativeShim & WatcherShim;
const ADDON = path.join(__dirname, '..', 'build', 'Release', 'wasm_ioloop.node');
const TURN_IO = 1;
const TURN_TIMER = 2;
const { CTL_ADD, CTL_DEL, EV_READ, EV_WRITE } = native.layout;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => Number(process.hrtime.bigint()) / 1e6;

function threads(): number {
  return fs.readdirSync('/proc/self/task').length;
}

function runChild(body: string, args: string[] = []): { status: number | null; signal: string | null; stdout: string; stderr: string; ms: number } {
  const script = `const native = require(${JSON.stringify(ADDON)});\n${body}`;
  const start = Date.now();
  const r = spawnSync(process.execPath, [...args, '-e', script], { encoding: 'utf8', timeout: 20000 });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - start };
}

/** A poller (epoll fd or poll set) with a pipe's read end registered, and a watcher on it. */
class Fixture {
  readonly poller: number;
  readonly pipe = native.pipe() as [number, number];
  readonly turns: number[] = [];
  onTurn: (reason: number) => void = () => {};
  readonly watcher: WatcherHandle;

  constructor(readonly kind: 'epoll' | 'poll') {
    this.poller = kind === 'epoll' ? native.epollCreate() : native.pollCreate();
    expect(this.ctl(CTL_ADD, this.pipe[0], EV_READ, 1)).toBe(0);
    this.watcher = native.watcherOpen(this.poller, kind, (reason) => {
      this.turns.push(reason);
      this.onTurn(reason);
    });
  }

  ctl(op: number, fd: number, events?: number, token?: number): number {
    return this.kind === 'epoll' ? native.epollCtl(this.poller, op, fd, events, token) : native.pollCtl(this.poller, op, fd, events, token);
  }

  /** What a loop turn does: read the ready records, drain the pipe. */
  drain(): number {
    const buf = new ArrayBuffer(64);
    const n = this.kind === 'epoll' ? native.epollWait(this.poller, buf, 0, 8, 0) : native.pollWait(this.poller, buf, 0, 8, 0);
    const bytes = new Uint8Array(64);
    while (native.read(this.pipe[0], bytes) > 0);
    return n;
  }

  /** Resolves at the next turn with its reason. */
  nextTurn(): Promise<number> {
    return new Promise((resolve) => {
      this.onTurn = (reason) => {
        this.onTurn = () => {};
        resolve(reason);
      };
    });
  }

  close(): void {
    native.watcherClose(this.watcher);
    native.close(this.pipe[0]);
    native.close(this.pipe[1]);
    native.close(this.poller);
  }
}

function thrown(fn: () => unknown): { name?: string; message?: string; code?: string } {
  try {
    fn();
  } catch (error) {
    return error as { name: string; message: string; code?: string };
  }
  throw new Error('expected a throw');
}

describe('native watcher', () => {
  let fixtures: Fixture[] = [];
  function fixture(kind: 'epoll' | 'poll'): Fixture {
    const f = new Fixture(kind);
    fixtures.push(f);
    return f;
  }
  let threadsBefore = 0;
  beforeEach(() => {
    threadsBefore = threads();
  });
  guardFdCountPerTest(() => {
    for (const f of fixtures.splice(0)) f.close();
    // Closing joined every watcher thread.
    expect(threads()).toBe(threadsBefore);
  });

  describe.each(['epoll', 'poll'] as const)('on %s', (kind) => {
    test('a_turn_with_reason_io_comes_when_a_registered_pipe_becomes_readable', async () => {
      const f = fixture(kind);
      native.watcherStart(f.watcher);
      native.watcherArm(f.watcher, -1);
      const turn = f.nextTurn();
      await sleep(10);
      expect(f.turns).toEqual([]);
      native.write(f.pipe[1], Buffer.from('x'));
      expect(await turn).toBe(TURN_IO);
      expect(f.drain()).toBe(1);
      native.watcherStop(f.watcher);
    });

    test('a_ready_descriptor_costs_one_turn_per_arm_never_a_spin', async () => {
      const f = fixture(kind);
      native.write(f.pipe[1], Buffer.from('x')); // stays ready: nobody drains it
      native.watcherStart(f.watcher);
      native.watcherArm(f.watcher, -1);
      await sleep(100);
      expect(f.turns).toEqual([TURN_IO]);
      // Each arm gives exactly one more turn while it stays ready.
      for (let i = 2; i <= 4; i++) {
        const turn = f.nextTurn();
        native.watcherArm(f.watcher, 5000);
        expect(await turn).toBe(TURN_IO);
        await sleep(20);
        expect(f.turns.length).toBe(i);
      }
      native.watcherStop(f.watcher);
    });

    test('the_armed_timeout_turns_with_reason_timer_not_before', async () => {
      const f = fixture(kind);
      native.watcherStart(f.watcher);
      for (const ms of [25, 5.5]) {
        const start = now();
        const turn = f.nextTurn();
        native.watcherArm(f.watcher, ms);
        expect(await turn).toBe(TURN_TIMER);
        expect(now() - start).toBeGreaterThanOrEqual(ms);
      }
      native.watcherStop(f.watcher);
    });

    test('arming_again_replaces_the_timeout_during_a_wait', async () => {
      const f = fixture(kind);
      native.watcherStart(f.watcher);
      native.watcherArm(f.watcher, 10);
      native.watcherArm(f.watcher, -1); // no timeout now
      await sleep(50);
      expect(f.turns).toEqual([]);
      native.watcherArm(f.watcher, 10000);
      await sleep(10); // the thread is in its long wait
      const start = now();
      const turn = f.nextTurn();
      native.watcherArm(f.watcher, 15);
      expect(await turn).toBe(TURN_TIMER);
      const took = now() - start;
      expect(took).toBeGreaterThanOrEqual(15);
      expect(took).toBeLessThan(2000);
      await sleep(30);
      expect(f.turns).toEqual([TURN_TIMER]);
      native.watcherStop(f.watcher);
    });

    test('arm_0_turns_as_soon_as_possible_and_infinity_never_times_out', async () => {
      const f = fixture(kind);
      native.watcherStart(f.watcher);
      const turn = f.nextTurn();
      native.watcherArm(f.watcher, 0);
      expect(await turn).toBe(TURN_TIMER);
      native.watcherArm(f.watcher, Infinity);
      await sleep(30);
      native.watcherArm(f.watcher, 1e300);
      await sleep(30);
      expect(f.turns).toEqual([TURN_TIMER]);
      native.watcherStop(f.watcher);
    });

    test('registrations_made_during_a_wait_are_picked_up', async () => {
      const f = fixture(kind);
      native.watcherStart(f.watcher);
      native.watcherArm(f.watcher, -1);
      await sleep(20); // waiting on the set as it was
      const [r2, w2] = native.pipe() as [number, number];
      try {
        const turn = f.nextTurn();
        expect(f.ctl(CTL_ADD, w2, EV_WRITE, 2)).toBe(0); // ready at once
        expect(await Promise.race([turn, sleep(3000).then(() => 'no turn')])).toBe(TURN_IO);
        expect(f.ctl(CTL_DEL, w2)).toBe(0);
      } finally {
        native.close(r2);
        native.close(w2);
      }
      native.watcherStop(f.watcher);
    });

    test('no_turn_while_stopped_and_a_turn_queued_before_stop_is_dropped', async () => {
      const f = fixture(kind);
      native.write(f.pipe[1], Buffer.from('x'));
      native.watcherArm(f.watcher, 0); // recorded; nothing waits while stopped
      await sleep(30);
      expect(f.turns).toEqual([]);
      native.watcherStart(f.watcher);
      native.watcherStop(f.watcher); // the turn may be queued already: it is dropped
      await sleep(30);
      expect(f.turns).toEqual([]);
      // Stop disarmed it: starting again waits for an arm.
      native.watcherStart(f.watcher);
      await sleep(30);
      expect(f.turns).toEqual([]);
      const turn = f.nextTurn();
      native.watcherArm(f.watcher, -1);
      expect(await turn).toBe(TURN_IO);
      native.watcherStop(f.watcher);
      native.watcherStop(f.watcher); // idempotent
    });

    test('close_during_a_wait_returns_promptly_and_joins_the_thread', async () => {
      const f = fixture(kind);
      native.watcherStart(f.watcher);
      native.watcherArm(f.watcher, -1);
      await sleep(10);
      expect(threads()).toBe(threadsBefore + 1);
      const start = now();
      native.watcherClose(f.watcher);
      expect(now() - start).toBeLessThan(1000);
      expect(threads()).toBe(threadsBefore);
      native.watcherClose(f.watcher); // idempotent
      native.write(f.pipe[1], Buffer.from('x'));
      await sleep(20);
      expect(f.turns).toEqual([]);
    });

    test('close_of_the_poller_through_the_shim_stops_the_watcher', async () => {
      const f = fixture(kind);
      native.watcherStart(f.watcher);
      native.watcherArm(f.watcher, -1);
      await sleep(10);
      expect(native.close(f.poller)).toBe(0);
      const error = thrown(() => native.watcherStart(f.watcher));
      expect(error).toMatchObject({ name: 'Error', code: 'EBADF' });
      expect(error.message).toMatch(/^watcherStart: pollerFd \d+ is closed$/);
      native.watcherArm(f.watcher, 0);
      await sleep(20);
      expect(f.turns).toEqual([]);
      // The fixture's own close() closes the number again: recreate it so that it closes something.
      (f as { poller: number }).poller = kind === 'epoll' ? native.epollCreate() : native.pollCreate();
    });

    test('ticks_and_microtasks_scheduled_in_a_turn_run_right_after_it', async () => {
      const f = fixture(kind);
      const log: string[] = [];
      const done = new Promise<void>((resolve) => {
        f.onTurn = () => {
          f.onTurn = () => {};
          log.push('turn');
          setImmediate(() => {
            log.push('immediate');
            resolve();
          });
          void Promise.resolve().then(() => log.push('promise'));
          process.nextTick(() => log.push('nextTick'));
          log.push('turn end');
        };
      });
      native.watcherStart(f.watcher);
      native.watcherArm(f.watcher, 0);
      await done;
      native.watcherStop(f.watcher);
      expect(log).toEqual(['turn', 'turn end', 'nextTick', 'promise', 'immediate']);
    });
  });

  test('several_watchers_on_one_epoll_fd_each_turn', async () => {
    const f = fixture('epoll');
    const other: number[] = [];
    const second = native.watcherOpen(f.poller, 'epoll', (reason) => other.push(reason));
    try {
      native.watcherStart(f.watcher);
      native.watcherStart(second);
      native.watcherArm(f.watcher, -1);
      native.watcherArm(second, -1);
      const turn = f.nextTurn();
      native.write(f.pipe[1], Buffer.from('x'));
      expect(await turn).toBe(TURN_IO);
      await sleep(20);
      expect(other).toEqual([TURN_IO]);
      native.watcherStop(second);
    } finally {
      native.watcherClose(second);
    }
    native.watcherStop(f.watcher);
  });

  test('wake_on_the_sets_own_fd_turns_a_poll_watcher_from_another_thread', async () => {
    const f = fixture('poll');
    native.watcherStart(f.watcher);
    native.watcherArm(f.watcher, -1);
    const turn = f.nextTurn();
    const worker = new Worker(`require(${JSON.stringify(ADDON)}).wake(${f.poller});`, { eval: true });
    const exited = once(worker, 'exit');
    expect(await turn).toBe(TURN_IO);
    await exited;
    expect(f.drain()).toBe(0); // the set's eventfd is never a record
    await sleep(10);
    expect(f.turns).toEqual([TURN_IO]); // and it was drained: no second turn on re-arm
    native.watcherArm(f.watcher, -1);
    await sleep(30);
    expect(f.turns).toEqual([TURN_IO]);
    native.watcherStop(f.watcher);
  });

  test('a_waker_eventfd_turns_an_epoll_watcher_from_another_thread', async () => {
    const f = fixture('epoll');
    const efd = native.eventfdOpen();
    try {
      expect(f.ctl(CTL_ADD, efd, EV_READ, native.layout.WAKER_TOKEN)).toBe(0);
      native.watcherStart(f.watcher);
      native.watcherArm(f.watcher, -1);
      const turn = f.nextTurn();
      const worker = new Worker(`require(${JSON.stringify(ADDON)}).wake(${efd});`, { eval: true });
      const exited = once(worker, 'exit');
      expect(await turn).toBe(TURN_IO);
      await exited;
      expect(native.consume(efd)).toBe(1);
      native.watcherStop(f.watcher);
    } finally {
      native.close(efd);
    }
  });

  test('misuse_throws_type_errors_naming_the_function_argument_and_rule', () => {
    const f = fixture('epoll');
    const [r] = f.pipe;
    const cases: Array<[() => unknown, string, RegExp]> = [
      [() => native.watcherOpen(-1, 'epoll', () => {}), 'TypeError', /^watcherOpen: pollerFd must be an integer >= 0 \(got -1\)$/],
      [() => native.watcherOpen(f.poller, 'kqueue' as 'poll', () => {}), 'TypeError', /^watcherOpen: kind must be 'epoll' or 'poll' \(got string\)$/],
      [() => native.watcherOpen(f.poller, 'epollx' as 'poll', () => {}), 'TypeError', /^watcherOpen: kind must be 'epoll' or 'poll' \(got string\)$/],
      [() => native.watcherOpen(f.poller, 'epoll\0' as 'poll', () => {}), 'TypeError', /^watcherOpen: kind must be 'epoll' or 'poll' \(got string\)$/],
      [() => native.watcherOpen(f.poller, 5 as unknown as 'poll', () => {}), 'TypeError', /^watcherOpen: kind must be 'epoll' or 'poll' \(got 5\)$/],
      [() => native.watcherOpen(f.poller, 'epoll', 'f' as unknown as () => void), 'TypeError', /^watcherOpen: onTurn must be a function \(got string\)$/],
      [() => native.watcherOpen(r, 'epoll', () => {}), 'TypeError', /^watcherOpen: pollerFd must be an epoll fd when kind is 'epoll' \(got \d+\)$/],
      [() => native.watcherOpen(f.poller, 'poll', () => {}), 'TypeError', /^watcherOpen: pollerFd must be a poll set from this environment's pollCreate when kind is 'poll' \(got \d+\)$/],
      [() => native.watcherStart({}), 'TypeError', /^watcherStart: w must be an object returned by watcherOpen \(got object\)$/],
      [() => native.watcherArm(f.watcher, NaN), 'TypeError', /^watcherArm: timeoutMs must be a number \(< 0 or Infinity: no timeout\) \(got NaN\)$/],
      [() => native.watcherArm(f.watcher, '5' as unknown as number), 'TypeError', /^watcherArm: timeoutMs must be a number/],
      [() => native.watcherStop(42 as unknown as object), 'TypeError', /^watcherStop: w must be an object returned by watcherOpen \(got 42\)$/],
      [() => native.watcherClose(undefined as unknown as object), 'TypeError', /^watcherClose: w must be an object returned by watcherOpen \(got undefined\)$/],
    ];
    for (const [call, name, message] of cases) {
      const error = thrown(call);
      expect({ name: error.name, message: error.message }).toEqual({ name, message: expect.stringMatching(message) });
    }
    // A guest is not a watcher, nor the other way round.
    const guest = native.guestOpen(f.poller, () => {});
    try {
      expect(thrown(() => native.watcherStart(guest)).message).toMatch(/^watcherStart: w must be an object returned by watcherOpen/);
      expect(thrown(() => native.guestStart(f.watcher)).message).toMatch(/^guestStart: g must be an object returned by guestOpen/);
    } finally {
      native.guestClose(guest);
    }
    // A closed descriptor is an Error with its errno.
    const [a, b] = native.pipe() as [number, number];
    const ep = native.epollCreate();
    native.close(ep);
    native.close(a);
    native.close(b);
    expect(thrown(() => native.watcherOpen(ep, 'epoll', () => {}))).toMatchObject({ name: 'Error', code: 'EBADF', message: `watcherOpen: pollerFd ${ep} is closed` });
    // A closed watcher.
    const closed = native.watcherOpen(f.poller, 'epoll', () => {});
    native.watcherClose(closed);
    for (const [call, fn] of [
      [() => native.watcherStart(closed), 'watcherStart'],
      [() => native.watcherArm(closed, 1), 'watcherArm'],
      [() => native.watcherStop(closed), 'watcherStop'],
    ] as const) {
      expect(thrown(call)).toMatchObject({ name: 'Error', code: 'ERR_WATCHER_CLOSED', message: `${fn}: watcher is closed` });
    }
    native.watcherClose(closed);
  });

  test('an_epoll_fd_closed_behind_the_shims_back_turns_with_minus_ebadf_once', () => {
    const r = runChild(`
      const fs = require('fs');
      const ep = native.epollCreate();
      const turns = [];
      const w = native.watcherOpen(ep, 'epoll', (reason) => {
        turns.push(reason);
        native.watcherArm(w, 0); // ignored: the watcher failed
      });
      native.watcherStart(w);
      native.watcherArm(w, -1);
      // A close does not end a poll(2) already waiting on the fd; the next wait
      // (here the one this arm starts) finds it closed.
      setTimeout(() => fs.closeSync(ep), 20);
      setTimeout(() => native.watcherArm(w, -1), 40);
      setTimeout(() => {
        console.log(JSON.stringify(turns));
        native.watcherStop(w);
        native.watcherClose(w);
      }, 200);
    `);
    expect(r).toMatchObject({ status: 0, signal: null, stdout: `[${-constants.errno.EBADF}]\n` });
  });

  test('an_open_but_stopped_watcher_lets_node_exit', () => {
    const r = runChild(`
      const ep = native.epollCreate();
      const w = native.watcherOpen(ep, 'epoll', () => {});
      native.watcherArm(w, 60000);
      const w2 = native.watcherOpen(ep, 'epoll', () => {});
      native.watcherStart(w2);
      native.watcherArm(w2, 60000);
      native.watcherStop(w2);
      globalThis.keep = [w, w2];
      console.log('opened');
    `);
    expect(r).toMatchObject({ status: 0, signal: null, stdout: 'opened\n' });
    expect(r.ms).toBeLessThan(10000);
  });

  test('a_started_watcher_keeps_node_alive_until_watcher_stop', () => {
    const r = runChild(`
      const ep = native.epollCreate();
      const w = native.watcherOpen(ep, 'epoll', () => {});
      native.watcherStart(w);
      const t0 = Date.now();
      setTimeout(() => {
        console.log('still alive after', Date.now() - t0 >= 290 ? '300ms' : 'less');
        native.watcherStop(w);
      }, 300).unref();
    `);
    expect(r).toMatchObject({ status: 0, signal: null, stdout: 'still alive after 300ms\n' });
  });

  test('a_started_armed_watcher_exits_after_stop_in_its_turn', () => {
    const r = runChild(`
      const ps = native.pollCreate();
      const w = native.watcherOpen(ps, 'poll', (reason) => {
        console.log('turn', reason);
        native.watcherStop(w);
      });
      native.watcherStart(w);
      native.watcherArm(w, 20);
    `);
    expect(r).toMatchObject({ status: 0, signal: null, stdout: 'turn 2\n' });
  });

  test('an_exception_in_on_turn_goes_to_uncaught_exception_not_an_abort', () => {
    const caught = runChild(`
      const ep = native.epollCreate();
      const w = native.watcherOpen(ep, 'epoll', () => { throw new Error('boom from onTurn'); });
      process.on('uncaughtException', (e) => {
        console.log('caught', e.message);
        native.watcherClose(w);
        native.close(ep);
      });
      native.watcherStart(w);
      native.watcherArm(w, 1);
    `);
    expect(caught).toMatchObject({ status: 0, signal: null, stdout: 'caught boom from onTurn\n' });
    const uncaught = runChild(`
      const ep = native.epollCreate();
      const w = native.watcherOpen(ep, 'epoll', () => { throw new Error('boom from onTurn'); });
      native.watcherStart(w);
      native.watcherArm(w, 1);
    `);
    expect(uncaught.signal).toBeNull();
    expect(uncaught.status).toBe(1);
    expect(uncaught.stderr).toMatch(/boom from onTurn/);
  });

  test('collected_watchers_are_closed_and_started_ones_keep_turning', () => {
    const r = runChild(
      `
      const threads = () => require('fs').readdirSync('/proc/self/task').length;
      const before = threads();
      const ep = native.epollCreate();
      for (let i = 0; i < 50; i++) native.watcherOpen(ep, 'epoll', () => {});
      const opened = threads() - before;
      const [rd, wr] = native.pipe();
      native.epollCtl(ep, native.layout.CTL_ADD, rd, native.layout.EV_READ, 1);
      (() => {
        const w = native.watcherOpen(ep, 'epoll', function (reason) {
          console.log('turn', reason, opened, threads() - before);
          native.watcherClose(this);
          native.close(rd); native.close(wr); native.close(ep);
        });
        native.watcherStart(w);
        native.watcherArm(w, -1);
      })();
      setImmediate(() => {
        globalThis.gc();
        setTimeout(() => { globalThis.gc(); native.write(wr, Buffer.from('x')); }, 50);
      });
    `,
      ['--expose-gc'],
    );
    // 50 threads while open; after the collection only the started watcher's.
    expect(r).toMatchObject({ status: 0, signal: null, stdout: 'turn 1 50 1\n' });
  });

  describe('in worker threads', () => {
    async function runWorker(body: string, onStart?: (w: Worker) => void): Promise<{ messages: unknown[]; code: number }> {
      const worker = new Worker(
        `const { parentPort } = require('node:worker_threads');
         const native = require(${JSON.stringify(ADDON)});
         ${body}`,
        { eval: true },
      );
      const messages: unknown[] = [];
      worker.on('message', (m) => messages.push(m));
      const errors: unknown[] = [];
      worker.on('error', (e) => errors.push(e));
      onStart?.(worker);
      const [code] = (await once(worker, 'exit')) as [number];
      if (errors.length) throw errors[0];
      return { messages, code };
    }

    test('a_watcher_turns_inside_a_worker_and_the_worker_exits_after_stop', async () => {
      const { messages, code } = await runWorker(`
        const ps = native.pollCreate();
        const [r, w] = native.pipe();
        native.pollCtl(ps, native.layout.CTL_ADD, r, native.layout.EV_READ, 3);
        const turns = [];
        const watcher = native.watcherOpen(ps, 'poll', (reason) => {
          turns.push(reason);
          if (turns.length === 1) { native.write(w, Buffer.from('x')); native.watcherArm(watcher, -1); return; }
          native.watcherStop(watcher);
          native.close(r); native.close(w); // the pipe is ours; the worker's teardown closes ps
          parentPort.postMessage(turns);
        });
        native.watcherStart(watcher);
        native.watcherArm(watcher, 5);
      `);
      expect(code).toBe(0);
      expect(messages).toEqual([[TURN_TIMER, TURN_IO]]);
    });

    test('a_worker_ending_with_watchers_waiting_closes_them_and_their_threads', async () => {
      const before = threads();
      const { code, messages } = await runWorker(`
        const ep = native.epollCreate();
        const ps = native.pollCreate();
        globalThis.keep = [];
        for (const [fd, kind] of [[ep, 'epoll'], [ps, 'poll'], [ep, 'epoll']]) {
          const w = native.watcherOpen(fd, kind, () => {});
          native.watcherStart(w);
          native.watcherArm(w, -1);
          globalThis.keep.push(w);
        }
        native.watcherStop(globalThis.keep[2]);
        parentPort.postMessage([ep, ps]);
        setTimeout(() => process.exit(7), 20);
      `);
      expect(code).toBe(7);
      const open = fs.readdirSync('/proc/self/fd');
      for (const fd of messages[0] as number[]) expect(open).not.toContain(String(fd));
      expect(threads()).toBe(before);
    });

    test('a_terminated_worker_with_a_started_watcher_in_a_wait_exits_cleanly', async () => {
      const before = threads();
      const { code } = await runWorker(
        `
        const ep = native.epollCreate();
        const efd = native.eventfdOpen();
        native.epollCtl(ep, native.layout.CTL_ADD, efd, native.layout.EV_READ, 1);
        let n = 0;
        const w = native.watcherOpen(ep, 'epoll', () => { native.consume(efd); native.wake(efd); native.watcherArm(w, 1); if (++n === 5) parentPort.postMessage('turning'); });
        native.watcherStart(w);
        native.watcherArm(w, 1);
      `,
        (w) => w.once('message', () => void w.terminate()),
      );
      expect(code).toBe(1);
      expect(threads()).toBe(before);
    });

    test('several_workers_at_once_each_run_their_own_watcher_loop', async () => {
      const body = `
        const ps = native.pollCreate();
        const efd = native.eventfdOpen();
        native.pollCtl(ps, native.layout.CTL_ADD, efd, native.layout.EV_READ, 1);
        let turns = 0;
        const buf = new ArrayBuffer(64);
        const w = native.watcherOpen(ps, 'poll', () => {
          native.pollWait(ps, buf, 0, 8, 0);
          native.consume(efd);
          if (++turns < 200) { native.wake(efd); native.watcherArm(w, -1); return; }
          native.watcherClose(w);
          native.close(efd);
          native.close(ps);
          parentPort.postMessage(turns);
        });
        native.watcherStart(w);
        native.watcherArm(w, -1);
        native.wake(efd);
      `;
      const results = await Promise.all([1, 2, 3].map(() => runWorker(body)));
      expect(results).toEqual([1, 2, 3].map(() => ({ messages: [200], code: 0 })));
    });
  });
});
