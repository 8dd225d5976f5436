// Timers: the public timer operations.
//
// A pending timer is in the wheel (wheel.ts), in the heap (heap.ts: deadlines past
// the wheel's reach, or any the wheel had no memory for), waiting for its clock read
// (pending.ts: started with a delay, not yet committed), or in the due list (due.ts:
// collected by this iteration, not yet taken). Its slot's place says which
// (timer-slots.ts). `timers_collect(now)` moves every timer with deadline <= now, in
// (deadline, sequence) order, to the end of the due list; `timer_next_due()` takes
// them from the front one by one.
//
// Invariants
// - timer_count() == wheelLive + heapLength + pendingCount + duePending.
// - heapCapacity >= timerSlots.count and dueCapacity >= timerSlots.count: every
//   slot handed out has room in the heap's region (so the wheel can always fall
//   back to the heap, sort a bucket in the space past its entries, and hold pending
//   timers at its top) and in the due list (so collecting never allocates). A fresh
//   slot is only handed out once both have grown to cover it.

import { TIMER_SLOTS, TIMER_SLOT_BITS, ERRNO_EINVAL } from "./layout";
import {
  timerSlots, growSlots,
  slotTake, slotFree, slotOfHandle, slotPlace,
  handleOf, PLACE_DUE, PLACE_HEAP, PLACE_PENDING, PLACE_INDEX_MASK, NO_SLOT,
} from "./timer-slots";
import { heapLength, heapCapacity, heapGrow, heapRemoveAt, heapDeadlineAt, pendingCount } from "./heap";
import { pendingAdd, pendingRemove, pendingCommit } from "./pending";
import { dueCapacity, duePending, growDue, dueBeginCollect, dueEndCollect, dueForget, dueTake } from "./due";
import { wheelInit, wheelInsert, wheelRemove, wheelHeapRemoved, wheelMin, wheelCollect, wheelLive } from "./wheel";

/** The next insertion number. Only its low 40 bits survive the shift into a key. */
let nextSequence: u64 = 0;

/**
 * Starts a timer that is due at `deadline` (any unit; the runtime uses seconds on
 * its clock). Returns its handle, `generation * TIMER_SLOTS + slot`, which is > 0.
 * Returns -1 if TIMER_SLOTS timers are pending or memory is exhausted (nothing
 * changes then, and the core keeps working), and -22 (EINVAL) if `deadline` is
 * NaN, which has no place in the order. -Infinity and +Infinity are accepted.
 */
export function timer_start(deadline: f64): f64 {
  if (isNaN(deadline)) return <f64>-ERRNO_EINVAL;
  if (!haveRoom()) return -1;
  let slot = slotTake(0);
  wheelInsert(deadline, (nextSequence++ << <u64>TIMER_SLOT_BITS) | <u64>slot);
  return handleOf(slot);
}

/**
 * Starts a timer due `delay` after the `now` of the next timers_commit (or of the
 * next timers_collect, which commits first). Until then it is pending (timer_count,
 * timer_stop) but in no order: timer_next_deadline does not see it. Returns what
 * timer_start returns; -22 (EINVAL) for a NaN delay.
 */
export function timer_start_after(delay: f64): f64 {
  if (isNaN(delay)) return <f64>-ERRNO_EINVAL;
  if (!haveRoom()) return -1;
  let slot = slotTake(0);
  pendingAdd(delay, (nextSequence++ << <u64>TIMER_SLOT_BITS) | <u64>slot);
  return handleOf(slot);
}

/**
 * Gives every timer started with timer_start_after since the last commit the
 * deadline now + delay, in the order they were started. Returns how many; a NaN
 * `now` commits none.
 */
export function timers_commit(now: f64): i32 {
  if (isNaN(now) || pendingCount == 0) return 0;
  return <i32>pendingCommit(now);
}

/** True if a slot can be handed out: a free one, or a fresh one that the due list
 * and the heap could hold too (growing them if need be). */
function haveRoom(): bool {
  if (!wheelInit()) return false;
  if (timerSlots.hasFree()) return true;
  let count = timerSlots.count;
  if (count >= <u32>TIMER_SLOTS) return false;
  if (count >= timerSlots.capacity && !growSlots()) return false;
  if (count >= dueCapacity && !growDue()) return false;
  if (count >= heapCapacity && !heapGrow()) return false;
  return true;
}

/**
 * Stops a pending timer. Returns 1 if the handle named a timer that was in the wheel
 * or the heap, or collected and not yet taken, and it is now removed (its handle goes
 * stale); 0 for a handle that fired, was stopped, is stale, or is not a handle at all
 * (any f64, NaN included, is safe). Never touches any other timer.
 */
export function timer_stop(handle: f64): i32 {
  let slot = slotOfHandle(handle);
  if (slot == NO_SLOT) return 0;
  let place = slotPlace(slot);
  if (place == PLACE_DUE) {
    dueForget();
  } else if ((place & PLACE_PENDING) != 0) {
    pendingRemove(place & PLACE_INDEX_MASK);
  } else if ((place & PLACE_HEAP) != 0) {
    let i = place & PLACE_INDEX_MASK;
    wheelHeapRemoved(heapDeadlineAt(i));
    heapRemoveAt(i);
  } else {
    wheelRemove(place);
  }
  slotFree(slot);
  return 1;
}

/** Pending timers: in the wheel or the heap, waiting for a commit, or collected and
 * not yet taken. */
export function timer_count(): i32 {
  return <i32>(wheelLive + heapLength + pendingCount + duePending);
}

/** The earliest deadline of the timers not yet collected, or +Infinity when there
 * are none. Collected timers not yet taken, and timers not yet committed, are not
 * counted. */
export function timer_next_deadline(): f64 {
  return wheelMin();
}

/** The same, for the core's other parts (loop.ts). */
// @ts-ignore: decorator
@inline export function timerMinDeadline(): f64 {
  return wheelMin();
}

/**
 * Commits the timers started with timer_start_after at `now`, then moves every
 * pending timer with deadline <= now to the due list, in (deadline, sequence)
 * order, after any records not yet taken. Returns how many it moved. A NaN `now`
 * commits and collects nothing.
 */
export function timers_collect(now: f64): i32 {
  if (isNaN(now)) return 0;
  if (pendingCount != 0) pendingCommit(now);
  dueBeginCollect(wheelLive + heapLength);
  wheelCollect(now);
  return <i32>dueEndCollect();
}

/**
 * Takes the next collected timer that is still pending: frees its slot (its handle
 * is stale from now on) and returns the slot, for the runtime to find its callback.
 * Returns -1 when the due list is exhausted. Records of timers stopped after they
 * were collected are skipped.
 */
export function timer_next_due(): i32 {
  return dueTake();
}

/** Timers waiting in the due list (for the loop's poll timeout). */
// @ts-ignore: decorator
@inline export function timersDuePending(): u32 {
  return duePending;
}

export { timersFired } from "./due";
