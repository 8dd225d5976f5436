/**
 * A plain TypeScript event loop: a direct port of Tornado 4.5's PollIOLoop
 * (tornado/ioloop.py), kept as the benchmarks' picture of "the same design
 * without WebAssembly". Never shipped.
 *
 * What it keeps from Tornado:
 * - timeouts are objects in a binary heap ordered by (deadline, sequence
 *   number), so equal deadlines keep insertion order;
 * - removeTimeout() only clears the timeout's callback (lazy cancellation); a
 *   cancelled timeout leaves the heap when it reaches the top, or in the sweep
 *   that rebuilds the heap once more than 512 entries and more than half of
 *   the heap are cancelled;
 * - callLater(d) is callAt(time() + d), reading the clock on every call;
 * - one iteration takes the callbacks queued before it and the timeouts due at
 *   its start, runs the callbacks, then the timeouts, then polls.
 *
 * What it leaves out: there is no poller, because a loop in plain TypeScript
 * has no epoll. The "poll" only sleeps (Atomics.wait, a futex) until the next
 * deadline, and a zero timeout costs nothing here where a real loop pays an
 * epoll_wait. Like Tornado's start(), start() blocks its thread until stop().
 */

type Callback = (...args: any[]) => unknown;

/** A scheduled call; `callback` is null once removed. */
export class PlainTimeout {
  constructor(
    readonly deadline: number,
    readonly seq: number,
    public callback: Callback | null,
    public args: unknown[],
  ) {}
}

/** Tornado's _POLL_TIMEOUT: the longest poll, in seconds. */
const POLL_TIMEOUT = 3600;

function before(a: PlainTimeout, b: PlainTimeout): boolean {
  return a.deadline < b.deadline || (a.deadline === b.deadline && a.seq < b.seq);
}

/** Python's heapq on an array of timeouts. */
function heapPush(heap: PlainTimeout[], t: PlainTimeout): void {
  let i = heap.length;
  heap.push(t);
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (!before(t, heap[parent])) break;
    heap[i] = heap[parent];
    i = parent;
  }
  heap[i] = t;
}

function siftDown(heap: PlainTimeout[], i: number): void {
  const n = heap.length;
  const t = heap[i];
  for (;;) {
    let child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && before(heap[child + 1], heap[child])) child++;
    if (!before(heap[child], t)) break;
    heap[i] = heap[child];
    i = child;
  }
  heap[i] = t;
}

function heapPop(heap: PlainTimeout[]): PlainTimeout {
  const top = heap[0];
  const last = heap.pop()!;
  if (heap.length > 0) {
    heap[0] = last;
    siftDown(heap, 0);
  }
  return top;
}

function heapify(heap: PlainTimeout[]): void {
  for (let i = (heap.length >> 1) - 1; i >= 0; i--) siftDown(heap, i);
}

export class PlainLoop {
  private timeouts: PlainTimeout[] = [];
  private cancellations = 0;
  private sequence = 0;
  private callbacks: Array<[Callback, unknown[]]> = [];
  private running = false;
  private stopped = false;
  private readonly sleeper = new Int32Array(new SharedArrayBuffer(4));

  /** Monotonic seconds. */
  time(): number {
    return performance.now() / 1000;
  }

  callAt(deadline: number, callback: Callback, ...args: unknown[]): PlainTimeout {
    const t = new PlainTimeout(deadline, this.sequence++, callback, args);
    heapPush(this.timeouts, t);
    return t;
  }

  callLater(delay: number, callback: Callback, ...args: unknown[]): PlainTimeout {
    return this.callAt(this.time() + delay, callback, ...args);
  }

  removeTimeout(t: PlainTimeout): void {
    // Lazy: the heap entry stays until it reaches the top or the next sweep.
    t.callback = null;
    this.cancellations++;
  }

  addCallback(callback: Callback, ...args: unknown[]): void {
    this.callbacks.push([callback, args]);
  }

  /** Timeouts in the heap, cancelled ones included. */
  heapSize(): number {
    return this.timeouts.length;
  }

  stop(): void {
    this.running = false;
    this.stopped = true;
  }

  /** Runs until stop(); blocks the thread meanwhile. */
  start(): void {
    if (this.stopped) {
      this.stopped = false;
      return;
    }
    this.running = true;
    for (;;) {
      const callbacks = this.callbacks;
      this.callbacks = [];
      let due: PlainTimeout[] = [];
      if (this.timeouts.length > 0) {
        const now = this.time();
        while (this.timeouts.length > 0) {
          const top = this.timeouts[0];
          if (top.callback === null) {
            heapPop(this.timeouts);
            this.cancellations--;
          } else if (top.deadline <= now) {
            due.push(heapPop(this.timeouts));
          } else {
            break;
          }
        }
        if (this.cancellations > 512 && this.cancellations > this.timeouts.length >> 1) {
          // Tornado's sweep: rebuild the heap when it is mostly cancellations.
          this.cancellations = 0;
          this.timeouts = this.timeouts.filter((t) => t.callback !== null);
          heapify(this.timeouts);
        }
      }
      for (const [cb, args] of callbacks) this.runCallback(cb, args);
      for (const t of due) {
        // A timeout may be removed by an earlier callback of this iteration.
        if (t.callback !== null) this.runCallback(t.callback, t.args);
      }
      due = [];

      let pollTimeout: number;
      if (this.callbacks.length > 0) pollTimeout = 0;
      else if (this.timeouts.length > 0) {
        pollTimeout = Math.max(0, Math.min(this.timeouts[0].deadline - this.time(), POLL_TIMEOUT));
      } else pollTimeout = POLL_TIMEOUT;

      if (!this.running) break;
      if (pollTimeout > 0) Atomics.wait(this.sleeper, 0, 0, pollTimeout * 1000);
    }
    this.stopped = false;
  }

  private runCallback(cb: Callback, args: unknown[]): void {
    try {
      const ret = cb(...args);
      if (ret != null && typeof (ret as PromiseLike<unknown>).then === 'function') {
        (ret as PromiseLike<unknown>).then(undefined, (err: unknown) => console.error('Exception in callback', err));
      }
    } catch (err) {
      console.error('Exception in callback', err);
    }
  }
}
