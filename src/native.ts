// Loading of the native shim (build/Release/wasm_ioloop.node, built from
// bindings/*.c by node-gyp at install time) and its typed interface.
//
// The shim is Linux-only (epoll, eventfd, accept4, pipe2). Where it is absent,
// or when WASM_IOLOOP_NO_NATIVE=1, loadNative() returns null and the runtime
// uses its portable driver.
//
// Conventions of every function below (see bindings/util.h):
//   - Misuse (a wrong type, a missing argument, a value out of range, a closed
//     guest object) throws a TypeError (or an Error for a closed guest) whose
//     message names the function, the argument and the rule, e.g.
//     "epollCtl: fd must be an integer >= 0 (got 1.5)". Nothing aborts.
//   - A failing system call never throws: the function returns -errno (a
//     negative number; `os.constants.errno` names them). Name resolution
//     failures return libuv's negative UV_EAI_* codes, which
//     `util.getSystemErrorName()` names (e.g. 'ENOTFOUND').
//   - Every descriptor created is O_NONBLOCK and O_CLOEXEC.
//   - Functions run on the calling thread and touch only the calling
//     environment's state (each worker loads its own instance), unless stated.

import * as fs from 'fs';
import * as path from 'path';
import type { CoreLayout } from './core';

/**
 * The constants and record layout shared with the WebAssembly core (from
 * bindings/layout.h, whose source of truth is assembly/layout.ts), and the
 * operating system's own EPOLL and POLL values beside them, so a test can check
 * the two against each other. The object is frozen.
 */
export interface NativeLayout
  extends Pick<
    CoreLayout,
    | 'EV_NONE' | 'EV_READ' | 'EV_WRITE' | 'EV_ERROR'
    | 'EVENT_SIZE' | 'EVENT_TOKEN_OFFSET' | 'EVENT_EVENTS_OFFSET'
    | 'HANDLER_SLOT_BITS' | 'WAKER_TOKEN'
    | 'CTL_ADD' | 'CTL_DEL' | 'CTL_MOD'
  > {
  /** The operating system's own values, from <sys/epoll.h> and <poll.h>. */
  readonly EPOLLIN: number;
  readonly EPOLLOUT: number;
  readonly EPOLLERR: number;
  readonly EPOLLHUP: number;
  readonly POLLIN: number;
  readonly POLLOUT: number;
  readonly POLLERR: number;
  readonly POLLHUP: number;
  readonly EPOLL_CTL_ADD: number;
  readonly EPOLL_CTL_DEL: number;
  readonly EPOLL_CTL_MOD: number;
}

/** Syscall counts of one environment, for tests and benchmarks that bound them. */
export interface NativeCounters {
  /** epoll_wait(2) calls made by epollWait (an interrupted wait that is resumed counts twice). */
  epollWait: number;
  /** epoll_ctl(2) calls made by epollCtl. */
  epollCtl: number;
  /** write(2) calls made by wake() from this environment, whichever environment owns the eventfd. */
  wakes: number;
}

/** An open guest driver, as returned by {@link NativeShim.guestOpen}. Opaque. */
export type GuestHandle = object;

/**
 * The native shim's exports.
 *
 * Thread-safety: each worker thread that loads the shim gets its own instance
 * with its own state; call a function only from the thread that loaded it,
 * except {@link NativeShim.wake}, which may target any environment's eventfd.
 * Descriptors are process-wide numbers and may be used from any thread.
 */
export interface NativeShim {
  /** Shared constants; see {@link NativeLayout}. */
  readonly layout: NativeLayout;

  // ---- poller (hot path: numbers in, -errno out) ----

  /**
   * Creates an epoll instance (`EPOLL_CLOEXEC`): the fd or -errno. The fd is owned
   * by this environment: its teardown closes it unless {@link NativeShim.close}
   * did first.
   */
  epollCreate(): number;
  /**
   * `epoll_ctl(epfd, op, fd)`, level-triggered: 0 or -errno (EBADF, EEXIST, ENOENT, EPERM...).
   * `op` is CTL_ADD, CTL_DEL or CTL_MOD; `events` a combination of EV_READ, EV_WRITE
   * and EV_ERROR (errors and hang-ups are reported whether asked for or not);
   * `token` (u32) comes back verbatim in each ready record. For CTL_DEL, `events`
   * and `token` are ignored and may be omitted.
   * @throws TypeError on misuse (e.g. unknown event bits, a token outside u32).
   */
  epollCtl(epfd: number, op: number, fd: number, events?: number, token?: number): number;
  /**
   * `epoll_wait`: the number of ready records written, or -errno. Each record is
   * EVENT_SIZE bytes, (u32 token, u32 events) little-endian, written from
   * `byteOffset` of `buffer`; at most 1024 records per call (the rest stay ready).
   * `timeoutMs` < 0 (or Infinity) waits forever; fractions round up, so the
   * wait never ends before the time asked for; an interrupted wait resumes with
   * the time left. Pass a WebAssembly memory's `buffer` afresh on every call:
   * `memory.grow` detaches the old one.
   * @throws TypeError if `buffer` is not an ArrayBuffer, is detached, or
   *   `byteOffset + maxEvents * EVENT_SIZE` exceeds its byteLength.
   */
  epollWait(epfd: number, buffer: ArrayBuffer, byteOffset: number, maxEvents: number, timeoutMs: number): number;
  /** Creates a nonblocking eventfd (the waker): the fd or -errno. Owned by this environment, as for epollCreate. */
  eventfdOpen(): number;
  /**
   * Adds 1 to an eventfd: 0 or -errno. A full counter (EAGAIN) is already a pending
   * wake and counts as success. Thread-safe: one write(2), no shared state; call it
   * from any thread on any environment's eventfd.
   */
  wake(fd: number): number;
  /** Reads and resets an eventfd's counter: the value, 0 if nothing was pending, or -errno. */
  consume(fd: number): number;
  /**
   * Closes any fd: 0 or -errno. Forgets ownership (whichever environment owned it),
   * and stops a guest driver of this environment that watches it. Close owned fds
   * only through this function, so that teardown never closes a reused number.
   */
  close(fd: number): number;
  /** This environment's syscall counts; a fresh object on each call. */
  counters(): NativeCounters;

  // ---- guest driver: our epoll fd watched by Node's own libuv loop ----

  /**
   * Watches `epfd` from this environment's libuv loop: a uv_poll_t on it and a
   * uv_timer_t, both stopped and unreferenced (an open guest never keeps Node
   * alive). `onTurn(1)` runs when `epfd` is readable, `onTurn(2)` when the armed
   * timer fires, `onTurn(-errno)` if libuv reports a poll error (the poll is then
   * stopped). onTurn runs as a Node callback: microtasks and process.nextTick run
   * right after it; an exception it throws goes to 'uncaughtException'.
   * The returned object is held weakly while stopped; if it is collected unclosed,
   * its handles are closed.
   * @throws TypeError on misuse; Error (with `code`, e.g. 'EEXIST' when another
   *   handle of this loop already watches `epfd`, 'EBADF') if libuv refuses the fd.
   */
  guestOpen(epfd: number, onTurn: (reason: number) => void): GuestHandle;
  /**
   * Starts watching `epfd` and references both handles: a started guest keeps Node
   * alive until {@link NativeShim.guestStop}. Idempotent.
   * @throws Error if the guest is closed, its epfd was closed (`code` 'EBADF'), or
   *   another started guest of this environment watches the same epfd ('EEXIST').
   */
  guestStart(g: GuestHandle): void;
  /**
   * Arms the timer for `timeoutMs` from now (rounded up, after refreshing libuv's
   * cached time), replacing any earlier arming; `timeoutMs` < 0 or Infinity stops
   * it. Cheap enough to call once per loop turn.
   * @throws Error if the guest is closed.
   */
  guestArm(g: GuestHandle, timeoutMs: number): void;
  /**
   * Stops the poll and the timer and unreferences both: a stopped guest never keeps
   * Node alive. Idempotent.
   * @throws Error if the guest is closed.
   */
  guestStop(g: GuestHandle): void;
  /** Closes both handles (memory is freed once libuv confirms). Idempotent. */
  guestClose(g: GuestHandle): void;

  // ---- sys: raw nonblocking descriptors (API.md "Raw system calls") ----

  /** `pipe2(O_NONBLOCK | O_CLOEXEC)`: `[readFd, writeFd]` or -errno. */
  pipe(): [number, number] | number;
  /** A connected pair of AF_UNIX SOCK_STREAM sockets, nonblocking, close-on-exec: the fds or -errno. */
  socketpair(): [number, number] | number;
  /**
   * Reads into the bytes `view` covers (its byteOffset and byteLength): the count,
   * 0 at end of file, or -errno (-EAGAIN when it would block).
   * @throws TypeError if `view` is not an ArrayBufferView or is empty (a 0-byte read would look like EOF).
   */
  read(fd: number, view: ArrayBufferView): number;
  /**
   * Writes the bytes `view` covers: the count or -errno (-EAGAIN when it would
   * block, -EPIPE when the reader is gone). Never raises SIGPIPE on sockets
   * (MSG_NOSIGNAL); on pipes it relies on Node ignoring SIGPIPE, which Node does
   * for the whole process at startup.
   */
  write(fd: number, view: ArrayBufferView): number;
  /**
   * A nonblocking TCP socket listening on `host:port` with SO_REUSEADDR (and
   * SO_REUSEPORT if `reusePort`): the fd or -errno. `host` is a numeric IPv4/IPv6
   * address or a name (resolved synchronously with getaddrinfo; the first address
   * that binds wins). Port 0 picks a free port; see {@link NativeShim.localPort}.
   */
  listenTcp(host: string, port: number, backlog: number, reusePort: boolean): number;
  /** The local port a socket is bound to, or -errno (-EAFNOSUPPORT for non-IP sockets). */
  localPort(fd: number): number;
  /**
   * `accept4`, nonblocking and close-on-exec: the new fd, -EAGAIN when none is
   * pending, or -errno. Sets TCP_NODELAY on TCP connections. Connections aborted
   * while queued are skipped.
   */
  accept(fd: number): number;
  /**
   * Starts a nonblocking TCP connect with TCP_NODELAY: the fd (WRITE readiness
   * means the connect finished; a failure shows up in the next read or write) or
   * -errno. Tries each address of `host` until one starts connecting.
   */
  connectTcp(host: string, port: number): number;
}

/**
 * Where the shim lives: build/Release beside src/ (tests, tsx) and dist/ (the package).
 * `WASM_IOLOOP_NATIVE_PATH` names another build of it (the sanitizer build of
 * `npm run test:asan`).
 */
const NATIVE_PATH = process.env.WASM_IOLOOP_NATIVE_PATH || path.join(__dirname, '..', 'build', 'Release', 'wasm_ioloop.node');

let cached: { shim: NativeShim | null; reason: string } | undefined;

function load(): { shim: NativeShim | null; reason: string } {
  if (process.env.WASM_IOLOOP_NO_NATIVE === '1') {
    return { shim: null, reason: 'WASM_IOLOOP_NO_NATIVE=1 is set' };
  }
  if (!fs.existsSync(NATIVE_PATH)) {
    return { shim: null, reason: `${NATIVE_PATH} does not exist (build it with \`node scripts/install-native.js\`)` };
  }
  try {
    const shim = require(NATIVE_PATH) as NativeShim;
    return { shim, reason: '' };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`cannot load the native shim ${NATIVE_PATH}: ${message}`, { cause: error });
  }
}

/**
 * The native shim, or null when it is not available: `WASM_IOLOOP_NO_NATIVE=1`
 * is set, or build/Release/wasm_ioloop.node does not exist. Loaded once per
 * thread (module instance) and cached, including a null result.
 *
 * Thread-safety: call it on any thread; each worker loads its own instance.
 * @throws Error naming the path if the file exists but fails to load (e.g. built
 *   for another Node ABI or platform). A failed load is not cached.
 */
export function loadNative(): NativeShim | null {
  cached ??= load();
  return cached.shim;
}

/**
 * The native shim, for callers that cannot work without it.
 *
 * @param what - what needs it, for the message (e.g. "backend 'epoll'").
 * @throws Error `"<what> needs the native shim (build/Release/wasm_ioloop.node),
 *   which is not available: <reason>"` when {@link loadNative} returns null, or
 *   the load error itself.
 */
export function requireNative(what: string): NativeShim {
  const shim = loadNative();
  if (shim) return shim;
  throw new Error(
    `${what} needs the native shim (build/Release/wasm_ioloop.node), which is not available: ${cached?.reason ?? 'unknown'}`,
  );
}
