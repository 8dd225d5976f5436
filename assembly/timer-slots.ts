// Timer slots: the identity of a timer, and where it is.
//
// Each timer occupies a slot from first `timer_start` until it fires (is taken
// from the due list) or is stopped. A slot is an 8-byte record:
//   offset 0  u32 generation  1 .. GENERATION_LIMIT-1; changes every time the slot is freed
//   offset 4  u32 place       where the timer is:
//                               0 .. TIMER_SLOTS-1   its index in the heap
//                               PLACE_DUE            collected into the due list, not yet taken
//                               PLACE_FREE | next    free; `next` is the next free slot or NO_SLOT
//
// Invariants
// - A handle `generation * TIMER_SLOTS + slot` names a pending timer exactly when
//   the slot's generation equals the handle's and its place is not free.
// - Slots [0, slotCount) have been handed out at least once; the free ones form a
//   LIFO list from `freeHead` (LIFO so that a busy loop reuses warm cache lines).
// - slotCount <= slotCapacity and slotCount <= TIMER_SLOTS.
// - A slot's generation is never 0, so no handle is below TIMER_SLOTS, and it stays
//   below GENERATION_LIMIT, so every handle is an integer below 2^52, exact in an f64.
//   It wraps from GENERATION_LIMIT-1 to 1; a stale handle is mistaken for a live one
//   only if its slot was freed exactly a multiple of 2^28-1 times in between.

import { TIMER_SLOTS, TIMER_SLOT_BITS } from "./layout";
import { regionGrowDoubling, grantedBytes } from "./memory";

export const SLOT_SIZE: usize = 8;
export const PLACE_DUE: u32 = 0x40000000;
export const PLACE_FREE: u32 = 0x80000000;
export const NO_SLOT: u32 = 0x7fffffff;
export const GENERATION_LIMIT: u32 = 1 << 28;

/** Base of the slot records. */
export let slotBase: usize = 0;
/** Slot records the region holds. */
export let slotCapacity: u32 = 0;
/** Slots handed out at least once. */
export let slotCount: u32 = 0;
/** First free slot, or NO_SLOT. */
let freeHead: u32 = NO_SLOT;

const INITIAL_SLOTS: u64 = 1024;

// @ts-ignore: decorator
@inline export function slotGeneration(slot: u32): u32 {
  return load<u32>(slotBase + (<usize>slot << 3));
}

// @ts-ignore: decorator
@inline export function slotPlace(slot: u32): u32 {
  return load<u32>(slotBase + (<usize>slot << 3), 4);
}

// @ts-ignore: decorator
@inline export function setSlotPlace(slot: u32, place: u32): void {
  store<u32>(slotBase + (<usize>slot << 3), place, 4);
}

/** True if the next slot handed out will be a fresh one (the free list is empty). */
// @ts-ignore: decorator
@inline export function slotNeedsFresh(): bool {
  return freeHead == NO_SLOT;
}

/** Doubles the slot region (or grows it by one chunk if doubling does not fit).
 * Returns false, changing nothing, if memory is exhausted. */
export function growSlots(): bool {
  let p = regionGrowDoubling(slotBase, slotCapacity, SLOT_SIZE, INITIAL_SLOTS, <u64>TIMER_SLOTS);
  if (p == 0) return false;
  slotBase = p;
  slotCapacity = <u32>(grantedBytes / SLOT_SIZE);
  return true;
}

/** Hands out a slot and sets its place. If `slotNeedsFresh()`, the caller has made
 * sure slotCount < slotCapacity. */
export function slotTake(place: u32): u32 {
  let slot = freeHead;
  if (slot != NO_SLOT) {
    freeHead = slotPlace(slot) & ~PLACE_FREE;
  } else {
    slot = slotCount++;
    store<u32>(slotBase + (<usize>slot << 3), 1); // generation of a fresh slot
  }
  setSlotPlace(slot, place);
  return slot;
}

/** Frees a slot: its generation changes, so every handle naming it goes stale. */
export function slotFree(slot: u32): void {
  let ptr = slotBase + (<usize>slot << 3);
  let generation = load<u32>(ptr) + 1;
  if (generation >= GENERATION_LIMIT) generation = 1;
  store<u32>(ptr, generation);
  store<u32>(ptr, PLACE_FREE | freeHead, 4);
  freeHead = slot;
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
  if (slot >= slotCount) return NO_SLOT;
  if (slotGeneration(slot) != generation) return NO_SLOT;
  if ((slotPlace(slot) & PLACE_FREE) != 0) return NO_SLOT;
  return slot;
}

/** The handle of a pending timer's slot. */
// @ts-ignore: decorator
@inline export function handleOf(slot: u32): f64 {
  return <f64>slotGeneration(slot) * <f64>TIMER_SLOTS + <f64>slot;
}
