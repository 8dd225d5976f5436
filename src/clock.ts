// The loop's clock policy: where "now" comes from, and whether the loop may move it.
//
// A real clock (monotonic by default, or the user's `options.time`) moves by itself;
// the driver waits for it. A virtual clock (the fake backend, as Tornado keeps its
// fake time in the selector) moves only when the turn engine says the loop is idle:
// no callback queued, no fd ready, and no promise continuation of the loop's own
// work still to run. The engine decides when that is (see engine.ts, "The fake
// clock"); this file only keeps the time.

/** Seconds on `performance.now()`'s monotonic clock. */
export const monotonic = (): number => performance.now() / 1000;

/** The clock a loop runs on. Not thread-safe: the loop's thread only. */
export interface Clock {
  /** The loop time, in seconds. A plain function: it is read on hot paths. */
  readonly time: () => number;
  /**
   * Virtual clocks only: jumps forward to `when` (never backwards). The engine
   * calls it when the loop is idle and `when` is the earliest deadline.
   */
  readonly idleUntil: ((when: number) => void) | null;
}

/** A clock that moves by itself. */
export function realClock(time: () => number = monotonic): Clock {
  return { time, idleUntil: null };
}

/** A clock that starts at 0 and moves only when the engine finds the loop idle. */
export function virtualClock(): Clock {
  let now = 0;
  return {
    time: () => now,
    idleUntil: (when) => {
      if (when > now) now = when;
    },
  };
}
