// The loop's callback queue: a FIFO of (fn, arg) pairs (see args.ts) stored in fixed-size
// chunks. Chunks never grow or move, so adding a million callbacks costs no array
// copies and no large-object allocations (a single growing array cost 5–10× more
// per callback here); drained chunks go back to a small pool for reuse.
//
// Invariants
// - `chunks` is never empty; every chunk but the last is full (CHUNK entries);
//   the last holds `lastLength` entries.
// - `length` is the number of pairs held.
// - Entries of pooled chunks and past `lastLength` are undefined, so a drained
//   callback is never kept alive by the queue.

import { endCallback as endCallbackExport } from './shared-clock';

// A module-local copy: from source under tsx, an imported name is read through a
// getter with a megamorphic keyed load on every call (see engine.ts).
const endCallback = endCallbackExport;

/** Entries per chunk: 1024 callbacks of two entries each. */
const CHUNK = 2 * 1024;
/** Chunks kept for reuse by a queue and its twin; more are left to the GC. */
const POOL_LIMIT = 16;

type Fn = (...args: any[]) => unknown;

/** Chunks shared by the two queues of one loop. */
export type ChunkPool = unknown[][];

/** A FIFO of callbacks. Not thread-safe: the loop's thread only. */
export class CallbackQueue {
  private chunks: unknown[][];
  private last: unknown[];
  private lastLength = 0;
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
    if (n === CHUNK) {
      chunk = this.last = this.newChunk();
      this.chunks.push(chunk);
      n = 0;
    }
    chunk[n] = fn;
    chunk[n + 1] = arg;
    this.lastLength = n + 2;
    this.length++;
  }

  /**
   * Calls `run(fn, arg)` for each callback in order, removing it first; stops
   * early when `run` returns false, dropping the rest. Leaves the queue empty.
   */
  drain(run: (fn: Fn, arg: unknown) => boolean): void {
    const chunks = this.chunks;
    const lastIndex = chunks.length - 1;
    let going = true;
    for (let c = 0; c <= lastIndex; c++) {
      const chunk = chunks[c]!;
      const end = c === lastIndex ? this.lastLength : CHUNK;
      for (let i = 0; i < end; i += 2) {
        const fn = chunk[i] as Fn;
        const arg = chunk[i + 1];
        chunk[i] = undefined;
        chunk[i + 1] = undefined;
        if (going) {
          this.length--;
          going = run(fn, arg);
          // The callback's relative timers get their deadlines (shared-clock.ts).
          endCallback();
        }
      }
      if (c < lastIndex && this.pool.length < POOL_LIMIT) this.pool.push(chunk);
    }
    if (lastIndex > 0) {
      chunks[0] = chunks[lastIndex]!;
      chunks.length = 1;
    }
    this.last = chunks[0]!;
    this.lastLength = 0;
    this.length = 0;
  }

  private newChunk(): unknown[] {
    return this.pool.pop() ?? new Array<unknown>(CHUNK).fill(undefined);
  }
}
