// Timers: the public timer operations.
//
// A pending timer is in the wheel (wheel.ts), in the heap (heap.ts: deadlines past
// the wheel's reach, or any the wheel had no memory for), or in the due list
// (due.ts: collected by this iteration, not yet taken). Its slot's place says which
// (timer-slots.ts). `timers_collect(now)` moves every timer with deadline <= now, in
// (deadline, sequence) order, to the end of the due list; `timer_next_due()` takes
// them from the front one by one.
//
// Invariants
// - timer_count() == wheelLive + heapLength + duePending.
// - heapCapacity >= timerSlots.count and dueCapacity >= timerSlots.count: every slot handed out has room
//   in the heap (so the wheel can always fall back to it, and sort a bucket in the
//   space past its entries) and in the due list (so collecting never allocates). A
//   fresh slot is only handed out once both have grown to cover it.

import { TIMER_SLOTS, TIMER_SLOT_BITS, ERRNO_EINVAL } from "./layout";
import {
  timerSlots, growSlots,
  slotTake, slotFree, slotOfHandle, slotPlace,
  handleOf, PLACE_DUE, PLACE_HEAP, PLACE_INDEX_MASK, NO_SLOT,
} from "./timer-slots";
import { heapLength, heapCapacity, heapGrow, heapRemoveAt, heapDeadlineAt } from "./heap";
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
  if (!wheelInit()) return -1;
  if (!timerSlots.hasFree()) {
    let count = timerSlots.count;
    if (count >= <u32>TIMER_SLOTS) return -1;
    if (count >= timerSlots.capacity && !growSlots()) return -1;
    // A fresh slot may be handed out only while the due list and the heap could hold it too.
    if (count >= dueCapacity && !growDue()) return -1;
    if (count >= heapCapacity && !heapGrow()) return -1;
  }
  let slot = slotTake(0);
  wheelInsert(deadline, (nextSequence++ << <u64>TIMER_SLOT_BITS) | <u64>slot);
  return handleOf(slot);
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

/** Pending timers: in the wheel or the heap, or collected and not yet taken. */
export function timer_count(): i32 {
  return <i32>(wheelLive + heapLength + duePending);
}

/** The earliest deadline of the timers not yet collected, or +Infinity when there
 * are none. Collected timers that are not yet taken are not counted. */
export function timer_next_deadline(): f64 {
  return wheelMin();
}

/** The same, for the core's other parts (loop.ts). */
// @ts-ignore: decorator
@inline export function timerMinDeadline(): f64 {
  return wheelMin();
}

/**
 * Moves every pending timer with deadline <= now to the due list, in (deadline,
 * sequence) order, after any records not yet taken. Returns how many it moved.
 * A NaN `now` collects nothing.
 */
export function timers_collect(now: f64): i32 {
  dueBeginCollect(wheelLive + heapLength);
  if (isNaN(now)) return 0;
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
