// The selector contract and its backends, chosen in exactly one place (`openBackend`).
//
// A backend gives the core its poll syscalls as WASI-style, errno-returning imports
// (`epoll_create / epoll_ctl / epoll_wait / fd_close`, the shape of WASIX's epoll
// calls): the core registers, re-registers and deregisters fds and waits through
// them, and the kernel carries the core's token. A backend may also own the clock.
//
//   epoll  the native shim's epoll, level-triggered (Linux).
//   fake   a virtual clock that jumps to the next deadline when nothing else is
//          ready (see IOLoop's turn); fds, when the shim is present, are still
//          watched by a real epoll so handlers keep working.
//   none   no fds at all, real clock: what a host without the native shim gets by
//          default (the portable driver runs its timers and callbacks).
//   poll, wasi  are declared by the API and not yet built: asking for them says so.

import type { CoreImports } from './core';
import { Errno } from './errors';
import { loadNative, type NativeShim } from './native';

/** The backends a user can ask for. */
export type BackendName = 'epoll' | 'poll' | 'wasi' | 'fake';

/** All backend names, for validation and error messages. */
export const BACKEND_NAMES: readonly BackendName[] = ['epoll', 'poll', 'wasi', 'fake'];

/** A backend's name: one a user can ask for, or `none`, the default without the shim. */
export type AnyBackendName = BackendName | 'none';

/** A clock that only moves when told to. */
export class VirtualClock {
  private now: number;
  constructor(start = 0) {
    this.now = start;
  }
  /** The current virtual time, in seconds. */
  readonly time = (): number => this.now;
  /** Moves the clock forward by `seconds` (never backwards). */
  advance(seconds: number): void {
    if (seconds > 0) this.now += seconds;
  }
}

/** What the loop needs from a backend. */
export interface Backend {
  readonly name: AnyBackendName;
  /** The poll syscalls the core imports. */
  readonly imports: CoreImports;
  /** The native shim behind the imports, or null when fds cannot be watched. */
  readonly native: NativeShim | null;
  /** Set for the fake backend: the loop's clock. */
  readonly clock: VirtualClock | null;
}

/** The default backend of this process: epoll with the native shim on Linux. */
export function defaultBackend(): AnyBackendName {
  return loadNative() ? 'epoll' : 'none';
}

/**
 * Opens a backend. `memory` returns the core's memory; it is read on every wait,
 * because `memory.grow` detaches the previous buffer. `watchFds` false opens it
 * without fds (for the portable driver, which waits on host timers only).
 * @throws Error naming what is available when the backend cannot be had here.
 */
export function openBackend(name: AnyBackendName, memory: () => WebAssembly.Memory, watchFds = true): Backend {
  const native = watchFds ? loadNative() : null;
  switch (name) {
    case 'epoll':
      if (!native) throw new Error(`backend 'epoll' needs the native shim and a driver that watches fds; available here: fake`);
      return { name, native, clock: null, imports: nativeImports(native, memory) };
    case 'fake':
      return { name, native, clock: new VirtualClock(), imports: native ? nativeImports(native, memory) : noFdImports() };
    case 'none':
      return { name, native: null, clock: null, imports: noFdImports() };
    case 'poll':
    case 'wasi':
      throw new Error(`backend '${name}' is not available in this version; available backends: ${availableBackends().join(', ')}`);
    default:
      throw new TypeError(`backend must be one of ${BACKEND_NAMES.join(', ')}; got ${String(name)}`);
  }
}

/** The backends that can be opened here. */
export function availableBackends(): BackendName[] {
  return loadNative() ? ['epoll', 'fake'] : ['fake'];
}

function nativeImports(native: NativeShim, memory: () => WebAssembly.Memory): CoreImports {
  // The shim's functions need no `this`, so the core calls them directly; only the
  // wait goes through JS, to hand over the memory's current buffer.
  return {
    epoll_create: native.epollCreate,
    epoll_ctl: native.epollCtl,
    epoll_wait: (epfd, ptr, max, timeoutMs) => native.epollWait(epfd, memory().buffer, ptr, max, timeoutMs),
    fd_close: native.close,
  };
}

/** A poller with no fds, for the fake backend without the native shim. */
function noFdImports(): CoreImports {
  const NO_FD = 0x7fffffff;
  return {
    epoll_create: () => NO_FD,
    epoll_ctl: () => -Errno.ENOSYS,
    epoll_wait: () => 0,
    fd_close: () => 0,
  };
}
