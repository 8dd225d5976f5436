// The runtime's typed doorway to the WebAssembly core (assembly/, built by
// `npm run build:wasm` in two builds that differ only in their poller):
//   wasm/core.wasm       imports the four `ioloop` functions below (CoreImports):
//                        the native shim's epoll or poll set, or a stand-in.
//   wasm/core-wasi.wasm  imports nine functions of `wasi_snapshot_preview1` (WASI_IMPORTS)
//                        from a WASI preview1 host (instantiateWasiCore).
//
// The core keeps the timer heap, the handler table and the ready queue in its own
// linear memory and calls nothing but its imports. Every export takes and returns
// i32 or f64 (numbers), never i64, so no call costs a BigInt. Errors come back as
// negative numbers (-errno, Linux's numbers in both builds, or -1 where stated),
// never as traps.
//
// Threads: an instance belongs to the thread (isolate) that created it; none of
// its exports may be called from another thread, and none is re-entrant: an
// import must not call back into the core.

import * as fs from 'fs';
import * as path from 'path';

/**
 * The poll syscalls the core imports (module `ioloop`), shaped like WASIX's epoll
 * calls. Each returns a non-negative result or `-errno`, and must not throw or call
 * back into the core. They are called as plain functions (no `this`).
 *
 * `epoll_wait` writes ready records (see {@link CoreLayout.EVENT_SIZE}) into the
 * core's memory at `ptr`. The imports are supplied before the memory exists, so an
 * implementation reaches the memory lazily, through a variable set once
 * {@link instantiateCore} has returned, and derives a fresh view of
 * `memory.buffer` on every call: the core's `memory.grow` detaches the old buffer.
 */
export interface CoreImports {
  /** Creates a poller; returns its fd (>= 0) or -errno. */
  epoll_create(): number;
  /**
   * Adds (`op` = CTL_ADD), changes (CTL_MOD) or removes (CTL_DEL) `fd` in the
   * poller `epfd`, watching `events`; the poller hands `token` back in each ready
   * record. `token` arrives as a signed i32: `WAKER_TOKEN` (0xffffffff) is -1 here;
   * use `token >>> 0` for the unsigned value. Returns 0 or -errno.
   */
  epoll_ctl(epfd: number, op: number, fd: number, events: number, token: number): number;
  /**
   * Waits up to `timeoutMs` (-1: without limit, 0: not at all) and writes up to
   * `max` records at byte offset `ptr` of the core's memory (u32 token, u32
   * events, little-endian). Returns the number of records written, or -errno.
   */
  epoll_wait(epfd: number, ptr: number, max: number, timeoutMs: number): number;
  /** Closes `fd`; returns 0 or -errno. */
  fd_close(fd: number): number;
}

/**
 * The core's exported functions and memory (names as in libuv's C API). Times are
 * in whatever unit the caller uses consistently (the runtime uses seconds), except
 * `poll`'s milliseconds. None of them is thread-safe or re-entrant.
 */
export interface CoreExports {
  /** Creates the poller and keeps its fd; 0 or -errno. Does nothing while it is open. */
  loop_init(): number;
  /** The poller's fd, or -1 before `loop_init` and after `loop_close`. */
  loop_fd(): number;
  /** Closes the poller's fd once (idempotent); 0 or -errno. Unread ready records are dropped. */
  loop_close(): number;

  /**
   * Starts a timer due at `deadline`. Returns its handle (an integer > 0:
   * `generation * TIMER_SLOTS + slot`, so `handle % TIMER_SLOTS` is the slot);
   * -1 if TIMER_SLOTS timers are pending or memory is exhausted (nothing changes,
   * and the core keeps working); -22 (EINVAL) if `deadline` is NaN.
   */
  timer_start(deadline: number): number;
  /**
   * Stops a pending timer (in the heap, or collected and not yet taken): 1 if it
   * was pending and is now removed, else 0. Safe for any number: fired, stopped,
   * stale, fractional, negative, NaN.
   */
  timer_stop(handle: number): number;
  /** Pending timers: in the heap plus collected and not yet taken. */
  timer_count(): number;
  /** The earliest deadline in the heap, or +Infinity. */
  timer_next_deadline(): number;
  /**
   * Moves every heap timer with deadline <= `now` to the due list, in
   * (deadline, insertion) order, after any entries not yet taken; returns how many.
   */
  timers_collect(now: number): number;
  /**
   * Takes the next collected timer that is still pending: frees it (its handle is
   * stale from now on) and returns its slot; -1 when the due list is exhausted.
   */
  timer_next_due(): number;

  /**
   * Registers `fd` for `events | EV_ERROR`. Returns its slot (>= 0); -9 (EBADF) if
   * fd < 0; -17 (EEXIST) if registered; the poller's -errno; -12 (ENOMEM) if memory
   * is exhausted; -28 (ENOSPC) when 2^HANDLER_SLOT_BITS - 1 fds are registered. On
   * error nothing changes.
   */
  handler_add(fd: number, events: number): number;
  /** Re-registers `fd` for `events | EV_ERROR`: 0, -2 (ENOENT) if unknown, or the poller's -errno (unchanged then). */
  handler_update(fd: number, events: number): number;
  /**
   * Unregisters `fd` (the poller's error is ignored: the fd may be closed already)
   * and returns its former slot, or -2 (ENOENT). Its unread ready records are dropped.
   */
  handler_remove(fd: number): number;
  /** The slot registered for `fd`, or -1. */
  handler_slot(fd: number): number;
  /** Registered fds. */
  handler_count(): number;
  /** Registers the waker's `fd` for EV_READ with WAKER_TOKEN (not in the table); 0 or -errno. */
  waker_add(fd: number): number;

  /**
   * Waits up to `timeoutMs` and fills the ready buffer (at most READY_CAPACITY
   * records); returns how many, or -errno (the buffer is empty then). Restarts
   * `event_next` at the first record.
   */
  poll(timeoutMs: number): number;
  /**
   * The next ready record still current: `slot * 256 + events`, events masked to the
   * slot's interest | EV_ERROR (and to 8 bits); -2 for a waker record; -1 when none
   * are left. Records of removed or reused slots, or with no bits left, are skipped.
   */
  event_next(): number;

  /** Starts an iteration: counts it and collects the timers due at `now`; returns how many. */
  iteration_begin(now: number): number;
  /**
   * How long the poller may block, in the unit of `now`: 0 if `callbacksPending`
   * is not 0 or collected timers wait to be taken; else the time to the earliest
   * deadline clamped to [0, MAX_POLL_TIMEOUT]; MAX_POLL_TIMEOUT with no timers.
   * Never negative or NaN.
   */
  poll_timeout(now: number, callbacksPending: number): number;
  /** Iterations begun. */
  stat_iterations(): number;
  /** Timers taken by `timer_next_due`. */
  stat_timers_fired(): number;
  /** Events returned by `event_next`, waker records excluded. */
  stat_events(): number;

  /**
   * A scratch region of at least `len` bytes in the core's memory for the sys_*
   * calls; valid until the next call (it may move when it grows). 0 in the epoll
   * build, and when memory is exhausted.
   */
  sys_buffer(len: number): number;
  /**
   * The WASI build's pass-through descriptor calls, one host call each, on that
   * host's fds: the result (bytes, or a new fd for accept), or -errno in Linux's
   * numbers. The epoll build's return -38 (ENOSYS): the native shim makes them.
   * read, write: fd_read, fd_write of `len` bytes at `ptr`. close: fd_close.
   * accept: sock_accept, nonblocking. recv, send: sock_recv, sock_send, no flags.
   * shutdown: sock_shutdown (`how`: 1 read, 2 write, 3 both).
   */
  sys_read(fd: number, ptr: number, len: number): number;
  sys_write(fd: number, ptr: number, len: number): number;
  sys_close(fd: number): number;
  sys_accept(fd: number): number;
  sys_recv(fd: number, ptr: number, len: number): number;
  sys_send(fd: number, ptr: number, len: number): number;
  sys_shutdown(fd: number, how: number): number;
  /** The WASI host's monotonic clock (clock_time_get) in seconds; -1 in the epoll build or if the host cannot read it. */
  clock_now(): number;
  /** Linux's errno for a WASI preview1 errno (preview1 numbers them alphabetically); EIO for one preview1 does not define. */
  errno_from_wasi(errno: number): number;

  /**
   * Test hook: caps the pages the core's arrays may make its memory span (clamped
   * to [pages in use, 65536]); returns the cap. Lets tests reach the
   * out-of-memory paths without gigabytes.
   */
  memory_limit(pages: number): number;

  /** The core's linear memory. `memory.grow` detaches `memory.buffer`: re-derive views. */
  readonly memory: WebAssembly.Memory;
}

/** The constants of assembly/layout.ts, read from the core's exported globals. */
export interface CoreLayout {
  /** Interest and readiness bits (Linux's EPOLL* values, equal to POLL*). */
  readonly EV_NONE: number;
  readonly EV_READ: number;
  readonly EV_WRITE: number;
  readonly EV_ERROR: number;
  /** Bytes in one ready record, and the offsets of its u32 token and u32 events. */
  readonly EVENT_SIZE: number;
  readonly EVENT_TOKEN_OFFSET: number;
  readonly EVENT_EVENTS_OFFSET: number;
  /**
   * What `event_next` returns: `slot << EVENT_SLOT_SHIFT | events` for a handler's
   * record (so `packed >> EVENT_SLOT_SHIFT` is the slot and `packed &
   * EVENT_BITS_MASK` the events); EVENT_NONE_LEFT (-1) when no records are left;
   * EVENT_WAKER (-2) for a waker record.
   */
  readonly EVENT_SLOT_SHIFT: number;
  readonly EVENT_BITS_MASK: number;
  readonly EVENT_NONE_LEFT: number;
  readonly EVENT_WAKER: number;
  /** Bits of a handler token that hold the slot; the generation is above them. */
  readonly HANDLER_SLOT_BITS: number;
  /** The token of waker records, as an unsigned number (0xffffffff). */
  readonly WAKER_TOKEN: number;
  /** epoll_ctl operations. */
  readonly CTL_ADD: number;
  readonly CTL_DEL: number;
  readonly CTL_MOD: number;
  /** Timer handles are `generation * TIMER_SLOTS + slot`; TIMER_SLOTS = 2^TIMER_SLOT_BITS. */
  readonly TIMER_SLOT_BITS: number;
  readonly TIMER_SLOTS: number;
  /** The longest poll timeout, in seconds. */
  readonly MAX_POLL_TIMEOUT: number;
  /**
   * Why the native shim's guest driver calls onTurn: TURN_IO (the poller's fd is
   * readable), TURN_TIMER (the armed timer fired); a negative reason is -errno.
   */
  readonly TURN_IO: number;
  readonly TURN_TIMER: number;
  /** Ready records one poll may return (the shim's epoll_wait writes at most as many). */
  readonly READY_CAPACITY: number;
  /**
   * Linux's errno values that the core returns negated and the runtime tests for
   * by name; the runtime's `Errno` enum (errors.ts) holds the same values.
   */
  readonly ERRNO_ENOENT: number;
  readonly ERRNO_EINTR: number;
  readonly ERRNO_EBADF: number;
  readonly ERRNO_EAGAIN: number;
  readonly ERRNO_ENOMEM: number;
  readonly ERRNO_EEXIST: number;
  readonly ERRNO_EINVAL: number;
  readonly ERRNO_ENOSPC: number;
  readonly ERRNO_EPIPE: number;
  readonly ERRNO_ENOSYS: number;
}

const LAYOUT_NAMES = [
  'EV_NONE', 'EV_READ', 'EV_WRITE', 'EV_ERROR',
  'EVENT_SIZE', 'EVENT_TOKEN_OFFSET', 'EVENT_EVENTS_OFFSET',
  'EVENT_SLOT_SHIFT', 'EVENT_BITS_MASK', 'EVENT_NONE_LEFT', 'EVENT_WAKER',
  'HANDLER_SLOT_BITS', 'WAKER_TOKEN',
  'CTL_ADD', 'CTL_DEL', 'CTL_MOD',
  'TIMER_SLOT_BITS', 'TIMER_SLOTS',
  'MAX_POLL_TIMEOUT', 'TURN_IO', 'TURN_TIMER', 'READY_CAPACITY',
  'ERRNO_ENOENT', 'ERRNO_EINTR', 'ERRNO_EBADF', 'ERRNO_EAGAIN', 'ERRNO_ENOMEM',
  'ERRNO_EEXIST', 'ERRNO_EINVAL', 'ERRNO_ENOSPC', 'ERRNO_EPIPE', 'ERRNO_ENOSYS',
] as const satisfies readonly (keyof CoreLayout)[];

/** Constants that are unsigned in the core; a WebAssembly i32 global reads as signed. */
const UNSIGNED: ReadonlySet<string> = new Set(['WAKER_TOKEN']);

/** Where the cores are built; right both from src/ (tests, tsx) and from dist/. */
const WASM_PATH = path.join(__dirname, '..', 'wasm', 'core.wasm');
const WASI_WASM_PATH = path.join(__dirname, '..', 'wasm', 'core-wasi.wasm');

let compiled: WebAssembly.Module | null = null;
let compiledWasi: WebAssembly.Module | null = null;

/** Compiles the core at `file`. @throws Error naming the missing file and `npm run build:wasm`. */
function compile(file: string): WebAssembly.Module {
  // readFileSync never returns a Buffer over a SharedArrayBuffer.
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = fs.readFileSync(file) as Uint8Array<ArrayBuffer>;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error(`the WebAssembly core is not built: ${file} is missing; run \`npm run build:wasm\``);
    }
    throw e;
  }
  return new WebAssembly.Module(bytes);
}

/**
 * The compiled core, compiled synchronously on first use and cached for the process
 * (per thread: each worker has its own cache, so any thread may call it).
 * @throws Error naming the missing file and `npm run build:wasm` if the core is not built.
 */
export function coreModule(): WebAssembly.Module {
  return (compiled ??= compile(WASM_PATH));
}

/** The compiled WASI build of the core (wasm/core-wasi.wasm), cached as {@link coreModule}. @throws Error as coreModule. */
export function coreWasiModule(): WebAssembly.Module {
  return (compiledWasi ??= compile(WASI_WASM_PATH));
}

/**
 * Instantiates a fresh core (its own memory, no timers, no handlers, no poller
 * until `loop_init`) over `imports`, synchronously. The imports may reach the
 * memory only through the returned exports, read lazily (see {@link CoreImports});
 * the core calls no import while it is being instantiated.
 * @throws Error as {@link coreModule} does.
 */
export function instantiateCore(imports: CoreImports): CoreExports {
  // WebAssembly calls the imports as plain functions, without `this`; binding them
  // would put V8's slower generic call path on every epoll_wait.
  const ioloop = {
    epoll_create: imports.epoll_create,
    epoll_ctl: imports.epoll_ctl,
    epoll_wait: imports.epoll_wait,
    fd_close: imports.fd_close,
  };
  const instance = new WebAssembly.Instance(coreModule(), { ioloop });
  return instance.exports as unknown as CoreExports;
}

/** The functions of `wasi_snapshot_preview1` the WASI build imports: these and no others. */
export const WASI_IMPORTS = [
  'poll_oneoff', 'clock_time_get', 'fd_read', 'fd_write', 'fd_close',
  'sock_accept', 'sock_recv', 'sock_send', 'sock_shutdown',
] as const;

/** preview1's ENOSYS, what a function the host lacks returns. */
const WASI_ENOSYS = 52;

/**
 * A WASI preview1 host: node:wasi's `WASI` (`new WASI({ version: 'preview1', ... })`),
 * the package's own provider, or any object with `wasiImport` or `getImportObject()`.
 */
export interface WasiHost {
  /** The preview1 functions, by name. */
  wasiImport?: object;
  /** An import object whose `wasi_snapshot_preview1` holds the preview1 functions. */
  getImportObject?(): object;
  /** Binds the host to the instance (its memory): node:wasi, Deno's, the package's provider. */
  initialize?(instance: WebAssembly.Instance): void;
  /** Binds the host to the memory: Bun's node:wasi, which has no initialize. */
  setMemory?(memory: WebAssembly.Memory): void;
}

/** A WASI build instantiated over a host. */
export interface WasiCore {
  readonly exports: CoreExports;
  readonly instance: WebAssembly.Instance;
  /** The imports the host had no function for; each returns ENOSYS. */
  readonly missing: readonly string[];
}

/** The preview1 functions of a host. @throws TypeError if it has none. */
function preview1Of(host: WasiHost, what: string): Record<string, unknown> {
  if (typeof host !== 'object' || host === null) {
    throw new TypeError(`${what} must be a WASI preview1 host (node:wasi's WASI, or an object with wasiImport or getImportObject()), got ${host === null ? 'null' : typeof host}`);
  }
  if (typeof host.getImportObject === 'function') {
    const object = host.getImportObject() as { wasi_snapshot_preview1?: unknown } | null;
    const functions = object?.wasi_snapshot_preview1;
    if (typeof functions === 'object' && functions !== null) return functions as Record<string, unknown>;
  }
  if (typeof host.wasiImport === 'object' && host.wasiImport !== null) return host.wasiImport as Record<string, unknown>;
  throw new TypeError(`${what} has neither wasiImport nor getImportObject().wasi_snapshot_preview1: it is not a WASI preview1 host`);
}

/**
 * Instantiates a fresh WASI build of the core over a preview1 host, synchronously.
 * The loader's rules:
 *   - The preview1 functions are `host.getImportObject().wasi_snapshot_preview1`
 *     where the host has getImportObject, else `host.wasiImport`.
 *   - Only the nine of WASI_IMPORTS are passed; one the host lacks (Bun's node:wasi
 *     has no sock_accept) is a stub that returns ENOSYS, so every host links.
 *   - Then the host is bound to the instance: `host.initialize(instance)` where it
 *     has one (node:wasi needs the module's `memory` export, which the core has; the
 *     core has no `_start` and no `_initialize`, which node:wasi's initialize would
 *     call, since it runs nothing at instantiation), else `host.setMemory(memory)`
 *     (Bun's node:wasi), else nothing: such a host reaches the memory its own way.
 * A host can be bound to one instance only (node:wasi's initialize throws the
 * second time): one host per loop.
 * @throws TypeError if `host` is not a preview1 host; Error as {@link coreWasiModule};
 *   whatever the host's initialize throws.
 */
export function instantiateWasiCore(host: WasiHost, what = 'options.wasi'): WasiCore {
  const functions = preview1Of(host, what);
  const preview1: Record<string, unknown> = {};
  const missing: string[] = [];
  for (const name of WASI_IMPORTS) {
    const fn = functions[name];
    if (typeof fn === 'function') preview1[name] = fn;
    else {
      missing.push(name);
      preview1[name] = () => WASI_ENOSYS;
    }
  }
  const instance = new WebAssembly.Instance(coreWasiModule(), { wasi_snapshot_preview1: preview1 as WebAssembly.ModuleImports });
  // Not named `exports`: in the CommonJS build that name is the module's own, which
  // the reference to WASI_IMPORTS above compiles to.
  const core = instance.exports as unknown as CoreExports;
  if (typeof host.initialize === 'function') host.initialize(instance);
  else if (typeof host.setMemory === 'function') host.setMemory(core.memory);
  return { exports: core, instance, missing };
}

/**
 * The layout constants of a core instance as plain numbers (read once from its
 * exported globals; WAKER_TOKEN as unsigned). Pure; safe to call from any code
 * that holds the exports.
 */
export function coreLayout(exports: CoreExports): CoreLayout {
  const globals = exports as unknown as Record<string, WebAssembly.Global>;
  const layout: Record<string, number> = {};
  for (const name of LAYOUT_NAMES) {
    const global = globals[name];
    if (!global || typeof global.value !== 'number') {
      throw new Error(`the WebAssembly core does not export the constant ${name}; rebuild it with \`npm run build:wasm\``);
    }
    layout[name] = UNSIGNED.has(name) ? global.value >>> 0 : global.value;
  }
  return layout as unknown as CoreLayout;
}
