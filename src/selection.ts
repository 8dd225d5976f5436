// The one place that decides which backend and driver a loop gets, and what this
// host can give. IOLoop's constructor, IOLoop.configure and IOLoop.host all ask here,
// so a name is checked once and every refusal reads the same.
//
// What a host has:
//   native shim loaded  backends epoll (Linux), poll, fake; drivers guest, blocking,
//                       portable (portable only with fake or no backend named)
//   no native shim      backend fake (and `none`, the default); driver portable
// Which guest driver: in Node, an epoll poller nests in libuv (GuestDriver); in
// Bun and Deno (no libuv), and for the poll backend everywhere, the shim's watcher
// thread waits (WatcherDriver).

import { BACKEND_NAMES, type AnyBackendName, type Backend, type BackendName } from './backends';
import { BlockingDriver, DRIVER_NAMES, GuestDriver, PortableDriver, WatcherDriver, type Driver, type DriverName } from './drivers';
import type { Engine } from './engine';
import { hostRuntime, loadNative, nativeStatus, type NativeShim } from './native';
import { describe } from './validate';
import { watchdogStatus } from './watchdog';

/** What this host has: from {@link IOLoop.host}. */
export interface HostInfo {
  /** 'node', 'bun', 'deno', or another runtime's name. */
  runtime: 'node' | 'bun' | 'deno' | string;
  /** The runtime's version. */
  version: string;
  /** `true` when the native shim is in use; otherwise why not (not built, the load error, or disabled by WASM_IOLOOP_NO_NATIVE). */
  native: true | string;
  /** What `new IOLoop({ backend })` accepts here. */
  backends: string[];
  /** What `new IOLoop({ driver })` accepts here. */
  drivers: string[];
  /**
   * `true` when the blocking watchdog addon is in use, so that
   * setBlockingLogThreshold shows the stack of blocking code; otherwise why not
   * (not Node, not built, the load error, or disabled by WASM_IOLOOP_NO_WATCHDOG
   * or WASM_IOLOOP_NO_NATIVE). Without it the warnings come after the fact, with no stack.
   */
  watchdog: true | string;
}

/** What this host has. Never throws. */
export function hostInfo(): HostInfo {
  const status = nativeStatus();
  return {
    runtime: hostRuntime.runtime,
    version: hostRuntime.version,
    native: status.loaded ? true : status.reason,
    backends: availableBackends(),
    drivers: availableDrivers(),
    watchdog: watchdogStatus(),
  };
}

/** The backends that can be opened here. */
export function availableBackends(): BackendName[] {
  if (loadNative() === null) return ['fake'];
  return process.platform === 'linux' ? ['epoll', 'poll', 'fake'] : ['poll', 'fake'];
}

/** The drivers that can run here. */
export function availableDrivers(): DriverName[] {
  return loadNative() === null ? ['portable'] : ['guest', 'blocking', 'portable'];
}

/** The backend new loops get when none is configured or named. */
export function defaultBackend(): AnyBackendName {
  const backends = availableBackends();
  return backends[0] === 'fake' ? 'none' : backends[0]!;
}

/** The driver new loops get when none is named. */
export function defaultDriver(): DriverName {
  return loadNative() === null ? 'portable' : 'guest';
}

/** One line that says what this host has, for every refusal. */
export function hostSummary(): string {
  const info = hostInfo();
  const native = info.native === true ? 'in use' : `not used (${info.native})`;
  return `this host (${info.runtime} ${info.version}; native shim ${native}) has backends ${info.backends.join(', ')} and drivers ${info.drivers.join(', ')}`;
}

/**
 * Checks a backend name (from options or configure).
 * @throws TypeError for a name the API does not know; Error, with {@link hostSummary},
 *   for one this host cannot give.
 */
export function checkBackend(name: unknown, what = 'options.backend'): asserts name is BackendName {
  if (!BACKEND_NAMES.includes(name as BackendName)) {
    throw new TypeError(`${what} must be one of ${BACKEND_NAMES.join(', ')}; got ${describe(name)}`);
  }
  if (!availableBackends().includes(name as BackendName)) {
    throw new Error(`backend '${String(name)}' is not available here: ${hostSummary()}`);
  }
}

/**
 * Resolves the backend and driver of a new loop from what was asked for.
 * @throws TypeError for unknown names; Error for what this host lacks or a pair that
 *   cannot work together, naming what the host has.
 */
export function chooseLoop(backend: unknown, driver: unknown): { backend: AnyBackendName; driver: DriverName } {
  if (driver !== undefined) {
    if (!DRIVER_NAMES.includes(driver as DriverName)) {
      throw new TypeError(`options.driver must be one of ${DRIVER_NAMES.join(', ')}; got ${describe(driver)}`);
    }
    if (!availableDrivers().includes(driver as DriverName)) {
      throw new Error(`driver '${String(driver)}' is not available here: ${hostSummary()}`);
    }
  }
  const d = (driver as DriverName | undefined) ?? defaultDriver();
  if (backend === undefined) {
    return { backend: d === 'portable' ? 'none' : defaultBackend(), driver: d };
  }
  checkBackend(backend);
  if (d === 'portable' && backend !== 'fake') {
    throw new Error(`driver 'portable' watches no fds: it works with backend 'fake' or with none named, not '${backend}'; ${hostSummary()}`);
  }
  return { backend, driver: d };
}

/** Makes the driver `name` for an engine over `backend`. selection has checked the pair. */
export function openDriver(name: DriverName, backend: Backend, engine: Engine): Driver {
  const native = backend.native;
  switch (name) {
    case 'portable':
      return new PortableDriver(engine.turn);
    case 'blocking':
      return new BlockingDriver(engine, backend.calls.wait);
    case 'guest':
      return openGuest(native!, backend, engine);
  }
}

function openGuest(native: NativeShim, backend: Backend, engine: Engine): Driver {
  const fd = engine.core.loop_fd();
  if (backend.watch === 'epoll' && hostRuntime.libuv) return new GuestDriver(native, fd, engine.turn);
  return new WatcherDriver(native, fd, backend.watch ?? 'epoll', engine.turn);
}
