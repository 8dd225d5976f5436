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
    | 'TURN_IO' | 'TURN_TIMER' | 'READY_CAPACITY'
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
  /** write(2) calls made by wake() and wakeId() from this environment, whichever environment owns the eventfd. */
  wakes: number;
}

/** An open guest driver, as returned by {@link NativeShim.guestOpen}. Opaque. */
export type GuestHandle = object;

/**
 * The native shim's exports.
 *
 * Thread-safety: each worker thread that loads the shim gets its own instance
 * with its own state; call a function only from the thread that loaded it,
 * except {@link NativeShim.wake}, which may target any environment's eventfd,
 * and {@link NativeShim.wakeId}, which may name any environment's waker.
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
   * `byteOffset` of `buffer`; at most READY_CAPACITY records per call (the rest stay ready).
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

  // ---- waker registry: ids that name a waker without naming its fd (channels) ----

  /**
   * Registers `fd` (a loop's waker eventfd) in the process-wide waker registry:
   * a new id (an integer >= 1), or -errno (-EBADF if `fd` is not open, -ENOMEM).
   * Ids come from one counter that only grows, so an id is never given out twice
   * and a retired one never names another fd. The entry belongs to this
   * environment; its teardown retires it before closing the descriptors it owns.
   * The same fd may be registered more than once, each id retired on its own;
   * keep the fd open until every id naming it is unregistered.
   * @throws TypeError if `fd` is not an integer >= 0.
   */
  wakerRegister(fd: number): number;
  /**
   * Adds 1 to the eventfd behind `id`: 0, -EBADF if `id` was retired, -ESRCH if it
   * was never given out, or the write's -errno (a full counter is a pending wake and
   * counts as success). The lookup and the write happen under the registry's
   * mutex, so a write never reaches an fd after its id was unregistered.
   * Thread-safe: call it from any thread, on any environment's id; it counts in
   * this environment's counters().wakes.
   * @throws TypeError if `id` is not an integer in [1, 2**53 - 1].
   */
  wakeId(id: number): number;
  /**
   * Retires `id`: 0, -EBADF if already retired, -ESRCH if never given out, -EPERM
   * if another environment registered it. Once it returns, no wakeId write to the
   * fd is in progress or can start through `id`, so the fd may be closed.
   * @throws TypeError if `id` is not an integer in [1, 2**53 - 1].
   */
  wakerUnregister(id: number): number;
  /**
   * Closes any fd: 0 or -errno. Forgets ownership (whichever environment owned it),
   * stops a guest driver or watcher of this environment that watches it, frees a poll
   * set whose fd it is, and unregisters it from this environment's poll sets. Close owned fds
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
   *   handle of this loop already watches `epfd`, 'EBADF') if libuv refuses the fd;
   *   Error with code 'ENOSYS' naming the missing function where the host has no libuv.
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

  // ---- poll set: the epoll poller's contract on poll(2) ----

  /**
   * Creates a poll set: a table of registrations waited on with poll(2), with the
   * contract of an epoll fd ({@link NativeShim.epollCtl}, {@link NativeShim.epollWait}).
   * Returns the set's fd (an eventfd the set owns, nonblocking, close-on-exec) or -errno.
   * Owned by this environment: {@link NativeShim.close} on it frees the set, and the
   * environment's teardown frees sets left open. `wake(pfd)` from any thread makes a
   * pollWait in progress return early (perhaps with 0 records) and turns a watcher
   * waiting on the set; the set's own eventfd is never reported as a record.
   */
  pollCreate(): number;
  /**
   * Adds, changes or removes `fd` in the set `pfd`, level-triggered: 0 or -errno, with
   * epoll_ctl's errnos: EBADF (`pfd` or `fd` closed), EINVAL (`pfd` is not a poll set of
   * this environment, or `fd === pfd`), EEXIST, ENOENT, ENOMEM. Same ops, EV_* bits and
   * u32 tokens as epollCtl; regular files are accepted (poll(2) reports them always
   * ready). For CTL_DEL, `events` and `token` are ignored and may be omitted. A watcher
   * waiting on the set picks up the change at once.
   * @throws TypeError on misuse, with epollCtl's messages (naming `pfd` for `epfd`).
   */
  pollCtl(pfd: number, op: number, fd: number, events?: number, token?: number): number;
  /**
   * poll(2) on the set: the number of ready records written, or -errno. Same record
   * format, at most READY_CAPACITY records per call, timeout rounding and EINTR
   * resumption as epollWait. A record carries the ready part of the registered
   * interest plus the error and hang-up bits. A descriptor closed while registered is
   * dropped, as epoll forgets a closed fd: close() through the shim unregisters it
   * from this environment's sets, and one closed any other way is removed silently by
   * the next pollWait (no record, no spin). When more descriptors are ready than
   * `maxEvents`, the next call starts where this one stopped. Its cost grows with the
   * number of registrations (poll(2) scans them all), unlike epollWait.
   * @throws TypeError as epollWait does.
   */
  pollWait(pfd: number, buffer: ArrayBuffer, byteOffset: number, maxEvents: number, timeoutMs: number): number;

  // ---- watcher: a thread waits on the poller and turns the loop (hosts without libuv; poll sets) ----

  /**
   * Opens a watcher: a thread of its own that waits with poll(2) on `pollerFd` and calls
   * `onTurn` on this thread through a thread-safe function. `kind` 'epoll': `pollerFd` is
   * an epoll fd (polled for readability, which consumes no events); 'poll': a poll set
   * of this environment from {@link NativeShim.pollCreate}, followed as pollCtl changes
   * it. The watcher starts stopped and unreferenced: an open watcher that is not
   * started never keeps the host alive. `onTurn(TURN_IO)` when the poller is ready,
   * `onTurn(TURN_TIMER)` when the armed timeout passes, `onTurn(-errno)` once if poll(2)
   * fails or the poller is found closed (the watcher then ignores arms until it is
   * stopped and started again). onTurn runs as a host callback (process.nextTick and
   * microtasks right after it); an exception it throws goes to 'uncaughtException'.
   * Needs no libuv (works in Bun and Deno) and works in worker threads. Several
   * watchers may watch one poller. The object is held weakly while stopped; if it is
   * collected unclosed, the watcher is closed.
   * @throws TypeError on misuse (`kind` not 'epoll' or 'poll', `pollerFd` not an epoll fd
   *   for 'epoll' or not a poll set of this environment for 'poll', `onTurn` not a
   *   function); Error with code 'EBADF' if `pollerFd` is closed.
   */
  watcherOpen(pollerFd: number, kind: WatcherKind, onTurn: (reason: number) => void): GuestHandle;
  /**
   * Starts the watcher (it waits whenever armed) and references it: a started watcher
   * keeps the host alive until {@link NativeShim.watcherStop}. Idempotent.
   * @throws Error if the watcher is closed (`code` 'ERR_WATCHER_CLOSED') or its poller was
   *   closed (`code` 'EBADF').
   */
  watcherStart(w: GuestHandle): void;
  /**
   * Arms one turn: the thread waits until the poller is ready or `timeoutMs` from now
   * has passed (rounded up; < 0 or Infinity: readiness only; 0: turn as soon as
   * possible), calls onTurn once, then waits for the next watcherArm before polling
   * again, so a descriptor that stays ready costs one turn per arm, never a spin.
   * Arming again replaces the timeout, also during a wait. An arm made while stopped is
   * kept until watcherStart. Turns queued but not yet delivered are delivered as one.
   * @throws TypeError if `timeoutMs` is not a number or is NaN; Error if the watcher is closed.
   */
  watcherArm(w: GuestHandle, timeoutMs: number): void;
  /**
   * Stops waiting, disarms, drops a turn not yet delivered and unreferences: a stopped
   * watcher never keeps the host alive. Returns once the thread is out of poll(2).
   * Idempotent.
   * @throws Error if the watcher is closed.
   */
  watcherStop(w: GuestHandle): void;
  /**
   * Ends and joins the watcher's thread and releases everything. Idempotent. The
   * environment's teardown closes watchers left open.
   */
  watcherClose(w: GuestHandle): void;

  // ---- signals: one process-wide sigaction handler that wakes the loops watching (bindings/signals.c) ----

  /**
   * Opens a signal watch for a loop: a slot in the process-wide table that the
   * shim's signal handler reads. The slot keeps its own duplicate of `wakerFd`
   * (an eventfd, such as the loop's waker), so closing the loop's eventfd never
   * leaves the handler writing to a reused number. The watch starts with no
   * signals. Owned by this environment: its teardown closes the watches left
   * open, and a handle collected unclosed is closed. At most 1024 watches are
   * open in the process at once.
   * @throws TypeError if `wakerFd` is not an fd number; Error with `code` 'EBADF'
   *   (not open), 'EINVAL' (not an eventfd), 'EMFILE' (no descriptor left for the
   *   duplicate) or 'ENOSPC' (1024 watches open already).
   */
  signalOpen(wakerFd: number): SignalHandle;
  /**
   * Watches signal `signo`: from now on each arrival marks it pending for this
   * watch and writes 1 to the watch's eventfd (from the handler, on whichever
   * thread the signal lands). The first watch of a signal in the process installs
   * the shim's handler (SA_SIGINFO | SA_RESTART, plus SA_ONSTACK if the previous
   * handler had it; all signals blocked while it runs) and remembers what was there; after waking the loops, the
   * handler calls that previous handler if it is a function not installed with
   * SA_RESETHAND (not SIG_DFL, SIG_IGN, nor a one-shot handler such as Node's own
   * SIGINT/SIGTERM handler, which would end the process). If another handler
   * replaced the shim's since, it is put back, chaining to that one. Idempotent.
   * Returns 0 or -errno (-EINVAL for SIGKILL, SIGSTOP and the C library's
   * reserved signals). Thread-safe (a process-wide mutex), like every signal*
   * function.
   * @throws TypeError if `signo` is not an integer in [1, 64]; Error with `code`
   *   'ERR_SIGNAL_CLOSED' if `h` is closed.
   */
  signalAdd(h: SignalHandle, signo: number): number;
  /**
   * Stops watching `signo` and drops its pending mark. When no watch of the
   * process is left for it, restores the disposition found when the shim
   * installed its handler (handler, flags and mask), but only if the shim's
   * handler is still the one installed: code that replaced it owns the signal.
   * Does nothing if `signo` is not watched. Returns 0 or -errno.
   * @throws as {@link NativeShim.signalAdd}.
   */
  signalRemove(h: SignalHandle, signo: number): number;
  /**
   * The lowest signal number that arrived for this watch and was not taken yet,
   * clearing its mark; 0 when none is pending. Several arrivals before it is
   * taken count once. Call it after reading the eventfd, until it returns 0.
   * Lock-free.
   * @throws TypeError for a bad `h`; Error with `code` 'ERR_SIGNAL_CLOSED' if `h` is closed.
   */
  signalNext(h: SignalHandle): number;
  /**
   * Stops watching every signal of `h` (restoring dispositions as
   * {@link NativeShim.signalRemove} does), waits until no signal handler can
   * still write to the watch's eventfd, then closes that duplicate. Idempotent.
   * @throws TypeError for a bad `h`.
   */
  signalClose(h: SignalHandle): void;
  /**
   * If watches exist for `signo` and another handler replaced the shim's (libuv's
   * uv_signal_start replaces handlers without chaining; Node uses it for
   * process.on signal listeners), installs the shim's again, chaining to that
   * handler. Returns 1 if it did, 0 if there was nothing to do, or -errno.
   * Process-wide.
   * @throws TypeError if `signo` is not an integer in [1, 64].
   */
  signalReassert(signo: number): number;
  /**
   * What is installed for `signo` right now, process-wide, for tests and
   * diagnostics; a fresh object on each call.
   * @throws TypeError if `signo` is not an integer in [1, 64]; Error if
   *   sigaction(2) cannot read it.
   */
  signalDisposition(signo: number): SignalDisposition;

  // ---- sys: raw nonblocking descriptors (docs/API.md "Raw system calls") ----

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

/** A signal watch, as returned by {@link NativeShim.signalOpen}. Opaque. */
export type SignalHandle = object;

/** A signal's disposition, from {@link NativeShim.signalDisposition}. */
export interface SignalDisposition {
  /** SIG_DFL, SIG_IGN, the shim's handler, or another handler. */
  readonly action: 'default' | 'ignore' | 'loop' | 'handler';
  /** The handler's address in hex ('0x0' for SIG_DFL, '0x1' for SIG_IGN). */
  readonly handler: string;
  /** Its sa_flags (SA_RESETHAND is 0x80000000, SA_SIGINFO 4). */
  readonly flags: number;
  /** Its sa_mask for signals 1..32, bit `signo - 1`. */
  readonly mask: number;
  /** How many watches of the process watch the signal. */
  readonly loops: number;
  /** The handler the shim's calls after waking the loops, in hex; '' for none. */
  readonly chained: string;
}

/** Which poller a watcher thread waits on (see {@link NativeShim.watcherOpen}). */
export type WatcherKind = 'epoll' | 'poll';

/**
 * An environment variable, or undefined when it is unset or the host refuses to
 * tell (Deno without --allow-env throws on any read of process.env). Never throws.
 */
export function envVar(name: string): string | undefined {
  try {
    return typeof process === 'object' ? process.env[name] : undefined;
  } catch {
    return undefined;
  }
}

/** The JavaScript runtime this package runs in. */
export interface HostRuntime {
  /** 'node', 'bun', 'deno', or another runtime's name. */
  readonly runtime: string;
  /** Its version, e.g. '20.20.2'. */
  readonly version: string;
  /** Whether the host's loop is libuv, so the guest driver can nest in it (Node only). */
  readonly libuv: boolean;
}

/**
 * The runtime, read once. Deno and Bun both imitate Node's `process.versions`,
 * so they are told apart by their own globals first.
 */
export const hostRuntime: HostRuntime = (() => {
  const g = globalThis as { Bun?: { version?: string }; Deno?: { version?: { deno?: string } } };
  const versions = (typeof process === 'object' && process?.versions) || ({} as Record<string, string | undefined>);
  if (g.Deno?.version?.deno) return { runtime: 'deno', version: g.Deno.version.deno, libuv: false };
  if (g.Bun?.version || versions.bun) return { runtime: 'bun', version: (g.Bun?.version ?? versions.bun)!, libuv: false };
  if (versions.node) return { runtime: 'node', version: versions.node, libuv: true };
  return { runtime: 'unknown', version: '', libuv: false };
})();

/** How the shim was found: a local build, a prebuilt binary of the package, or a path from the environment. */
export type NativeSource = 'local build' | 'prebuilt' | 'WASM_IOLOOP_NATIVE_PATH';

/** Where the shim can be: package root relative to src/ (tests, tsx) and to dist/ (the package). */
const PACKAGE_ROOT = path.join(__dirname, '..');

/**
 * The candidates, in the order they are tried. The prebuilt binary has the name
 * `prebuildify --napi --tag-libc` gives it, which node-gyp-build also reads:
 * prebuilds/<platform>-<arch>/wasm-ioloop.<libc>.node, libc `musl` on Alpine
 * and `glibc` elsewhere. scripts/prebuild.js (prebuiltFile) writes that file;
 * test/package.test.ts checks that an installed tarball loads it from here.
 */
function candidates(): { path: string; source: NativeSource }[] {
  const fromEnv = envVar('WASM_IOLOOP_NATIVE_PATH');
  if (fromEnv) return [{ path: fromEnv, source: 'WASM_IOLOOP_NATIVE_PATH' }];
  let libc = 'glibc';
  try {
    if (fs.existsSync('/etc/alpine-release')) libc = 'musl';
  } catch {
    // A host that refuses file system access: load() reports that for each candidate.
  }
  return [
    { path: path.join(PACKAGE_ROOT, 'build', 'Release', 'wasm_ioloop.node'), source: 'local build' },
    { path: path.join(PACKAGE_ROOT, 'prebuilds', `${process.platform}-${process.arch}`, `wasm-ioloop.${libc}.node`), source: 'prebuilt' },
  ];
}

interface LoadResult {
  readonly shim: NativeShim | null;
  /** Why there is no shim ('' when there is one). */
  readonly reason: string;
  /** The file loaded, or ''. */
  readonly path: string;
  readonly source: NativeSource | null;
}

let cached: LoadResult | undefined;

function load(): LoadResult {
  if (envVar('WASM_IOLOOP_NO_NATIVE') === '1') {
    return { shim: null, reason: 'disabled by WASM_IOLOOP_NO_NATIVE=1', path: '', source: null };
  }
  const failures: string[] = [];
  for (const candidate of candidates()) {
    try {
      if (!fs.existsSync(candidate.path)) {
        failures.push(`${candidate.source} not built (${candidate.path} does not exist)`);
        continue;
      }
    } catch (error) {
      // A host that refuses file system access (Deno without --allow-read).
      failures.push(`${candidate.source}: ${messageOf(error)}`);
      continue;
    }
    try {
      const shim = require(candidate.path) as NativeShim;
      return { shim, reason: '', path: candidate.path, source: candidate.source };
    } catch (error) {
      // A link error, a binary for another platform or ABI, or a refused
      // permission (Deno without --allow-ffi): fall back, and say why.
      failures.push(`${candidate.source} ${candidate.path} failed to load: ${messageOf(error)}`);
    }
  }
  return { shim: null, reason: failures.join('; '), path: '', source: null };
}

function messageOf(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
}

/**
 * The native shim, or null when it is not available: `WASM_IOLOOP_NO_NATIVE=1` is
 * set, no build of it exists, or every build failed to load (the reason is in
 * {@link nativeStatus}). Tries `WASM_IOLOOP_NATIVE_PATH` if set, else the local
 * build (build/Release/wasm_ioloop.node), then the prebuilt binary the package
 * ships (prebuilds/<platform>-<arch>/wasm-ioloop.<libc>.node). Loaded once per thread
 * (module instance) and cached, a null result included. Never throws.
 *
 * Thread-safety: call it on any thread; each worker loads its own instance.
 */
export function loadNative(): NativeShim | null {
  cached ??= load();
  return cached.shim;
}

/** Whether the shim is in use, where it came from, and if not, why. Never throws. */
export function nativeStatus(): { readonly loaded: boolean; readonly reason: string; readonly path: string; readonly source: NativeSource | null } {
  loadNative();
  return { loaded: cached!.shim !== null, reason: cached!.reason, path: cached!.path, source: cached!.source };
}

/**
 * The native shim, for callers that cannot work without it.
 *
 * @param what - what needs it, for the message (e.g. "sys").
 * @throws Error `"<what> needs the native shim, which is not used here: <reason>"`
 *   when {@link loadNative} returns null.
 */
export function requireNative(what: string): NativeShim {
  const shim = loadNative();
  if (shim) return shim;
  throw new Error(`${what} needs the native shim, which is not used here: ${cached!.reason}`);
}
