// IOLoop: the public face of a loop. It checks arguments, and hands everything else
// to the turn engine (engine.ts, which describes one iteration), the backend and
// driver that selection.ts chose, and the thread's current-loop state (current.ts).

import { NO_ARG as NO_ARG_EXPORT, packArgs } from './args';
import { instantiateBackend, makeBackend, type BackendName } from './backends';
import { monotonic, realClock } from './clock';
import type { CoreExports, WasiHost } from './core';
import { configuredDefaults, currentLoopOf, setConfigured, setCurrentLoop } from './current';
import { Engine, State as EngineState, type Logger } from './engine';
import { clockShare as clockShareExport, commitShareAt, type RelativeTimerExports } from './shared-clock';
import { Errno, SysError, TimeoutError } from './errors';
import { loadNative } from './native';
import { checkBackend, chooseLoop, defaultBackend, hostInfo, openDriver, wasiHostFor, type HostInfo } from './selection';
import { LoopSignals } from './signals';
import type { Sys } from './sys';
import { closeChannelsOf, createChannelOn, type ChannelOptions, type ChannelPort } from './channel';
import { closeWatch, setBlockingThreshold } from './watchdog';
import { badTimer, checkEvents, checkFunction, checkNumber, checkSignal, describe, durationSeconds, filenoOf, type Duration, type FdLike } from './validate';

// Module-local copies of what every timer and callback call reads: from source
// under tsx an imported name is a getter with a megamorphic keyed load (see
// engine.ts); `State` is a const enum, which tsx does not inline across files.
const NO_ARG = NO_ARG_EXPORT;
const clockShare = clockShareExport;
const State = { Idle: EngineState.Idle, Running: EngineState.Running, Closed: EngineState.Closed } as const;

export type { FdLike, Duration, Logger, HostInfo, WasiHost };

/** Called with what was registered (the object, if one was given) and the ready events. */
export type Handler = (fd: FdLike, events: number) => unknown;

/** Options of {@link IOLoop}'s constructor (and of {@link IOLoop.configure}'s defaults). */
export interface IOLoopOptions {
  /** Who answers the core's poll calls: `epoll` (default on Linux with the native shim), `poll` (poll(2)), `fake` (a virtual clock); see IOLoop.host(). */
  backend?: 'epoll' | 'poll' | 'wasi' | 'fake';
  /** Who waits between iterations: `guest` (default where the native shim loads), `blocking` (the loop owns its thread), `portable` (host timers, no native shim). */
  driver?: 'guest' | 'blocking' | 'portable';
  /**
   * Backend `wasi` only (and implies it): who answers the core's WASI preview1
   * imports. node:wasi's `WASI` (`new WASI({ version: 'preview1', ... })`), or any
   * object with `wasiImport` or `getImportObject()` and, if it needs one,
   * `initialize(instance)`. One host serves one loop. Default: a new instance of the
   * package's own provider. The driver follows the host: `portable` for one that
   * tells when an fd is ready (the provider), else `blocking` (node:wasi).
   */
  wasi?: WasiHost;
  /** The clock, in seconds. Default: monotonic (`performance.now()`). Not with the fake backend, which has its own. */
  time?: () => number;
  /** Default: become current if there is no current loop. `true` throws if another loop is current. */
  makeCurrent?: boolean;
  /** Where errors from callbacks, handlers and timers go. Default: `console`. */
  logger?: Logger;
}

/** Counters of a loop, from {@link IOLoop.stats}. */
export interface LoopStats {
  /** Loop iterations so far. */
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
  /** Seconds spent waiting for work since the loop was made (a wait in progress counts). */
  idleTime: number;
  /**
   * Seconds timers fired past their deadline: one sample per iteration that fires
   * any (its earliest), as count, median, 99th percentile (within 12.5 %) and maximum.
   */
  lag: { count: number; p50: number; p99: number; max: number };
}

/** An opaque timer handle, for {@link IOLoop.removeTimeout}. */
export type Timeout = unknown;

type AnyFunction = (...args: any[]) => unknown;

const CLOSED_MESSAGE = 'IOLoop is closed';
/** Whether relative timers of one callback share a clock read (see scheduleAfter). */
const SHARED_CLOCK_READ = false;
const STOPPED_BEFORE_SETTLED = 'IOLoop stopped before the function passed to run() settled';

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

/** A loop's engine, for the package's own modules (channels, tests of the engine). Internal. */
export function engineOf(loop: IOLoop): Engine {
  return (loop as unknown as { engine: Engine }).engine;
}

/**
 * A Tornado-style I/O loop: watches fds, runs timers and callbacks on one thread.
 *
 * Thread-safety: an IOLoop belongs to the thread that made it; call its methods
 * from that thread only. Methods may be called from inside its own callbacks and
 * handlers (they are re-entrant in that sense). Every method of a closed loop
 * throws, except `addCallback` (does nothing) and `close` (idempotent).
 */
export class IOLoop {
  /** No events. */
  static readonly NONE = 0;
  /** Readable. */
  static readonly READ = 0x001;
  /** Writable. */
  static readonly WRITE = 0x004;
  /** Error or hang-up; always added to a registration. */
  static readonly ERROR = 0x018;

  private readonly engine: Engine;
  /** The descriptor calls of this loop's backend (the native ones for epoll, poll and fake). */
  readonly sys: Sys;
  private stopRequested = false;
  private previousCurrent: IOLoop | null = null;
  /** This loop's signal handlers, once it has had one. */
  private signals: LoopSignals | null = null;

  /**
   * Creates a loop. It is idle until {@link start} or {@link run}.
   * @throws TypeError/RangeError for a bad option; Error when the backend or driver
   *   cannot be had here (the message names what this host has, as IOLoop.host()
   *   does); Error when `makeCurrent: true` and another loop is current; SysError
   *   if the poller cannot be created.
   */
  constructor(options: IOLoopOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new TypeError(`options must be an object, got ${describe(options)}`);
    const configured = configuredDefaults();
    const opts = { ...configured.defaults, ...options };
    const makeCurrent = opts.makeCurrent;
    if (makeCurrent !== undefined && typeof makeCurrent !== 'boolean') {
      throw new TypeError(`options.makeCurrent must be a boolean, got ${describe(makeCurrent)}`);
    }
    if (makeCurrent === true && currentLoopOf() !== null) {
      throw new Error('a current IOLoop already exists; call IOLoop.clearCurrent() first');
    }
    if (opts.time !== undefined) checkFunction(opts.time, 'options.time');
    const logger = opts.logger ?? defaultLogger;
    if (typeof logger !== 'object' || logger === null || typeof logger.error !== 'function' || typeof logger.warn !== 'function') {
      throw new TypeError('options.logger must have error() and warn() methods');
    }
    const choice = chooseLoop(options.backend ?? configured.backend, opts.driver, opts.wasi);
    if (choice.backend === 'fake' && opts.time !== undefined) {
      throw new TypeError("options.time cannot be used with backend 'fake', which has its own clock");
    }

    let core: CoreExports | undefined;
    const native = choice.backend === 'none' || choice.backend === 'wasi' ? null : loadNative();
    const backend = makeBackend(choice.backend, native, () => core!.memory, wasiHostFor(choice));
    core = instantiateBackend(backend);
    const rc = core.loop_init();
    if (rc < 0) throw new SysError(-rc, backend.name === 'poll' ? 'poll set' : 'epoll_create');
    const engine = new Engine(core, backend, backend.clock ?? realClock(opts.time ?? monotonic), logger);
    try {
      engine.attach(openDriver(choice.driver, backend, engine));
    } catch (e) {
      core.loop_close();
      throw e;
    }
    engine.onStopped = this.onStopped;
    this.engine = engine;
    this.sys = backend.sys;
    this.logger = logger;
    loggers.set(this, logger);
    if (makeCurrent === true || (makeCurrent === undefined && currentLoopOf() === null)) setCurrentLoop(this);
  }

  private readonly logger: Logger;

  // ---------------------------------------------------------------- current loop

  /**
   * The current loop of this thread. Without arguments, creates one if there is none;
   * with `{ instance: false }`, returns null instead.
   * @throws as the constructor, when it creates one.
   */
  static current(): IOLoop;
  static current(opts: { instance: false }): IOLoop | null;
  static current(opts?: { instance?: boolean }): IOLoop | null {
    if (currentLoopOf() === null && opts?.instance !== false) new IOLoop({ makeCurrent: true });
    return currentLoopOf();
  }

  /** Makes this loop the current one of its thread, replacing any other. @throws Error on a closed loop. */
  makeCurrent(): void {
    this.checkOpen();
    setCurrentLoop(this);
  }

  /** Leaves this thread with no current loop. */
  static clearCurrent(): void {
    setCurrentLoop(null);
  }

  /**
   * Sets the backend (and default options) of loops created from now on on this
   * thread. `undefined` restores the default.
   * @throws TypeError for an unknown backend name or defaults that are not an
   *   object; Error if the backend cannot be had here, naming what this host has.
   */
  static configure(backend: IOLoopOptions['backend'], defaults: IOLoopOptions = {}): void {
    if (backend !== undefined) checkBackend(backend, 'backend');
    if (typeof defaults !== 'object' || defaults === null) throw new TypeError(`defaults must be an object, got ${describe(defaults)}`);
    const { backend: _ignored, ...rest } = defaults;
    if (rest.driver !== undefined) chooseLoop(backend, rest.driver);
    setConfigured(backend as BackendName | undefined, rest);
  }

  /** The backend new loops get: the configured one, else the default (`epoll` on Linux with the native shim, `none` without it). */
  static configuredBackend(): string {
    return configuredDefaults().backend ?? defaultBackend();
  }

  /**
   * What this host has: the runtime and its version, whether the native shim is in
   * use (or why not), and the backends and drivers a loop can have here. Never throws.
   */
  static host(): HostInfo {
    return hostInfo();
  }

  // ---------------------------------------------------------------- file descriptors

  /**
   * Calls `handler(fd, events)` whenever `fd` is ready for `events` (level-triggered).
   * ERROR is always added. `fd` is a number or an object with `fileno()`; the
   * handler gets back exactly what was passed.
   * @throws TypeError for a non-integer fd or a handler that is not a function;
   *   RangeError for unknown event bits; SysError `EEXIST` if the fd is already
   *   registered, `EBADF` if it is closed or invalid; Error if this loop's backend
   *   watches no fds.
   */
  addHandler(fd: FdLike, handler: Handler, events: number): void {
    this.checkOpen();
    const n = filenoOf(fd);
    checkFunction(handler, 'handler');
    checkEvents(events);
    const engine = this.engine;
    if (!engine.backend.watchesFds) {
      throw new Error(`addHandler: this loop's backend '${engine.backend.name}' watches no fds; ${hostSummaryLine()}`);
    }
    const slot = engine.core.handler_add(n, events);
    if (slot < 0) throw fdError(-slot, 'addHandler', n);
    if (slot >= engine.handlerFns.length) {
      growDense(engine.handlerFns, slot, undefined);
      growDense(engine.handlerObjs, slot, undefined);
    }
    engine.handlerFns[slot] = handler;
    engine.handlerObjs[slot] = fd;
  }

  /**
   * Changes the events `fd` is watched for.
   * @throws TypeError/RangeError for bad arguments; SysError `ENOENT` if the fd is not registered.
   */
  updateHandler(fd: FdLike, events: number): void {
    this.checkOpen();
    const n = filenoOf(fd);
    checkEvents(events);
    const rc = this.engine.core.handler_update(n, events);
    if (rc < 0) throw fdError(-rc, 'updateHandler', n);
  }

  /**
   * Stops watching `fd` and drops its events not yet dispatched. Does nothing for an
   * fd that is not registered. Does not close the fd.
   * @throws TypeError for a non-integer fd.
   */
  removeHandler(fd: FdLike): void {
    this.checkOpen();
    const engine = this.engine;
    const slot = engine.core.handler_remove(filenoOf(fd));
    if (slot >= 0) {
      engine.handlerFns[slot] = undefined;
      engine.handlerObjs[slot] = undefined;
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
    if (this.engine.state === State.Closed) return;
    // `arguments` rather than a rest parameter: no array at all for calls with no
    // argument or one (see `invoke`).
    // Passing `arguments` on would make V8 allocate it; reading it here does not.
    const n = arguments.length;
    const engine = this.engine;
    engine.callbacks.push(cb, n === 1 ? NO_ARG : n === 2 ? arguments[1] : packArgs(Array.prototype.slice.call(arguments, 1)));
    engine.callbackAdded();
  }

  /**
   * As {@link addCallback}, for Tornado's `add_callback_from_signal`. JavaScript
   * never runs inside an OS signal handler: the callbacks of
   * {@link addSignalHandler} and process.on listeners run on a thread between
   * jobs, so this is an ordinary addCallback. Loop's thread only.
   * @throws Error on a closed loop; TypeError if `cb` is not a function.
   */
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

  /** The loop's clock, in seconds (monotonic unless `options.time` says otherwise; virtual on the fake backend). */
  time(): number {
    this.checkOpen();
    const now = this.engine.now();
    // Relative timers started before this read count from it at the latest, so no
    // deadline contradicts what the caller saw (src/shared-clock.ts).
    if (clockShare.mark > 1 && clockShare.owner === this.engine) commitShareAt(now);
    return now;
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
   * Runs `cb(...args)` `delay` seconds from now; a negative delay runs in the next
   * iteration. Inside a callback or timer of this loop, "now" for every relative
   * timer after its first is read once when that callback returns (never before the
   * call, so never early; see src/shared-clock.ts).
   * @returns a handle for {@link removeTimeout}.
   * @throws TypeError/RangeError as {@link callAt}, naming `delay`.
   */
  callLater<A extends unknown[]>(delay: number, cb: (...args: A) => unknown, ...args: A): Timeout;
  callLater(delay: number, cb: AnyFunction): Timeout {
    this.checkOpen();
    if (typeof delay !== 'number' || delay !== delay || typeof cb !== 'function') badTimer(delay, 'delay', cb);
    const n = arguments.length;
    return this.scheduleAfter(delay, cb, n === 2 ? NO_ARG : n === 3 ? arguments[2] : packArgs(Array.prototype.slice.call(arguments, 2)));
  }

  /**
   * Tornado's `add_timeout`: a number is an absolute deadline (as {@link callAt}), a
   * {@link Duration} is relative to now.
   * @throws TypeError/RangeError as {@link callAt}, naming `deadline`.
   */
  addTimeout<A extends unknown[]>(deadline: number | Duration, cb: (...args: A) => unknown, ...args: A): Timeout;
  addTimeout(deadline: number | Duration, cb: AnyFunction): Timeout {
    this.checkOpen();
    const relative = typeof deadline !== 'number';
    const value = relative ? durationSeconds(deadline) : deadline;
    if (typeof value !== 'number' || value !== value || typeof cb !== 'function') badTimer(value, 'deadline', cb);
    const n = arguments.length;
    const arg = n === 2 ? NO_ARG : n === 3 ? arguments[2] : packArgs(Array.prototype.slice.call(arguments, 2));
    return relative ? this.scheduleAfter(value, cb, arg) : this.schedule(value, cb, arg);
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
    const engine = this.engine;
    if (engine.core.timer_stop(timeout) === 1) {
      // A handle is an integer below 2^52 and TIMER_SLOTS divides 2^32, so the low
      // bits after ToInt32 are the slot: no floating-point `%`, which V8 calls out
      // for once a slot's generation takes the handle past the int32 range (W2
      // reuses one slot a million times).
      const slot = timeout & (engine.timerSlots - 1);
      engine.timerFns[slot] = undefined;
      engine.timerArg[slot] = undefined;
    }
  }

  // ---------------------------------------------------------------- running

  /**
   * Runs the loop until {@link stop}. The promise resolves when the loop has stopped
   * (or rejects with a SysError if waiting for the poller failed; the loop is then
   * stopped and may be started again). Under the guest and portable drivers it
   * returns at once and the host's own loop keeps running; under the blocking
   * driver the loop takes the thread at the end of the current synchronous job.
   * A running loop keeps the host alive and is the current loop; the previous one
   * is current again after.
   * @returns a promise rejected with 'IOLoop is already running' if it is running,
   *   and with 'IOLoop is closed' if closed.
   */
  start(): Promise<void> {
    const engine = this.engine;
    if (engine.state === State.Closed) return Promise.reject(new Error(CLOSED_MESSAGE));
    if (engine.state === State.Running) return Promise.reject(new Error('IOLoop is already running'));
    if (this.stopRequested) {
      this.stopRequested = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      this.previousCurrent = currentLoopOf();
      setCurrentLoop(this);
      engine.start({ resolve, reject });
    });
  }

  /**
   * Stops the loop after the current iteration. Before {@link start}, makes the next
   * start() return at once. Work scheduled before stop() may still run in that iteration.
   * @throws Error on a closed loop.
   */
  stop(): void {
    this.checkOpen();
    if (this.engine.state !== State.Running) this.stopRequested = true;
    else this.engine.stop();
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
    if (this.engine.state === State.Running) return Promise.reject(new Error('IOLoop is already running'));
    if (this.stopRequested) {
      // The pending stop() ends this run before `fn` could run: don't leave it queued.
      this.stopRequested = false;
      return Promise.reject(new Error(STOPPED_BEFORE_SETTLED));
    }

    let outcome: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
    const stopNow = (): void => {
      if (this.engine.state === State.Running) this.stop();
    };
    // As Tornado's run_sync: a settled result stops the loop through a callback
    // (add_future), so the iteration after it still runs; a timeout stops it at once.
    const settled = (result: NonNullable<typeof outcome>): void => {
      if (outcome !== undefined) return;
      outcome = result;
      if (this.engine.state === State.Running) this.addCallback(stopNow);
    };
    this.addCallback(() => {
      try {
        Promise.resolve(fn()).then(
          (value) => settled({ ok: true, value }),
          (error) => settled({ ok: false, error }),
        );
      } catch (error) {
        settled({ ok: false, error });
      }
    });
    const timer =
      timeout === undefined
        ? undefined
        : this.callLater(timeout, () => {
            if (outcome !== undefined) return;
            outcome = { ok: false, error: new TimeoutError(`Operation timed out after ${timeout} seconds`) };
            stopNow();
          });
    return this.start().then(() => {
      if (timer !== undefined && this.engine.state !== State.Closed) this.removeTimeout(timer);
      if (outcome === undefined) throw new Error(STOPPED_BEFORE_SETTLED);
      if (!outcome.ok) throw outcome.error;
      return outcome.value;
    });
  }

  /**
   * Closes the loop: stops it if it runs, releases its poller, waker and host
   * handles, removes its signal handlers, and drops pending callbacks and timers.
   * With `allFds`, also closes every registered fd (numbers with `sys.close`,
   * objects with their own `close()`). Idempotent.
   */
  close(opts: { allFds?: boolean } = {}): void {
    const engine = this.engine;
    if (engine.state === State.Closed) return;
    if (engine.state === State.Running) engine.halt();
    if (opts?.allFds) this.closeAllFds();
    closeWatch(engine);
    // Signal watches go before the engine closes the waker they write to.
    this.signals?.close();
    this.signals = null;
    closeChannelsOf(engine); // before the engine closes the waker the channels' ids name
    engine.close();
    if (currentLoopOf() === this) setCurrentLoop(null);
  }

  // ---------------------------------------------------------------- threads and signals

  /**
   * Makes a channel into this loop: `onMessage(msg)` runs on the loop's thread for
   * each message posted through it, in order (each sender's in the order it
   * posted, different senders' in the order they entered the queue), none lost or
   * doubled. Returns its port, plain data (shared memory and the id of the loop's
   * waker) to send to a Worker with postMessage or workerData; `openChannel(port)`
   * there (or on this thread) gives the sender. Messages are copied as postMessage
   * copies them. A post wakes the loop through its waker (an eventfd in its
   * poller), and posts that come before the loop has looked share one wake-up, so
   * a burst costs a few wake-ups, not one each. onMessage runs during the
   * iteration's handlers; what it throws, or a promise it returns rejects with, is
   * logged and the next message follows. A drain delivers at most
   * max(capacity, 64) messages, then the rest in the next iteration.
   *
   * The channel lives until the loop closes. close() then closes it: posts throw
   * ChannelClosedError, and what was queued and not yet delivered is dropped, with
   * one `logger.warn` that says how many. Works under the guest driver (libuv or
   * the watcher thread) and the blocking driver. Loop's thread only.
   * @param opts.capacity messages queued at most (default 1024); opts.bytes the
   *   ring's size (see ChannelOptions).
   * @throws TypeError if `onMessage` is not a function or an option is not an
   *   integer; RangeError for an option out of range; Error on a closed loop, or
   *   when the loop has no waker (no native shim: the portable driver); SysError
   *   if the waker cannot be made.
   */
  createChannel<T>(onMessage: (msg: T) => unknown, opts?: ChannelOptions): ChannelPort {
    this.checkOpen();
    return createChannelOn(this.engine, this.logger, (fn) => this.addCallback(fn), onMessage, opts);
  }

  /**
   * Runs `cb` as a loop callback whenever the process receives `signal` (e.g.
   * `'SIGTERM'`), under every driver and on any thread: a blocking loop and a loop
   * in a worker thread get their signals too. Replaces this loop's earlier
   * callback for the same signal; other loops watching it (on this thread or
   * another) each run their own. Several arrivals before the loop wakes run `cb`
   * once. A stopped loop keeps its handlers: a signal that arrives meanwhile runs
   * `cb` once the loop runs again.
   *
   * While any loop watches a signal, the process's earlier handling of it is
   * replaced: the default action (e.g. dying of SIGTERM, or of Ctrl-C) does not
   * happen, and a process.on listener for it keeps firing beside the loop's.
   * {@link removeSignalHandler} and {@link close} give it back exactly once no loop
   * watches the signal. On backends without the shim's poller (`wasi`, and `none`
   * where the shim is absent) this is a process.on listener instead, which the
   * host delivers on its main thread only, when its own loop runs; in a worker
   * thread those backends throw. Loop's thread only.
   * @throws TypeError for a name that is not a signal of this OS, or one that cannot
   *   be caught (SIGKILL, SIGSTOP), or a callback that is not a function; SysError
   *   if the signal cannot be handled (sigaction refuses it, or 1024 loops of the
   *   process watch signals already); Error on a closed loop, and in a worker
   *   thread on a backend without the shim's poller.
   */
  addSignalHandler(signal: string, cb: () => unknown): void {
    this.checkOpen();
    const signo = checkSignal(signal);
    checkFunction(cb, 'cb');
    this.signals ??= new LoopSignals(this.engine, (fn) => this.addCallback(fn));
    this.signals.add(signal, signo, cb);
  }

  /**
   * Removes this loop's handler for `signal`; does nothing if there is none. When
   * no loop of the process watches the signal any more, its earlier handling comes
   * back exactly (unless other code replaced the loop's handler since, which then
   * keeps it). Loop's thread only.
   * @throws TypeError as addSignalHandler; Error on a closed loop; SysError if the
   *   earlier handling cannot be restored (the handler is removed all the same).
   */
  removeSignalHandler(signal: string): void {
    this.checkOpen();
    const signo = checkSignal(signal);
    this.signals?.remove(signal, signo);
  }

  // ---------------------------------------------------------------- diagnostics

  /**
   * Tornado's `set_blocking_log_threshold`: warns when one callback, timer or
   * handler of this loop keeps the loop for longer than `seconds`. Each such call
   * gets one `logger.warn` as soon as it returns, naming it (its function's name,
   * or `(anonymous)`, and whether it is a callback, timer or handler), how long it
   * ran, and the JavaScript stack taken while it was blocking.
   *
   * Where the watchdog addon is available (Node; `IOLoop.host().watchdog` says),
   * a thread of the addon interrupts the blocking function at the threshold: the
   * warning and the stack are written to stderr (fd 2) then, while it still
   * runs. A function inside native code, where V8 cannot interrupt it, is
   * reported on stderr as such one threshold later. Where the addon is not
   * available (Bun, Deno, no build), the logger's warning comes after the fact,
   * with the name and the duration, and says it has no stack.
   *
   * Only the calls the loop makes are watched: the loop's own wait for work is
   * never reported, and promise continuations of async callbacks are not
   * watched. `null` turns it off (the default); off, it costs one null check per
   * call. A changed threshold applies at once, also to the call in progress;
   * turned on from inside a call, it watches the calls after that one.
   *
   * Thread-safety: the loop's thread only; each loop, on any thread, has its own
   * threshold.
   * @throws TypeError unless `seconds` is a number or null; RangeError for NaN,
   *   a value <= 0, or one that is not finite; Error on a closed loop, or if the
   *   watchdog's thread cannot be started.
   */
  setBlockingLogThreshold(seconds: number | null): void {
    this.checkOpen();
    setBlockingThreshold(this.engine, seconds);
  }

  /**
   * Counters and health of this loop: iterations, callbacks, timers and events so
   * far, what is pending, idle time and timer lag. Cheap: two small objects. Loop's
   * thread only.
   * @throws Error on a closed loop.
   */
  stats(): LoopStats {
    this.checkOpen();
    const engine = this.engine;
    const core = engine.core;
    return {
      iterations: core.stat_iterations(),
      callbacks: engine.callbacksRun,
      timers: core.stat_timers_fired(),
      events: core.stat_events(),
      pendingCallbacks: engine.callbacks.length,
      pendingTimers: core.timer_count(),
      handlers: core.handler_count(),
      idleTime: engine.idleTime(),
      lag: engine.lag.summary(),
    };
  }

  // ---------------------------------------------------------------- helpers

  /** The engine stopped: the loop that was current before is current again. */
  private readonly onStopped = (): void => {
    if (currentLoopOf() === this) {
      const previous = this.previousCurrent;
      setCurrentLoop(previous !== null && engineOf(previous).state !== State.Closed ? previous : null);
    }
    this.previousCurrent = null;
  };

  private schedule(when: number, fn: AnyFunction, arg: unknown): Timeout {
    const engine = this.engine;
    const handle = engine.core.timer_start(when);
    if (handle < 0) {
      throw new RangeError(
        `too many pending timers: ${engine.core.timer_count()} are pending, and the core has no room for another ` +
          `(at most ${engine.timerSlots}, fewer when its WebAssembly memory is full)`,
      );
    }
    this.keepTimer(handle, fn, arg);
    engine.timerAdded(when);
    return handle;
  }

  /**
   * `schedule(now + delay)`, except that inside this loop's runDue a relative timer
   * after the first of its callback leaves its clock read to the callback's return
   * (src/shared-clock.ts). Such a timer needs no timerAdded: runDue runs in a turn,
   * whose end arms the driver.
   */
  private scheduleAfter(delay: number, fn: AnyFunction, arg: unknown): Timeout {
    const engine = this.engine;
    const share = clockShare;
    // The shared read is off: a callback's first relative timer read the clock at
    // its call and the later ones at the callback's return, so a shorter delay
    // started later could fire after a longer one started first (seen under Bun's
    // node:wasi, whose clock reads are slow). Every timer reads a fresh clock, as
    // Tornado's do, until all of a callback's timers share one read.
    if (SHARED_CLOCK_READ && share.owner === engine) {
      if (share.mark !== 0) {
        const handle = (engine.core as unknown as RelativeTimerExports).timer_start_after(delay);
        if (handle > 0) {
          share.mark++;
          this.keepTimer(handle, fn, arg);
          return handle;
        }
        // No room: schedule() reports it.
      } else {
        share.mark = 1;
      }
    }
    return this.schedule(engine.now() + delay, fn, arg);
  }

  /** Keeps a started timer's function and packed arguments by its slot. */
  private keepTimer(handle: number, fn: AnyFunction, arg: unknown): void {
    const engine = this.engine;
    // The slot, as in removeTimeout.
    const slot = handle & (engine.timerSlots - 1);
    if (slot >= engine.timerFns.length) {
      growDense(engine.timerFns, slot, undefined);
      growDense(engine.timerArg, slot, undefined);
    }
    engine.timerFns[slot] = fn;
    engine.timerArg[slot] = arg;
  }

  private closeAllFds(): void {
    const engine = this.engine;
    for (let slot = 0; slot < engine.handlerObjs.length; slot++) {
      const fd = engine.handlerObjs[slot];
      if (fd === undefined) continue;
      try {
        engine.core.handler_remove(filenoOf(fd));
        if (typeof fd === 'number') this.sys.close(fd);
        else (fd as { close?: () => unknown }).close?.();
      } catch (e) {
        // Tornado's close_fd: an fd that is already gone is not an error here.
        this.logger.warn('Error closing fd on IOLoop.close({ allFds: true }):', e);
      }
    }
  }

  private checkOpen(): void {
    if (this.engine.state === State.Closed) throw new Error(CLOSED_MESSAGE);
  }
}

function hostSummaryLine(): string {
  const info = hostInfo();
  return `backends that watch fds here: ${info.backends.filter((b) => b !== 'fake' || info.native === true).join(', ') || 'none'}${info.native === true ? '' : ` (native shim not used: ${info.native})`}`;
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
