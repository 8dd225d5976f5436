import { IOLoop, loggerOf, type Timeout } from './ioloop';
import { checkFunction, describe } from './validate';

/**
 * Calls `cb` every `callbackTimeMs` milliseconds on a loop, as Tornado 6's
 * `PeriodicCallback` does:
 * - calls stay on the grid `start + k·period`; a call that overruns skips whole
 *   periods rather than bunching up;
 * - a clock that goes backwards never repeats a call;
 * - an async callback (one that returns a promise) is awaited before the next call
 *   is scheduled;
 * - errors, thrown or rejected, are logged through the loop's logger;
 * - `jitter` (0–1) moves each call by up to ±jitter/2 of the period, to spread
 *   callbacks that would otherwise fire together.
 *
 * Thread-safety: use it from its loop's thread only.
 */
export class PeriodicCallback {
  private readonly cb: () => unknown;
  private readonly periodMs: number;
  private readonly jitter: number;
  private readonly explicitLoop: IOLoop | undefined;
  private loop: IOLoop | undefined;
  private running = false;
  private nextTimeout = 0;
  private timeout: Timeout = undefined;

  /**
   * @param cb the function to call.
   * @param callbackTimeMs the period, in milliseconds (a positive number).
   * @param jitter 0 (default) to 1.
   * @param loop the loop to run on; default: the current loop when {@link start} is called.
   * @throws TypeError if `cb` is not a function or `loop` not an IOLoop; RangeError for a
   *   period that is not a positive finite number or a jitter outside 0–1.
   */
  constructor(cb: () => unknown, callbackTimeMs: number, jitter = 0, loop?: IOLoop) {
    checkFunction(cb, 'cb');
    if (typeof callbackTimeMs !== 'number' || !(callbackTimeMs > 0) || !Number.isFinite(callbackTimeMs)) {
      throw new RangeError(`callbackTimeMs must be a positive number of milliseconds, got ${describe(callbackTimeMs)}`);
    }
    if (typeof jitter !== 'number' || !(jitter >= 0 && jitter <= 1)) {
      throw new RangeError(`jitter must be a number from 0 to 1, got ${describe(jitter)}`);
    }
    if (loop !== undefined && !(loop instanceof IOLoop)) throw new TypeError(`loop must be an IOLoop, got ${describe(loop)}`);
    this.cb = cb;
    this.periodMs = callbackTimeMs;
    this.jitter = jitter;
    this.explicitLoop = loop;
  }

  /** Starts calling; the first call is one period from now. Does nothing if running. */
  start(): void {
    if (this.running) return;
    this.loop = this.explicitLoop ?? IOLoop.current();
    this.running = true;
    this.nextTimeout = this.loop.time();
    this.scheduleNext();
  }

  /** Stops calling; a call in progress finishes. Does nothing if stopped. */
  stop(): void {
    this.running = false;
    if (this.timeout !== undefined) {
      this.loop?.removeTimeout(this.timeout);
      this.timeout = undefined;
    }
  }

  /** Whether it has been started and not stopped. */
  isRunning(): boolean {
    return this.running;
  }

  private readonly run = (): unknown => {
    // `timeout` keeps naming the timer that fired until the next one is scheduled,
    // as Tornado's `_timeout` does: a stop() and start() while an async call is in
    // flight then leaves one chain, not two.
    if (!this.running) return undefined;
    let result: unknown;
    try {
      result = this.cb();
    } catch (e) {
      this.logError(e);
    }
    // As Tornado: only an awaitable is awaited. Anything else schedules the next
    // call in this same iteration, so a synchronous callback stays on its grid.
    if (result == null || typeof (result as PromiseLike<unknown>).then !== 'function') {
      this.scheduleNext();
      return undefined;
    }
    return Promise.resolve(result).then(
      () => this.scheduleNext(),
      (e: unknown) => {
        this.logError(e);
        this.scheduleNext();
      },
    );
  };

  private logError(e: unknown): void {
    loggerOf(this.loop!).error('Exception in PeriodicCallback:', e);
  }

  private scheduleNext(): void {
    if (!this.running || this.loop === undefined) return;
    this.updateNext(this.loop.time());
    this.timeout = this.loop.callAt(this.nextTimeout, this.run);
  }

  private updateNext(now: number): void {
    let period = this.periodMs / 1000;
    if (this.jitter) period *= 1 + this.jitter * (Math.random() - 0.5);
    if (this.nextTimeout <= now) {
      // Measured from the start of one call to the start of the next: after an
      // overrun, skip whole periods to get back onto the original grid.
      this.nextTimeout += (Math.floor((now - this.nextTimeout) / period) + 1) * period;
    } else {
      // The clock went backwards: move on by one period rather than computing the
      // same deadline again and repeating a call.
      this.nextTimeout += period;
    }
  }
}
