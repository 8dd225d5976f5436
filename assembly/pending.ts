// Pending relative timers: started with a delay whose clock read is still to come.
//
// Reading the clock costs about 60 ns in Node (performance.now(), of which 30 ns
// are clock_gettime on this project's VM), a third of what `callLater` cost in W2
// before (bench/README.md). The runtime reads it for the first relative timer of
// a callback and leaves the rest of that callback's to one read taken when the
// callback returns: `timer_start_after(delay)` holds (delay, key) here, and
// `timers_commit(now)` gives each the deadline now + delay and hands it to the
// wheel. The read comes after every call it serves, so no timer fires before its
// delay has passed.
//
// Entries are 16 bytes (f64 delay, u64 key as the heap's) at the top of the heap's
// region, counted down from its last entry (heap.ts); the region has room for
// every timer slot, so holding one never allocates. A pending timer's place is
// PLACE_PENDING | i.
//
// Invariants
// - Entries 0 .. pendingCount-1 are the pending timers, and the slot of entry i
//   has place PLACE_PENDING | i.
// - They are in no order the wheel or the heap sees: timers_collect and
//   timer_next_deadline count them only once committed.

import { TIMER_SLOTS } from "./layout";
import { setSlotPlace, PLACE_PENDING } from "./timer-slots";
import { pendingCount, setPendingCount, pendingAt } from "./heap";
import { wheelInsert, wheelTryInsert } from "./wheel";

const SLOT_MASK: u64 = <u64>(TIMER_SLOTS - 1);

/** Holds (delay, key); the caller has made room (a slot, so heap room, is taken). */
export function pendingAdd(delay: f64, key: u64): void {
  let i = pendingCount;
  let p = pendingAt(i);
  store<f64>(p, delay);
  store<u64>(p, key, 8);
  setSlotPlace(<u32>(key & SLOT_MASK), PLACE_PENDING | i);
  setPendingCount(i + 1);
}

/** Drops pending entry i: the last entry takes its place. */
export function pendingRemove(i: u32): void {
  let n = pendingCount - 1;
  if (i != n) {
    let p = pendingAt(i);
    let q = pendingAt(n);
    let key = load<u64>(q, 8);
    store<f64>(p, load<f64>(q));
    store<u64>(p, key, 8);
    setSlotPlace(<u32>(key & SLOT_MASK), PLACE_PENDING | i);
  }
  setPendingCount(n);
}

/** Gives every pending timer its deadline now + delay, in the order started.
 * Returns how many. */
export function pendingCommit(now: f64): u32 {
  let n = pendingCount;
  // A push to the heap grows toward entries not read yet, so the timers that go to
  // the heap (out of the wheel's reach, or no chunk for their bucket) are kept in
  // the entries already read, and pushed once every entry is read.
  let aside: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    let p = pendingAt(i);
    let delay = load<f64>(p);
    let d = now + delay;
    // Infinities of opposite signs: the delay's decides, so no deadline is NaN.
    if (isNaN(d)) d = delay;
    let key = load<u64>(p, 8);
    if (wheelTryInsert(d, key)) continue;
    let q = pendingAt(aside++);
    store<f64>(q, d);
    store<u64>(q, key, 8);
  }
  setPendingCount(0);
  // The kept entries sit at the top, the lowest last, and the heap has room for
  // every timer: taken lowest first, each is read before a push can reach it.
  for (let i = aside; i > 0; i--) {
    let p = pendingAt(i - 1);
    wheelInsert(load<f64>(p), load<u64>(p, 8));
  }
  return n;
}
