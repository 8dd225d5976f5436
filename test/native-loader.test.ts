// Loading the native shim (src/native.ts) and its `layout` object: the shared
// constants from bindings/layout.h agree with the OS's epoll/poll values and
// with their source of truth, assembly/layout.ts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as NativeModule from '../src/native';


/** A fresh copy of src/native.ts (its cache empty) whose calls see `env` applied to process.env. */
function freshLoader(env: Record<string, string | undefined>): typeof NativeModule {
  let mod!: typeof NativeModule;
  jest.isolateModules(() => {
    mod = require('../src/native') as typeof NativeModule;
  });
  return {
    ...mod,
    loadNative: () => withEnv(() => mod.loadNative()),
    requireNative: (what: string) => withEnv(() => mod.requireNative(what)),
  };
  function withEnv<T>(fn: () => T): T {
    const outer: Record<string, string | undefined> = {};
    for (const key of Object.keys(env)) {
      outer[key] = process.env[key];
      if (env[key] === undefined) delete process.env[key];
      else process.env[key] = env[key];
    }
    try {
      return fn();
    } finally {
      for (const key of Object.keys(outer)) {
        if (outer[key] === undefined) delete process.env[key];
        else process.env[key] = outer[key];
      }
    }
  }
}

/** The `export const NAME: type = value;` lines of assembly/layout.ts. */
function assemblyLayout(): Record<string, number> {
  const source = fs.readFileSync(path.join(__dirname, '..', 'assembly', 'layout.ts'), 'utf8');
  const out: Record<string, number> = {};
  for (const m of source.matchAll(/^export const (\w+): \w+ = (0x[0-9a-f]+|\d+(?:\.\d+)?);/gim)) {
    out[m[1]] = Number(m[2]);
  }
  return out;
}

describe('native shim loader and layout', () => {
  test('load_native_returns_the_same_cached_shim_every_time', () => {
    const loader = freshLoader({ WASM_IOLOOP_NO_NATIVE: undefined });
    const a = loader.loadNative();
    expect(a).not.toBeNull();
    expect(loader.loadNative()).toBe(a);
    expect(loader.requireNative('x')).toBe(a);
  });

  test('no_native_env_makes_load_native_null_and_require_native_explain', () => {
    const loader = freshLoader({ WASM_IOLOOP_NO_NATIVE: '1' });
    expect(loader.loadNative()).toBeNull();
    expect(() => loader.requireNative("backend 'epoll'")).toThrow(
      "backend 'epoll' needs the native shim, which is not used here: disabled by WASM_IOLOOP_NO_NATIVE=1",
    );
  });

  test('layout_event_bits_equal_the_os_epoll_and_poll_constants', () => {
    const { layout } = freshLoader({}).requireNative('test');
    expect([layout.EV_READ, layout.EV_WRITE, layout.EV_ERROR]).toEqual([
      layout.EPOLLIN,
      layout.EPOLLOUT,
      layout.EPOLLERR | layout.EPOLLHUP,
    ]);
    expect([layout.EV_READ, layout.EV_WRITE, layout.EV_ERROR]).toEqual([
      layout.POLLIN,
      layout.POLLOUT,
      layout.POLLERR | layout.POLLHUP,
    ]);
    expect([layout.CTL_ADD, layout.CTL_DEL, layout.CTL_MOD]).toEqual([
      layout.EPOLL_CTL_ADD,
      layout.EPOLL_CTL_DEL,
      layout.EPOLL_CTL_MOD,
    ]);
    expect(layout.EV_NONE).toBe(0);
  });

  test('layout_equals_its_source_of_truth_assembly_layout_ts', () => {
    const { layout } = freshLoader({}).requireNative('test');
    const truth = assemblyLayout();
    const shared = [
      'EV_NONE', 'EV_READ', 'EV_WRITE', 'EV_ERROR', 'EVENT_SIZE', 'EVENT_TOKEN_OFFSET',
      'EVENT_EVENTS_OFFSET', 'HANDLER_SLOT_BITS', 'WAKER_TOKEN', 'CTL_ADD', 'CTL_DEL', 'CTL_MOD',
    ] as const;
    for (const name of shared) expect({ name, value: layout[name] }).toEqual({ name, value: truth[name] });
  });

  test('layout_is_frozen', () => {
    const { layout } = freshLoader({}).requireNative('test');
    expect(Object.isFrozen(layout)).toBe(true);
  });

  test('the_shim_exports_exactly_the_functions_the_NativeShim_interface_documents', () => {
    const shim = freshLoader({}).requireNative('test') as unknown as Record<string, unknown>;
    const functions = Object.keys(shim).filter((k) => typeof shim[k] === 'function').sort();
    // The method signatures of `interface NativeShim` in src/native.ts.
    const source = fs.readFileSync(path.join(__dirname, '..', 'src', 'native.ts'), 'utf8');
    const body = /export interface NativeShim \{([\s\S]*?)\n\}/.exec(source)![1]!;
    const documented = [...body.matchAll(/^  (\w+)\(/gm)].map((m) => m[1]!).sort();
    expect(documented.length).toBeGreaterThan(20);
    expect(functions).toEqual(documented);
  });
});
