// The two loops of the differential test behind one LoopApi: the package's
// IOLoop on its fake backend, and the Tornado port (bench/peers/plain-loop.ts)
// on its virtual clock.
import { PlainLoop, PlainPeriodicCallback, PlainStoppedError, PlainTimeoutError, type HostTurns, type PlainTimeout } from '../../bench/peers/plain-loop';
import { IOLoop, PeriodicCallback, TimeoutError, type IOLoopOptions, type Logger } from '../../src/index';
import type { LoopApi, Trace } from './programs';

const describeError = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** How a run ended: 'ok <value>', 'error <message>', 'timed out' or 'stopped' (before its result settled). */
async function outcomeOf(run: Promise<unknown>, timedOut: (e: unknown) => boolean, stopped: (e: unknown) => boolean): Promise<string> {
  try {
    return `ok ${String(await run)}`;
  } catch (e) {
    return timedOut(e) ? 'timed out' : stopped(e) ? 'stopped' : `error ${describeError(e)}`;
  }
}

/** A loop under test, and how to release it. */
export interface OpenLoop {
  api: LoopApi;
  close(): void;
}

/** The package's loop, fake backend, on `driver`; what it logs goes to `trace` as "logged <error message>". */
export function openIOLoop(trace: Trace, driver: IOLoopOptions['driver']): OpenLoop {
  let loop: IOLoop;
  const logged = (...a: unknown[]): void => trace.add(loop.time(), `logged ${describeError(a[a.length - 1])}`, true);
  const logger: Logger = { error: logged, warn: logged };
  loop = new IOLoop({ backend: 'fake', driver, makeCurrent: false, logger });
  const api: LoopApi = {
    time: () => loop.time(),
    addCallback: (fn) => loop.addCallback(fn),
    callLater: (delay, fn) => loop.callLater(delay, fn),
    callAt: (when, fn) => loop.callAt(when, fn),
    removeTimeout: (h) => loop.removeTimeout(h),
    stop: () => loop.stop(),
    periodic: (cb, periodMs) => new PeriodicCallback(cb, periodMs, 0, loop),
    run: (fn, timeout) =>
      outcomeOf(
        loop.run(fn, { timeout }),
        (e) => e instanceof TimeoutError,
        (e) => e instanceof Error && /stopped before/.test(e.message),
      ),
  };
  return { api, close: () => loop.close() };
}

/** The Tornado port on a virtual clock, giving the host its turns as `hostTurns` says. */
export function openPlainLoop(trace: Trace, hostTurns: HostTurns): OpenLoop {
  const loop: PlainLoop = new PlainLoop({
    virtualClock: true,
    hostTurns,
    logError: (_message, error) => trace.add(loop.time(), `logged ${describeError(error)}`, true),
  });
  const api: LoopApi = {
    time: () => loop.time(),
    addCallback: (fn) => loop.addCallback(fn),
    callLater: (delay, fn) => loop.callLater(delay, fn),
    callAt: (when, fn) => loop.callAt(when, fn),
    removeTimeout: (h) => loop.removeTimeout(h as PlainTimeout),
    stop: () => loop.stop(),
    periodic: (cb, periodMs) => new PlainPeriodicCallback(cb, periodMs, 0, loop),
    run: (fn, timeout) =>
      outcomeOf(
        loop.runSync(fn, timeout),
        (e) => e instanceof PlainTimeoutError,
        (e) => e instanceof PlainStoppedError,
      ),
  };
  return { api, close: () => loop.close() };
}

/** mulberry32: a small seeded PRNG for the random host-turn schedule. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
