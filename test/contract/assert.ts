// The contract cases' assertions: plain functions that throw, so the cases run the
// same under jest and under the host runner (run-host.ts).

/** A failed expectation of a contract case. */
export class AssertionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AssertionError';
  }
}

/** Throws unless `condition` holds. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}

/** Throws unless `actual` and `expected` are deeply equal (arrays, plain objects, primitives by Object.is). */
export function equal<T>(actual: T, expected: T, what: string): void {
  if (!deepEqual(actual, expected)) throw new AssertionError(`${what}: expected ${show(expected)}, got ${show(actual)}`);
}

/** Throws unless `pattern` (a substring, or a regular expression) is in `text`. */
export function matches(text: unknown, pattern: string | RegExp, what: string): void {
  const s = String(text);
  const ok = typeof pattern === 'string' ? s.includes(pattern) : pattern.test(s);
  if (!ok) throw new AssertionError(`${what}: expected ${typeof pattern === 'string' ? JSON.stringify(pattern) : String(pattern)} in ${JSON.stringify(s)}`);
}

/** An error with the fields SysError has. */
export type Thrown = Error & { code?: unknown };

/** What `fn` throws. @throws AssertionError if it returns. */
export function thrown(fn: () => unknown, what: string): Thrown {
  try {
    fn();
  } catch (e) {
    return e as Thrown;
  }
  throw new AssertionError(`${what}: expected a throw, it returned`);
}

/** What `promise` rejects with. @throws AssertionError if it resolves. */
export async function rejection(promise: PromiseLike<unknown>, what: string): Promise<Thrown> {
  let value: unknown;
  try {
    value = await promise;
  } catch (e) {
    return e as Thrown;
  }
  throw new AssertionError(`${what}: expected a rejection, it resolved with ${show(value)}`);
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

function show(value: unknown): string {
  try {
    const s = JSON.stringify(value, (_k, v: unknown) => (v === undefined ? '<undefined>' : v));
    return s === undefined ? String(value) : s.length > 300 ? `${s.slice(0, 300)}…` : s;
  } catch {
    return String(value);
  }
}
