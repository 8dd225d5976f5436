// Argument checks at the API boundary. Each error names the argument and the rule,
// so a programming error is found where it is made rather than deep in the core.

/** Throws a TypeError unless `value` is a function. */
export function checkFunction(value: unknown, name: string): asserts value is (...args: never[]) => unknown {
  if (typeof value !== 'function') {
    throw new TypeError(`${name} must be a function, got ${describe(value)}`);
  }
}

/** Throws unless `value` is a number that is not NaN (TypeError for other types, RangeError for NaN). */
export function checkNumber(value: unknown, name: string): asserts value is number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${describe(value)}`);
  if (Number.isNaN(value)) throw new RangeError(`${name} must not be NaN`);
}

/** Throws a TypeError unless `value` is an integer, and a RangeError if it is below `min`. */
export function checkInteger(value: unknown, name: string, min = -Infinity): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`${name} must be an integer, got ${describe(value)}`);
  }
  if (value < min) throw new RangeError(`${name} must be >= ${min}, got ${value}`);
}

/** A short description of a value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return `string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return `${typeof value} ${String(value)}`;
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'object') return `an object (${Object.prototype.toString.call(value).slice(8, -1)})`;
  return typeof value;
}

/** An fd as a number, or an object that has one (Tornado's `fileno()` convention). */
export type FdLike = number | { fileno(): number };

/** The number of an {@link FdLike}. @throws TypeError unless it is an integer. */
export function filenoOf(fd: unknown): number {
  let n = fd;
  if (typeof fd === 'object' && fd !== null && typeof (fd as { fileno?: unknown }).fileno === 'function') {
    n = (fd as { fileno(): unknown }).fileno();
  }
  if (typeof n !== 'number' || !Number.isInteger(n)) {
    throw new TypeError(`fd must be an integer file descriptor or an object with fileno(), got ${describe(fd)}`);
  }
  return n;
}

/** READ | WRITE | ERROR (constants.ts). */
const EVENT_BITS = 0x001 | 0x004 | 0x018;

/** Throws unless `events` combines READ, WRITE and ERROR. */
export function checkEvents(events: unknown): asserts events is number {
  checkInteger(events, 'events');
  if ((events & ~EVENT_BITS) !== 0 || events < 0) {
    throw new RangeError(`events must combine IOLoop.READ, IOLoop.WRITE and IOLoop.ERROR, got 0x${events.toString(16)}`);
  }
}

/** A relative time; the fields add up. */
export type Duration = { seconds?: number; milliseconds?: number; microseconds?: number };

/** The seconds a {@link Duration} adds up to. @throws TypeError/RangeError naming the bad field. */
export function durationSeconds(d: unknown): number {
  if (typeof d !== 'object' || d === null) throw new TypeError(`deadline must be a number or a Duration object, got ${describe(d)}`);
  const { seconds = 0, milliseconds = 0, microseconds = 0 } = d as Duration;
  checkNumber(seconds, 'deadline.seconds');
  checkNumber(milliseconds, 'deadline.milliseconds');
  checkNumber(microseconds, 'deadline.microseconds');
  return seconds + milliseconds / 1e3 + microseconds / 1e6;
}

/** Throws the error for a bad deadline or callback (kept off the fast path of callAt and friends). */
export function badTimer(value: unknown, name: string, cb: unknown): never {
  checkNumber(value, name);
  checkFunction(cb, 'callback');
  throw new Error('unreachable');
}

/** Signals a process cannot catch. */
const UNCATCHABLE = new Set(['SIGKILL', 'SIGSTOP']);
/**
 * Signals the kernel raises for a fault of the thread itself. A handler that runs
 * later, as a loop callback, cannot repair the fault: the faulting instruction
 * would run again and fault again, forever.
 */
const FAULTS = new Set(['SIGSEGV', 'SIGBUS', 'SIGFPE', 'SIGILL']);

function osSignals(): Record<string, number> | null {
  try {
    return (require('os') as typeof import('os')).constants.signals as unknown as Record<string, number>;
  } catch {
    return null;
  }
}

/**
 * Throws a TypeError unless `signal` names a signal of this OS that a process can
 * catch and a loop callback can handle (not SIGKILL, SIGSTOP, nor the fault signals
 * SIGSEGV, SIGBUS, SIGFPE, SIGILL). Returns its number.
 */
export function checkSignal(signal: unknown): number {
  if (typeof signal !== 'string') throw new TypeError(`signal must be a signal name such as 'SIGTERM', got ${describe(signal)}`);
  const number = osSignals()?.[signal];
  if (number === undefined || !/^SIG[A-Z0-9]+$/.test(signal)) {
    throw new TypeError(`signal must be a signal name of this OS such as 'SIGTERM' (see os.constants.signals), got ${describe(signal)}`);
  }
  if (UNCATCHABLE.has(signal)) throw new TypeError(`signal ${signal} cannot be caught, so it cannot have a handler`);
  if (FAULTS.has(signal)) throw new TypeError(`signal ${signal} reports a fault of the thread itself, which a loop callback cannot handle`);
  return number;
}
