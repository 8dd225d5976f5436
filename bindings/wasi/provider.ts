// The package's own WASI preview1 provider: the `wasi_snapshot_preview1` functions
// that the core's WASI build imports, and the `wasm_ioloop_sock` extension module
// that opens sockets (preview1 has no call for it), over the host's TCP sockets
// (`node:net`, which Node, Bun and Deno all have). Plain TypeScript, no native code.
//
// The extension module `wasm_ioloop_sock` (its functions return a preview1 errno,
// or an ERRNO_EXT_* value of errno.ts for a failed name lookup; a string is UTF-8 at
// (ptr, len) in the guest's memory; results are written through pointers; every
// argument is a u32):
//   sock_listen_tcp(host_ptr, host_len, port, backlog, flags, result_fd_ptr)
//       a listener on host:port (port 0: any); flags LISTEN_REUSE_PORT (1) asks
//       for SO_REUSEPORT where the host has it, other bits are EINVAL
//   sock_connect_tcp(host_ptr, host_len, port, result_fd_ptr)
//       starts a connect to host:port (1-65535)
//   sock_local_port(fd, result_port_ptr)
//       the local port (u32) of a listener or a connection; EAGAIN until known
// The same calls exist for JavaScript without the guest's memory: listenTcp,
// connectTcp and localPort (negated preview1 errno), and sockets() (the native
// sys's convention: the host's errno negated).
//
// Limits, plainly:
//   - poll_oneoff never blocks. It reports the subscriptions that are ready at the
//     call and returns; when none is, it returns 0 events even if a clock
//     subscription's time lies ahead. A JavaScript host cannot block its thread, so
//     the loop's driver does the waiting (for its next timer, or for onReady) and
//     then polls again. A relative clock subscription is therefore reported only
//     with a timeout of 0; an absolute one (SUBSCRIPTION_CLOCK_ABSTIME) once its
//     clock has reached it. `precision` is ignored.
//   - Descriptors are TCP stream sockets only: listeners and connections opened
//     through `wasm_ioloop_sock`, connections taken with sock_accept, and the stdio
//     numbers 0-2 (fd_write to 1 and 2 goes to process.stdout and process.stderr;
//     fd 0 cannot be read). No files, preopens, path_* calls, UDP or Unix sockets.
//     Only the functions listed in WASI_FUNCTIONS are provided: a guest importing
//     another one fails to instantiate, naming it.
//   - node:net resolves a listen address asynchronously in Node and Deno, so a
//     listener may be bound after sock_listen_tcp returns: for a numeric address
//     the provider binds at once (see `syncListen`), otherwise sock_local_port
//     answers EAGAIN until the bind is done and `listening(fd)` tells when. A bind
//     that fails is reported later as the listener's error. Connects are always
//     asynchronous, as a nonblocking connect(2) is: WRITE readiness means done.
//   - Bytes received are held in JavaScript, per socket, up to
//     `readHighWaterMark` before the socket stops reading (TCP flow control then
//     holds the peer). A write hands its bytes to the host socket at once; up to
//     `writeHighWaterMark` bytes per socket may be on their way to the kernel
//     (the host's write callback not yet run) before fd_write answers EAGAIN, and
//     a write is partial at that mark, as a kernel's is when its buffer fills.
//     Node's sockets finish a write that the kernel takes within the same tick,
//     so the mark also bounds what one host turn writes to one socket; a full
//     kernel buffer holds the callbacks back and so keeps the EAGAIN until it
//     drains.
//   - node:net accepts connections as they come; they wait in the listener's queue
//     (not bounded by `backlog`, which only reaches listen(2)) until sock_accept.
//   - TCP_NODELAY is set on every connection, as the native sys does; no other
//     socket option can be set.
//   - A socket's first error sticks: every later read and write returns it.
//   - One thread: a provider and its sockets belong to the host event loop that
//     made them.
//
// Descriptor numbers: the lowest free number from `firstFd` (3) up, as POSIX hands
// them out; a closed number is reused at once. The provider keeps no events:
// poll_oneoff computes each event from the descriptor's state during the call, so a
// reused number never carries an event of the descriptor it had before, and the
// core's own tokens drop anything it still held for the old one.
//
// Readiness notification: `onReady(callback)` is called, at most once per host
// turn (coalesced with setImmediate), after something happened on a descriptor
// that poll_oneoff could now report: bytes or an end of stream arrived, a connect
// finished or failed, a connection was queued, a listener was bound or failed, a
// socket closed or failed, or writes that had filled a socket's mark completed.
// Nothing calls it while nothing happens: the provider runs no timer and polls
// nothing.
import { Buffer } from 'node:buffer';
import * as net from 'node:net';
import { setImmediate as hostSetImmediate } from 'node:timers';
import process from 'node:process';
import { Errno, errnoCode, errnoOf, hostErrno } from './errno';
import {
  CLOCKID_MONOTONIC,
  CLOCKID_REALTIME,
  EVENTTYPE_CLOCK,
  EVENTTYPE_FD_READ,
  EVENTTYPE_FD_WRITE,
  EVENT_ERROR,
  EVENT_FD_READWRITE_HANGUP,
  EVENT_FLAGS,
  EVENT_NBYTES,
  EVENT_SIZE,
  EVENT_TYPE,
  FDFLAGS_NONBLOCK,
  IOVEC_SIZE,
  LISTEN_REUSE_PORT,
  RIFLAGS_RECV_PEEK,
  RIFLAGS_RECV_WAITALL,
  SDFLAGS_RD,
  SDFLAGS_WR,
  SUBSCRIPTION_CLOCK_ABSTIME,
  SUBSCRIPTION_SIZE,
  SUB_CLOCK_FLAGS,
  SUB_CLOCK_ID,
  SUB_CLOCK_TIMEOUT,
  SUB_FD,
  SUB_TAG,
} from './layout';

/** The import module of the standard's functions. */
export const WASI_MODULE = 'wasi_snapshot_preview1';
/** The import module of the provider's socket extension. */
export const SOCK_MODULE = 'wasm_ioloop_sock';

/** The `wasi_snapshot_preview1` functions the provider has. */
export const WASI_FUNCTIONS = [
  'poll_oneoff',
  'clock_time_get',
  'clock_res_get',
  'fd_read',
  'fd_write',
  'fd_close',
  'sock_accept',
  'sock_recv',
  'sock_send',
  'sock_shutdown',
] as const;

/** The `wasm_ioloop_sock` functions. */
export const SOCK_FUNCTIONS = ['sock_listen_tcp', 'sock_connect_tcp', 'sock_local_port'] as const;

/**
 * The `wasi_snapshot_preview1` functions, as the guest calls them: pointers and
 * sizes are u32 (a negative i32 is read as its unsigned value), 64-bit values are
 * BigInt, and each returns a preview1 errno.
 */
export interface WasiImport {
  /** (in: *subscription, out: *event, nsubscriptions: u32, nevents: *u32) -> errno. Never blocks. */
  poll_oneoff(inPtr: number, outPtr: number, nsubscriptions: number, neventsPtr: number): number;
  /** (id: clockid, precision: u64, time: *u64) -> errno: REALTIME (0) and MONOTONIC (1), in ns; EINVAL for others. */
  clock_time_get(id: number, precision: bigint, timePtr: number): number;
  /** (id: clockid, resolution: *u64) -> errno. */
  clock_res_get(id: number, resolutionPtr: number): number;
  /** (fd, iovs: *iovec, iovs_len: u32, nread: *u32) -> errno. */
  fd_read(fd: number, iovsPtr: number, iovsLen: number, nreadPtr: number): number;
  /** (fd, iovs: *ciovec, iovs_len: u32, nwritten: *u32) -> errno. */
  fd_write(fd: number, iovsPtr: number, iovsLen: number, nwrittenPtr: number): number;
  /** (fd) -> errno. */
  fd_close(fd: number): number;
  /** (fd, flags: fdflags, result: *fd) -> errno. */
  sock_accept(fd: number, flags: number, resultFdPtr: number): number;
  /** (fd, ri_data: *iovec, ri_data_len: u32, ri_flags: riflags, ro_datalen: *u32, ro_flags: *u16) -> errno. */
  sock_recv(fd: number, iovsPtr: number, iovsLen: number, riFlags: number, roDatalenPtr: number, roFlagsPtr: number): number;
  /** (fd, si_data: *ciovec, si_data_len: u32, si_flags: siflags, so_datalen: *u32) -> errno. */
  sock_send(fd: number, iovsPtr: number, iovsLen: number, siFlags: number, soDatalenPtr: number): number;
  /** (fd, how: sdflags) -> errno. */
  sock_shutdown(fd: number, how: number): number;
}

/**
 * The `wasm_ioloop_sock` extension module. Strings are (pointer, length) of UTF-8
 * in the guest's memory; results go through pointers; each returns a preview1
 * errno (or an ERRNO_EXT_* value for a failed name lookup).
 */
export interface SockImport {
  /**
   * (host_ptr: u32, host_len: u32, port: u32, backlog: u32, flags: u32, result_fd: *u32) -> errno.
   * A TCP listener on host:port (port 0: any free port). `flags`: LISTEN_REUSE_PORT
   * (1) asks for SO_REUSEPORT where the host has it; other bits are EINVAL. The fd
   * comes back at once; the bind may finish later (sock_local_port says when).
   */
  sock_listen_tcp(hostPtr: number, hostLen: number, port: number, backlog: number, flags: number, resultFdPtr: number): number;
  /**
   * (host_ptr: u32, host_len: u32, port: u32, result_fd: *u32) -> errno.
   * Starts a TCP connect to host:port (port 1-65535). The fd comes back at once and
   * reports WRITE readiness when connected; a failed connect reports READ and WRITE
   * with the error and HANGUP, and the next read or write returns the error.
   */
  sock_connect_tcp(hostPtr: number, hostLen: number, port: number, resultFdPtr: number): number;
  /**
   * (fd: u32, result_port: *u32) -> errno.
   * The local port of a listener (EAGAIN until it is bound; its error if the bind
   * failed) or of a connection (EAGAIN while it connects).
   */
  sock_local_port(fd: number, resultPortPtr: number): number;
}

/**
 * The provider's socket calls from JavaScript, in the native sys's convention (a
 * result, or the host's errno negated): {@link WasiProvider.sockets}.
 */
export interface HostSockets {
  /** A listener's fd, or -errno. */
  listenTcp(host: string, port: number, backlog: number, reusePort: boolean): number;
  /** A connecting socket's fd, or -errno. */
  connectTcp(host: string, port: number): number;
  /** The local port, or -errno (-EAGAIN while a listener binds or a socket connects). */
  localPort(fd: number): number;
  pipe: null;
  socketpair: null;
}

/** Options of a {@link WasiProvider}. */
export interface WasiProviderOptions {
  /** The guest's memory, if known already (else {@link WasiProvider.initialize} or {@link WasiProvider.setMemory}). */
  memory?: WebAssembly.Memory;
  /** Whether fds 0-2 exist (fd_write to 1 and 2 writes to process.stdout and process.stderr). Default true. */
  stdio?: boolean;
  /** The lowest number given to a socket. Default 3. */
  firstFd?: number;
  /** Bytes held per socket before it stops reading from the host. Default 65536. */
  readHighWaterMark?: number;
  /**
   * Bytes written per socket that the host has not yet handed to the kernel
   * before fd_write answers EAGAIN. Default 65536.
   */
  writeHighWaterMark?: number;
  /**
   * Bind a listener on a numeric address before sock_listen_tcp returns, in hosts
   * whose public listen() would bind a tick later (Node and Deno): through
   * net.Server's `_listen2`, the call listen() itself makes once the address is
   * resolved. Where that method is missing, or fails to bind, the provider uses
   * listen(). Default true.
   */
  syncListen?: boolean;
  /** How a readiness notification is deferred. Default setImmediate (once per host turn). */
  schedule?: (fire: () => void) => void;
  /** Whether the provider's sockets keep the host's event loop alive (node:net's ref). Default true. */
  ref?: boolean;
}

/** A preview1 call's failure, for the provider's promise APIs: `errno` (preview1) and its Node-style `code`. */
export class WasiError extends Error {
  readonly errno: number;
  readonly code: string;
  constructor(errno: number, code: string, message: string) {
    super(`${message}: ${code}`);
    this.name = 'WasiError';
    this.errno = errno;
    this.code = code;
  }
}

class NoMemoryError extends Error {
  constructor() {
    super('WasiProvider has no memory: call initialize(instance) or setMemory(memory) before the guest calls it');
    this.name = 'NoMemoryError';
  }
}

/** What poll_oneoff reports for one fd subscription. */
interface Readiness {
  ready: boolean;
  nbytes: number;
  flags: number;
  error: number;
}

type Handle = { ref(): unknown; unref(): unknown };

/** A TCP connection: one that the guest connected, or one a listener accepted. */
class Conn {
  fd = -1;
  connected: boolean;
  readonly chunks: Buffer[] = [];
  /** Index of the first unread chunk, and the bytes of it already read. */
  head = 0;
  offset = 0;
  buffered = 0;
  eof = false;
  closed = false;
  error = 0;
  readShut = false;
  writeShut = false;
  paused: boolean;
  /** Bytes handed to the host socket whose write has not completed (not yet in the kernel). */
  unsent = 0;
  /** A write answered EAGAIN: the completion that makes room notifies. */
  blocked = false;
  /** Closed by the guest: its events no longer notify. */
  released = false;
  readonly done: Promise<void>;

  constructor(
    readonly socket: net.Socket,
    connected: boolean,
    paused: boolean,
    private readonly provider: WasiProvider,
  ) {
    this.connected = connected;
    this.paused = paused;
    this.done = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer | string) => this.onData(typeof chunk === 'string' ? Buffer.from(chunk) : chunk));
    socket.on('end', () => {
      this.eof = true;
      this.changed();
    });
    socket.on('connect', () => {
      this.connected = true;
      socket.setNoDelay(true);
      this.changed();
    });
    socket.on('error', (err: unknown) => {
      if (this.error === 0) this.error = errnoOf(err);
      this.changed();
    });
    socket.on('close', () => {
      this.closed = true;
      this.changed();
    });
  }

  private changed(): void {
    if (!this.released) this.provider.notify();
  }

  private onData(chunk: Buffer): void {
    if (this.readShut || this.released) return; // shut for reading: dropped, as shutdown(SHUT_RD) does
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (!this.paused && this.buffered >= this.provider.readHighWaterMark) {
      this.paused = true;
      this.socket.pause();
    }
    this.changed();
  }

  /** Starts reading, as sock_accept hands the connection to the guest. */
  start(): void {
    if (this.buffered < this.provider.readHighWaterMark) {
      this.paused = false;
      this.socket.resume();
    }
  }

  readiness(type: number, out: Readiness): void {
    out.ready = false;
    out.nbytes = 0;
    out.flags = 0;
    out.error = this.error;
    if (type === EVENTTYPE_FD_READ) {
      if (this.readShut) {
        out.ready = true;
        out.flags = EVENT_FD_READWRITE_HANGUP;
      } else if (this.buffered > 0 || this.error !== 0 || this.eof || this.closed) {
        out.ready = true;
        out.nbytes = this.buffered;
        if (this.error !== 0 || this.eof || this.closed) out.flags = EVENT_FD_READWRITE_HANGUP;
      }
      return;
    }
    if (this.error !== 0 || this.closed) {
      out.ready = true;
      out.flags = EVENT_FD_READWRITE_HANGUP;
    } else if (this.writeShut) {
      out.ready = true; // writes fail at once with EPIPE
    } else if (this.connected && this.unsent < this.provider.writeHighWaterMark) {
      out.ready = true;
      out.nbytes = this.provider.writeHighWaterMark - this.unsent;
    }
  }

  /** Copies buffered bytes into the iovecs: the count, or a negated errno. */
  recv(u8: Uint8Array, dv: DataView, iovs: number, iovsLen: number, peek: boolean): number {
    if (this.readShut) return 0;
    if (this.buffered === 0) {
      if (this.error !== 0) return -this.error;
      if (this.eof || this.closed) return 0;
      return -Errno.EAGAIN;
    }
    let total = 0;
    let head = this.head;
    let offset = this.offset;
    for (let i = 0; i < iovsLen && head < this.chunks.length; i++) {
      let ptr = dv.getUint32(iovs + i * IOVEC_SIZE, true);
      let room = dv.getUint32(iovs + i * IOVEC_SIZE + 4, true);
      checkRange(u8, ptr, room);
      while (room > 0 && head < this.chunks.length) {
        const chunk = this.chunks[head];
        const n = Math.min(room, chunk.length - offset);
        u8.set(chunk.subarray(offset, offset + n), ptr);
        ptr += n;
        room -= n;
        total += n;
        offset += n;
        if (offset === chunk.length) {
          head++;
          offset = 0;
        }
      }
    }
    if (peek) return total;
    this.head = head;
    this.offset = offset;
    this.buffered -= total;
    if (this.head === this.chunks.length) {
      this.chunks.length = 0;
      this.head = 0;
    } else if (this.head > 64) {
      this.chunks.splice(0, this.head);
      this.head = 0;
    }
    if (this.paused && this.fd >= 0 && this.buffered < this.provider.readHighWaterMark) {
      this.paused = false;
      this.socket.resume();
    }
    return total;
  }

  /** Hands bytes of the iovecs to the host socket: the count taken, or a negated errno. */
  send(u8: Uint8Array, dv: DataView, iovs: number, iovsLen: number): number {
    if (this.error !== 0) return -this.error;
    if (this.writeShut || this.closed) return -Errno.EPIPE;
    if (!this.connected) return -Errno.EAGAIN;
    const hwm = this.provider.writeHighWaterMark;
    if (this.unsent >= hwm) {
      this.blocked = true;
      return -Errno.EAGAIN;
    }
    const total = gatherLength(u8, dv, iovs, iovsLen);
    if (total === 0) return 0;
    // Past the mark the write is partial, as a kernel's is when its buffer fills.
    const n = Math.min(total, hwm - this.unsent);
    const buf = gather(u8, dv, iovs, iovsLen, n);
    this.unsent += n;
    try {
      this.socket.write(buf, (err?: Error | null) => this.written(n, err));
    } catch (err) {
      this.unsent -= n;
      if (this.error === 0) this.error = errnoOf(err);
      return -this.error;
    }
    return n;
  }

  /** A host write completed (its bytes are in the kernel), or failed. */
  private written(n: number, err: Error | null | undefined): void {
    this.unsent -= n;
    if (err && this.error === 0 && !this.closed) {
      this.error = errnoOf(err);
      this.changed();
    }
    if (this.blocked && this.unsent < this.provider.writeHighWaterMark) {
      this.blocked = false;
      this.changed();
    }
  }

  shutdown(how: number): number {
    if (!this.connected || this.closed || this.error !== 0) return Errno.ENOTCONN;
    if (how & SDFLAGS_RD && !this.readShut) {
      this.readShut = true;
      this.chunks.length = 0;
      this.head = 0;
      this.offset = 0;
      this.buffered = 0;
      if (this.paused) {
        this.paused = false;
        this.socket.resume(); // keep taking the peer's bytes, and drop them
      }
    }
    if (how & SDFLAGS_WR && !this.writeShut) {
      this.writeShut = true;
      this.socket.end();
    }
    return Errno.ESUCCESS;
  }

  /** The guest's close: at once, or once the bytes it wrote have gone out. */
  release(): void {
    this.released = true;
    this.chunks.length = 0;
    this.buffered = 0;
    const s = this.socket;
    if (this.closed || this.error !== 0 || this.unsent === 0 || !this.connected) {
      s.destroy();
      return;
    }
    // Bytes still queued: a FIN after them, then the socket goes (as close(2) of a
    // socket with a full send buffer does). Incoming bytes are dropped meanwhile.
    if (this.paused) s.resume();
    const destroy = (): void => {
      s.destroy();
    };
    s.once('finish', destroy);
    s.once('error', destroy);
    if (!this.writeShut) s.end();
  }
}

/** A TCP listener. */
class Listener {
  bound = false;
  port = 0;
  error = 0;
  released = false;
  readonly queue: Conn[] = [];
  readonly done: Promise<void>;
  private waiters: Array<{ resolve: (port: number) => void; reject: (err: unknown) => void }> = [];

  constructor(
    public fd: number,
    readonly server: net.Server,
    private readonly provider: WasiProvider,
  ) {
    this.done = new Promise<void>((resolve) => server.once('close', () => resolve()));
    server.on('connection', (socket: net.Socket) => {
      const conn = provider.adopt(socket, true, true);
      if (this.released) {
        socket.destroy();
        return;
      }
      this.queue.push(conn);
      this.changed();
    });
    server.on('listening', () => this.markBound());
    server.on('error', (err: unknown) => {
      if (this.error === 0) this.error = errnoOf(err);
      this.settle();
      this.changed();
    });
  }

  private changed(): void {
    if (!this.released) this.provider.notify();
  }

  /** Records the bound port, if the server has one: true then. */
  markBound(): boolean {
    if (this.bound) return true;
    const addr = this.server.address();
    if (addr === null || typeof addr === 'string') return false;
    this.bound = true;
    this.port = addr.port;
    this.settle();
    this.changed();
    return true;
  }

  private settle(): void {
    for (const w of this.waiters.splice(0)) {
      if (this.error !== 0) w.reject(this.provider.errorOf(this.error, 'listen'));
      else if (this.bound) w.resolve(this.port);
      else w.reject(this.provider.errorOf(Errno.EBADF, 'listen'));
    }
  }

  whenBound(): Promise<number> {
    if (this.error !== 0) return Promise.reject(this.provider.errorOf(this.error, 'listen'));
    if (this.released && !this.bound) return Promise.reject(this.provider.errorOf(Errno.EBADF, 'listen'));
    if (this.bound) return Promise.resolve(this.port);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  readiness(type: number, out: Readiness): void {
    out.nbytes = 0;
    out.flags = 0;
    out.error = this.error;
    if (this.error !== 0) {
      out.ready = true;
      out.flags = EVENT_FD_READWRITE_HANGUP;
    } else if (type === EVENTTYPE_FD_READ && this.queue.length > 0) {
      out.ready = true;
      out.nbytes = this.queue.length;
    } else {
      out.ready = false;
    }
  }

  release(): void {
    this.released = true;
    for (const conn of this.queue.splice(0)) conn.socket.destroy();
    try {
      this.server.close();
    } catch {
      // never listened
    }
    this.settle();
  }
}

class Stdio {
  constructor(readonly fd: number) {}
  readiness(type: number, out: Readiness): void {
    out.ready = type === EVENTTYPE_FD_WRITE && this.fd !== 0;
    out.nbytes = out.ready ? 65536 : 0;
    out.flags = 0;
    out.error = 0;
  }
}

type Entry = Conn | Listener | Stdio;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Linux's EIO, for a preview1 value the host has no number for. */
const HOST_EIO = 5;

function isPort(port: unknown, min: number): port is number {
  return typeof port === 'number' && Number.isInteger(port) && port >= min && port <= 65535;
}

function checkRange(u8: Uint8Array, ptr: number, len: number): void {
  if (ptr + len > u8.length) throw new RangeError(`guest range ${ptr}+${len} is outside memory of ${u8.length} bytes`);
}

function gatherLength(u8: Uint8Array, dv: DataView, iovs: number, iovsLen: number): number {
  let total = 0;
  for (let i = 0; i < iovsLen; i++) {
    const ptr = dv.getUint32(iovs + i * IOVEC_SIZE, true);
    const len = dv.getUint32(iovs + i * IOVEC_SIZE + 4, true);
    checkRange(u8, ptr, len);
    total += len;
  }
  return total;
}

/** The first `n` bytes of the iovecs, copied out of the guest's memory. */
function gather(u8: Uint8Array, dv: DataView, iovs: number, iovsLen: number, n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  let at = 0;
  for (let i = 0; i < iovsLen && at < n; i++) {
    const ptr = dv.getUint32(iovs + i * IOVEC_SIZE, true);
    const len = Math.min(dv.getUint32(iovs + i * IOVEC_SIZE + 4, true), n - at);
    out.set(u8.subarray(ptr, ptr + len), at);
    at += len;
  }
  return out;
}

/**
 * A WASI preview1 provider whose sockets are the host's TCP sockets. Give the guest
 * {@link WasiProvider.imports} (or {@link WasiProvider.wasiImport} and
 * {@link WasiProvider.sockImport}), then {@link WasiProvider.initialize} it with the
 * instance; drive it by calling poll_oneoff after each {@link WasiProvider.onReady}
 * notification and each timer. {@link WasiProvider.close} ends every socket.
 */
export class WasiProvider {
  /** The `wasi_snapshot_preview1` functions (bound: they can be called without `this`). */
  readonly wasiImport: WasiImport;
  /** The `wasm_ioloop_sock` functions. */
  readonly sockImport: SockImport;
  /** Bytes held per socket before it stops reading. */
  readonly readHighWaterMark: number;
  /** Bytes written per socket and not yet in the kernel before writes answer EAGAIN. */
  readonly writeHighWaterMark: number;

  private memory: WebAssembly.Memory | undefined;
  private buffer: ArrayBuffer | SharedArrayBuffer | undefined;
  private u8 = new Uint8Array(0);
  private dv = new DataView(new ArrayBuffer(0));
  private readonly fds: Array<Entry | undefined> = [];
  private readonly firstFd: number;
  private freeHint: number;
  private readonly syncListen: boolean;
  private readonly schedule: (fire: () => void) => void;
  private refed: boolean;
  private readonly listeners = new Set<() => void>();
  private scheduled = false;
  private closed = false;
  private lastMonotonic = 0n;
  /** Host handles not yet closed, with the promise of their close. */
  private readonly handles = new Map<Handle, Promise<void>>();
  private readonly scratch: Readiness = { ready: false, nbytes: 0, flags: 0, error: 0 };

  constructor(options: WasiProviderOptions = {}) {
    this.firstFd = options.firstFd ?? 3;
    if (!Number.isInteger(this.firstFd) || this.firstFd < 0) throw new RangeError(`firstFd must be an integer >= 0, got ${this.firstFd}`);
    this.freeHint = this.firstFd;
    this.readHighWaterMark = options.readHighWaterMark ?? 65536;
    if (!Number.isInteger(this.readHighWaterMark) || this.readHighWaterMark < 1) {
      throw new RangeError(`readHighWaterMark must be an integer >= 1, got ${this.readHighWaterMark}`);
    }
    this.writeHighWaterMark = options.writeHighWaterMark ?? 65536;
    if (!Number.isInteger(this.writeHighWaterMark) || this.writeHighWaterMark < 1) {
      throw new RangeError(`writeHighWaterMark must be an integer >= 1, got ${this.writeHighWaterMark}`);
    }
    this.syncListen = options.syncListen ?? true;
    this.schedule = options.schedule ?? ((fire) => void hostSetImmediate(fire));
    this.refed = options.ref ?? true;
    if (options.memory) this.setMemory(options.memory);
    if (options.stdio ?? true) for (let fd = 0; fd < 3; fd++) this.fds[fd] = new Stdio(fd);

    this.wasiImport = {
      poll_oneoff: (i, o, n, p) => this.call(() => this.pollOneoff(i >>> 0, o >>> 0, n >>> 0, p >>> 0)),
      clock_time_get: (id, precision, p) => this.call(() => this.clockTimeGet(id >>> 0, precision, p >>> 0)),
      clock_res_get: (id, p) => this.call(() => this.clockResGet(id >>> 0, p >>> 0)),
      fd_read: (fd, iovs, len, p) => this.call(() => this.fdRead(fd >>> 0, iovs >>> 0, len >>> 0, p >>> 0)),
      fd_write: (fd, iovs, len, p) => this.call(() => this.fdWrite(fd >>> 0, iovs >>> 0, len >>> 0, p >>> 0)),
      fd_close: (fd) => this.call(() => this.fdClose(fd >>> 0)),
      sock_accept: (fd, flags, p) => this.call(() => this.sockAccept(fd >>> 0, flags >>> 0, p >>> 0)),
      sock_recv: (fd, iovs, len, flags, p, q) => this.call(() => this.sockRecv(fd >>> 0, iovs >>> 0, len >>> 0, flags >>> 0, p >>> 0, q >>> 0)),
      sock_send: (fd, iovs, len, flags, p) => this.call(() => this.sockSend(fd >>> 0, iovs >>> 0, len >>> 0, flags >>> 0, p >>> 0)),
      sock_shutdown: (fd, how) => this.call(() => this.sockShutdown(fd >>> 0, how >>> 0)),
    };
    this.sockImport = {
      sock_listen_tcp: (h, hl, port, backlog, flags, p) =>
        this.call(() => this.sockListenTcp(h >>> 0, hl >>> 0, port >>> 0, backlog >>> 0, flags >>> 0, p >>> 0)),
      sock_connect_tcp: (h, hl, port, p) => this.call(() => this.sockConnectTcp(h >>> 0, hl >>> 0, port >>> 0, p >>> 0)),
      sock_local_port: (fd, p) => this.call(() => this.sockLocalPort(fd >>> 0, p >>> 0)),
    };
  }

  /** The import object for WebAssembly.instantiate: both modules. */
  imports(): { [WASI_MODULE]: WasiImport; [SOCK_MODULE]: SockImport } {
    return { [WASI_MODULE]: this.wasiImport, [SOCK_MODULE]: this.sockImport };
  }

  /**
   * Takes the instance's exported `memory`, then calls its `_initialize` export if
   * it has one (as node:wasi's initialize does for a reactor).
   * @throws TypeError if the instance exports no memory.
   */
  initialize(instance: WebAssembly.Instance): void {
    const memory = instance.exports.memory;
    if (!(memory instanceof WebAssembly.Memory)) throw new TypeError('the instance exports no memory named "memory"');
    this.setMemory(memory);
    const init = instance.exports._initialize;
    if (typeof init === 'function') (init as () => void)();
  }

  /** The memory that pointers refer to. Views of it are taken anew whenever memory.grow has replaced its buffer. */
  setMemory(memory: WebAssembly.Memory): void {
    if (!(memory instanceof WebAssembly.Memory)) throw new TypeError('memory must be a WebAssembly.Memory');
    this.memory = memory;
    this.buffer = undefined;
  }

  /**
   * Calls `callback` (at most once per host turn) whenever a descriptor's state
   * changed in a way poll_oneoff may now report. Returns the function that removes it.
   */
  onReady(callback: () => void): () => void {
    if (typeof callback !== 'function') throw new TypeError('onReady needs a function');
    const entry = (): void => callback();
    this.listeners.add(entry);
    return () => {
      this.listeners.delete(entry);
    };
  }

  /**
   * The bound port of listener `fd`, once the bind is done.
   * @throws WasiError (rejects) if the bind failed, or EBADF/ENOTSOCK for a bad fd.
   */
  listening(fd: number): Promise<number> {
    const e = this.fds[fd];
    if (e instanceof Listener) return e.whenBound();
    return Promise.reject(this.errorOf(e === undefined ? Errno.EBADF : Errno.ENOTSOCK, 'listening'));
  }

  /** The open descriptor numbers, stdio included, lowest first. */
  openFds(): number[] {
    const out: number[] = [];
    this.fds.forEach((e, fd) => {
      if (e !== undefined) out.push(fd);
    });
    return out;
  }

  /** Lets the provider's sockets and listeners keep the host's event loop alive (the default). */
  ref(): void {
    this.refed = true;
    for (const h of this.handles.keys()) h.ref();
  }

  /** Lets the host exit while the provider's sockets are open (node:net's unref on each). */
  unref(): void {
    this.refed = false;
    for (const h of this.handles.keys()) h.unref();
  }

  /**
   * Closes every descriptor (sockets destroyed at once, unsent bytes dropped) and
   * resolves once the host has closed all of them, including those the guest closed
   * earlier. The provider answers EBADF afterwards.
   */
  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    for (let fd = this.fds.length - 1; fd >= 0; fd--) this.release(fd);
    for (const h of this.handles.keys()) {
      try {
        if (h instanceof net.Socket) h.destroy();
        else if (h instanceof net.Server) h.close();
      } catch {
        // already closed
      }
    }
    await Promise.all([...this.handles.values()]);
  }

  // ---- sockets from JavaScript: the extension's calls without the guest's memory ----

  /**
   * A TCP listener on host:port (port 0: any free port), as sock_listen_tcp opens
   * it: its fd, or a negated preview1 errno (-EINVAL for bad arguments, -EBADF once
   * closed). The bind may finish later: see {@link WasiProvider.localPort} and
   * {@link WasiProvider.listening}.
   */
  listenTcp(host: string, port: number, backlog = 511, reusePort = false): number {
    if (this.closed) return -Errno.EBADF;
    if (typeof host !== 'string' || host === '' || !isPort(port, 0) || !Number.isInteger(backlog) || backlog < 0 || backlog > 0x7fffffff) {
      return -Errno.EINVAL;
    }
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
    const listener = new Listener(-1, server, this);
    const fd = this.allocate(listener);
    try {
      this.startListen(listener, host, port, backlog, reusePort === true);
    } catch (err) {
      this.release(fd);
      return -errnoOf(err);
    }
    this.track(server, listener.done);
    return fd;
  }

  /**
   * Starts a TCP connect to host:port (port 1-65535), as sock_connect_tcp does: the
   * fd (WRITE readiness once connected), or a negated preview1 errno.
   */
  connectTcp(host: string, port: number): number {
    if (this.closed) return -Errno.EBADF;
    if (typeof host !== 'string' || host === '' || !isPort(port, 1)) return -Errno.EINVAL;
    let socket: net.Socket;
    try {
      socket = net.connect({ host, port, allowHalfOpen: true });
    } catch (err) {
      return -errnoOf(err);
    }
    return this.allocate(this.adopt(socket, false, false));
  }

  /**
   * The local port of a listener or a connection, as sock_local_port reports it:
   * the port, or a negated preview1 errno (-EAGAIN while a listener binds or a
   * connection connects; the listener's error if its bind failed).
   */
  localPort(fd: number): number {
    const e = this.entry(fd);
    if (e === undefined) return -Errno.EBADF;
    if (e instanceof Stdio) return -Errno.ENOTSOCK;
    if (e instanceof Listener) {
      if (e.error !== 0) return -e.error;
      if (!e.bound && !e.markBound()) return -Errno.EAGAIN;
      return e.port;
    }
    const p = e.socket.localPort;
    if (typeof p === 'number') return p;
    return -(e.error !== 0 ? e.error : e.closed ? Errno.ENOTCONN : Errno.EAGAIN);
  }

  /**
   * The socket calls in the native sys's convention: each returns its result, or
   * the host's errno negated (Linux's number; libuv's UV_EAI_* for a failed name
   * lookup), as {@link hostErrno} maps preview1's. No pipes or socket pairs:
   * node:net has no synchronous way to make them.
   */
  sockets(): HostSockets {
    const host = (r: number): number => (r >= 0 ? r : -(hostErrno(-r) ?? HOST_EIO));
    return {
      listenTcp: (h, port, backlog, reusePort) => host(this.listenTcp(h, port, backlog, reusePort)),
      connectTcp: (h, port) => host(this.connectTcp(h, port)),
      localPort: (fd) => host(this.localPort(fd)),
      pipe: null,
      socketpair: null,
    };
  }

  // ---- internals shared with Conn and Listener ----

  /** @internal Schedules the readiness callbacks. */
  notify(): void {
    if (this.scheduled || this.listeners.size === 0) return;
    this.scheduled = true;
    this.schedule(() => {
      this.scheduled = false;
      let first: unknown;
      let threw = false;
      for (const cb of [...this.listeners]) {
        try {
          cb();
        } catch (err) {
          if (!threw) first = err;
          threw = true;
        }
      }
      if (threw) throw first;
    });
  }

  /** @internal A Conn for a host socket, tracked until it closes. */
  adopt(socket: net.Socket, connected: boolean, paused: boolean): Conn {
    const conn = new Conn(socket, connected, paused, this);
    this.track(socket, conn.done);
    if (connected) socket.setNoDelay(true);
    return conn;
  }

  /** @internal */
  errorOf(errno: number, what: string): WasiError {
    return new WasiError(errno, errnoCode(errno), what);
  }

  private track(handle: Handle, done: Promise<void>): void {
    if (!this.refed) handle.unref();
    const settled = done.then(() => {
      this.handles.delete(handle);
    });
    this.handles.set(handle, settled);
  }

  /** Runs one import: its errno, EFAULT for a pointer outside memory, EIO for anything else thrown. */
  private call(body: () => number): number {
    try {
      return body();
    } catch (err) {
      if (err instanceof NoMemoryError) throw err;
      if (err instanceof RangeError) return Errno.EFAULT;
      return Errno.EIO;
    }
  }

  private views(): void {
    const memory = this.memory;
    if (memory === undefined) throw new NoMemoryError();
    const buffer = memory.buffer;
    if (buffer !== this.buffer) {
      this.buffer = buffer;
      this.u8 = new Uint8Array(buffer);
      this.dv = new DataView(buffer);
    }
  }

  private allocate(entry: Conn | Listener): number {
    let fd = this.freeHint;
    while (this.fds[fd] !== undefined) fd++;
    this.fds[fd] = entry;
    entry.fd = fd;
    this.freeHint = fd + 1;
    return fd;
  }

  private release(fd: number): void {
    const e = this.fds[fd];
    if (e === undefined) return;
    this.fds[fd] = undefined;
    if (fd >= this.firstFd && fd < this.freeHint) this.freeHint = fd;
    while (this.fds.length > 0 && this.fds[this.fds.length - 1] === undefined) this.fds.length--;
    if (!(e instanceof Stdio)) e.release();
  }

  private entry(fd: number): Entry | undefined {
    return this.closed ? undefined : this.fds[fd];
  }

  private monotonicNs(): bigint {
    const ms = performance.now();
    const whole = Math.floor(ms);
    let ns = BigInt(whole) * 1_000_000n + BigInt(Math.floor((ms - whole) * 1e6));
    if (ns < this.lastMonotonic) ns = this.lastMonotonic;
    this.lastMonotonic = ns;
    return ns;
  }

  private clockNs(id: number): bigint | undefined {
    if (id === CLOCKID_MONOTONIC) return this.monotonicNs();
    if (id === CLOCKID_REALTIME) return BigInt(Date.now()) * 1_000_000n;
    return undefined;
  }

  // ---- wasi_snapshot_preview1 ----

  private pollOneoff(inPtr: number, outPtr: number, nsubs: number, neventsPtr: number): number {
    if (nsubs === 0) return Errno.EINVAL;
    this.views();
    const { u8, dv } = this;
    checkRange(u8, inPtr, nsubs * SUBSCRIPTION_SIZE);
    checkRange(u8, outPtr, nsubs * EVENT_SIZE);
    checkRange(u8, neventsPtr, 4);
    const r = this.scratch;
    let monotonic: bigint | undefined;
    let realtime: bigint | undefined;
    let n = 0;
    for (let i = 0; i < nsubs; i++) {
      const s = inPtr + i * SUBSCRIPTION_SIZE;
      const tag = u8[s + SUB_TAG];
      r.ready = false;
      r.nbytes = 0;
      r.flags = 0;
      r.error = 0;
      if (tag === EVENTTYPE_CLOCK) {
        const id = dv.getUint32(s + SUB_CLOCK_ID, true);
        const timeout = dv.getBigUint64(s + SUB_CLOCK_TIMEOUT, true);
        const abs = (dv.getUint16(s + SUB_CLOCK_FLAGS, true) & SUBSCRIPTION_CLOCK_ABSTIME) !== 0;
        if (id !== CLOCKID_MONOTONIC && id !== CLOCKID_REALTIME) {
          r.ready = true;
          r.error = Errno.EINVAL;
        } else if (!abs) {
          r.ready = timeout === 0n;
        } else {
          const now = id === CLOCKID_MONOTONIC ? (monotonic ??= this.monotonicNs()) : (realtime ??= BigInt(Date.now()) * 1_000_000n);
          r.ready = now >= timeout;
        }
      } else if (tag === EVENTTYPE_FD_READ || tag === EVENTTYPE_FD_WRITE) {
        const e = this.entry(dv.getUint32(s + SUB_FD, true));
        if (e === undefined) {
          r.ready = true;
          r.error = Errno.EBADF;
        } else {
          e.readiness(tag, r);
        }
      } else {
        return Errno.EINVAL;
      }
      if (!r.ready) continue;
      const o = outPtr + n * EVENT_SIZE;
      u8.copyWithin(o, s, s + 8); // userdata
      u8.fill(0, o + 8, o + EVENT_SIZE);
      dv.setUint16(o + EVENT_ERROR, r.error, true);
      u8[o + EVENT_TYPE] = tag;
      if (tag !== EVENTTYPE_CLOCK) {
        dv.setBigUint64(o + EVENT_NBYTES, BigInt(r.nbytes), true);
        dv.setUint16(o + EVENT_FLAGS, r.flags, true);
      }
      n++;
    }
    dv.setUint32(neventsPtr, n, true);
    return Errno.ESUCCESS;
  }

  private clockTimeGet(id: number, _precision: bigint, timePtr: number): number {
    const ns = this.clockNs(id);
    if (ns === undefined) return Errno.EINVAL;
    this.views();
    this.dv.setBigUint64(timePtr, ns, true);
    return Errno.ESUCCESS;
  }

  private clockResGet(id: number, resolutionPtr: number): number {
    let res: bigint;
    if (id === CLOCKID_MONOTONIC) res = 1_000n;
    else if (id === CLOCKID_REALTIME) res = 1_000_000n;
    else return Errno.EINVAL;
    this.views();
    this.dv.setBigUint64(resolutionPtr, res, true);
    return Errno.ESUCCESS;
  }

  private fdRead(fd: number, iovs: number, iovsLen: number, nreadPtr: number): number {
    const e = this.entry(fd);
    if (e === undefined || e instanceof Stdio) return Errno.EBADF;
    if (e instanceof Listener) return Errno.ENOTCONN;
    this.views();
    checkRange(this.u8, iovs, iovsLen * IOVEC_SIZE);
    checkRange(this.u8, nreadPtr, 4);
    const r = e.recv(this.u8, this.dv, iovs, iovsLen, false);
    if (r < 0) return -r;
    this.dv.setUint32(nreadPtr, r, true);
    return Errno.ESUCCESS;
  }

  private fdWrite(fd: number, iovs: number, iovsLen: number, nwrittenPtr: number): number {
    const e = this.entry(fd);
    if (e === undefined) return Errno.EBADF;
    if (e instanceof Listener) return Errno.ENOTCONN;
    this.views();
    checkRange(this.u8, iovs, iovsLen * IOVEC_SIZE);
    checkRange(this.u8, nwrittenPtr, 4);
    let r: number;
    if (e instanceof Stdio) {
      if (e.fd === 0) return Errno.EBADF;
      r = gatherLength(this.u8, this.dv, iovs, iovsLen);
      if (r > 0) (e.fd === 1 ? process.stdout : process.stderr).write(gather(this.u8, this.dv, iovs, iovsLen, r));
    } else {
      r = e.send(this.u8, this.dv, iovs, iovsLen);
      if (r < 0) return -r;
    }
    this.dv.setUint32(nwrittenPtr, r, true);
    return Errno.ESUCCESS;
  }

  private fdClose(fd: number): number {
    if (this.entry(fd) === undefined) return Errno.EBADF;
    this.release(fd);
    return Errno.ESUCCESS;
  }

  private sockAccept(fd: number, flags: number, resultFdPtr: number): number {
    const e = this.entry(fd);
    if (e === undefined) return Errno.EBADF;
    if (e instanceof Stdio) return Errno.ENOTSOCK;
    if (e instanceof Conn) return Errno.EINVAL;
    if ((flags & ~FDFLAGS_NONBLOCK) !== 0) return Errno.EINVAL;
    this.views();
    checkRange(this.u8, resultFdPtr, 4);
    if (e.error !== 0) return e.error;
    const conn = e.queue.shift();
    if (conn === undefined) return Errno.EAGAIN;
    const newFd = this.allocate(conn);
    conn.start();
    this.dv.setUint32(resultFdPtr, newFd, true);
    return Errno.ESUCCESS;
  }

  private sockRecv(fd: number, iovs: number, iovsLen: number, riFlags: number, roDatalenPtr: number, roFlagsPtr: number): number {
    const e = this.entry(fd);
    if (e === undefined) return Errno.EBADF;
    if (e instanceof Stdio) return Errno.ENOTSOCK;
    if (e instanceof Listener) return Errno.ENOTCONN;
    if ((riFlags & ~(RIFLAGS_RECV_PEEK | RIFLAGS_RECV_WAITALL)) !== 0) return Errno.EINVAL;
    this.views();
    checkRange(this.u8, iovs, iovsLen * IOVEC_SIZE);
    checkRange(this.u8, roDatalenPtr, 4);
    checkRange(this.u8, roFlagsPtr, 2);
    // WAITALL cannot wait here: like MSG_WAITALL on a nonblocking socket, the bytes there are returned.
    const r = e.recv(this.u8, this.dv, iovs, iovsLen, (riFlags & RIFLAGS_RECV_PEEK) !== 0);
    if (r < 0) return -r;
    this.dv.setUint32(roDatalenPtr, r, true);
    this.dv.setUint16(roFlagsPtr, 0, true); // a byte stream never truncates
    return Errno.ESUCCESS;
  }

  private sockSend(fd: number, iovs: number, iovsLen: number, siFlags: number, soDatalenPtr: number): number {
    const e = this.entry(fd);
    if (e === undefined) return Errno.EBADF;
    if (e instanceof Stdio) return Errno.ENOTSOCK;
    if (e instanceof Listener) return Errno.ENOTCONN;
    if (siFlags !== 0) return Errno.EINVAL;
    this.views();
    checkRange(this.u8, iovs, iovsLen * IOVEC_SIZE);
    checkRange(this.u8, soDatalenPtr, 4);
    const r = e.send(this.u8, this.dv, iovs, iovsLen);
    if (r < 0) return -r;
    this.dv.setUint32(soDatalenPtr, r, true);
    return Errno.ESUCCESS;
  }

  private sockShutdown(fd: number, how: number): number {
    const e = this.entry(fd);
    if (e === undefined) return Errno.EBADF;
    if (e instanceof Stdio) return Errno.ENOTSOCK;
    if (how === 0 || (how & ~(SDFLAGS_RD | SDFLAGS_WR)) !== 0) return Errno.EINVAL;
    if (e instanceof Listener) return Errno.ENOTCONN;
    return e.shutdown(how);
  }

  // ---- wasm_ioloop_sock ----

  private host(ptr: number, len: number): string | undefined {
    this.views();
    checkRange(this.u8, ptr, len);
    if (len === 0) return undefined;
    try {
      return utf8.decode(this.u8.subarray(ptr, ptr + len));
    } catch {
      return undefined;
    }
  }

  private sockListenTcp(hostPtr: number, hostLen: number, port: number, backlog: number, flags: number, resultFdPtr: number): number {
    if (this.closed) return Errno.EBADF;
    const host = this.host(hostPtr, hostLen);
    if (host === undefined || (flags & ~LISTEN_REUSE_PORT) !== 0) return Errno.EINVAL;
    checkRange(this.u8, resultFdPtr, 4);
    const fd = this.listenTcp(host, port, backlog, (flags & LISTEN_REUSE_PORT) !== 0);
    if (fd < 0) return -fd;
    this.dv.setUint32(resultFdPtr, fd, true);
    return Errno.ESUCCESS;
  }

  private startListen(listener: Listener, host: string, port: number, backlog: number, reusePort: boolean): void {
    const server = listener.server as net.Server & { _listen2?: (...args: unknown[]) => void; _handle?: unknown };
    const family = net.isIP(host);
    if (this.syncListen && !reusePort && family !== 0 && typeof server._listen2 === 'function') {
      let called = false;
      try {
        server._listen2(host, port, family, backlog, undefined, 0);
        called = true;
      } catch {
        // not the method this provider knows: the public listen below
      }
      if (called) {
        listener.markBound(); // bound now; or failed, and 'error' follows within the tick
        return;
      }
    }
    const options: net.ListenOptions & { reusePort?: boolean } = { host, port, backlog: backlog === 0 ? undefined : backlog };
    if (reusePort) options.reusePort = true;
    server.listen(options);
    listener.markBound(); // hosts that bind within listen() (Bun)
  }

  private sockConnectTcp(hostPtr: number, hostLen: number, port: number, resultFdPtr: number): number {
    if (this.closed) return Errno.EBADF;
    const host = this.host(hostPtr, hostLen);
    if (host === undefined) return Errno.EINVAL;
    checkRange(this.u8, resultFdPtr, 4);
    const fd = this.connectTcp(host, port);
    if (fd < 0) return -fd;
    this.dv.setUint32(resultFdPtr, fd, true);
    return Errno.ESUCCESS;
  }

  private sockLocalPort(fd: number, resultPortPtr: number): number {
    const port = this.localPort(fd);
    if (port < 0) return -port;
    this.views();
    this.dv.setUint32(resultPortPtr, port, true);
    return Errno.ESUCCESS;
  }
}
