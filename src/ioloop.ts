// The IOLoop: a Tornado-style loop whose timer heap and dispatch bookkeeping live
// in the WebAssembly core, and whose user functions run here.
//
// One iteration, in order (Tornado 4.5's PollIOLoop.start):
//   1. Take the callbacks queued before the iteration starts (their count).
//   2. Ask the core to collect every timer due at the iteration's start
//      (`iteration_begin`): all are collected before any runs, so a timer added
//      now, even with a past deadline, waits for a later iteration.
//   3. Run those callbacks, in the order they were added.
//   4. Run those timers, in (deadline, insertion) order, skipping any removed by
//      an earlier one.
//   5. If stop() was called, stop here.
//   6. Poll: the core asks its backend for ready fds (nonblocking in the guest and
//      portable drivers; the driver waits between turns instead) and hands back
//      (slot, events) pairs, dropping events of fds removed meanwhile.
//   7. Run each ready fd's handler with the events it asked for, plus ERROR bits.
// Between iterations the driver waits: 0 when callbacks are pending, else until
// the earliest deadline (at most 3600 s), or until an fd is ready. On the fake
// backend the clock jumps to the next deadline instead, when nothing is ready.
//
// The core never calls user code: these phases cross the WebAssembly boundary one
// way, and each user function runs from here with its errors caught and logged.

import { BACKEND_NAMES, availableBackends, defaultBackend, openBackend, type AnyBackendName, type Backend, type BackendName, type VirtualClock } from './backends';
import { NO_ARG, callPacked, packArgs } from './args';
import { CallbackQueue, type ChunkPool } from './callbacks';
import { ERROR, NONE, READ, WRITE } from './constants';
import { coreLayout, instantiateCore, type CoreExports } from './core';
import { GuestDriver, PortableDriver, TURN_TIMER, defaultDriver, type Driver, type DriverName } from './drivers';
import { Errno, SysError, TimeoutError } from './errors';
import { loadNative } from './native';
import { sys } from './sys';
import { checkFunction, checkInteger, checkNumber, describe } from './validate';

/** An fd as a number, or an object that has one (Tornado's `fileno()` convention). */
export type FdLike = number | { fileno(): number };

/** Called with what was registered (the object, if one was given) and the ready events. */
export type Handler = (fd: FdLike, events: number) => unknown;

/** Where the loop reports errors from user code. */
export interface Logger {
  error(...a: unknown[]): void;
  warn(...a: unknown[]): void;
  debug?(...a: unknown[]): void;
}

/** Options of {@link IOLoop}'s constructor (and of {@link IOLoop.configure}'s defaults). */
export interface IOLoopOptions {
  /** The poller: `epoll` (default on Linux with the native shim) or `fake` (a virtual clock). */
  backend?: 'epoll' | 'poll' | 'wasi' | 'fake';
  /** Who waits between iterations: `guest` (default in Node), `portable` (no native shim), `blocking` (not yet available). */
  driver?: 'guest' | 'blocking' | 'portable';
  /** The clock, in seconds. Default: monotonic (`performance.now()`). Not with the fake backend, which has its own. */
  time?: () => number;
  /** Default: become current if there is no current loop. `true` throws if another loop is current. */
  makeCurrent?: boolean;
  /** Where errors from callbacks, handlers and timers go. Default: `console`. */
  logger?: Logger;
}

/** Counters of a loop, from {@link IOLoop.stats}. */
export interface LoopStats {
  /** Loop turns so far. */
  iterations: number;
  /** Callbacks run so far. */
  callbacks: number;
  /** Timers fired so far. */
  timers: number;
  /** Handler calls so far. */
  events: number;
  /** Callbacks queued and not yet run. */
  pendingCallbacks: number;
  /** Timers scheduled and not yet run; removed timers are not pending. */
  pendingTimers: number;
  /** Registered fds. */
  handlers: number;
}

/** A relative time for {@link IOLoop.addTimeout}; the fields add up. */
export type Duration = { seconds?: number; milliseconds?: number; microseconds?: number };

/** An opaque timer handle, for {@link IOLoop.removeTimeout}. */
export type Timeout = unknown;

type AnyFunction = (...args: any[]) => unknown;

const enum State {
  Idle,
  Running,
  Closed,
}

const CLOSED_MESSAGE = 'IOLoop is closed';
const STOPPED_BEFORE_SETTLED = 'IOLoop stopped before the function passed to run() settled';
// Iterations one host turn may run while work keeps coming. A chain of callbacks
// then costs one host turn per 128 links instead of one per link, and a ping-pong
// over a socketpair one per 128 messages; promise continuations and Node's own
// callbacks wait at most that many iterations.
const TURN_ITERATIONS = 128;

let currentLoop: IOLoop | null = null;
let configured: { backend?: BackendName; defaults: IOLoopOptions } = { defaults: {} };

const defaultLogger: Logger = {
  error: (...a) => console.error(...a),
  warn: (...a) => console.warn(...a),
};

/** Each loop's logger, for the package's other classes (PeriodicCallback logs through it). */
const loggers = new WeakMap<IOLoop, Logger>();

/** The logger a loop reports errors to. Internal to the package. */
export function loggerOf(loop: IOLoop): Logger {
  return loggers.get(loop) ?? defaultLogger;
}

const monotonic = (): number => performance.now() / 1000;

/**
 * A Tornado-style I/O loop: watches fds, runs timers and callbacks on one thread.
 *
 * Thread-safety: an IOLoop belongs to the thread that made it; call its methods
 * from that thread only (to reach it from another thread, use a channel, when
 * available). Methods may be called from inside its own callbacks and handlers.
 * Every method of a closed loop throws, except `addCallback` (does nothing) and
 * `close` (idempotent).
 */
export class IOLoop {
  /** No events. */
  static readonly NONE = NONE;
  /** Readable. */
  static readonly READ = READ;
  /** Writable. */
  static readonly WRITE = WRITE;
  /** Error or hang-up; always added to a registration. */
  static readonly ERROR = ERROR;

  private state = State.Idle;
  private readonly core: CoreExports;
  private readonly backend: Backend;
  private readonly driver: Driver;
  private readonly clock: () => number;
  private readonly virtualClock: VirtualClock | null;
  private readonly logger: Logger;
  private readonly timerSlots: number;
  private readonly maxPollTimeout: number;

  // Callbacks for the next iteration. An iteration swaps the two queues and drains
  // the one it took (Tornado's swap of `_callbacks`): that is what makes it run only
  // the callbacks queued before it started.
  private readonly chunkPool: ChunkPool = [];
  private callbacks = new CallbackQueue(this.chunkPool);
  private runningCallbacks = new CallbackQueue(this.chunkPool);
  private callbacksRun = 0;

  // Timers and handlers: dense arrays indexed by the core's slots.
  private timerFns: (AnyFunction | undefined)[] = [];
  private timerArg: unknown[] = []; // packed arguments, see args.ts
  private handlerFns: (Handler | undefined)[] = [];
  private handlerObjs: (FdLike | undefined)[] = [];

  // Turn state.
  private inTurn = false;
  private stopping = false;
  private stopRequested = false;
  private lastPollCount = 0;
  private armedAt = Infinity; // loop time of the driver's next wake-up
  private armedSoon = false; // the driver will turn as soon as the host comes round
  private previousCurrent: IOLoop | null = null;
  private settle: { resolve(): void; reject(e: unknown): void } | null = null;
  private readonly signalListeners = new Map<string, () => void>();

  /**
   * Creates a loop. It is idle until {@link start} or {@link run}.
   * @throws TypeError/RangeError for a bad option; Error when the backend or driver
   *   cannot be had here (the message names what is available); Error when
   *   `makeCurrent: true` and another loop is current.
   */
  constructor(options: IOLoopOptions = {}) {
    const opts = { ...configured.defaults, ...options };
    const makeCurrent = opts.makeCurrent;
    if (makeCurrent !== undefined && typeof makeCurrent !== 'boolean') {
      throw new TypeError(`options.makeCurrent must be a boolean, got ${describe(makeCurrent)}`);
    }
    if (makeCurrent === true && currentLoop !== null) {
      throw new Error('a current IOLoop already exists; call IOLoop.clearCurrent() first');
    }
    if (opts.time !== undefined) checkFunction(opts.time, 'options.time');
    const logger = opts.logger ?? defaultLogger;
    if (typeof logger !== 'object' || logger === null || typeof logger.error !== 'function' || typeof logger.warn !== 'function') {
      throw new TypeError('options.logger must have error() and warn() methods');
    }
    this.logger = logger;
    loggers.set(this, logger);

    const native = loadNative();
    const driverName: DriverName = opts.driver ?? defaultDriver(native);
    const backendName = chooseBackend(options.backend ?? configured.backend, driverName);
    if (backendName === 'fake' && opts.time !== undefined) {
      throw new TypeError("options.time cannot be used with backend 'fake', which has its own clock");
    }

    let core: CoreExports | undefined;
    const backend = openBackend(backendName, () => core!.memory, driverName !== 'portable');
    core = instantiateCore(backend.imports);
    const rc = core.loop_init();
    if (rc < 0) throw new SysError(-rc, 'epoll_create');
    this.core = core;
    this.backend = backend;
    const layout = coreLayout(core);
    this.timerSlots = layout.TIMER_SLOTS;
    this.maxPollTimeout = layout.MAX_POLL_TIMEOUT;
    this.virtualClock = backend.clock;
    this.clock = backend.clock?.time ?? opts.time ?? monotonic;

    try {
      this.driver = openDriver(driverName, backend, core.loop_fd(), this.onTurn);
    } catch (e) {
      core.loop_close();
      throw e;
    }
    if (makeCurrent === true || (makeCurrent === undefined && currentLoop === null)) currentLoop = this;
  }

  // ---------------------------------------------------------------- current loop

  /**
   * The current loop of this thread. Without arguments, creates one if there is none;
   * with `{ instance: false }`, returns null instead.
   */
  static current(): IOLoop;
  static current(opts: { instance: false }): IOLoop | null;
  static current(opts?: { instance?: boolean }): IOLoop | null {
    if (currentLoop === null && opts?.instance !== false) new IOLoop({ makeCurrent: true });
    return currentLoop;
  }

  /** Makes this loop the current one of its thread, replacing any other. */
  makeCurrent(): void {
    this.checkOpen();
    currentLoop = this;
  }

  /** Leaves this thread with no current loop. */
  static clearCurrent(): void {
    currentLoop = null;
  }

  /**
   * Sets the backend (and default options) of loops created from now on.
   * `undefined` restores the default.
   * @throws Error if the backend cannot be had here, naming those that can.
   */
  static configure(backend: IOLoopOptions['backend'], defaults: IOLoopOptions = {}): void {
    if (backend !== undefined) {
      if (!BACKEND_NAMES.includes(backend)) {
        throw new TypeError(`backend must be one of ${BACKEND_NAMES.join(', ')}; got ${describe(backend)}`);
      }
      if (!availableBackends().includes(backend)) {
        throw new Error(`backend '${backend}' is not available here; available backends: ${availableBackends().join(', ')}`);
      }
    }
    if (typeof defaults !== 'object' || defaults === null) throw new TypeError(`defaults must be an object, got ${describe(defaults)}`);
    const { backend: _ignored, ...rest } = defaults;
    configured = { backend, defaults: rest };
  }

  /** The backend new loops get: the configured one, else the default (`epoll` on Linux with the native shim). */
  static configuredBackend(): string {
    return configured.backend ?? defaultBackend();
  }

  // ---------------------------------------------------------------- file descriptors

  /**
   * Calls `handler(fd, events)` whenever `fd` is ready for `events` (level-triggered).
   * ERROR is always added. `fd` is a number or an object with `fileno()`; the
   * handler gets back exactly what was passed.
   * @throws TypeError for a non-integer fd or a handler that is not a function;
   *   RangeError for unknown event bits; SysError `EEXIST` if the fd is already
   *   registered, `EBADF` if it is closed or invalid; Error without the native shim.
   */
  addHandler(fd: FdLike, handler: Handler, events: number): void {
    this.checkOpen();
    const n = filenoOf(fd);
    checkFunction(handler, 'handler');
    checkEvents(events);
    this.checkFds('addHandler');
    const slot = this.core.handler_add(n, events);
    if (slot < 0) throw fdError(-slot, 'addHandler', n);
    if (slot >= this.handlerFns.length) {
      growDense(this.handlerFns, slot, undefined);
      growDense(this.handlerObjs, slot, undefined);
    }
    this.handlerFns[slot] = handler;
    this.handlerObjs[slot] = fd;
  }

  /**
   * Changes the events `fd` is watched for.
   * @throws TypeError/RangeError for bad arguments; SysError `ENOENT` if the fd is not registered.
   */
  updateHandler(fd: FdLike, events: number): void {
    this.checkOpen();
    const n = filenoOf(fd);
    checkEvents(events);
    const rc = this.core.handler_update(n, events);
    if (rc < 0) throw fdError(-rc, 'updateHandler', n);
  }

  /**
   * Stops watching `fd` and drops its events not yet dispatched. Does nothing for an
   * fd that is not registered. Does not close the fd.
   * @throws TypeError for a non-integer fd.
   */
  removeHandler(fd: FdLike): void {
    this.checkOpen();
    const slot = this.core.handler_remove(filenoOf(fd));
    if (slot >= 0) {
      this.handlerFns[slot] = undefined;
      this.handlerObjs[slot] = undefined;
    }
  }

  // ---------------------------------------------------------------- callbacks

  /**
   * Runs `cb(...args)` in the next iteration. Callbacks run in the order they were
   * added; one added by a callback waits for the iteration after. Errors (thrown, or
   * a returned promise that rejects) are logged. On a closed loop, does nothing.
   * Re-entrant: may be called from callbacks and handlers.
   * @throws TypeError if `cb` is not a function.
   */
  addCallback<A extends unknown[]>(cb: (...args: A) => unknown, ...args: A): void;
  addCallback(cb: AnyFunction): void {
    if (typeof cb !== 'function') throw new TypeError(`callback must be a function, got ${describe(cb)}`);
    if (this.state === State.Closed) return;
    // `arguments` rather than a rest parameter: no array at all for calls with no
    // argument or one (see `invoke`).
    // Passing `arguments` on would make V8 allocate it; reading it here does not.
    const n = arguments.length;
    this.callbacks.push(cb, n === 1 ? NO_ARG : n === 2 ? arguments[1] : packArgs(Array.prototype.slice.call(arguments, 1)));
    if (!this.armedSoon && !this.inTurn && this.state === State.Running) this.armSoon();
  }

  /** As {@link addCallback}; safe to call from a signal handler (in Node, signal handlers already run on the loop's thread). */
  addCallbackFromSignal<A extends unknown[]>(cb: (...args: A) => unknown, ...args: A): void {
    this.checkOpen();
    this.addCallback(cb, ...args);
  }

  /** As {@link addCallback}, for a function whose result nobody waits for (Tornado's `spawn_callback`). */
  spawnCallback<A extends unknown[]>(cb: (...args: A) => unknown, ...args: A): void {
    this.checkOpen();
    this.addCallback(cb, ...args);
  }

  /**
   * Calls `cb(promise)` as a loop callback once `future` settles, never synchronously.
   * @throws TypeError if `future` is not a promise (or thenable) or `cb` is not a function.
   */
  addFuture<T>(future: PromiseLike<T>, cb: (future: Promise<T>) => unknown): void {
    this.checkOpen();
    if (typeof (future as { then?: unknown } | null)?.then !== 'function') {
      throw new TypeError(`future must be a promise or thenable, got ${describe(future)}`);
    }
    checkFunction(cb, 'cb');
    const promise = Promise.resolve(future);
    const done = (): void => this.addCallback(cb, promise);
    promise.then(done, done);
  }

  // ---------------------------------------------------------------- timers

  /** The loop's clock, in seconds (monotonic unless `options.time` says otherwise). */
  time(): number {
    this.checkOpen();
    return this.clock();
  }

  /**
   * Runs `cb(...args)` at loop time `when` (seconds, as {@link time}). A past deadline
   * runs in the next iteration. Timers with equal deadlines run in the order added.
   * @returns a handle for {@link removeTimeout}.
   * @throws TypeError if `when` is not a number or `cb` not a function; RangeError if
   *   `when` is NaN or too many timers are pending for memory.
   */
  callAt<A extends unknown[]>(when: number, cb: (...args: A) => unknown, ...args: A): Timeout;
  callAt(when: number, cb: AnyFunction): Timeout {
    this.checkOpen();
    if (typeof when !== 'number' || when !== when || typeof cb !== 'function') badTimer(when, 'when', cb);
    const n = arguments.length;
    return this.schedule(when, cb, n === 2 ? NO_ARG : n === 3 ? arguments[2] : packArgs(Array.prototype.slice.call(arguments, 2)));
  }

  /**
   * Runs `cb(...args)` `delay` seconds from now; a negative delay runs in the next iteration.
   * @returns a handle for {@link removeTimeout}.
   * @throws TypeError/RangeError as {@link callAt}, naming `delay`.
   */
  callLater<A extends unknown[]>(delay: number, cb: (...args: A) => unknown, ...args: A): Timeout;
  callLater(delay: number, cb: AnyFunction): Timeout {
    this.checkOpen();
    if (typeof delay !== 'number' || delay !== delay || typeof cb !== 'function') badTimer(delay, 'delay', cb);
    const n = arguments.length;
    return this.schedule(this.clock() + delay, cb, n === 2 ? NO_ARG : n === 3 ? arguments[2] : packArgs(Array.prototype.slice.call(arguments, 2)));
  }

  /**
   * Tornado's `add_timeout`: a number is an absolute deadline (as {@link callAt}), a
   * {@link Duration} is relative to now.
   * @throws TypeError/RangeError as {@link callAt}, naming `deadline`.
   */
  addTimeout<A extends unknown[]>(deadline: number | Duration, cb: (...args: A) => unknown, ...args: A): Timeout;
  addTimeout(deadline: number | Duration, cb: AnyFunction): Timeout {
    this.checkOpen();
    const when = typeof deadline === 'number' ? deadline : this.clock() + durationSeconds(deadline);
    if (typeof when !== 'number' || when !== when || typeof cb !== 'function') badTimer(when, 'deadline', cb);
    const n = arguments.length;
    return this.schedule(when, cb, n === 2 ? NO_ARG : n === 3 ? arguments[2] : packArgs(Array.prototype.slice.call(arguments, 2)));
  }

  /**
   * Cancels a timer. Safe on handles that have fired, were removed, or are stale;
   * `undefined` and `null` are ignored. A handle belongs to the loop that made it:
   * pass it to no other loop.
   * @throws TypeError for a value that was never a timer handle (not a number).
   */
  removeTimeout(timeout: Timeout): void {
    this.checkOpen();
    if (timeout === undefined || timeout === null) return;
    if (typeof timeout !== 'number') throw new TypeError(`timeout must be a handle from callLater/callAt/addTimeout, got ${describe(timeout)}`);
    if (this.core.timer_stop(timeout) === 1) {
      const slot = timeout % this.timerSlots;
      this.timerFns[slot] = undefined;
      this.timerArg[slot] = undefined;
    }
  }

  // ---------------------------------------------------------------- running

  /**
   * Runs the loop until {@link stop}. Returns at once; the promise resolves when the
   * loop has stopped (or rejects if the loop fails). While it runs, Node's own loop
   * keeps running, and this loop keeps Node alive. It is the current loop while it
   * runs; the previous one is current again after.
   * @returns a promise rejected with 'IOLoop is already running' if it is running,
   *   and with 'IOLoop is closed' if closed.
   */
  start(): Promise<void> {
    if (this.state === State.Closed) return Promise.reject(new Error(CLOSED_MESSAGE));
    if (this.state === State.Running) return Promise.reject(new Error('IOLoop is already running'));
    if (this.stopRequested) {
      this.stopRequested = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      this.state = State.Running;
      this.settle = { resolve, reject };
      this.previousCurrent = currentLoop;
      currentLoop = this;
      this.driver.start();
      this.armSoon();
    });
  }

  /**
   * Stops the loop after the current iteration. Before {@link start}, makes the next
   * start() return at once. Work scheduled before stop() may still run in that iteration.
   */
  stop(): void {
    this.checkOpen();
    if (this.state !== State.Running) this.stopRequested = true;
    else if (this.inTurn) this.stopping = true;
    else this.finishStop();
  }

  /**
   * Tornado's `run_sync`: starts the loop, runs `fn` as a callback, and stops when its
   * result (a value, or a promise) settles; resolves with that result.
   * @param opts.timeout seconds on the loop's clock; past it the promise rejects with
   *   `TimeoutError('Operation timed out after N seconds')`.
   * @returns a promise that also rejects if the loop is stopped before `fn` settles,
   *   or if it is already running.
   * @throws Error on a closed loop; TypeError/RangeError for bad arguments.
   */
  run<T>(fn: () => T | PromiseLike<T>, opts: { timeout?: number } = {}): Promise<T> {
    this.checkOpen();
    checkFunction(fn, 'fn');
    const timeout = opts?.timeout;
    if (timeout !== undefined) checkNumber(timeout, 'opts.timeout');
    if (this.state === State.Running) return Promise.reject(new Error('IOLoop is already running'));
    if (this.stopRequested) {
      // The pending stop() ends this run before `fn` could run: don't leave it queued.
      this.stopRequested = false;
      return Promise.reject(new Error(STOPPED_BEFORE_SETTLED));
    }

    let outcome: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
    const finish = (result: NonNullable<typeof outcome>): void => {
      if (outcome !== undefined) return;
      outcome = result;
      if (this.state === State.Running) this.stop();
    };
    this.addCallback(() => {
      try {
        Promise.resolve(fn()).then(
          (value) => finish({ ok: true, value }),
          (error) => finish({ ok: false, error }),
        );
      } catch (error) {
        finish({ ok: false, error });
      }
    });
    const timer =
      timeout === undefined
        ? undefined
        : this.callLater(timeout, () => finish({ ok: false, error: new TimeoutError(`Operation timed out after ${timeout} seconds`) }));
    return this.start().then(() => {
      if (timer !== undefined && this.state !== State.Closed) this.removeTimeout(timer);
      if (outcome === undefined) throw new Error(STOPPED_BEFORE_SETTLED);
      if (!outcome.ok) throw outcome.error;
      return outcome.value;
    });
  }

  /**
   * Closes the loop: stops it if it runs, releases its poller and host handles, and
   * drops pending callbacks and timers. With `allFds`, also closes every registered
   * fd (numbers with `sys.close`, objects with their own `close()`). Idempotent.
   */
  close(opts: { allFds?: boolean } = {}): void {
    if (this.state === State.Closed) return;
    if (this.state === State.Running) this.finishStop();
    if (opts?.allFds) this.closeAllFds();
    for (const [signal, listener] of this.signalListeners) process.removeListener(signal, listener);
    this.signalListeners.clear();
    this.state = State.Closed;
    this.driver.close();
    this.core.loop_close();
    if (currentLoop === this) currentLoop = null;
    this.callbacks = new CallbackQueue([]);
    this.runningCallbacks = new CallbackQueue([]);
    this.timerFns = [];
    this.timerArg = [];
    this.handlerFns = [];
    this.handlerObjs = [];
  }

  // ---------------------------------------------------------------- threads and signals

  /** Not available in this version. @throws Error */
  createChannel<T>(onMessage: (msg: T) => unknown): never {
    this.checkOpen();
    checkFunction(onMessage, 'onMessage');
    throw new Error('createChannel is not available in this version');
  }

  /**
   * Runs `cb` as a loop callback whenever the process receives `signal` (e.g. `'SIGTERM'`).
   * Replaces this loop's earlier handler for the same signal.
   * @throws TypeError for an unknown signal name or a callback that is not a function.
   */
  addSignalHandler(signal: string, cb: () => unknown): void {
    this.checkOpen();
    checkSignal(signal);
    checkFunction(cb, 'cb');
    this.removeSignalHandler(signal);
    const listener = (): void => this.addCallback(cb);
    this.signalListeners.set(signal, listener);
    process.on(signal as NodeJS.Signals, listener);
  }

  /** Removes this loop's handler for `signal`; does nothing if there is none. */
  removeSignalHandler(signal: string): void {
    this.checkOpen();
    checkSignal(signal);
    const listener = this.signalListeners.get(signal);
    if (listener === undefined) return;
    process.removeListener(signal, listener);
    this.signalListeners.delete(signal);
  }

  // ---------------------------------------------------------------- diagnostics

  /** Not available in this version. @throws Error */
  setBlockingLogThreshold(seconds: number | null): never {
    this.checkOpen();
    if (seconds !== null) checkNumber(seconds, 'seconds');
    throw new Error('setBlockingLogThreshold is not available in this version');
  }

  /** Counters of this loop. Cheap: no allocation beyond the returned object. */
  stats(): LoopStats {
    this.checkOpen();
    const core = this.core;
    return {
      iterations: core.stat_iterations(),
      callbacks: this.callbacksRun,
      timers: core.stat_timers_fired(),
      events: core.stat_events(),
      pendingCallbacks: this.callbacks.length + this.runningCallbacks.length,
      pendingTimers: core.timer_count(),
      handlers: core.handler_count(),
    };
  }

  // ---------------------------------------------------------------- the turn

  /** One turn, called by the driver: one iteration, then arrange the next. */
  private readonly onTurn = (reason: number): void => {
    if (reason === TURN_TIMER) this.armedAt = Infinity;
    if (this.state !== State.Running) return;
    this.armedSoon = false;
    this.inTurn = true;
    let failed = false;
    let failure: unknown;
    try {
      // While there is work — callbacks pending, or the last poll found fds ready (so
      // more may be ready now: a handler's write makes its peer readable at once) —
      // run up to TURN_ITERATIONS iterations in this one host turn. Each is a full
      // iteration, poll included; the host's own turn (its poll, and its microtask
      // checkpoint) is paid once per batch instead of once per iteration.
      let budget = TURN_ITERATIONS;
      do this.iterate();
      while (--budget > 0 && (this.callbacks.length > 0 || this.lastPollCount > 0) && !this.stopping && this.state === State.Running);
    } catch (e) {
      failed = true;
      failure = e;
    } finally {
      this.inTurn = false;
    }
    if (this.state !== State.Running) return; // closed by a callback
    if (failed || this.stopping) this.finishStop(failed, failure);
    else this.armNext();
  };

  private iterate(): void {
    const core = this.core;
    // With no timer in the heap nothing can be due, and the clock (tens of ns) is not read.
    const ndue = core.iteration_begin(core.timer_next_deadline() === Infinity ? -Infinity : this.clock());
    if (this.callbacks.length > 0) this.runCallbacks();
    if (ndue > 0 && this.state === State.Running) this.runTimers();
    if (this.stopping || this.state !== State.Running) return;
    if (core.handler_count() === 0) {
      this.lastPollCount = 0; // nothing registered: nothing a poll could report
      return;
    }
    const n = core.poll(0);
    if (n < 0) throw new SysError(-n, 'epoll_wait');
    this.lastPollCount = n;
    if (n > 0) this.dispatchEvents();
  }

  private runCallbacks(): void {
    const batch = this.callbacks;
    this.callbacks = this.runningCallbacks;
    this.runningCallbacks = batch;
    batch.drain(this.runCallback);
  }

  private readonly runCallback = (fn: AnyFunction, arg: unknown): boolean => {
    this.callbacksRun++;
    this.invoke(fn, arg, 'callback');
    return this.state === State.Running; // closed: the rest are dropped
  };

  private runTimers(): void {
    const core = this.core;
    let slot: number;
    while ((slot = core.timer_next_due()) >= 0) {
      const fn = this.timerFns[slot]!;
      const arg = this.timerArg[slot];
      this.timerFns[slot] = undefined;
      this.timerArg[slot] = undefined;
      this.invoke(fn, arg, 'timeout');
      if (this.state !== State.Running) return;
    }
  }

  private dispatchEvents(): void {
    const core = this.core;
    let packed: number;
    while ((packed = core.event_next()) !== -1) {
      if (packed === -2) continue; // the waker: being woken was the point
      const slot = packed >>> 8;
      const fn = this.handlerFns[slot]!;
      try {
        const r = fn(this.handlerObjs[slot]!, packed & 0xff);
        if (r != null && typeof (r as PromiseLike<unknown>).then === 'function') (r as PromiseLike<unknown>).then(undefined, this.onHandlerRejection);
      } catch (e) {
        this.onHandlerError(e);
      }
      if (this.state !== State.Running) return;
    }
  }

  /** Runs a user function with its packed arguments; logs what it throws or rejects with. */
  private invoke(fn: AnyFunction, arg: unknown, what: string): void {
    try {
      const r = callPacked(fn, arg);
      if (r != null && typeof (r as PromiseLike<unknown>).then === 'function') (r as PromiseLike<unknown>).then(undefined, this.onCallbackRejection);
    } catch (e) {
      this.logger.error(`Exception in ${what} ${fn.name || '(anonymous)'}:`, e);
    }
  }

  private readonly onCallbackRejection = (e: unknown): void => {
    this.logger.error('Exception in callback (rejected promise):', e);
  };

  private readonly onHandlerRejection = (e: unknown): void => this.onHandlerError(e);

  private onHandlerError(e: unknown): void {
    // Tornado ignores EPIPE from handlers: the peer went away, and the fd's next
    // event (or its owner) deals with it.
    if ((e as { code?: unknown } | null)?.code === 'EPIPE') return;
    this.logger.error('Exception in I/O handler:', e);
  }

  /**
   * Arranges the next turn: as soon as the host comes round if callbacks are
   * pending, else at the next deadline (at most MAX_POLL_TIMEOUT away), else only
   * on I/O. Skips the driver when it is already armed that way. `fromTurn` is false
   * when a timer added between turns calls it: the fake clock only jumps in a turn.
   */
  private armNext(fromTurn = true): void {
    const core = this.core;
    if (this.callbacks.length > 0) {
      if (!this.armedSoon) this.armSoon();
      return;
    }
    const next = core.timer_next_deadline();
    if (next === Infinity) {
      if (this.armedAt !== Infinity) {
        this.armedAt = Infinity;
        this.driver.arm(-1);
      }
      return;
    }
    if (next === this.armedAt) return;
    if (this.virtualClock !== null) {
      // The fake clock: when the last poll found nothing ready, skip to the deadline.
      if (fromTurn && this.lastPollCount === 0) this.virtualClock.advance(core.poll_timeout(this.clock(), 0));
      if (!this.armedSoon) this.armSoon();
      return;
    }
    const now = this.clock();
    const wait = core.poll_timeout(now, 0);
    if (wait === 0) {
      if (!this.armedSoon) this.armSoon();
      return;
    }
    // Round up: a wake-up before the deadline would only find nothing due and wait again.
    this.armedAt = wait < this.maxPollTimeout ? next : now + wait;
    this.driver.arm(Math.ceil(wait * 1000));
  }

  private armSoon(): void {
    this.armedSoon = true;
    this.armedAt = -Infinity;
    this.driver.arm(0);
  }

  private finishStop(failed = false, failure?: unknown): void {
    this.state = State.Idle;
    this.stopping = false;
    this.armedSoon = false;
    this.armedAt = Infinity;
    this.driver.stop();
    if (currentLoop === this) {
      const previous = this.previousCurrent;
      currentLoop = previous !== null && previous.state !== State.Closed ? previous : null;
    }
    this.previousCurrent = null;
    const settle = this.settle;
    this.settle = null;
    if (failed) settle?.reject(failure);
    else settle?.resolve();
  }

  // ---------------------------------------------------------------- helpers

  private schedule(when: number, fn: AnyFunction, arg: unknown): Timeout {
    const handle = this.core.timer_start(when);
    if (handle < 0) {
      throw new RangeError(
        `too many pending timers: ${this.core.timer_count()} are pending, and the core has no room for another ` +
          `(at most ${this.timerSlots}, fewer when its WebAssembly memory is full)`,
      );
    }
    const slot = handle % this.timerSlots;
    if (slot >= this.timerFns.length) {
      growDense(this.timerFns, slot, undefined);
      growDense(this.timerArg, slot, undefined);
    }
    this.timerFns[slot] = fn;
    this.timerArg[slot] = arg;
    // A timer added from outside a turn (a promise, a Node callback) may be earlier
    // than the driver's wake-up: move the wake-up.
    if (when < this.armedAt && !this.inTurn && this.state === State.Running) this.armNext(false);
    return handle;
  }

  private closeAllFds(): void {
    for (let slot = 0; slot < this.handlerObjs.length; slot++) {
      const fd = this.handlerObjs[slot];
      if (fd === undefined) continue;
      try {
        this.core.handler_remove(filenoOf(fd));
        if (typeof fd === 'number') sys.close(fd);
        else (fd as { close?: () => unknown }).close?.();
      } catch (e) {
        // Tornado's close_fd: an fd that is already gone is not an error here.
        this.logger.warn('Error closing fd on IOLoop.close({ allFds: true }):', e);
      }
    }
  }

  private checkOpen(): void {
    if (this.state === State.Closed) throw new Error(CLOSED_MESSAGE);
  }

  private checkFds(method: string): void {
    if (this.backend.native === null) {
      throw new Error(
        `${method} needs the native shim (build/Release/wasm_ioloop.node) to watch fds; this loop's backend '${this.backend.name}' watches none`,
      );
    }
  }
}

function chooseBackend(requested: unknown, driver: DriverName): AnyBackendName {
  if (requested === undefined) return driver === 'portable' && defaultBackend() === 'epoll' ? 'none' : defaultBackend();
  if (!BACKEND_NAMES.includes(requested as BackendName)) {
    throw new TypeError(`options.backend must be one of ${BACKEND_NAMES.join(', ')}; got ${describe(requested)}`);
  }
  if (requested === 'epoll' && loadNative() === null) {
    throw new Error(`backend 'epoll' needs the native shim, which is not available; available backends: ${availableBackends().join(', ')}`);
  }
  if (driver === 'portable' && requested !== 'fake') {
    throw new Error(`driver 'portable' watches no fds: it works with backend 'fake' (or none given), not '${String(requested)}'`);
  }
  return requested as BackendName;
}

function openDriver(name: unknown, backend: Backend, epfd: number, turn: (reason: number) => void): Driver {
  switch (name) {
    case 'guest':
      if (backend.native === null) throw new Error("driver 'guest' needs the native shim, which is not available; available drivers: portable");
      return new GuestDriver(backend.native, epfd, turn);
    case 'portable':
      return new PortableDriver(turn);
    case 'blocking':
      throw new Error(`driver 'blocking' is not available in this version; available drivers: ${backend.native ? 'guest, portable' : 'portable'}`);
    default:
      throw new TypeError(`options.driver must be one of guest, blocking, portable; got ${describe(name)}`);
  }
}

/**
 * Extends a by-slot array past `slot` with explicit `fill` values. The core hands
 * slots out in any order (freed slots are reused first); writing far past the end
 * of a JS array would make it sparse, and V8 then stores it as a slow dictionary.
 */
function growDense<T>(array: T[], slot: number, fill: T): void {
  const target = Math.max(slot + 1, array.length * 2, 1024);
  const start = array.length;
  // One `fill` over the new length rather than a push per element: with a million
  // timers, pushes were a tenth of the loop's time.
  array.length = target;
  array.fill(fill, start);
}
/** Throws the error for a bad deadline or callback (kept off the fast path of callAt and friends). */
function badTimer(value: unknown, name: string, cb: unknown): never {
  checkNumber(value, name);
  checkFunction(cb, 'callback');
  throw new Error('unreachable');
}

function filenoOf(fd: unknown): number {
  let n = fd;
  if (typeof fd === 'object' && fd !== null && typeof (fd as { fileno?: unknown }).fileno === 'function') {
    n = (fd as { fileno(): unknown }).fileno();
  }
  if (typeof n !== 'number' || !Number.isInteger(n)) {
    throw new TypeError(`fd must be an integer file descriptor or an object with fileno(), got ${describe(fd)}`);
  }
  return n;
}

const EVENT_BITS = READ | WRITE | ERROR;

function checkEvents(events: unknown): asserts events is number {
  checkInteger(events, 'events');
  if ((events & ~EVENT_BITS) !== 0 || events < 0) {
    throw new RangeError(`events must combine IOLoop.READ, IOLoop.WRITE and IOLoop.ERROR, got 0x${events.toString(16)}`);
  }
}

function fdError(errno: number, method: string, fd: number): SysError {
  switch (errno) {
    case Errno.EEXIST:
      return new SysError(errno, method, `fd ${fd} is already registered`);
    case Errno.ENOENT:
      return new SysError(errno, method, `fd ${fd} is not registered`);
    case Errno.EBADF:
      return new SysError(errno, method, `fd ${fd} is not an open file descriptor`);
    case Errno.ENOMEM:
      return new SysError(errno, method, 'out of memory for handlers');
    default:
      return new SysError(errno, method, `fd ${fd}`);
  }
}

function durationSeconds(d: unknown): number {
  if (typeof d !== 'object' || d === null) throw new TypeError(`deadline must be a number or a Duration object, got ${describe(d)}`);
  const { seconds = 0, milliseconds = 0, microseconds = 0 } = d as Duration;
  checkNumber(seconds, 'deadline.seconds');
  checkNumber(milliseconds, 'deadline.milliseconds');
  checkNumber(microseconds, 'deadline.microseconds');
  return seconds + milliseconds / 1e3 + microseconds / 1e6;
}

function checkSignal(signal: unknown): void {
  if (typeof signal !== 'string' || !/^SIG[A-Z0-9]+$/.test(signal)) {
    throw new TypeError(`signal must be a signal name such as 'SIGTERM', got ${describe(signal)}`);
  }
}
