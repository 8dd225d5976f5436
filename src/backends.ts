// Backends: who answers the core's poll syscalls. This file is the whole contract a
// backend keeps, and the one place where each backend is made; selection.ts chooses
// which one a loop gets.
//
// What every backend provides (a `Backend`):
//   imports     the core's poll calls, WASI-style and errno-returning (core.ts,
//               CoreImports): create a poller, register / re-register / deregister
//               an fd under a token the poller hands back, wait and write ready
//               (token, events) records into the core's memory, close.
//               Readiness is level-triggered; ERROR bits are always reported.
//   calls       the names of the system calls behind them, for SysError.syscall.
//   watchesFds  whether fds can be registered at all (addHandler works).
//   watch       how a waiting driver can watch the poller from outside: 'epoll'
//               (its fd is itself pollable: libuv's uv_poll or the watcher thread
//               polls it), 'poll' (only the shim's watcher thread can wait on its
//               set), or null (nothing to watch: host timers only).
//   clock       a clock the backend owns (the fake backend's virtual clock), or null.
//   native      the native shim behind it, or null; the waker and the guest and
//               watcher drivers need it.
//   sys         the descriptor calls that go with its fds (`loop.sys`).
//
// The backends:
//   epoll  the native shim's epoll (Linux).
//   poll   the native shim's poll(2) over a registration table (any POSIX host).
//   fake   a virtual clock that moves only when the loop is idle (engine.ts); its
//          fds, where the shim is present, are watched by a real epoll.
//   none   no fds, the real clock: what a host without the shim gets by default.

import { virtualClock, type Clock } from './clock';
import type { CoreImports } from './core';
import { Errno } from './errors';
import type { NativeShim, WatcherKind } from './native';
import { sys, type Sys } from './sys';

/** The backends a user can ask for. */
export type BackendName = 'epoll' | 'poll' | 'wasi' | 'fake';

/** All backend names, for validation and messages. */
export const BACKEND_NAMES: readonly BackendName[] = ['epoll', 'poll', 'wasi', 'fake'];

/** A backend's name: one a user can ask for, or `none`, the default without the shim. */
export type AnyBackendName = BackendName | 'none';

/** What the loop needs from a backend (see the top of this file). */
export interface Backend {
  readonly name: AnyBackendName;
  readonly imports: CoreImports;
  readonly calls: { readonly ctl: string; readonly wait: string };
  readonly watchesFds: boolean;
  readonly watch: WatcherKind | null;
  readonly clock: Clock | null;
  readonly native: NativeShim | null;
  readonly sys: Sys;
}

/**
 * Makes a backend. `memory` returns the core's memory; it is read on every wait,
 * because `memory.grow` detaches the previous buffer. `native` is the shim, or
 * null; selection.ts has already checked that the backend can be had.
 */
export function makeBackend(name: AnyBackendName, native: NativeShim | null, memory: () => WebAssembly.Memory): Backend {
  switch (name) {
    case 'epoll':
      return { name, native, clock: null, sys, watchesFds: true, watch: 'epoll', calls: EPOLL_CALLS, imports: epollImports(native!, memory) };
    case 'poll':
      return { name, native, clock: null, sys, watchesFds: true, watch: 'poll', calls: POLL_CALLS, imports: pollImports(native!, memory) };
    case 'fake':
      return native
        ? { name, native, clock: virtualClock(), sys, watchesFds: true, watch: 'epoll', calls: EPOLL_CALLS, imports: epollImports(native, memory) }
        : { name, native, clock: virtualClock(), sys, watchesFds: false, watch: null, calls: NO_CALLS, imports: noFdImports() };
    case 'none':
      return { name, native: null, clock: null, sys, watchesFds: false, watch: null, calls: NO_CALLS, imports: noFdImports() };
    case 'wasi':
      throw new Error("backend 'wasi' is not built in this version");
  }
}

const EPOLL_CALLS = { ctl: 'epoll_ctl', wait: 'epoll_wait' } as const;
const POLL_CALLS = { ctl: 'poll', wait: 'poll' } as const;
const NO_CALLS = { ctl: 'none', wait: 'none' } as const;

function epollImports(native: NativeShim, memory: () => WebAssembly.Memory): CoreImports {
  // The shim's functions need no `this`, so the core calls them directly where it
  // can; the wait goes through JS to hand over the memory's current buffer.
  return {
    epoll_create: native.epollCreate,
    // The core passes the token as a signed i32 (WAKER_TOKEN arrives as -1); the shim takes it as u32.
    epoll_ctl: (epfd, op, fd, events, token) => native.epollCtl(epfd, op, fd, events, token >>> 0),
    epoll_wait: (epfd, ptr, max, timeoutMs) => native.epollWait(epfd, memory().buffer, ptr, max, timeoutMs),
    fd_close: native.close,
  };
}

function pollImports(native: NativeShim, memory: () => WebAssembly.Memory): CoreImports {
  return {
    epoll_create: native.pollCreate,
    epoll_ctl: (pfd, op, fd, events, token) => native.pollCtl(pfd, op, fd, events, token >>> 0),
    epoll_wait: (pfd, ptr, max, timeoutMs) => native.pollWait(pfd, memory().buffer, ptr, max, timeoutMs),
    fd_close: native.close,
  };
}

/** A poller with no fds: registration fails with ENOSYS, and a wait finds nothing. */
function noFdImports(): CoreImports {
  const NO_FD = 0x7fffffff;
  return {
    epoll_create: () => NO_FD,
    epoll_ctl: () => -Errno.ENOSYS,
    epoll_wait: () => 0,
    fd_close: () => 0,
  };
}
