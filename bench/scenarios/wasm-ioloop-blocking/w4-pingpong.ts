/**
 * W4 on wasm-ioloop (blocking driver): the ping-pong of bench/lib/pingpong-loop.ts
 * in a worker thread whose loop owns the thread and waits in its own poll. The
 * main thread only starts the worker and prints the row it sends back.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { emit, fail, jobs, main, type Row } from '../../lib/measure';
import { pingPongOnLoop } from '../../lib/pingpong-loop';

const PEER = 'wasm-ioloop-blocking';

function inWorker(config: string, n: number): Promise<Row> {
  return new Promise((resolve, reject) => {
    // Workers inherit the main thread's execArgv, so tsx loads this file there too.
    const worker = new Worker(__filename, { workerData: { config, n } });
    let row: Row | undefined;
    worker.once('message', (r: Row) => (row = r));
    worker.once('error', reject);
    worker.once('exit', (code) => (row !== undefined && code === 0 ? resolve(row) : reject(new Error(`the worker exited with ${code} and no row`))));
  });
}

if (isMainThread) {
  main(async () => {
    for (const { config, n } of jobs(['1pair', '100pairs'], 200_000)) {
      const row = await inWorker(config, n).catch((e: Error) => fail(`W4 ${config} ${PEER}`, e.message));
      emit(row);
    }
  });
} else {
  const { config, n } = workerData as { config: string; n: number };
  void pingPongOnLoop(PEER, { driver: 'blocking' }, config, n).then((row) => parentPort!.postMessage(row));
}
