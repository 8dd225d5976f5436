// Slot tables: records handed out and taken back through a free list, each tagged
// with a generation so that a name for a slot's earlier use can be told from a
// name for its current one.
//
// The timer slots (timer-slots.ts) and the handler slots (handlers.ts) are both
// slot tables. They differ in the size of their records, the range of their
// generations and their maximum number of slots; each owner passes those as
// constants, so once the methods below are inlined every access is the load or
// store a hand-written table would make, with no object and no call per slot.
//
// A table is a region (memory.ts) of records of type R, a class that extends
// SlotRecord; every record begins with
//   offset 0  u32 generation  in [first, limit); it advances whenever the slot is freed
//   offset 4  u32 link        while free: FREE | the next free slot, or FREE | NO_SLOT
//                             while in use: the owner's value, which is below FREE
// and the owner's own fields follow. The table's state (base, capacity, count,
// free head) is 16 bytes of static data, so a table is a constant address.
//
// Invariants
// - count <= capacity, and count <= the owner's maximum, which is below NO_SLOT,
//   so no slot equals NO_SLOT. Slots [0, count) have been handed out at least once.
// - A slot is in use exactly when it is below count and its link has no FREE bit.
//   The free slots form a LIFO list from freeHead (LIFO so that a busy loop keeps
//   reusing warm cache lines).
// - A name (slot, generation) is current exactly when the slot is in use and has
//   that generation. Freeing a slot advances its generation, wrapping from
//   limit - 1 to first, so a stale name passes for current only if its slot was
//   freed a multiple of (limit - first) times since the name was made.
// - Only growth can fail, and then it changes nothing.

import { regionGrowDoubling, grantedBytes } from "./memory";

/** The link bit of a free slot. */
export const FREE: u32 = 0x80000000;
/** The end of the free list; never a slot. */
export const NO_SLOT: u32 = 0x7fffffff;

/** The first 8 bytes of every record; owners extend it with their own fields. */
@unmanaged export class SlotRecord {
  generation: u32;
  link: u32;
}

/** A slot table over records of type R. Only ever placed in static data by
 * `slotTable`, never allocated. */
@unmanaged export class SlotTable<R extends SlotRecord> {
  /** Base of the region of records (0 before the first growth). */
  base: usize;
  /** Records the region holds. */
  capacity: u32;
  /** Slots handed out at least once. */
  count: u32;
  /** The first free slot, or NO_SLOT. */
  freeHead: u32;

  /** The record of a slot below capacity. */
  // @ts-ignore: decorator
  @inline record(slot: u32): R {
    return changetype<R>(this.base + <usize>slot * offsetof<R>());
  }

  /** True if a freed slot is waiting, so `take` needs no fresh one. */
  // @ts-ignore: decorator
  @inline hasFree(): bool {
    return this.freeHead != NO_SLOT;
  }

  /** The slot `take` hands out next: the free head, else the first fresh slot. */
  // @ts-ignore: decorator
  @inline next(): u32 {
    let slot = this.freeHead;
    return slot != NO_SLOT ? slot : this.count;
  }

  /** The generation the slot `next()` will have once taken. */
  // @ts-ignore: decorator
  @inline nextGeneration(first: u32): u32 {
    let slot = this.freeHead;
    return slot != NO_SLOT ? this.record(slot).generation : first;
  }

  /** True if the name (slot, generation) is current; any values are safe. */
  // @ts-ignore: decorator
  @inline isCurrent(slot: u32, generation: u32): bool {
    if (slot >= this.count) return false;
    let r = this.record(slot);
    if (r.generation != generation) return false;
    return (r.link & FREE) == 0;
  }

  /** Hands out `next()` with its link set to `link` (below FREE). The caller has
   * made sure a fresh slot, if one is needed, is below capacity and the maximum.
   * A fresh slot starts at generation `first`. */
  // @ts-ignore: decorator
  @inline take(link: u32, first: u32): u32 {
    let slot = this.freeHead;
    let r: R;
    if (slot != NO_SLOT) {
      r = this.record(slot);
      this.freeHead = r.link & ~FREE;
    } else {
      slot = this.count++;
      r = this.record(slot);
      r.generation = first;
    }
    r.link = link;
    return slot;
  }

  /** Frees a slot in use: its generation advances within [first, limit), so every
   * name made for it goes stale, and it becomes the free head. */
  // @ts-ignore: decorator
  @inline free(slot: u32, first: u32, limit: u32): void {
    let r = this.record(slot);
    let generation = r.generation + 1;
    if (generation >= limit) generation = first;
    r.generation = generation;
    r.link = FREE | this.freeHead;
    this.freeHead = slot;
  }

  /** Doubles the region, from `initial` records up to `max` (or adds `initial`
   * records if doubling does not fit). Returns false, changing nothing, if memory
   * is exhausted. Records past the old capacity are zero. */
  grow(initial: u64, max: u32): bool {
    let p = regionGrowDoubling(this.base, this.capacity, offsetof<R>(), initial, <u64>max);
    if (p == 0) return false;
    this.base = p;
    this.capacity = <u32>(grantedBytes / offsetof<R>());
    return true;
  }
}

/** A new, empty table: 16 bytes of static data with an empty free list. Call it
 * only to initialise a module-level constant, which then folds to its address. */
// @ts-ignore: decorator
@inline export function slotTable<R extends SlotRecord>(): SlotTable<R> {
  return changetype<SlotTable<R>>(memory.data<u32>([0, 0, 0, NO_SLOT], 16));
}
