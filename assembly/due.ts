// The due list: the timers one collect found due, in the order they run.
//
// `timers_collect(now)` appends every pending timer with deadline <= now, in
// (deadline, sequence) order, to the end of this list (wheel.ts emits them);
// `timer_next_due()` takes them from the front one by one. So the set of timers an
// iteration runs is fixed when the iteration starts: a timer started while they run
// waits for the next collect, even if its deadline has already passed (docs/API.md,
// "Semantics").
//
// A record is 8 bytes: u32 slot at 0, u32 generation at 4. A record is live while
// its slot still has that generation and its place is PLACE_DUE. Stopping a collected
// timer frees its slot, which changes the generation, so its record turns dead where
// it lies and is skipped; nothing has to be removed from the middle.
//
// Invariants
// - duePending is the number of live records in [dueRead, dueLength).
// - dueCapacity >= timerSlots.count. A slot is only handed out when that stays
//   true, so after dead records are squeezed out (at most count - pending ones
//   outside the list remain) every pending timer fits behind them: collecting never
//   has to allocate.

import { TIMER_SLOTS } from "./layout";
import { regionGrow, grantedBytes } from "./memory";
import { timerSlots, slotFree, slotGeneration, slotPlace, setSlotPlace, PLACE_DUE } from "./timer-slots";

const DUE_RECORD_SIZE: usize = 8;

let dueBase: usize = 0;
export let dueCapacity: u32 = 0;
/** Records [dueRead, dueLength) have not been looked at by dueTake yet. */
let dueRead: u32 = 0;
let dueLength: u32 = 0;
/** Live records in [dueRead, dueLength). */
export let duePending: u32 = 0;
/** Records appended by the collect in progress (reset by dueBeginCollect). */
export let dueCollected: u32 = 0;

/** Timers taken by dueTake since the module started. */
export let timersFired: f64 = 0;

/** Grows the due list to the slot region's capacity (it must cover every slot that
 * could be handed out). Returns false, changing nothing, if memory is exhausted. */
export function growDue(): bool {
  let oldBytes = <usize>dueCapacity * DUE_RECORD_SIZE;
  let want = max<u64>(<u64>timerSlots.capacity, <u64>dueCapacity + 1);
  // Doubling here as well keeps the due list from growing one step behind the slots.
  want = max<u64>(want, <u64>dueCapacity * 2);
  if (want > <u64>TIMER_SLOTS) want = <u64>TIMER_SLOTS;
  // At least the slots' capacity: one record at a time would move the list again
  // for every slot handed out near the memory limit.
  let need = max<u64>(<u64>timerSlots.capacity, <u64>dueCapacity + 1);
  if (need > want) need = want;
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

/** Before a collect that may append up to `others` records (the pending timers not in
 * the list): makes room for them, which the invariant guarantees without allocating. */
export function dueBeginCollect(others: u32): void {
  if (dueRead == dueLength) {
    dueRead = 0;
    dueLength = 0;
  }
  if (dueLength + others > dueCapacity) compactDue();
  dueCollected = 0;
}

/** Appends a collected timer; the caller made room with dueBeginCollect. */
// @ts-ignore: decorator
@inline export function dueAppend(slot: u32): void {
  setSlotPlace(slot, PLACE_DUE);
  let p = dueBase + (<usize>dueLength << 3);
  store<u32>(p, slot);
  store<u32>(p, slotGeneration(slot), 4);
  dueLength++;
  dueCollected++;
}

/** Ends a collect: the appended records are pending. Returns how many were appended. */
export function dueEndCollect(): u32 {
  duePending += dueCollected;
  return dueCollected;
}

/** A collected timer was stopped before it was taken (its record turns dead). */
// @ts-ignore: decorator
@inline export function dueForget(): void {
  duePending--;
}

/**
 * Takes the next collected timer that is still pending: frees its slot (its handle
 * is stale from now on) and returns the slot. Returns -1 when the due list is
 * exhausted. Records of timers stopped after they were collected are skipped.
 */
export function dueTake(): i32 {
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
