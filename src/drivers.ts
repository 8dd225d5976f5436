// Drivers decide who waits between turns (see engine.ts for the turn itself).
//
//   guest     the host's loop waits. In Node, libuv watches the poller's fd with one
//             uv_poll and one uv_timer armed for the earliest deadline (guestDriver).
//             In hosts without libuv (Bun, Deno), and for a poller with no pollable
//             fd (poll(2)) in every host, a watcher thread of the shim waits on the
//             poller and wakes the host through a thread-safe function
//             (watcherDriver). Either way promises, host timers and host I/O keep
//             running beside the loop.
//   blocking  the loop owns its thread from the end of the current synchronous job
//             until stop(): each iteration's one poll waits with the real timeout,
//             and promise continuations run between iterations (BlockingDriver).
//   portable  no native shim: the next turn is a host timer (PortableDriver), or
//             a WASI host's word that an fd became ready (the package's provider).
//
// The contract every driver keeps: `start` makes it keep the host alive (a running
// loop does, like a listening server); `stop` and `close` make it keep nothing
// alive; `arm(ms)` asks for a turn in `ms` ms (0: as soon as the host comes round,
// -1: only on I/O); a turn's reason is TURN_IO, TURN_TIMER or -errno when the wait
// itself failed.

import type { Engine } from './engine';
import type { NativeShim, WatcherKind } from './native';

/** The drivers the API names. */
export type DriverName = 'guest' | 'blocking' | 'portable';

/** All driver names, for validation and messages. */
export const DRIVER_NAMES: readonly DriverName[] = ['guest', 'blocking', 'portable'];

/** Turn reasons, as the native shim reports them (assembly/layout.ts is the one source; test/layout.test.ts checks these). */
export const TURN_IO = 1;
export const TURN_TIMER = 2;

/** What the engine needs from a driver. Not thread-safe: the loop's thread only. */
export interface Driver {
  /** The driver gives the loop its thread: the iteration's poll waits, and `arm` is not used. */
  readonly waitsInPoll: boolean;
  /** The driver waits again only when armed after each turn (the watcher thread). */
  readonly rearmAfterTurn: boolean;
  /** A write to the loop's waker makes the driver turn (false for host timers only). */
  readonly watchesWaker: boolean;
  /** The wait a failed turn reports, for its SysError's `syscall`. */
  readonly waitCall: string;
  /** Starts waiting on the loop's behalf; a started driver keeps the host alive. */
  start(): void;
  /** Asks for the next turn in `ms` milliseconds: 0 as soon as the host comes round, -1 only on I/O. */
  arm(ms: number): void;
  /** Stops waiting; a stopped driver keeps nothing alive. */
  stop(): void;
  /** Releases everything; idempotent. */
  close(): void;
}

/** One kind of native wait of the shim: its start, arm, stop and close functions. */
interface NativeWait {
  start(handle: object): void;
  arm(handle: object, ms: number): void;
  stop(handle: object): void;
  close(handle: object): void;
}

/**
 * The guest driver: a native wait of the shim on the poller, either libuv's
 * (`guestDriver`) or the shim's watcher thread (`watcherDriver`).
 */
class NativeGuestDriver implements Driver {
  readonly waitsInPoll = false;
  readonly watchesWaker = true;
  private closed = false;

  constructor(
    private readonly wait: NativeWait,
    private readonly handle: object,
    readonly waitCall: string,
    readonly rearmAfterTurn: boolean,
  ) {}

  start(): void {
    this.wait.start(this.handle);
  }

  arm(ms: number): void {
    this.wait.arm(this.handle, ms);
  }

  stop(): void {
    if (!this.closed) this.wait.stop(this.handle);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.wait.close(this.handle);
  }
}

/** The guest driver in Node: the poller's fd nested in Node's libuv loop (one uv_poll, one uv_timer). */
export function guestDriver(native: NativeShim, pollerFd: number, turn: (reason: number) => void): Driver {
  const wait = { start: native.guestStart, arm: native.guestArm, stop: native.guestStop, close: native.guestClose };
  return new NativeGuestDriver(wait, native.guestOpen(pollerFd, turn), 'uv_poll', false);
}

/**
 * The guest driver without libuv: the shim's watcher thread waits on the poller
 * (poll(2) on an epoll fd, or on a poll set's descriptors) and calls the turn
 * through a thread-safe function, once per arming, so a level-triggered fd that
 * stays ready costs one wake per turn, never a spin; the engine arms it after
 * every turn.
 */
export function watcherDriver(native: NativeShim, pollerFd: number, kind: WatcherKind, turn: (reason: number) => void): Driver {
  const wait = { start: native.watcherStart, arm: native.watcherArm, stop: native.watcherStop, close: native.watcherClose };
  return new NativeGuestDriver(wait, native.watcherOpen(pollerFd, kind, turn), 'poll', true);
}

/**
 * The portable driver: host timers, and, over a WASI host that tells when an fd may
 * have become ready (`onReady`: the package's provider, which calls it at most once
 * per host turn after its sockets' events), a turn for that, right after the
 * host's callback (a microtask, so that words given together make one turn),
 * apart from the timer armed for the next deadline. Nothing runs while nothing is
 * due and nothing becomes ready.
 */
export class PortableDriver implements Driver {
  readonly waitsInPoll = false;
  readonly watchesWaker = false;
  readonly rearmAfterTurn = false;
  readonly waitCall = 'setTimeout';
  private timer: ReturnType<typeof setTimeout> | undefined;
  private immediate: ReturnType<typeof setImmediate> | undefined;
  private keepAlive: ReturnType<typeof setInterval> | undefined;
  /** A turn for the host's word of readiness is queued. */
  private readyTurn = false;

  constructor(
    private readonly turn: (reason: number) => void,
    onReady: ((cb: () => void) => void) | null = null,
  ) {
    onReady?.(this.ready);
  }

  /** The host's word that an fd may be ready: one turn soon, while the loop runs. */
  private readonly ready = (): void => {
    if (this.keepAlive === undefined || this.readyTurn) return;
    this.readyTurn = true;
    queueMicrotask(this.fireReady);
  };

  private readonly fireReady = (): void => {
    this.readyTurn = false;
    if (this.keepAlive !== undefined) this.turn(TURN_IO);
  };

  private readonly fire = (): void => {
    this.timer = undefined;
    this.immediate = undefined;
    this.turn(TURN_TIMER);
  };

  start(): void {
    // A running loop keeps the host alive even when it has nothing scheduled, as a
    // listening server does; the longest interval a host timer accepts does that.
    this.keepAlive ??= setInterval(() => {}, 0x7fffffff);
  }

  arm(ms: number): void {
    this.disarm();
    if (ms === 0) this.immediate = setImmediate(this.fire);
    else if (ms > 0) this.timer = setTimeout(this.fire, ms);
  }

  stop(): void {
    this.disarm();
    if (this.keepAlive !== undefined) clearInterval(this.keepAlive);
    this.keepAlive = undefined;
  }

  close(): void {
    this.stop();
  }

  private disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
  }
}

/**
 * The blocking driver: the loop runs its iterations back to back on its thread
 * (Engine.runBlocking), waiting in each iteration's one poll. The host's own loop
 * gets the thread back only when the loop stops. Between the phases of an
 * iteration the engine lets the pending promise continuations run; where the
 * host has promise hooks (Node) it counts promise jobs to know when they are done.
 */
export class BlockingDriver implements Driver {
  readonly waitsInPoll = true;
  readonly watchesWaker = true;
  readonly rearmAfterTurn = false;
  readonly waitCall: string;
  private run = 0; // the number of the current run; a stopped run sees a newer one and ends

  constructor(
    private readonly engine: Engine,
    waitCall: string,
  ) {
    this.waitCall = waitCall;
  }

  start(): void {
    const run = ++this.run;
    const release = holdMicrotaskCounter();
    // The loop's promise keeps nothing alive by itself, and needs nothing to: it
    // never lets the host's loop run until it stops.
    void this.engine.runBlocking(promiseHooks === null ? null : countJobs, () => run === this.run).finally(release);
  }

  arm(): void {}

  stop(): void {
    this.run++;
  }

  close(): void {
    this.run++;
  }
}

// ---------------------------------------------------------------- microtasks

type PromiseHooks = { onBefore(hook: () => void): () => void };

/** v8.promiseHooks where the host has them (Node); null elsewhere. */
let promiseHooks: PromiseHooks | null = (() => {
  try {
    const hooks = (require('v8') as { promiseHooks?: PromiseHooks }).promiseHooks;
    return typeof hooks?.onBefore === 'function' ? hooks : null;
  } catch {
    return null;
  }
})();

let jobsRun = 0;
const countJobs = (): number => jobsRun;
let counterHolders = 0;
let stopCounter: (() => void) | null = null;

/**
 * Counts promise jobs while a blocking loop runs (a hook on every job
 * costs about 20 ns here; no hook is installed otherwise). Returns the release.
 */
function holdMicrotaskCounter(): () => void {
  if (promiseHooks !== null && counterHolders++ === 0) {
    try {
      stopCounter = promiseHooks.onBefore(() => {
        jobsRun++;
      });
    } catch {
      // Bun has the function and throws "not yet implemented": count nothing there.
      promiseHooks = null;
      counterHolders = 0;
    }
  }
  let released = false;
  return () => {
    if (released || promiseHooks === null) return;
    released = true;
    if (--counterHolders === 0) {
      stopCounter?.();
      stopCounter = null;
    }
  };
}
