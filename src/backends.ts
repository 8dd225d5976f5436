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
//   instantiate makes the core it answers (instantiateBackend): the epoll build
//               over `imports` where absent, the WASI build over its preview1 host.
//   onReady     how a host that does not block tells the portable driver that an
//               fd may have become ready (the package's WASI provider); absent or
//               null otherwise.
//
// The backends:
//   epoll  the native shim's epoll (Linux).
//   poll   the native shim's poll(2) over a registration table (any POSIX host).
//   fake   a virtual clock that moves only when the loop is idle (engine.ts); its
//          fds, where the shim is present, are watched by a real epoll.
//   none   no fds, the real clock: what a host without the shim gets by default.
//   wasi   the WASI build of the core (wasm/core-wasi.wasm) over a WASI preview1
//          host: `options.wasi` (node:wasi's WASI, or any preview1 object), else
//          the package's own provider. Its fds are the host's; poll_oneoff watches
//          them; `sys` makes the host's calls (wasiSys below). No native code, no
//          waker, nothing a guest driver could watch: the driver is portable (a
//          host that tells when something is ready) or blocking (a host whose
//          poll_oneoff blocks, as node:wasi's does).

import { realClock, virtualClock, type Clock } from './clock';
import { instantiateCore, instantiateWasiCore, type CoreExports, type CoreImports, type WasiHost } from './core';
import { Errno, SysError } from './errors';
import type { NativeShim, WatcherKind } from './native';
import { sys, type Sys } from './sys';
import { checkInteger, describe } from './validate';

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
  /** Absent: the epoll build over `imports` (instantiateCore). */
  readonly instantiate?: () => CoreExports;
  /** Absent: null. */
  readonly onReady?: ((cb: () => void) => void) | null;
}

/** Makes the core a backend answers. */
export function instantiateBackend(backend: Backend): CoreExports {
  return backend.instantiate ? backend.instantiate() : instantiateCore(backend.imports);
}

/**
 * Makes a backend. `memory` returns the core's memory; it is read on every wait,
 * because `memory.grow` detaches the previous buffer. `native` is the shim, or
 * null; `wasi` the preview1 host of backend 'wasi' (selection.ts's wasiHostFor).
 * selection.ts has already checked that the backend can be had.
 */
export function makeBackend(name: AnyBackendName, native: NativeShim | null, memory: () => WebAssembly.Memory, wasi: WasiHost | null = null): Backend {
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
      if (wasi === null) throw new Error("backend 'wasi' needs a WASI preview1 host (options.wasi)");
      return wasiBackend(wasi);
  }
}


const EPOLL_CALLS = { ctl: 'epoll_ctl', wait: 'epoll_wait' } as const;
const POLL_CALLS = { ctl: 'poll', wait: 'poll' } as const;
const NO_CALLS = { ctl: 'none', wait: 'none' } as const;

/** The shim's epoll calls, as the core imports them. */
function epollImports(native: NativeShim, memory: () => WebAssembly.Memory): CoreImports {
  return shimImports(native.epollCreate, native.epollCtl, native.epollWait, native, memory);
}

/** The shim's poll-set calls, which keep the epoll calls' contract. */
function pollImports(native: NativeShim, memory: () => WebAssembly.Memory): CoreImports {
  return shimImports(native.pollCreate, native.pollCtl, native.pollWait, native, memory);
}

function shimImports(
  create: NativeShim['epollCreate'],
  ctl: NativeShim['epollCtl'],
  wait: NativeShim['epollWait'],
  native: NativeShim,
  memory: () => WebAssembly.Memory,
): CoreImports {
  // The shim's functions need no `this`, so the core calls them directly where it
  // can; the wait goes through JS to hand over the memory's current buffer.
  return {
    epoll_create: create,
    // The core passes the token as a signed i32 (WAKER_TOKEN arrives as -1); the shim takes it as u32.
    epoll_ctl: (poller, op, fd, events, token) => ctl(poller, op, fd, events, token >>> 0),
    epoll_wait: (poller, ptr, max, timeoutMs) => wait(poller, memory().buffer, ptr, max, timeoutMs),
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

// ---------------------------------------------------------------- wasi

/** The readiness callback of a host whose poll_oneoff does not block (the package's provider). */
type ReadyHost = WasiHost & { onReady?: (cb: () => void) => unknown };

/** The socket calls a WASI host offers beside preview1, returning the result or Linux's -errno (libuv's for a failed name lookup), as the native shim does. */
interface WasiSockets {
  listenTcp(host: string, port: number, backlog: number, reusePort: boolean): number;
  connectTcp(host: string, port: number): number;
  localPort(fd: number): number;
  pipe?: (() => [number, number] | number) | null;
  socketpair?: (() => [number, number] | number) | null;
}

/**
 * The extension module `wasm_ioloop_sock` (the package's provider has it: its
 * `sockImport`, or `imports()`/`getImportObject()`'s `wasm_ioloop_sock`). Strings
 * are (pointer, length) of UTF-8 in the core's memory, results go through
 * pointers, and each call returns a preview1 errno, or 256 (ENOTFOUND), 257
 * (EAI_AGAIN), 258 (EAI_FAIL) for a failed name lookup.
 */
interface SockExtension {
  sock_listen_tcp(hostPtr: number, hostLen: number, port: number, backlog: number, flags: number, resultFdPtr: number): number;
  sock_connect_tcp(hostPtr: number, hostLen: number, port: number, resultFdPtr: number): number;
  sock_local_port(fd: number, resultPortPtr: number): number;
}

/** `wasm_ioloop_sock`'s listen flag for SO_REUSEPORT. */
const LISTEN_REUSE_PORT = 1;

/** libuv's numbers for the extension's name-lookup errors, as the native sys returns them (UV_EAI_NONAME, UV_EAI_AGAIN, UV_EAI_FAIL). */
const LOOKUP_ERRNO: Record<number, number> = { 256: 3008, 257: 3001, 258: 3004 };

function sockExtensionOf(host: WasiHost): SockExtension | null {
  const h = host as WasiHost & { sockImport?: unknown; imports?: () => unknown };
  const candidates: unknown[] = [h.sockImport];
  for (const make of [h.imports, h.getImportObject]) {
    if (typeof make !== 'function') continue;
    try {
      candidates.push((make.call(host) as { wasm_ioloop_sock?: unknown } | null)?.wasm_ioloop_sock);
    } catch {
      // not an import object after all
    }
  }
  for (const c of candidates) {
    const ext = c as Partial<SockExtension> | null | undefined;
    if (typeof ext?.sock_listen_tcp === 'function' && typeof ext.sock_connect_tcp === 'function' && typeof ext.sock_local_port === 'function') {
      return ext as SockExtension;
    }
  }
  return null;
}

/**
 * The socket calls of a host: its own `sockets()` where it has them in this
 * convention (the package's provider), else its `wasm_ioloop_sock` calls over
 * scratch space in the core's memory; null for a host with neither.
 */
function socketsOf(host: WasiHost, core: () => CoreExports): WasiSockets | null {
  const own = (host as { sockets?: () => Partial<WasiSockets> | null }).sockets;
  if (typeof own === 'function') {
    const s = own.call(host);
    if (typeof s?.listenTcp === 'function' && typeof s.connectTcp === 'function' && typeof s.localPort === 'function') return s as WasiSockets;
  }
  const ext = sockExtensionOf(host);
  if (ext === null) return null;
  const encoder = new TextEncoder();
  const errno = (c: CoreExports, e: number): number => -(LOOKUP_ERRNO[e] ?? c.errno_from_wasi(e));
  /** Calls `fn(namePtr, nameLen, resultPtr)` with `name` in scratch memory; the u32 result or -errno. */
  const withName = (name: string, fn: (ptr: number, len: number, result: number) => number): number => {
    const c = core();
    const bytes = encoder.encode(name);
    const result = (bytes.length + 7) & ~3;
    const ptr = c.sys_buffer(result + 4);
    if (ptr === 0) return -Errno.ENOMEM;
    new Uint8Array(c.memory.buffer, ptr, bytes.length).set(bytes);
    const e = fn(ptr, bytes.length, ptr + result);
    return e !== 0 ? errno(c, e) : new DataView(c.memory.buffer).getUint32(ptr + result, true);
  };
  return {
    listenTcp: (name, port, backlog, reusePort) =>
      withName(name, (ptr, len, result) => ext.sock_listen_tcp(ptr, len, port, backlog, reusePort ? LISTEN_REUSE_PORT : 0, result)),
    connectTcp: (name, port) => withName(name, (ptr, len, result) => ext.sock_connect_tcp(ptr, len, port, result)),
    localPort: (fd) => withName('', (_ptr, _len, result) => ext.sock_local_port(fd, result)),
  };
}

/** True for node:wasi's WASI (Node's, and the node:wasi of Bun and Deno), without loading node:wasi for anything else. */
export function isNodeWasi(host: unknown): boolean {
  if (typeof host !== 'object' || host === null || (host as object).constructor?.name !== 'WASI') return false;
  try {
    // Loaded already: the host was made from it.
    const { WASI } = require('node:wasi') as { WASI: new (...a: never[]) => object };
    return host instanceof WASI;
  } catch {
    return false;
  }
}

const WASI_CALLS = { ctl: 'poll_oneoff', wait: 'poll_oneoff' } as const;

function wasiBackend(host: WasiHost): Backend {
  let core: CoreExports | null = null;
  const coreOf = (): CoreExports => {
    if (core === null) throw new Error("backend 'wasi': the core is not instantiated yet");
    return core;
  };
  const onReady = typeof (host as ReadyHost).onReady === 'function' ? (cb: () => void) => void (host as ReadyHost).onReady!(cb) : null;
  let sockets: WasiSockets | null | undefined;
  const nodeWasi = isNodeWasi(host);
  const backend: Backend = {
    name: 'wasi',
    native: null,
    // The host's monotonic clock, the one its poll_oneoff waits on; performance.now()
    // where the host cannot read it.
    clock: realClock(() => {
      const t = coreOf().clock_now();
      return t >= 0 ? t : performance.now() / 1000;
    }),
    watchesFds: true,
    watch: null,
    calls: WASI_CALLS,
    imports: noFdImports(),
    onReady,
    instantiate: () => {
      core = instantiateWasiCore(host).exports;
      return core;
    },
    sys: wasiSys(coreOf, () => (sockets === undefined ? (sockets = socketsOf(host, coreOf)) : sockets), nodeWasi),
  };
  return backend;
}

/** A pair from a host's pipe or socketpair call; ENOSYS where it has none. */
function pairOf(make: (() => [number, number] | number) | null | undefined, syscall: string, nosys: (syscall: string, detail?: string) => never): [number, number] {
  if (typeof make !== 'function') return nosys(syscall, 'this WASI host makes no pipes or socket pairs');
  const r = make();
  if (typeof r === 'number') throw new SysError(-r, syscall);
  return r;
}

/** Bytes one read or write moves at most: one host call, as a partial read or write. */
const WASI_CHUNK = 64 * 1024;

function checkWasiFd(fd: unknown): asserts fd is number {
  checkInteger(fd, 'fd', 0);
}

function checkWasiBuffer(buf: unknown): asserts buf is Uint8Array {
  if (!ArrayBuffer.isView(buf)) throw new TypeError(`buf must be a Uint8Array (or another ArrayBufferView), got ${describe(buf)}`);
}

function checkHostPort(host: unknown, port: unknown, min: number): asserts port is number {
  if (typeof host !== 'string' || host === '') throw new TypeError(`host must be a non-empty string, got ${describe(host)}`);
  checkInteger(port, 'port', min);
  if (port > 65535) throw new RangeError(`port must be <= 65535, got ${port}`);
}

/** `r` when it is not a negative errno; a SysError for it otherwise. */
function okWasi(r: number, syscall: string, detail?: string): number {
  if (r < 0) throw new SysError(-r, syscall, detail);
  return r;
}

/**
 * The Sys of backend 'wasi': the WASI host's calls on its fds, through the core's
 * pass-through exports, so every call goes to the host the poller watches.
 * read/write: fd_read/fd_write (at most WASI_CHUNK bytes per call); close:
 * fd_close; accept: sock_accept. listenTcp, connectTcp and localPort: the host's
 * socket calls where it offers them (the package's provider's sockets(), or any
 * host's `wasm_ioloop_sock`), else SysError ENOSYS; pipe and socketpair: the
 * host's where its sockets() has them (the provider's has none), else ENOSYS.
 * Under node:wasi, accept throws ENOSYS without
 * calling sock_accept: node:wasi's sock_* calls dereference a null socket on the
 * only fds it has (its stdio) and kill the process. Errors are SysErrors with the
 * native sys's codes (preview1's errno numbers are mapped to Linux's in the core).
 */
function wasiSys(core: () => CoreExports, sockets: () => WasiSockets | null, nodeWasi: boolean): Sys {
  const why = nodeWasi ? "node:wasi opens no sockets; only the fds handed to it exist" : 'this WASI host offers no socket calls';
  const nosys = (syscall: string, detail = why): never => {
    throw new SysError(Errno.ENOSYS, syscall, detail);
  };
  const bytesOf = (buf: ArrayBufferView): Uint8Array => new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  const scratch = (c: CoreExports, len: number): number => {
    const ptr = c.sys_buffer(len);
    if (ptr === 0) throw new SysError(Errno.ENOMEM, 'sys_buffer', `no room for ${len} bytes in the core's memory`);
    return ptr;
  };
  return {
    pipe(): [number, number] {
      return pairOf(sockets()?.pipe, 'pipe', nosys);
    },
    socketpair(): [number, number] {
      return pairOf(sockets()?.socketpair, 'socketpair', nosys);
    },
    read(fd: number, buf: Uint8Array): number {
      checkWasiFd(fd);
      checkWasiBuffer(buf);
      const c = core();
      const len = Math.min(buf.byteLength, WASI_CHUNK);
      const ptr = scratch(c, len);
      const n = c.sys_read(fd, ptr, len);
      if (n === -Errno.EAGAIN) return -1;
      okWasi(n, 'fd_read');
      bytesOf(buf).set(new Uint8Array(c.memory.buffer, ptr, n));
      return n;
    },
    write(fd: number, buf: Uint8Array): number {
      checkWasiFd(fd);
      checkWasiBuffer(buf);
      const c = core();
      const len = Math.min(buf.byteLength, WASI_CHUNK);
      const ptr = scratch(c, len);
      new Uint8Array(c.memory.buffer, ptr, len).set(bytesOf(buf).subarray(0, len));
      const n = c.sys_write(fd, ptr, len);
      if (n === -Errno.EAGAIN) return -1;
      return okWasi(n, 'fd_write');
    },
    close(fd: number): void {
      checkWasiFd(fd);
      okWasi(core().sys_close(fd), 'fd_close');
    },
    listenTcp(host: string, port: number, options: { backlog?: number; reusePort?: boolean } = {}): number {
      checkHostPort(host, port, 0);
      const backlog = options.backlog ?? 511;
      checkInteger(backlog, 'options.backlog', 0);
      const s = sockets();
      if (s === null) return nosys('listen');
      return okWasi(s.listenTcp(host, port, backlog, options.reusePort === true), 'listen', `${host}:${port}`);
    },
    localPort(fd: number): number {
      checkWasiFd(fd);
      const s = sockets();
      if (s === null) return nosys('getsockname');
      return okWasi(s.localPort(fd), 'getsockname');
    },
    accept(fd: number): number {
      checkWasiFd(fd);
      if (nodeWasi) return nosys('sock_accept', "node:wasi's sock_accept crashes on the fds it has");
      const r = core().sys_accept(fd);
      if (r === -Errno.EAGAIN) return -1;
      return okWasi(r, 'sock_accept');
    },
    connectTcp(host: string, port: number): number {
      checkHostPort(host, port, 1);
      const s = sockets();
      if (s === null) return nosys('connect');
      return okWasi(s.connectTcp(host, port), 'connect', `${host}:${port}`);
    },
  };
}
