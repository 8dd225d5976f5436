// The guest driver: our epoll fd watched by Node's own libuv loop. Turns fire for
// readiness and for the armed timer, run as Node callbacks (ticks and microtasks
// right after), and a guest keeps Node alive exactly while it is started. What
// could take a process down runs in a child process. Every test closes what it
// opens; afterEach proves it against /proc/self/fd.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { requireNative, type GuestHandle } from '../src/native';
import { guardFdCountPerTest } from './helpers';

const native = requireNative('test/native-guest');
const ADDON = path.join(__dirname, '..', 'build', 'Release', 'wasm_ioloop.node');

function runChild(body: string, args: string[] = []): { status: number | null; signal: string | null; stdout: string; stderr: string; ms: number } {
  const script = `const native = require(${JSON.stringify(ADDON)});\n${body}`;
  const start = Date.now();
  const r = spawnSync(process.execPath, [...args, '-e', script], { encoding: 'utf8', timeout: 20000 });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - start };
}

/** An epoll fd with a pipe's read end registered, and a guest on it; all closed by `close`. */
class Fixture {
  readonly ep = native.epollCreate();
  readonly pipe = native.pipe() as [number, number];
  readonly turns: number[] = [];
  onTurn: (reason: number) => void = () => {};
  readonly guest: GuestHandle;

  constructor() {
    expect(native.epollCtl(this.ep, native.layout.CTL_ADD, this.pipe[0], native.layout.EV_READ, 1)).toBe(0);
    this.guest = native.guestOpen(this.ep, (reason) => {
      this.turns.push(reason);
      this.onTurn(reason);
    });
  }

  /** Drains the epoll fd (what a loop turn does), so a level-triggered poll goes quiet. */
  drain(): number {
    const n = native.epollWait(this.ep, new ArrayBuffer(64), 0, 8, 0);
    const buf = new Uint8Array(64);
    while (native.read(this.pipe[0], buf) > 0);
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
    native.guestClose(this.guest);
    native.close(this.pipe[0]);
    native.close(this.pipe[1]);
    native.close(this.ep);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('native guest driver', () => {
  let fixtures: Fixture[] = [];
  function fixture(): Fixture {
    const f = new Fixture();
    fixtures.push(f);
    return f;
  }
  guardFdCountPerTest(() => {
    for (const f of fixtures.splice(0)) f.close();
  });

  test('turn_1_fires_when_a_registered_pipe_becomes_readable', async () => {
    const f = fixture();
    native.guestStart(f.guest);
    const turn = f.nextTurn();
    native.write(f.pipe[1], Buffer.from('x'));
    expect(await turn).toBe(1);
    expect(f.drain()).toBe(1);
    native.guestStop(f.guest);
  });

  test('no_turn_while_stopped_even_if_ready', async () => {
    const f = fixture();
    native.write(f.pipe[1], Buffer.from('x'));
    await sleep(30);
    native.guestStart(f.guest);
    native.guestStop(f.guest);
    await sleep(30);
    expect(f.turns).toEqual([]);
  });

  test('turn_2_fires_when_the_armed_timer_expires_not_before', async () => {
    const f = fixture();
    native.guestStart(f.guest);
    const start = process.hrtime.bigint();
    const turn = f.nextTurn();
    native.guestArm(f.guest, 25);
    expect(await turn).toBe(2);
    expect(Number(process.hrtime.bigint() - start) / 1e6).toBeGreaterThanOrEqual(24);
    native.guestStop(f.guest);
  });

  test('arming_again_replaces_the_deadline_and_negative_disarms', async () => {
    const f = fixture();
    native.guestStart(f.guest);
    native.guestArm(f.guest, 10);
    native.guestArm(f.guest, -1);
    await sleep(40);
    expect(f.turns).toEqual([]);
    native.guestArm(f.guest, 1000);
    const turn = f.nextTurn();
    native.guestArm(f.guest, 5);
    expect(await turn).toBe(2);
    await sleep(20);
    expect(f.turns).toEqual([2]);
    native.guestStop(f.guest);
  });

  test('ticks_and_microtasks_scheduled_in_a_turn_run_before_the_next_macrotask', async () => {
    const f = fixture();
    const log: string[] = [];
    const done = new Promise<void>((resolve) => {
      f.onTurn = () => {
        f.onTurn = () => {};
        log.push('turn');
        setImmediate(() => {
          log.push('immediate');
          resolve();
        });
        setTimeout(() => log.push('timeout'), 0);
        void Promise.resolve().then(() => log.push('promise'));
        queueMicrotask(() => log.push('microtask'));
        process.nextTick(() => log.push('nextTick'));
        log.push('turn end');
      };
    });
    native.guestStart(f.guest);
    native.guestArm(f.guest, 0);
    await done;
    native.guestStop(f.guest);
    expect(log.slice(0, 5)).toEqual(['turn', 'turn end', 'nextTick', 'promise', 'microtask']);
    expect(log).toContain('immediate');
  });

  test('guest_close_is_idempotent_and_other_calls_then_throw', () => {
    const f = fixture();
    native.guestStart(f.guest);
    native.guestClose(f.guest);
    native.guestClose(f.guest);
    for (const call of [
      () => native.guestStart(f.guest),
      () => native.guestStop(f.guest),
      () => native.guestArm(f.guest, 1),
    ]) {
      let error: { name?: string; message?: string } = {};
      try {
        call();
      } catch (e) {
        error = e as typeof error;
      }
      expect(error.name).toBe('Error');
      expect(error.message).toMatch(/guest driver is closed/);
    }
  });

  test('guest_open_refuses_a_regular_file_and_a_closed_fd', () => {
    const file = fs.openSync(__filename, 'r');
    const errors: Array<{ code?: string }> = [];
    for (const fd of [file, 1_000_000]) {
      try {
        native.guestOpen(fd, () => {});
      } catch (e) {
        errors.push(e as { code?: string });
      }
    }
    fs.closeSync(file);
    expect(errors.map((e) => e.code)).toEqual(['EPERM', 'EBADF']);
  });

  test('a_second_started_guest_on_the_same_epoll_fd_is_refused', () => {
    const f = fixture();
    const second = native.guestOpen(f.ep, () => {});
    try {
      native.guestStart(f.guest);
      let error: { code?: string; message?: string } = {};
      try {
        native.guestStart(second);
      } catch (e) {
        error = e as typeof error;
      }
      expect(error.code).toBe('EEXIST');
      expect(error.message).toMatch(/guestStart: another started guest already watches epfd/);
      native.guestStop(f.guest);
      native.guestStart(second);
      native.guestStop(second);
    } finally {
      native.guestClose(second);
    }
  });

  test('closing_or_stopping_an_idle_guest_on_the_same_fd_keeps_the_started_one_turning', async () => {
    // libuv drops the fd from its epoll set when any poll handle on it stops or
    // closes; the started guest must be registered again.
    const f = fixture();
    const idle = native.guestOpen(f.ep, () => {});
    const stoppedIdle = native.guestOpen(f.ep, () => {});
    const other = native.guestOpen(f.ep, () => {});
    native.guestStart(f.guest);
    // One turn first, so that libuv has really added the fd to its epoll set.
    let turn = f.nextTurn();
    native.write(f.pipe[1], Buffer.from('x'));
    expect(await turn).toBe(1);
    f.drain();
    native.guestStop(stoppedIdle);
    native.guestClose(idle);
    turn = f.nextTurn();
    native.write(f.pipe[1], Buffer.from('x'));
    expect(await Promise.race([turn, sleep(2000).then(() => 'no turn')])).toBe(1);
    f.drain();
    native.guestClose(stoppedIdle);
    // Hand over: stop the first, start the other, close the first.
    native.guestStop(f.guest);
    const otherTurn = new Promise<number>((resolve) => {
      native.guestClose(other);
      const handover = native.guestOpen(f.ep, (reason) => {
        native.guestStop(handover);
        native.guestClose(handover);
        resolve(reason);
      });
      native.guestStart(handover);
      native.guestClose(f.guest);
      native.write(f.pipe[1], Buffer.from('y'));
    });
    expect(await otherTurn).toBe(1);
  });

  test('a_collected_idle_guest_on_the_same_fd_does_not_silence_the_started_one', () => {
    const r = runChild(
      `
      const ep = native.epollCreate();
      const [rd, wr] = native.pipe();
      native.epollCtl(ep, native.layout.CTL_ADD, rd, native.layout.EV_READ, 1);
      for (let i = 0; i < 20; i++) native.guestOpen(ep, () => {});
      const g = native.guestOpen(ep, () => {
        console.log('turn');
        native.guestClose(g);
        for (const fd of [rd, wr, ep]) native.close(fd);
      });
      native.guestStart(g);
      setImmediate(() => {
        globalThis.gc();
        setTimeout(() => native.write(wr, Buffer.from('x')), 20);
      });
      setTimeout(() => { console.log('no turn'); process.exit(3); }, 3000).unref();
    `,
      ['--expose-gc'],
    );
    expect(r).toMatchObject({ status: 0, signal: null, stdout: 'turn\n' });
  });

  test('arming_for_infinity_or_a_huge_timeout_never_fires', async () => {
    const f = fixture();
    native.guestStart(f.guest);
    native.guestArm(f.guest, Infinity);
    native.guestArm(f.guest, 1e300);
    await sleep(30);
    expect(f.turns).toEqual([]);
    native.guestStop(f.guest);
  });

  test('an_open_but_stopped_guest_lets_node_exit', () => {
    const r = runChild(`
      const ep = native.epollCreate();
      const g = native.guestOpen(ep, () => {});
      native.guestArm(g, 60000);
      globalThis.keep = g;
      console.log('opened');
    `);
    expect(r).toMatchObject({ status: 0, signal: null, stdout: 'opened\n' });
    expect(r.ms).toBeLessThan(10000);
  });

  test('a_started_guest_keeps_node_alive_until_guest_stop', () => {
    // The unreferenced timer alone would not keep the process alive: it fires only
    // because the started guest does; after guestStop the process exits.
    const r = runChild(`
      const ep = native.epollCreate();
      const g = native.guestOpen(ep, () => {});
      native.guestStart(g);
      const t0 = Date.now();
      setTimeout(() => {
        console.log('still alive after', Date.now() - t0 >= 290 ? '300ms' : 'less');
        native.guestStop(g);
      }, 300).unref();
    `);
    expect(r).toMatchObject({ status: 0, signal: null, stdout: 'still alive after 300ms\n' });
  });

  test('a_started_guest_with_an_armed_timer_exits_after_stop_too', () => {
    const r = runChild(`
      const ep = native.epollCreate();
      const g = native.guestOpen(ep, (reason) => {
        console.log('turn', reason);
        native.guestStop(g);
      });
      native.guestStart(g);
      native.guestArm(g, 20);
    `);
    expect(r).toMatchObject({ status: 0, signal: null, stdout: 'turn 2\n' });
  });

  test('an_exception_in_on_turn_goes_to_uncaught_exception', () => {
    const r = runChild(`
      const ep = native.epollCreate();
      const g = native.guestOpen(ep, () => { throw new Error('boom from onTurn'); });
      process.on('uncaughtException', (e) => {
        console.log('caught', e.message);
        native.guestClose(g);
        native.close(ep);
      });
      native.guestStart(g);
      native.guestArm(g, 1);
    `);
    expect(r).toMatchObject({ status: 0, signal: null, stdout: 'caught boom from onTurn\n' });
  });

  test('an_uncaught_exception_in_on_turn_exits_with_an_error_not_an_abort', () => {
    const r = runChild(`
      const ep = native.epollCreate();
      const g = native.guestOpen(ep, () => { throw new Error('boom from onTurn'); });
      native.guestStart(g);
      native.guestArm(g, 1);
    `);
    expect(r.signal).toBeNull();
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/boom from onTurn/);
  });

  test('closing_the_watched_epoll_fd_through_close_stops_the_guest', () => {
    const r = runChild(`
      const ep = native.epollCreate();
      const g = native.guestOpen(ep, () => {});
      native.guestStart(g);
      console.log(native.close(ep));
      try { native.guestStart(g); } catch (e) { console.log(e.code, e.message); }
      native.guestClose(g);
    `);
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^0\nEBADF guestStart: epfd \d+ is closed\n$/);
  });

  test('collected_guests_are_closed_and_started_ones_are_kept', () => {
    const r = runChild(
      `
      const ep = native.epollCreate();
      for (let i = 0; i < 100; i++) {
        const e = native.epollCreate();
        native.guestOpen(e, () => {});
        native.close(e);
      }
      const [rd, wr] = native.pipe();
      native.epollCtl(ep, native.layout.CTL_ADD, rd, native.layout.EV_READ, 1);
      let g = native.guestOpen(ep, (reason) => {
        console.log('turn', reason);
        native.guestStop(g2);
        native.close(rd); native.close(wr); native.close(ep);
      });
      const g2 = g;
      native.guestStart(g);
      g = null;
      setImmediate(() => {
        globalThis.gc();
        setImmediate(() => native.write(wr, Buffer.from('x')));
      });
    `,
      ['--expose-gc'],
    );
    expect(r).toMatchObject({ status: 0, signal: null, stdout: 'turn 1\n' });
  });

  test('a_guest_dropped_while_started_still_turns', () => {
    const r = runChild(
      `
      const ep = native.epollCreate();
      const [rd, wr] = native.pipe();
      native.epollCtl(ep, native.layout.CTL_ADD, rd, native.layout.EV_READ, 1);
      (() => {
        const g = native.guestOpen(ep, function (reason) {
          console.log('turn', reason);
          native.guestClose(this);
          native.close(rd); native.close(wr); native.close(ep);
        });
        native.guestStart(g);
      })();
      setImmediate(() => {
        globalThis.gc();
        setImmediate(() => { globalThis.gc(); native.write(wr, Buffer.from('x')); });
      });
    `,
      ['--expose-gc'],
    );
    expect(r).toMatchObject({ status: 0, signal: null, stdout: 'turn 1\n' });
  });
});
