/**
 * W6 on wasm-ioloop (guest driver): messages from worker threads into a loop on
 * the main thread through a channel (loop.createChannel / openChannel).
 *
 *   latency     one worker posts n single messages, each after the loop handled
 *               the one before (onMessage answers through a SharedArrayBuffer
 *               word and Atomics.notify). One-way latency of each: from just
 *               before post() to the start of onMessage, on the process's
 *               monotonic clock (process.hrtime, the same in every thread).
 *               A warm-up of WARMUP messages comes first and is not measured.
 *   throughput  4 workers post n/4 messages each as fast as they can; messages
 *               per second of wall time from the go signal to the last one
 *               handled. Before the go signal each posts THROUGHPUT_WARMUP
 *               messages, and the clock starts once all of those are handled.
 * Messages are small objects, { worker, seq }, copied as postMessage copies them.
 * Each run checks that every message arrived once, in order per worker.
 *
 * W6's per-operation figure (nsPerOp) is a wall-clock one, not CPU: the median
 * one-way latency in ns (latency), or wall ns per message (throughput). The row
 * also carries p50Us, p99Us, maxUs (latency) or msgsPerSec (throughput), the CPU
 * ns per message of the whole process (cpuNsPerMsg), and the wake syscalls the
 * posters made (wakes; the channel coalesces them as uv_async_send does).
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { IOLoop, openChannel, type ChannelPort } from 'wasm-ioloop';
// Not public API: the shim's syscall counters, which exist for figures like this one.
import { loadNative } from '../../../src/native';
import { emit, fail, main, Span } from '../../lib/measure';
import { latencySummary, parseJob, THROUGHPUT_WARMUP, THROUGHPUT_WORKERS, WARMUP } from '../../lib/wake';

const PEER = 'wasm-ioloop';
/** throughput: messages the channel holds (MessagePort's queue has no bound). */
const CAPACITY = Number(process.env.W6_CAPACITY ?? 16_384);

interface Job {
  mode: 'latency' | 'throughput';
  port: ChannelPort;
  /** [0] latency: messages handled so far; [1] throughput: go; [2] throughput: posters ready. */
  flags: SharedArrayBuffer;
  /** latency: hrtime (ns) just before each post. */
  stamps: SharedArrayBuffer;
  worker: number;
  count: number;
}

function poster(job: Job): void {
  const sender = openChannel<{ worker: number; seq: number }>(job.port);
  const flags = new Int32Array(job.flags);
  const shim = loadNative()!;
  const wakes0 = shim.counters().wakes;
  if (job.mode === 'latency') {
    const stamp = new BigInt64Array(job.stamps);
    for (let seq = 0; seq < job.count; seq++) {
      stamp[0] = process.hrtime.bigint();
      sender.post({ worker: 0, seq });
      // Wait for the loop to have handled it.
      while (Atomics.load(flags, 0) <= seq) Atomics.wait(flags, 0, seq);
    }
  } else {
    for (let seq = 0; seq < THROUGHPUT_WARMUP; seq++) sender.post({ worker: job.worker, seq });
    Atomics.add(flags, 2, 1);
    Atomics.wait(flags, 1, 0);
    for (let seq = THROUGHPUT_WARMUP; seq < THROUGHPUT_WARMUP + job.count; seq++) sender.post({ worker: job.worker, seq });
  }
  sender.close();
  parentPort!.postMessage({ wakes: shim.counters().wakes - wakes0 });
}

function startPoster(job: Omit<Job, 'mode'> & { mode: Job['mode'] }, what: string): Promise<{ wakes: number }> {
  return new Promise((resolve, reject) => {
    // Workers inherit the main thread's execArgv, so tsx loads this file there too.
    const w = new Worker(__filename, { workerData: job });
    let report: { wakes: number } | undefined;
    w.once('message', (r: { wakes: number }) => (report = r));
    w.once('error', reject);
    w.once('exit', (code) => (report !== undefined && code === 0 ? resolve(report) : reject(new Error(`${what}: a poster exited with ${code}`))));
  });
}

async function latency(n: number): Promise<void> {
  const what = `W6 latency ${PEER}`;
  const loop = new IOLoop();
  const flags = new SharedArrayBuffer(12);
  const stamps = new SharedArrayBuffer(8);
  const handled = new Int32Array(flags);
  const stamp = new BigInt64Array(stamps);
  const total = WARMUP + n;
  const latencies = new Float64Array(n);
  const span = new Span();
  let next = 0;
  const port = loop.createChannel((m: { worker: number; seq: number }) => {
    const t = process.hrtime.bigint();
    if (m.seq !== next) fail(what, `message ${m.seq} arrived when ${next} was due`);
    if (next >= WARMUP) latencies[next - WARMUP] = Number(t - stamp[0]!);
    next++;
    if (next === WARMUP) span.start();
    Atomics.store(handled, 0, next);
    Atomics.notify(handled, 0);
    if (next === total) {
      span.stop();
      loop.stop();
    }
  });
  const [report] = await Promise.all([startPoster({ mode: 'latency', port, flags, stamps, worker: 0, count: total }, what), loop.start()]);
  loop.close();
  if (next !== total) fail(what, `${next} of ${total} messages arrived`);
  const s = latencySummary(latencies, what);
  emit({
    scenario: 'W6', peer: PEER, config: 'latency', n, wallMs: span.wallMs, cpuMs: span.cpuMs, nsPerOp: s.p50Us * 1000,
    p50Us: s.p50Us, p99Us: s.p99Us, maxUs: s.maxUs, cpuNsPerMsg: (span.cpuMs * 1e6) / n, wakes: report.wakes,
  });
}

async function throughput(n: number): Promise<void> {
  const what = `W6 throughput ${PEER}`;
  const per = Math.floor(n / THROUGHPUT_WORKERS);
  const total = per * THROUGHPUT_WORKERS;
  const warm = THROUGHPUT_WARMUP * THROUGHPUT_WORKERS;
  const loop = new IOLoop();
  const flags = new SharedArrayBuffer(12);
  const flags32 = new Int32Array(flags);
  const next = new Array<number>(THROUGHPUT_WORKERS).fill(0);
  const span = new Span();
  let got = 0;
  // Once every warm-up message is handled and every poster waits for the go signal, start the clock.
  const go = (): void => {
    if (Atomics.load(flags32, 2) < THROUGHPUT_WORKERS) {
      loop.callLater(0.001, go);
      return;
    }
    span.start();
    Atomics.store(flags32, 1, 1);
    Atomics.notify(flags32, 1);
  };
  const port = loop.createChannel((m: { worker: number; seq: number }) => {
    if (m.seq !== next[m.worker]) fail(what, `worker ${m.worker}: message ${m.seq} arrived when ${next[m.worker]} was due`);
    next[m.worker]++;
    ++got;
    if (got === warm) go();
    else if (got === warm + total) {
      span.stop();
      loop.stop();
    }
  }, { capacity: CAPACITY });
  const posters = Array.from({ length: THROUGHPUT_WORKERS }, (_, worker) =>
    startPoster({ mode: 'throughput', port, flags, stamps: flags, worker, count: per }, what),
  );
  const [reports] = await Promise.all([Promise.all(posters), loop.start()]);
  loop.close();
  if (got !== warm + total) fail(what, `${got} of ${warm + total} messages arrived`);
  const wakes = reports.reduce((sum, r) => sum + r.wakes, 0);
  emit({
    scenario: 'W6', peer: PEER, config: 'throughput', n: total, wallMs: span.wallMs, cpuMs: span.cpuMs,
    nsPerOp: (span.wallMs * 1e6) / total, msgsPerSec: total / (span.wallMs / 1000), cpuNsPerMsg: (span.cpuMs * 1e6) / total, wakes,
  });
}

if (isMainThread) {
  main(async () => {
    for (const { config, n } of parseJob()) await (config === 'latency' ? latency(n) : throughput(n));
  });
} else {
  poster(workerData as Job);
}
