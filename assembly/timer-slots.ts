// Timer slots: the identity of a timer, and where it is.
//
// Each timer occupies a slot of a slot table (slots.ts) from first `timer_start`
// until it fires (is taken from the due list) or is stopped. A slot is the 8-byte
// SlotRecord itself:
//   offset 0  u32 generation  1 .. GENERATION_LIMIT-1; advances every time the slot is freed
//   offset 4  u32 link        while in use, where the timer is (always below FREE):
//                               0 .. PLACE_PENDING-1 the index of its entry in the wheel's
//                                                    chunks (wheel.ts)
//                               PLACE_PENDING | i    waiting for its deadline (pending.ts)
//                               PLACE_HEAP | i       its index i in the heap (heap.ts)
//                               PLACE_DUE            collected into the due list, not yet taken
//                             while free, FREE | the next free slot (slots.ts)
//
// Invariants
// - A handle `generation * TIMER_SLOTS + slot` names a pending timer exactly when
//   (slot, generation) is current in the table.
// - The table never holds more than TIMER_SLOTS slots, so every slot fits the
//   handle's low TIMER_SLOT_BITS bits.
// - A slot's generation is never 0 (FIRST_GENERATION is 1), so no handle is below
//   TIMER_SLOTS, and it stays below GENERATION_LIMIT, so every handle is an
//   integer below 2^52, exact in an f64. It wraps from GENERATION_LIMIT-1 to 1; a
//   stale handle is mistaken for a live one only if its slot was freed exactly a
//   multiple of 2^28-1 times in between.

import { TIMER_SLOTS, TIMER_SLOT_BITS } from "./layout";
import { SlotRecord, slotTable, NO_SLOT } from "./slots";

export { NO_SLOT };

export const PLACE_DUE: u32 = 0x40000000;
/** The tag of a heap position. */
export const PLACE_HEAP: u32 = 0x20000000;
/** The tag of a relative timer waiting for its deadline; the wheel's entry indices
 * stay below it (wheel.ts). */
export const PLACE_PENDING: u32 = 0x10000000;
export const PLACE_INDEX_MASK: u32 = PLACE_PENDING - 1;
export const FIRST_GENERATION: u32 = 1;
export const GENERATION_LIMIT: u32 = 1 << 28;

const INITIAL_SLOTS: u64 = 1024;

@unmanaged class TimerSlot extends SlotRecord {}

/** The table of timer slots. */
export const timerSlots = slotTable<TimerSlot>();

// @ts-ignore: decorator
@inline export function slotGeneration(slot: u32): u32 {
  return timerSlots.record(slot).generation;
}

// @ts-ignore: decorator
@inline export function slotPlace(slot: u32): u32 {
  return timerSlots.record(slot).link;
}

// @ts-ignore: decorator
@inline export function setSlotPlace(slot: u32, place: u32): void {
  timerSlots.record(slot).link = place;
}

/** Grows the slot table (doubling, up to TIMER_SLOTS). Returns false, changing
 * nothing, if memory is exhausted. */
export function growSlots(): bool {
  return timerSlots.grow(INITIAL_SLOTS, <u32>TIMER_SLOTS);
}

/** Hands out a slot and sets its place. If the table has no free slot, the caller
 * has made sure timerSlots.count < timerSlots.capacity and < TIMER_SLOTS. */
// @ts-ignore: decorator
@inline export function slotTake(place: u32): u32 {
  return timerSlots.take(place, FIRST_GENERATION);
}

/** Frees a slot: its generation changes, so every handle naming it goes stale. */
// @ts-ignore: decorator
@inline export function slotFree(slot: u32): void {
  timerSlots.free(slot, FIRST_GENERATION, GENERATION_LIMIT);
}

/** Decodes a handle to its slot if it names a pending timer, else returns NO_SLOT.
 * Any f64 is safe: NaN, infinities, fractions, negatives and huge values all give NO_SLOT. */
export function slotOfHandle(handle: f64): u32 {
  // The comparisons are false for NaN; the range keeps the conversion exact.
  if (!(handle >= <f64>TIMER_SLOTS && handle < <f64>GENERATION_LIMIT * <f64>TIMER_SLOTS)) return NO_SLOT;
  let h = <u64>handle;
  if (<f64>h != handle) return NO_SLOT;
  let slot = <u32>(h & <u64>(TIMER_SLOTS - 1));
  let generation = <u32>(h >> <u64>TIMER_SLOT_BITS);
  if (!timerSlots.isCurrent(slot, generation)) return NO_SLOT;
  return slot;
}

/** The handle of a pending timer's slot. */
// @ts-ignore: decorator
@inline export function handleOf(slot: u32): f64 {
  return <f64>slotGeneration(slot) * <f64>TIMER_SLOTS + <f64>slot;
}
