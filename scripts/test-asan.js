#!/usr/bin/env node
// `npm run test:asan`: builds the native shim with AddressSanitizer and
// UndefinedBehaviorSanitizer into build-asan/ and runs the whole jest suite
// (--runInBand) against that build. Any sanitizer report fails the run,
// including one from a child process or worker whose output a test swallowed.
//
// - Sources, defines, include dirs and flags come from binding.gyp, read at run
//   time: every target with sources in bindings/ is built, as
//   build-asan/<target_name>.node. build/Release (node-gyp's build, used by
//   `npm test`) is never touched.
// - Node's headers: npm_config_nodedir, else include/node beside the running
//   node, else node-gyp's cache. No download.
// - C sources (.c) are compiled with $CC (default gcc), C++ sources (.cc, .cpp)
//   with $CXX (default g++) and node-gyp's C++ flags (-std=gnu++17, no RTTI, no
//   exceptions); a target with C++ sources is linked with $CXX.
// - The compiler is $CC (default gcc). Its libasan.so and libubsan.so are
//   LD_PRELOADed into jest and, through the inherited environment, into every
//   process and worker thread the tests start.
// - Every node process also preloads this file (NODE_OPTIONS=--require), which
//   maps requires of build/Release/<target>.node to build-asan/<target>.node:
//   some tests load the shim by that path rather than through src/native.ts
//   (which honours WASM_IOLOOP_NATIVE_PATH, also set).
// - Reports are written to files in a fresh temp dir (log_path); the run fails
//   if any file appears there, and prints them. Before jest, a self-test makes
//   a throwaway process commit one ASan and one UBSan error with its output
//   discarded and checks that both reports land there.
// - It does not build the WebAssembly core: run after `npm test` (or `npm run build`).
// - Extra arguments go to jest: `npm run test:asan -- test/native-sys.test.ts`.
'use strict';

const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const Module = require('module');
const os = require('os');
const path = require('path');

const root = path.join(__dirname, '..');
const outDir = path.join(root, 'build-asan');
const releaseDir = path.join(root, 'build', 'Release');
const prefix = '[test:asan]';
/** In the run's environment: a JSON map of build/Release addon paths to their build-asan builds. */
const REDIRECT_ENV = 'WASM_IOLOOP_ASAN_REDIRECT';

/** node-gyp's own C++ flags (common.gypi's cflags_cc), which a target's flags follow. */
const CXX_DEFAULTS = ['-std=gnu++17', '-fno-rtti', '-fno-exceptions'];

const SANITIZE = [
  // float-cast-overflow (an out-of-range double to integer conversion) is
  // undefined behaviour that GCC's -fsanitize=undefined leaves out.
  '-fsanitize=address,undefined,float-cast-overflow',
  '-fno-sanitize-recover=all',
  '-fno-omit-frame-pointer',
];

// A library preloaded after the two runtimes. With GCC's separate libasan and
// libubsan in one process, libubsan's own log_path setting goes to libasan's
// copy of __sanitizer_set_report_path (ELF interposition: libasan comes first),
// so UBSan would keep printing to stderr, which a test may swallow. This sets
// libubsan's own report path. WASM_IOLOOP_SANITIZER_SELFTEST=asan|ubsan makes
// it commit one error of that kind, for the self-test.
const HELPER_C = String.raw`
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((constructor)) static void wasm_ioloop_sanitizer_helper(void) {
  const char *runtime = getenv("WASM_IOLOOP_UBSAN_RUNTIME");
  const char *log = getenv("WASM_IOLOOP_UBSAN_LOG_PATH");
  if (runtime && log) {
    void *ubsan = dlopen(runtime, RTLD_NOW | RTLD_NOLOAD);
    void (*set)(const char *) = ubsan ? (void (*)(const char *))dlsym(ubsan, "__sanitizer_set_report_path") : NULL;
    if (!set) {
      const char *why = dlerror();
      fprintf(stderr, "[test:asan] cannot set UBSan's log path (%s): %s\n", runtime, why ? why : "no such symbol");
      abort();
    }
    set(log);
  }
  const char *selftest = getenv("WASM_IOLOOP_SANITIZER_SELFTEST");
  if (selftest && strcmp(selftest, "ubsan") == 0) {
    volatile int x = INT_MAX;
    x = x + 1;
  } else if (selftest && strcmp(selftest, "asan") == 0) {
    volatile char *p = malloc(16);
    free((void *)p);
    p[0] = 1;
  }
}
`;

// ---------------------------------------------------------------------------
// Preloaded into every node process of the run (see the header).

function installRedirect() {
  let map;
  try {
    map = new Map(Object.entries(JSON.parse(process.env[REDIRECT_ENV])));
  } catch {
    return;
  }
  const resolve = Module._resolveFilename;
  Module._resolveFilename = function resolveSanitized(request, ...rest) {
    if (typeof request === 'string' && path.isAbsolute(request)) {
      const mapped = map.get(path.normalize(request));
      if (mapped) return mapped;
    }
    const resolved = resolve.call(this, request, ...rest);
    return map.get(resolved) ?? resolved;
  };
  // A direct process.dlopen of a release build gets the sanitized one too.
  const dlopen = process.dlopen;
  process.dlopen = function dlopenSanitized(module, filename, ...rest) {
    return dlopen.call(this, module, map.get(path.normalize(String(filename))) ?? filename, ...rest);
  };
}

// ---------------------------------------------------------------------------
// The driver.

function die(message) {
  console.error(`${prefix} ERROR: ${message}`);
  process.exit(1);
}

/** binding.gyp as an object. gyp files are Python literals: strip # comments, evaluate as JS. */
function readGyp() {
  const file = path.join(root, 'binding.gyp');
  const text = fs.readFileSync(file, 'utf8');
  let out = '';
  let quote = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      out += c;
      if (c === '\\') out += text[++i] ?? '';
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") {
      quote = c;
      out += c;
    } else if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
      out += '\n';
    } else {
      out += c;
    }
  }
  try {
    return Function('True', 'False', 'None', `"use strict"; return (${out});`)(true, false, null);
  } catch (error) {
    return die(`cannot parse ${file}: ${error.message}`);
  }
}

/** The targets of binding.gyp with sources in bindings/, with what a build of each needs. */
function nativeTargets(gyp) {
  const targets = [];
  for (const target of gyp.targets ?? []) {
    const sources = (target.sources ?? []).map((s) => path.normalize(s));
    if (!sources.some((s) => s.split(path.sep)[0] === 'bindings')) continue;
    const name = target.target_name;
    for (const s of sources) {
      if (!['.c', '.cc', '.cpp'].includes(path.extname(s))) {
        die(`target ${name}: ${s} is not a C or C++ source (this script compiles .c, .cc and .cpp)`);
      }
      if (!fs.existsSync(path.join(root, s))) die(`target ${name}: source ${s} (binding.gyp) does not exist`);
    }
    if (target.conditions) {
      console.warn(`${prefix} warning: target ${name} has "conditions", which this build does not apply`);
    }
    targets.push({
      name,
      sources,
      defines: target.defines ?? [],
      includes: (target.include_dirs ?? []).map((d) => path.resolve(root, d)),
      // Optimisation is this build's own choice; warnings and the like come from binding.gyp.
      cflags: [...(target.cflags ?? []), ...(target.cflags_c ?? [])].filter((f) => !/^-O/.test(f)),
      cxxflags: [...CXX_DEFAULTS, ...(target.cflags ?? []), ...(target.cflags_cc ?? [])].filter((f) => !/^-O/.test(f)),
      ldflags: target.ldflags ?? [],
      libraries: target.libraries ?? [],
    });
  }
  if (targets.length === 0) die('binding.gyp has no target with sources in bindings/');
  return targets;
}

/** The directory holding node_api.h and uv.h for the running node. */
function nodeHeaders() {
  const candidates = [];
  if (process.env.npm_config_nodedir) candidates.push(path.join(process.env.npm_config_nodedir, 'include', 'node'));
  candidates.push(path.resolve(path.dirname(process.execPath), '..', 'include', 'node'));
  const version = process.version.slice(1);
  const cache = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  candidates.push(path.join(cache, 'node-gyp', version, 'include', 'node'));
  candidates.push(path.join(os.homedir(), '.node-gyp', version, 'include', 'node'));
  const found = candidates.find((dir) => ['node_api.h', 'uv.h'].every((f) => fs.existsSync(path.join(dir, f))));
  if (!found) die(`no Node headers (node_api.h, uv.h) for node ${process.version}; looked in:\n  ${candidates.join('\n  ')}`);
  return found;
}

/** The absolute path of one sanitizer runtime of the compiler, or a clear failure. */
function runtime(cc, lib, what) {
  const r = spawnSync(cc, [`-print-file-name=${lib}`], { encoding: 'utf8' });
  if (r.error) die(`cannot run the compiler ${cc}: ${r.error.message}`);
  const file = (r.stdout || '').trim();
  if (r.status !== 0 || !path.isAbsolute(file) || !fs.existsSync(file)) {
    die(
      `the ${what} runtime ${lib} of ${cc} is missing (\`${cc} -print-file-name=${lib}\` printed ` +
        `${JSON.stringify(file)}, not a file). Install it (Debian/Ubuntu: the compiler version's ` +
        `libasan and libubsan packages, e.g. libasan8 and libubsan1 for gcc 12), or set CC to a gcc that has it.`,
    );
  }
  return file;
}

function run(command, args) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', (error) => resolve({ ok: false, why: error.message }));
    child.on('exit', (code, signal) => resolve({ ok: code === 0, why: signal ? `signal ${signal}` : `exit ${code}` }));
  });
}

/** Runs `jobs` (thunks returning promises) at most `width` at a time; resolves with their results in order. */
async function pool(jobs, width) {
  const results = [];
  let next = 0;
  async function lane() {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]();
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(width, jobs.length)) }, lane));
  return results;
}

/** Builds every target and the helper; returns the redirect map and the helper's path. */
async function build(cc, cxx, targets, headers) {
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(outDir, { recursive: true });
  const width = os.availableParallelism ? os.availableParallelism() : os.cpus().length;
  const links = [];
  const compiles = [];
  for (const t of targets) {
    const objDir = path.join(outDir, 'obj', t.name);
    fs.mkdirSync(objDir, { recursive: true });
    // node-gyp's own defines for an addon, then the target's.
    const defines = [
      `NODE_GYP_MODULE_NAME=${t.name}`, 'USING_UV_SHARED=1', 'USING_V8_SHARED=1', 'BUILDING_NODE_EXTENSION',
      '_LARGEFILE_SOURCE', '_FILE_OFFSET_BITS=64', ...t.defines,
    ].map((d) => `-D${d}`);
    const common = ['-O1', '-g', '-fPIC', '-pthread', ...SANITIZE];
    const cflags = [...common, ...t.cflags, ...defines,
      ...t.includes.map((d) => `-I${d}`), `-I${headers}`];
    const cxxflags = [...common, ...t.cxxflags, ...defines, ...t.includes.map((d) => `-I${d}`), `-I${headers}`];
    const isCxx = (s) => path.extname(s) !== '.c';
    const objects = t.sources.map((s) => path.join(objDir, `${s.replace(/\.(c|cc|cpp)$/, '').split(path.sep).join('_')}.o`));
    t.sources.forEach((s, i) => compiles.push({
      what: `compiling ${s}`,
      job: () => run(isCxx(s) ? cxx : cc, [...(isCxx(s) ? cxxflags : cflags), '-c', path.join(root, s), '-o', objects[i]]),
    }));
    const linker = t.sources.some(isCxx) ? cxx : cc;
    const output = path.join(outDir, `${t.name}.node`);
    links.push({
      what: `linking ${path.relative(root, output)}`,
      job: () => run(linker, ['-shared', '-pthread', ...SANITIZE, ...t.ldflags, ...objects, '-o', output, ...t.libraries]),
    });
  }
  const helperSource = path.join(outDir, 'sanitizer-helper.c');
  const helper = path.join(outDir, 'sanitizer-helper.so');
  fs.writeFileSync(helperSource, HELPER_C);
  compiles.push({
    what: 'building the sanitizer helper',
    job: () => run(cc, ['-O1', '-g', '-fPIC', '-shared', ...SANITIZE, helperSource, '-o', helper, '-ldl']),
  });
  for (const step of [compiles, links]) {
    const results = await pool(step.map((s) => s.job), width);
    results.forEach((r, i) => r.ok || die(`${step[i].what} failed (${r.why})`));
  }
  const redirect = Object.fromEntries(
    targets.map((t) => [path.join(releaseDir, `${t.name}.node`), path.join(outDir, `${t.name}.node`)]),
  );
  return { redirect, helper };
}

/** The environment of the run, with sanitizer reports going to files in `logDir`. */
function sanitizerEnv({ asan, ubsan, helper, redirect }, logDir) {
  const env = { ...process.env };
  delete env.WASM_IOLOOP_NO_NATIVE; // the point is to run the native tests
  env.LD_PRELOAD = [asan, ubsan, helper, process.env.LD_PRELOAD].filter(Boolean).join(':');
  env.ASAN_OPTIONS = [
    // Node does not free all it allocates before it exits (by design: the OS
    // reclaims it), and the uninstrumented node has no suppressions, so leak
    // checking at exit would report Node itself in every process: off.
    'detect_leaks=0',
    'halt_on_error=1',
    'abort_on_error=1',
    'detect_stack_use_after_return=1',
    'strict_string_checks=1',
    process.env.ASAN_OPTIONS,
    `log_path=${path.join(logDir, 'asan')}`,
  ].filter(Boolean).join(':');
  env.UBSAN_OPTIONS = [
    'halt_on_error=1',
    'abort_on_error=1',
    'print_stacktrace=1',
    'disable_coredump=1',
    process.env.UBSAN_OPTIONS,
    `log_path=${path.join(logDir, 'ubsan')}`,
  ].filter(Boolean).join(':');
  env.WASM_IOLOOP_UBSAN_RUNTIME = ubsan;
  env.WASM_IOLOOP_UBSAN_LOG_PATH = path.join(logDir, 'ubsan');
  env.NODE_OPTIONS = [process.env.NODE_OPTIONS, `--require=${__filename}`].filter(Boolean).join(' ');
  env[REDIRECT_ENV] = JSON.stringify(redirect);
  const shim = redirect[path.join(releaseDir, 'wasm_ioloop.node')];
  if (shim) env.WASM_IOLOOP_NATIVE_PATH = shim;
  return env;
}

function reports(logDir) {
  return fs.readdirSync(logDir).sort().map((f) => path.join(logDir, f));
}

/**
 * Before jest: a node process of the run maps both runtimes and gets the
 * sanitized build of each target when it requires the release path; and an
 * ASan and a UBSan error in processes whose output is discarded each leave a
 * report file.
 */
function preflight(setup) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-ioloop-asan-selftest-'));
  try {
    return selfTest(sanitizerEnv(setup, dir), dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** What is wrong with a run whose reports go to `dir`, or '' if nothing. */
function selfTest(env, dir) {
  const read = () => reports(dir).map((f) => `${path.basename(f)}:\n${fs.readFileSync(f, 'utf8')}`).join('\n');
  const script = `
    const fs = require('fs');
    const redirect = JSON.parse(process.env.${REDIRECT_ENV});
    for (const release of Object.keys(redirect)) require(release);
    const maps = fs.readFileSync('/proc/self/maps', 'utf8');
    for (const want of ['libasan', 'libubsan', ...Object.values(redirect)]) {
      if (!maps.includes(want)) { console.error('not mapped: ' + want); process.exit(1); }
    }`;
  const r = spawnSync(process.execPath, ['-e', script], { cwd: root, env, encoding: 'utf8' });
  const logged = read();
  if (r.status !== 0 || logged) {
    return `a node process with the sanitizer runtimes cannot load the sanitized build:\n${r.stderr}${r.stdout}${logged}`;
  }
  const errors = [
    ['asan', 'an ASan', 'AddressSanitizer: heap-use-after-free'],
    ['ubsan', 'a UBSan', 'runtime error: signed integer overflow'],
  ];
  for (const [kind, name, want] of errors) {
    spawnSync(process.execPath, ['-e', '0'], { env: { ...env, WASM_IOLOOP_SANITIZER_SELFTEST: kind }, stdio: 'ignore' });
    const text = read();
    if (!text.includes(want)) {
      return `self-test: ${name} error in a child process whose output was discarded left no report in the log dir\n${text}`;
    }
    reports(dir).forEach((f) => fs.rmSync(f));
  }
  return '';
}

async function main() {
  const started = Date.now();
  if (!fs.existsSync(path.join(root, 'wasm', 'core.wasm'))) {
    die('wasm/core.wasm is missing: run `npm run build` first (`npm test` does)');
  }
  const cc = process.env.CC || 'gcc';
  const cxx = process.env.CXX || 'g++';
  const asan = runtime(cc, 'libasan.so', 'AddressSanitizer');
  const ubsan = runtime(cc, 'libubsan.so', 'UndefinedBehaviorSanitizer');
  const targets = nativeTargets(readGyp());
  const headers = nodeHeaders();
  console.log(`${prefix} building ${targets.map((t) => `${t.name} (${t.sources.length} source${t.sources.length === 1 ? '' : 's'})`).join(', ')} with ${cc} (C) and ${cxx} (C++) into build-asan/`);
  const { redirect, helper } = await build(cc, cxx, targets, headers);
  const setup = { asan, ubsan, helper, redirect };
  const problem = preflight(setup);
  if (problem) die(problem);

  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-ioloop-asan-'));
  const env = sanitizerEnv(setup, logDir);
  console.log(`${prefix} built and self-tested in ${((Date.now() - started) / 1000).toFixed(1)}s; running jest (reports go to ${logDir})`);
  const jestPackage = require.resolve('jest/package.json', { paths: [root] });
  const { bin } = require(jestPackage);
  const jest = path.join(path.dirname(jestPackage), typeof bin === 'string' ? bin : bin.jest);
  const r = spawnSync(process.execPath, [jest, '--runInBand', ...process.argv.slice(2)], { cwd: root, env, stdio: 'inherit' });

  const found = reports(logDir);
  for (const file of found) {
    console.error(`\n${prefix} ===== sanitizer report ${path.basename(file)} =====\n${fs.readFileSync(file, 'utf8')}`);
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (found.length) die(`${found.length} sanitizer report(s), kept in ${logDir} (${seconds}s)`);
  fs.rmSync(logDir, { recursive: true, force: true });
  if (r.status !== 0) {
    const why = r.error ? r.error.message : r.signal ? `signal ${r.signal}` : `exit ${r.status}`;
    die(`jest failed (${why}) against the sanitized shim (${seconds}s)`);
  }
  console.log(`${prefix} clean: no sanitizer reports (${seconds}s)`);
}

if (require.main === module) {
  main().catch((error) => die(error.stack || String(error)));
} else if (process.env[REDIRECT_ENV]) {
  installRedirect();
}
