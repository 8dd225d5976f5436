// The combinations of backend and driver the contract suite runs over (names as in
// src/selection.ts), and what each one can be asked to do.
import { IOLoop, type IOLoopOptions } from '../../src/index';

/** One way of making loops: the options every loop of the combination gets. */
export interface Combo {
  /** `<backend>+<driver>`, or the name of what is asked for when a part is left to the default. */
  readonly name: string;
  readonly options: Pick<IOLoopOptions, 'backend' | 'driver'>;
  /** The backend the loops get: `none` when no backend is named for the portable driver. */
  readonly backend: string;
  /** The driver the loops get; `default` when left to selection.ts. */
  readonly driver: string;
}

export const COMBOS: readonly Combo[] = [
  { name: 'epoll+guest', options: { backend: 'epoll', driver: 'guest' }, backend: 'epoll', driver: 'guest' },
  { name: 'epoll+blocking', options: { backend: 'epoll', driver: 'blocking' }, backend: 'epoll', driver: 'blocking' },
  { name: 'poll+guest', options: { backend: 'poll', driver: 'guest' }, backend: 'poll', driver: 'guest' },
  { name: 'poll+blocking', options: { backend: 'poll', driver: 'blocking' }, backend: 'poll', driver: 'blocking' },
  { name: 'fake', options: { backend: 'fake' }, backend: 'fake', driver: 'default' },
  { name: 'fake+blocking', options: { backend: 'fake', driver: 'blocking' }, backend: 'fake', driver: 'blocking' },
  { name: 'portable', options: { driver: 'portable' }, backend: 'none', driver: 'portable' },
];

/**
 * Whether the combination's loops watch fds: epoll and poll do; fake does where the
 * native shim is in use (its fds are watched by a real epoll); none never does
 * (src/backends.ts).
 */
export function watchesFds(combo: Combo): boolean {
  if (combo.backend === 'epoll' || combo.backend === 'poll') return true;
  return combo.backend === 'fake' && IOLoop.host().native === true;
}

/** Whether the combination's loops run on the fake backend's virtual clock. */
export function virtualClock(combo: Combo): boolean {
  return combo.backend === 'fake';
}

/**
 * Why this host cannot make the combination's loops (from IOLoop.host(): its backends
 * and drivers), or null when it can.
 */
export function unavailable(combo: Combo): string | null {
  const host = IOLoop.host();
  const missing: string[] = [];
  if (combo.backend !== 'none' && !host.backends.includes(combo.backend)) missing.push(`backend '${combo.backend}'`);
  if (combo.driver !== 'default' && !host.drivers.includes(combo.driver)) missing.push(`driver '${combo.driver}'`);
  if (missing.length === 0) return null;
  const native = host.native === true ? 'native shim in use' : `native shim not used: ${host.native}`;
  return `${host.runtime} ${host.version} has no ${missing.join(' or ')} (backends ${host.backends.join(', ')}; drivers ${host.drivers.join(', ')}; ${native})`;
}
