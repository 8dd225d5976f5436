// The WASI build of the core (wasm/core-wasi.wasm, asconfig target `wasi`): one
// source with the epoll build, only the poller behind the global `Poller` differs;
// it imports nothing but nine functions of wasi_snapshot_preview1; its errno
// numbers are mapped to Linux's; and the loader's rules (src/core.ts,
// instantiateWasiCore) for whatever preview1 host it is given.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { coreModule, coreWasiModule, instantiateCore, instantiateWasiCore, WASI_IMPORTS } from '../src/core';

const ROOT = path.join(__dirname, '..');

/** The stub of a preview1 function: returns ENOSYS (52) and counts its calls. */
function preview1Stubs(): { fns: Record<string, (...a: unknown[]) => number>; calls: string[] } {
  const calls: string[] = [];
  const fns: Record<string, (...a: unknown[]) => number> = {};
  for (const name of WASI_IMPORTS) {
    fns[name] = () => {
      calls.push(name);
      return 52;
    };
  }
  return { fns, calls };
}

describe('the build', () => {
  test('imports exactly the nine preview1 functions, and nothing from any other module', () => {
    const imports = WebAssembly.Module.imports(coreWasiModule()).map((i) => `${i.module}.${i.name}:${i.kind}`);
    expect(imports.sort()).toEqual(
      ['clock_time_get', 'fd_close', 'fd_read', 'fd_write', 'poll_oneoff', 'sock_accept', 'sock_recv', 'sock_send', 'sock_shutdown']
        .map((n) => `wasi_snapshot_preview1.${n}:function`),
    );
    expect([...WASI_IMPORTS].sort()).toEqual(imports.map((i) => i.split('.')[1]!.split(':')[0]).sort());
  });

  test('exports the same names as the epoll build, memory included, and neither _start nor _initialize', () => {
    const names = (m: WebAssembly.Module) => WebAssembly.Module.exports(m).map((e) => `${e.name}:${e.kind}`).sort();
    expect(names(coreWasiModule())).toEqual(names(coreModule()));
    expect(names(coreWasiModule())).toContain('memory:memory');
    expect(names(coreWasiModule()).some((n) => n.startsWith('_start') || n.startsWith('_initialize'))).toBe(false);
  });

  test('the epoll build still imports only its four ioloop functions', () => {
    expect(WebAssembly.Module.imports(coreModule()).map((i) => i.module)).toEqual(['ioloop', 'ioloop', 'ioloop', 'ioloop']);
  });

  test('asconfig.json has both targets over the same entries, and build:wasm builds both', () => {
    const config = JSON.parse(fs.readFileSync(path.join(ROOT, 'asconfig.json'), 'utf8'));
    expect(config.targets.release.outFile).toBe('wasm/core.wasm');
    expect(config.targets.wasi.outFile).toBe('wasm/core-wasi.wasm');
    expect(config.targets.release.use).toEqual(['Poller=EpollPoller']);
    expect(config.targets.wasi.use).toEqual(['Poller=WasiPoller']);
    const { release, wasi } = config.targets;
    const rest = (t: Record<string, unknown>) => Object.fromEntries(Object.entries(t).filter(([k]) => !['outFile', 'textFile', 'use'].includes(k)));
    expect(rest(wasi)).toEqual(rest(release));
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.scripts['build:wasm']).toBe('asc --target release && asc --target wasi');
    expect(pkg.files).toEqual(expect.arrayContaining(['wasm/core.wasm', 'wasm/core-wasi.wasm']));
  });

  test('only the poller differs: no other core file names a poller function or an import', () => {
    const dir = path.join(ROOT, 'assembly');
    for (const file of fs.readdirSync(dir)) {
      if (!file.endsWith('.ts') || file === 'poller.ts' || file === 'poller-wasi.ts') continue;
      const text = fs.readFileSync(path.join(dir, file), 'utf8');
      expect({ file, imports: /@external|from "\.\/poller/.test(text) }).toEqual({ file, imports: false });
    }
  });

  test('both pollers implement the same interface, member by member', () => {
    const members = (file: string, ns: string): string[] => {
      const text = fs.readFileSync(path.join(ROOT, 'assembly', file), 'utf8');
      const start = text.indexOf(`@global namespace ${ns} {`);
      expect(start).toBeGreaterThan(0);
      return [...text.slice(start).matchAll(/^ {2}export function (\w+)\(([^)]*)\): (\w+)/gm)].map(
        // Parameter types only: the names may differ.
        (m) => `${m[1]}(${m[2]!.split(',').map((p) => p.split(':')[1]?.trim() ?? '').join(', ')}): ${m[3]}`,
      );
    };
    const epoll = members('poller.ts', 'EpollPoller');
    expect(epoll.length).toBe(18);
    expect(members('poller-wasi.ts', 'WasiPoller')).toEqual(epoll);
  });
});

describe('errno numbers', () => {
  // preview1's errno enumeration, in its order (witx `errno`): the value is the index.
  const PREVIEW1 = [
    'SUCCESS', '2BIG', 'ACCES', 'ADDRINUSE', 'ADDRNOTAVAIL', 'AFNOSUPPORT', 'AGAIN', 'ALREADY', 'BADF', 'BADMSG',
    'BUSY', 'CANCELED', 'CHILD', 'CONNABORTED', 'CONNREFUSED', 'CONNRESET', 'DEADLK', 'DESTADDRREQ', 'DOM', 'DQUOT',
    'EXIST', 'FAULT', 'FBIG', 'HOSTUNREACH', 'IDRM', 'ILSEQ', 'INPROGRESS', 'INTR', 'INVAL', 'IO',
    'ISCONN', 'ISDIR', 'LOOP', 'MFILE', 'MLINK', 'MSGSIZE', 'MULTIHOP', 'NAMETOOLONG', 'NETDOWN', 'NETRESET',
    'NETUNREACH', 'NFILE', 'NOBUFS', 'NODEV', 'NOENT', 'NOEXEC', 'NOLCK', 'NOLINK', 'NOMEM', 'NOMSG',
    'NOPROTOOPT', 'NOSPC', 'NOSYS', 'NOTCONN', 'NOTDIR', 'NOTEMPTY', 'NOTRECOVERABLE', 'NOTSOCK', 'NOTSUP', 'NOTTY',
    'NXIO', 'OVERFLOW', 'OWNERDEAD', 'PERM', 'PIPE', 'PROTO', 'PROTONOSUPPORT', 'PROTOTYPE', 'RANGE', 'ROFS',
    'SPIPE', 'SRCH', 'STALE', 'TIMEDOUT', 'TXTBSY', 'XDEV', 'NOTCAPABLE',
  ];
  const core = instantiateWasiCore({ wasiImport: preview1Stubs().fns }).exports;

  test.each(PREVIEW1.map((name, value) => [name, value] as const))('preview1 %s (%i) is the OS errno of the same name', (name, value) => {
    // Node's table lacks these two; Linux's <errno.h> numbers them so.
    const errno: Record<string, number> = { EOWNERDEAD: 130, ENOTRECOVERABLE: 131, ...os.constants.errno };
    const expected = name === 'SUCCESS' ? 0 : name === 'NOTCAPABLE' ? errno.EPERM : errno[`E${name}`];
    expect(expected).toEqual(expect.any(Number));
    expect(core.errno_from_wasi(value)).toBe(expected);
  });

  test("the provider's name-lookup numbers are libuv's, as the native sys returns them; any other is EIO", () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { getSystemErrorName } = require('node:util') as typeof import('node:util');
    expect([256, 257, 258].map((e) => getSystemErrorName(-core.errno_from_wasi(e)))).toEqual(['EAI_NONAME', 'EAI_AGAIN', 'EAI_FAIL']);
    expect([77, 255, 259, 65535].map((e) => core.errno_from_wasi(e))).toEqual(Array(4).fill(os.constants.errno.EIO));
    // The epoll build has the same table.
    const epoll = instantiateCore({ epoll_create: () => 3, epoll_ctl: () => 0, epoll_wait: () => 0, fd_close: () => 0 });
    for (let e = 0; e < 300; e++) expect(epoll.errno_from_wasi(e)).toBe(core.errno_from_wasi(e));
  });
});

describe('the loader', () => {
  test('a host without some functions still links: each missing one returns ENOSYS', () => {
    const { fns } = preview1Stubs();
    const partial = { ...fns };
    delete partial.sock_accept;
    delete partial.sock_shutdown;
    const w = instantiateWasiCore({ wasiImport: partial });
    expect(w.missing).toEqual(['sock_accept', 'sock_shutdown']);
    expect(w.exports.sys_accept(3)).toBe(-os.constants.errno.ENOSYS);
    expect(w.exports.sys_shutdown(3, 2)).toBe(-os.constants.errno.ENOSYS);
  });

  test("getImportObject() comes before wasiImport, and only the nine are passed", () => {
    const used: string[] = [];
    const fns = preview1Stubs().fns;
    const viaObject = { ...fns, fd_close: () => (used.push('object'), 0), proc_exit: () => 0 };
    const viaImport = { ...fns, fd_close: () => (used.push('wasiImport'), 0) };
    const w = instantiateWasiCore({ wasiImport: viaImport, getImportObject: () => ({ wasi_snapshot_preview1: viaObject }) });
    expect(w.exports.sys_close(5)).toBe(0);
    expect(used).toEqual(['object']);
    expect(Object.keys(WebAssembly.Module.imports(coreWasiModule()))).toHaveLength(9);
  });

  test('initialize(instance) is called where the host has it, else setMemory(memory)', () => {
    const fns = preview1Stubs().fns;
    const seen: unknown[] = [];
    const w = instantiateWasiCore({ wasiImport: fns, initialize: (i) => seen.push(i), setMemory: () => seen.push('setMemory') });
    expect(seen).toEqual([w.instance]);
    let memory: unknown = null;
    const b = instantiateWasiCore({ wasiImport: fns, setMemory: (m) => (memory = m) });
    expect(memory).toBe(b.exports.memory);
    expect(memory).toBeInstanceOf(WebAssembly.Memory);
  });

  test('node:wasi accepts the build: initialize needs only the memory export', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { WASI } = require('node:wasi') as typeof import('node:wasi');
    const wasi = new WASI({ version: 'preview1' });
    const w = instantiateWasiCore(wasi);
    expect(w.missing).toEqual([]);
    // clock_now is node:wasi's monotonic clock: it moves as performance.now() does.
    const [c0, p0] = [w.exports.clock_now(), performance.now() / 1000];
    while (performance.now() / 1000 - p0 < 0.02);
    const [c1, p1] = [w.exports.clock_now(), performance.now() / 1000];
    expect(c0).toBeGreaterThan(0);
    expect(Math.abs(c1 - c0 - (p1 - p0))).toBeLessThan(0.002);
    expect(() => wasi.initialize(w.instance)).toThrow(); // a node:wasi host serves one instance
  });

  test('what is not a preview1 host is a TypeError that says what one is', () => {
    expect(() => instantiateWasiCore({} as never)).toThrow(/options\.wasi has neither wasiImport nor getImportObject\(\)\.wasi_snapshot_preview1/);
    expect(() => instantiateWasiCore(null as never)).toThrow(TypeError);
  });
});
