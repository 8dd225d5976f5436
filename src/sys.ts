import { Errno, SysError } from './errors';
import { requireNative, type NativeShim } from './native';
import { checkInteger, describe } from './validate';

let shim: NativeShim | undefined;
function native(): NativeShim {
  return (shim ??= requireNative('sys'));
}

function checkFd(fd: unknown, name = 'fd'): asserts fd is number {
  checkInteger(fd, name, 0);
}

function checkBuffer(buf: unknown, name = 'buf'): asserts buf is Uint8Array {
  if (!ArrayBuffer.isView(buf)) throw new TypeError(`${name} must be a Uint8Array (or another ArrayBufferView), got ${describe(buf)}`);
}

/** Returns `r` when it is not a negative errno; throws a SysError for it otherwise. */
function ok(r: number, syscall: string, detail?: string): number {
  if (r < 0) throw new SysError(-r, syscall, detail);
  return r;
}

function pair(r: [number, number] | number, syscall: string): [number, number] {
  if (typeof r === 'number') throw new SysError(-r, syscall);
  return r;
}

/** The descriptor calls of a backend; see {@link sys}. */
export interface Sys {
  /** A nonblocking pipe: `[readFd, writeFd]`. */
  pipe(): [readFd: number, writeFd: number];
  /** A connected pair of nonblocking AF_UNIX stream sockets. */
  socketpair(): [number, number];
  /** Reads into `buf`: the bytes read, 0 at end of file, or -1 if it would block. */
  read(fd: number, buf: Uint8Array): number;
  /** Writes from `buf`: the bytes written, or -1 if it would block. */
  write(fd: number, buf: Uint8Array): number;
  /** Closes an fd. */
  close(fd: number): void;
  /** A nonblocking TCP socket listening on `host:port` (`port` 0: any free port). */
  listenTcp(host: string, port: number, options?: { backlog?: number; reusePort?: boolean }): number;
  /** The local port an fd's socket is bound to. */
  localPort(fd: number): number;
  /** Accepts a pending connection: a new nonblocking fd, or -1 if none is pending. */
  accept(fd: number): number;
  /** Starts a nonblocking TCP connect: the fd reports WRITE when it is done. */
  connectTcp(host: string, port: number): number;
}

/**
 * Raw, nonblocking descriptors for handlers to watch: thin wrappers over the system
 * calls of the native shim. Every fd they create is `O_NONBLOCK | O_CLOEXEC`.
 *
 * Thread-safety: each call is one system call on the caller's thread; fds are
 * process-wide, so they may be used from any thread that knows the number.
 * Failures throw {@link SysError}; bad arguments throw a TypeError or RangeError
 * naming the argument. Needs the native shim: without it every call throws an
 * Error saying so.
 */
export const sys: Sys = {
  /** A nonblocking pipe: `[readFd, writeFd]`. */
  pipe(): [readFd: number, writeFd: number] {
    return pair(native().pipe(), 'pipe2');
  },

  /** A connected pair of nonblocking AF_UNIX stream sockets. */
  socketpair(): [number, number] {
    return pair(native().socketpair(), 'socketpair');
  },

  /** Reads into `buf`: the bytes read, 0 at end of file, or -1 if it would block. */
  read(fd: number, buf: Uint8Array): number {
    checkFd(fd);
    checkBuffer(buf);
    const r = native().read(fd, buf);
    if (r === -Errno.EAGAIN) return -1;
    return ok(r, 'read');
  },

  /** Writes from `buf`: the bytes written, or -1 if it would block. A closed peer throws EPIPE (never a signal). */
  write(fd: number, buf: Uint8Array): number {
    checkFd(fd);
    checkBuffer(buf);
    const r = native().write(fd, buf);
    if (r === -Errno.EAGAIN) return -1;
    return ok(r, 'write');
  },

  /** Closes an fd. Closing one twice throws EBADF. */
  close(fd: number): void {
    checkFd(fd);
    ok(native().close(fd), 'close');
  },

  /**
   * A nonblocking TCP socket listening on `host:port` (`port` 0: any free port; see
   * {@link sys.localPort}). `SO_REUSEADDR` is always set; `reusePort` adds `SO_REUSEPORT`.
   */
  listenTcp(host: string, port: number, options: { backlog?: number; reusePort?: boolean } = {}): number {
    if (typeof host !== 'string' || host === '') throw new TypeError(`host must be a non-empty string, got ${describe(host)}`);
    checkInteger(port, 'port', 0);
    if (port > 65535) throw new RangeError(`port must be <= 65535, got ${port}`);
    const backlog = options.backlog ?? 511;
    checkInteger(backlog, 'options.backlog', 0);
    return ok(native().listenTcp(host, port, backlog, options.reusePort === true), 'listen', `${host}:${port}`);
  },

  /** The local port an fd's socket is bound to. */
  localPort(fd: number): number {
    checkFd(fd);
    return ok(native().localPort(fd), 'getsockname');
  },

  /** Accepts a pending connection: a new nonblocking fd, or -1 if none is pending. */
  accept(fd: number): number {
    checkFd(fd);
    const r = native().accept(fd);
    if (r === -Errno.EAGAIN) return -1;
    return ok(r, 'accept4');
  },

  /** Starts a nonblocking TCP connect: the fd reports WRITE when it is done (check it with a read or write). */
  connectTcp(host: string, port: number): number {
    if (typeof host !== 'string' || host === '') throw new TypeError(`host must be a non-empty string, got ${describe(host)}`);
    checkInteger(port, 'port', 1);
    if (port > 65535) throw new RangeError(`port must be <= 65535, got ${port}`);
    return ok(native().connectTcp(host, port), 'connect', `${host}:${port}`);
  },
};
