#!/usr/bin/env node
// Puts the prebuilt native shim where the loader looks for it when the package
// has no local build: prebuilds/<platform>-<arch>/wasm-ioloop.<libc>.node, the
// layout and name `prebuildify --napi --tag-libc` produces and node-gyp-build
// reads (platform and arch as Node names them; the name is the package's; the
// libc tag is `musl` on Alpine, else `glibc`). src/native.ts candidates() builds
// the same path; test/package.test.ts checks that the loader of an installed
// tarball takes the file this script wrote.
//
// Run by `npm pack` and `npm publish` as the package's prepack script, or by
// hand: `node scripts/prebuild.js`.
//
// - The shim is an N-API (NAPI_VERSION 8) addon: one binary serves every Node
//   version with N-API 8, and Bun and Deno too, so the local build
//   (build/Release/wasm_ioloop.node) is copied as the prebuilt one. It is
//   (re)built first, with scripts/install-native.js, when it is missing or older
//   than binding.gyp or a file in bindings/.
// - The copy is loaded once before it is put in place: a binary this host cannot
//   load, or one without the shim's exports, fails the script.
// - Any failure exits 1: a tarball is never packed without its prebuilt binary.
//   The shim is Linux-only, so packing on another platform fails here too.
'use strict';

const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const prefix = '[wasm-ioloop prebuild]';
const LOCAL_BUILD = path.join(root, 'build', 'Release', 'wasm_ioloop.node');

/** prebuildify's libc detection: PREBUILD_LIBC, else `musl` on Alpine, else `glibc`. */
function hostLibc() {
  return process.env.PREBUILD_LIBC || (fs.existsSync('/etc/alpine-release') ? 'musl' : 'glibc');
}

/**
 * The prebuilt binary's path relative to the package root, in prebuildify's
 * naming: prebuilds/<platform>-<arch>/<package name>.<libc>.node.
 */
function prebuiltFile({ platform = process.platform, arch = process.arch, libc = hostLibc() } = {}) {
  const name = require(path.join(root, 'package.json')).name.replace(/\//g, '+');
  return path.posix.join('prebuilds', `${platform}-${arch}`, `${name}.${libc}.node`);
}

/** The newest mtime (ms) among the shim's sources: binding.gyp and bindings/*. */
function newestSource() {
  const files = [path.join(root, 'binding.gyp')];
  const dir = path.join(root, 'bindings');
  for (const entry of fs.readdirSync(dir)) files.push(path.join(dir, entry));
  return Math.max(...files.map((f) => fs.statSync(f).mtimeMs));
}

function fail(message) {
  console.error(`${prefix} ERROR: ${message}`);
  process.exit(1);
}

function ensureLocalBuild() {
  const built = fs.existsSync(LOCAL_BUILD) ? fs.statSync(LOCAL_BUILD).mtimeMs : -1;
  if (built >= newestSource()) return;
  console.log(`${prefix} ${built < 0 ? 'no local build' : 'the local build is older than its sources'}: building it`);
  // CI=1 makes a failed build exit 1 instead of warning.
  const result = spawnSync(process.execPath, [path.join(__dirname, 'install-native.js')], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, CI: '1', WASM_IOLOOP_NO_NATIVE: '' },
  });
  if (result.status !== 0) fail(`building the native shim failed (${result.error?.message ?? `exit ${result.status ?? result.signal}`})`);
  if (!fs.existsSync(LOCAL_BUILD) || fs.statSync(LOCAL_BUILD).mtimeMs < newestSource()) {
    fail(`the build left no up-to-date ${path.relative(root, LOCAL_BUILD)}`);
  }
}

function main() {
  if (process.platform !== 'linux') {
    fail(`the native shim is Linux-only; this is ${process.platform}-${process.arch}, so no prebuilt binary can be made here`);
  }
  ensureLocalBuild();
  const rel = prebuiltFile();
  const dest = path.join(root, rel);
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const tmp = `${dest}.${process.pid}.tmp`;
  fs.copyFileSync(LOCAL_BUILD, tmp);
  try {
    // A .node suffix is what require() needs to load it as an addon.
    const probe = `${tmp}.node`;
    fs.renameSync(tmp, probe);
    let shim;
    try {
      shim = require(probe);
    } catch (error) {
      fs.rmSync(probe, { force: true });
      fail(`${path.relative(root, LOCAL_BUILD)} does not load here: ${error.message.split('\n')[0]}`);
    }
    if (typeof shim.epollCreate !== 'function' || typeof shim.layout !== 'object') {
      fs.rmSync(probe, { force: true });
      fail(`${path.relative(root, LOCAL_BUILD)} loads but is not the shim (no epollCreate or layout export)`);
    }
    fs.renameSync(probe, dest);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  const size = fs.statSync(dest).size;
  console.log(`${prefix} ${rel} (${size} bytes, from ${path.relative(root, LOCAL_BUILD)})`);
}

module.exports = { prebuiltFile, hostLibc };

if (require.main === module) main();
