// Backend wasi over the package's own WASI provider, with the portable driver it
// gets: loop.sys opens TCP sockets through the provider's wasm_ioloop_sock calls,
// poll_oneoff never blocks, and the loop turns when the provider says a socket
// became ready, or when a timer is due; an idle loop does nothing at all. Errors
// carry the native sys's codes. Without the native shim it is the default loop.
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { IOLoop, READ, WRITE } from '../src/index';
import type { Sys } from '../src/sys';

const ROOT = path.join(__dirname, '..');

function pattern(size: number): Uint8Array {
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + (i >> 9)) & 0xff;
  return b;
}

/** Echoes every connection of `listener`; writes that would block wait for WRITE. */
function serveEcho(loop: IOLoop, sys: Sys, listener: number): { wouldBlock: number } {
  const stats = { wouldBlock: 0 };
  const buf = new Uint8Array(65536);
  loop.addHandler(
    listener,
    () => {
      for (let fd = sys.accept(listener); fd >= 0; fd = sys.accept(listener)) {
        let pending: Uint8Array | null = null;
        loop.addHandler(
          fd,
          (_fd, events) => {
            if (pending !== null) {
              if ((events & WRITE) === 0) return;
              const n = Math.max(sys.write(fd, pending), 0);
              pending = n === pending.length ? null : pending.slice(n);
              if (pending === null) loop.updateHandler(fd, READ);
              return;
            }
            const n = sys.read(fd, buf);
            if (n === 0) {
              loop.removeHandler(fd);
              sys.close(fd);
            } else if (n > 0) {
              const w = Math.max(sys.write(fd, buf.subarray(0, n)), 0);
              if (w < n) {
                stats.wouldBlock++;
                pending = buf.slice(w, n);
                loop.updateHandler(fd, READ | WRITE);
              }
            }
          },
          READ,
        );
      }
    },
    READ,
  );
  return stats;
}

test('one loop, two provider sockets: 1 MiB echoed through loop.sys byte for byte, then an idle loop turns no more', async () => {
  const loop = new IOLoop({ backend: 'wasi', makeCurrent: false });
  const sys = loop.sys;
  const listener = sys.listenTcp('127.0.0.1', 0);
  const port = sys.localPort(listener);
  expect(port).toBeGreaterThan(0);
  const server = serveEcho(loop, sys, listener);

  const payload = pattern(1 << 20);
  const back = new Uint8Array(payload.length);
  let sent = 0;
  let got = 0;
  const client = sys.connectTcp('127.0.0.1', port);
  const buf = new Uint8Array(65536);
  await loop.run(
    () =>
      new Promise<void>((resolve) => {
        loop.addHandler(
          client,
          (_fd, events) => {
            if ((events & WRITE) !== 0 && sent < payload.length) {
              const n = sys.write(client, payload.subarray(sent, sent + 65536));
              if (n > 0) sent += n;
              if (sent === payload.length) loop.updateHandler(client, READ);
            }
            if ((events & READ) !== 0) {
              const n = sys.read(client, buf);
              if (n > 0) {
                back.set(buf.subarray(0, n), got);
                got += n;
                if (got === payload.length) resolve();
              }
            }
          },
          READ | WRITE,
        );
      }),
    { timeout: 20 },
  );
  expect(Buffer.from(back).equals(Buffer.from(payload))).toBe(true);

  // Idle: nothing scheduled, nothing arriving. The portable driver arms nothing
  // and the provider notifies nothing, so no turn runs.
  const before = loop.stats().iterations;
  const cpu = process.cpuUsage();
  await loop.run(() => new Promise((r) => setTimeout(r, 300)));
  const used = process.cpuUsage(cpu);
  // run() itself costs a turn or two: its callback and its end.
  expect(loop.stats().iterations - before).toBeLessThanOrEqual(3);
  expect((used.user + used.system) / 1000).toBeLessThan(100);

  loop.close({ allFds: true }); // the listener, the client and the server's connection
}, 30_000);

test('timers on the portable driver fire on the provider clock, never early', async () => {
  const loop = new IOLoop({ backend: 'wasi', makeCurrent: false });
  const delays = [0.001, 0.005, 0.02, 0.05];
  const late: { loop: number; perf: number }[] = [];
  await loop.run(
    () =>
      new Promise<void>((resolve) => {
        for (const d of delays) {
          const p0 = performance.now() / 1000;
          const deadline = loop.time() + d;
          loop.callLater(d, () => {
            late.push({ loop: loop.time() - deadline, perf: performance.now() / 1000 - p0 - d });
            if (late.length === delays.length) resolve();
          });
        }
      }),
    { timeout: 5 },
  );
  for (const l of late) {
    expect(l.loop).toBeGreaterThanOrEqual(0);
    expect(l.perf).toBeGreaterThanOrEqual(-1e-9);
  }
  loop.close();
});

test("errors carry the native sys's codes, and what the provider cannot do says so", async () => {
  const loop = new IOLoop({ backend: 'wasi', makeCurrent: false });
  const sys = loop.sys;
  const codeOf = (fn: () => unknown): string | undefined => {
    try {
      fn();
      return undefined;
    } catch (e) {
      return (e as { code?: string }).code;
    }
  };
  expect(codeOf(() => sys.pipe())).toBe('ENOSYS');
  expect(codeOf(() => sys.socketpair())).toBe('ENOSYS');
  expect(codeOf(() => sys.read(77, new Uint8Array(4)))).toBe('EBADF');
  expect(codeOf(() => sys.close(77))).toBe('EBADF');
  expect(() => loop.addHandler(77, () => {}, READ)).toThrow(expect.objectContaining({ code: 'EBADF' }));
  expect(() => sys.listenTcp('127.0.0.1', 70000)).toThrow(RangeError);
  expect(() => sys.connectTcp('', 80)).toThrow(TypeError);

  // Failures that a socket reports once it is ready, as a nonblocking connect(2)
  // does: the first read names them.
  const listener = sys.listenTcp('127.0.0.1', 0);
  const used = sys.localPort(listener);
  const failures = await loop.run(
    () =>
      new Promise<Record<string, string | undefined>>((resolve) => {
        const out: Record<string, string | undefined> = {};
        const watch = (name: string, fd: number, call: () => unknown) =>
          loop.addHandler(
            fd,
            () => {
              out[name] = codeOf(call);
              loop.removeHandler(fd);
              if (Object.keys(out).length === 3) resolve(out);
            },
            READ | WRITE,
          );
        const refused = sys.connectTcp('127.0.0.1', 1);
        watch('refused', refused, () => sys.read(refused, new Uint8Array(4)));
        const unknown = sys.connectTcp('no-such-host.invalid', 80);
        watch('lookup', unknown, () => sys.read(unknown, new Uint8Array(4)));
        // A bind that fails is the listener's error, told by its first event.
        const second = sys.listenTcp('127.0.0.1', used);
        watch('inUse', second, () => sys.accept(second));
      }),
    { timeout: 20 },
  );
  expect(failures).toEqual({ refused: 'ECONNREFUSED', lookup: 'EAI_NONAME', inUse: 'EADDRINUSE' });
  loop.close({ allFds: true });

  // The drivers that cannot work over the provider say why.
  expect(() => new IOLoop({ backend: 'wasi', driver: 'blocking', makeCurrent: false })).toThrow(/^driver 'blocking' waits in poll_oneoff, and this WASI host's never blocks/);
  expect(() => new IOLoop({ backend: 'wasi', driver: 'guest', makeCurrent: false })).toThrow(/^driver 'guest' watches the poller's fd, and backend 'wasi' has none/);
  expect(IOLoop.host().backends).toContain('wasi');
}, 30_000);

test('without the native shim the default loop is wasi over the provider: it echoes, and a stopped loop keeps nothing alive', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--no-warnings', '--import', 'tsx', path.join(__dirname, 'fixtures', 'wasi-portable-child.ts')], {
    cwd: ROOT,
    env: { ...process.env, WASM_IOLOOP_NO_NATIVE: '1' },
    timeout: 30_000,
  });
  const got = JSON.parse(stdout);
  expect(got.configured).toBe('wasi');
  expect(got.host).toMatchObject({ native: 'disabled by WASM_IOLOOP_NO_NATIVE=1', backends: ['wasi', 'fake'], drivers: ['portable'] });
  expect(got.echoed).toBe(true);
  // Driver portable alone is still the fds-less loop it always was.
  expect(got.portableAlone).toMatch(/^addHandler: this loop's backend 'none' watches no fds/);
  expect(got.blockingAlone).toMatch(/^driver 'blocking' waits in poll_oneoff, and this WASI host's never blocks/);
  // The child printed before it stopped its loop, its sockets still open, and then
  // exited by itself: execFile resolved.
}, 40_000);

test("a host with only the wasm_ioloop_sock module: loop.sys's socket calls go through the core's memory, with the same codes", async () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { WasiProvider } = require('../bindings/wasi') as typeof import('../bindings/wasi');
  const provider = new WasiProvider({ ref: false });
  // The provider without its JavaScript sockets(): the extension module only.
  const host = {
    wasiImport: provider.wasiImport,
    imports: () => provider.imports(),
    initialize: (i: WebAssembly.Instance) => provider.initialize(i),
    onReady: (cb: () => void) => provider.onReady(cb),
  };
  const loop = new IOLoop({ wasi: host, makeCurrent: false });
  const sys = loop.sys;
  const listener = sys.listenTcp('127.0.0.1', 0);
  const port = sys.localPort(listener);
  expect(port).toBeGreaterThan(0);
  serveEcho(loop, sys, listener);
  const client = sys.connectTcp('127.0.0.1', port);
  const unknown = sys.connectTcp('no-such-host.invalid', 80);
  const got = await loop.run(
    () =>
      new Promise<{ echo: string; lookup?: string }>((resolve) => {
        const result: { echo: string; lookup?: string } = { echo: '' };
        const buf = new Uint8Array(64);
        let sent = false;
        loop.addHandler(
          client,
          (_fd, events) => {
            if (!sent && (events & WRITE) !== 0) {
              sent = sys.write(client, new TextEncoder().encode('via wasm_ioloop_sock')) > 0;
              loop.updateHandler(client, READ);
            } else if ((events & READ) !== 0) {
              const n = sys.read(client, buf);
              result.echo += new TextDecoder().decode(buf.subarray(0, Math.max(n, 0)));
              if (result.echo.length >= 20 && result.lookup !== undefined) resolve(result);
            }
          },
          READ | WRITE,
        );
        loop.addHandler(
          unknown,
          () => {
            try {
              sys.read(unknown, buf);
            } catch (e) {
              result.lookup = (e as { code?: string }).code;
            }
            loop.removeHandler(unknown);
            if (result.echo.length >= 20) resolve(result);
          },
          READ,
        );
      }),
    { timeout: 20 },
  );
  expect(got).toEqual({ echo: 'via wasm_ioloop_sock', lookup: 'EAI_NONAME' });
  expect(() => sys.localPort(999)).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'getsockname' }));
  loop.close({ allFds: true });
}, 30_000);
