// The timer heap: a binary min-heap of flat 16-byte entries, for the timers the
// wheel (wheel.ts) does not hold: deadlines past its reach (more than about 68
// minutes of seconds ahead of its cursor, or not finite), and any timer the wheel
// had no memory for. Its region is also the wheel's scratch space for sorting.
//
//   offset 0  f64 deadline
//   offset 8  u64 key       (sequence << TIMER_SLOT_BITS) | slot
//   size   16
//
// Entries are ordered by (deadline, sequence). The sequence is the insertion
// number, so timers with the same deadline leave in the order they were started.
// The slot rides along in the key's low bits, so a comparison reads two adjacent
// words of one entry and never follows a pointer.
//
// The top of the same region holds the pending relative timers (pending.ts), the
// first of them in the last entry: heapLength + pendingCount <= heapCapacity.
//
// Invariants
// - For every i > 0: entry[(i - 1) >> 1] is not after entry[i].
// - For every i < heapLength: the place of the slot in entry[i] is PLACE_HEAP | i.
//   Every move of an entry updates it, which is what lets `heapRemoveAt` take a
//   timer out of any position in O(log n).
// - heapCapacity >= the timer slots handed out (timers.ts grows it with them), so
//   every pending timer fits: a push never allocates, and the entries past
//   heapLength can hold any one bucket of the wheel while it is sorted.
// - No deadline is NaN (the caller refuses NaN, which would compare false both
//   ways and break the order).

import { TIMER_SLOTS } from "./layout";
import { regionGrowDoubling, grantedBytes } from "./memory";
import { setSlotPlace, PLACE_HEAP } from "./timer-slots";

const ENTRY_SIZE: usize = 16;
const SLOT_MASK: u64 = <u64>(TIMER_SLOTS - 1);
const INITIAL_ENTRIES: u64 = 1024;

export let heapBase: usize = 0;
export let heapLength: u32 = 0;
export let heapCapacity: u32 = 0;

/**
 * True if entry (d1, k1) comes before entry (d2, k2).
 *
 * Sequences are compared with wrap-around arithmetic: the 40-bit sequence sits in
 * the key's top 40 bits, so the sign of the 64-bit difference k1 - k2 is the sign
 * of (s1 - s2) mod 2^40 read as a signed 40-bit number (the slot bits below can
 * only move the difference by less than one sequence step). That stays right while
 * the live timers' sequences span less than 2^39 insertions (over 5 * 10^11), so
 * the counter may wrap freely.
 */
// @ts-ignore: decorator
@inline export function before(d1: f64, k1: u64, d2: f64, k2: u64): bool {
  return d1 < d2 || (d1 == d2 && <i64>(k1 - k2) < 0);
}

// @ts-ignore: decorator
@inline function put(i: u32, d: f64, k: u64): void {
  let p = heapBase + (<usize>i << 4);
  store<f64>(p, d);
  store<u64>(p, k, 8);
  setSlotPlace(<u32>(k & SLOT_MASK), PLACE_HEAP | i);
}

/** Moves the entry (d, k), which belongs at hole `i` or above, up to its place. */
function siftUp(i: u32, d: f64, k: u64): void {
  while (i > 0) {
    let parent = (i - 1) >> 1;
    let pp = heapBase + (<usize>parent << 4);
    let pd = load<f64>(pp);
    let pk = load<u64>(pp, 8);
    if (!before(d, k, pd, pk)) break;
    put(i, pd, pk);
    i = parent;
  }
  put(i, d, k);
}

/** Moves the entry (d, k), which belongs at hole `i` or below, down to its place. */
function siftDown(i: u32, d: f64, k: u64): void {
  let n = heapLength;
  while (true) {
    // i < 2^24, so 2i + 2 cannot overflow.
    let child = (i << 1) + 1;
    if (child >= n) break;
    let cp = heapBase + (<usize>child << 4);
    let cd = load<f64>(cp);
    let ck = load<u64>(cp, 8);
    if (child + 1 < n) {
      let rd = load<f64>(cp, 16);
      let rk = load<u64>(cp, 24);
      if (before(rd, rk, cd, ck)) {
        child++;
        cd = rd;
        ck = rk;
      }
    }
    if (!before(cd, ck, d, k)) break;
    put(i, cd, ck);
    i = child;
  }
  put(i, d, k);
}

/** True if one more entry fits without growing. */
// @ts-ignore: decorator
@inline export function heapHasRoom(): bool {
  return heapLength < heapCapacity;
}

/** Doubles the heap region (or grows it by one chunk if doubling does not fit).
 * Returns false, changing nothing, if memory is exhausted. */
export function heapGrow(): bool {
  let oldCapacity = heapCapacity;
  let p = regionGrowDoubling(heapBase, heapCapacity, ENTRY_SIZE, INITIAL_ENTRIES, <u64>TIMER_SLOTS);
  if (p == 0) return false;
  heapBase = p;
  heapCapacity = <u32>(grantedBytes / ENTRY_SIZE);
  // The pending timers stay at the top, counted from the end: their places hold.
  if (pendingCount != 0) {
    let bytes = <usize>pendingCount << 4;
    memory.copy(heapBase + (<usize>heapCapacity << 4) - bytes, heapBase + (<usize>oldCapacity << 4) - bytes, bytes);
  }
  return true;
}

/** The number of pending relative timers (pending.ts) at the top of the region. */
export let pendingCount: u32 = 0;

// @ts-ignore: decorator
@inline export function setPendingCount(n: u32): void {
  pendingCount = n;
}

/** Pending timer i, counted from the top of the region (0 is the last entry). */
// @ts-ignore: decorator
@inline export function pendingAt(i: u32): usize {
  return heapBase + (<usize>(heapCapacity - 1 - i) << 4);
}

/** Inserts an entry; the caller has checked `heapHasRoom()` and that `deadline` is not NaN. */
export function heapPush(deadline: f64, key: u64): void {
  siftUp(heapLength++, deadline, key);
}

/** The earliest deadline, or +Infinity when the heap is empty. */
// @ts-ignore: decorator
@inline export function heapMinDeadline(): f64 {
  return heapLength != 0 ? load<f64>(heapBase) : Infinity;
}

/** The key of the earliest entry; the caller has checked heapLength > 0. */
// @ts-ignore: decorator
@inline export function heapMinKey(): u64 {
  return load<u64>(heapBase, 8);
}

/** The deadline of entry i (< heapLength). */
// @ts-ignore: decorator
@inline export function heapDeadlineAt(i: u32): f64 {
  return load<f64>(heapBase + (<usize>i << 4));
}

/** Free space past the entries, for heapCapacity - heapLength - pendingCount entries
 * of 16 bytes. */
// @ts-ignore: decorator
@inline export function heapScratch(): usize {
  return heapBase + (<usize>heapLength << 4);
}

/** Removes the earliest entry and returns its slot; the caller has checked heapLength > 0. */
export function heapPop(): u32 {
  let slot = <u32>(load<u64>(heapBase, 8) & SLOT_MASK);
  let n = --heapLength;
  if (n != 0) {
    let lp = heapBase + (<usize>n << 4);
    siftDown(0, load<f64>(lp), load<u64>(lp, 8));
  }
  return slot;
}

/** Removes the entry at index `i` (< heapLength). The last entry fills the hole and
 * may belong above it or below it, so order is restored from the hole both ways. */
export function heapRemoveAt(i: u32): void {
  let n = --heapLength;
  if (i == n) return;
  let lp = heapBase + (<usize>n << 4);
  let d = load<f64>(lp);
  let k = load<u64>(lp, 8);
  if (i > 0) {
    let pp = heapBase + (<usize>((i - 1) >> 1) << 4);
    if (before(d, k, load<f64>(pp), load<u64>(pp, 8))) {
      siftUp(i, d, k);
      return;
    }
  }
  siftDown(i, d, k);
}
