// One iteration's bookkeeping, the poller's lifecycle, and the loop's counters.
//
// The core's part of one iteration (README.md, "One iteration", describes the
// whole of it):
//   - iteration_begin(now) counts the iteration and collects the timers due at its
//     start into the due list (timers.ts), which the runtime then empties with
//     timer_next_due() as it runs them.
//   - poll_timeout(now, callbacks pending) is how long, in seconds, the
//     iteration's one poll may wait. The runtime passes it (in milliseconds) to
//     poll when its driver waits in the poll, and polls with 0 when the host has
//     already waited. event_next() then hands out the ready slots (ready.ts).
// The core never calls user code; each step crosses the boundary once or in a
// tight loop of i32/f64 calls.

import { MAX_POLL_TIMEOUT } from "./layout";
import { timers_collect, timersDuePending, timersFired, timerMinDeadline } from "./timers";
import { eventsDelivered, readyClear } from "./ready";

let iterations: f64 = 0;

/** Creates the poller (Poller.open: epoll_create in the epoll build). Returns 0 or
 * its -errno. While the poller is open, calling it again does nothing and returns 0. */
export function loop_init(): i32 {
  if (Poller.isOpen()) return 0;
  let result = Poller.open();
  return result < 0 ? result : 0;
}

/** The poller's fd, or -1 (before loop_init, after loop_close, and always in the
 * WASI build, whose poller has no fd). */
export function loop_fd(): i32 {
  return Poller.fd();
}

/** Closes the poller, once: later calls do nothing and return 0. Returns 0 or the
 * -errno of its close; it is forgotten either way, as close(2) releases an fd even
 * when it reports an error. Unread ready records are dropped. */
export function loop_close(): i32 {
  if (!Poller.isOpen()) return 0;
  readyClear();
  let result = Poller.close();
  return result < 0 ? result : 0;
}

/** Starts an iteration: counts it and collects the timers due at `now` (as
 * timers_collect). Returns how many were collected. */
export function iteration_begin(now: f64): i32 {
  iterations += 1;
  return timers_collect(now);
}

/**
 * How long the poller may block, in seconds: 0 if callbacks are pending or
 * collected timers are still waiting to be taken; otherwise the time until the
 * earliest deadline, clamped to [0, MAX_POLL_TIMEOUT]; MAX_POLL_TIMEOUT with no
 * timers. Never negative and never NaN, whatever `now` is.
 */
export function poll_timeout(now: f64, callbacks_pending: i32): f64 {
  if (callbacks_pending != 0 || timersDuePending() != 0) return 0;
  let next = timerMinDeadline();
  // No timers, or only ones that never fire.
  if (next == Infinity) return MAX_POLL_TIMEOUT;
  let wait = next - now;
  // False for a past deadline and for NaN (a NaN clock, or -Infinity - -Infinity).
  if (!(wait > 0)) return 0;
  return wait < MAX_POLL_TIMEOUT ? wait : MAX_POLL_TIMEOUT;
}

/** Iterations begun. */
export function stat_iterations(): f64 {
  return iterations;
}

/** Timers taken by timer_next_due. */
export function stat_timers_fired(): f64 {
  return timersFired;
}

/** Events returned by event_next, waker records excluded. */
export function stat_events(): f64 {
  return eventsDelivered;
}
