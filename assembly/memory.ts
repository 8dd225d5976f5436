// Regions: the growable arrays of the core, carved from linear memory by hand.
//
// Invariants
// - Every array of the core (timer heap, timer slots, due list, fd table, handler
//   slots) is one region: a base address and a capacity in bytes, both multiples
//   of 16, kept by the array's owner. Static data (the ready buffer, the slot
//   tables' state) lies below `__heap_base`; regions lie at or above it.
// - `top` is the first byte that no region uses. Regions are handed out by bumping
//   `top` and are never given back, so every byte at or above `top` is still the
//   zero that `memory.grow` produced.
// - No function here traps or aborts. A request that would need more pages than
//   `pageLimit` (at most the module's declared maximum, 65536 pages = 4 GiB), or
//   that `memory.grow` refuses, returns 0 and leaves every region as it was.
//
// Why not the runtime's allocator: the core never allocates an object. It owns
// five arrays that only ever grow by doubling. The `stub` runtime's bump allocator
// and the `minimal` runtime's TLSF both call `unreachable()` when `memory.grow`
// fails, and pre-checking TLSF (which grows memory by the larger of what it needs
// and what it already has) means reimplementing its policy. A bump pointer that
// checks `memory.grow` itself is shorter than either workaround. Its cost is that
// an array that moves leaves its old region behind; as arrays double, what is left
// behind is less than what is live, so the core never uses more than about twice
// its live bytes. An array that is the last region grows in place without a copy.

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
  let fresh = top;
  let end = fresh + bytes;
  if (!ensureSpan(end)) return 0;
  if (oldBytes != 0) memory.copy(<usize>fresh, base, oldBytes);
  top = end;
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
 * `initial` records, at most `limit`), or, if doubling does not fit, adds one chunk
 * of `initial` records. Returns the new base, with `grantedBytes` set, or 0 with
 * nothing changed if neither fits.
 */
export function regionGrowDoubling(base: usize, capacity: u32, recordBytes: usize, initial: u64, limit: u64): usize {
  let want = max<u64>(initial, <u64>capacity * 2);
  if (want > limit) want = limit;
  let need = min<u64>(<u64>capacity + initial, want);
  return regionGrow(base, <usize>capacity * recordBytes, want * <u64>recordBytes, need * <u64>recordBytes);
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
