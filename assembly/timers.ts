// Timers: the public timer operations, and the due list of one iteration.
//
// A pending timer is either in the heap or in the due list. `timers_collect(now)`
// moves every heap timer with deadline <= now, in (deadline, sequence) order, to
// the end of the due list; `timer_next_due()` takes them from the front one by one.
// So the set of timers an iteration runs is fixed when the iteration starts: a
// timer started while they run goes into the heap and waits for the next collect,
// even if its deadline has already passed (docs/API.md, "Semantics").
//
// A due-list record is 8 bytes: u32 slot at 0, u32 generation at 4. A record is
// live while its slot still has that generation and its place is PLACE_DUE. Stopping
// a collected timer frees its slot, which changes the generation, so its record
// turns dead where it lies and is skipped; nothing has to be removed from the middle.
//
// Invariants
// - timer_count() == heapLength + duePending, where duePending is the number of
//   live records in [dueRead, dueLength).
// - dueCapacity >= timerSlots.count. A slot is only handed out when that stays
//   true, so after dead records are squeezed out (at most count - heapLength live ones
//   remain) the whole heap fits behind them: collecting never has to allocate.

import { TIMER_SLOTS, ERRNO_EINVAL } from "./layout";
import { regionGrow, grantedBytes } from "./memory";
import {
  timerSlots, growSlots,
  slotTake, slotFree, slotOfHandle, slotGeneration, slotPlace, setSlotPlace,
  handleOf, PLACE_DUE, NO_SLOT,
} from "./timer-slots";
import {
  heapLength, heapHasRoom, heapGrow, heapPush, heapPop, heapRemoveAt, heapMinDeadline,
} from "./heap";

const DUE_RECORD_SIZE: usize = 8;

let dueBase: usize = 0;
let dueCapacity: u32 = 0;
/** Records [dueRead, dueLength) have not been looked at by timer_next_due yet. */
let dueRead: u32 = 0;
let dueLength: u32 = 0;
/** Live records in [dueRead, dueLength). */
let duePending: u32 = 0;

/** Timers taken by timer_next_due since the module started. */
export let timersFired: f64 = 0;

/** Grows the due list to the slot region's capacity (it must cover every slot that
 * could be handed out). Returns false, changing nothing, if memory is exhausted. */
function growDue(): bool {
  let oldBytes = <usize>dueCapacity * DUE_RECORD_SIZE;
  let want = max<u64>(<u64>timerSlots.capacity, <u64>dueCapacity + 1);
  // Doubling here as well keeps the due list from growing one step behind the slots.
  want = max<u64>(want, <u64>dueCapacity * 2);
  if (want > <u64>TIMER_SLOTS) want = <u64>TIMER_SLOTS;
  let need = <u64>dueCapacity + 1;
  let p = regionGrow(dueBase, oldBytes, want * DUE_RECORD_SIZE, need * DUE_RECORD_SIZE);
  if (p == 0) return false;
  dueBase = p;
  dueCapacity = <u32>(grantedBytes / DUE_RECORD_SIZE);
  return true;
}

// @ts-ignore: decorator
@inline function dueRecordLive(p: usize): bool {
  let slot = load<u32>(p);
  return slotGeneration(slot) == load<u32>(p, 4) && slotPlace(slot) == PLACE_DUE;
}

/** Squeezes out taken and dead records, keeping the order of the live ones. */
function compactDue(): void {
  let write: u32 = 0;
  for (let read = dueRead; read < dueLength; read++) {
    let p = dueBase + (<usize>read << 3);
    if (dueRecordLive(p)) {
      store<u64>(dueBase + (<usize>write << 3), load<u64>(p));
      write++;
    }
  }
  dueRead = 0;
  dueLength = write;
}

/**
 * Starts a timer that is due at `deadline` (any unit; the runtime uses seconds on
 * its clock). Returns its handle, `generation * TIMER_SLOTS + slot`, which is > 0.
 * Returns -1 if TIMER_SLOTS timers are pending or memory is exhausted (nothing
 * changes then, and the core keeps working), and -22 (EINVAL) if `deadline` is
 * NaN, which has no place in the order. -Infinity and +Infinity are accepted.
 */
export function timer_start(deadline: f64): f64 {
  if (isNaN(deadline)) return <f64>-ERRNO_EINVAL;
  if (!timerSlots.hasFree()) {
    let count = timerSlots.count;
    if (count >= <u32>TIMER_SLOTS) return -1;
    if (count >= timerSlots.capacity && !growSlots()) return -1;
    // A fresh slot may be handed out only while the due list could hold it too.
    if (count >= dueCapacity && !growDue()) return -1;
  }
  if (!heapHasRoom() && !heapGrow()) return -1;
  let slot = slotTake(0);
  heapPush(deadline, slot);
  return handleOf(slot);
}

/**
 * Stops a pending timer. Returns 1 if the handle named a timer that was in the heap,
 * or collected and not yet taken, and it is now removed (its handle goes stale);
 * 0 for a handle that fired, was stopped, is stale, or is not a handle at all
 * (any f64, NaN included, is safe). Never touches any other timer.
 */
export function timer_stop(handle: f64): i32 {
  let slot = slotOfHandle(handle);
  if (slot == NO_SLOT) return 0;
  let place = slotPlace(slot);
  if (place == PLACE_DUE) {
    duePending--;
  } else {
    heapRemoveAt(place);
  }
  slotFree(slot);
  return 1;
}

/** Pending timers: in the heap, or collected and not yet taken. */
export function timer_count(): i32 {
  return <i32>(heapLength + duePending);
}

/** The earliest deadline in the heap, or +Infinity when it is empty. Collected
 * timers that are not yet taken are not counted. */
export function timer_next_deadline(): f64 {
  return heapMinDeadline();
}

/**
 * Moves every heap timer with deadline <= now to the due list, in (deadline,
 * sequence) order, after any records not yet taken. Returns how many it moved.
 * A NaN `now` collects nothing.
 */
export function timers_collect(now: f64): i32 {
  if (dueRead == dueLength) {
    dueRead = 0;
    dueLength = 0;
  }
  if (heapLength == 0 || !(heapMinDeadline() <= now)) return 0;
  // Room for the whole heap behind the records already there; see the invariants.
  if (dueLength + heapLength > dueCapacity) compactDue();
  let collected: u32 = 0;
  while (heapLength != 0 && heapMinDeadline() <= now) {
    let slot = heapPop();
    setSlotPlace(slot, PLACE_DUE);
    let p = dueBase + (<usize>dueLength << 3);
    store<u32>(p, slot);
    store<u32>(p, slotGeneration(slot), 4);
    dueLength++;
    collected++;
  }
  duePending += collected;
  return <i32>collected;
}

/**
 * Takes the next collected timer that is still pending: frees its slot (its handle
 * is stale from now on) and returns the slot, for the runtime to find its callback.
 * Returns -1 when the due list is exhausted. Records of timers stopped after they
 * were collected are skipped.
 */
export function timer_next_due(): i32 {
  while (dueRead < dueLength) {
    let p = dueBase + (<usize>dueRead << 3);
    dueRead++;
    if (dueRecordLive(p)) {
      let slot = load<u32>(p);
      slotFree(slot);
      duePending--;
      timersFired += 1;
      return <i32>slot;
    }
  }
  dueRead = 0;
  dueLength = 0;
  return -1;
}

/** Timers waiting in the due list (for the loop's poll timeout). */
// @ts-ignore: decorator
@inline export function timersDuePending(): u32 {
  return duePending;
}
