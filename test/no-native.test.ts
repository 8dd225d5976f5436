// docs/API.md: WASM_IOLOOP_NO_NATIVE=1 makes the package behave as if its native shim
// were absent: the default driver is `portable`, and what needs the shim says so.
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';

test('without the native shim, timers and callbacks run on the portable driver and fds say what is missing', async () => {
  const root = path.join(__dirname, '..');
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(__dirname, 'fixtures', 'no-native.ts')], {
    cwd: root,
    env: { ...process.env, WASM_IOLOOP_NO_NATIVE: '1' },
  });
  const got = JSON.parse(stdout);
  // The default loop without the shim: the WASI build over the package's own provider.
  expect(got).toMatchObject({ configuredBackend: 'wasi', listens: true, order: ['callback', 'timer'], value: 'ran', ticks: 3, fakeTime: 3600 });
  const summary = 'this host (node ' + process.versions.node + '; native shim not used (disabled by WASM_IOLOOP_NO_NATIVE=1)) has backends wasi, fake and drivers portable';
  expect(got.host).toEqual({ runtime: 'node', version: process.versions.node, native: 'disabled by WASM_IOLOOP_NO_NATIVE=1', backends: ['wasi', 'fake'], drivers: ['portable'], watchdog: 'disabled by WASM_IOLOOP_NO_NATIVE=1' });
  expect(got.loopPipe).toMatch(/ENOSYS/);
  expect(got.addHandler).toMatch(/^addHandler: this loop's backend 'none' watches no fds; backends that watch fds here: wasi \(native shim not used: disabled by WASM_IOLOOP_NO_NATIVE=1\)$/);
  expect(got.epoll).toBe(`backend 'epoll' is not available here: ${summary}`);
  expect(got.guest).toBe(`driver 'guest' is not available here: ${summary}`);
  expect(got.pipe).toBe('sys needs the native shim, which is not used here: disabled by WASM_IOLOOP_NO_NATIVE=1');
});
