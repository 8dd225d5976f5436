// The published package: `npm pack` gives a tarball with dist/, wasm/core.wasm and
// the prebuilt native shim (scripts/prebuild.js, the prepack script), and that
// tarball, installed with no install scripts run and no registry, works in Node,
// Deno and Bun: the loader takes the prebuilt binary (there is no build/ in the
// installed package), the default backend is epoll, and a pipe handler fires.
// Deno without FFI permission falls back to the portable driver and says why.
//
// The tarball is packed as `npm pack` packs it, faster: `npm pack` runs prepack
// (node scripts/prebuild.js), then prepare (npm run build = build:wasm, build:ts),
// then packs. Here prebuild.js runs as is, each build step runs only when its
// output is older than its sources (the build is a function of its sources, so a
// fresh output is what it would write again), and `npm pack --ignore-scripts`
// packs the same file list. The first test checks that the pack lifecycle scripts
// are still those three steps, so the shortcut cannot drift from `npm pack`.
//
// Everything the test makes (tarball, installed app, npm and Deno caches) lives in
// one temp dir, removed at the end after every child process has exited.
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..');
const PKG = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  scripts: Record<string, string>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
};
const { prebuiltFile } = require('../scripts/prebuild.js') as { prebuiltFile: () => string };

const CHILD_TIMEOUT_MS = 60_000;

interface Run {
  readonly command: string;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/**
 * The environment of every child: the test's own, without what points the loader
 * elsewhere (WASM_IOLOOP_*), preloads into processes (NODE_OPTIONS, LD_PRELOAD, as
 * test:asan sets for the suite's own processes: the children run the packaged,
 * uninstrumented binary), or carries the configuration of an npm that started
 * jest (npm_*, INIT_CWD: `npm install` in the app must not see this package's
 * prefix). Deno and Bun keep their caches in the temp dir.
 */
function childEnv(tmp: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) {
    if (/^(WASM_IOLOOP_|npm_)/i.test(key) || ['NODE_OPTIONS', 'LD_PRELOAD', 'INIT_CWD'].includes(key)) delete env[key];
  }
  return {
    ...env,
    NO_COLOR: '1',
    DENO_NO_UPDATE_CHECK: '1',
    DENO_DIR: path.join(tmp, 'deno-dir'),
    BUN_INSTALL_CACHE_DIR: path.join(tmp, 'bun-cache'),
    BUN_RUNTIME_TRANSPILER_CACHE_PATH: '0',
  };
}

/** Every child started, so that afterAll can wait for all of them. */
const children: Promise<unknown>[] = [];

/** Runs a command to its end (killed after CHILD_TIMEOUT_MS); never rejects. */
function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Run> {
  const start = Date.now();
  const shown = [path.basename(command), ...args].join(' ');
  const done = new Promise<Run>((resolve) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => {
      stderr += `\n[test] killed after ${CHILD_TIMEOUT_MS} ms`;
      child.kill('SIGKILL');
    }, CHILD_TIMEOUT_MS);
    child.on('error', (error) => {
      stderr += `\n[test] ${error.message}`;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ command: shown, code, signal, stdout, stderr, ms: Date.now() - start });
    });
  });
  children.push(done);
  return done;
}

function describeRun(r: Run): string {
  return `\`${r.command}\` exited with ${r.code ?? r.signal} after ${r.ms} ms\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

async function runOk(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Run> {
  const r = await run(command, args, cwd, env);
  if (r.code !== 0) throw new Error(describeRun(r));
  return r;
}

/** The newest mtime (ms) of the files under `dir` (recursively) and of `extra`. */
function newest(dir: string, extra: string[] = []): number {
  let max = 0;
  for (const f of extra) max = Math.max(max, fs.statSync(f).mtimeMs);
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) max = Math.max(max, fs.statSync(path.join(entry.parentPath, entry.name)).mtimeMs);
  }
  return max;
}

function mtime(file: string): number {
  return fs.existsSync(file) ? fs.statSync(file).mtimeMs : -1;
}

function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function executable(file: string): string {
  const mode = fs.statSync(file).mode; // throws if the devDependency is not installed
  if ((mode & 0o111) !== 0o111) fs.chmodSync(file, mode | 0o755);
  return file;
}

const NODE = process.execPath;
const NPM_CLI = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
const DENO = path.join(ROOT, 'node_modules', '@deno', 'linux-x64-glibc', 'deno');
const BUN = path.join(ROOT, 'node_modules', '@oven', 'bun-linux-x64', 'bin', 'bun');

/** npm as the running node's own: `node npm-cli.js`, else `npm` on PATH. */
function npm(): [string, string[]] {
  return fs.existsSync(NPM_CLI) ? [NODE, [NPM_CLI]] : ['npm', []];
}

/**
 * Run in the installed app under each host: what the host has, the loader's status
 * (dist/native.js, the module instance the package entry uses: `sameInstance`
 * checks that), and a loop that waits for a timer and, with the shim, for a pipe
 * handler. Prints one line: `PROBE <json>`.
 */
const PROBE = `
import { createRequire } from 'node:module';
import * as path from 'node:path';
import process from 'node:process';
import * as pkg from 'wasm-ioloop';

const { IOLoop, READ, sys } = pkg;
const require = createRequire(import.meta.url);
const root = path.dirname(require.resolve('wasm-ioloop/package.json'));
const entry = require(path.join(root, 'dist', 'index.js'));
const native = require(path.join(root, 'dist', 'native.js'));
const out = {
  sameInstance: entry.IOLoop === IOLoop,
  root,
  host: IOLoop.host(),
  status: native.nativeStatus(),
  libuv: native.hostRuntime.libuv,
  watcher: typeof native.loadNative()?.watcherOpen === 'function',
  backend: IOLoop.configuredBackend(),
};
const print = () => console.log('PROBE ' + JSON.stringify(out));
const watchdog = setTimeout(() => {
  out.error = 'watchdog: the loop did not finish in 20 s';
  print();
  process.exit(3);
}, 20000);
try {
  const loop = new IOLoop();
  try {
    await loop.run(async () => {
      const t0 = loop.time();
      await new Promise((resolve) => loop.callLater(0.01, resolve));
      out.timer = { fired: true, elapsed: loop.time() - t0 };
      if (out.host.native === true) {
        const [r, w] = sys.pipe();
        try {
          out.handler = await new Promise((resolve) => {
            loop.addHandler(r, (fd, events) => {
              const buf = new Uint8Array(8);
              const n = sys.read(fd, buf);
              loop.removeHandler(fd);
              resolve({ fired: true, events, n, byte: buf[0] });
            }, READ);
            loop.callLater(0.005, () => sys.write(w, new Uint8Array([42])));
          });
        } finally {
          sys.close(r);
          sys.close(w);
        }
      }
    }, { timeout: 10 });
  } finally {
    loop.close();
  }
} catch (e) {
  out.error = String((e && e.stack) || e);
}
clearTimeout(watchdog);
print();
`;

interface Probe {
  sameInstance: boolean;
  root: string;
  host: { runtime: string; version: string; native: true | string; backends: string[]; drivers: string[] };
  status: { loaded: boolean; reason: string; path: string; source: string | null };
  libuv: boolean;
  watcher: boolean;
  backend: string;
  timer?: { fired: boolean; elapsed: number };
  handler?: { fired: boolean; events: number; n: number; byte: number };
  error?: string;
}

/**
 * The probe's result; throws with the whole output if the run printed none, or
 * failed (`check` runs first, to name a cause the failure follows from).
 */
async function probeOf(pending: Promise<Run>, check: (got: Probe) => void = () => {}): Promise<Probe> {
  const r = await pending;
  const line = r.stdout.split('\n').find((l) => l.startsWith('PROBE '));
  if (line === undefined) throw new Error(`the probe printed no result: ${describeRun(r)}`);
  const got = JSON.parse(line.slice('PROBE '.length)) as Probe;
  check(got);
  if (got.error !== undefined || r.code !== 0) throw new Error(`the probe under ${got.host.runtime} failed: ${got.error}\n${describeRun(r)}`);
  return got;
}

const started = Date.now();
const phases: string[] = [];
let tmp = '';
let app = '';
let installed = '';
let pack: { filename: string; size: number; unpackedSize: number; entryCount: number; files: { path: string; size: number }[] };
const runs: Record<'node' | 'deno' | 'denoNoFfi' | 'denoReadOnly' | 'bun', Promise<Run>> = {} as never;

async function phase<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const t = Date.now();
  try {
    return await fn();
  } finally {
    phases.push(`${name} ${Date.now() - t} ms`);
  }
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-ioloop-package-'));
  const env = childEnv(tmp);
  const [npmCmd, npmLead] = npm();

  // prepack: the prebuilt binary (building the shim first if it is stale).
  await phase('prepack (scripts/prebuild.js)', () => runOk(NODE, [path.join(ROOT, 'scripts', 'prebuild.js')], ROOT, env));
  // prepare, step by step, each only if its output is older than its sources.
  if (mtime(path.join(ROOT, 'wasm', 'core.wasm')) < newest(path.join(ROOT, 'assembly'), [path.join(ROOT, 'asconfig.json')])) {
    await phase('build:wasm', () => runOk(npmCmd, [...npmLead, 'run', 'build:wasm'], ROOT, env));
  }
  const distStamp = path.join(ROOT, 'dist', 'index.mjs'); // written last by scripts/build-ts.js
  if (mtime(distStamp) < newest(path.join(ROOT, 'src'), [path.join(ROOT, 'scripts', 'build-ts.js'), path.join(ROOT, 'tsconfig.build.json')])) {
    await phase('build:ts', () => runOk(npmCmd, [...npmLead, 'run', 'build:ts'], ROOT, env));
  }

  const packed = await phase('npm pack --ignore-scripts', () =>
    runOk(npmCmd, [...npmLead, 'pack', '--ignore-scripts', '--json', '--pack-destination', tmp], ROOT, env),
  );
  pack = (JSON.parse(packed.stdout) as (typeof pack)[])[0]!;
  const tarball = path.join(tmp, pack.filename);

  app = path.join(tmp, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }, null, 2));
  fs.writeFileSync(path.join(app, 'probe.mjs'), PROBE);
  await phase('npm install --ignore-scripts --offline', () =>
    runOk(npmCmd, [...npmLead, 'install', '--ignore-scripts', '--offline', '--no-audit', '--no-fund', '--cache', path.join(tmp, 'npm-cache'), tarball], app, env),
  );
  installed = path.join(app, 'node_modules', PKG.name);

  // The four hosts run at once; each test awaits its own.
  const deno = executable(DENO);
  const denoArgs = ['run', '--node-modules-dir=manual', '--cached-only', '--no-lock'];
  const timed = (name: string, p: Promise<Run>): Promise<Run> => p.then((r) => (phases.push(`${name} ${r.ms} ms`), r));
  runs.node = timed('node probe', run(NODE, ['probe.mjs'], app, env));
  runs.deno = timed('deno probe -A', run(deno, [...denoArgs, '-A', 'probe.mjs'], app, env));
  runs.denoNoFfi = timed('deno probe -A --deny-ffi', run(deno, [...denoArgs, '-A', '--deny-ffi', 'probe.mjs'], app, env));
  runs.denoReadOnly = timed('deno probe --allow-read', run(deno, [...denoArgs, '--allow-read', 'probe.mjs'], app, env));
  runs.bun = timed('bun probe', run(executable(BUN), ['--no-install', 'probe.mjs'], app, env));
}, 240_000);

afterAll(async () => {
  await Promise.allSettled(children);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  const lines = pack ? pack.files.map((f) => `  ${String(f.size).padStart(7)}  ${f.path}`) : [];
  console.log(
    [
      `package test: ${Date.now() - started} ms in all (${phases.join(', ')})`,
      pack ? `${pack.filename}: ${pack.size} bytes packed, ${pack.unpackedSize} unpacked, ${pack.entryCount} files:` : 'no tarball',
      ...lines,
    ].join('\n'),
  );
}, 60_000);

test('the pack lifecycle is prebuild.js, then the build: what this test does before `npm pack --ignore-scripts`', () => {
  const s = PKG.scripts;
  expect({ prepack: s.prepack, prepare: s.prepare, postpack: s.postpack, build: s.build }).toEqual({
    prepack: 'node scripts/prebuild.js',
    prepare: 'npm run build',
    postpack: undefined,
    build: 'npm run build:wasm && npm run build:ts',
  });
});

test('the tarball holds dist/, wasm/core.wasm and the one prebuilt shim, and the package needs nothing from a registry', () => {
  const files = pack.files.map((f) => f.path);
  expect(prebuiltFile()).toBe('prebuilds/linux-x64/wasm-ioloop.glibc.node');
  for (const f of ['package.json', 'dist/index.js', 'dist/index.mjs', 'dist/index.d.ts', 'dist/native.js', 'wasm/core.wasm', 'scripts/install-native.js']) {
    expect(files).toContain(f);
  }
  // All of dist/, as built.
  const dist = fs.readdirSync(path.join(ROOT, 'dist'), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(ROOT, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
  expect(files.filter((f) => f.startsWith('dist/')).sort()).toEqual(dist.sort());
  expect(files.filter((f) => f.startsWith('prebuilds/'))).toEqual([prebuiltFile()]);
  expect(files.filter((f) => /^(build|build-asan|src|test|node_modules)\//.test(f))).toEqual([]);
  // The prebuilt binary is the local build, byte for byte.
  expect(sha256(path.join(installed, prebuiltFile()))).toBe(sha256(path.join(ROOT, 'build', 'Release', 'wasm_ioloop.node')));
  // No runtime dependencies: an offline install of the tarball alone is complete.
  const shipped = JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8')) as typeof PKG;
  expect([shipped.dependencies, shipped.peerDependencies, shipped.optionalDependencies]).toEqual([undefined, undefined, undefined]);
  // No install script ran: there is no local build in the installed package.
  expect(fs.existsSync(path.join(installed, 'build'))).toBe(false);
});

/** What every host with the shim reports: the prebuilt binary, epoll, the handler fired. */
function expectNative(got: Probe, runtime: string): void {
  expect(got.sameInstance).toBe(true);
  expect(got.root).toBe(fs.realpathSync(installed));
  expect(got.host).toMatchObject({ runtime, native: true, backends: ['epoll', 'poll', 'wasi', 'fake'], drivers: ['guest', 'blocking', 'portable'] });
  expect(got.status).toEqual({ loaded: true, reason: '', path: path.join(got.root, prebuiltFile()), source: 'prebuilt' });
  expect(got.backend).toBe('epoll');
  expect(got.timer?.fired).toBe(true);
  expect(got.handler).toEqual({ fired: true, events: 1, n: 1, byte: 42 });
}

test('Node: the installed tarball loads the prebuilt shim, runs on epoll, and a pipe handler fires', async () => {
  const got = await probeOf(runs.node);
  expectNative(got, 'node');
  expect(got.libuv).toBe(true); // the guest driver nests in libuv
}, 90_000);

test('Deno -A: the same, from node_modules, offline', async () => {
  const got = await probeOf(runs.deno);
  expectNative(got, 'deno');
  expect(got.libuv).toBe(false); // the guest driver is the shim's watcher thread
  expect(got.watcher).toBe(true);
}, 90_000);

test('Deno without FFI permission: the portable driver, IOLoop.host().native says why, timers still run', async () => {
  const got = await probeOf(runs.denoNoFfi);
  expect(got.sameInstance).toBe(true);
  expect(got.host).toMatchObject({ runtime: 'deno', backends: ['wasi', 'fake'], drivers: ['portable'] });
  expect(got.host.native).toEqual(expect.stringContaining(`prebuilt ${path.join(got.root, prebuiltFile())} failed to load`));
  expect(got.host.native).toMatch(/--allow-ffi/);
  expect(got.status).toMatchObject({ loaded: false, source: null, path: '' });
  expect(got.backend).toBe('wasi'); // the package's own WASI provider over Deno's node:net
  expect(got.timer?.fired).toBe(true);
  expect(got.handler).toBeUndefined();
}, 90_000);

test('Deno with read permission only (no env, no FFI): the package imports, falls back and says why, and timers run', async () => {
  const got = await probeOf(runs.denoReadOnly);
  expect(got.host).toMatchObject({ runtime: 'deno', drivers: ['portable'] });
  expect(got.host.native).toMatch(/--allow-ffi/);
  expect(got.timer?.fired).toBe(true);
}, 90_000);

test('Bun: the prebuilt shim loads and its watcher thread drives the loop', async () => {
  // Bun has no libuv: its guest driver is the shim's watcher thread, which must be there.
  const got = await probeOf(runs.bun, (p) => {
    if (p.host.native === true && !p.watcher) {
      throw new Error(`the shim in the tarball has no watcherOpen export, so Bun's guest driver (the watcher thread) cannot run; probe: ${JSON.stringify(p)}`);
    }
  });
  expectNative(got, 'bun');
  expect(got.libuv).toBe(false);
}, 90_000);
