/**
 * A plain TypeScript event loop: a direct port of Tornado 4.5's PollIOLoop
 * (tornado/ioloop.py), kept as the benchmarks' picture of "the same design
 * without WebAssembly", and as the reference the differential test
 * (test/differential.test.ts) compares the package's loop with. Never shipped.
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
 *   its start, runs the callbacks, then the timeouts, then polls;
 * - stop() ends the loop at the check between an iteration's timeouts and its
 *   poll; before start(), it makes the next start() return at once;
 * - the clock is pluggable (PollIOLoop's `time_func`).
 *
 * What it leaves out: there is no poller, because a loop in plain TypeScript
 * has no epoll. The "poll" only sleeps (Atomics.wait, a futex) until the next
 * deadline, and a zero timeout costs nothing here where a real loop pays an
 * epoll_wait. Like Tornado's start(), start() blocks its thread until stop().
 *
 * What it adds for a JavaScript host, where promise continuations run only
 * when the host gets its turn back:
 * - startAsync(): the same iteration, with the poll done by giving the host a
 *   turn (setImmediate), so that the microtask queue drains; work queued
 *   meanwhile (a callback, an earlier timeout, stop()) wakes the poll, as
 *   Tornado's waker would;
 * - a virtual clock (`virtualClock: true`): it starts at 0, and the poll,
 *   instead of sleeping, moves it forward by the poll timeout (to the next
 *   deadline, at most 3600 s). It moves only after the host's turn has found
 *   nothing ready: no callback, no due timeout, no continuation left to run;
 * - runSync(fn, timeout): Tornado 6's run_sync (as of 6.5) on startAsync;
 * - PlainPeriodicCallback: Tornado 6's PeriodicCallback.
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

/** Raised by runSync when its timeout stopped the loop before the function's result settled. */
export class PlainTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TimeoutError';
  }
}

/** Raised by runSync when stop() ended the loop before the function's result settled. */
export class PlainStoppedError extends Error {}

/**
 * When startAsync gives the host a turn although work is ready (it always
 * does before the clock would move):
 * - 'every-iteration' (default): after every iteration;
 * - 'when-idle': only when nothing is ready (no callback pending, no timeout
 *   due), i.e. just before the clock would move;
 * - 'no-callbacks': whenever no callback is pending (due timeouts included);
 * - a function of the iteration's number (0, 1, …): when it returns true.
 * Any of these is a legal schedule of one loop: continuations may run between
 * any two iterations, and always before the clock moves.
 */
export type HostTurns = 'every-iteration' | 'when-idle' | 'no-callbacks' | ((iteration: number) => boolean);

export interface PlainLoopOptions {
  /** PollIOLoop's `time_func`: the clock, in seconds. Default: monotonic. */
  timeFunc?: () => number;
  /** A virtual clock starting at 0 (see the file's comment); startAsync/runSync only. */
  virtualClock?: boolean;
  /** See {@link HostTurns}; startAsync only. */
  hostTurns?: HostTurns;
  /** Where exceptions from callbacks go (Tornado's app_log.error). Default: console.error. */
  logError?: (message: string, error: unknown) => void;
}

const monotonic = (): number => performance.now() / 1000;

export class PlainLoop {
  private timeouts: PlainTimeout[] = [];
  private cancellations = 0;
  private sequence = 0;
  private callbacks: Array<[Callback, unknown[]]> = [];
  private running = false;
  private stopped = false;
  private closing = false;
  private readonly sleeper = new Int32Array(new SharedArrayBuffer(4));
  private readonly clock: () => number;
  private readonly virtual: boolean;
  private virtualNow = 0;
  private readonly hostTurns: HostTurns;
  /** Where exceptions from callbacks go. */
  readonly logError: (message: string, error: unknown) => void;

  constructor(options: PlainLoopOptions = {}) {
    if (options.virtualClock && options.timeFunc) throw new TypeError('timeFunc and virtualClock exclude each other');
    this.virtual = options.virtualClock === true;
    this.clock = this.virtual ? () => this.virtualNow : (options.timeFunc ?? monotonic);
    this.hostTurns = options.hostTurns ?? 'every-iteration';
    this.logError = options.logError ?? ((message, error) => console.error(message, error));
  }

  /** The loop's clock, in seconds: monotonic, `timeFunc`, or the virtual clock. */
  time(): number {
    return this.clock();
  }

  callAt(deadline: number, callback: Callback, ...args: unknown[]): PlainTimeout {
    const t = new PlainTimeout(deadline, this.sequence++, callback, args);
    heapPush(this.timeouts, t);
    return t;
  }

  callLater(delay: number, callback: Callback, ...args: unknown[]): PlainTimeout {
    return this.callAt(this.time() + delay, callback, ...args);
  }

  /** Tornado's add_timeout with an absolute deadline. */
  addTimeout(deadline: number, callback: Callback, ...args: unknown[]): PlainTimeout {
    return this.callAt(deadline, callback, ...args);
  }

  removeTimeout(t: PlainTimeout): void {
    // Lazy: the heap entry stays until it reaches the top or the next sweep.
    t.callback = null;
    this.cancellations++;
  }

  addCallback(callback: Callback, ...args: unknown[]): void {
    // Tornado drops callbacks added while the loop closes.
    if (this.closing) return;
    this.callbacks.push([callback, args]);
  }

  /**
   * Tornado's add_future: once `future` settles, `callback(future)` runs as a
   * loop callback (never synchronously).
   */
  addFuture<T>(future: PromiseLike<T>, callback: (future: Promise<T>) => unknown): void {
    const promise = Promise.resolve(future);
    const done = (): void => this.addCallback(callback, promise);
    promise.then(done, done);
  }

  /** Timeouts in the heap, cancelled ones included. */
  heapSize(): number {
    return this.timeouts.length;
  }

  stop(): void {
    this.running = false;
    this.stopped = true;
  }

  /** Tornado's close(): drops what is queued; callbacks added afterwards are ignored. */
  close(): void {
    this.closing = true;
    this.running = false;
    this.callbacks = [];
    this.timeouts = [];
    this.cancellations = 0;
  }

  /** Runs until stop(); blocks the thread meanwhile. */
  start(): void {
    if (this.virtual) throw new Error('a loop with a virtual clock runs with startAsync() or runSync()');
    if (this.stopped) {
      this.stopped = false;
      return;
    }
    this.running = true;
    for (;;) {
      const pollTimeout = this.iterate();
      if (!this.running) break;
      if (pollTimeout > 0) Atomics.wait(this.sleeper, 0, 0, pollTimeout * 1000);
    }
    this.stopped = false;
  }

  /**
   * Runs until stop(), as start() does, but polls by giving the host turns: the
   * returned promise resolves when the loop has stopped.
   */
  async startAsync(): Promise<void> {
    if (this.stopped) {
      this.stopped = false;
      return;
    }
    this.running = true;
    for (let iteration = 0; ; iteration++) {
      let pollTimeout = this.iterate();
      if (!this.running) break;
      // The poll. While work is ready the host gets a turn only when the policy
      // says so; before a wait, always.
      if (pollTimeout > 0 || this.hostTurnAfter(iteration)) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        // What the host's turn queued wakes the poll: a callback, an earlier
        // timeout, stop() (Tornado's waker).
        pollTimeout = this.running ? this.pollTimeout() : 0;
      }
      if (pollTimeout > 0) {
        if (this.virtual) this.virtualNow += pollTimeout;
        else await new Promise<void>((resolve) => setTimeout(resolve, pollTimeout * 1000));
      }
    }
    this.stopped = false;
  }

  /**
   * Tornado 6's run_sync (6.5): runs `func` as a loop callback and stops the
   * loop (with a loop callback, through addFuture) once its result settles;
   * resolves with that result. With `timeout` (seconds on the loop's clock), a
   * timeout stops the loop at that deadline: a promise cannot be cancelled.
   * If the loop stopped before the result settled, rejects with
   * PlainTimeoutError when the timeout was reached, else with
   * PlainStoppedError.
   */
  async runSync<T>(func: () => T | PromiseLike<T>, timeout?: number): Promise<T> {
    // Tornado's future_cell: the state of func's result once it settles, and whether the timeout ran.
    const cell: { outcome: { ok: true; value: T } | { ok: false; error: unknown } | null; timeoutCalled: boolean } = {
      outcome: null,
      timeoutCalled: false,
    };
    this.addCallback(() => {
      let result: Promise<T>;
      try {
        result = Promise.resolve(func());
      } catch (error) {
        result = Promise.reject(error);
      }
      // Attached before add_future's callback, so it has run when the loop stops that way.
      result.then(
        (value) => void (cell.outcome = { ok: true, value }),
        (error: unknown) => void (cell.outcome = { ok: false, error }),
      );
      this.addFuture(result, () => this.stop());
    });
    const timeoutHandle =
      timeout === undefined
        ? null
        : this.addTimeout(this.time() + timeout, () => {
            cell.timeoutCalled = true;
            this.stop();
          });
    await this.startAsync();
    if (timeoutHandle !== null) this.removeTimeout(timeoutHandle);
    const outcome = cell.outcome;
    if (outcome === null) {
      if (cell.timeoutCalled) throw new PlainTimeoutError(`Operation timed out after ${timeout} seconds`);
      throw new PlainStoppedError('Event loop stopped before Future completed.');
    }
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }

  /** One iteration: callbacks, then due timeouts; returns the poll timeout. */
  private iterate(): number {
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
    return this.pollTimeout();
  }

  /** 0 while callbacks are pending, else the time to the first deadline (at most POLL_TIMEOUT). */
  private pollTimeout(): number {
    if (this.callbacks.length > 0) return 0;
    if (this.timeouts.length > 0) return Math.max(0, Math.min(this.timeouts[0].deadline - this.time(), POLL_TIMEOUT));
    return POLL_TIMEOUT;
  }

  private hostTurnAfter(iteration: number): boolean {
    const policy = this.hostTurns;
    if (policy === 'every-iteration') return true;
    if (policy === 'when-idle') return false;
    if (policy === 'no-callbacks') return this.callbacks.length === 0;
    return policy(iteration);
  }

  private runCallback(cb: Callback, args: unknown[]): void {
    try {
      const ret = cb(...args);
      if (ret != null && typeof (ret as PromiseLike<unknown>).then === 'function') {
        (ret as PromiseLike<unknown>).then(undefined, (err: unknown) => this.logError('Exception in callback', err));
      }
    } catch (err) {
      this.logError('Exception in callback', err);
    }
  }
}

/**
 * Tornado 6's PeriodicCallback on a PlainLoop:
 * - calls on the grid start + k·period; after an overrun, whole periods are
 *   skipped (`_update_next`);
 * - a callback's result is awaited before the next call is scheduled only if
 *   it is awaitable (a thenable); otherwise the next call is scheduled in the
 *   same iteration;
 * - jitter (0–1) scales each period by 1 + jitter·(random − 0.5).
 */
export class PlainPeriodicCallback {
  private running = false;
  private nextTimeout = 0;
  private timeout: PlainTimeout | null = null;

  constructor(
    private readonly callback: () => unknown,
    private readonly callbackTimeMs: number,
    private readonly jitter: number,
    private readonly loop: PlainLoop,
  ) {
    if (!(callbackTimeMs > 0)) throw new RangeError('Periodic callback must have a positive callback_time');
  }

  start(): void {
    this.running = true;
    this.nextTimeout = this.loop.time();
    this.scheduleNext();
  }

  stop(): void {
    this.running = false;
    if (this.timeout !== null) {
      this.loop.removeTimeout(this.timeout);
      this.timeout = null;
    }
  }

  isRunning(): boolean {
    return this.running;
  }

  private readonly run = async (): Promise<void> => {
    if (!this.running) return;
    try {
      const val = this.callback();
      if (val != null && typeof (val as PromiseLike<unknown>).then === 'function') await val;
    } catch (err) {
      this.loop.logError('Exception in callback', err);
    } finally {
      this.scheduleNext();
    }
  };

  private scheduleNext(): void {
    if (this.running) {
      this.updateNext(this.loop.time());
      this.timeout = this.loop.addTimeout(this.nextTimeout, this.run);
    }
  }

  private updateNext(currentTime: number): void {
    let callbackTimeSec = this.callbackTimeMs / 1000;
    if (this.jitter) callbackTimeSec *= 1 + this.jitter * (Math.random() - 0.5);
    if (this.nextTimeout <= currentTime) {
      this.nextTimeout += (Math.floor((currentTime - this.nextTimeout) / callbackTimeSec) + 1) * callbackTimeSec;
    } else {
      // The clock went backwards (Tornado 5.1+): move on by one period.
      this.nextTimeout += callbackTimeSec;
    }
  }
}
