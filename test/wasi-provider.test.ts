// The WASI preview1 provider (bindings/wasi), driven as a guest would drive it:
// records written by hand in a WebAssembly.Memory (test/fixtures/wasi-guest.ts),
// real loopback sockets, readiness waited for through onReady. Every provider is
// closed after its test and leaves no descriptor of its own; the file leaves no
// host fd open. The same provider runs a smoke script in Node, Bun and Deno.
import { execFile } from 'node:child_process';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { getSystemErrorName } from 'node:util';
import {
  ERRNO_CODES,
  ERRNO_EXT_ENOTFOUND,
  ERRNO_NAMES,
  EVENTTYPE_CLOCK,
  EVENTTYPE_FD_READ,
  EVENTTYPE_FD_WRITE,
  EVENT_FD_READWRITE_HANGUP,
  Errno,
  FDFLAGS_NONBLOCK,
  LISTEN_REUSE_PORT,
  RIFLAGS_RECV_PEEK,
  RIFLAGS_RECV_WAITALL,
  SDFLAGS_RD,
  SDFLAGS_WR,
  SOCK_FUNCTIONS,
  SOCK_MODULE,
  WASI_FUNCTIONS,
  WASI_MODULE,
  WasiProvider,
  type WasiProviderOptions,
  errnoCode,
  errnoOf,
  hostErrno,
} from '../bindings/wasi';
import { Guest, drive, nextReady, type Event } from './fixtures/wasi-guest';
import { newFds, openFds } from './helpers';
import { bunPath, denoPath, nodeTs } from './hosts';

const LOOPBACK = '127.0.0.1';
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

let fdsAtStart: string[] = [];
beforeAll(() => {
  fdsAtStart = openFds();
});
afterAll(async () => {
  // Host sockets close in the turn after their destroy(): give the last ones a moment.
  for (let i = 0; i < 50 && newFds(fdsAtStart, openFds()).length > 0; i++) await sleep(20);
  expect(newFds(fdsAtStart, openFds())).toEqual([]);
});

const made: WasiProvider[] = [];
const peers: Array<net.Server | net.Socket> = [];
afterEach(async () => {
  for (const p of made.splice(0)) {
    await p.close();
    expect(p.openFds()).toEqual([]);
  }
  for (const h of peers.splice(0)) {
    if (h instanceof net.Socket) h.destroy();
    else await new Promise<void>((resolve) => h.close(() => resolve()));
  }
});

function setup(options: WasiProviderOptions = {}): { p: WasiProvider; g: Guest } {
  const p = new WasiProvider(options);
  made.push(p);
  return { p, g: new Guest(p) };
}

/** A listener of the provider on 127.0.0.1 and its port. */
async function listen(g: Guest, p: WasiProvider): Promise<{ fd: number; port: number }> {
  const l = g.listen(LOOPBACK, 0);
  expect(l.errno).toBe(0);
  const local = g.localPort(l.fd);
  return { fd: l.fd, port: local.errno === 0 ? local.port : await p.listening(l.fd) };
}

/** A connected pair through the provider: [client fd, accepted fd, listener fd]. */
async function pair(g: Guest, p: WasiProvider): Promise<{ client: number; server: number; listener: number; port: number }> {
  const l = await listen(g, p);
  const c = g.connect(LOOPBACK, l.port);
  expect(c.errno).toBe(0);
  const server = await drive(p, () => {
    const r = g.accept(l.fd);
    if (r.errno !== Errno.EAGAIN) expect(r.errno).toBe(0);
    return r.errno === 0 ? r.fd : undefined;
  });
  await drive(p, () => (writable(g, c.fd) ? true : undefined));
  return { client: c.fd, server, listener: l.fd, port: l.port };
}

function writable(g: Guest, fd: number): Event | undefined {
  return g.poll([{ userdata: 1n, type: 'write', fd }]).events[0];
}

function readable(g: Guest, fd: number): Event | undefined {
  return g.poll([{ userdata: 2n, type: 'read', fd }]).events[0];
}

/** A plain node:net server on loopback (the peer of the provider's connects). */
async function peerServer(onConnection: (s: net.Socket) => void): Promise<number> {
  const server = net.createServer(onConnection);
  peers.push(server);
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK, () => resolve()));
  return (server.address() as net.AddressInfo).port;
}

/** A port nothing listens on: one the provider had bound and closed. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK, () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function pattern(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Reads everything there is now (until EAGAIN or EOF): the bytes and whether EOF came. */
function drain(g: Guest, fd: number, max = 65536): { bytes: Uint8Array[]; eof: boolean; errno: number } {
  const bytes: Uint8Array[] = [];
  for (;;) {
    const r = g.read(fd, max);
    if (r.errno !== 0) return { bytes, eof: false, errno: r.errno };
    if (r.bytes.length === 0) return { bytes, eof: true, errno: 0 };
    bytes.push(r.bytes);
  }
}

describe('errno', () => {
  test("preview1's numbering, not Linux's", () => {
    expect(ERRNO_NAMES).toHaveLength(77);
    expect(Errno).toMatchObject({
      ESUCCESS: 0,
      E2BIG: 1,
      EADDRINUSE: 3,
      EAGAIN: 6,
      EBADF: 8,
      ECONNREFUSED: 14,
      ECONNRESET: 15,
      EFAULT: 21,
      EINVAL: 28,
      EIO: 29,
      ENOSYS: 52,
      ENOTCONN: 53,
      ENOTSOCK: 57,
      EPIPE: 64,
      ETIMEDOUT: 73,
      ENOTCAPABLE: 76,
    });
  });

  test('preview1 errno → Node-style code, and the host errno the native sys would give', () => {
    expect(errnoCode(Errno.ECONNRESET)).toBe('ECONNRESET');
    expect(errnoCode(ERRNO_EXT_ENOTFOUND)).toBe('ENOTFOUND');
    expect(errnoCode(999)).toBe('E999');
    expect(ERRNO_CODES[Errno.EPIPE]).toBe('EPIPE');
    expect(ERRNO_CODES[257]).toBe('EAI_AGAIN');
    for (const name of ['EAGAIN', 'EBADF', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'EADDRINUSE', 'EINVAL'] as const) {
      expect(hostErrno(Errno[name])).toBe(os.constants.errno[name]);
      expect(getSystemErrorName(-hostErrno(Errno[name])!)).toBe(name);
    }
    // The native sys returns libuv's EAI numbers for a failed lookup.
    expect(getSystemErrorName(-hostErrno(ERRNO_EXT_ENOTFOUND)!)).toBe('EAI_NONAME');
    expect(hostErrno(Errno.ESUCCESS)).toBeUndefined();
    expect(hostErrno(Errno.ENOTCAPABLE)).toBeUndefined();
  });

  test('host errors → preview1 errno', () => {
    expect(errnoOf({ code: 'ECONNREFUSED' })).toBe(Errno.ECONNREFUSED);
    expect(errnoOf({ code: 'ECONNRESET' })).toBe(Errno.ECONNRESET);
    expect(errnoOf({ code: 'EPIPE' })).toBe(Errno.EPIPE);
    expect(errnoOf({ code: 'EADDRINUSE' })).toBe(Errno.EADDRINUSE);
    expect(errnoOf({ code: 'ENOTFOUND' })).toBe(ERRNO_EXT_ENOTFOUND);
    expect(errnoOf({ code: 'ERR_STREAM_DESTROYED' })).toBe(Errno.EPIPE);
    expect(errnoOf({ code: 'ESOMETHINGNEW' })).toBe(Errno.EIO);
    expect(errnoOf(new Error('no code'))).toBe(Errno.EIO);
    expect(errnoOf({ code: 'ESUCCESS' })).toBe(Errno.EIO); // an error is never 0
  });
});

describe('imports and memory', () => {
  test('the import object has the two modules and exactly the listed functions', () => {
    const { p } = setup();
    const imports = p.imports();
    expect(Object.keys(imports).sort()).toEqual([SOCK_MODULE, WASI_MODULE].sort());
    expect(Object.keys(imports[WASI_MODULE]).sort()).toEqual([...WASI_FUNCTIONS].sort());
    expect(Object.keys(imports[SOCK_MODULE]).sort()).toEqual([...SOCK_FUNCTIONS].sort());
    expect(WASI_MODULE).toBe('wasi_snapshot_preview1');
    expect(SOCK_MODULE).toBe('wasm_ioloop_sock');
  });

  test('a call before the memory is known throws, naming the fix', () => {
    const p = new WasiProvider({ stdio: false });
    made.push(p);
    expect(() => p.wasiImport.clock_time_get(1, 0n, 0)).toThrow(/initialize\(instance\) or setMemory/);
  });

  test('initialize(instance) takes its memory and runs _initialize; a real guest calls clock_time_get with an i64', () => {
    const p = new WasiProvider();
    made.push(p);
    const instance = new WebAssembly.Instance(new WebAssembly.Module(clockModule()), p.imports() as unknown as WebAssembly.Imports);
    p.initialize(instance);
    const memory = instance.exports.memory as WebAssembly.Memory;
    expect(new DataView(memory.buffer).getUint32(0, true)).toBe(42); // stored by _initialize
    const now = instance.exports.now as (ptr: number) => number;
    const before = process.hrtime.bigint();
    expect(now(8)).toBe(0);
    const t1 = new DataView(memory.buffer).getBigUint64(8, true);
    memory.grow(1); // detaches the old buffer: the provider must take the new one
    expect(now(65536 + 8)).toBe(0);
    const t2 = new DataView(memory.buffer).getBigUint64(65536 + 8, true);
    expect(t2 >= t1).toBe(true);
    expect(process.hrtime.bigint() >= before).toBe(true);
    expect(now(memory.buffer.byteLength - 4)).toBe(Errno.EFAULT);
    expect(() => p.initialize({ exports: {} } as WebAssembly.Instance)).toThrow(TypeError);
  });

  test('pointers outside memory are EFAULT, and memory.grow is followed', async () => {
    const { p, g } = setup();
    const end = g.memory.buffer.byteLength;
    expect(p.wasiImport.clock_time_get(1, 0n, end - 4)).toBe(Errno.EFAULT);
    expect(p.wasiImport.poll_oneoff(end - 10, 0, 1, 64)).toBe(Errno.EFAULT);
    expect(p.wasiImport.fd_write(1, end - 4, 1, 64)).toBe(Errno.EFAULT);
    const { client, server } = await pair(g, p);
    // an iovec whose buffer runs past the end
    const dv = new DataView(g.memory.buffer);
    dv.setUint32(128, end - 2, true);
    dv.setUint32(132, 4, true);
    expect(p.wasiImport.fd_write(client, 128, 1, 64)).toBe(Errno.EFAULT);
    g.memory.grow(2);
    expect(g.write(client, new TextEncoder().encode('after grow')).errno).toBe(0);
    const got = await drive(p, () => {
      const r = g.read(server, 64);
      return r.errno === 0 ? new TextDecoder().decode(r.bytes) : undefined;
    });
    expect(got).toBe('after grow');
  });
});

describe('clocks', () => {
  test('clock_time_get: monotonic from performance.now in ns, realtime from Date.now, others EINVAL', () => {
    const { g } = setup();
    const perf = BigInt(Math.round(performance.now() * 1e6));
    const mono = g.clock(1);
    expect(mono.errno).toBe(0);
    expect(Number(mono.ns - perf) / 1e6).toBeGreaterThanOrEqual(-1);
    expect(Number(mono.ns - perf) / 1e6).toBeLessThan(50);
    let last = mono.ns;
    for (let i = 0; i < 2000; i++) {
      const t = g.clock(1).ns;
      expect(t >= last).toBe(true);
      last = t;
    }
    const real = g.clock(0);
    expect(real.errno).toBe(0);
    expect(Math.abs(Number(real.ns / 1_000_000n) - Date.now())).toBeLessThan(1000);
    for (const id of [2, 3, 4, 0xffffffff]) expect(g.clock(id).errno).toBe(Errno.EINVAL);
  });

  test('poll_oneoff: no subscriptions is EINVAL; an unknown tag is EINVAL', () => {
    const { g } = setup();
    expect(g.poll([]).errno).toBe(Errno.EINVAL);
    expect(g.poll([{ userdata: 1n, type: 'raw', tag: 3 }]).errno).toBe(Errno.EINVAL);
  });

  test('a relative timeout of 0 fires at once, with its userdata and zeroed fields; a later one never blocks the call', () => {
    const { g } = setup();
    const r = g.poll([{ userdata: 0xfedcba9876543210n, type: 'clock', id: 1, timeout: 0n }]);
    expect(r).toEqual({ errno: 0, events: [{ userdata: 0xfedcba9876543210n, error: 0, type: EVENTTYPE_CLOCK, nbytes: 0n, flags: 0 }] });
    const t0 = performance.now();
    const later = g.poll([{ userdata: 5n, type: 'clock', id: 1, timeout: 10_000_000_000n }]);
    expect(performance.now() - t0).toBeLessThan(20);
    expect(later).toEqual({ errno: 0, events: [] });
  });

  test.each([
    ['monotonic', 1],
    ['realtime', 0],
  ])('an absolute %s deadline is reported once reached, never early', async (_name, id) => {
    const { g } = setup();
    const deadline = g.clock(id).ns + 40_000_000n;
    const started = performance.now();
    let reportedAt = -1n;
    while (performance.now() - started < 2000) {
      const r = g.poll([{ userdata: 9n, type: 'clock', id, timeout: deadline, abs: true }]);
      const now = g.clock(id).ns;
      if (r.events.length > 0) {
        expect(r.events).toEqual([{ userdata: 9n, error: 0, type: EVENTTYPE_CLOCK, nbytes: 0n, flags: 0 }]);
        reportedAt = now;
        break;
      }
      await sleep(2);
    }
    expect(reportedAt >= deadline).toBe(true);
    expect(performance.now() - started).toBeGreaterThanOrEqual(39);
  });

  test('an absolute deadline in the past fires; an unknown clock gives an EINVAL event; events keep subscription order', () => {
    const { g } = setup();
    const r = g.poll([
      { userdata: 1n, type: 'clock', id: 1, timeout: 1n, abs: true },
      { userdata: 2n, type: 'clock', id: 1, timeout: g.clock(1).ns + 1_000_000_000n, abs: true },
      { userdata: 3n, type: 'clock', id: 7, timeout: 0n },
      { userdata: 4n, type: 'read', fd: 77 },
      { userdata: 5n, type: 'write', fd: 1 },
      { userdata: 6n, type: 'read', fd: 0 },
    ]);
    expect(r.errno).toBe(0);
    expect(r.events.map((e) => [e.userdata, e.error, e.type])).toEqual([
      [1n, 0, EVENTTYPE_CLOCK],
      [3n, Errno.EINVAL, EVENTTYPE_CLOCK],
      [4n, Errno.EBADF, EVENTTYPE_FD_READ],
      [5n, 0, EVENTTYPE_FD_WRITE],
    ]);
  });
});

describe('listen and accept', () => {
  test('a numeric address is bound when sock_listen_tcp returns; accept takes queued connections, EAGAIN when none', async () => {
    const { p, g } = setup();
    const l = g.listen(LOOPBACK, 0);
    expect(l).toEqual({ errno: 0, fd: 3 });
    const local = g.localPort(l.fd);
    expect(local.errno).toBe(0);
    expect(local.port).toBeGreaterThan(0);
    await expect(p.listening(l.fd)).resolves.toBe(local.port);
    expect(readable(g, l.fd)).toBeUndefined();
    expect(writable(g, l.fd)).toBeUndefined();
    expect(g.accept(l.fd).errno).toBe(Errno.EAGAIN);

    const a = net.connect(local.port, LOOPBACK);
    const b = net.connect(local.port, LOOPBACK);
    peers.push(a, b);
    await drive(p, () => (readable(g, l.fd)?.nbytes === 2n ? true : undefined));
    expect(readable(g, l.fd)).toEqual({ userdata: 2n, error: 0, type: EVENTTYPE_FD_READ, nbytes: 2n, flags: 0 });
    expect(g.accept(l.fd, 0xff).errno).toBe(Errno.EINVAL);
    const first = g.accept(l.fd, FDFLAGS_NONBLOCK);
    const second = g.accept(l.fd);
    expect([first, second]).toEqual([
      { errno: 0, fd: 4 },
      { errno: 0, fd: 5 },
    ]);
    expect(g.accept(l.fd).errno).toBe(Errno.EAGAIN);
    expect(readable(g, l.fd)).toBeUndefined();
    expect(writable(g, first.fd)?.nbytes).toBe(65536n);
    expect(g.localPort(first.fd)).toEqual({ errno: 0, port: local.port });
    expect(p.openFds()).toEqual([0, 1, 2, 3, 4, 5]);
  });

  test('without the synchronous bind: EAGAIN from sock_local_port until listening(fd) resolves', async () => {
    const { p, g } = setup({ syncListen: false });
    const l = g.listen(LOOPBACK, 0);
    expect(l.errno).toBe(0);
    expect(g.localPort(l.fd).errno).toBe(Errno.EAGAIN); // Node binds a tick after listen()
    const ready = nextReady(p);
    const port = await p.listening(l.fd);
    expect(port).toBeGreaterThan(0);
    expect(await ready).toBe(true); // the bind notified
    expect(g.localPort(l.fd)).toEqual({ errno: 0, port });
  });

  test('a host name binds asynchronously too', async () => {
    const { p, g } = setup();
    const l = g.listen('localhost', 0);
    expect(l.errno).toBe(0);
    const port = await p.listening(l.fd);
    expect(g.localPort(l.fd)).toEqual({ errno: 0, port });
  });

  test('reusePort: two listeners on one port', async () => {
    const { p, g } = setup();
    const a = g.listen(LOOPBACK, 0, 16, LISTEN_REUSE_PORT);
    expect(a.errno).toBe(0);
    const port = await p.listening(a.fd);
    const b = g.listen(LOOPBACK, port, 16, LISTEN_REUSE_PORT);
    expect(b.errno).toBe(0);
    // Node 20 has no reusePort: there the second bind fails; hosts that have it bind both.
    const second = await p.listening(b.fd).then(
      (x) => x,
      (err: { code: string }) => err.code,
    );
    expect([port, 'EADDRINUSE']).toContain(second);
  });

  test('a port in use: the listener reports EADDRINUSE as its error', async () => {
    const { p, g } = setup();
    const { port } = await listen(g, p);
    const ready = nextReady(p);
    const l = g.listen(LOOPBACK, port);
    expect(l.errno).toBe(0);
    await expect(p.listening(l.fd)).rejects.toMatchObject({ name: 'WasiError', code: 'EADDRINUSE', errno: Errno.EADDRINUSE });
    expect(await ready).toBe(true);
    expect(g.localPort(l.fd).errno).toBe(Errno.EADDRINUSE);
    expect(g.accept(l.fd).errno).toBe(Errno.EADDRINUSE);
    expect(readable(g, l.fd)).toEqual({ userdata: 2n, error: Errno.EADDRINUSE, type: EVENTTYPE_FD_READ, nbytes: 0n, flags: EVENT_FD_READWRITE_HANGUP });
    expect(g.close(l.fd)).toBe(0);
  });

  test('bad arguments are EINVAL and open nothing', () => {
    const { p, g } = setup();
    expect(g.listen('', 0).errno).toBe(Errno.EINVAL);
    expect(g.listen(LOOPBACK, 65536).errno).toBe(Errno.EINVAL);
    expect(g.listen(LOOPBACK, 0, 16, 2).errno).toBe(Errno.EINVAL);
    expect(g.connect(LOOPBACK, 0).errno).toBe(Errno.EINVAL);
    expect(g.connect(LOOPBACK, 65536).errno).toBe(Errno.EINVAL);
    expect(g.connect('', 80).errno).toBe(Errno.EINVAL);
    g.u8.set([0xff, 0xfe], 512); // not UTF-8
    expect(p.sockImport.sock_connect_tcp(512, 2, 80, 64)).toBe(Errno.EINVAL);
    expect(p.openFds()).toEqual([0, 1, 2]);
  });
});

describe('sockets from JavaScript', () => {
  test('listenTcp / connectTcp / localPort: fds and ports, or preview1 errno negated', async () => {
    const { p, g } = setup();
    const l = p.listenTcp(LOOPBACK, 0);
    expect(l).toBe(3);
    const port = p.localPort(l);
    expect(port).toBeGreaterThan(0);
    const c = p.connectTcp(LOOPBACK, port);
    expect(c).toBe(4);
    await drive(p, () => (writable(g, c) ? true : undefined));
    expect(p.localPort(c)).toBeGreaterThan(0);
    expect(p.listenTcp('', 0)).toBe(-Errno.EINVAL);
    expect(p.listenTcp(LOOPBACK, 1.5)).toBe(-Errno.EINVAL);
    expect(p.listenTcp(LOOPBACK, 0, -1)).toBe(-Errno.EINVAL);
    expect(p.connectTcp(LOOPBACK, 0)).toBe(-Errno.EINVAL);
    expect(p.localPort(99)).toBe(-Errno.EBADF);
    expect(p.localPort(2)).toBe(-Errno.ENOTSOCK);
  });

  test("sockets(): the native sys's convention, the host's errno negated", async () => {
    const { p } = setup({ syncListen: false });
    const s = p.sockets();
    expect(s.pipe).toBeNull();
    expect(s.socketpair).toBeNull();
    const l = s.listenTcp(LOOPBACK, 0, 16, false);
    expect(l).toBeGreaterThanOrEqual(3);
    expect(s.localPort(l)).toBe(-os.constants.errno.EAGAIN); // not bound yet (public listen)
    const port = await p.listening(l);
    expect(s.localPort(l)).toBe(port);
    const taken = s.listenTcp(LOOPBACK, port, 16, false);
    await expect(p.listening(taken)).rejects.toMatchObject({ code: 'EADDRINUSE' });
    expect(s.localPort(taken)).toBe(-os.constants.errno.EADDRINUSE);
    expect(s.connectTcp(LOOPBACK, 0)).toBe(-os.constants.errno.EINVAL);
    expect(s.localPort(1234)).toBe(-os.constants.errno.EBADF);
  });
});

describe('connections', () => {
  test('connect: WRITE readiness once connected; a round trip with fd_write/fd_read and sock_send/sock_recv', async () => {
    const { p, g } = setup();
    const l = await listen(g, p);
    const c = g.connect(LOOPBACK, l.port);
    expect(c.errno).toBe(0);
    expect(g.write(c.fd, new Uint8Array([1])).errno).toBe(Errno.EAGAIN); // still connecting
    const w = await drive(p, () => writable(g, c.fd));
    expect(w).toEqual({ userdata: 1n, error: 0, type: EVENTTYPE_FD_WRITE, nbytes: 65536n, flags: 0 });
    expect(g.localPort(c.fd).port).toBeGreaterThan(0);
    const server = await drive(p, () => {
      const r = g.accept(l.fd);
      return r.errno === 0 ? r.fd : undefined;
    });

    const hello = new TextEncoder().encode('hello, preview1');
    expect(g.read(server, 64).errno).toBe(Errno.EAGAIN);
    expect(g.write(c.fd, hello, { parts: 3 })).toEqual({ errno: 0, n: hello.length });
    const ev = await drive(p, () => readable(g, server));
    expect(ev).toEqual({ userdata: 2n, error: 0, type: EVENTTYPE_FD_READ, nbytes: BigInt(hello.length), flags: 0 });
    const peek = g.read(server, 5, { flags: RIFLAGS_RECV_PEEK });
    expect(new TextDecoder().decode(peek.bytes)).toBe('hello');
    const all = g.read(server, 64, { flags: RIFLAGS_RECV_WAITALL, parts: 2 }); // WAITALL cannot wait: what is there
    expect(all).toEqual({ errno: 0, bytes: hello, roflags: 0 });
    expect(g.read(server, 64, { via: 'sock' }).errno).toBe(Errno.EAGAIN);
    expect(g.read(server, 64, { flags: 4 }).errno).toBe(Errno.EINVAL);

    const reply = new TextEncoder().encode('and back');
    expect(g.write(server, reply, { via: 'sock' })).toEqual({ errno: 0, n: reply.length });
    expect(p.wasiImport.sock_send(server, 128, 0, 1, 64)).toBe(Errno.EINVAL); // siflags must be 0
    const back = await drive(p, () => {
      const r = g.read(c.fd, 64);
      return r.errno === 0 ? new TextDecoder().decode(r.bytes) : undefined;
    });
    expect(back).toBe('and back');
    expect(g.write(c.fd, new Uint8Array(0))).toEqual({ errno: 0, n: 0 });
  });

  test('1 MB each way, byte for byte: writes hit EAGAIN and resume on readiness, nothing lost or reordered', async () => {
    const { p, g } = setup();
    const { client, server } = await pair(g, p);
    const size = 1024 * 1024;
    const up = pattern(size, 7);
    const down = pattern(size, 11);
    const gotUp = new Uint8Array(size);
    const gotDown = new Uint8Array(size);
    let sentUp = 0;
    let sentDown = 0;
    let recvUp = 0;
    let recvDown = 0;
    let eagainUp = 0;
    let eagainDown = 0;
    let steps = 0;
    await drive(
      p,
      () => {
        steps++;
        while (sentUp < size) {
          const w = g.write(client, up.subarray(sentUp, sentUp + 100_000), { parts: 3 });
          if (w.errno === Errno.EAGAIN) {
            eagainUp++;
            break;
          }
          expect(w.errno).toBe(0);
          sentUp += w.n;
        }
        while (sentDown < size) {
          const w = g.write(server, down.subarray(sentDown, sentDown + 70_000), { via: 'sock' });
          if (w.errno === Errno.EAGAIN) {
            eagainDown++;
            break;
          }
          expect(w.errno).toBe(0);
          sentDown += w.n;
        }
        for (;;) {
          const r = g.read(server, 50_000, { parts: 2 });
          if (r.errno === Errno.EAGAIN) break;
          expect(r.errno).toBe(0);
          expect(r.bytes.length).toBeGreaterThan(0);
          gotUp.set(r.bytes, recvUp);
          recvUp += r.bytes.length;
        }
        for (;;) {
          const r = g.read(client, 30_000, { via: 'sock' });
          if (r.errno === Errno.EAGAIN) break;
          expect(r.errno).toBe(0);
          gotDown.set(r.bytes, recvDown);
          recvDown += r.bytes.length;
        }
        return recvUp === size && recvDown === size ? true : undefined;
      },
      20000,
    );
    expect(eagainUp).toBeGreaterThan(0);
    expect(eagainDown).toBeGreaterThan(0);
    expect(Buffer.compare(gotUp, up)).toBe(0);
    expect(Buffer.compare(gotDown, down)).toBe(0);
    expect(steps).toBeGreaterThan(2);
  });

  test('a reader that stops: the peer reading is paused at the read mark and the writer gets EAGAIN until it reads', async () => {
    const { p, g } = setup({ readHighWaterMark: 4096 });
    const { client, server } = await pair(g, p);
    const chunk = pattern(65536, 3);
    let sent = 0;
    // Fill until writes stall for good (kernel buffers full), without reading.
    const deadline = Date.now() + 10000;
    let stalled = 0;
    while (stalled < 3 && Date.now() < deadline) {
      const w = g.write(client, chunk);
      if (w.errno === Errno.EAGAIN) {
        if (!(await nextReady(p, 200))) stalled++;
        continue;
      }
      expect(w.errno).toBe(0);
      sent += w.n;
      stalled = 0;
    }
    expect(writable(g, client)).toBeUndefined();
    const buffered = readable(g, server)!;
    expect(Number(buffered.nbytes)).toBeGreaterThanOrEqual(4096);
    expect(Number(buffered.nbytes)).toBeLessThan(sent);
    // Reading everything lets the writer go on.
    let got = 0;
    await drive(p, () => {
      for (const b of drain(g, server).bytes) got += b.length;
      return got === sent ? true : undefined;
    });
    await drive(p, () => writable(g, client));
  });

  test('half-close: shutdown(WR) gives the peer EOF after the bytes, the other direction stays open', async () => {
    const { p, g } = setup();
    const { client, server } = await pair(g, p);
    expect(g.write(client, new TextEncoder().encode('last words')).errno).toBe(0);
    expect(g.shutdown(client, SDFLAGS_WR)).toBe(0);
    expect(g.shutdown(client, SDFLAGS_WR)).toBe(0); // again: nothing more to do
    expect(g.write(client, new Uint8Array([1])).errno).toBe(Errno.EPIPE);
    expect(writable(g, client)).toEqual({ userdata: 1n, error: 0, type: EVENTTYPE_FD_WRITE, nbytes: 0n, flags: 0 });
    const ev = await drive(p, () => {
      const e = readable(g, server);
      return e && e.flags & EVENT_FD_READWRITE_HANGUP ? e : undefined;
    });
    expect(ev).toEqual({ userdata: 2n, error: 0, type: EVENTTYPE_FD_READ, nbytes: 10n, flags: EVENT_FD_READWRITE_HANGUP });
    expect(new TextDecoder().decode(g.read(server, 64).bytes)).toBe('last words');
    expect(g.read(server, 64)).toEqual({ errno: 0, bytes: new Uint8Array(0), roflags: 0 }); // EOF
    expect(g.read(server, 64).bytes.length).toBe(0); // and again
    // The server can still answer.
    expect(g.write(server, new TextEncoder().encode('reply')).errno).toBe(0);
    expect(
      await drive(p, () => {
        const r = g.read(client, 64);
        return r.errno === 0 ? new TextDecoder().decode(r.bytes) : undefined;
      }),
    ).toBe('reply');
    expect(g.shutdown(server, SDFLAGS_RD | SDFLAGS_WR)).toBe(0);
    expect(await drive(p, () => (drain(g, client).eof ? true : undefined))).toBe(true);
  });

  test('shutdown(RD): reads see EOF at once and incoming bytes are dropped', async () => {
    const { p, g } = setup();
    const { client, server } = await pair(g, p);
    expect(g.shutdown(server, SDFLAGS_RD)).toBe(0);
    expect(readable(g, server)).toEqual({ userdata: 2n, error: 0, type: EVENTTYPE_FD_READ, nbytes: 0n, flags: EVENT_FD_READWRITE_HANGUP });
    expect(g.write(client, new Uint8Array(1000)).errno).toBe(0);
    await sleep(30);
    expect(g.read(server, 64).bytes.length).toBe(0);
    expect(g.write(server, new Uint8Array([7])).errno).toBe(0); // the send side is open
  });

  test('shutdown errors: bad how, a listener, stdio, a connecting socket', async () => {
    const { p, g } = setup();
    const { client, listener } = await pair(g, p);
    expect(g.shutdown(client, 0)).toBe(Errno.EINVAL);
    expect(g.shutdown(client, 4)).toBe(Errno.EINVAL);
    expect(g.shutdown(listener, SDFLAGS_WR)).toBe(Errno.ENOTCONN);
    expect(g.shutdown(1, SDFLAGS_WR)).toBe(Errno.ENOTSOCK);
    expect(g.shutdown(99, SDFLAGS_WR)).toBe(Errno.EBADF);
    const port = await closedPort();
    const c = g.connect(LOOPBACK, port);
    expect(g.shutdown(c.fd, SDFLAGS_WR)).toBe(Errno.ENOTCONN);
  });

  test('fd_close: EBADF afterwards, the peer sees EOF, bytes written just before arrive, numbers are reused lowest first', async () => {
    const { p, g } = setup();
    const { client, server, listener } = await pair(g, p);
    expect([listener, client, server]).toEqual([3, 4, 5]);
    const data = pattern(60000, 5);
    expect(g.write(server, data).n).toBe(60000);
    expect(g.close(server)).toBe(0);
    expect(g.close(server)).toBe(Errno.EBADF);
    expect(g.read(server, 1).errno).toBe(Errno.EBADF);
    expect(g.poll([{ userdata: 3n, type: 'read', fd: server }]).events).toEqual([
      { userdata: 3n, error: Errno.EBADF, type: EVENTTYPE_FD_READ, nbytes: 0n, flags: 0 },
    ]);
    const chunks: Uint8Array[] = [];
    await drive(p, () => {
      const r = drain(g, client);
      chunks.push(...r.bytes);
      return r.eof ? true : undefined;
    });
    expect(Buffer.compare(Buffer.concat(chunks), data)).toBe(0);
    const port = g.localPort(listener).port;
    const again = g.connect(LOOPBACK, port);
    expect(again.fd).toBe(5); // the lowest free number
    expect(g.close(client)).toBe(0);
    const accepted = await drive(p, () => {
      const r = g.accept(listener);
      return r.errno === 0 ? r.fd : undefined;
    });
    expect(accepted).toBe(4);
    expect(g.close(listener)).toBe(0);
    expect(g.close(accepted)).toBe(0);
    expect(g.close(again.fd)).toBe(0);
    expect(p.openFds()).toEqual([0, 1, 2]);
  });

  test('closing a listener ends the connections it had queued', async () => {
    const { p, g } = setup();
    const { fd, port } = await listen(g, p);
    const peer = net.connect(port, LOOPBACK);
    peers.push(peer);
    await drive(p, () => (readable(g, fd) ? true : undefined));
    const ended = new Promise<void>((resolve) => peer.on('close', () => resolve()));
    peer.on('error', () => {});
    peer.resume();
    expect(g.close(fd)).toBe(0);
    await ended;
  });
});

describe('errors', () => {
  test('a refused connect: READ and WRITE with ECONNREFUSED and HANGUP, then every call returns it', async () => {
    const { p, g } = setup();
    const port = await closedPort();
    const c = g.connect(LOOPBACK, port);
    expect(c.errno).toBe(0);
    const events = await drive(p, () => {
      const r = g.poll([
        { userdata: 10n, type: 'read', fd: c.fd },
        { userdata: 11n, type: 'write', fd: c.fd },
      ]);
      return r.events.length === 2 ? r.events : undefined;
    });
    expect(events).toEqual([
      { userdata: 10n, error: Errno.ECONNREFUSED, type: EVENTTYPE_FD_READ, nbytes: 0n, flags: EVENT_FD_READWRITE_HANGUP },
      { userdata: 11n, error: Errno.ECONNREFUSED, type: EVENTTYPE_FD_WRITE, nbytes: 0n, flags: EVENT_FD_READWRITE_HANGUP },
    ]);
    expect(g.read(c.fd, 16).errno).toBe(Errno.ECONNREFUSED);
    expect(g.write(c.fd, new Uint8Array([1])).errno).toBe(Errno.ECONNREFUSED);
    expect(g.read(c.fd, 16, { via: 'sock' }).errno).toBe(Errno.ECONNREFUSED);
    expect(g.localPort(c.fd).errno).toBe(Errno.ECONNREFUSED);
    expect(errnoCode(Errno.ECONNREFUSED)).toBe('ECONNREFUSED');
    expect(g.close(c.fd)).toBe(0);
  });

  test('a reset by the peer: ECONNRESET after the bytes that came before it', async () => {
    const { p, g } = setup();
    const port = await peerServer((s) => {
      s.write('before the reset', () => setTimeout(() => s.resetAndDestroy(), 20));
    });
    const c = g.connect(LOOPBACK, port);
    const chunks: Uint8Array[] = [];
    const errno = await drive(p, () => {
      const r = drain(g, c.fd);
      chunks.push(...r.bytes);
      return r.errno !== Errno.EAGAIN ? r.errno : undefined;
    });
    expect(new TextDecoder().decode(Buffer.concat(chunks))).toBe('before the reset');
    expect(errno).toBe(Errno.ECONNRESET);
    expect(readable(g, c.fd)).toMatchObject({ error: Errno.ECONNRESET, flags: EVENT_FD_READWRITE_HANGUP });
    expect(g.write(c.fd, new Uint8Array([1])).errno).toBe(Errno.ECONNRESET);
  });

  test('calls on the wrong kind of descriptor', async () => {
    const { p, g } = setup();
    const { client, listener } = await pair(g, p);
    expect(g.read(99, 8).errno).toBe(Errno.EBADF);
    expect(g.write(99, new Uint8Array(1)).errno).toBe(Errno.EBADF);
    expect(g.close(99)).toBe(Errno.EBADF);
    expect(g.accept(99).errno).toBe(Errno.EBADF);
    expect(g.localPort(99).errno).toBe(Errno.EBADF);
    expect(g.accept(client).errno).toBe(Errno.EINVAL);
    expect(g.accept(1).errno).toBe(Errno.ENOTSOCK);
    expect(g.localPort(1).errno).toBe(Errno.ENOTSOCK);
    expect(g.read(listener, 8).errno).toBe(Errno.ENOTCONN);
    expect(g.write(listener, new Uint8Array(1)).errno).toBe(Errno.ENOTCONN);
    expect(g.read(1, 8, { via: 'sock' }).errno).toBe(Errno.ENOTSOCK);
    expect(g.read(0, 8).errno).toBe(Errno.EBADF); // stdin is not read
    expect(g.write(0, new Uint8Array(1)).errno).toBe(Errno.EBADF);
    await expect(p.listening(client)).rejects.toMatchObject({ code: 'ENOTSOCK' });
    await expect(p.listening(99)).rejects.toMatchObject({ code: 'EBADF' });
  });
});

describe('stdio', () => {
  test('fd_write to 1 and 2 goes to process.stdout and process.stderr', () => {
    const { g } = setup();
    const out = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const err = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    let written: unknown[] = [];
    try {
      expect(g.write(1, new TextEncoder().encode('to stdout'), { parts: 2 })).toEqual({ errno: 0, n: 9 });
      expect(g.write(2, new TextEncoder().encode('to stderr'))).toEqual({ errno: 0, n: 9 });
      written = [out.mock.calls.map((c) => String(c[0])), err.mock.calls.map((c) => String(c[0]))];
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
    expect(written).toEqual([['to stdout'], ['to stderr']]);
  });

  test('without stdio, 0-2 are EBADF and sockets start at firstFd', async () => {
    const { p, g } = setup({ stdio: false, firstFd: 10 });
    expect(g.write(1, new Uint8Array(1)).errno).toBe(Errno.EBADF);
    expect(g.listen(LOOPBACK, 0).fd).toBe(10);
    expect(p.openFds()).toEqual([10]);
  });
});

describe('readiness notification', () => {
  test('none while idle, one when bytes arrive', async () => {
    const { p, g } = setup();
    const { client, server } = await pair(g, p);
    await sleep(20); // let the connect's own notifications pass
    let calls = 0;
    const off = p.onReady(() => calls++);
    await sleep(200);
    expect(calls).toBe(0);
    expect(readable(g, server)).toBeUndefined();
    const woke = nextReady(p);
    expect(g.write(client, new Uint8Array([1, 2, 3])).errno).toBe(0);
    expect(await woke).toBe(true);
    expect(calls).toBe(1);
    expect(readable(g, server)?.nbytes).toBe(3n);
    off();
    expect(g.write(client, new Uint8Array([4])).errno).toBe(0);
    await sleep(50);
    expect(calls).toBe(1); // removed
  });

  test('coalesced: many changes in one turn give one call, in a later turn', async () => {
    const { p } = setup();
    const turns: number[] = [];
    let turn = 0;
    p.onReady(() => turns.push(turn));
    for (let i = 0; i < 10; i++) p.notify();
    expect(turns).toEqual([]);
    turn = 1;
    await sleep(10);
    expect(turns).toEqual([1]);
    // A custom scheduler: a microtask.
    const q = new WasiProvider({ schedule: (fire) => queueMicrotask(fire) });
    made.push(q);
    let n = 0;
    q.onReady(() => n++);
    q.notify();
    q.notify();
    await Promise.resolve();
    expect(n).toBe(1);
  });

  test('a connection reaching a listener and a peer closing both notify', async () => {
    const { p, g } = setup();
    const { fd, port } = await listen(g, p);
    const woke = nextReady(p);
    const peer = net.connect(port, LOOPBACK);
    peers.push(peer);
    expect(await woke).toBe(true);
    await drive(p, () => (readable(g, fd) ? true : undefined));
    const conn = g.accept(fd).fd;
    const closed = nextReady(p);
    peer.end();
    expect(await closed).toBe(true);
    expect(await drive(p, () => (drain(g, conn).eof ? true : undefined))).toBe(true);
  });
});

describe('close()', () => {
  test('closes every descriptor and waits for the host; calls afterwards are EBADF', async () => {
    const { p, g } = setup();
    const { client, listener } = await pair(g, p);
    await p.close();
    expect(p.openFds()).toEqual([]);
    expect(g.write(client, new Uint8Array(1)).errno).toBe(Errno.EBADF);
    expect(g.accept(listener).errno).toBe(Errno.EBADF);
    expect(g.listen(LOOPBACK, 0).errno).toBe(Errno.EBADF);
    expect(g.connect(LOOPBACK, 1).errno).toBe(Errno.EBADF);
  });
});

describe('hosts', () => {
  const SCRIPT = path.join(__dirname, 'fixtures', 'wasi-echo.ts');
  const hosts: Array<[string, () => [string, string[]]]> = [
    ['node', () => [nodeTs()[0], [...nodeTs()[1], SCRIPT]]],
    ['bun', () => [bunPath(), [SCRIPT]]],
    ['deno', () => [denoPath(), ['run', '--allow-net', '--allow-read', '--allow-env', '--sloppy-imports', SCRIPT]]],
  ];

  test.concurrent.each(hosts)('an echo round trip through the provider in %s', async (name, command) => {
    const [bin, args] = command();
    const { stdout, stderr, code } = await new Promise<{ stdout: string; stderr: string; code: number }>((resolve) => {
      execFile(
        bin,
        args,
        { timeout: 25000, cwd: path.join(__dirname, '..'), env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1', DENO_NO_PROMPT: '1' } },
        (err, out, errOut) => resolve({ stdout: out, stderr: errOut, code: err ? ((err as { code?: number }).code ?? 1) : 0 }),
      );
    });
    const line = stdout.trim().split('\n').pop() ?? '';
    let result: Record<string, unknown>;
    try {
      result = JSON.parse(line);
    } catch {
      throw new Error(`${name} printed no result (exit ${code}):\n${stdout}\n${stderr}`);
    }
    expect(result).toEqual({
      host: name,
      syncPort: true,
      port: expect.any(Number),
      bytes: 262144,
      same: true,
      eagain: true,
      eof: true,
      clientEof: true,
      refused: 'ECONNREFUSED',
      idleCalls: 0,
      fds: [0, 1, 2],
    });
    expect(code).toBe(0);
  });
});

/** A module importing clock_time_get, exporting memory, `now(ptr) -> errno` and `_initialize` (stores 42 at 0). */
function clockModule(): Uint8Array<ArrayBuffer> {
  const str = (s: string) => [s.length, ...Buffer.from(s)];
  const section = (id: number, body: number[]) => [id, body.length, ...body];
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [3, 0x60, 3, 0x7f, 0x7e, 0x7f, 1, 0x7f, 0x60, 1, 0x7f, 1, 0x7f, 0x60, 0, 0]),
    ...section(2, [1, ...str('wasi_snapshot_preview1'), ...str('clock_time_get'), 0x00, 0]),
    ...section(3, [2, 1, 2]),
    ...section(5, [1, 0x01, 1, 8]),
    ...section(7, [3, ...str('memory'), 0x02, 0, ...str('now'), 0x00, 1, ...str('_initialize'), 0x00, 2]),
    ...section(10, [
      2,
      ...[10, 0, 0x41, 0x01, 0x42, 0x00, 0x20, 0x00, 0x10, 0x00, 0x0b],
      ...[9, 0, 0x41, 0x00, 0x41, 42, 0x36, 0x02, 0x00, 0x0b],
    ]),
  ];
  return new Uint8Array(bytes);
}
