// Regions: the growable arrays of the core, carved from linear memory by hand.
//
// Invariants
// - Every array of the core (timer heap, timer slots, due list, wheel buckets and
//   chunks, fd table, handler slots) is one region: a base address and a capacity
//   in bytes, both multiples of 16, kept by the array's owner. Static data (the
//   ready buffer, the slot tables' state) lies below `__heap_base`; regions lie at
//   or above it.
// - `top` is the first byte that no region uses. Regions are handed out from the
//   free blocks or by bumping `top`; every byte at or above `top` is still the zero
//   that `memory.grow` produced.
// - The free blocks are the space regions left behind when they moved: at most
//   MAX_FREE_BLOCKS of them, sorted by address, none touching another or `top`.
// - No function here traps or aborts. A request that would need more pages than
//   `pageLimit` (at most the module's declared maximum, 65536 pages = 4 GiB), or
//   that `memory.grow` refuses, returns 0 and leaves every region as it was.
//
// Why not the runtime's allocator: the core never allocates an object. It owns
// five arrays that only ever grow by doubling. The `stub` runtime's bump allocator
// and the `minimal` runtime's TLSF both call `unreachable()` when `memory.grow`
// fails, and pre-checking TLSF (which grows memory by the larger of what it needs
// and what it already has) means reimplementing its policy. A bump pointer that
// checks `memory.grow` itself is shorter than either workaround. An array that
// moves leaves its old region behind as a free block, which a later region takes
// (zeroed), or which the region just before it grows into. Without that reuse the
// 4 MiB memory of test/core-limits.test.ts held 32,768 timers; with it, 56,320
// (the timer slots, due list, heap and wheel chunks all grow by doubling, and each
// move used to strand what had been live). An array that is the last region grows
// in place without a copy.

/** Bytes in a WebAssembly page. */
const PAGE_BITS: u64 = 16;

/** Pages the module may ever have; asconfig.json declares the same maximum. */
const MAX_PAGES: i32 = 65536;

/** Region bases and sizes are multiples of this, so f64 and u64 fields stay aligned. */
const ALIGN: u64 = 16;

/** The first byte that no region uses, or 0 before the first region. */
let top: u64 = 0;

/** The most pages regions may make the memory span (a test can lower it). */
let pageLimit: i32 = MAX_PAGES;

/** Capacity in bytes of the region returned by the last successful `regionGrow`. */
export let grantedBytes: usize = 0;

/** Free blocks: (start, size) pairs of u64, sorted by start. When the table is
 * full the smallest block is dropped (its bytes are lost, as before reuse). */
const MAX_FREE_BLOCKS: i32 = 32;
const freeBlocks: usize = memory.data(MAX_FREE_BLOCKS * 16, 16);
let freeCount: i32 = 0;

// @ts-ignore: decorator
@inline function blockStart(i: i32): u64 {
  return load<u64>(freeBlocks + (<usize>i << 4));
}

// @ts-ignore: decorator
@inline function blockSize(i: i32): u64 {
  return load<u64>(freeBlocks + (<usize>i << 4), 8);
}

// @ts-ignore: decorator
@inline function setBlock(i: i32, start: u64, size: u64): void {
  store<u64>(freeBlocks + (<usize>i << 4), start);
  store<u64>(freeBlocks + (<usize>i << 4), size, 8);
}

function removeBlock(i: i32): void {
  for (let j = i; j + 1 < freeCount; j++) setBlock(j, blockStart(j + 1), blockSize(j + 1));
  freeCount--;
}

/** Gives [start, start + size) back: merged with its neighbours, or returned to
 * `top` (zeroed, so the invariant of `top` holds) when it ends there. */
function release(start: u64, size: u64): void {
  if (size == 0) return;
  let i = 0;
  while (i < freeCount && blockStart(i) < start) i++;
  // Merge with the block before and the block after.
  if (i > 0 && blockStart(i - 1) + blockSize(i - 1) == start) {
    i--;
    start = blockStart(i);
    size += blockSize(i);
    removeBlock(i);
  }
  if (i < freeCount && start + size == blockStart(i)) {
    size += blockSize(i);
    removeBlock(i);
  }
  if (start + size == top) {
    memory.fill(<usize>start, 0, <usize>size);
    top = start;
    return;
  }
  if (freeCount == MAX_FREE_BLOCKS) {
    let smallest = 0;
    for (let j = 1; j < freeCount; j++) if (blockSize(j) < blockSize(smallest)) smallest = j;
    if (blockSize(smallest) >= size) return;
    removeBlock(smallest);
    if (smallest < i) i--;
  }
  for (let j = freeCount; j > i; j--) setBlock(j, blockStart(j - 1), blockSize(j - 1));
  setBlock(i, start, size);
  freeCount++;
}

/** Takes the first `bytes` of the free block that starts at `start`, zeroed; false
 * if no free block starts there or it is too small. */
function growIntoFreeBlock(start: u64, bytes: u64): bool {
  for (let i = 0; i < freeCount; i++) {
    if (blockStart(i) != start) continue;
    let size = blockSize(i);
    if (size < bytes) return false;
    if (size == bytes) removeBlock(i);
    else setBlock(i, start + bytes, size - bytes);
    memory.fill(<usize>start, 0, <usize>bytes);
    return true;
  }
  return false;
}

/** The start of a free block of at least `bytes`, taken (first fit), or 0. */
function takeBlock(bytes: u64): u64 {
  for (let i = 0; i < freeCount; i++) {
    let size = blockSize(i);
    if (size < bytes) continue;
    let start = blockStart(i);
    if (size == bytes) removeBlock(i);
    else setBlock(i, start + bytes, size - bytes);
    return start;
  }
  return 0;
}

// @ts-ignore: decorator
@inline function alignUp(n: u64): u64 {
  return (n + (ALIGN - 1)) & ~(ALIGN - 1);
}

/** Makes the memory span at least `end` bytes; false (and nothing changes) if it
 * cannot, either because of `pageLimit` or because `memory.grow` refused. */
function ensureSpan(end: u64): bool {
  if (end > (<u64>pageLimit << PAGE_BITS)) return false;
  let needed = <i32>((end + ((1 << PAGE_BITS) - 1)) >> PAGE_BITS);
  let current = memory.size();
  if (needed > current) {
    if (memory.grow(needed - current) < 0) return false;
  }
  return true;
}

/** Moves or extends a region to exactly `bytes` bytes (already aligned), keeping
 * its first `oldBytes`. Returns the new base, or 0 with nothing changed. */
function resize(base: usize, oldBytes: usize, bytes: u64): usize {
  if (top == 0) top = alignUp(<u64>__heap_base);
  if (base != 0 && <u64>base + <u64>oldBytes == top) {
    // The last region: extend it where it is.
    let end = <u64>base + bytes;
    if (!ensureSpan(end)) return 0;
    top = end;
    return base;
  }
  if (base != 0 && growIntoFreeBlock(<u64>base + <u64>oldBytes, bytes - <u64>oldBytes)) return base;
  let fresh = takeBlock(bytes);
  if (fresh != 0) {
    // A free block holds old bytes: past what is copied, the region must read zero.
    if (oldBytes != 0) memory.copy(<usize>fresh, base, oldBytes);
    memory.fill(<usize>fresh + oldBytes, 0, <usize>(bytes - <u64>oldBytes));
  } else {
    fresh = top;
    let end = fresh + bytes;
    if (!ensureSpan(end)) return 0;
    if (oldBytes != 0) memory.copy(<usize>fresh, base, oldBytes);
    top = end;
  }
  if (base != 0) release(<u64>base, <u64>oldBytes);
  return <usize>fresh;
}

/**
 * Grows the region at `base` (0 for none yet) of capacity `oldBytes` to `wantBytes`,
 * or, if that does not fit, to `needBytes` (`needBytes <= wantBytes`). Contents up
 * to `oldBytes` are kept; bytes past them are zero. Returns the new base and sets
 * `grantedBytes` to its capacity; returns 0 and changes nothing if neither fits.
 * Sizes are u64 so that a request past 4 GiB is refused rather than wrapped.
 */
export function regionGrow(base: usize, oldBytes: usize, wantBytes: u64, needBytes: u64): usize {
  let want = alignUp(wantBytes);
  let p = resize(base, oldBytes, want);
  if (p == 0) {
    let need = alignUp(needBytes);
    if (need >= want) return 0;
    want = need;
    p = resize(base, oldBytes, want);
    if (p == 0) return 0;
  }
  grantedBytes = <usize>want;
  return p;
}

/**
 * Grows an array of `capacity` records of `recordBytes` each: doubles it (from
 * `initial` records, at most `limit`), or, if doubling does not fit, grows it by
 * half, by a quarter, or by one chunk of `initial` records. Returns the new base,
 * with `grantedBytes` set, or 0 with nothing changed if none fits.
 */
export function regionGrowDoubling(base: usize, capacity: u32, recordBytes: usize, initial: u64, limit: u64): usize {
  let want = max<u64>(initial, <u64>capacity * 2);
  if (want > limit) want = limit;
  let need = min<u64>(<u64>capacity + initial, want);
  let oldBytes = <usize>capacity * recordBytes;
  // Near the memory limit a doubling may not fit where half as much again still
  // does: try 1.5x and 1.25x before one chunk of `initial`.
  let p = regionGrow(base, oldBytes, want * <u64>recordBytes, want * <u64>recordBytes);
  if (p != 0) return p;
  for (let step: u64 = 1; step <= 2; step++) {
    let mid = <u64>capacity + (<u64>capacity >> step);
    if (mid > need && mid < want) {
      p = regionGrow(base, oldBytes, mid * <u64>recordBytes, mid * <u64>recordBytes);
      if (p != 0) return p;
    }
  }
  return regionGrow(base, oldBytes, need * <u64>recordBytes, need * <u64>recordBytes);
}

/**
 * Caps the pages that regions may make the memory span, so tests can reach the
 * out-of-memory paths without gigabytes. The cap is clamped to [the pages in use
 * now, 65536]; the new cap is returned. Not for production use.
 */
export function memory_limit(pages: i32): i32 {
  let current = memory.size();
  if (pages < current) pages = current;
  if (pages > MAX_PAGES) pages = MAX_PAGES;
  pageLimit = pages;
  return pages;
}
