// The WASI build's poller (assembly/poller-wasi.ts) over a scripted preview1 host:
// the subscriptions it builds from the handler table, how it turns the host's events
// into ready records (both events of an fd in one record), its relative timeouts
// in whole milliseconds, the wait again when the host's timer ends early, and the
// descriptor calls it passes through.
import * as os from 'node:os';
import { instantiateWasiCore, type CoreExports } from '../src/core';

const E = os.constants.errno;
const READ = 0x001;
const WRITE = 0x004;
const ERR = 0x008;
const HUP = 0x010;

type Sub = { userdata: bigint; type: 'clock' | 'read' | 'write'; fd?: number; clock?: { id: number; timeout: bigint; precision: bigint; flags: number } };
type Ev = { userdata: bigint; type: 'clock' | 'read' | 'write'; error?: number; hangup?: boolean };

/** A preview1 host whose poll_oneoff answers with `onPoll`, on a clock the test moves. */
function scripted() {
  let memory: WebAssembly.Memory | null = null;
  const host = {
    clockNs: 1_000_000_000n,
    polls: [] as Sub[][],
    onPoll: (subs: Sub[]): Ev[] => [{ userdata: subs[0]!.userdata, type: 'clock' }],
    fdRead: (_fd: number, _ptr: number, _len: number): number | [number, number] => 0,
    iovecs: [] as { fd: number; ptr: number; len: number }[],
  };
  const view = () => new DataView(memory!.buffer);
  const TYPES = ['clock', 'read', 'write'] as const;
  const wasiImport = {
    poll_oneoff(inPtr: number, outPtr: number, n: number, neventsPtr: number): number {
      const v = view();
      const subs: Sub[] = [];
      for (let i = 0; i < n; i++) {
        const p = inPtr + i * 48;
        const type = TYPES[v.getUint8(p + 8)]!;
        const sub: Sub = { userdata: v.getBigUint64(p, true), type };
        if (type === 'clock') {
          sub.clock = { id: v.getUint32(p + 16, true), timeout: v.getBigUint64(p + 24, true), precision: v.getBigUint64(p + 32, true), flags: v.getUint16(p + 40, true) };
        } else sub.fd = v.getUint32(p + 16, true);
        subs.push(sub);
      }
      host.polls.push(subs);
      const events = host.onPoll(subs);
      events.forEach((e, i) => {
        const p = outPtr + i * 32;
        for (let b = 0; b < 32; b++) v.setUint8(p + b, 0);
        v.setBigUint64(p, e.userdata, true);
        v.setUint16(p + 8, e.error ?? 0, true);
        v.setUint8(p + 10, TYPES.indexOf(e.type));
        v.setUint16(p + 24, e.hangup ? 1 : 0, true);
      });
      v.setUint32(neventsPtr, events.length, true);
      return 0;
    },
    clock_time_get(id: number, _precision: bigint, ptr: number): number {
      if (id !== 1) return 28; // EINVAL: only the monotonic clock is asked for
      view().setBigUint64(ptr, host.clockNs, true);
      return 0;
    },
    fd_read(fd: number, iovs: number, iovsLen: number, nread: number): number {
      const v = view();
      const ptr = v.getUint32(iovs, true);
      const len = v.getUint32(iovs + 4, true);
      host.iovecs.push({ fd, ptr, len });
      expect(iovsLen).toBe(1);
      const r = host.fdRead(fd, ptr, len);
      if (Array.isArray(r)) return r[1];
      v.setUint32(nread, r, true);
      return 0;
    },
    fd_write: (_fd: number, iovs: number, _n: number, nwritten: number): number => {
      view().setUint32(nwritten, view().getUint32(iovs + 4, true), true);
      return 0;
    },
    fd_close: (fd: number): number => (fd === 99 ? 8 : 0),
    sock_accept: (_fd: number, flags: number, ptr: number): number => {
      if (flags !== 4) return 28;
      view().setUint32(ptr, 42, true);
      return 0;
    },
    sock_recv: () => 6,
    sock_send: () => 64,
    sock_shutdown: () => 53,
  };
  const w = instantiateWasiCore({ wasiImport, initialize: (i) => (memory = i.exports.memory as WebAssembly.Memory) });
  const core = w.exports;
  expect(core.loop_init()).toBe(0);
  return { host, core };
}

/** Every ready record of the last poll, as [slot, events]. */
function drain(core: CoreExports): [number, number][] {
  const out: [number, number][] = [];
  for (let e; (e = core.event_next()) !== -1; ) out.push([e >> 8, e & 0xff]);
  return out;
}

const fds = (subs: Sub[]) => subs.slice(1).map((s) => `${s.type} ${s.fd} #${s.userdata}`);

test('subscriptions come from the handler table: a clock first, then per fd WRITE before READ; NONE is not subscribed', () => {
  const { host, core } = scripted();
  const s5 = core.handler_add(5, READ);
  const s6 = core.handler_add(6, WRITE);
  const s7 = core.handler_add(7, READ | WRITE);
  expect(core.handler_add(8, 0)).toBeGreaterThanOrEqual(0);
  expect([s5, s6, s7]).toEqual([0, 1, 2]);
  expect(core.poll(0)).toBe(0);
  const subs = host.polls[0]!;
  expect(subs[0]).toEqual({ userdata: 0xffffffffffffffffn, type: 'clock', clock: { id: 1, timeout: 0n, precision: 0n, flags: 0 } });
  expect(fds(subs)).toEqual(['read 5 #0', 'write 6 #1', 'write 7 #2', 'read 7 #2']);

  core.handler_remove(6);
  core.handler_update(5, WRITE);
  core.poll(0);
  expect(fds(host.polls[1]!)).toEqual(['write 5 #0', 'write 7 #1', 'read 7 #1']);
  // Unchanged table: the same subscriptions, not rebuilt.
  core.poll(0);
  expect(host.polls[2]).toEqual(host.polls[1]);
});

test("both events of one fd make one record; hangup and error are EPOLLHUP and EPOLLERR; the host's order is kept", () => {
  const { host, core } = scripted();
  const s5 = core.handler_add(5, READ);
  const s6 = core.handler_add(6, WRITE);
  const s7 = core.handler_add(7, READ | WRITE);
  host.onPoll = (subs) => {
    const ud = (fd: number, type: string) => subs.find((s) => s.fd === fd && s.type === type)!.userdata;
    return [
      { userdata: ud(7, 'read'), type: 'read' },
      { userdata: ud(5, 'read'), type: 'read', hangup: true },
      { userdata: ud(6, 'write'), type: 'write', error: 8 },
      { userdata: ud(7, 'write'), type: 'write' },
      { userdata: 12345n, type: 'read' }, // names no entry: dropped
    ];
  };
  expect(core.poll(0)).toBe(3);
  expect(drain(core)).toEqual([[s7, READ | WRITE], [s5, READ | HUP], [s6, WRITE | ERR]]);
});

test('a poll returns at most READY_CAPACITY records; the rest are reported by the next one', () => {
  const { host, core } = scripted();
  for (let fd = 3; fd < 3 + 1100; fd++) core.handler_add(fd, READ);
  host.onPoll = (subs) => subs.slice(1).map((s) => ({ userdata: s.userdata, type: 'read' }));
  expect(core.poll(0)).toBe(1024);
  expect(drain(core)).toHaveLength(1024);
});

test('timeouts are relative clock subscriptions in whole ms on the monotonic clock; -1 is the longest poll', () => {
  const { host, core } = scripted();
  core.handler_add(5, READ);
  host.onPoll = (subs) => {
    host.clockNs += subs[0]!.clock!.timeout;
    return [{ userdata: subs[0]!.userdata, type: 'clock' }];
  };
  core.poll(7);
  core.poll(-1);
  expect(host.polls.map((s) => s[0]!.clock)).toEqual([
    { id: 1, timeout: 7_000_000n, precision: 0n, flags: 0 },
    { id: 1, timeout: 3_600_000_000_000n, precision: 0n, flags: 0 },
  ]);
});

test('a timer that ends early with nothing ready is asked again for the rest, rounded up to a whole ms', () => {
  const { host, core } = scripted();
  core.handler_add(5, READ);
  // The host's timer ends 1.5 ms early (1.5 ms left: 2 ms more), then 1.9 ms early
  // (1.4 ms left: 2 ms more), then on time.
  const early = [1_500_000n, 1_900_000n, 0n];
  host.onPoll = (subs) => {
    host.clockNs += subs[0]!.clock!.timeout - early.shift()!;
    return [{ userdata: subs[0]!.userdata, type: 'clock' }];
  };
  const start = host.clockNs;
  expect(core.poll(10)).toBe(0);
  expect(host.polls.map((s) => s[0]!.clock!.timeout)).toEqual([10_000_000n, 2_000_000n, 2_000_000n]);
  expect(host.clockNs - start).toBeGreaterThanOrEqual(10_000_000n);
  // With no handler at all the poll still waits: a clock subscription alone.
  const { host: h2, core: c2 } = scripted();
  h2.onPoll = (subs) => {
    h2.clockNs += subs[0]!.clock!.timeout;
    return [{ userdata: subs[0]!.userdata, type: 'clock' }];
  };
  expect(c2.poll(3)).toBe(0);
  expect(h2.polls).toEqual([[{ userdata: 0xffffffffffffffffn, type: 'clock', clock: { id: 1, timeout: 3_000_000n, precision: 0n, flags: 0 } }]]);
});

test('an fd the host calls EBADF is refused; any other answer to the probe is not', () => {
  const { host, core } = scripted();
  host.fdRead = (fd) => (fd === 9 ? [0, 8] : fd === 10 ? [0, 76] : 0);
  expect(core.handler_add(9, READ)).toBe(-E.EBADF);
  expect(core.handler_add(10, READ)).toBeGreaterThanOrEqual(0); // ENOTCAPABLE: not readable, but there
  expect(core.handler_add(11, READ)).toBeGreaterThanOrEqual(0);
  // The probe reads nothing.
  expect(host.iovecs.map((i) => i.len)).toEqual([0, 0, 0]);
  expect(core.handler_count()).toBe(2);
});

test('no waker, no poller fd; a closed poller refuses to poll', () => {
  const { core } = scripted();
  expect(core.waker_add(5)).toBe(-E.ENOSYS);
  expect(core.loop_fd()).toBe(-1);
  expect(core.loop_close()).toBe(0);
  expect(core.loop_close()).toBe(0);
  expect(core.poll(0)).toBe(-E.EBADF);
  expect(core.handler_add(5, READ)).toBe(-E.EBADF);
  expect(core.loop_init()).toBe(0);
  expect(core.poll(0)).toBe(0);
});

test('the descriptor calls pass through, with Linux errno numbers', () => {
  const { host, core } = scripted();
  const ptr = core.sys_buffer(100);
  expect(ptr).toBeGreaterThan(0);
  host.fdRead = (_fd, p, len) => {
    expect(p).toBe(ptr);
    return Math.min(len, 7);
  };
  expect(core.sys_read(4, ptr, 100)).toBe(7);
  host.fdRead = () => [0, 6];
  expect(core.sys_read(4, ptr, 100)).toBe(-E.EAGAIN);
  expect(core.sys_write(4, ptr, 33)).toBe(33);
  expect(core.sys_close(4)).toBe(0);
  expect(core.sys_close(99)).toBe(-E.EBADF);
  expect(core.sys_accept(3)).toBe(42);
  expect(core.sys_recv(3, ptr, 10)).toBe(-E.EAGAIN);
  expect(core.sys_send(3, ptr, 10)).toBe(-E.EPIPE);
  expect(core.sys_shutdown(3, 2)).toBe(-E.ENOTCONN);
  // A larger buffer may move; the old contents need not be kept.
  expect(core.sys_buffer(1 << 20)).toBeGreaterThan(0);
  expect(core.clock_now()).toBe(1);
});

test('an fd closed through sys_close while registered is no longer subscribed, until it is registered again', () => {
  const { host, core } = scripted();
  core.handler_add(5, READ);
  core.handler_add(6, READ);
  core.poll(0);
  expect(fds(host.polls.at(-1)!)).toEqual(['read 5 #0', 'read 6 #1']);
  expect(core.sys_close(5)).toBe(0);
  core.poll(0);
  expect(fds(host.polls.at(-1)!)).toEqual(['read 6 #0']);
  // A close the host refuses changes nothing.
  expect(core.sys_close(99)).toBe(-E.EBADF);
  // The registration is still the table's until removed; the number may come back.
  expect(core.handler_count()).toBe(2);
  core.handler_remove(5);
  core.handler_add(5, WRITE);
  core.poll(0);
  expect(fds(host.polls.at(-1)!)).toEqual(['write 5 #0', 'read 6 #1']);
});
