#!/usr/bin/env node
// Builds the native shim (build/Release/wasm_ioloop.node) at install time.
//
// Run by `npm install` / `npm ci` as the package's install script, or by hand:
// `node scripts/install-native.js`.
//
// - WASM_IOLOOP_NO_NATIVE=1 skips the build: the package then runs on its
//   portable driver, exactly as it does when the shim is absent.
// - Otherwise it runs `node-gyp rebuild` with its output shown. node-gyp is the
//   one npm bundles (npm_config_node_gyp, set when npm runs the script), else a
//   node-gyp package that resolves from here, else npm's bundled copy beside the
//   running node (when run by hand), else `node-gyp` on PATH.
// - When Node's own headers are installed next to the running node (as distro
//   packages and official tarballs do), they are passed as --nodedir, so the
//   build needs no download.
// - A failed build is not fatal for users: it prints why the package will run
//   without the shim and exits 0. Under CI (CI set, and not "false" or "0") it
//   exits 1 so a broken shim fails the run loudly.
'use strict';

const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const prefix = '[wasm-ioloop]';

function truthy(value) {
  return value !== undefined && value !== '' && value !== '0' && value.toLowerCase() !== 'false';
}

/** How to run node-gyp: [command, leading args, description]. */
function findNodeGyp() {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && fs.existsSync(fromNpm)) {
    return [process.execPath, [fromNpm], fromNpm];
  }
  try {
    const resolved = require.resolve('node-gyp/bin/node-gyp.js', { paths: [root, __dirname] });
    return [process.execPath, [resolved], resolved];
  } catch {
    // Not installed as a package here.
  }
  // Run by hand rather than by npm: npm's bundled copy beside the running node.
  const bin = path.dirname(process.execPath);
  for (const npmDir of [
    path.join(bin, '..', 'lib', 'node_modules', 'npm'), // Unix layout
    path.join(bin, 'node_modules', 'npm'), // Windows layout
  ]) {
    const bundled = path.resolve(npmDir, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
    if (fs.existsSync(bundled)) return [process.execPath, [bundled], bundled];
  }
  return ['node-gyp', [], 'node-gyp on PATH'];
}

/** Local headers for the running node, when no nodedir was configured. */
function localNodedir() {
  if (process.env.npm_config_nodedir) return null;
  const dir = path.resolve(path.dirname(process.execPath), '..');
  const headers = path.join(dir, 'include', 'node');
  const complete = ['node_api.h', 'common.gypi', 'config.gypi'].every((f) =>
    fs.existsSync(path.join(headers, f)),
  );
  return complete ? dir : null;
}

function fail(reason) {
  const ci = truthy(process.env.CI);
  console.warn(
    `${prefix} WARNING: the native shim could not be built (${reason}).\n` +
      `${prefix} The package will run without it: only the portable driver ` +
      `(timers and callbacks on the host's timers, no epoll, no sys calls).\n` +
      `${prefix} To build it later: install python3, make and a C compiler, then run ` +
      `\`npm rebuild wasm-ioloop\` (or \`node scripts/install-native.js\` in the package).`,
  );
  if (ci) {
    console.error(`${prefix} CI is set: failing the install.`);
    process.exit(1);
  }
  process.exit(0);
}

function main() {
  if (process.env.WASM_IOLOOP_NO_NATIVE === '1') {
    console.log(`${prefix} WASM_IOLOOP_NO_NATIVE=1: skipping the native shim (portable driver only).`);
    return;
  }
  const [command, lead, description] = findNodeGyp();
  const args = [...lead, 'rebuild'];
  const nodedir = localNodedir();
  if (nodedir) args.push(`--nodedir=${nodedir}`);
  console.log(`${prefix} building the native shim with ${description}${nodedir ? ` (headers from ${nodedir})` : ''}`);
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', env: process.env });
  if (result.error) {
    fail(`cannot run ${description}: ${result.error.message}`);
  } else if (result.status !== 0) {
    const status = result.status ?? `signal ${result.signal}`;
    // node-gyp builds the targets in binding.gyp's order: the shim, then the
    // watchdog addon (C++ against V8's API, which is not ABI-stable). A shim built
    // beside a failed watchdog is still the whole package but for stacks in the
    // blocking warnings; only CI treats that as a failure.
    if (!truthy(process.env.CI) && fs.existsSync(path.join(root, 'build', 'Release', 'wasm_ioloop.node'))) {
      console.warn(`${prefix} WARNING: node-gyp exited with ${status} after building the native shim: the blocking watchdog addon is not built, so blocking warnings carry no stack.`);
      return;
    }
    fail(`node-gyp exited with ${status}`);
  } else if (!fs.existsSync(path.join(root, 'build', 'Release', 'wasm_ioloop.node'))) {
    fail('node-gyp succeeded but build/Release/wasm_ioloop.node is missing');
  } else {
    console.log(`${prefix} native shim built: build/Release/wasm_ioloop.node`);
  }
}

main();
