// docs/API.md: while the loop runs, Node's own loop keeps running; a running loop keeps
// Node alive; a stopped, never-started or closed one does not. And the package
// loads from both `import` and `require`.
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { READ, sys } from '../src/index';
import { guardResources, newLoop } from './helpers';

guardResources();

const root = path.join(__dirname, '..');
const fixture = (name: string): string => path.join(__dirname, 'fixtures', name);

test('promises, setTimeout and fs work inside callbacks', async () => {
  const loop = newLoop();
  const result = await loop.run(async () => {
    await Promise.resolve();
    await new Promise((r) => setTimeout(r, 5));
    const text = await fs.promises.readFile(__filename, 'utf8');
    return text.includes('promises, setTimeout and fs');
  });
  expect(result).toBe(true);
});

test('net works beside a running loop that watches its own fds', async () => {
  const loop = newLoop();
  const [r, w] = sys.pipe();
  let pipeEvents = 0;
  loop.addHandler(r, () => {
    pipeEvents++;
    sys.read(r, new Uint8Array(16));
  }, READ);
  const server = net.createServer((sock) => sock.pipe(sock));
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const port = (server.address() as net.AddressInfo).port;
  try {
    const echoed = await loop.run(
      () =>
        new Promise<string>((resolve, reject) => {
          const sock = net.connect(port, '127.0.0.1', () => {
            sys.write(w, new Uint8Array([1]));
            sock.write('ping');
          });
          sock.on('data', (d) => {
            sock.end();
            resolve(d.toString());
          });
          sock.on('error', reject);
        }),
      { timeout: 10 },
    );
    expect(echoed).toBe('ping');
    expect(pipeEvents).toBe(1);
  } finally {
    await new Promise((res) => server.close(res));
    loop.removeHandler(r);
    sys.close(r);
    sys.close(w);
  }
});

test('a Node timer fires while the loop waits for a far timer', async () => {
  const loop = newLoop();
  loop.callLater(3600, () => {});
  setTimeout(() => loop.stop(), 10);
  await loop.start();
  expect(loop.stats().timers).toBe(0);
});

test('a timer added from a promise continuation wakes the waiting loop early', async () => {
  const loop = newLoop();
  loop.callLater(3600, () => {});
  let firedAt = 0;
  setTimeout(() => {
    const addedAt = loop.time();
    loop.callLater(0.01, () => {
      firedAt = loop.time() - addedAt;
      loop.stop();
    });
  }, 5);
  await loop.start();
  expect(firedAt).toBeGreaterThanOrEqual(0.01);
  expect(loop.stats().timers).toBe(1);
});

/** Runs a fixture in a child; resolves with whether it exited by itself within `waitMs`. */
function exitsByItself(mode: string, waitMs = 1500): Promise<{ exited: boolean; code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', fixture('exit-after.ts'), mode], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let timer: NodeJS.Timeout | undefined;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (timer === undefined && out.includes('ready')) timer = setTimeout(() => child.kill('SIGKILL'), waitMs);
    });
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (timer !== undefined) clearTimeout(timer);
      resolve({ exited: signal === null, code, out });
    });
  });
}

test.each(['never-started', 'stopped', 'closed'])('a %s loop lets Node exit', async (mode) => {
  const r = await exitsByItself(mode);
  expect(r.out).toContain('ready');
  expect(r).toMatchObject({ exited: true, code: 0 });
});

test.each(['running', 'running-empty'])('a %s loop keeps Node alive until stop()', async (mode) => {
  const r = await exitsByItself(mode, 1000);
  expect(r.out).toContain('ready');
  expect(r.exited).toBe(false);
});

const run = promisify(execFile);

test.each([
  ['import', 'import-esm.mjs', 'esm ok'],
  ['require', 'import-cjs.cjs', 'cjs ok'],
])('the package works from %s, with the same exports', async (_kind, file, value) => {
  const { stdout } = await run(process.execPath, [fixture(file)], { cwd: root });
  const got = JSON.parse(stdout);
  expect(got.value).toBe(value);
  expect(got.READ).toBe(1);
  expect(got.kinds).toEqual(['function', 'function', 'function', 'function']);
  expect(got.names).toEqual(['ChannelClosedError', 'ChannelFullError', 'ERROR', 'IOLoop', 'NONE', 'PeriodicCallback', 'READ', 'SysError', 'TimeoutError', 'WRITE', 'openChannel', 'sys']);
});
