// The turn engine's failure and wake-up paths, below the public API: a driver whose
// wait fails stops the loop and says why; the waker wakes a loop that watches no fd.
import { Worker } from 'node:worker_threads';
import type { Backend } from '../src/backends';
import { realClock } from '../src/clock';
import { instantiateCore } from '../src/core';
import { Engine, State } from '../src/engine';
import { IOLoop, SysError, sys } from '../src/index';
import { engineOf } from '../src/ioloop';
import { loadNative, nativeStatus } from '../src/native';
import { openDriver } from '../src/selection';
import { RecordingLogger, guardResources, newLoop } from './helpers';

guardResources();
const native = loadNative()!;

/** A TCP socket whose connect was refused: libuv sees POLLERR on it until the error is read. */
async function refusedSocket(): Promise<number> {
  const listener = sys.listenTcp('127.0.0.1', 0);
  const port = sys.localPort(listener);
  sys.close(listener);
  const fd = sys.connectTcp('127.0.0.1', port);
  await new Promise((resolve) => setTimeout(resolve, 50));
  return fd;
}

/** An engine whose "poller" is `fd`, driven by the guest driver, for provoking the driver's error turn. */
function engineOver(fd: number): Engine {
  const backend: Backend = {
    name: 'epoll',
    native,
    clock: null,
    sys,
    watchesFds: true,
    watch: 'epoll',
    calls: { ctl: 'epoll_ctl', wait: 'epoll_wait' },
    imports: { epoll_create: () => fd, epoll_ctl: () => 0, epoll_wait: () => 0, fd_close: () => 0 },
  };
  const core = instantiateCore(backend.imports);
  expect(core.loop_init()).toBe(0);
  const engine = new Engine(core, backend, realClock(), new RecordingLogger());
  engine.attach(openDriver('guest', backend, engine));
  return engine;
}

test('a guest driver whose poll fails rejects start() with a SysError and leaves the loop stopped and usable', async () => {
  const fd = await refusedSocket();
  const engine = engineOver(fd);
  try {
    const failed = new Promise<void>((resolve, reject) => engine.start({ resolve, reject }));
    const error = await failed.then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(SysError);
    expect(error).toMatchObject({ code: 'EBADF', syscall: 'uv_poll' });
    expect((error as Error).message).toMatch(/waiting for the poller failed; the loop stopped/);
    expect(engine.state).toBe(State.Idle);

    // Reading the socket's error clears it; the same loop then starts and runs again.
    expect(() => sys.read(fd, new Uint8Array(1))).toThrow(/ECONNREFUSED/);
    let ran = false;
    engine.callbacks.push(() => {
      ran = true;
      engine.stop();
    }, Symbol.for('unused'));
    await new Promise<void>((resolve, reject) => engine.start({ resolve, reject }));
    expect(ran).toBe(true);
    expect(engine.state).toBe(State.Idle);
  } finally {
    engine.close();
    sys.close(fd);
  }
});

test('the waker wakes a guest loop that watches no fd, once per wake, and is consumed (no spin)', async () => {
  const loop = newLoop();
  const engine = engineOf(loop);
  let woken = 0;
  const waker = engine.openWaker(() => woken++);
  const done = loop.start();
  const before = loop.stats().iterations;
  await new Promise((resolve) => setTimeout(resolve, 20));
  expect(native.wake(waker.fd)).toBe(0);
  await new Promise((resolve) => setTimeout(resolve, 100));
  const iterations = loop.stats().iterations - before;
  loop.stop();
  await done;
  expect(woken).toBe(1);
  // One wake: a few iterations (the wake's turn, plus at most the start's), not a spin.
  expect(iterations).toBeLessThanOrEqual(3);
  expect(native.consume(waker.fd)).toBe(0); // nothing left unread
});

test('the waker wakes a blocking loop from another thread', async () => {
  const loop = newLoop({ driver: 'blocking' });
  const engine = engineOf(loop);
  let woken = 0;
  const waker = engine.openWaker(() => {
    woken++;
    loop.stop();
  });
  const worker = new Worker(
    `const { workerData } = require('node:worker_threads');
     const shim = require(workerData.path);
     Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
     shim.wake(workerData.fd);`,
    { eval: true, workerData: { path: nativeStatus().path, fd: waker.fd } },
  );
  const exited = new Promise((resolve) => worker.once('exit', resolve));
  await loop.start();
  expect(await exited).toBe(0);
  expect(woken).toBe(1);
  // Blocked in one poll until the wake: a handful of iterations, not a spin.
  expect(loop.stats().iterations).toBeLessThanOrEqual(3);
});

test('IOLoop.host() names the runtime, the shim and what a loop can have here', () => {
  expect(IOLoop.host()).toEqual({
    runtime: 'node',
    version: process.versions.node,
    native: true,
    backends: ['epoll', 'poll', 'wasi', 'fake'],
    drivers: ['guest', 'blocking', 'portable'],
    watchdog: true,
  });
});
