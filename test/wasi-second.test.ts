// The WASI build (wasm/core-wasi.wasm, backend 'wasi', the blocking driver) over
// preview1 implementations other than Node's node:wasi and the package's provider,
// each in a child process (test/fixtures/wasi-second.ts):
//   @bjorn3/browser_wasi_shim  pure JavaScript, under Node, Bun and Deno: as it is,
//                              and through the fixture's ShimAdapter, which replaces
//                              its poll_oneoff (one clock subscription only, a spin)
//                              with one that takes fd subscriptions and sleeps.
//   Bun's node:wasi            (wasi-js inside Bun), and
//   Deno's node:wasi           under their runtimes, stdio the process's.
// The same timer, callback and run() cases run under each; the fd cases are those of
// the fds the implementation has (the shim's in-memory files and consoles, stdin and
// stdout under node:wasi). No implementation here has sockets. Each report says which
// implementation served each of the nine preview1 imports, and how often; the table
// is printed at the end.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { bunPath, denoPath, nodeTs } from './hosts';

const ROOT = path.join(__dirname, '..');
const FIXTURE = path.join('test', 'fixtures', 'wasi-second.ts');
const INPUT_BYTES = 200_000; // as the fixture's
const inputByte = (i: number): number => (i * 31 + (i >> 10)) & 0xff;
const CALLS = ['poll_oneoff', 'clock_time_get', 'fd_read', 'fd_write', 'fd_close', 'sock_accept', 'sock_recv', 'sock_send', 'sock_shutdown'];

type Runtime = 'node' | 'bun' | 'deno';
type Report = Record<string, any>;

function command(runtime: Runtime, mode: string): [string, string[]] {
  if (runtime === 'bun') return [bunPath(), [FIXTURE, mode]];
  if (runtime === 'deno') return [denoPath(), ['run', '-A', '--sloppy-imports', FIXTURE, mode]];
  const [node, args] = nodeTs();
  return [node, ['--no-warnings', ...args, FIXTURE, mode]];
}

/** Runs the fixture; for node-wasi, fd 0 gets INPUT_BYTES bytes, the second half 150 ms after the first. */
function runFixture(runtime: Runtime, mode: string): Promise<{ report: Report; stdout: string }> {
  const [cmd, args] = command(runtime, mode);
  const child = spawn(cmd, args, { cwd: ROOT, stdio: [mode === 'node-wasi' ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  if (mode === 'node-wasi') {
    const bytes = Buffer.alloc(INPUT_BYTES);
    for (let i = 0; i < bytes.length; i++) bytes[i] = inputByte(i);
    child.stdin!.on('error', () => {});
    child.stdin!.write(bytes.subarray(0, INPUT_BYTES / 2));
    setTimeout(() => child.stdin!.end(bytes.subarray(INPUT_BYTES / 2)), 150);
  }
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      const line = stdout.trim().split('\n').reverse().find((l) => l.startsWith('{'));
      if (code !== 0 || line === undefined) {
        reject(new Error(`${runtime} ${mode}: exit ${code ?? signal}\n${stdout}\n${stderr}`));
        return;
      }
      resolve({ report: JSON.parse(line), stdout });
    });
  });
}

const served: { name: string; calls: Record<string, { by: string; calls: number }> }[] = [];

afterAll(() => {
  if (served.length === 0) return;
  const width = Math.max(...CALLS.map((c) => c.length));
  const lines = served.map(({ name, calls }) => [`${name}:`, ...CALLS.map((c) => `  ${c.padEnd(width)}  ${calls[c]!.by} (${calls[c]!.calls} calls)`)].join('\n'));
  console.log(`Which implementation served each preview1 import of the WASI build:\n${lines.join('\n')}`);
});

/** What every implementation must do with timers, callbacks and run(). */
function expectCommonCases(r: Report): void {
  // Timers fire in deadline order, equal deadlines in the order scheduled; the cancelled one never.
  expect(r.timers.fired).toEqual(r.timers.expected);
  expect(r.timers.cancelledFired).toBe(false);
  for (const late of r.timers.late) {
    // Never early on the host's monotonic clock (loop.time(): its clock_time_get), nor on performance.now().
    expect(late.loop).toBeGreaterThanOrEqual(0);
    expect(late.perf).toBeGreaterThanOrEqual(-1e-6);
    expect(late.loop).toBeLessThan(0.25);
  }
  expect(r.callbacks).toEqual({ chain: { ran: 1000, wrong: 0 }, batch: { ran: 1000, wrong: 0 } });
  expect(r.run.value).toBe(42);
  expect(r.run.timedOut).toMatchObject({ name: 'TimeoutError', message: 'Operation timed out after 0.05 seconds' });
  expect(r.run.waited).toBeGreaterThanOrEqual(0.05);
  expect(r.run.waited).toBeLessThan(1);
  // Such a host tells nothing of readiness: the portable driver is refused, the blocking one chosen.
  expect(r.refusal.message).toMatch(/^driver 'portable' needs a WASI host that tells when an fd is ready/);
  expect(r.idle.wallMs).toBeGreaterThanOrEqual(199);
}

function expectServedBy(r: Report, expected: Record<string, string>): void {
  expect(Object.fromEntries(CALLS.map((c) => [c, r.served[c].by]))).toEqual(expected);
  for (const c of ['poll_oneoff', 'clock_time_get', 'fd_read', 'fd_write']) expect({ c, calls: r.served[c].calls > 0 }).toEqual({ c, calls: true });
}

const RUNTIMES: Runtime[] = ['node', 'bun', 'deno'];
const SHIM = 'browser_wasi_shim';

describe('@bjorn3/browser_wasi_shim as it is', () => {
  test.each(RUNTIMES)('under %s: timers, callbacks and run() over its clock and spinning poll_oneoff; fd_read, fd_write, fd_close on its in-memory fds; no fd can be polled', async (runtime) => {
    const { report: r } = await runFixture(runtime, 'shim');
    expect(r.error).toBeUndefined();
    expect(r.runtime).toBe(runtime);
    expectCommonCases(r);
    expectServedBy(r, Object.fromEntries(CALLS.map((c) => [c, SHIM])));
    expect(r.served.fd_close.calls).toBe(1);
    // Its poll_oneoff waits by spinning on performance.now(): an idle loop burns its core.
    expect(r.idle.cpuMs).toBeGreaterThan(r.idle.wallMs * 0.2);
    // fd 0 (an OpenFile) read to its end and written to fd 3 (another), a line to fd 1 (a console).
    expect(r.fd.read).toMatchObject({ bytes: INPUT_BYTES, same: true });
    expect(r.fd.file).toEqual({ same: true });
    expect(r.fd.console).toEqual({ wrote: 9 });
    expect(r.fd.consoleBytes).toBe('one line\n');
    expect(r.fd.afterClose).toMatchObject({ name: 'SysError', code: 'EBADF', syscall: 'fd_write' });
    // With an fd registered the wait has two subscriptions: the shim refuses (it takes one), the run rejects.
    expect(r.fd.registered).toMatchObject({ name: 'SysError', code: 'ENOTSUP', syscall: 'poll_oneoff' });
    // No sockets: its sock_accept throws a string; the host offers no listen.
    expect(r.sockets.accept).toEqual({ string: 'sockets not supported' });
    expect(r.sockets.listenTcp).toMatchObject({ code: 'ENOSYS', message: 'listen: ENOSYS (this WASI host offers no socket calls)' });
    served.push({ name: `${SHIM} as it is, under ${runtime}`, calls: r.served });
  }, 60_000);
});

describe('@bjorn3/browser_wasi_shim with its poll_oneoff replaced by the adapter', () => {
  test.each(RUNTIMES)('under %s: the same cases; fd 0 echoed into fd 3 by READ and WRITE handlers, lines by a WRITE handler; an idle loop sleeps', async (runtime) => {
    const { report: r } = await runFixture(runtime, 'adapter');
    expect(r.error).toBeUndefined();
    expect(r.runtime).toBe(runtime);
    expectCommonCases(r);
    expectServedBy(r, Object.fromEntries(CALLS.map((c) => [c, c === 'poll_oneoff' ? 'adapter' : SHIM])));
    // The adapter's wait is Atomics.wait: 200 ms idle costs next to no CPU.
    expect(r.idle.cpuMs).toBeLessThan(r.idle.wallMs * 0.25);
    expect(r.fd.echo).toMatchObject({ same: true, bytes: INPUT_BYTES });
    expect(r.fd.echo.timerAt).toBeGreaterThanOrEqual(0); // the timer fired while the fds were busy
    expect(r.fd.lines).toEqual(Array.from({ length: 10 }, (_, i) => `line ${i}`));
    expect(r.fd.unknownFd).toMatchObject({ name: 'SysError', code: 'EBADF', syscall: 'addHandler' });
    expect(r.fd.consoleBytes).toBe('one line\n');
    expect(r.sockets.accept).toEqual({ string: 'sockets not supported' });
    served.push({ name: `${SHIM} + adapter (poll_oneoff), under ${runtime}`, calls: r.served });
  }, 60_000);
});

describe("the node:wasi of Bun and of Deno", () => {
  test("Bun's: timers and callbacks on its clock; fd_read of stdin and fd_write to stdout; its poll_oneoff reports no fd (16-byte events, each ENOSYS), and it has no sock_accept", async () => {
    const { report: r, stdout } = await runFixture('bun', 'node-wasi');
    expect(r.error).toBeUndefined();
    expectCommonCases(r);
    expect(r.shape).toEqual({ getImportObject: 'undefined', initialize: 'undefined', setMemory: 'function' });
    const name = "Bun's node:wasi";
    expectServedBy(r, Object.fromEntries(CALLS.map((c) => [c, c === 'sock_accept' ? "none: the loader's ENOSYS stub" : name])));
    expect(r.fd.read).toMatchObject({ bytes: INPUT_BYTES, same: true, via: 'fd_read' });
    expect(stdout).toContain(`fd_write under ${name}\n`);
    // A WRITE handler on a writable stdout hears nothing: each event is written 16
    // bytes after the one before (preview1's are 32), with error ENOSYS, so the
    // poller reads the clock's record and a record of nothing.
    expect(r.fd.writeHandler).toEqual({ events: [] });
    expect(r.fd.rawPoll).toMatchObject({ result: 0, nevents: 2, at0: { userdata: 7, errno: 0, type: 0 }, at16: { userdata: 9, errno: 52, type: 2 }, at32: { userdata: 0xeeee, type: 0xee } });
    // The sys never calls sock_accept under node:wasi (Node's crashes); here it has none anyway.
    expect(r.sockets.accept).toMatchObject({ code: 'ENOSYS', syscall: 'sock_accept' });
    expect(r.sockets.listenTcp).toMatchObject({ code: 'ENOSYS' });
    console.log(`Bun's node:wasi: ${r.served.poll_oneoff.calls} poll_oneoff calls in the run (it sleeps whole milliseconds, none for a wait under 1 ms, so the poller asks again); a 1 ms clock subscription returned after ${r.fd.rawPoll.ms.toFixed(3)} ms`);
    served.push({ name, calls: r.served });
  }, 60_000);

  test("Deno's: timers and callbacks on its clock; stdin read by a READ handler as the pipe fills, a WRITE handler on stdout; fd events as preview1 lays them out", async () => {
    const { report: r, stdout } = await runFixture('deno', 'node-wasi');
    expect(r.error).toBeUndefined();
    expectCommonCases(r);
    expect(r.shape).toEqual({ getImportObject: 'function', initialize: 'function', setMemory: 'undefined' });
    const name = "Deno's node:wasi";
    expectServedBy(r, Object.fromEntries(CALLS.map((c) => [c, name])));
    expect(r.served.sock_accept.calls).toBe(0); // the sys does not call it under node:wasi
    expect(r.fd.read).toMatchObject({ bytes: INPUT_BYTES, same: true, via: 'handler' });
    expect(r.fd.writeHandler).toEqual({ events: [4] }); // WRITE
    expect(stdout).toContain(`fd_write from a WRITE handler under ${name}\n`);
    expect(stdout).toContain(`fd_write under ${name}\n`);
    expect(r.fd.rawPoll).toMatchObject({ result: 0, nevents: 1, at0: { userdata: 9, errno: 0, type: 2 } });
    expect(r.sockets.accept).toMatchObject({ code: 'ENOSYS', syscall: 'sock_accept' });
    served.push({ name, calls: r.served });
  }, 60_000);
});
