// The blocking watchdog behind IOLoop.setBlockingLogThreshold: the per-loop watch
// the engine calls around each user function, and the loader of its addon
// (build/Release/wasm_ioloop_watchdog.node, from bindings/watchdog.cc).
//
// The engine marks every call of a user function (a callback, a timer, a
// handler) as a span: `enter` before, `exit` after. The loop's own poll is
// never inside a span, so a loop that waits for work is never reported.
// - With the addon (Node only): `enter` writes the span's start into a
//   Float64Array over a SharedArrayBuffer that the addon's thread reads. Past
//   the threshold the thread has V8 interrupt the JavaScript thread, which
//   takes the stack and writes a warning to stderr while the function still
//   runs; past a second threshold with no interrupt served, the thread writes
//   that the function is in native code. When the function returns, `exit`
//   logs one warning through the loop's logger, with the stack that was taken.
// - Without it (Bun, Deno, a Node without the build): the same warning, after
//   the function returns, with its name and duration and no stack.
// When the threshold is null the engine holds no watch, and each user call pays
// one null check.

import * as fs from 'fs';
import * as path from 'path';
import type { Engine, Logger } from './engine';
import { envVar, hostRuntime } from './native';
import { describe } from './validate';

/** What the addon's `take` says about a span the watchdog fired for. */
export interface WatchdogCapture {
  /** The thread reported the span as in native code (its interrupt was not served within one more threshold). */
  readonly native: boolean;
  /** The JavaScript stack the interrupt took, one `    at ...` line per frame, or null if it never ran during the span. */
  readonly stack: string | null;
  /** Milliseconds into the span at which the stack was taken (0 without one). */
  readonly atMs: number;
  /** The stack was taken after the span had been reported as in native code. */
  readonly late: boolean;
}

/**
 * The watchdog addon's exports (bindings/watchdog.cc). Separate from the main
 * shim's NativeShim: this addon uses V8's C++ API and loads in Node only.
 *
 * Thread-safety: each environment (the main thread, each worker) that loads the
 * addon gets its own state and its own watchdog thread; call these only from
 * the thread that loaded it. The thread exists while any watch of its
 * environment is open and is joined by the last `close`, or by the
 * environment's teardown.
 */
export interface WatchdogAddon {
  /** The NODE_MODULE_VERSION it was built for (Node refuses to load it under another). */
  readonly nodeModuleVersion: number;
  /** The V8 version of the headers it was built against. */
  readonly v8Version: string;
  /**
   * Opens a watch: the thread reads `cells` ([0] the start of the span in
   * progress in performance.now() ms, 0 for none; [1] written by the thread: the
   * start of the last span it fired for; [2] the kind, 1 callback, 2 timer, 3
   * handler), and the interrupt reads the function in `current[0]` for its name.
   * `nowMs` is performance.now(), to align the two clocks. `exit` is the watch's
   * own exit function: an interrupt served on entry to it comes after the user
   * function returned, and takes no stack. Starts the thread if it is not
   * running. Returns the watch's id.
   * @throws TypeError on misuse; Error if the thread cannot be started.
   */
  open(cells: Float64Array, current: unknown[], thresholdMs: number, nowMs: number, exit: () => void): number;
  /** Changes a watch's threshold. @throws TypeError on misuse; Error for an id that is not open. */
  setThreshold(id: number, thresholdMs: number, nowMs: number): void;
  /** Closes a watch; the last one ends and joins the thread. Idempotent. @throws TypeError on misuse. */
  close(id: number): void;
  /**
   * What the watchdog has on the span that started at `start`, once: undefined
   * if it did not fire for it. @throws TypeError on misuse.
   */
  take(id: number, start: number): WatchdogCapture | undefined;
  /** Whether this environment's watchdog thread exists. */
  threadRunning(): boolean;
}

/** The package root, relative to src/ (tests, tsx) and to dist/ (the package). */
const PACKAGE_ROOT = path.join(__dirname, '..');

/** Where the addon is built: node-gyp's output beside the main shim. */
export const WATCHDOG_PATH = path.join(PACKAGE_ROOT, 'build', 'Release', 'wasm_ioloop_watchdog.node');

interface LoadResult {
  readonly addon: WatchdogAddon | null;
  /** Why there is no addon ('' when there is one). */
  readonly reason: string;
}

let cached: LoadResult | undefined;

function load(): LoadResult {
  const none = (reason: string): LoadResult => ({ addon: null, reason });
  if (envVar('WASM_IOLOOP_NO_NATIVE') === '1') return none('disabled by WASM_IOLOOP_NO_NATIVE=1');
  if (envVar('WASM_IOLOOP_NO_WATCHDOG') === '1') return none('disabled by WASM_IOLOOP_NO_WATCHDOG=1');
  switch (hostRuntime.runtime) {
    case 'node':
      break;
    case 'bun':
      return none('not loaded in Bun: the watchdog addon uses V8\'s C++ API (v8::Isolate::RequestInterrupt), and Bun has no V8');
    case 'deno':
      return none("not loaded in Deno: the watchdog addon needs Node's C++ API symbols, which Deno does not export");
    default:
      return none(`not loaded in ${hostRuntime.runtime}: the watchdog addon needs Node`);
  }
  try {
    if (!fs.existsSync(WATCHDOG_PATH)) return none(`not built (${WATCHDOG_PATH} does not exist)`);
  } catch (error) {
    return none(`cannot look for ${WATCHDOG_PATH}: ${messageOf(error)}`);
  }
  let addon: WatchdogAddon;
  try {
    addon = require(WATCHDOG_PATH) as WatchdogAddon;
  } catch (error) {
    // Built for another Node (a NODE_MODULE_VERSION mismatch), --no-addons, a
    // refused permission: fall back, and say why.
    return none(`${WATCHDOG_PATH} failed to load: ${messageOf(error)}`);
  }
  const abi = Number(process.versions.modules);
  if (addon.nodeModuleVersion !== abi) {
    return none(`${WATCHDOG_PATH} was built for NODE_MODULE_VERSION ${addon.nodeModuleVersion}, this Node has ${abi}: rebuild it (node scripts/install-native.js)`);
  }
  return { addon, reason: '' };
}

function messageOf(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
}

/**
 * The watchdog addon, or null where it is not available: outside Node, with
 * `WASM_IOLOOP_NO_NATIVE=1` or `WASM_IOLOOP_NO_WATCHDOG=1`, when it is not
 * built, or when it fails to load (the reason is in {@link watchdogStatus}).
 * Loaded once per thread and cached, a null result included. Never throws.
 *
 * Thread-safety: call it on any thread; each worker loads its own instance.
 */
export function loadWatchdog(): WatchdogAddon | null {
  if (cached === undefined) {
    try {
      cached = load();
    } catch (error) {
      // A host that refuses even a look at the environment (Deno without --allow-env).
      cached = { addon: null, reason: `not loaded: ${messageOf(error)}` };
    }
  }
  return cached.addon;
}

/** `true` when the watchdog addon is available here, else why not (for IOLoop.host()). Never throws. */
export function watchdogStatus(): true | string {
  loadWatchdog();
  return cached!.addon !== null ? true : cached!.reason;
}

// ---------------------------------------------------------------- the watch

/** Indices of the cells shared with the addon (bindings/watchdog.cc has the same). */
const START = 0;
const FIRED = 1;
const KIND = 2;
const CELLS = 3;

/** What a span runs, as `cells[KIND]` holds it. */
const KIND_CALLBACK = 1;
const KIND_TIMER = 2;
const KIND_HANDLER = 3;
const KIND_NAMES = ['', 'callback', 'timer', 'handler'];

/**
 * One loop's blocking watch, held by its engine while a threshold is set.
 * Internal. Not thread-safe: the loop's thread only.
 */
export class Watch {
  private readonly cells: Float64Array;
  /** [function, kind] of the span in progress, for the addon's interrupt. */
  private readonly current: unknown[] = [undefined, 0];
  private readonly addon: WatchdogAddon | null;
  private id = 0;
  private closed = false;
  private thresholdMs: number;
  private start = 0;
  private fn: ((...args: any[]) => unknown) | undefined = undefined;
  private kind = 0;

  constructor(
    private readonly logger: Logger,
    thresholdMs: number,
  ) {
    this.thresholdMs = thresholdMs;
    const addon = loadWatchdog();
    this.cells = addon === null ? new Float64Array(CELLS) : new Float64Array(new SharedArrayBuffer(CELLS * 8));
    this.addon = addon;
    if (addon !== null) this.id = addon.open(this.cells, this.current, thresholdMs, performance.now(), Watch.prototype.exit);
  }

  /** Before a user function runs. `what`: 'callback', 'timeout' or 'handler'. */
  enter(fn: (...args: any[]) => unknown, what: string): void {
    const kind = what === 'callback' ? KIND_CALLBACK : what === 'handler' ? KIND_HANDLER : KIND_TIMER;
    this.fn = fn;
    this.kind = kind;
    const current = this.current;
    current[0] = fn;
    current[1] = kind;
    const cells = this.cells;
    cells[KIND] = kind;
    // 0 marks "no span": a start of exactly 0 (performance.now() at the time
    // origin) is moved off it.
    const start = performance.now() || Number.MIN_VALUE;
    this.start = start;
    cells[START] = start;
  }

  /** After it returned or threw: one warning if it ran past the threshold, or the watchdog fired for it. */
  exit(): void {
    const cells = this.cells;
    cells[START] = 0;
    const start = this.start;
    const ms = performance.now() - start;
    if ((ms >= this.thresholdMs || cells[FIRED] === start) && !this.closed) this.report(start, ms);
    this.current[0] = undefined;
    this.fn = undefined;
  }

  /** Changes the threshold; the span in progress is measured against the new one. */
  setThreshold(thresholdMs: number): void {
    this.thresholdMs = thresholdMs;
    if (this.addon !== null) this.addon.setThreshold(this.id, thresholdMs, performance.now());
  }

  /** Stops watching; the addon's thread ends with the last watch of its thread. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.addon !== null) this.addon.close(this.id);
  }

  private report(start: number, ms: number): void {
    let name = '(anonymous)';
    try {
      name = (this.fn?.name as string | undefined) || '(anonymous)';
    } catch {
      // a `name` getter that throws
    }
    const head = `Blocking: ${KIND_NAMES[this.kind]} ${name} blocked the loop for ${seconds(ms)} s (threshold ${this.thresholdMs / 1000} s)`;
    let message: string;
    const addon = this.addon;
    if (addon === null) {
      message = `${head}; no stack: the blocking watchdog is not available here (${cached!.reason})`;
    } else {
      const capture = addon.take(this.id, start);
      if (capture === undefined) {
        message = `${head}; no stack: it returned before the watchdog's deadline came round`;
      } else if (capture.stack !== null && !capture.late) {
        message = `${head}; its JavaScript stack ${seconds(capture.atMs)} s in:\n${capture.stack.trimEnd()}`;
      } else if (capture.stack !== null) {
        message =
          `${head}, in native code (no stack could be taken there); its JavaScript stack once back in JavaScript, ` +
          `${seconds(capture.atMs)} s in:\n${capture.stack.trimEnd()}`;
      } else if (capture.native) {
        message = `${head}, in native code: no JavaScript stack, V8 cannot interrupt native code`;
      } else {
        message = `${head}; no stack: it returned before V8 served the watchdog's interrupt`;
      }
    }
    try {
      this.logger.warn(message);
    } catch {
      // A logger that throws has nowhere to report to; the loop goes on.
    }
  }
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(3);
}

/**
 * Checks a threshold for setBlockingLogThreshold.
 * @throws TypeError unless `seconds` is a number or null; RangeError for NaN,
 *   a value <= 0, or Infinity.
 */
export function checkThreshold(seconds: unknown): asserts seconds is number | null {
  if (seconds === null) return;
  if (typeof seconds !== 'number') throw new TypeError(`seconds must be a number or null, got ${describe(seconds)}`);
  if (Number.isNaN(seconds)) throw new RangeError('seconds must not be NaN');
  if (!(seconds > 0) || !Number.isFinite(seconds * 1000)) {
    throw new RangeError(`seconds must be a finite number > 0 (null turns the warning off), got ${seconds}`);
  }
}

/**
 * Sets (or, with null, clears) an engine's blocking threshold. The engine's
 * logger gets the warnings.
 * @throws as {@link checkThreshold}; Error if the addon's thread cannot start.
 */
export function setBlockingThreshold(engine: Engine, seconds: number | null): void {
  checkThreshold(seconds);
  if (seconds === null) {
    closeWatch(engine);
    return;
  }
  const ms = seconds * 1000;
  if (engine.watch !== null) engine.watch.setThreshold(ms);
  else engine.watch = new Watch(engine.logger, ms);
}

/** Drops an engine's watch, if it has one (IOLoop.close). */
export function closeWatch(engine: Engine): void {
  const watch = engine.watch;
  if (watch === null) return;
  engine.watch = null;
  watch.close();
}
