// API.md: WASM_IOLOOP_NO_NATIVE=1 makes the package behave as if its native shim
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
  expect(got).toMatchObject({ configuredBackend: 'none', order: ['callback', 'timer'], value: 'ran', ticks: 3, fakeTime: 3600 });
  expect(got.addHandler).toMatch(/addHandler needs the native shim .* watches none/);
  expect(got.epoll).toMatch(/backend 'epoll' needs the native shim, which is not available; available backends: fake/);
  expect(got.guest).toMatch(/driver 'guest' needs the native shim, which is not available; available drivers: portable/);
  expect(got.pipe).toMatch(/sys needs the native shim/);
});
