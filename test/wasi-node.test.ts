// Backend wasi under node:wasi (`new WASI({ version: 'preview1', stdin: fd })`): the
// blocking driver in a worker thread waits in node:wasi's poll_oneoff, echoes what
// a socketpair end handed in as stdin brings through loop.sys.read and
// loop.sys.write, and fires its timers on the host's monotonic clock, never early.
// node:wasi's socket calls crash on its stdio fds (shown here in a child process),
// so loop.sys never makes them there: they throw ENOSYS.
import { execFile } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { sys } from '../src/index';

const FIXTURES = path.join(__dirname, 'fixtures');
const DELAYS = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05];

/** A message of its own, so that a byte out of place is seen: `i` and a pattern of its length. */
function message(i: number): Uint8Array {
  const len = 1 + ((i * 7919) % 3000);
  const m = new Uint8Array(len);
  for (let k = 0; k < len; k++) m[k] = (i * 131 + k * 7) & 0xff;
  return m;
}

test('node:wasi: a blocking loop in a worker echoes a socketpair on stdin, byte for byte, and its timers are never early', async () => {
  const [mine, theirs] = sys.socketpair();
  const worker = new Worker(path.join(FIXTURES, 'wasi-node-loop.ts'), {
    execArgv: ['--require', 'tsx/cjs', '--no-warnings'],
    workerData: { fd: theirs, delays: DELAYS },
  });
  const messagesFrom: unknown[] = [];
  let heard: () => void = () => {};
  const result = new Promise<Record<string, any>>((resolve, reject) => {
    worker.on('message', (m) => {
      messagesFrom.push(m);
      heard();
      if (typeof m === 'object') resolve(m);
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`worker exited (${code}) before it reported`)));
  });
  await Promise.race([new Promise<void>((r) => (heard = r)), result]);
  expect(messagesFrom).toEqual(['running']);

  // 1,000 messages, sent at once while this end does not read for 200 ms: the
  // worker's writes meet a full socket buffer and wait for WRITE. Every byte must
  // come back in order.
  const messages = Array.from({ length: 1000 }, (_, i) => message(i));
  const total = messages.reduce((n, m) => n + m.length, 0);
  const expected = Buffer.concat(messages);
  const socket = new net.Socket({ fd: mine, readable: true, writable: true });
  const received: Buffer[] = [];
  let got = 0;
  const started = performance.now();
  const done = new Promise<void>((resolve, reject) => {
    socket.on('data', (d: Buffer) => {
      received.push(d);
      got += d.length;
      if (got >= total) resolve();
    });
    socket.on('error', reject);
  });
  // First an idle stretch: the loop waits in poll_oneoff (its timers fire meanwhile).
  await new Promise((r) => setTimeout(r, 300));
  socket.pause();
  for (const m of messages) socket.write(m);
  await new Promise((r) => setTimeout(r, 200));
  socket.resume();
  await done;
  const seconds = (performance.now() - started - 500) / 1000;
  socket.end();
  const r = await result;
  socket.destroy();

  expect(Buffer.concat(received).equals(expected)).toBe(true);
  expect(r.echoed).toBe(total);
  expect(r.wouldBlock).toBeGreaterThan(0);
  expect(r.eof).toBe(true);

  // The blocking driver was chosen for node:wasi, and waits in poll_oneoff: a few
  // iterations per read or blocked write, and about one per timer while idle.
  expect(r.stats.iterations).toBeLessThan((r.reads + r.wouldBlock) * 3 + DELAYS.length * 3 + 10);
  expect(r.stats.idleTime).toBeGreaterThan(0.2);

  // Timers: all fired, none before its deadline on either clock.
  expect(r.timers.map((t: { delay: number }) => t.delay).sort()).toEqual([...DELAYS].sort());
  for (const t of r.timers) {
    expect(t.loopLate).toBeGreaterThanOrEqual(0);
    expect(t.perfLate).toBeGreaterThanOrEqual(-1e-9);
    expect(t.loopLate).toBeLessThan(0.25);
  }

  // No sockets under node:wasi: the calls that would crash it are not made.
  for (const [call, e] of Object.entries(r.enosys as Record<string, { code: string; message: string }>)) {
    expect({ call, code: e.code }).toEqual({ call, code: 'ENOSYS' });
  }
  expect(r.enosys.accept.message).toBe("sock_accept: ENOSYS (node:wasi's sock_accept crashes on the fds it has)");
  expect(r.enosys.listenTcp.message).toBe('listen: ENOSYS (node:wasi opens no sockets; only the fds handed to it exist)');

  // The drivers that cannot work with node:wasi say why.
  expect(r.refusals.portable.message).toMatch(/^driver 'portable' needs a WASI host that tells when an fd is ready/);
  expect(r.refusals.guest.message).toMatch(/^driver 'guest' watches the poller's fd, and backend 'wasi' has none/);
  expect(r.refusals.epoll.message).toBe("options.wasi is for backend 'wasi' only; this loop's backend is 'epoll'");
  expect(r.host.backends).toContain('wasi');

  console.log(`node:wasi echo: ${messages.length} messages, ${total} bytes; ${r.reads} reads, ${r.wouldBlock} writes that would block; ${r.stats.iterations} iterations; ${seconds.toFixed(3)} s after reading resumed`);
}, 60_000);

test.each(['sock_recv', 'sock_send', 'sock_accept', 'sock_shutdown'])(
  "node:wasi's %s on a socketpair handed in as stdin kills the process with SIGSEGV",
  async (call) => {
    const { code, signal, stdout } = await new Promise<{ code: number | null; signal: string | null; stdout: string }>((resolve) => {
      execFile(process.execPath, ['--no-warnings', '--import', 'tsx', path.join(FIXTURES, 'wasi-node-crash.ts'), call], { cwd: path.join(__dirname, '..') }, (error, stdout) => {
        const e = error as (Error & { code?: number; signal?: string }) | null;
        resolve({ code: e === null ? 0 : (e.code ?? null), signal: e?.signal ?? null, stdout });
      });
    });
    // fd_read on the same fd works (one byte read); the socket call never returns.
    expect(stdout).toBe(`fd_read 0 1\ncalling ${call}\n`);
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGSEGV' });
  },
  30_000,
);

/** Runs a case of fixtures/wasi-node-limits.ts in a child process. */
async function limit(mode: string): Promise<{ out: string; code: number | null; signal: string | null }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--no-warnings', '--import', 'tsx', path.join(FIXTURES, 'wasi-node-limits.ts'), mode], { cwd: path.join(__dirname, '..') }, (error, stdout) => {
      const e = error as (Error & { code?: number; signal?: string }) | null;
      resolve({ out: stdout, code: e === null ? 0 : (e.code ?? null), signal: e?.signal ?? null });
    });
  });
}

describe("node:wasi's poll_oneoff, as the WASI build meets it", () => {
  test('with two fds registered and one ready, a poll returns only at its timeout', async () => {
    const r = JSON.parse((await limit('two')).out);
    expect(r.n).toBe(1);
    expect(r.events).toEqual([0x001]);
    expect(r.ms).toBeGreaterThanOrEqual(290);
  }, 30_000);

  test('READ | WRITE on one fd is polled for WRITE only (node:wasi polls an fd once, in its first direction)', async () => {
    expect(JSON.parse((await limit('read-write')).out)).toMatchObject({ n: 1, events: [0x004] });
  }, 30_000);

  test('a zero timeout reports no fd, even a ready one; a 1 ms timeout reports it at once', async () => {
    const r = JSON.parse((await limit('zero')).out);
    expect(r.zero).toMatchObject({ n: 0, events: [] });
    expect(r.one).toMatchObject({ n: 1, events: [0x001] });
    expect(r.one.ms).toBeLessThan(50);
  }, 30_000);

  test('a subscription of a closed fd before another kills the process; the WASI build leaves an fd it closed out', async () => {
    const raw = await limit('raw-closed');
    expect(raw.out).toBe('calling poll_oneoff\n');
    expect(raw.signal).toBe('SIGSEGV');
    const closed = await limit('closed');
    expect({ code: closed.code, signal: closed.signal }).toEqual({ code: 0, signal: null });
    expect(JSON.parse(closed.out)).toMatchObject({ closed: 0, poll: { n: 1, events: [0x001] } });
  }, 30_000);
});
