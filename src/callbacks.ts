// The loop's callback queue: a FIFO of (fn, arg) callbacks (see args.ts) stored in
// chunks. Chunks never grow or move, so adding a million callbacks costs no array
// copies (a single growing array cost 5–10× more per callback here). Each chunk of
// a queue is twice the one before, up to MAX_CHUNK: a million callbacks take about
// 30 chunks, most of them 256 KiB, which V8 makes in large-object space, so
// scavenges do not copy them (W3 batch: 124 -> 110 ns a callback and 85 -> 76 MB
// peak RSS, medians of 15 alternated runs). Drained chunks go back to a small pool.
//
// A chunk holds a stream of entries: RUN and a function start a run of callbacks
// to that function, and every other entry is one callback's packed argument. So
// callbacks added one after another with the same function (a loop of
// `addCallback(handler, item)`) take one entry each, 8 bytes, and one with a new
// function three. Fresh memory is most of what adding costs: the 16 MB of chunks
// that W3 batch's million callbacks took as pairs cost about 15 ms of page faults
// and V8's hole filling (node --cpu-prof: newChunk, a fifth of the batch), and one
// entry each took it from 120 to 84 ns a callback (medians of 11 alternated runs).
//
// Invariants
// - `chunks` is never empty; the last holds `lastLength` entries; every other
//   chunk is full, or holds END after its last entry.
// - The first entry a drain reads is RUN; `runFn` is the function of the run
//   being added to (NO_RUN when the queue is empty).
// - `length` is the number of callbacks held, except while `drain` runs.
// - Entries of pooled chunks and past `lastLength` are undefined or holes, so a
//   drained callback is never kept alive by the queue.

import { endCallback as endCallbackExport } from './shared-clock';

// A module-local copy: from source under tsx, an imported name is read through a
// getter with a megamorphic keyed load on every call (see engine.ts).
const endCallback = endCallbackExport;

/** Entries of a queue's first chunk. */
const FIRST_CHUNK = 2 * 1024;
/** Each further chunk doubles, up to this: 256 KiB, past V8's largest regular object
 * (128 KiB), so it is made in large-object space and a scavenge never copies it. */
const MAX_CHUNK = 2 * 16 * 1024;
/** Entries kept for reuse by a queue and its twin; more are left to the GC. */
const POOL_LIMIT = 2 * MAX_CHUNK;

type Fn = (...args: any[]) => unknown;

/** Starts a run: the next entry is its function. Never a user's value. */
const RUN: unique symbol = Symbol('run of callbacks');
/** The rest of this chunk is unused (a run's start did not fit). */
const END: unique symbol = Symbol('end of chunk');
/** `runFn` of an empty queue: no function equals it. */
const NO_RUN = (): void => {};

/** Chunks shared by the two queues of one loop. */
export type ChunkPool = unknown[][];

/** A FIFO of callbacks. Not thread-safe: the loop's thread only. */
export class CallbackQueue {
  private chunks: unknown[][];
  private last: unknown[];
  private lastLength = 0;
  private runFn: Fn = NO_RUN;
  /** Callbacks held. */
  length = 0;

  constructor(private readonly pool: ChunkPool) {
    this.last = this.newChunk();
    this.chunks = [this.last];
  }

  /** Appends `fn` with its packed arguments (see args.ts). */
  push(fn: Fn, arg: unknown): void {
    let chunk = this.last;
    let n = this.lastLength;
    if (fn !== this.runFn) {
      // RUN, the function and the argument go in one chunk.
      if (n + 3 > chunk.length) {
        if (n < chunk.length) chunk[n] = END;
        chunk = this.grow(n);
        n = 0;
      }
      chunk[n] = RUN;
      chunk[n + 1] = fn;
      n += 2;
      this.runFn = fn;
    } else if (n === chunk.length) {
      chunk = this.grow(n);
      n = 0;
    }
    chunk[n] = arg;
    this.lastLength = n + 1;
    this.length++;
  }

  /** Starts a new last chunk, twice the size of one `full` entries long (up to MAX_CHUNK). */
  private grow(full: number): unknown[] {
    const chunk = (this.last = this.newChunk(Math.min(MAX_CHUNK, 2 * full)));
    this.chunks.push(chunk);
    return chunk;
  }

  /**
   * Calls `run(fn, arg)` for each callback in order, removing it first; stops
   * early when `run` returns false, dropping the rest. Leaves the queue empty.
   * Only for a queue nothing else reads meanwhile (the engine drains the one it
   * swapped out): `length` is set once, at the end.
   */
  drain(run: (fn: Fn, arg: unknown) => boolean): void {
    const chunks = this.chunks;
    const lastIndex = chunks.length - 1;
    // Read before the loop, and a chunk's end handled by a call: code a big batch
    // first reaches after V8 has compiled the loop on stack has no type feedback
    // there, and deoptimized it (node --trace-deopt, once per batch).
    const lastLength = this.lastLength;
    let going = true;
    let fn: Fn = NO_RUN;
    for (let c = 0; c <= lastIndex; c++) {
      const chunk = chunks[c]!;
      const end = c === lastIndex ? lastLength : chunk.length;
      for (let i = 0; i < end; i++) {
        const entry = chunk[i];
        chunk[i] = undefined;
        // typeof first: an `===` that sees numbers and symbols alike compiles to the
        // generic StrictEqual builtin (3.5 % of W3 batch under perf).
        if (typeof entry === 'symbol') {
          if (entry === RUN) {
            fn = chunk[i + 1] as Fn;
            chunk[++i] = undefined;
            continue;
          }
          if (entry === END) break;
        }
        if (going) {
          going = run(fn, entry);
          // The callback's relative timers get their deadlines (shared-clock.ts).
          endCallback();
        }
      }
      if (c < lastIndex) this.retire(chunk);
    }
    if (lastIndex > 0) {
      chunks[0] = chunks[lastIndex]!;
      chunks.length = 1;
    }
    this.last = chunks[0]!;
    this.lastLength = 0;
    this.runFn = NO_RUN;
    this.length = 0;
  }

  /** A drained chunk that is not the last: to the pool while it has room. */
  private retire(chunk: unknown[]): void {
    if (pooled(this.pool) + chunk.length <= POOL_LIMIT) this.pool.push(chunk);
  }

  /** A drained chunk, or a new one of `size` entries: holes, never read before written. */
  private newChunk(size = FIRST_CHUNK): unknown[] {
    return this.pool.pop() ?? new Array<unknown>(size);
  }
}

function pooled(pool: ChunkPool): number {
  let n = 0;
  for (let i = 0; i < pool.length; i++) n += pool[i]!.length;
  return n;
}
