// The native shim's raw system calls: pipes, socketpairs and TCP, all nonblocking,
// returning -errno instead of throwing. Every test closes what it opens; afterEach
// proves it against /proc/self/fd.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { constants } from 'node:os';
import * as path from 'node:path';
import { requireNative } from '../src/native';
import { guardFdCountPerTest } from './helpers';

const native = requireNative('test/native-sys');
const E = constants.errno;
const ADDON = path.join(__dirname, '..', 'build', 'Release', 'wasm_ioloop.node');

let toClose: number[] = [];
function track(fd: number): number {
  expect(fd).toBeGreaterThanOrEqual(0);
  toClose.push(fd);
  return fd;
}
function pair(r: [number, number] | number): [number, number] {
  if (typeof r === 'number') throw new Error(`failed: ${r}`);
  toClose.push(...r);
  return r;
}

/** Waits (in epoll, never spinning) until `fd` reports one of `events`; returns what it reported. */
function waitFor(fd: number, events: number, timeoutMs = 2000): number {
  const { CTL_ADD, EV_ERROR } = native.layout;
  const ep = native.epollCreate();
  try {
    expect(native.epollCtl(ep, CTL_ADD, fd, events, 1)).toBe(0);
    const buf = new ArrayBuffer(8);
    const n = native.epollWait(ep, buf, 0, 1, timeoutMs);
    if (n !== 1) throw new Error(`fd ${fd} not ready after ${timeoutMs} ms (${n})`);
    return new DataView(buf).getUint32(4, true) & (events | EV_ERROR);
  } finally {
    native.close(ep);
  }
}

function text(view: Uint8Array, n: number): string {
  return Buffer.from(view.buffer, view.byteOffset, n).toString();
}

/** Runs a script that loads the shim in a fresh node process. */
function runChild(body: string): { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string } {
  const script = `const native = require(${JSON.stringify(ADDON)});\n${body}`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20000 });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

describe('native sys calls', () => {
  guardFdCountPerTest(() => {
    for (const fd of toClose.splice(0)) expect(native.close(fd)).toBe(0);
  });

  test('pipe_write_then_read_round_trips_bytes', () => {
    const [r, w] = pair(native.pipe());
    expect(native.write(w, Buffer.from('hello'))).toBe(5);
    const into = new Uint8Array(16);
    expect(native.read(r, into)).toBe(5);
    expect(text(into, 5)).toBe('hello');
  });

  test('read_and_write_honour_the_views_offset_and_length', () => {
    const [r, w] = pair(native.pipe());
    const backing = new Uint8Array([0, 0, 65, 66, 67, 68, 0, 0]);
    expect(native.write(w, backing.subarray(2, 5))).toBe(3); // "ABC"
    expect(native.write(w, new DataView(backing.buffer, 5, 1))).toBe(1); // "D"
    expect(native.write(w, new Uint16Array([0x4645]))).toBe(2); // "EF" on little-endian
    const into = new Uint8Array(10).fill(0x2e);
    expect(native.read(r, into.subarray(3, 6))).toBe(3);
    expect(text(into, 10)).toBe('...ABC....');
    const rest = new DataView(new ArrayBuffer(8), 2, 4);
    expect(native.read(r, rest)).toBe(3);
    expect(Buffer.from(rest.buffer, 2, 3).toString()).toBe('DEF');
  });

  test('read_on_an_empty_pipe_returns_eagain', () => {
    const [r] = pair(native.pipe());
    expect(native.read(r, new Uint8Array(4))).toBe(-E.EAGAIN);
  });

  test('read_after_the_writer_closed_returns_0_for_eof', () => {
    const [r, w] = native.pipe() as [number, number];
    track(r);
    native.write(w, Buffer.from('x'));
    expect(native.close(w)).toBe(0);
    expect(native.read(r, new Uint8Array(4))).toBe(1);
    expect(native.read(r, new Uint8Array(4))).toBe(0);
  });

  test('write_to_a_full_pipe_returns_eagain', () => {
    const [, w] = pair(native.pipe());
    const chunk = new Uint8Array(65536);
    let total = 0;
    let r = 0;
    while ((r = native.write(w, chunk)) > 0) total += r;
    expect(r).toBe(-E.EAGAIN);
    expect(total).toBeGreaterThan(0);
  });

  test('read_into_an_empty_view_throws_rather_than_looking_like_eof', () => {
    const [r] = pair(native.pipe());
    let error: { name?: string; message?: string } = {};
    try {
      native.read(r, new Uint8Array(0));
    } catch (e) {
      error = e as typeof error;
    }
    expect(error.name).toBe('TypeError');
    expect(error.message).toMatch(/read: view must have byteLength > 0/);
  });

  test('socketpair_carries_bytes_both_ways_and_reports_eof', () => {
    const [a, b] = native.socketpair() as [number, number];
    track(a);
    expect(native.write(a, Buffer.from('ping'))).toBe(4);
    const into = new Uint8Array(8);
    expect(native.read(b, into)).toBe(4);
    expect(text(into, 4)).toBe('ping');
    expect(native.write(b, Buffer.from('pong'))).toBe(4);
    expect(native.read(a, into)).toBe(4);
    expect(text(into, 4)).toBe('pong');
    expect(native.read(a, into)).toBe(-E.EAGAIN);
    expect(native.close(b)).toBe(0);
    expect(native.read(a, into)).toBe(0);
  });

  test('write_to_a_closed_peer_returns_epipe_and_the_process_lives', () => {
    const r = runChild(`
      const [pr, pw] = native.pipe();
      native.close(pr);
      const viaPipe = native.write(pw, Buffer.from('x'));
      const [sa, sb] = native.socketpair();
      native.close(sb);
      const viaSocket = native.write(sa, Buffer.from('x'));
      native.close(pw); native.close(sa);
      // Pipes have no MSG_NOSIGNAL: what keeps this process alive is Node's SIG_IGN.
      const ignored = /SigIgn:\\s+([0-9a-f]+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1];
      const sigpipeIgnored = ((BigInt('0x' + ignored) >> 12n) & 1n) === 1n;
      console.log(JSON.stringify({ viaPipe, viaSocket, sigpipeIgnored }));
    `);
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ viaPipe: -E.EPIPE, viaSocket: -E.EPIPE, sigpipeIgnored: true });
  });

  test('tcp_listen_on_port_0_connect_accept_and_echo', () => {
    const listener = track(native.listenTcp('127.0.0.1', 0, 16, false));
    const port = native.localPort(listener);
    expect(port).toBeGreaterThan(0);
    expect(native.accept(listener)).toBe(-E.EAGAIN);

    const client = track(native.connectTcp('127.0.0.1', port));
    expect(waitFor(listener, native.layout.EV_READ)).toBe(native.layout.EV_READ);
    const server = track(native.accept(listener));
    expect(waitFor(client, native.layout.EV_WRITE)).toBe(native.layout.EV_WRITE);

    expect(native.write(client, Buffer.from('echo me'))).toBe(7);
    waitFor(server, native.layout.EV_READ);
    const into = new Uint8Array(32);
    const n = native.read(server, into);
    expect(text(into, n)).toBe('echo me');
    expect(native.write(server, into.subarray(0, n))).toBe(n);
    waitFor(client, native.layout.EV_READ);
    expect(text(into, native.read(client, into))).toBe('echo me');
  });

  test('tcp_listen_on_ipv6_loopback_and_by_name', () => {
    const v6 = native.listenTcp('::1', 0, 4, false);
    if (v6 !== -E.EADDRNOTAVAIL && v6 !== -E.EAFNOSUPPORT) {
      track(v6);
      expect(native.localPort(v6)).toBeGreaterThan(0);
    }
    const named = track(native.listenTcp('localhost', 0, 4, false));
    expect(native.localPort(named)).toBeGreaterThan(0);
  });

  test('tcp_listen_on_a_busy_port_returns_eaddrinuse_unless_reuse_port', () => {
    const first = track(native.listenTcp('127.0.0.1', 0, 4, false));
    const port = native.localPort(first);
    expect(native.listenTcp('127.0.0.1', port, 4, false)).toBe(-E.EADDRINUSE);
    const a = track(native.listenTcp('127.0.0.1', 0, 4, true));
    const b = track(native.listenTcp('127.0.0.1', native.localPort(a), 4, true));
    expect(native.localPort(b)).toBe(native.localPort(a));
  });

  test('tcp_connect_to_a_closed_port_reports_econnrefused', () => {
    const probe = native.listenTcp('127.0.0.1', 0, 1, false);
    const port = native.localPort(probe);
    native.close(probe);
    const client = native.connectTcp('127.0.0.1', port);
    if (client < 0) {
      expect(client).toBe(-E.ECONNREFUSED);
      return;
    }
    track(client);
    expect(waitFor(client, native.layout.EV_WRITE) & native.layout.EV_ERROR).not.toBe(0);
    expect(native.read(client, new Uint8Array(1))).toBe(-E.ECONNREFUSED);
  });

  test('local_port_of_a_non_ip_socket_or_bad_fd_is_an_errno', () => {
    const [a] = pair(native.socketpair());
    expect(native.localPort(a)).toBe(-E.EAFNOSUPPORT);
    const [r] = pair(native.pipe());
    expect(native.localPort(r)).toBe(-E.ENOTSOCK);
    expect(native.accept(r)).toBe(-E.ENOTSOCK);
  });

  test('sys_fds_are_nonblocking_and_close_on_exec', () => {
    const [r, w] = pair(native.pipe());
    const [a, b] = pair(native.socketpair());
    const l = track(native.listenTcp('127.0.0.1', 0, 1, false));
    for (const fd of [r, w, a, b, l]) {
      const info = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
      const flags = parseInt(/flags:\s+(\d+)/.exec(info)![1], 8);
      expect({ fd, cloexec: (flags & 0o2000000) !== 0, nonblock: (flags & 0o4000) !== 0 }).toEqual({
        fd,
        cloexec: true,
        nonblock: true,
      });
    }
  });
});
