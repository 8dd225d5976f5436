// An IOLoop in a worker thread: the guest driver nests in the worker's own libuv
// loop, and the worker exits cleanly with nothing left open.
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { newFds, openFds } from './helpers';

const dist = path.join(__dirname, '..', 'dist', 'index.js');

test('a loop runs timers and fd handlers in a worker thread, which then exits cleanly', async () => {
  const before = openFds();
  const worker = new Worker(
    `
    const { parentPort, workerData } = require('node:worker_threads');
    const { IOLoop, READ, sys } = require(workerData.dist);
    const loop = new IOLoop();
    const [r, w] = sys.pipe();
    const seen = [];
    loop.addHandler(r, () => {
      const buf = new Uint8Array(8);
      seen.push('read ' + sys.read(r, buf));
      loop.stop();
    }, READ);
    loop.callLater(0.01, () => { seen.push('timer'); sys.write(w, new Uint8Array([7])); });
    loop.start().then(() => {
      loop.close({ allFds: true });
      sys.close(w);
      parentPort.postMessage(seen);
    });
    `,
    { eval: true, workerData: { dist } },
  );
  const [message] = await Promise.all([
    new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    }),
    new Promise((resolve) => worker.once('exit', resolve)),
  ]);
  expect(message).toEqual(['timer', 'read 1']);
  expect(newFds(before, openFds())).toEqual([]);
});
