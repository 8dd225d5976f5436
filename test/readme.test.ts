// The README's example runs exactly as written with tsx, importing the package by name.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';

const root = path.join(__dirname, '..');

test("the README's example runs as written", async () => {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const example = /## Example\s+```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(example).toContain("from 'wasm-ioloop'");
  const file = path.join(root, 'examples', `.readme-example-${process.pid}.ts`);
  fs.writeFileSync(file, example!);
  try {
    const { stdout } = await promisify(execFile)(path.join(root, 'node_modules', '.bin', 'tsx'), [file], { cwd: root });
    expect(stdout).toMatch(/^fd \d+ ready \(events 1\): hello from a timer\n$/);
  } finally {
    fs.rmSync(file);
  }
});

test('npm start runs the echo demo to a clean exit', async () => {
  const { stdout } = await promisify(execFile)(path.join(root, 'node_modules', '.bin', 'tsx'), [path.join(root, 'examples', 'echo.ts')], {
    cwd: root,
    env: { ...process.env, ECHO_SECONDS: '0.5' },
  });
  expect(stdout).toMatch(/mismatches: 0/);
  const trips = Number(/round trips: (\d+)/.exec(stdout)?.[1]);
  expect(trips).toBeGreaterThan(0);
});

test("the README's worker-thread example serves a socket from a blocking loop and exits", async () => {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const example = /A worker thread\s+that owns its loop and serves a socket:\s+```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(example).toContain("driver: 'blocking'");
  const file = path.join(root, 'examples', `.readme-worker-${process.pid}.ts`);
  fs.writeFileSync(file, example!);
  try {
    const { stdout } = await promisify(execFile)(path.join(root, 'node_modules', '.bin', 'tsx'), [file], { cwd: root, timeout: 20_000 });
    expect(stdout).toBe('echoed: ping\n');
  } finally {
    fs.rmSync(file);
  }
});

test("the README's channel example delivers a worker's 1,000 messages and exits", async () => {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const example = /## Channels: reaching a loop from other threads[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(example).toContain('openChannel');
  const file = path.join(root, 'examples', `.readme-channel-${process.pid}.mts`);
  fs.writeFileSync(file, `${example!}console.log(\`received \${got}\`);\n`);
  try {
    const { stdout } = await promisify(execFile)(path.join(root, 'node_modules', '.bin', 'tsx'), [file], { cwd: root, timeout: 20_000 });
    expect(stdout).toBe('received 1000\n');
  } finally {
    fs.rmSync(file);
  }
});
