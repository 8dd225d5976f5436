// Signal handlers of a loop (IOLoop.addSignalHandler).
//
// With the native shim (backends epoll, poll and fake), under every driver and on any
// thread: the shim installs one process-wide sigaction handler per watched signal
// (bindings/signals.c). On each arrival it marks the signal pending in the table
// entry of every loop that watches it and writes to that loop's waker; the loop
// wakes (a guest driver's turn, or the blocking driver's poll returns), takes the
// pending signals and queues their callbacks. So a signal reaches a blocking loop,
// which never lets the host's loop run, and a loop in a worker thread, where Node
// delivers no process.on signal events.
//
// The rules for the process's dispositions (what bindings/signals.c does):
//   - Nothing is installed for a signal no loop watches.
//   - The first loop to watch a signal installs the shim's handler over what was
//     there. After waking the loops, the handler calls that previous handler if it
//     is a function that was not installed with SA_RESETHAND: so a process.on
//     listener for the same signal (libuv's handler in Node) keeps firing. It does
//     not call SIG_DFL or SIG_IGN, nor a one-shot handler: Node's own SIGINT and
//     SIGTERM handler, installed at startup, resets the terminal and kills the
//     process, which is what a loop that handles the signal replaces.
//   - When the last loop stops watching a signal (removeSignalHandler, close(), a
//     worker's teardown), the disposition found at installation comes back exactly,
//     unless other code replaced the shim's handler in the meantime (that code then
//     owns the signal and keeps it). Ctrl-C kills again, and a process.on listener
//     added before keeps working.
//   - libuv replaces handlers without chaining, and when its last listener for a
//     signal goes it installs SIG_DFL. So on the thread of a loop that watches
//     signals (Node's main thread, the only one where process.on signal listeners
//     exist), each process.on / removeListener for a signal is followed by
//     signalReassert, which puts the shim's handler back and chains to libuv's.
//     Bun's listeners replace the handler the same way. Deno's call the handler
//     they replaced, so there the shim's keeps running under theirs.
//     Limits: a process.on listener added on the main thread while only loops in
//     worker threads watch that signal takes it from them, until one of them calls
//     addSignalHandler for it again. In Bun, which emits no 'removeListener',
//     removing a process.on listener added after the loop's handler leaves SIG_DFL
//     (see `reassert`). In Deno, once such a listener is removed, Deno's handler
//     ends the process at the signal's next arrival, as it does without a loop.
//   - Other code that installs a handler after the loop's with sigaction (libuv's
//     own SIGCHLD watcher, a native addon) replaces it until the next
//     addSignalHandler for that signal, and is left alone when the loops are done.
//
// Without the shim's poller (backend `wasi`, and `none` where the shim is absent):
// process.on listeners, as the host delivers them (Node's main thread; not in
// worker threads, where this throws).
//
// Delivery: several arrivals of a signal before the loop wakes run its callback
// once. Callbacks run as loop callbacks, in the iteration after the wake-up.

import { SysError } from './errors';
import type { Engine, Waker } from './engine';
import { hostRuntime, type NativeShim, type SignalHandle } from './native';

type SignalCallback = () => unknown;

/**
 * The signal handlers of one loop. Internal to the package: IOLoop's
 * addSignalHandler, removeSignalHandler and close() are its public face.
 * Not thread-safe: the loop's thread only.
 */
export class LoopSignals {
  /** Callbacks by signal number. */
  private readonly callbacks = new Map<number, SignalCallback>();
  private readonly native: NativeShim | null;
  private handle: SignalHandle | null = null;
  private waker: Waker | null = null;
  /** Without the shim: the process listener of each signal. */
  private readonly listeners = new Map<string, () => void>();

  /**
   * @param engine the loop's engine: its waker carries the signals in.
   * @param queue queues a callback on the loop (IOLoop.addCallback).
   */
  constructor(
    private readonly engine: Engine,
    private readonly queue: (cb: SignalCallback) => void,
  ) {
    // The shim's signal watch wakes the loop through its waker; a driver that does
    // not watch the waker (portable) gets the host's process.on delivery instead.
    this.native = engine.wakerWatched() ? engine.backend.native : null;
  }

  /**
   * Runs `cb` as a loop callback whenever `signal` (number `signo`) arrives,
   * replacing this loop's earlier callback for it. Arguments are checked already.
   * @throws SysError if the disposition cannot be installed (sigaction), the waker
   *   cannot be opened, or the watch table is full (ENOSPC); Error in a worker
   *   thread on a backend without the shim's poller.
   */
  add(signal: string, signo: number, cb: SignalCallback): void {
    const native = this.native;
    if (native === null) {
      this.addListener(signal, cb);
      return;
    }
    const handle = this.handle ?? this.open(native);
    const rc = native.signalAdd(handle, signo);
    if (rc < 0) {
      if (this.callbacks.size === 0) this.release(native);
      throw new SysError(-rc, 'sigaction', `cannot handle ${signal}`);
    }
    if (this.callbacks.size === 0) holdListenerWatch(native);
    this.callbacks.set(signo, cb);
  }

  /**
   * Removes this loop's callback for `signal`; when no other loop of the process
   * watches it, its earlier disposition comes back. Does nothing if there is none.
   * @throws SysError if the earlier disposition cannot be restored (the callback
   *   is removed all the same).
   */
  remove(signal: string, signo: number): void {
    const native = this.native;
    if (native === null) {
      const listener = this.listeners.get(signal);
      if (listener === undefined) return;
      process.removeListener(signal, listener);
      this.listeners.delete(signal);
      return;
    }
    if (!this.callbacks.delete(signo)) return;
    const rc = native.signalRemove(this.handle!, signo);
    if (this.callbacks.size === 0) {
      this.release(native);
      releaseListenerWatch();
    }
    if (rc < 0) throw new SysError(-rc, 'sigaction', `cannot restore the earlier handling of ${signal}`);
  }

  /** Removes every handler (the loop is closing). Never throws. */
  close(): void {
    for (const [signal, listener] of this.listeners) process.removeListener(signal, listener);
    this.listeners.clear();
    const native = this.native;
    if (native === null || this.handle === null) return;
    this.callbacks.clear();
    this.release(native);
    releaseListenerWatch();
  }

  private open(native: NativeShim): SignalHandle {
    const waker = this.engine.openWaker(this.onWake);
    try {
      this.handle = native.signalOpen(waker.fd);
    } catch (e) {
      waker.remove();
      // The shim names the errno in `code`; a SysError carries it as the fd calls' errors do.
      const code = (e as { code?: unknown }).code;
      const errno = typeof code === 'string' ? osConstants().errno[code as keyof ReturnType<typeof osConstants>['errno']] : undefined;
      throw errno === undefined ? e : new SysError(errno, 'signal watch', (e as Error).message);
    }
    this.waker = waker;
    return this.handle;
  }

  private release(native: NativeShim): void {
    if (this.handle !== null) native.signalClose(this.handle);
    this.handle = null;
    this.waker?.remove();
    this.waker = null;
  }

  /** The waker fired (for us or another listener): queue the callbacks of the signals that arrived. */
  private readonly onWake = (): void => {
    const native = this.native!;
    const handle = this.handle;
    if (handle === null) return;
    let signo: number;
    while ((signo = native.signalNext(handle)) !== 0) {
      const cb = this.callbacks.get(signo);
      if (cb !== undefined) this.queue(cb);
    }
  };

  private addListener(signal: string, cb: SignalCallback): void {
    if (!onMainThread()) {
      throw new Error(
        `addSignalHandler('${signal}') in a worker thread needs a backend with the native shim's poller (epoll, poll or fake; this loop's is '${this.engine.backend.name}'): the host delivers no signal events to worker threads`,
      );
    }
    const previous = this.listeners.get(signal);
    if (previous !== undefined) process.removeListener(signal, previous);
    const listener = (): void => this.queue(cb);
    this.listeners.set(signal, listener);
    process.on(signal as NodeJS.Signals, listener);
  }
}

// ---------------------------------------------------------------- process.on alongside

/**
 * Hosts whose process.on signal listeners replace the process's handler without
 * calling the one they replaced (libuv in Node; Bun). Deno's call the previous
 * handler, so the shim's keeps running under theirs and needs no putting back;
 * put back, the two would call each other (the shim's handler cuts that short).
 */
const REPLACING_HOSTS = new Set(['node', 'bun']);

/** Loops of this thread that watch signals through the shim. */
let watchingLoops = 0;
let watchedShim: NativeShim | null = null;

/**
 * Node's process.on for a signal starts or stops a libuv signal handle, whose
 * sigaction replaces the shim's handler (or installs SIG_DFL over it). Node emits
 * 'newListener' before adding a listener and 'removeListener' after removing one,
 * and its own listeners for those events, added at startup, run before ours: by
 * the time ours runs, libuv has changed the disposition, and signalReassert puts
 * the shim's handler back on top, chaining to libuv's. Bun installs its handler
 * after emitting 'newListener', so the same check runs again once the current job
 * is done (a no-op in Node). Bun emits no 'removeListener' at all: there, removing
 * such a listener leaves SIG_DFL (Bun's doing) until the next addSignalHandler for
 * the signal.
 */
const reassert = (event: string | symbol): void => {
  if (typeof event !== 'string' || !event.startsWith('SIG') || watchedShim === null) return;
  const signo = signalNumbers()[event];
  if (signo === undefined || signo > 64) return;
  const native = watchedShim;
  native.signalReassert(signo);
  queueMicrotask(() => native.signalReassert(signo));
};

function holdListenerWatch(native: NativeShim): void {
  if (watchingLoops++ > 0 || !REPLACING_HOSTS.has(hostRuntime.runtime) || !onMainThread()) return;
  watchedShim = native;
  process.on('newListener', reassert);
  process.on('removeListener', reassert);
}

function releaseListenerWatch(): void {
  if (watchingLoops === 0 || --watchingLoops > 0 || watchedShim === null) return;
  process.removeListener('newListener', reassert);
  process.removeListener('removeListener', reassert);
  watchedShim = null;
}

function osConstants(): typeof import('os').constants {
  return (require('os') as typeof import('os')).constants;
}

function signalNumbers(): Record<string, number> {
  return osConstants().signals as unknown as Record<string, number>;
}

/** Whether this is the host's main thread (where process.on signal listeners can exist). */
function onMainThread(): boolean {
  if (hostRuntime.runtime === 'deno' || hostRuntime.runtime === 'bun' || hostRuntime.runtime === 'node') {
    try {
      return (require('worker_threads') as typeof import('worker_threads')).isMainThread;
    } catch {
      return true;
    }
  }
  return true;
}
