// The one place that decides which backend and driver a loop gets, and what this
// host can give. IOLoop's constructor, IOLoop.configure and IOLoop.host all ask here,
// so a name is checked once and every refusal reads the same.
//
// What a host has:
//   native shim loaded  backends epoll (Linux), poll, wasi, fake; drivers guest,
//                       blocking, portable (portable only with fake, wasi or no
//                       backend named)
//   no native shim      backends wasi, fake (and `none`); driver portable, and
//                       blocking over backend wasi only. The default is wasi over
//                       the package's own WASI provider where it loads, else `none`.
// Backend wasi (no native code on any host) takes its driver from its WASI host: a
// host that tells when an fd became ready (`onReady`, the package's provider, whose
// poll_oneoff never blocks) gets the portable driver; any other (node:wasi, whose
// poll_oneoff blocks the thread) the blocking driver, which waits in poll_oneoff
// with the real timeout. Neither has a poller fd, so no guest driver.
// Which guest driver: in Node, an epoll poller nests in libuv (guestDriver); in
// Bun and Deno (no libuv), and for the poll backend everywhere, the shim's watcher
// thread waits (watcherDriver).

import * as fs from 'fs';
import * as path from 'path';
import { BACKEND_NAMES, type AnyBackendName, type Backend, type BackendName } from './backends';
import type { WasiHost } from './core';
import { BlockingDriver, DRIVER_NAMES, PortableDriver, guestDriver, watcherDriver, type Driver, type DriverName } from './drivers';
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

/** The backends that can be opened here: wasi on every host, since it needs no native code. */
export function availableBackends(): BackendName[] {
  if (loadNative() === null) return ['wasi', 'fake'];
  return process.platform === 'linux' ? ['epoll', 'poll', 'wasi', 'fake'] : ['poll', 'wasi', 'fake'];
}

/**
 * The drivers that can run here with any backend they fit. Without the native shim
 * that is portable; blocking then works too, but only over backend wasi with a host
 * whose poll_oneoff blocks (node:wasi), which chooseLoop allows.
 */
export function availableDrivers(): DriverName[] {
  return loadNative() === null ? ['portable'] : ['guest', 'blocking', 'portable'];
}

/** The backend new loops get when none is configured or named. */
export function defaultBackend(): AnyBackendName {
  if (loadNative() !== null) return availableBackends()[0]!;
  return wasiProvider() !== null ? 'wasi' : 'none';
}

/** Makes the package's own WASI provider: one per loop. */
type ProviderFactory = () => WasiHost;

let provider: ProviderFactory | null | undefined;

/**
 * The package's own WASI preview1 provider (its sockets are the host's TCP
 * sockets, through node:net), or null where it is not part of this build. Loaded
 * once, on first use.
 */
export function wasiProvider(): ProviderFactory | null {
  if (provider === undefined) provider = loadWasiProvider();
  return provider;
}

/** Sets (or, with undefined, forgets) the provider factory; for the package's provider glue and tests. Internal. */
export function setWasiProvider(factory: ProviderFactory | null | undefined): void {
  provider = factory;
}

/**
 * The provider: dist/wasi/index.js in the built package (scripts/build-ts.js puts
 * it there), or its TypeScript source bindings/wasi/index.ts beside src/ where the
 * host runs TypeScript (tsx, jest, Bun, Deno; Deno's require needs the file's
 * name). Its sockets are unref'd, as native fds are: a running loop keeps the host
 * alive through its driver, a stopped or closed one does not.
 */
function loadWasiProvider(): ProviderFactory | null {
  for (const file of [path.join(__dirname, 'wasi', 'index.js'), path.join(__dirname, '..', 'bindings', 'wasi', 'index.ts')]) {
    try {
      if (!fs.existsSync(file)) continue;
      const { WasiProvider } = require(file) as { WasiProvider: new (options?: { ref?: boolean }) => WasiHost };
      if (typeof WasiProvider === 'function') return () => new WasiProvider({ ref: false });
    } catch {
      // A host that refuses the read, or a source it cannot run: try the next.
    }
  }
  return null;
}

/** True for a host that tells when an fd may have become ready, so the portable driver can wait for it. */
function tellsReadiness(host: WasiHost): boolean {
  return typeof (host as { onReady?: unknown }).onReady === 'function';
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
 * Resolves the backend, driver and WASI host of a new loop from what was asked for.
 * Nothing named: the host's default (defaultBackend, with its driver). Driver
 * 'portable' alone: backend none, as on every host. `wasi` (options.wasi) implies
 * backend 'wasi' when no backend is named; without it, backend 'wasi' gets a new
 * instance of the package's provider.
 * @throws TypeError for unknown names, or a WASI host with another backend; Error
 *   for what this host lacks or a combination that cannot work, naming what the
 *   host has.
 */
export function chooseLoop(backend: unknown, driver: unknown, wasi?: unknown): { backend: AnyBackendName; driver: DriverName; wasi: WasiHost | null } {
  if (driver !== undefined) {
    if (!DRIVER_NAMES.includes(driver as DriverName)) {
      throw new TypeError(`options.driver must be one of ${DRIVER_NAMES.join(', ')}; got ${describe(driver)}`);
    }
    // Blocking without the shim is for backend wasi only: decided below.
    if (driver !== 'blocking' && !availableDrivers().includes(driver as DriverName)) {
      throw new Error(`driver '${String(driver)}' is not available here: ${hostSummary()}`);
    }
  }
  if (wasi !== undefined) {
    if (typeof wasi !== 'object' || wasi === null) {
      throw new TypeError(`options.wasi must be a WASI preview1 host (node:wasi's WASI, or an object with wasiImport or getImportObject()), got ${describe(wasi)}`);
    }
    if (backend !== undefined && backend !== 'wasi') {
      throw new TypeError(`options.wasi is for backend 'wasi' only; this loop's backend is '${String(backend)}'`);
    }
    backend = 'wasi';
  }
  const named = driver as DriverName | undefined;
  let b: AnyBackendName;
  if (backend === undefined) {
    // The portable driver named alone keeps its meaning on every host: timers and
    // callbacks, no fds (backend none); the default loop is the host's default.
    b = named === 'portable' ? 'none' : defaultBackend();
  } else {
    checkBackend(backend);
    b = backend;
  }
  if (b === 'wasi') return chooseWasi(named, (wasi as WasiHost | undefined) ?? null);
  if (named === 'blocking' && !availableDrivers().includes('blocking')) {
    throw new Error(`driver 'blocking' is not available here: ${hostSummary()}; without the native shim it waits only in the poll_oneoff of a WASI host that blocks (backend 'wasi' with node:wasi's WASI as options.wasi)`);
  }
  const d = named ?? defaultDriver();
  if (d === 'portable' && b !== 'fake' && b !== 'none') {
    throw new Error(`driver 'portable' watches no fds: it works with backend 'fake' or with none named, not '${b}' (or with backend 'wasi' over a WASI host that tells when its fds are ready, as the package's provider does); ${hostSummary()}`);
  }
  return { backend: b, driver: d, wasi: null };
}

/**
 * Backend 'wasi': the driver that fits its host (options.wasi; null stands for the
 * package's provider, which {@link wasiHostFor} makes once the loop is made).
 */
function chooseWasi(driver: DriverName | undefined, wasi: WasiHost | null): { backend: 'wasi'; driver: DriverName; wasi: WasiHost | null } {
  if (wasi === null && wasiProvider() === null) {
    throw new Error(`backend 'wasi' needs options.wasi here (node:wasi's WASI, or another preview1 host): the package's own WASI provider is not part of this build; ${hostSummary()}`);
  }
  // The package's provider tells when its sockets become ready.
  const ready = wasi === null || tellsReadiness(wasi);
  const d = driver ?? (ready ? 'portable' : 'blocking');
  if (d === 'guest') {
    throw new Error("driver 'guest' watches the poller's fd, and backend 'wasi' has none: use driver 'portable' with a WASI host that tells when an fd is ready (the package's provider), or 'blocking' with one whose poll_oneoff blocks (node:wasi)");
  }
  if (d === 'portable' && !ready) {
    throw new Error("driver 'portable' needs a WASI host that tells when an fd is ready (onReady, as the package's provider does); this one does not (node:wasi's poll_oneoff blocks instead): use driver 'blocking'");
  }
  if (d === 'blocking' && ready) {
    throw new Error("driver 'blocking' waits in poll_oneoff, and this WASI host's never blocks: its sockets become ready on the host's own loop, which the blocking driver does not let run (the package's provider): use driver 'portable'");
  }
  return { backend: 'wasi', driver: d, wasi };
}

/** The WASI host of a loop chooseLoop chose: its options.wasi, else a new instance of the package's provider; null for other backends. */
export function wasiHostFor(choice: { backend: AnyBackendName; wasi: WasiHost | null }): WasiHost | null {
  if (choice.backend !== 'wasi') return null;
  return choice.wasi ?? wasiProvider()!();
}

/** Makes the driver `name` for an engine over `backend`. selection has checked the pair. */
export function openDriver(name: DriverName, backend: Backend, engine: Engine): Driver {
  const native = backend.native;
  switch (name) {
    case 'portable':
      return new PortableDriver(engine.turn, backend.onReady);
    case 'blocking':
      return new BlockingDriver(engine, backend.calls.wait);
    case 'guest':
      return openGuest(native!, backend, engine);
  }
}

function openGuest(native: NativeShim, backend: Backend, engine: Engine): Driver {
  const fd = engine.core.loop_fd();
  if (backend.watch === 'epoll' && hostRuntime.libuv) return guestDriver(native, fd, engine.turn);
  return watcherDriver(native, fd, backend.watch ?? 'epoll', engine.turn);
}
