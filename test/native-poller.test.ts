// The native shim's poller and waker: epoll registration, ready records written
// into a wasm-like ArrayBuffer, level-triggered readiness, errnos, buffer bounds,
// and the eventfd waker. Every test closes what it opens; afterEach proves it.
import * as fs from 'node:fs';
import { constants } from 'node:os';
import { requireNative } from '../src/native';
import { guardFdCountPerTest } from './helpers';

const native = requireNative('test/native-poller');
const E = constants.errno;

/** Records fds for afterEach to close. */
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

/**
 * Runs `fn` and returns what it threw. Errors made by the shim come from Node's
 * main realm, not jest's, so `toThrow(TypeError)` cannot match them by class.
 */
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

/** Reads the ready records the way the core does: little-endian u32 pairs. */
function records(buf: ArrayBuffer, offset: number, count: number): Array<[number, number]> {
  const view = new DataView(buf);
  const out: Array<[number, number]> = [];
  for (let i = 0; i < count; i++) {
    const at = offset + i * native.layout.EVENT_SIZE;
    out.push([
      view.getUint32(at + native.layout.EVENT_TOKEN_OFFSET, true),
      view.getUint32(at + native.layout.EVENT_EVENTS_OFFSET, true),
    ]);
  }
  return out;
}

describe('native poller', () => {
  const { CTL_ADD, CTL_DEL, CTL_MOD, EV_READ, EV_WRITE, EV_ERROR, WAKER_TOKEN } = native.layout;
  guardFdCountPerTest(() => {
    for (const fd of toClose.splice(0)) expect(native.close(fd)).toBe(0);
  });

  test('epoll_round_trip_writes_token_and_events_at_the_offset', () => {
    const ep = track(native.epollCreate());
    const [r, w] = pipe();
    expect(native.epollCtl(ep, CTL_ADD, r, EV_READ, 0x12345)).toBe(0);
    const buf = new WebAssembly.Memory({ initial: 1 }).buffer;
    expect(native.epollWait(ep, buf, 64, 4, 0)).toBe(0);
    expect(native.write(w, new Uint8Array([1]))).toBe(1);
    expect(native.epollWait(ep, buf, 64, 4, 0)).toBe(1);
    expect(records(buf, 64, 1)).toEqual([[0x12345, EV_READ]]);
    // Nothing outside the record was touched.
    expect(new Uint8Array(buf, 0, 64).every((b) => b === 0)).toBe(true);
    expect(new Uint8Array(buf, 72, 64).every((b) => b === 0)).toBe(true);
  });

  test('epoll_token_carries_all_32_bits', () => {
    const ep = track(native.epollCreate());
    const [r, w] = pipe();
    expect(native.epollCtl(ep, CTL_ADD, r, EV_READ, WAKER_TOKEN)).toBe(0);
    native.write(w, new Uint8Array([1]));
    const buf = new ArrayBuffer(16);
    expect(native.epollWait(ep, buf, 0, 2, 0)).toBe(1);
    expect(records(buf, 0, 1)).toEqual([[0xffffffff, EV_READ]]);
  });

  test('epoll_is_level_triggered_until_drained', () => {
    const ep = track(native.epollCreate());
    const [r, w] = pipe();
    native.epollCtl(ep, CTL_ADD, r, EV_READ, 7);
    native.write(w, new Uint8Array([1, 2, 3]));
    const buf = new ArrayBuffer(64);
    for (let i = 0; i < 3; i++) expect(native.epollWait(ep, buf, 0, 8, 0)).toBe(1);
    expect(native.read(r, new Uint8Array(16))).toBe(3);
    expect(native.epollWait(ep, buf, 0, 8, 0)).toBe(0);
  });

  test('epoll_mod_changes_interest_and_token', () => {
    const ep = track(native.epollCreate());
    const [, w] = pipe();
    const buf = new ArrayBuffer(64);
    expect(native.epollCtl(ep, CTL_ADD, w, EV_READ, 1)).toBe(0);
    expect(native.epollWait(ep, buf, 0, 8, 0)).toBe(0);
    expect(native.epollCtl(ep, CTL_MOD, w, EV_WRITE, 2)).toBe(0);
    expect(native.epollWait(ep, buf, 0, 8, 0)).toBe(1);
    expect(records(buf, 0, 1)).toEqual([[2, EV_WRITE]]);
    expect(native.epollCtl(ep, CTL_DEL, w)).toBe(0);
    expect(native.epollWait(ep, buf, 0, 8, 0)).toBe(0);
  });

  test('epoll_reports_hangup_as_error_bits_without_asking', () => {
    const ep = track(native.epollCreate());
    const [r, w] = native.pipe() as [number, number];
    track(r);
    native.epollCtl(ep, CTL_ADD, r, EV_READ, 3);
    expect(native.close(w)).toBe(0);
    const buf = new ArrayBuffer(8);
    expect(native.epollWait(ep, buf, 0, 1, 0)).toBe(1);
    const [[token, events]] = records(buf, 0, 1);
    expect(token).toBe(3);
    expect(events & EV_ERROR).toBe(native.layout.EPOLLHUP);
  });

  test('epoll_errors_come_back_as_negative_errnos', () => {
    const ep = track(native.epollCreate());
    const [r] = pipe();
    expect(native.epollCtl(ep, CTL_ADD, r, EV_READ, 1)).toBe(0);
    expect(native.epollCtl(ep, CTL_ADD, r, EV_READ, 1)).toBe(-E.EEXIST);
    expect(native.epollCtl(ep, CTL_DEL, r)).toBe(0);
    expect(native.epollCtl(ep, CTL_MOD, r, EV_READ, 1)).toBe(-E.ENOENT);
    expect(native.epollCtl(ep, CTL_DEL, r)).toBe(-E.ENOENT);
    const closed = native.epollCreate();
    native.close(closed);
    expect(native.epollCtl(closed, CTL_ADD, r, EV_READ, 1)).toBe(-E.EBADF);
    expect(native.epollWait(closed, new ArrayBuffer(8), 0, 1, 0)).toBe(-E.EBADF);
    expect(native.close(closed)).toBe(-E.EBADF);
    // A regular file cannot be watched.
    const file = fs.openSync(__filename, 'r');
    try {
      expect(native.epollCtl(ep, CTL_ADD, file, EV_READ, 1)).toBe(-E.EPERM);
    } finally {
      fs.closeSync(file);
    }
  });

  test('epoll_wait_with_a_detached_buffer_throws_and_does_not_crash', () => {
    const ep = track(native.epollCreate());
    const [r, w] = pipe();
    native.epollCtl(ep, CTL_ADD, r, EV_READ, 1);
    native.write(w, new Uint8Array([1]));
    const buf = new ArrayBuffer(64);
    structuredClone(buf, { transfer: [buf] });
    expect(buf.byteLength).toBe(0);
    expectTypeError(() => native.epollWait(ep, buf, 0, 1, 0), /epollWait: buffer must not be detached/);
    // memory.grow detaches the old buffer the same way.
    const memory = new WebAssembly.Memory({ initial: 1 });
    const old = memory.buffer;
    memory.grow(1);
    expectTypeError(() => native.epollWait(ep, old, 0, 1, 0), /buffer must not be detached/);
    expect(native.epollWait(ep, memory.buffer, 65536, 1, 0)).toBe(1);
  });

  test('epoll_wait_out_of_range_offset_or_count_throws', () => {
    const ep = track(native.epollCreate());
    const buf = new ArrayBuffer(64);
    expectTypeError(() => native.epollWait(ep, buf, 64, 1, 0), /byteOffset \+ maxEvents \* 8 must be <= buffer.byteLength/);
    expectTypeError(() => native.epollWait(ep, buf, 57, 1, 0), /byteOffset \+ maxEvents \* 8 must be <= buffer.byteLength/);
    expectTypeError(() => native.epollWait(ep, buf, 0, 9, 0), /byteOffset \+ maxEvents \* 8 must be <= buffer.byteLength/);
    expectTypeError(() => native.epollWait(ep, buf, 2 ** 53 - 1, 1, 0), /byteOffset \+ maxEvents \* 8 must be <= buffer.byteLength/);
    expectTypeError(() => native.epollWait(ep, buf, -8, 1, 0), /byteOffset must be an integer >= 0/);
    expectTypeError(() => native.epollWait(ep, buf, 0, 0, 0), /maxEvents must be an integer >= 1/);
    expect(native.epollWait(ep, buf, 56, 1, 0)).toBe(0);
  });

  test('epoll_wait_accepts_a_typed_array_buffer_from_another_realm', () => {
    // Under jest, WebAssembly memory buffers come from another realm; the shim
    // checks the object, not instanceof.
    const ep = track(native.epollCreate());
    const vm = require('node:vm') as typeof import('node:vm');
    const foreign = vm.runInNewContext('new ArrayBuffer(16)') as ArrayBuffer;
    expect(foreign instanceof ArrayBuffer).toBe(false);
    expect(native.epollWait(ep, foreign, 0, 2, 0)).toBe(0);
  });

  test('epoll_wait_times_out_no_earlier_than_asked', () => {
    const ep = track(native.epollCreate());
    const buf = new ArrayBuffer(8);
    const start = process.hrtime.bigint();
    expect(native.epollWait(ep, buf, 0, 1, 20.2)).toBe(0);
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    expect(ms).toBeGreaterThanOrEqual(20.2);
    expect(ms).toBeLessThan(1000);
  });

  test('epoll_wait_accepts_max_events_above_its_1024_batch', () => {
    const ep = track(native.epollCreate());
    const buf = new ArrayBuffer(2000 * 8);
    const [, w] = pipe();
    native.epollCtl(ep, CTL_ADD, w, EV_WRITE, 1);
    expect(native.epollWait(ep, buf, 0, 2000, 0)).toBe(1);
  });

  test('wake_and_consume_coalesce_into_one_count', () => {
    const ep = track(native.epollCreate());
    const efd = track(native.eventfdOpen());
    native.epollCtl(ep, CTL_ADD, efd, EV_READ, WAKER_TOKEN);
    const buf = new ArrayBuffer(8);
    expect(native.consume(efd)).toBe(0);
    for (let i = 0; i < 5; i++) expect(native.wake(efd)).toBe(0);
    expect(native.epollWait(ep, buf, 0, 1, 0)).toBe(1);
    expect(records(buf, 0, 1)).toEqual([[WAKER_TOKEN, EV_READ]]);
    expect(native.consume(efd)).toBe(5);
    expect(native.consume(efd)).toBe(0);
    expect(native.epollWait(ep, buf, 0, 1, 0)).toBe(0);
  });

  test('wake_on_a_bad_fd_returns_ebadf', () => {
    const efd = native.eventfdOpen();
    native.close(efd);
    expect(native.wake(efd)).toBe(-E.EBADF);
    expect(native.consume(efd)).toBe(-E.EBADF);
  });

  test('counters_count_each_syscall', () => {
    const ep = track(native.epollCreate());
    const efd = track(native.eventfdOpen());
    const before = native.counters();
    native.epollCtl(ep, CTL_ADD, efd, EV_READ, 1);
    native.epollCtl(ep, CTL_MOD, efd, EV_READ, 2);
    native.wake(efd);
    const buf = new ArrayBuffer(8);
    native.epollWait(ep, buf, 0, 1, 0);
    native.epollWait(ep, buf, 0, 1, 0);
    native.epollWait(ep, buf, 0, 1, 0);
    const after = native.counters();
    expect(after.epollCtl - before.epollCtl).toBe(2);
    expect(after.wakes - before.wakes).toBe(1);
    expect(after.epollWait - before.epollWait).toBe(3);
  });

  test('created_fds_are_nonblocking_and_close_on_exec', () => {
    const ep = track(native.epollCreate());
    const efd = track(native.eventfdOpen());
    for (const fd of [ep, efd]) {
      const info = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
      const flags = parseInt(/flags:\s+(\d+)/.exec(info)![1], 8);
      expect(flags & 0o2000000).toBe(0o2000000); // O_CLOEXEC
    }
    const efdFlags = parseInt(/flags:\s+(\d+)/.exec(fs.readFileSync(`/proc/self/fdinfo/${efd}`, 'utf8'))![1], 8);
    expect(efdFlags & 0o4000).toBe(0o4000); // O_NONBLOCK
  });
});
