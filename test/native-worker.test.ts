// The native shim in worker threads: each environment has its own state, wake()
// crosses threads, and a worker's teardown closes the descriptors and guest
// handles it left open. Every test compares /proc/self/fd before and after.
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { requireNative } from '../src/native';
import { guardFdCountPerTest } from './helpers';

const native = requireNative('test/native-worker');
const ADDON = path.join(__dirname, '..', 'build', 'Release', 'wasm_ioloop.node');

/** Starts a worker running `body` with `native` loaded; resolves with its messages and exit code. */
async function runWorker(body: string, workerData?: unknown, onStart?: (w: Worker) => void): Promise<{ messages: unknown[]; code: number }> {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const native = require(${JSON.stringify(ADDON)});
    ${body}
  `;
  const worker = new Worker(code, { eval: true, workerData });
  const messages: unknown[] = [];
  worker.on('message', (m) => messages.push(m));
  const errors: unknown[] = [];
  worker.on('error', (e) => errors.push(e));
  onStart?.(worker);
  const [exitCode] = (await once(worker, 'exit')) as [number];
  if (errors.length) throw errors[0];
  return { messages, code: exitCode };
}

describe('native shim in worker threads', () => {
  guardFdCountPerTest();

  test('the_addon_loads_and_works_inside_a_worker', async () => {
    const { messages, code } = await runWorker(`
      const { CTL_ADD, EV_READ } = native.layout;
      const ep = native.epollCreate();
      const [r, w] = native.pipe();
      native.epollCtl(ep, CTL_ADD, r, EV_READ, 99);
      native.write(w, Buffer.from('x'));
      const buf = new ArrayBuffer(8);
      const n = native.epollWait(ep, buf, 0, 1, 1000);
      const token = new DataView(buf).getUint32(0, true);
      for (const fd of [r, w, ep]) native.close(fd);
      parentPort.postMessage({ n, token, counters: native.counters() });
    `);
    expect(code).toBe(0);
    expect(messages).toEqual([{ n: 1, token: 99, counters: { epollWait: 1, epollCtl: 1, wakes: 0 } }]);
  });

  test('each_environment_counts_its_own_syscalls', async () => {
    const before = native.counters();
    await runWorker(`
      const ep = native.epollCreate();
      for (let i = 0; i < 10; i++) native.epollWait(ep, new ArrayBuffer(8), 0, 1, 0);
      native.close(ep);
    `);
    expect(native.counters()).toEqual(before);
  });

  test('wake_from_a_worker_reaches_the_main_threads_eventfd_and_coalesces', async () => {
    const { CTL_ADD, EV_READ, WAKER_TOKEN } = native.layout;
    const ep = native.epollCreate();
    const efd = native.eventfdOpen();
    try {
      native.epollCtl(ep, CTL_ADD, efd, EV_READ, WAKER_TOKEN);
      const { messages } = await runWorker(
        `
        const results = [];
        for (let i = 0; i < 3; i++) results.push(native.wake(workerData.efd));
        parentPort.postMessage({ results, wakes: native.counters().wakes });
      `,
        { efd },
      );
      expect(messages).toEqual([{ results: [0, 0, 0], wakes: 3 }]);
      const buf = new ArrayBuffer(8);
      expect(native.epollWait(ep, buf, 0, 1, 0)).toBe(1);
      expect(new DataView(buf).getUint32(0, true)).toBe(WAKER_TOKEN);
      expect(native.consume(efd)).toBe(3);
    } finally {
      native.close(efd);
      native.close(ep);
    }
  });

  test('wake_from_a_worker_turns_the_main_threads_guest_driver', async () => {
    const { CTL_ADD, EV_READ, WAKER_TOKEN } = native.layout;
    const ep = native.epollCreate();
    const efd = native.eventfdOpen();
    native.epollCtl(ep, CTL_ADD, efd, EV_READ, WAKER_TOKEN);
    let consumed = 0;
    let release!: () => void;
    const woken = new Promise<void>((resolve) => (release = resolve));
    const guest = native.guestOpen(ep, () => {
      consumed += native.consume(efd);
      if (consumed >= 50) release();
    });
    try {
      native.guestStart(guest);
      await runWorker(`for (let i = 0; i < 50; i++) native.wake(workerData.efd);`, { efd });
      await woken;
      expect(consumed).toBe(50);
    } finally {
      native.guestStop(guest);
      native.guestClose(guest);
      native.close(efd);
      native.close(ep);
    }
  });

  test('a_worker_that_ends_with_fds_and_a_guest_open_has_them_closed', async () => {
    const { messages, code } = await runWorker(`
      const ep = native.epollCreate();
      const efd = native.eventfdOpen();
      native.epollCtl(ep, native.layout.CTL_ADD, efd, native.layout.EV_READ, 1);
      globalThis.guest = native.guestOpen(ep, () => {});
      native.guestArm(globalThis.guest, 60000);
      parentPort.postMessage([ep, efd]);
    `);
    expect(code).toBe(0);
    const [ep, efd] = messages[0] as [number, number];
    // The numbers are free again: the worker's cleanup closed them.
    expect(fs.readdirSync('/proc/self/fd')).not.toEqual(expect.arrayContaining([String(ep), String(efd)]));
  });

  test('a_terminated_worker_with_a_started_guest_exits_cleanly', async () => {
    const { code } = await runWorker(
      `
      const ep = native.epollCreate();
      const efd = native.eventfdOpen();
      native.epollCtl(ep, native.layout.CTL_ADD, efd, native.layout.EV_READ, 1);
      const g = native.guestOpen(ep, () => { native.consume(efd); });
      native.guestStart(g);
      native.guestArm(g, 5);
      parentPort.postMessage('started');
    `,
      undefined,
      (w) => w.once('message', () => void w.terminate()),
    );
    expect(code).toBe(1); // terminate() reports exit code 1
  });

  test('a_worker_calling_process_exit_with_open_guests_exits_cleanly', async () => {
    const { code } = await runWorker(`
      const guests = [];
      for (let i = 0; i < 4; i++) {
        const ep = native.epollCreate();
        const g = native.guestOpen(ep, () => {});
        native.guestStart(g);
        if (i % 2) native.guestClose(g); // one close still in flight at exit
        guests.push(g);
      }
      setTimeout(() => process.exit(7), 10);
    `);
    expect(code).toBe(7);
  });

  test('several_workers_at_once_each_run_their_own_guest_loop', async () => {
    const body = `
      const { CTL_ADD, EV_READ } = native.layout;
      const ep = native.epollCreate();
      const efd = native.eventfdOpen();
      native.epollCtl(ep, CTL_ADD, efd, EV_READ, 1);
      let turns = 0;
      const buf = new ArrayBuffer(64);
      const g = native.guestOpen(ep, () => {
        native.epollWait(ep, buf, 0, 8, 0);
        native.consume(efd);
        if (++turns < 200) { native.wake(efd); return; }
        native.guestClose(g);
        native.close(efd);
        native.close(ep);
        parentPort.postMessage(turns);
      });
      native.guestStart(g);
      native.wake(efd);
    `;
    const results = await Promise.all([1, 2, 3, 4].map(() => runWorker(body)));
    expect(results).toEqual([1, 2, 3, 4].map(() => ({ messages: [200], code: 0 })));
  });
});
