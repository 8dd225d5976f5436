// examples/echo-anywhere.ts, one echo server written once against loop.sys and
// handlers, run unchanged under each host with the defaults that host gets:
//   Node              epoll, guest driver (the native shim)
//   Node, no native   WASM_IOLOOP_NO_NATIVE=1: wasi over the package's provider, portable driver
//   Deno, no FFI      --allow-net --allow-read --allow-env: wasi, provider, portable driver
//   Bun               epoll through N-API, the shim's watcher thread
// A client here opens 50 connections at once and sends 1,000 messages on each, one
// at a time, each of its own length and bytes; every byte that comes back is
// checked. The figures (messages per second, client included) are printed.
import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { bunPath, denoPath, nodeTs } from './hosts';

const ROOT = path.join(__dirname, '..');
const EXAMPLE = path.join(ROOT, 'examples', 'echo-anywhere.ts');
const CONNECTIONS = 50;
const MESSAGES = 1000;

type Host = { name: string; command: () => [string, string[]]; env?: Record<string, string>; backend: string; native: boolean };

const HOSTS: Host[] = [
  { name: 'Node (epoll, guest)', command: () => { const [node, args] = nodeTs(); return [node, [...args, EXAMPLE]]; }, backend: 'epoll', native: true },
  {
    name: 'Node, WASM_IOLOOP_NO_NATIVE=1 (wasi, provider, portable)',
    command: () => { const [node, args] = nodeTs(); return [node, [...args, EXAMPLE]]; },
    env: { WASM_IOLOOP_NO_NATIVE: '1' },
    backend: 'wasi',
    native: false,
  },
  {
    name: 'Deno without --allow-ffi (wasi, provider, portable)',
    command: () => [denoPath(), ['run', '--allow-net', '--allow-read', '--allow-env', '--sloppy-imports', EXAMPLE]],
    backend: 'wasi',
    native: false,
  },
  { name: 'Bun (epoll, watcher)', command: () => [bunPath(), [EXAMPLE]], backend: 'epoll', native: true },
];

/** Message `i` of connection `c`: 1 to 2,048 bytes, each a function of (c, i, position). */
function message(c: number, i: number): Buffer {
  const len = 1 + ((c * 7919 + i * 104729) % 2048);
  const m = Buffer.allocUnsafe(len);
  for (let k = 0; k < len; k++) m[k] = (c * 31 + i * 17 + k * 7) & 0xff;
  return m;
}

/** Sends MESSAGES messages on one connection, each after the previous came back whole; returns the bytes that differed. */
async function converse(port: number, c: number): Promise<{ bytes: number; wrong: number }> {
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let held: Buffer = Buffer.alloc(0);
  let want = 0;
  let wake: (() => void) | null = null;
  let failure: Error | null = null;
  socket.on('data', (d: Buffer) => {
    held = held.length === 0 ? d : Buffer.concat([held, d]);
    if (wake !== null && held.length >= want) wake();
  });
  socket.on('error', (e) => {
    failure = e;
    wake?.();
  });
  socket.on('close', () => wake?.());
  let bytes = 0;
  let wrong = 0;
  for (let i = 0; i < MESSAGES; i++) {
    const m = message(c, i);
    want = m.length;
    socket.write(m);
    while (held.length < want) {
      if (failure !== null || socket.destroyed) throw failure ?? new Error(`connection ${c} closed after ${i} messages`);
      await new Promise<void>((r) => (wake = r));
      wake = null;
    }
    for (let k = 0; k < m.length; k++) if (held[k] !== m[k]) wrong++;
    bytes += m.length;
    held = held.subarray(m.length);
  }
  if (held.length > 0) wrong += held.length; // bytes nobody sent
  socket.end();
  return { bytes, wrong };
}

/** Starts the example; resolves with its first line once it listens. */
function start(host: Host): Promise<{ child: ChildProcess; first: Record<string, unknown>; stderr: () => string }> {
  const [command, args] = host.command();
  const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...host.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve({ child, first: JSON.parse(out.slice(0, nl)), stderr: () => err });
    });
    child.once('exit', (code, signal) => reject(new Error(`${host.name}: the example exited (${code ?? signal}) before it listened: ${err}`)));
    child.once('error', reject);
  });
}

const figures: string[] = [];

afterAll(() => {
  if (figures.length > 0) console.log(`echo-anywhere, ${CONNECTIONS} connections x ${MESSAGES} messages:\n${figures.join('\n')}`);
});

test.each(HOSTS)('$name: 50 connections, 1,000 messages each, every byte echoed', async (host) => {
  const { child, first, stderr } = await start(host);
  try {
    expect(first).toMatchObject({ backend: host.backend });
    expect(first.native === true).toBe(host.native);
    const port = first.listening as number;
    const started = performance.now();
    const results = await Promise.all(Array.from({ length: CONNECTIONS }, (_, c) => converse(port, c)));
    const seconds = (performance.now() - started) / 1000;
    const bytes = results.reduce((n, r) => n + r.bytes, 0);
    expect(results.reduce((n, r) => n + r.wrong, 0)).toBe(0);
    expect(bytes).toBe(Array.from({ length: CONNECTIONS }, (_, c) => Array.from({ length: MESSAGES }, (_, i) => message(c, i).length)).flat().reduce((a, b) => a + b, 0));
    const total = CONNECTIONS * MESSAGES;
    figures.push(`  ${host.name}: ${Math.round(total / seconds)} messages/s (${total} messages, ${(bytes / 1e6).toFixed(1)} MB each way, ${seconds.toFixed(2)} s)`);
    expect(stderr().replace(/^.*(ExperimentalWarning|trace-warnings|sloppy).*$/gm, '').trim()).toBe('');
  } finally {
    child.kill();
    await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));
  }
}, 120_000);
