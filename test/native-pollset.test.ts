// The native shim's poll(2) poller: the epoll poller's contract (test/native-poller)
// on a poll set: registration, ready records written into a wasm-like ArrayBuffer,
// level-triggered readiness, errnos, buffer bounds, the waker, and what is its own:
// the set's eventfd, descriptors closed while registered, fairness and teardown.
// Every test closes what it opens; afterEach proves it.
import { once } from 'node:events';
import * as fs from 'node:fs';
import { constants } from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { requireNative, type NativeShim } from '../src/native';
import { guardFdCountPerTest } from './helpers';

/** The poll set's functions, until src/native.ts declares them. */
interface PollShim {
  pollCreate(): number;
  pollCtl(pfd: number, op: number, fd: number, events?: number, token?: number): number;
  pollWait(pfd: number, buffer: ArrayBuffer, byteOffset: number, maxEvents: number, timeoutMs: number): number;
}

const native = requireNative('test/native-pollset') as NativeShim & PollShim;
const E = constants.errno;
const ADDON = path.join(__dirname, '..', 'build', 'Release', 'wasm_ioloop.node');

let toClose: number[] = [];
function track(fd: number): number {
  expect(fd).toBeGreaterThanOrEqual(0);
  toClose.push(fd);
  return fd;
}
function pipe(): [number, number] {
  const p = native.pipe();
  if (typeof p === 'number') throw new Error(`pipe failed: ${p}`);
  toClose.push(...p);
  return p;
}
/** A poll set that afterEach closes. */
function pollSet(): number {
  return track(native.pollCreate());
}

function thrown(fn: () => unknown): { name: string; message: string; code?: string } {
  try {
    fn();
  } catch (error) {
    return error as { name: string; message: string; code?: string };
  }
  throw new Error('expected a throw');
}
function expectTypeError(fn: () => unknown, message: RegExp): void {
  const error = thrown(fn);
  expect(error.name).toBe('TypeError');
  expect(error.message).toMatch(message);
}

function records(buf: ArrayBuffer, offset: number, count: number): Array<[number, number]> {
  const view = new DataView(buf);
  const out: Array<[number, number]> = [];
  for (let i = 0; i < count; i++) {
    const at = offset + i * native.layout.EVENT_SIZE;
    out.push([view.getUint32(at + native.layout.EVENT_TOKEN_OFFSET, true), view.getUint32(at + native.layout.EVENT_EVENTS_OFFSET, true)]);
  }
  return out;
}

/** The tokens of one pollWait(0), sorted. */
function readyTokens(pfd: number, max = 256): number[] {
  const buf = new ArrayBuffer(max * 8);
  const n = native.pollWait(pfd, buf, 0, max, 0);
  expect(n).toBeGreaterThanOrEqual(0);
  return records(buf, 0, n)
    .map(([token]) => token)
    .sort((a, b) => a - b);
}

describe('native poll set', () => {
  const { CTL_ADD, CTL_DEL, CTL_MOD, EV_READ, EV_WRITE, EV_ERROR, WAKER_TOKEN } = native.layout;
  guardFdCountPerTest(() => {
    for (const fd of toClose.splice(0)) native.close(fd);
  });

  test('poll_round_trip_writes_token_and_events_at_the_offset', () => {
    const ps = pollSet();
    const [r, w] = pipe();
    expect(native.pollCtl(ps, CTL_ADD, r, EV_READ, 0x12345)).toBe(0);
    const buf = new WebAssembly.Memory({ initial: 1 }).buffer;
    expect(native.pollWait(ps, buf, 64, 4, 0)).toBe(0);
    expect(native.write(w, new Uint8Array([1]))).toBe(1);
    expect(native.pollWait(ps, buf, 64, 4, 0)).toBe(1);
    expect(records(buf, 64, 1)).toEqual([[0x12345, EV_READ]]);
    expect(new Uint8Array(buf, 0, 64).every((b) => b === 0)).toBe(true);
    expect(new Uint8Array(buf, 72, 64).every((b) => b === 0)).toBe(true);
  });

  test('poll_token_carries_all_32_bits', () => {
    const ps = pollSet();
    const [r, w] = pipe();
    expect(native.pollCtl(ps, CTL_ADD, r, EV_READ, WAKER_TOKEN)).toBe(0);
    native.write(w, new Uint8Array([1]));
    const buf = new ArrayBuffer(16);
    expect(native.pollWait(ps, buf, 0, 2, 0)).toBe(1);
    expect(records(buf, 0, 1)).toEqual([[0xffffffff, EV_READ]]);
  });

  test('poll_is_level_triggered_until_drained', () => {
    const ps = pollSet();
    const [r, w] = pipe();
    native.pollCtl(ps, CTL_ADD, r, EV_READ, 7);
    native.write(w, new Uint8Array([1, 2, 3]));
    const buf = new ArrayBuffer(64);
    for (let i = 0; i < 3; i++) expect(native.pollWait(ps, buf, 0, 8, 0)).toBe(1);
    expect(native.read(r, new Uint8Array(16))).toBe(3);
    expect(native.pollWait(ps, buf, 0, 8, 0)).toBe(0);
  });

  test('poll_mod_changes_interest_and_token_and_del_stops_reports', () => {
    const ps = pollSet();
    const [, w] = pipe();
    const buf = new ArrayBuffer(64);
    expect(native.pollCtl(ps, CTL_ADD, w, EV_READ, 1)).toBe(0);
    expect(native.pollWait(ps, buf, 0, 8, 0)).toBe(0);
    expect(native.pollCtl(ps, CTL_MOD, w, EV_WRITE, 2)).toBe(0);
    expect(native.pollWait(ps, buf, 0, 8, 0)).toBe(1);
    expect(records(buf, 0, 1)).toEqual([[2, EV_WRITE]]);
    expect(native.pollCtl(ps, CTL_MOD, w, EV_READ | EV_WRITE, 3)).toBe(0);
    expect(native.pollWait(ps, buf, 0, 8, 0)).toBe(1);
    expect(records(buf, 0, 1)).toEqual([[3, EV_WRITE]]); // only what is ready and asked for
    expect(native.pollCtl(ps, CTL_DEL, w)).toBe(0);
    expect(native.pollWait(ps, buf, 0, 8, 0)).toBe(0);
  });

  test('poll_reports_hangup_as_error_bits_without_asking', () => {
    const ps = pollSet();
    const [r, w] = native.pipe() as [number, number];
    track(r);
    native.pollCtl(ps, CTL_ADD, r, EV_READ, 3);
    expect(native.close(w)).toBe(0);
    const buf = new ArrayBuffer(8);
    expect(native.pollWait(ps, buf, 0, 1, 0)).toBe(1);
    const [[token, events]] = records(buf, 0, 1);
    expect(token).toBe(3);
    expect(events & EV_ERROR).toBe(native.layout.POLLHUP);
    // Interest in nothing still hears of the hang-up, as with epoll.
    expect(native.pollCtl(ps, CTL_MOD, r, 0, 4)).toBe(0);
    expect(native.pollWait(ps, buf, 0, 1, 0)).toBe(1);
    expect(records(buf, 0, 1)).toEqual([[4, native.layout.POLLHUP]]);
  });

  test('poll_errors_come_back_as_the_errnos_epoll_gives', () => {
    const ps = pollSet();
    const [r] = pipe();
    expect(native.pollCtl(ps, CTL_ADD, r, EV_READ, 1)).toBe(0);
    expect(native.pollCtl(ps, CTL_ADD, r, EV_READ, 1)).toBe(-E.EEXIST);
    expect(native.pollCtl(ps, CTL_DEL, r)).toBe(0);
    expect(native.pollCtl(ps, CTL_MOD, r, EV_READ, 1)).toBe(-E.ENOENT);
    expect(native.pollCtl(ps, CTL_DEL, r)).toBe(-E.ENOENT);
    // A closed fd.
    const [a, b] = native.pipe() as [number, number];
    native.close(a);
    native.close(b);
    expect(native.pollCtl(ps, CTL_ADD, a, EV_READ, 1)).toBe(-E.EBADF);
    expect(native.pollCtl(ps, CTL_MOD, a, EV_READ, 1)).toBe(-E.EBADF);
    expect(native.pollCtl(ps, CTL_DEL, a)).toBe(-E.EBADF);
    // The set itself cannot be registered in itself, as an epoll fd cannot.
    expect(native.pollCtl(ps, CTL_ADD, ps, EV_READ, 1)).toBe(-E.EINVAL);
    // A closed set.
    const closed = native.pollCreate();
    expect(native.close(closed)).toBe(0);
    expect(native.pollCtl(closed, CTL_ADD, r, EV_READ, 1)).toBe(-E.EBADF);
    expect(native.pollWait(closed, new ArrayBuffer(8), 0, 1, 0)).toBe(-E.EBADF);
    expect(native.close(closed)).toBe(-E.EBADF);
    // An open fd that is not a set: EINVAL, as epoll_ctl says of a non-epoll epfd.
    const ep = track(native.epollCreate());
    const efd = track(native.eventfdOpen());
    for (const notASet of [ep, efd, r]) {
      expect(native.pollCtl(notASet, CTL_ADD, r, EV_READ, 1)).toBe(-E.EINVAL);
      expect(native.pollWait(notASet, new ArrayBuffer(8), 0, 1, 0)).toBe(-E.EINVAL);
    }
  });

  test('a_regular_file_is_accepted_and_always_ready_as_poll_reports_it', () => {
    const ps = pollSet();
    const file = fs.openSync(__filename, 'r');
    try {
      expect(native.pollCtl(ps, CTL_ADD, file, EV_READ | EV_WRITE, 9)).toBe(0);
      const buf = new ArrayBuffer(8);
      expect(native.pollWait(ps, buf, 0, 1, 0)).toBe(1);
      expect(records(buf, 0, 1)).toEqual([[9, EV_READ | EV_WRITE]]);
      expect(native.pollCtl(ps, CTL_DEL, file)).toBe(0);
    } finally {
      fs.closeSync(file);
    }
  });

  test('a_descriptor_closed_behind_the_shims_back_is_dropped_silently_without_spinning', () => {
    const ps = pollSet();
    const [r, w] = native.pipe() as [number, number];
    track(w);
    native.pollCtl(ps, CTL_ADD, r, EV_READ, 5);
    native.write(w, new Uint8Array([1]));
    expect(readyTokens(ps)).toEqual([5]);
    fs.closeSync(r); // not through the shim: poll(2) reports POLLNVAL
    const buf = new ArrayBuffer(64);
    const start = process.hrtime.bigint();
    expect(native.pollWait(ps, buf, 0, 8, 30)).toBe(0); // dropped, not reported...
    expect(native.pollWait(ps, buf, 0, 8, 30)).toBe(0); // ...and gone: the wait is a real wait
    expect(Number(process.hrtime.bigint() - start) / 1e6).toBeGreaterThanOrEqual(30);
    // It is no longer registered: a new pipe that gets the number is not watched.
    const [r2, w2] = pipe();
    expect(r2).toBe(r);
    native.write(w2, new Uint8Array([1]));
    expect(native.pollWait(ps, buf, 0, 8, 0)).toBe(0);
    expect(native.pollCtl(ps, CTL_DEL, r2)).toBe(-E.ENOENT);
  });

  test('closing_a_registered_descriptor_through_the_shim_unregisters_it_as_epoll_does', () => {
    const ps = pollSet();
    const [keepR, keepW] = pipe();
    const [r, w] = native.pipe() as [number, number];
    track(w);
    native.pollCtl(ps, CTL_ADD, r, EV_READ, 1);
    native.pollCtl(ps, CTL_ADD, keepR, EV_READ, 2);
    native.write(keepW, new Uint8Array([1]));
    expect(native.close(r)).toBe(0);
    expect(native.pollCtl(ps, CTL_DEL, r)).toBe(-E.EBADF);
    // A new descriptor with the same number starts unregistered.
    const [r2, w2] = pipe();
    expect(r2).toBe(r);
    native.write(w2, new Uint8Array([1]));
    expect(readyTokens(ps)).toEqual([2]);
    expect(native.pollCtl(ps, CTL_ADD, r2, EV_READ, 3)).toBe(0);
    expect(readyTokens(ps)).toEqual([2, 3]);
  });

  test('poll_wait_with_a_detached_buffer_throws_and_does_not_crash', () => {
    const ps = pollSet();
    const [r, w] = pipe();
    native.pollCtl(ps, CTL_ADD, r, EV_READ, 1);
    native.write(w, new Uint8Array([1]));
    const buf = new ArrayBuffer(64);
    structuredClone(buf, { transfer: [buf] });
    expectTypeError(() => native.pollWait(ps, buf, 0, 1, 0), /pollWait: buffer must not be detached/);
    const memory = new WebAssembly.Memory({ initial: 1 });
    const old = memory.buffer;
    memory.grow(1);
    expectTypeError(() => native.pollWait(ps, old, 0, 1, 0), /buffer must not be detached/);
    expect(native.pollWait(ps, memory.buffer, 65536, 1, 0)).toBe(1);
  });

  test('poll_wait_and_ctl_misuse_throws_type_errors_naming_the_rule', () => {
    const ps = pollSet();
    const [r] = pipe();
    const buf = new ArrayBuffer(64);
    expectTypeError(() => native.pollWait(ps, buf, 64, 1, 0), /^pollWait: byteOffset \+ maxEvents \* 8 must be <= buffer.byteLength \(got byteOffset 64, maxEvents 1, byteLength 64\)$/);
    expectTypeError(() => native.pollWait(ps, buf, 0, 9, 0), /byteOffset \+ maxEvents \* 8 must be <= buffer.byteLength/);
    expectTypeError(() => native.pollWait(ps, buf, -8, 1, 0), /^pollWait: byteOffset must be an integer >= 0 \(got -8\)$/);
    expectTypeError(() => native.pollWait(ps, buf, 0, 0, 0), /^pollWait: maxEvents must be an integer >= 1 \(got 0\)$/);
    expectTypeError(() => native.pollWait(ps, buf, 0, 1, NaN), /^pollWait: timeoutMs must be a number \(< 0 waits forever\) \(got NaN\)$/);
    expectTypeError(() => native.pollWait(ps, new Uint8Array(8) as unknown as ArrayBuffer, 0, 1, 0), /^pollWait: buffer must be an ArrayBuffer \(got object\)$/);
    expectTypeError(() => native.pollWait(-1, buf, 0, 1, 0), /^pollWait: pfd must be an integer >= 0 \(got -1\)$/);
    expectTypeError(() => native.pollCtl(ps, 4, r, EV_READ, 0), /^pollCtl: op must be CTL_ADD \(1\), CTL_DEL \(2\) or CTL_MOD \(3\) \(got 4\)$/);
    expectTypeError(() => native.pollCtl(ps, CTL_ADD, r, 2, 0), /^pollCtl: events must be an integer made of EV_READ, EV_WRITE and EV_ERROR bits \(got 2\)$/);
    expectTypeError(() => native.pollCtl(ps, CTL_ADD, r, EV_READ), /^pollCtl: token must be an integer in \[0, 2\*\*32 - 1\] \(got undefined\)$/);
    expectTypeError(() => native.pollCtl(ps, CTL_ADD, 1.5, EV_READ, 0), /^pollCtl: fd must be an integer >= 0 \(got 1.5\)$/);
    expectTypeError(() => native.pollCtl('3' as unknown as number, CTL_ADD, r, EV_READ, 0), /^pollCtl: pfd must be an integer >= 0 \(got string\)$/);
    expect(native.pollWait(ps, buf, 56, 1, 0)).toBe(0);
  });

  test('poll_wait_times_out_no_earlier_than_asked_rounding_up', () => {
    const ps = pollSet();
    const buf = new ArrayBuffer(8);
    for (const ms of [20.2, 1]) {
      const start = process.hrtime.bigint();
      expect(native.pollWait(ps, buf, 0, 1, ms)).toBe(0);
      const took = Number(process.hrtime.bigint() - start) / 1e6;
      expect(took).toBeGreaterThanOrEqual(ms);
      expect(took).toBeLessThan(1000);
    }
  });

  test('wake_and_consume_on_a_waker_registered_with_the_waker_token', () => {
    const ps = pollSet();
    const efd = track(native.eventfdOpen());
    native.pollCtl(ps, CTL_ADD, efd, EV_READ, WAKER_TOKEN);
    const buf = new ArrayBuffer(8);
    expect(native.pollWait(ps, buf, 0, 1, 0)).toBe(0);
    for (let i = 0; i < 5; i++) expect(native.wake(efd)).toBe(0);
    expect(native.pollWait(ps, buf, 0, 1, 0)).toBe(1);
    expect(records(buf, 0, 1)).toEqual([[WAKER_TOKEN, EV_READ]]);
    expect(native.consume(efd)).toBe(5);
    expect(native.pollWait(ps, buf, 0, 1, 0)).toBe(0);
  });

  test('the_sets_own_eventfd_interrupts_a_wait_and_is_never_reported', async () => {
    const ps = pollSet();
    const buf = new ArrayBuffer(64);
    expect(native.wake(ps)).toBe(0);
    expect(native.pollWait(ps, buf, 0, 8, 5000)).toBe(0); // returns at once, no record
    // Drained: the next wait is a real wait.
    const start = process.hrtime.bigint();
    expect(native.pollWait(ps, buf, 0, 8, 20)).toBe(0);
    expect(Number(process.hrtime.bigint() - start) / 1e6).toBeGreaterThanOrEqual(20);
    // From another thread, while this one is blocked in pollWait.
    const worker = new Worker(
      `const { workerData } = require('node:worker_threads');
       const native = require(workerData.addon);
       setTimeout(() => native.wake(workerData.ps), 50);`,
      { eval: true, workerData: { addon: ADDON, ps } },
    );
    const exited = once(worker, 'exit');
    await once(worker, 'online');
    const t0 = process.hrtime.bigint();
    expect(native.pollWait(ps, buf, 0, 8, 10000)).toBe(0);
    expect(Number(process.hrtime.bigint() - t0) / 1e6).toBeLessThan(5000);
    await exited;
  });

  test('many_registrations_keep_their_tokens_through_removals_in_the_middle', () => {
    const ps = pollSet();
    const writers: number[] = [];
    for (let i = 0; i < 100; i++) {
      const [, w] = pipe();
      writers.push(w);
      expect(native.pollCtl(ps, CTL_ADD, w, EV_WRITE, 1000 + i)).toBe(0);
    }
    expect(readyTokens(ps)).toEqual(writers.map((_, i) => 1000 + i));
    // Remove every third one (each removal moves the last entry into the hole).
    const kept: number[] = [];
    writers.forEach((w, i) => {
      if (i % 3 === 0) expect(native.pollCtl(ps, CTL_DEL, w)).toBe(0);
      else kept.push(1000 + i);
    });
    expect(readyTokens(ps)).toEqual(kept);
    // MOD after the moves still finds the right entry.
    expect(native.pollCtl(ps, CTL_MOD, writers[1], EV_READ, 1)).toBe(0);
    expect(readyTokens(ps)).toEqual(kept.filter((t) => t !== 1001));
  });

  test('more_ready_than_max_events_rotates_so_no_descriptor_starves', () => {
    const ps = pollSet();
    for (let i = 0; i < 5; i++) {
      const [, w] = pipe();
      native.pollCtl(ps, CTL_ADD, w, EV_WRITE, i);
    }
    const seen: number[] = [];
    const buf = new ArrayBuffer(16);
    for (let call = 0; call < 5; call++) {
      expect(native.pollWait(ps, buf, 0, 2, 0)).toBe(2);
      seen.push(...records(buf, 0, 2).map(([t]) => t));
    }
    // 10 records over 5 always-ready descriptors: each reported exactly twice.
    expect(seen.sort()).toEqual([0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
  });

  test('at_most_1024_records_per_call_and_the_rest_next_time', () => {
    const ps = pollSet();
    const n = 1100;
    const efds: number[] = [];
    for (let i = 0; i < n; i++) {
      const efd = track(native.eventfdOpen());
      efds.push(efd);
      native.pollCtl(ps, CTL_ADD, efd, EV_WRITE, i);
    }
    const buf = new ArrayBuffer(2000 * 8);
    expect(native.pollWait(ps, buf, 0, 2000, 0)).toBe(1024);
    const first = new Set(records(buf, 0, 1024).map(([t]) => t));
    expect(first.size).toBe(1024);
    expect(native.pollWait(ps, buf, 0, 2000, 0)).toBe(1024);
    const second = records(buf, 0, 1024).map(([t]) => t);
    // The second call starts with the 76 the first one left out.
    const missed = [...Array(n).keys()].filter((t) => !first.has(t));
    expect(missed.length).toBe(76);
    expect(second.slice(0, 76).sort((a, b) => a - b)).toEqual(missed);
  });

  test('close_frees_the_set_and_its_eventfd', () => {
    const before = fs.readdirSync('/proc/self/fd').length;
    const ps = native.pollCreate();
    expect(ps).toBeGreaterThanOrEqual(0);
    expect(fs.readlinkSync(`/proc/self/fd/${ps}`)).toBe('anon_inode:[eventfd]');
    const info = fs.readFileSync(`/proc/self/fdinfo/${ps}`, 'utf8');
    expect(parseInt(/flags:\s+(\d+)/.exec(info)![1], 8) & 0o2004000).toBe(0o2004000); // O_CLOEXEC | O_NONBLOCK
    const [r] = pipe();
    native.pollCtl(ps, CTL_ADD, r, EV_READ, 1);
    expect(native.close(ps)).toBe(0);
    expect(native.pollCtl(ps, CTL_DEL, r)).toBe(-E.EBADF);
    expect(fs.readdirSync('/proc/self/fd').length).toBe(before + 2); // the pipe only
  });

  test('a_worker_that_ends_with_poll_sets_open_has_them_closed', async () => {
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const native = require(workerData);
       const sets = [native.pollCreate(), native.pollCreate()];
       const [r, w] = native.pipe();
       native.pollCtl(sets[0], native.layout.CTL_ADD, r, native.layout.EV_READ, 1);
       native.close(r); native.close(w);
       parentPort.postMessage(sets);`,
      { eval: true, workerData: ADDON },
    );
    // Both listeners first: a worker that exits with a message still queued
    // emits 'message' and 'exit' back to back.
    const exited = once(worker, 'exit');
    const [sets] = (await once(worker, 'message')) as [number[]];
    expect(await exited).toEqual([0]);
    const open = fs.readdirSync('/proc/self/fd');
    for (const fd of sets) expect(open).not.toContain(String(fd));
  });
});
