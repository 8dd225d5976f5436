// The timer wheel: where pending timers wait, with O(1) start and stop, and the
// exact (deadline, sequence) order restored only for the buckets that come due.
//
// Why not only the heap: with a million timers of random delays the heap's pop is
// bound by cache misses, one per level for the entries and one more for the slot
// whose position changes (20 levels, about 500 ns a timer on this project's
// machine). A bucket is one contiguous run of entries, so filling it, sorting it
// when it comes due (a few hundred entries, in cache) and handing it to the due
// list touch memory in order.
//
// Time is cut into ticks of 1/4096 of the caller's unit (244 us of the runtime's
// seconds) and pages of 4096 ticks (one unit). With `cur` the cursor tick (the tick
// of the last collect's `now`) and `curPage` its page, a timer of tick t waits in
//   - the immediate bucket            if t < cur (a deadline already passed)
//   - level 0, bucket t % 4096        if t is in curPage
//   - level 1, bucket page % 4096     if its page is within 4095 pages after curPage
//   - the heap (heap.ts)              otherwise: further out, not finite, or when no
//                                     chunk could be had for its bucket
// A level-1 bucket is spread over level 0 (cascaded) when its page becomes
// curPage; heap entries that come within reach move into the wheel at the end of a
// collect. Each timer so moves at most twice.
//
// Buckets hold 16-byte entries (f64 deadline, u64 key = sequence << 24 | slot, as
// the heap's) in chunks of 32 entries, the first of which is the chunk's header
// (u32 prev chunk, u32 next chunk, u32 owning bucket). A bucket is a doubly linked
// list of chunks; its entries run from the first to the last (an entry index each),
// in order of insertion unless sorted. The slot's place is the entry's index
// `chunk * 32 + position`, so stopping a timer finds its entry at once.
//
// Stopping a timer pops it if it is its bucket's last entry (a timer started and
// stopped at once, the usual timeout, leaves nothing behind), and otherwise marks
// the entry dead (its deadline becomes NaN) where it lies; a bucket with more dead
// entries than live ones (and at least 32) is compacted. Marking rather than moving
// keeps a sorted bucket sorted, so stopping its earliest timer again and again (a
// queue of requests finishing in order) stays O(1).
//
// Invariants
// - Every entry of level-0 bucket b has tick cur - (cur % 4096) + b >= cur; every
//   entry of level-1 bucket p % 4096 has page p in (curPage, curPage + 4096); every
//   entry of the immediate bucket has tick < cur. So buckets in the order
//   immediate, level 0 from cur's bucket, level 1 from curPage + 1 hold ever later
//   deadlines, and the heap's entries are merged in by comparison as they come due.
// - A bucket's last entry is live, and `live` + `dead` count its entries.
// - A bucket is marked sorted only if its live entries are in (deadline, sequence)
//   order from head to tail.
// - A bit of occupancy0 / occupancy1 is set exactly when that bucket has entries.
// - wheelLive is the number of live entries in all buckets.
// - When minValid, minDeadline is the earliest deadline of the wheel and the heap.

import { TIMER_SLOTS } from "./layout";
import { regionGrow, regionGrowDoubling, grantedBytes } from "./memory";
import { setSlotPlace } from "./timer-slots";
import {
  heapLength, heapPush, heapPop, heapMinDeadline, heapMinKey, heapScratch, before,
} from "./heap";
import { dueAppend } from "./due";

const SLOT_MASK: u64 = <u64>(TIMER_SLOTS - 1);

/** Ticks per unit of the caller's clock (2^12: 244 us of the runtime's seconds). */
const TICKS_PER_UNIT: f64 = 4096.0;
const PAGE_BITS: i64 = 12;
/** Level-0 buckets: the ticks of one page. */
const L0: i32 = 4096;
const L0_MASK: i64 = 4095;
/** Level-1 buckets: pages. */
const L1: i32 = 4096;
const L1_MASK: i64 = 4095;
const IMMEDIATE: u32 = <u32>(L0 + L1);
const BUCKETS: u32 = IMMEDIATE + 1;
/** Deadlines at or past this (in the caller's unit) never enter the wheel, so that
 * every tick is an exact integer below 2^52. */
const TIME_LIMIT: f64 = 1099511627776.0; // 2^40

// Bucket headers: 16 bytes each. An entry index is chunk * 32 + position (1..31).
const BUCKET_SIZE: usize = 16;
/** u32: the index of the first entry, 0 when the bucket is empty. */
const H_FIRST: usize = 0;
/** u32: the index of the last entry (live). */
const H_LAST: usize = 4;
/** u32: live entries. */
const H_LIVE: usize = 8;
/** u32: dead entries, and SORTED in the top bit. */
const H_META: usize = 12;
const SORTED: u32 = 0x80000000;

// Chunks: 32 entries of 16 bytes, entry 0 the header.
const CHUNK_BITS: u32 = 5;
const CHUNK_ENTRIES: u32 = 32;
const POS_MASK: u32 = 31;
const CHUNK_BYTES: usize = 512;
const C_PREV: usize = 0;
const C_NEXT: usize = 4;
const C_OWNER: usize = 8;
const INITIAL_CHUNKS: u64 = 64;
/** Entry indices stay below PLACE_PENDING (2^28): at most 2^23 chunks, room for
 * 2^28 entries, more than TIMER_SLOTS (and 4 GiB of them). */
const MAX_CHUNKS: u64 = 1 << 23;
/** Compaction: a bucket with at least this many dead entries, and more dead than live. */
const COMPACT_DEAD: u32 = 32;

let bucketBase: usize = 0;
let chunkBase: usize = 0;
/** Chunks the region holds, and chunks handed out at least once (chunk 0 is never used). */
let chunkCapacity: u32 = 0;
let chunkCount: u32 = 1;
/** The first free chunk, 0 for none; free chunks are linked through C_NEXT. */
let freeChunks: u32 = 0;

const occupancy0: usize = memory.data(L0 >> 3, 16);
const occupancy1: usize = memory.data(L1 >> 3, 16);

let cur: i64 = 0;
let curPage: i64 = 0;

export let wheelLive: u32 = 0;
let minValid: bool = true;
let minDeadline: f64 = Infinity;

// ---------------------------------------------------------------- memory

/** Makes the bucket headers; false (nothing changes) if memory is exhausted. */
export function wheelInit(): bool {
  if (bucketBase != 0) return true;
  let bytes = <u64>BUCKETS * <u64>BUCKET_SIZE;
  let p = regionGrow(0, 0, bytes, bytes);
  if (p == 0) return false;
  bucketBase = p;
  return true;
}

// @ts-ignore: decorator
@inline function header(b: u32): usize {
  return bucketBase + <usize>b * BUCKET_SIZE;
}

// @ts-ignore: decorator
@inline function chunkAt(c: u32): usize {
  return chunkBase + (<usize>c << 9);
}

// @ts-ignore: decorator
@inline function entryAt(e: u32): usize {
  return chunkBase + (<usize>e << 4);
}

// @ts-ignore: decorator
@inline function nextChunk(c: u32): u32 {
  return load<u32>(chunkAt(c), C_NEXT);
}

/** The index of the entry after e in its bucket's chain (e is not the last). */
// @ts-ignore: decorator
@inline function stepEntry(e: u32): u32 {
  return (e & POS_MASK) != POS_MASK ? e + 1 : (nextChunk(e >> CHUNK_BITS) << CHUNK_BITS) | 1;
}

/** A chunk for bucket `owner`, or 0 if memory is exhausted. */
function allocChunk(owner: u32): u32 {
  let c = freeChunks;
  if (c != 0) {
    freeChunks = load<u32>(chunkAt(c), C_NEXT);
  } else {
    if (chunkCount >= chunkCapacity) {
      let p = regionGrowDoubling(chunkBase, chunkCapacity, CHUNK_BYTES, INITIAL_CHUNKS, MAX_CHUNKS);
      if (p == 0) return 0;
      chunkBase = p;
      chunkCapacity = <u32>(grantedBytes / CHUNK_BYTES);
    }
    c = chunkCount++;
  }
  let h = chunkAt(c);
  store<u32>(h, 0, C_PREV);
  store<u32>(h, 0, C_NEXT);
  store<u32>(h, owner, C_OWNER);
  return c;
}

// @ts-ignore: decorator
@inline function freeChunk(c: u32): void {
  store<u32>(chunkAt(c), freeChunks, C_NEXT);
  freeChunks = c;
}

/** Frees chunk c and every chunk after it in its chain. */
function freeChain(c: u32): void {
  while (c != 0) {
    let next = nextChunk(c);
    freeChunk(c);
    c = next;
  }
}

// ---------------------------------------------------------------- occupancy

// @ts-ignore: decorator
@inline function occupancyOf(b: u32): usize {
  return b < <u32>L0 ? occupancy0 + (<usize>(b >> 6) << 3) : occupancy1 + (<usize>((b - <u32>L0) >> 6) << 3);
}

// @ts-ignore: decorator
@inline function markOccupied(b: u32): void {
  if (b == IMMEDIATE) return;
  let w = occupancyOf(b);
  store<u64>(w, load<u64>(w) | (<u64>1 << <u64>(b & 63)));
}

// @ts-ignore: decorator
@inline function markEmpty(b: u32): void {
  if (b == IMMEDIATE) return;
  let w = occupancyOf(b);
  store<u64>(w, load<u64>(w) & ~(<u64>1 << <u64>(b & 63)));
}

/** The first occupied index in [from, to) of a 4096-bit map, or -1. */
function nextOccupied(map: usize, from: i32, to: i32): i32 {
  while (from < to) {
    let word = load<u64>(map + (<usize>(from >> 6) << 3)) >> <u64>(from & 63);
    if (word != 0) {
      let i = from + <i32>ctz(word);
      return i < to ? i : -1;
    }
    from = (from | 63) + 1;
  }
  return -1;
}

// ---------------------------------------------------------------- buckets

/** Frees a bucket's chunks and marks it empty. */
function resetBucket(b: u32): void {
  let h = header(b);
  freeChain(load<u32>(h, H_FIRST) >> CHUNK_BITS);
  store<u64>(h, 0);
  store<u64>(h, 0, 8);
  markEmpty(b);
}

/** Appends an entry to bucket b and sets its slot's place. False, changing nothing
 * but the sorted mark, if the bucket needs a chunk and none can be had. */
function bucketAppend(b: u32, d: f64, k: u64): bool {
  let h = header(b);
  let e: u32;
  let meta: u32;
  if (load<u32>(h, H_FIRST) == 0) {
    let c = allocChunk(b);
    if (c == 0) return false;
    e = (c << CHUNK_BITS) | 1;
    store<u32>(h, e, H_FIRST);
    meta = SORTED;
    markOccupied(b);
  } else {
    let last = load<u32>(h, H_LAST);
    // The last entry is live (an invariant): the bucket stays sorted if the new
    // entry does not come before it.
    meta = load<u32>(h, H_META);
    let lp = entryAt(last);
    if (before(d, k, load<f64>(lp), load<u64>(lp, 8))) meta &= ~SORTED;
    if ((last & POS_MASK) != POS_MASK) {
      e = last + 1;
    } else {
      let tail = last >> CHUNK_BITS;
      let c = allocChunk(b);
      if (c == 0) {
        store<u32>(h, meta, H_META);
        return false;
      }
      store<u32>(chunkAt(tail), c, C_NEXT);
      store<u32>(chunkAt(c), tail, C_PREV);
      e = (c << CHUNK_BITS) | 1;
    }
  }
  let p = entryAt(e);
  store<f64>(p, d);
  store<u64>(p, k, 8);
  setSlotPlace(<u32>(k & SLOT_MASK), e);
  store<u32>(h, e, H_LAST);
  store<u32>(h, load<u32>(h, H_LIVE) + 1, H_LIVE);
  store<u32>(h, meta, H_META);
  return true;
}

/** Copies bucket b's live entries, in bucket order, to `dst`; returns how many. */
function gather(b: u32, dst: usize): u32 {
  let h = header(b);
  let e = load<u32>(h, H_FIRST);
  let last = load<u32>(h, H_LAST);
  let n: u32 = 0;
  while (true) {
    // The run of entries in e's chunk up to the chunk's end or the last entry.
    let c = e >> CHUNK_BITS;
    let end = (last >> CHUNK_BITS) == c ? last + 1 : (c << CHUNK_BITS) + CHUNK_ENTRIES;
    let p = entryAt(e);
    let stop = entryAt(end);
    while (p < stop) {
      let d = load<f64>(p);
      if (!isNaN(d)) {
        let q = dst + (<usize>n << 4);
        store<f64>(q, d);
        store<u64>(q, load<u64>(p, 8), 8);
        n++;
      }
      p += 16;
    }
    if ((last >> CHUNK_BITS) == c) break;
    e = (nextChunk(c) << CHUNK_BITS) | 1;
  }
  return n;
}

/** Rewrites bucket b to hold exactly the r entries at `src` (r > 0, no more than the
 * entries it holds now), from the start of its first chunk, freeing the chunks left
 * over. Sets every moved slot's place. */
function writeBack(b: u32, src: usize, r: u32, sorted: bool): void {
  let h = header(b);
  let c = load<u32>(h, H_FIRST) >> CHUNK_BITS;
  let e = (c << CHUNK_BITS) | 1;
  store<u32>(h, e, H_FIRST);
  for (let i: u32 = 0; i < r; i++) {
    if (i != 0) e = stepEntry(e);
    let q = src + (<usize>i << 4);
    let d = load<f64>(q);
    let k = load<u64>(q, 8);
    let p = entryAt(e);
    store<f64>(p, d);
    store<u64>(p, k, 8);
    setSlotPlace(<u32>(k & SLOT_MASK), e);
  }
  let tail = e >> CHUNK_BITS;
  freeChain(nextChunk(tail));
  store<u32>(chunkAt(tail), 0, C_NEXT);
  store<u32>(h, e, H_LAST);
  store<u32>(h, r, H_LIVE);
  store<u32>(h, sorted ? SORTED : 0, H_META);
}

/** Squeezes bucket b's dead entries out, keeping the order of the live ones. */
function compact(b: u32): void {
  let scratch = heapScratch();
  let n = gather(b, scratch);
  writeBack(b, scratch, n, (load<u32>(header(b), H_META) & SORTED) != 0);
}

/** Moves the first entry of bucket b past its first e, freeing the chunks left
 * behind; e is not beyond the last entry. */
function setFirst(b: u32, e: u32): void {
  let h = header(b);
  let oldChunk = load<u32>(h, H_FIRST) >> CHUNK_BITS;
  let c = e >> CHUNK_BITS;
  while (oldChunk != c) {
    let next = nextChunk(oldChunk);
    freeChunk(oldChunk);
    oldChunk = next;
  }
  store<u32>(chunkAt(c), 0, C_PREV);
  store<u32>(h, e, H_FIRST);
}

/** Drops dead entries at the head of a sorted bucket, whose last entry is live. */
function skipDeadHead(b: u32): void {
  let h = header(b);
  let e = load<u32>(h, H_FIRST);
  if (!isNaN(load<f64>(entryAt(e)))) return;
  let meta = load<u32>(h, H_META);
  while (isNaN(load<f64>(entryAt(e)))) {
    meta--;
    e = stepEntry(e);
  }
  store<u32>(h, meta, H_META);
  setFirst(b, e);
}

/** The earliest deadline in a bucket with live entries. */
function bucketMin(b: u32): f64 {
  let h = header(b);
  if ((load<u32>(h, H_META) & SORTED) != 0) {
    skipDeadHead(b);
    return load<f64>(entryAt(load<u32>(h, H_FIRST)));
  }
  let m: f64 = Infinity;
  let e = load<u32>(h, H_FIRST);
  let last = load<u32>(h, H_LAST);
  while (true) {
    let c = e >> CHUNK_BITS;
    let end = (last >> CHUNK_BITS) == c ? last + 1 : (c << CHUNK_BITS) + CHUNK_ENTRIES;
    for (let i = e; i < end; i++) {
      let d = load<f64>(entryAt(i));
      // False for NaN: dead entries are passed over.
      if (d < m) m = d;
    }
    if ((last >> CHUNK_BITS) == c) break;
    e = (nextChunk(c) << CHUNK_BITS) | 1;
  }
  return m;
}

// ---------------------------------------------------------------- sorting

// @ts-ignore: decorator
@inline function entryBefore(p: usize, q: usize): bool {
  return before(load<f64>(p), load<u64>(p, 8), load<f64>(q), load<u64>(q, 8));
}

// @ts-ignore: decorator
@inline function swapEntries(p: usize, q: usize): void {
  let d = load<f64>(p);
  let k = load<u64>(p, 8);
  store<f64>(p, load<f64>(q));
  store<u64>(p, load<u64>(q, 8), 8);
  store<f64>(q, d);
  store<u64>(q, k, 8);
}

function insertionSort(base: usize, n: u32): void {
  for (let i: u32 = 1; i < n; i++) {
    let p = base + (<usize>i << 4);
    let d = load<f64>(p);
    let k = load<u64>(p, 8);
    let j = i;
    while (j > 0) {
      let q = base + (<usize>(j - 1) << 4);
      let qd = load<f64>(q);
      let qk = load<u64>(q, 8);
      if (!before(d, k, qd, qk)) break;
      store<f64>(q, qd, 16);
      store<u64>(q, qk, 24);
      j--;
    }
    let r = base + (<usize>j << 4);
    store<f64>(r, d);
    store<u64>(r, k, 8);
  }
}

function siftDownRange(base: usize, i: u32, n: u32): void {
  while (true) {
    let child = (i << 1) + 1;
    if (child >= n) return;
    let cp = base + (<usize>child << 4);
    if (child + 1 < n && entryBefore(cp, cp + 16)) {
      child++;
      cp += 16;
    }
    let ip = base + (<usize>i << 4);
    if (!entryBefore(ip, cp)) return;
    swapEntries(ip, cp);
    i = child;
  }
}

/** Heapsort: the fallback that bounds quicksort's worst case. */
function heapSort(base: usize, n: u32): void {
  if (n < 2) return;
  // A max-heap under `before`, so the largest moves to the end.
  for (let i = (n >> 1); i > 0; i--) siftDownRange(base, i - 1, n);
  for (let end = n - 1; end > 0; end--) {
    swapEntries(base, base + (<usize>end << 4));
    siftDownRange(base, 0, end);
  }
}

/** Sorts n entries at `base` by (deadline, sequence): quicksort with a median of
 * three, insertion sort for short runs, heapsort past a depth of 2 log2 n. Keys are
 * distinct (a sequence is never reused while its timer is pending), so the order
 * is total and no entries compare equal. */
function sortRange(base: usize, n: u32, depth: i32): void {
  while (n > 16) {
    if (depth == 0) {
      heapSort(base, n);
      return;
    }
    depth--;
    let lo = base;
    let mid = base + (<usize>(n >> 1) << 4);
    let hi = base + (<usize>(n - 1) << 4);
    if (entryBefore(mid, lo)) swapEntries(mid, lo);
    if (entryBefore(hi, mid)) {
      swapEntries(hi, mid);
      if (entryBefore(mid, lo)) swapEntries(mid, lo);
    }
    // The pivot is the median; lo <= pivot <= hi already, so the scans stop in range.
    let pd = load<f64>(mid);
    let pk = load<u64>(mid, 8);
    let i = lo;
    let j = hi;
    while (true) {
      do i += 16; while (before(load<f64>(i), load<u64>(i, 8), pd, pk));
      do j -= 16; while (before(pd, pk, load<f64>(j), load<u64>(j, 8)));
      if (i >= j) break;
      swapEntries(i, j);
    }
    // [base, j] <= pivot <= [j + 16, end): recurse into the smaller side.
    let left = <u32>((j - base) >> 4) + 1;
    let right = n - left;
    if (left < right) {
      sortRange(base, left, depth);
      base = j + 16;
      n = right;
    } else {
      sortRange(j + 16, right, depth);
      n = left;
    }
  }
  insertionSort(base, n);
}

function sortEntries(base: usize, n: u32): void {
  sortRange(base, n, 2 * (32 - <i32>clz(n)));
}

/** Sub-buckets of the radix pass: counts, then starts, of up to 2^RADIX_BITS. */
const RADIX_BITS: i32 = 12;
const radixCounts: usize = memory.data(4 << RADIX_BITS, 16);

/**
 * Copies bucket b's live entries to `dst` in (deadline, sequence) order; returns
 * how many. Positive doubles order as their bit patterns do, so when every deadline
 * is positive one counting pass over the top bits of (bits - min bits) scatters the
 * entries straight from the chunks into sub-buckets of about one entry each, and an
 * insertion sort finishes; the random deadlines of W1 cost 64 ns a timer in the
 * quicksort, which branches on every comparison. Otherwise (a deadline <= 0, or a
 * sub-bucket of more than 32 entries) the comparison sort does it.
 */
function sortedGather(b: u32, dst: usize): u32 {
  let h = header(b);
  let n = load<u32>(h, H_LIVE);
  let first = load<u32>(h, H_FIRST);
  let last = load<u32>(h, H_LAST);
  let lo: u64 = <u64>-1;
  let hi: u64 = 0;
  let e = first;
  // Pass 1: the range of the deadlines' bits. Any deadline <= 0 (or -Infinity) has
  // its sign bit set or is zero; +Infinity sorts right as bits. NaN marks dead ones.
  let positive = true;
  while (true) {
    let c = e >> CHUNK_BITS;
    let end = (last >> CHUNK_BITS) == c ? last + 1 : (c << CHUNK_BITS) + CHUNK_ENTRIES;
    for (let i = e; i < end; i++) {
      let d = load<f64>(entryAt(i));
      if (isNaN(d)) continue;
      if (!(d > 0)) positive = false;
      let bits = reinterpret<u64>(d);
      if (bits < lo) lo = bits;
      if (bits > hi) hi = bits;
    }
    if ((last >> CHUNK_BITS) == c) break;
    e = (nextChunk(c) << CHUNK_BITS) | 1;
  }
  if (!positive || n <= 32) {
    let m = gather(b, dst);
    sortEntries(dst, m);
    return m;
  }
  let radix = min<i32>(RADIX_BITS, 32 - <i32>clz(n - 1));
  let width = 64 - <i32>clz(hi - lo);
  let shift = <u64>max<i32>(0, width - radix);
  let buckets = 1 << radix;
  memory.fill(radixCounts, 0, <usize>buckets << 2);
  // Pass 2: counts per sub-bucket.
  e = first;
  while (true) {
    let c = e >> CHUNK_BITS;
    let end = (last >> CHUNK_BITS) == c ? last + 1 : (c << CHUNK_BITS) + CHUNK_ENTRIES;
    for (let i = e; i < end; i++) {
      let d = load<f64>(entryAt(i));
      if (isNaN(d)) continue;
      let q = radixCounts + (<usize>((reinterpret<u64>(d) - lo) >> shift) << 2);
      store<u32>(q, load<u32>(q) + 1);
    }
    if ((last >> CHUNK_BITS) == c) break;
    e = (nextChunk(c) << CHUNK_BITS) | 1;
  }
  // Counts to starts; note the largest sub-bucket.
  let sum: u32 = 0;
  let most: u32 = 0;
  for (let i = 0; i < buckets; i++) {
    let q = radixCounts + (<usize>i << 2);
    let count = load<u32>(q);
    if (count > most) most = count;
    store<u32>(q, sum);
    sum += count;
  }
  // Pass 3: scatter, keeping chain order within a sub-bucket.
  e = first;
  while (true) {
    let c = e >> CHUNK_BITS;
    let end = (last >> CHUNK_BITS) == c ? last + 1 : (c << CHUNK_BITS) + CHUNK_ENTRIES;
    for (let i = e; i < end; i++) {
      let p = entryAt(i);
      let d = load<f64>(p);
      if (isNaN(d)) continue;
      let q = radixCounts + (<usize>((reinterpret<u64>(d) - lo) >> shift) << 2);
      let at = load<u32>(q);
      store<u32>(q, at + 1);
      let r = dst + (<usize>at << 4);
      store<f64>(r, d);
      store<u64>(r, load<u64>(p, 8), 8);
    }
    if ((last >> CHUNK_BITS) == c) break;
    e = (nextChunk(c) << CHUNK_BITS) | 1;
  }
  // Entries of different sub-buckets are in order already.
  if (most <= 32) {
    insertionSort(dst, n);
  } else {
    let start: u32 = 0;
    for (let i = 0; i < buckets; i++) {
      // After the scatter each start has moved to the next sub-bucket's start.
      let next = load<u32>(radixCounts + (<usize>i << 2));
      if (next - start > 1) sortEntries(dst + (<usize>start << 4), next - start);
      start = next;
    }
  }
  return n;
}

// ---------------------------------------------------------------- emission

/** Hands (d, k) to the due list, after every heap entry that comes before it. */
// @ts-ignore: decorator
@inline function emit(d: f64, k: u64): void {
  while (heapLength != 0) {
    if (!before(heapMinDeadline(), heapMinKey(), d, k)) break;
    dueAppend(heapPop());
  }
  dueAppend(<u32>(k & SLOT_MASK));
}

/** Hands bucket b's entries to the due list in order: all of them, or with
 * `partial` only those with deadline <= now. The rest stays, sorted. */
function emitBucket(b: u32, now: f64, partial: bool): void {
  let h = header(b);
  let live = load<u32>(h, H_LIVE);
  if (live == 0) return;
  let meta = load<u32>(h, H_META);
  if ((meta & SORTED) != 0) {
    let e = load<u32>(h, H_FIRST);
    let last = load<u32>(h, H_LAST);
    let taken: u32 = 0;
    while (true) {
      let p = entryAt(e);
      let d = load<f64>(p);
      if (isNaN(d)) {
        meta--;
      } else {
        if (partial && d > now) break;
        emit(d, load<u64>(p, 8));
        taken++;
      }
      if (e == last) {
        wheelLive -= taken;
        resetBucket(b);
        return;
      }
      e = stepEntry(e);
    }
    wheelLive -= taken;
    store<u32>(h, live - taken, H_LIVE);
    store<u32>(h, meta, H_META);
    setFirst(b, e);
    return;
  }
  let scratch = heapScratch();
  let n = sortedGather(b, scratch);
  let k: u32 = n;
  if (partial) {
    k = 0;
    while (k < n && load<f64>(scratch + (<usize>k << 4)) <= now) k++;
  }
  for (let i: u32 = 0; i < k; i++) {
    let q = scratch + (<usize>i << 4);
    emit(load<f64>(q), load<u64>(q, 8));
  }
  wheelLive -= k;
  if (k == n) resetBucket(b);
  else writeBack(b, scratch + (<usize>k << 4), n - k, true);
}

/** Emits level-0 buckets [from, to) whole. */
function emitLevel0(from: i32, to: i32): void {
  while (true) {
    let i = nextOccupied(occupancy0, from, to);
    if (i < 0) return;
    emitBucket(<u32>i, 0, false);
    from = i + 1;
  }
}

/** Emits the level-1 buckets of pages (curPage, last] whole, in page order. */
function emitPages(last: i64): void {
  let count = last - curPage;
  if (count <= 0) return;
  let start = <i32>((curPage + 1) & L1_MASK);
  let first = <i32>min<i64>(count, <i64>(L1 - start));
  emitLevel1Run(start, start + first);
  if (count > <i64>first) emitLevel1Run(0, <i32>(count - <i64>first));
}

function emitLevel1Run(from: i32, to: i32): void {
  while (true) {
    let i = nextOccupied(occupancy1, from, to);
    if (i < 0) return;
    emitBucket(<u32>(L0 + i), 0, false);
    from = i + 1;
  }
}

// ---------------------------------------------------------------- placement

/** Puts (d, k) in its bucket. False, with nothing changed, if it belongs to the
 * heap (out of the wheel's reach) or its bucket could not have a chunk. */
function placeInWheel(d: f64, k: u64): bool {
  let b: u32 = IMMEDIATE;
  if (d >= -TIME_LIMIT && d < TIME_LIMIT) {
    let t = <i64>Math.floor(d * TICKS_PER_UNIT);
    if (t >= cur) {
      let page = t >> PAGE_BITS;
      if (page == curPage) b = <u32>(t & L0_MASK);
      else if (page - curPage < <i64>L1) b = <u32>L0 + <u32>(page & L1_MASK);
      else b = BUCKETS;
    }
  } else if (!(d < 0)) {
    b = BUCKETS;
  }
  if (b == BUCKETS || !bucketAppend(b, d, k)) return false;
  wheelLive++;
  return true;
}

/** Moves a level-1 bucket, whose page has become curPage, into level 0. */
function cascade(b: u32): void {
  let h = header(b);
  let live = load<u32>(h, H_LIVE);
  if (live == 0) return;
  let e = load<u32>(h, H_FIRST);
  let last = load<u32>(h, H_LAST);
  wheelLive -= live;
  store<u64>(h, 0);
  store<u64>(h, 0, 8);
  markEmpty(b);
  while (true) {
    let c = e >> CHUNK_BITS;
    let end = (last >> CHUNK_BITS) == c ? last + 1 : (c << CHUNK_BITS) + CHUNK_ENTRIES;
    for (let i = e; i < end; i++) {
      let p = entryAt(i);
      let d = load<f64>(p);
      if (!isNaN(d)) {
        let k = load<u64>(p, 8);
        if (!placeInWheel(d, k)) heapPush(d, k);
      }
    }
    let next = nextChunk(c);
    // Freed as soon as it is read, so level 0 can reuse it at once.
    freeChunk(c);
    if ((last >> CHUNK_BITS) == c) break;
    e = (next << CHUNK_BITS) | 1;
  }
}

/** Moves the heap's earliest entries into the wheel while they are within its
 * reach; stops when memory for a chunk runs out. */
function migrate(): void {
  while (heapLength != 0) {
    let d = heapMinDeadline();
    if (!(d >= -TIME_LIMIT && d < TIME_LIMIT)) return;
    let t = <i64>Math.floor(d * TICKS_PER_UNIT);
    if (t < cur || (t >> PAGE_BITS) - curPage >= <i64>L1) return;
    let k = heapMinKey();
    heapPop();
    if (!placeInWheel(d, k)) {
      heapPush(d, k);
      return;
    }
  }
}

// ---------------------------------------------------------------- the operations

/** Starts tracking a timer (its key holds the slot) in the wheel, or else the heap;
 * sets the slot's place. */
export function wheelInsert(d: f64, k: u64): void {
  if (!placeInWheel(d, k)) heapPush(d, k);
  if (minValid && d < minDeadline) minDeadline = d;
}

/** As wheelInsert, but returns false, changing nothing, where it would push to the heap. */
export function wheelTryInsert(d: f64, k: u64): bool {
  if (!placeInWheel(d, k)) return false;
  if (minValid && d < minDeadline) minDeadline = d;
  return true;
}

/** Stops the timer whose entry is e. */
export function wheelRemove(e: u32): void {
  let b = load<u32>(chunkAt(e >> CHUNK_BITS), C_OWNER);
  let h = header(b);
  let p = entryAt(e);
  if (load<f64>(p) == minDeadline) minValid = false;
  wheelLive--;
  let live = load<u32>(h, H_LIVE) - 1;
  if (live == 0) {
    resetBucket(b);
    return;
  }
  store<u32>(h, live, H_LIVE);
  let last = load<u32>(h, H_LAST);
  let meta = load<u32>(h, H_META);
  if (e != last) {
    store<f64>(p, NaN);
    meta++;
    store<u32>(h, meta, H_META);
    let dead = meta & ~SORTED;
    if (dead >= COMPACT_DEAD && dead > live) compact(b);
    return;
  }
  // The last entry: pop it, and the dead entries before it, so the last stays live.
  // A live entry remains, so this stops within the bucket.
  while (true) {
    if ((last & POS_MASK) == 1) {
      let c = last >> CHUNK_BITS;
      let prev = load<u32>(chunkAt(c), C_PREV);
      freeChunk(c);
      store<u32>(chunkAt(prev), 0, C_NEXT);
      last = (prev << CHUNK_BITS) | POS_MASK;
    } else {
      last--;
    }
    if (!isNaN(load<f64>(entryAt(last)))) break;
    meta--;
  }
  store<u32>(h, last, H_LAST);
  store<u32>(h, meta, H_META);
}

/** A heap timer with deadline d was stopped. */
// @ts-ignore: decorator
@inline export function wheelHeapRemoved(d: f64): void {
  if (d == minDeadline) minValid = false;
}

/** The earliest deadline of every pending timer not yet collected, or +Infinity. */
export function wheelMin(): f64 {
  // Valid from the start: with no bucket headers yet there is no timer.
  if (minValid) return minDeadline;
  let m: f64 = Infinity;
  if (load<u32>(header(IMMEDIATE), H_LIVE) != 0) {
    m = bucketMin(IMMEDIATE);
  } else {
    let i = nextOccupied(occupancy0, <i32>(cur & L0_MASK), L0);
    if (i >= 0) {
      m = bucketMin(<u32>i);
    } else {
      let start = <i32>((curPage + 1) & L1_MASK);
      let j = nextOccupied(occupancy1, start, L1);
      if (j < 0) j = nextOccupied(occupancy1, 0, start);
      if (j >= 0) m = bucketMin(<u32>(L0 + j));
    }
  }
  let hm = heapMinDeadline();
  if (hm < m) m = hm;
  minDeadline = m;
  minValid = true;
  return m;
}

/**
 * Hands every pending timer with deadline <= now to the due list (due.ts), in
 * (deadline, sequence) order, and moves the cursor to now. The caller has made room
 * in the due list and checked that now is not NaN.
 */
export function wheelCollect(now: f64): void {
  if (bucketBase == 0) return;
  // With nothing due the set of timers stays, and so does its earliest deadline;
  // only the cursor may move.
  let nothingDue = minValid && minDeadline > now;
  if (nothingDue && !(now >= -TIME_LIMIT && now < TIME_LIMIT && <i64>Math.floor(now * TICKS_PER_UNIT) > cur)) return;
  minValid = false;
  // Deadlines before the cursor's tick come first.
  emitBucket(IMMEDIATE, now, true);
  if (now >= TIME_LIMIT) {
    // Everything in the wheel is due; the cursor stays, as a tick this far out is
    // not exact.
    emitLevel0(<i32>(cur & L0_MASK), L0);
    emitPages(curPage + <i64>L1 - 1);
  } else if (now >= -TIME_LIMIT) {
    let nowTick = <i64>Math.floor(now * TICKS_PER_UNIT);
    if (nowTick > cur) {
      let nowPage = nowTick >> PAGE_BITS;
      if (nowPage == curPage) {
        emitLevel0(<i32>(cur & L0_MASK), <i32>(nowTick & L0_MASK));
      } else {
        emitLevel0(<i32>(cur & L0_MASK), L0);
        emitPages(min<i64>(nowPage - 1, curPage + <i64>L1 - 1));
        let oldPage = curPage;
        curPage = nowPage;
        cur = nowPage << PAGE_BITS;
        if (nowPage - oldPage < <i64>L1) cascade(<u32>L0 + <u32>(nowPage & L1_MASK));
        emitLevel0(0, <i32>(nowTick & L0_MASK));
      }
      cur = nowTick;
    }
    if (nowTick == cur) emitBucket(<u32>(cur & L0_MASK), now, true);
  }
  while (heapLength != 0 && heapMinDeadline() <= now) dueAppend(heapPop());
  migrate();
  if (nothingDue) minValid = true;
}
