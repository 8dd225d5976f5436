// The turn engine: one iteration of the loop, and the turns that run iterations.
// This header is the one full description of the iteration; README.md ("One
// iteration") says the same in brief and points here.
//
// Words
// - An *iteration* is one pass of Tornado's PollIOLoop.start loop, steps 1–7 below.
// - A *turn* is what a driver asks for when there may be work: the host's loop (or
//   the shim's watcher thread) calls `turn(reason)`, and the engine runs one or more
//   iterations before it hands the thread back. The blocking driver has no turns of
//   the host: it runs iterations back to back on the loop's thread (see drivers.ts).
//
// One iteration, in order:
//   1. Collect the timers due at the iteration's start (`iteration_begin(now)`): the
//      core moves all of them out of the heap before any runs, so a timer added now,
//      even with a past deadline, waits for a later iteration.
//   2. Run the callbacks queued before the iteration started, in the order added
//      (the queue is swapped out first, as Tornado swaps `_callbacks`).
//   3. Run the collected timers in (deadline, insertion) order, skipping any that an
//      earlier one removed.
//   4. If stop() was called, stop here.
//   5. Poll, once: the core asks the backend for ready fds (the waker's eventfd
//      among them). The timeout is the driver's: 0 when the host already waited
//      (guest, watcher, portable); for the blocking driver the core's poll_timeout
//      (0 while callbacks are pending, else until the earliest deadline, at most
//      MAX_POLL_TIMEOUT = 3600 s), after the promise continuations of steps 2–3 ran.
//   6. Run each ready fd's handler with the events it asked for plus the ERROR bits;
//      the core drops events of fds removed meanwhile. A waker record is consumed
//      (its eventfd read) and its owner told.
// Callbacks and timers added during an iteration run in a later one.
//
// Turns
// - With a real clock a turn runs up to TURN_ITERATIONS iterations back to back
//   while there is work (callbacks pending, or the last poll found fds ready) and no
//   callback or handler returned a promise. The host's own turn (its poll and its
//   microtask checkpoint) is then paid once per batch rather than once per
//   iteration; promise continuations run after the batch.
// - Then the engine arms the driver for the next turn: as soon as the host comes
//   round while callbacks are pending; else at the earliest deadline; else only on
//   I/O. A callback or timer added from outside a turn (a promise continuation, a
//   host callback) moves that wake-up.
//
// The fake clock (a virtual clock, clock.ts)
// - A turn on a virtual clock runs exactly one iteration, so promise continuations
//   run between every two iterations, as under the blocking driver.
// - The clock moves only at the start of a turn, that is after the host's
//   microtask checkpoint: when no callback is queued, no timer is due, and a poll
//   finds no fd ready, it jumps to the earliest deadline (at most MAX_POLL_TIMEOUT
//   ahead, as a real poll would wait). A continuation that awaits any number of
//   times and then schedules a timer has therefore run before the clock can move
//   past that timer.
//
// The engine never calls user code from inside the core: each step crosses the
// WebAssembly boundary one way, and user functions run here with their errors
// caught and logged.

import { NO_ARG as NO_ARG_EXPORT, callPacked as callPackedExport } from './args';
import type { Backend } from './backends';
import { CallbackQueue, type ChunkPool } from './callbacks';
import type { Clock } from './clock';
import { coreLayout, type CoreExports } from './core';
import { TURN_TIMER, type Driver } from './drivers';
import { Errno, SysError } from './errors';
import { beginShare as beginShareExport, endCallback as endCallbackExport, endShare as endShareExport } from './shared-clock';
import { DurationHistogram } from './histogram';
import type { Watch } from './watchdog';

// Read through module-local copies: run from source by tsx (as `npm run bench` and
// the tests do), every read of another module's export is a getter whose keyed load
// is megamorphic, about 10 ns; three of them per callback were a third of W3
// batch's CPU (185 ns against 129 ns with copies, 9 alternated runs each).
const NO_ARG = NO_ARG_EXPORT;
const callPacked = callPackedExport;
const beginShare = beginShareExport;
const endCallback = endCallbackExport;
const endShare = endShareExport;

type AnyFunction = (...args: any[]) => unknown;
/** Called with what was registered (the object, if one was given) and the ready events. */
export type Handler = (fd: any, events: number) => unknown;

/** Where the loop reports errors from user code. */
export interface Logger {
  error(...a: unknown[]): void;
  warn(...a: unknown[]): void;
  debug?(...a: unknown[]): void;
}

/** The engine's lifecycle. */
export const enum State {
  Idle,
  Running,
  Closed,
}

/**
 * Iterations one turn may run while work keeps coming, with a real clock. A chain
 * of callbacks then costs one host turn per TURN_ITERATIONS links instead of one
 * per link, and a ping-pong over a socketpair one per TURN_ITERATIONS messages;
 * promise continuations and the host's own callbacks wait at most that many
 * iterations. Measured here with the guest driver, CPU per operation, medians of
 * 3 runs of `bench/scenarios/wasm-ioloop/w3-callbacks.ts chain 1000000` and
 * `w4-pingpong.ts 1pair 200000` at each value:
 *
 *   TURN_ITERATIONS      1      8     32    128    512
 *   W3 chain, ns       707    199    136    126    128
 *   W4 1 pair, ns    8,180  4,258  3,860  4,076  4,206
 *
 * Past 32 the figures are within this machine's noise; 128 keeps the best W3
 * figure, and a larger batch only lengthens the host's wait.
 */
export const TURN_ITERATIONS = 128;

/** Yields per phase where promise jobs cannot be counted (Bun, Deno). */
const FIXED_YIELDS = 16;
/** A bound on the yields of one phase, for code that keeps queueing jobs forever. */
const MAX_YIELDS = 10_000;

/**
 * The encoding of `event_next`'s result (assembly/layout.ts, the one source; kept
 * here as literals for the dispatch loop, and checked against the core by
 * test/layout.test.ts).
 */
export const EVENT_NONE_LEFT = -1;
export const EVENT_WAKER = -2;
export const EVENT_SLOT_SHIFT = 8;
export const EVENT_BITS_MASK = 0xff;

/**
 * One listener's hold on the loop's waker: an eventfd in the loop's poller that
 * another thread (or a signal handler) may write to. Every listener of a loop
 * shares the one eventfd.
 */
export interface Waker {
  /** The eventfd. Owned by the loop: closed by {@link Engine.close}, never by a listener. */
  readonly fd: number;
  /**
   * Stops calling this listener's `onWake`; the eventfd stays open for the other
   * listeners. Idempotent. Loop's thread only.
   */
  remove(): void;
}

/**
 * The state of one loop and the iterations that run it. Internal to the package:
 * IOLoop is its public face. Not thread-safe: the loop's thread only.
 */
export class Engine {
  state = State.Idle;
  readonly timerSlots: number;
  private readonly maxPollTimeout: number;
  private readonly time: () => number;
  private readonly idleUntil: ((when: number) => void) | null;
  private readonly turnIterations: number;
  private driver!: Driver;

  // Callbacks for the next iteration; an iteration swaps the two queues and drains
  // the one it took (see step 2).
  private readonly chunkPool: ChunkPool = [];
  callbacks = new CallbackQueue(this.chunkPool);
  private runningCallbacks = new CallbackQueue(this.chunkPool);
  callbacksRun = 0;

  // Timers and handlers: dense arrays indexed by the core's slots.
  timerFns: (AnyFunction | undefined)[] = [];
  timerArg: unknown[] = [];
  handlerFns: (Handler | undefined)[] = [];
  handlerObjs: unknown[] = [];

  // Turn state.
  inTurn = false;
  private stopping = false;
  private lastPollCount = 0;
  private sawPromise = false;
  private armedAt = Infinity; // loop time of the driver's next wake-up
  private armedSoon = false; // the driver will turn as soon as the host comes round
  private settle: { resolve(): void; reject(e: unknown): void } | null = null;
  /** Called when the engine stops (after the driver stopped), before start() settles. */
  onStopped: (() => void) | null = null;

  // Loop health (stats()): idle time in ms of performance.now(), the start of the
  // wait in progress (-1: none), and how late timers fire.
  private idleMs = 0;
  private idleSince = -1;
  readonly lag = new DurationHistogram();

  // The blocking watch (setBlockingLogThreshold), or null when it is off: then
  // each user call pays one null check before and one after.
  watch: Watch | null = null;

  // The waker, once opened, and its listeners. The array is replaced, never
  // changed in place, so a listener added or removed during a wake-up does not
  // disturb the iteration over the others.
  private wakerFd = -1;
  private wakeListeners: readonly { readonly onWake: () => void }[] = [];

  constructor(
    readonly core: CoreExports,
    readonly backend: Backend,
    clock: Clock,
    readonly logger: Logger,
  ) {
    const layout = coreLayout(core);
    this.timerSlots = layout.TIMER_SLOTS;
    this.maxPollTimeout = layout.MAX_POLL_TIMEOUT;
    this.time = clock.time;
    this.idleUntil = clock.idleUntil;
    this.turnIterations = clock.idleUntil === null ? TURN_ITERATIONS : 1;
  }

  /** Attaches the driver (made after the engine, since it calls back into it). */
  attach(driver: Driver): void {
    this.driver = driver;
  }

  /** Whether a write to the waker makes this loop turn (its driver watches the poller). */
  wakerWatched(): boolean {
    return this.driver.watchesWaker;
  }

  /** The loop's clock, in seconds. */
  now(): number {
    return this.time();
  }

  // ---------------------------------------------------------------- running

  /** Starts the driver; `settle` is told when the engine stops. */
  start(settle: { resolve(): void; reject(e: unknown): void }): void {
    this.state = State.Running;
    this.settle = settle;
    this.driver.start();
    this.armSoon();
  }

  /** Stops after the current iteration, or at once between turns. */
  stop(): void {
    if (this.inTurn) this.stopping = true;
    else this.finishStop(false, undefined);
  }

  /** Stops now, even inside a turn (for close()): start() resolves. */
  halt(): void {
    this.finishStop(false, undefined);
  }

  /** True between stop() inside a turn and the end of that turn. */
  get stopRequested(): boolean {
    return this.stopping;
  }

  /** Releases the driver, the waker and the poller. The loop must be stopped. */
  close(): void {
    this.state = State.Closed;
    this.driver.close();
    if (this.wakerFd >= 0) {
      this.backend.native?.close(this.wakerFd);
      this.wakerFd = -1;
      this.wakeListeners = [];
    }
    this.core.loop_close();
    this.callbacks = new CallbackQueue([]);
    this.runningCallbacks = new CallbackQueue([]);
    this.timerFns = [];
    this.timerArg = [];
    this.handlerFns = [];
    this.handlerObjs = [];
  }

  // ---------------------------------------------------------------- the turn

  /** One turn, called by the driver (reason: TURN_IO, TURN_TIMER, or -errno). */
  readonly turn = (reason: number): void => {
    if (reason === TURN_TIMER) this.armedAt = Infinity;
    if (this.state !== State.Running) return;
    if (reason < 0) {
      // The driver's wait failed (libuv stopped its poll, or the watcher's poll(2)
      // failed): nothing watches our fds any more, so the loop stops and says why.
      this.finishStop(true, new SysError(-reason, this.driver.waitCall, 'waiting for the poller failed; the loop stopped'));
      return;
    }
    this.armedSoon = false;
    this.inTurn = true;
    this.endIdle();
    let failure: { error: unknown } | null = null;
    try {
      if (this.idleUntil !== null) this.maybeAdvance();
      let budget = this.turnIterations;
      this.sawPromise = false;
      do this.iterate(0);
      while (
        --budget > 0 &&
        (this.callbacks.length > 0 || this.lastPollCount > 0) &&
        !this.sawPromise &&
        !this.stopping &&
        this.state === State.Running
      );
    } catch (error) {
      failure = { error };
    } finally {
      this.inTurn = false;
    }
    if (this.state !== State.Running) return; // closed by a callback
    if (failure !== null || this.stopping) this.finishStop(failure !== null, failure?.error);
    else {
      this.armNext(true);
      // The host's loop waits for our next turn from here (guest, watcher, portable).
      this.idleSince = performance.now();
    }
  };

  /** Ends an idle span that began between turns, if one is open. */
  private endIdle(): void {
    if (this.idleSince >= 0) {
      this.idleMs += performance.now() - this.idleSince;
      this.idleSince = -1;
    }
  }

  /** Seconds the loop has spent waiting for work; a wait in progress counts. */
  idleTime(): number {
    return (this.idleMs + (this.idleSince >= 0 ? performance.now() - this.idleSince : 0)) / 1000;
  }

  /**
   * The blocking driver's run: iterations back to back on this thread until the
   * loop stops or `current()` turns false. Each iteration lets the promise
   * continuations of its callbacks and timers run before its one poll waits with
   * the real timeout, and those of its handlers before the next iteration starts
   * (a phase that ran no user function skips that). Starts at the end of the
   * caller's synchronous job.
   *
   * Letting continuations run: one `await` runs the jobs queued before it, and a
   * job may queue more. With a count of promise jobs (`jobsRun`, from promise
   * hooks) it yields again while any job other than its own resumption ran; without
   * one it yields FIXED_YIELDS times, and a deeper chain finishes an iteration later.
   * The yields are inline: an `await` of a helper async function costs three jobs.
   */
  async runBlocking(jobsRun: (() => number) | null, current: () => boolean): Promise<void> {
    await null;
    while (this.state === State.Running && current()) {
      let failure: { error: unknown } | null = null;
      let ran = 0;
      this.inTurn = true;
      try {
        if (this.idleUntil !== null) this.maybeAdvance();
        if (this.runDue() > 0 && !this.stopping && this.state === State.Running) {
          this.inTurn = false;
          for (let round = 0; round < MAX_YIELDS; round++) {
            const before = jobsRun === null ? 0 : jobsRun();
            await null;
            if (jobsRun === null ? round + 1 >= FIXED_YIELDS : jobsRun() - before <= 1) break;
          }
          if (this.state !== State.Running || !current()) return;
          this.inTurn = true;
        }
        if (!this.stopping && this.state === State.Running) {
          this.pollAndDispatch(this.pollTimeoutMs());
          ran = this.lastPollCount;
        }
      } catch (error) {
        failure = { error };
      } finally {
        this.inTurn = false;
      }
      if (this.state !== State.Running || !current()) return;
      if (failure !== null || this.stopping) {
        this.finishStop(failure !== null, failure?.error);
        return;
      }
      if (ran === 0) continue;
      for (let round = 0; round < MAX_YIELDS; round++) {
        const before = jobsRun === null ? 0 : jobsRun();
        await null;
        if (jobsRun === null ? round + 1 >= FIXED_YIELDS : jobsRun() - before <= 1) break;
      }
    }
  }

  /**
   * One iteration (steps 1–6 of the header), polling with `timeoutMs` (0: do not
   * wait). Throws a SysError if the poll fails.
   */
  iterate(timeoutMs: number): void {
    this.runDue();
    if (this.stopping || this.state !== State.Running) return;
    this.pollAndDispatch(timeoutMs);
  }

  /**
   * Steps 1–3: collects the due timers, runs the callbacks, then the timers. Returns
   * how many user functions ran. Relative timers they start share clock reads
   * (shared-clock.ts): each callback's and timer's are committed when it returns,
   * and any left when this returns or throws.
   */
  runDue(): number {
    const core = this.core;
    // With no timer pending nothing can be due, and the clock is not read.
    const earliest = core.timer_next_deadline();
    const now = earliest === Infinity ? -Infinity : this.time();
    const ndue = core.iteration_begin(now);
    // Loop health: how late the earliest timer of this iteration fires. It costs a
    // subtraction on iterations that fire timers, and no wake-up of its own.
    if (ndue > 0) this.lag.record(now - earliest);
    const ncallbacks = this.callbacks.length;
    const outer = beginShare(this);
    try {
      if (ncallbacks > 0) this.runCallbacks();
      if (ndue > 0 && this.state === State.Running) this.runTimers();
    } finally {
      endShare(outer);
    }
    return ncallbacks + ndue;
  }

  /** Steps 5–6: the iteration's one poll, then the handlers. */
  pollAndDispatch(timeoutMs: number): void {
    const core = this.core;
    if (core.handler_count() === 0 && this.wakerFd < 0 && timeoutMs === 0) {
      this.lastPollCount = 0; // nothing registered: nothing a poll could report
      return;
    }
    let n: number;
    if (timeoutMs === 0) n = core.poll(0);
    else {
      // A poll that may wait is idle time from before the call (as libuv's
      // uv_metrics_idle_time takes it), so a wait in progress already counts.
      this.idleSince = performance.now();
      n = core.poll(timeoutMs);
      this.idleMs += performance.now() - this.idleSince;
      this.idleSince = -1;
    }
    if (n < 0) {
      this.lastPollCount = 0;
      if (n === -Errno.EINTR) return;
      throw new SysError(-n, this.backend.calls.wait);
    }
    this.lastPollCount = n;
    if (n > 0) this.dispatchEvents();
  }

  /**
   * The blocking driver's poll timeout, in ms: the core's poll_timeout rounded up
   * (a wake-up before the deadline would only find nothing due and wait again);
   * 0 on a virtual clock, which the engine moves instead of waiting for it, unless
   * nothing at all is scheduled.
   */
  pollTimeoutMs(): number {
    const core = this.core;
    if (this.idleUntil !== null) {
      return this.callbacks.length === 0 && core.timer_next_deadline() === Infinity ? this.maxPollTimeout * 1000 : 0;
    }
    const now = core.timer_next_deadline() === Infinity ? 0 : this.time();
    return Math.ceil(core.poll_timeout(now, this.callbacks.length) * 1000);
  }

  /**
   * Virtual clock: at the start of a turn, after the host's microtask checkpoint,
   * jumps to the earliest deadline if the loop is idle. Idle means no callback is
   * queued, no collected timer waits, and a poll (made only when fds or the waker
   * are registered) finds nothing ready; a poll that finds something dispatches
   * it as this iteration's step 5–6 instead.
   */
  maybeAdvance(): void {
    const core = this.core;
    if (this.callbacks.length > 0) return;
    const now = this.time();
    const next = core.timer_next_deadline();
    if (next === Infinity || next <= now) return;
    if (core.handler_count() > 0 || this.wakerFd >= 0) {
      this.pollAndDispatch(0);
      if (this.lastPollCount > 0 || this.callbacks.length > 0) return;
    }
    // As a real poll would wait: to the deadline, at most MAX_POLL_TIMEOUT at a time.
    this.idleUntil!(now + core.poll_timeout(now, 0));
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
      endCallback();
      if (this.state !== State.Running) return;
    }
  }

  private dispatchEvents(): void {
    const core = this.core;
    let packed: number;
    while ((packed = core.event_next()) !== EVENT_NONE_LEFT) {
      if (packed === EVENT_WAKER) {
        this.consumeWake();
        continue;
      }
      const slot = packed >>> EVENT_SLOT_SHIFT;
      const fn = this.handlerFns[slot]!;
      const watch = this.watch;
      if (watch !== null) watch.enter(fn, 'handler');
      try {
        const r = fn(this.handlerObjs[slot], packed & EVENT_BITS_MASK);
        if (r != null && typeof (r as PromiseLike<unknown>).then === 'function') {
          this.sawPromise = true;
          (r as PromiseLike<unknown>).then(undefined, this.onHandlerRejection);
        }
      } catch (e) {
        this.onHandlerError(e);
      }
      if (watch !== null) watch.exit();
      if (this.state !== State.Running) return;
    }
  }

  /** Runs a user function with its packed arguments; logs what it throws or rejects with. */
  private invoke(fn: AnyFunction, arg: unknown, what: string): void {
    const watch = this.watch;
    if (watch !== null) watch.enter(fn, what);
    try {
      const r = arg === NO_ARG ? fn() : callPacked(fn, arg);
      if (r != null && typeof (r as PromiseLike<unknown>).then === 'function') {
        this.sawPromise = true;
        (r as PromiseLike<unknown>).then(undefined, this.onCallbackRejection);
      }
    } catch (e) {
      this.logger.error(`Exception in ${what} ${fn.name || '(anonymous)'}:`, e);
    }
    if (watch !== null) watch.exit();
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

  // ---------------------------------------------------------------- the waker

  /**
   * Adds a listener to the loop's waker, opening the waker (an eventfd in the
   * loop's poller) on first use. A write to the eventfd (the shim's `wake`, from
   * any thread, or a signal handler) makes the loop turn; each wake-up reads the
   * eventfd once and then calls every listener's `onWake` on the loop's thread, in
   * the order they were added. Writes that arrive before the loop reads coalesce
   * into one wake-up, so a listener learns what happened from its own state, not
   * from the count of calls. Each call adds a listener (the same function twice is
   * called twice); {@link Waker.remove} takes it away. Loop's thread only.
   * @throws SysError if the eventfd cannot be made or registered; Error without
   *   the native shim.
   */
  openWaker(onWake: () => void): Waker {
    if (this.wakerFd < 0) this.wakerFd = this.createWaker();
    const entry = { onWake };
    this.wakeListeners = [...this.wakeListeners, entry];
    return {
      fd: this.wakerFd,
      remove: () => {
        if (this.wakeListeners.includes(entry)) this.wakeListeners = this.wakeListeners.filter((e) => e !== entry);
      },
    };
  }

  /** Makes the eventfd and registers it with the core: the fd. @throws as openWaker. */
  private createWaker(): number {
    const native = this.backend.native;
    if (native === null) throw new Error(`the waker needs the native shim; backend '${this.backend.name}' has none`);
    const fd = native.eventfdOpen();
    if (fd < 0) throw new SysError(-fd, 'eventfd');
    let rc: number;
    try {
      rc = this.core.waker_add(fd);
    } catch (e) {
      native.close(fd);
      throw e;
    }
    if (rc < 0) {
      native.close(fd);
      throw new SysError(-rc, this.backend.calls.ctl);
    }
    return fd;
  }

  private consumeWake(): void {
    // Reading the eventfd resets it: under level-triggered readiness an unread
    // waker would be reported by every poll and the loop would spin.
    this.backend.native!.consume(this.wakerFd);
    for (const { onWake } of this.wakeListeners) {
      try {
        onWake();
      } catch (e) {
        this.logger.error('Exception in waker callback:', e);
      }
      if (this.state === State.Closed) return;
    }
  }

  // ---------------------------------------------------------------- arming

  /** Called when a callback is queued: a running loop between turns turns soon. */
  callbackAdded(): void {
    if (!this.armedSoon && !this.inTurn && this.state === State.Running) this.armSoon();
  }

  /** Called when a timer is scheduled: one added between turns may be earlier than the driver's wake-up. */
  timerAdded(when: number): void {
    if (when < this.armedAt && !this.inTurn && this.state === State.Running) this.armNext(false);
  }

  /**
   * Arranges the next turn: as soon as the host comes round if callbacks are
   * pending, else at the next deadline (at most MAX_POLL_TIMEOUT away), else only
   * on I/O. Skips the driver when it is already armed that way. A driver that
   * waits in the poll needs no arming. `fromTurn` is true at the end of a turn,
   * which the watcher driver needs to hear even when nothing changed.
   */
  private armNext(fromTurn: boolean): void {
    if (this.driver.waitsInPoll) return;
    const core = this.core;
    if (this.callbacks.length > 0) {
      if (!this.armedSoon) this.armSoon();
      return;
    }
    const next = core.timer_next_deadline();
    if (next === Infinity) {
      if (this.armedAt !== Infinity || (fromTurn && this.driver.rearmAfterTurn)) {
        this.armedAt = Infinity;
        this.driver.arm(-1);
      }
      return;
    }
    if (next === this.armedAt && !(fromTurn && this.driver.rearmAfterTurn)) return;
    if (this.idleUntil !== null) {
      // The next turn moves the clock, once the host's microtasks have run.
      if (!this.armedSoon) this.armSoon();
      return;
    }
    const now = this.time();
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
    if (this.driver.waitsInPoll) return;
    this.armedSoon = true;
    this.armedAt = -Infinity;
    this.driver.arm(0);
  }

  private finishStop(failed: boolean, failure: unknown): void {
    this.endIdle();
    this.state = State.Idle;
    this.stopping = false;
    this.armedSoon = false;
    this.armedAt = Infinity;
    this.driver.stop();
    this.onStopped?.();
    const settle = this.settle;
    this.settle = null;
    if (failed) settle?.reject(failure);
    else settle?.resolve();
  }
}
