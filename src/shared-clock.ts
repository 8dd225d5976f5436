// One clock read for the relative timers of one callback.
//
// `callLater(delay)` is `time() + delay`, and reading the clock costs about 60 ns
// in Node 20 (`performance.now()`, 30 ns of it clock_gettime on this project's VM):
// a third of W2's schedule + cancel pair, a tenth of W1's timer. Inside a callback
// or timer that the engine runs (runDue), the first relative timer still reads the
// clock; the later ones are started in the core without a deadline
// (`timer_start_after`), and when that callback returns one read gives them all
// now + delay (`timers_commit`). That read follows every call it serves, so a timer
// never fires before its delay has passed; it can fire later by the time the
// callback ran after starting it, as if it had been started then. A `loop.time()`
// inside the callback commits with the value it returns, so every deadline agrees
// with every reading of the loop's clock: a timer started before a reading t counts
// from t at the latest, one started after it from t at the earliest.
//
// Only inside runDue, whose turn commits before anything else asks the core for a
// deadline: the engine commits after each callback (CallbackQueue.drain), after each
// timer (runTimers) and when runDue ends. A relative timer started anywhere else (a
// handler, a promise continuation, another loop) reads the clock as before.

import type { CoreExports } from './core';

/** The core's exports for relative timers (assembly/timers.ts). */
export interface RelativeTimerExports {
  /** Starts a timer due `delay` after the next commit's `now`; a handle as timer_start's, or -1. */
  timer_start_after(delay: number): number;
  /** Gives the timers started with timer_start_after their deadlines, now + delay; returns how many. */
  timers_commit(now: number): number;
}

/** What a share needs of its loop. */
export interface ShareOwner {
  readonly core: CoreExports;
  now(): number;
}

/**
 * The share in progress (one per thread: the loop whose runDue is running). `mark`
 * is 0 until the running callback starts a relative timer, 1 once it has read the
 * clock for one, and 1 + the number started without a deadline since the last
 * commit after that: one field, so that a callback that starts none costs
 * endCallback one load and compare.
 */
export const clockShare = {
  /** The loop whose callbacks or timers are running, or null. */
  owner: null as ShareOwner | null,
  mark: 0,
};

/** Commits the owner's pending relative timers at `now`, a clock read taken after
 * each was started; the callback has read the clock (mark 1). */
export function commitShareAt(now: number): void {
  clockShare.mark = 1;
  (clockShare.owner!.core as unknown as RelativeTimerExports).timers_commit(now);
}

/** A callback or timer returned: its relative timers get their deadlines. */
// Small, so that V8 inlines the test into the loops that run user functions.
export function endCallback(): void {
  if (clockShare.mark !== 0) endMarked();
}

function endMarked(): void {
  if (clockShare.mark > 1) commitShareAt(clockShare.owner!.now());
  clockShare.mark = 0;
}

/**
 * Makes `owner` the share's loop for the duration of its runDue; returns the loop
 * it replaces, for {@link endShare}. A share left open by another loop (runDue of
 * one loop inside a callback of another) is committed first.
 */
export function beginShare(owner: ShareOwner): ShareOwner | null {
  if (clockShare.mark > 1) commitShareAt(clockShare.owner!.now());
  const outer = clockShare.owner;
  clockShare.owner = owner;
  clockShare.mark = 0;
  return outer;
}

/** Ends runDue's share: commits what is pending and gives the share back to `outer`. */
export function endShare(outer: ShareOwner | null): void {
  if (clockShare.mark > 1) commitShareAt(clockShare.owner!.now());
  clockShare.owner = outer;
  clockShare.mark = 0;
}
