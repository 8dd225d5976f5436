// How the loop keeps a callback's arguments without an array per call: one value,
// `arg`, beside the function. Most callbacks and timers get no argument or one.
//
//   no argument     arg is NO_ARG
//   one argument    arg is that value (whatever it is, an array included)
//   two or more     arg is a SpreadArgs holding them

/** Stands for "called with no arguments". */
export const NO_ARG: unique symbol = Symbol('no argument');

/** The arguments of a call that has two or more. */
export class SpreadArgs {
  constructor(readonly args: unknown[]) {}
}

/**
 * Packs a call's arguments. Callers handle none and one themselves, reading
 * `arguments` in place: handing `arguments` to another function makes V8 allocate it.
 */
export function packArgs(args: unknown[]): unknown {
  if (args.length === 0) return NO_ARG;
  if (args.length === 1) return args[0];
  return new SpreadArgs(args);
}

/**
 * Calls `fn` with packed arguments. No `instanceof`: V8 compiles it to the generic
 * InstanceOf builtin here (a Symbol.hasInstance lookup and a runtime call), which
 * was a fifth of the CPU of `bench/scenarios/wasm-ioloop/w3-callbacks.ts batch`;
 * a number fails the typeof test inline.
 */
export function callPacked(fn: (...args: any[]) => unknown, arg: unknown): unknown {
  if (arg === NO_ARG) return fn();
  if (typeof arg === 'object' && arg !== null && (arg as SpreadArgs).constructor === SpreadArgs) {
    return fn(...(arg as SpreadArgs).args);
  }
  return fn(arg);
}
