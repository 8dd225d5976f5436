/**
 * W6 with Node's MessagePort: worker threads post to the main thread with
 * parentPort.postMessage, and the main thread's 'message' listener handles them.
 *
 *   latency     one worker posts n single messages, each after the main thread
 *               handled the one before (the listener answers through a
 *               SharedArrayBuffer word and Atomics.notify). One-way latency of
 *               each: from just before postMessage() to the start of the
 *               listener, on the process's monotonic clock (process.hrtime, the
 *               same in every thread). A warm-up of WARMUP messages comes first
 *               and is not measured.
 *   throughput  4 workers post n/4 messages each as fast as they can; messages
 *               per second of wall time from the go signal to the last one
 *               handled. Before the go signal each posts THROUGHPUT_WARMUP
 *               messages, and the clock starts once all of those are handled.
 * Messages are small objects, { worker, seq }, as in the wasm-ioloop program.
 * Each run checks that every message arrived once, in order per worker.
 *
 * As there, nsPerOp is a wall-clock figure: the median one-way latency in ns
 * (latency), or wall ns per message (throughput); the row also carries p50Us,
 * p99Us, maxUs or msgsPerSec, and the CPU ns per message (cpuNsPerMsg).
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { emit, fail, main, Span } from '../../lib/measure';
import { latencySummary, parseJob, THROUGHPUT_WARMUP, THROUGHPUT_WORKERS, WARMUP } from '../../lib/wake';

const PEER = 'node';

interface Job {
  mode: 'latency' | 'throughput';
  /** [0] latency: messages handled so far; [1] throughput: go; [2] throughput: posters ready. */
  flags: SharedArrayBuffer;
  /** latency: hrtime (ns) just before each post. */
  stamps: SharedArrayBuffer;
  worker: number;
  count: number;
}

function poster(job: Job): void {
  const port = parentPort!;
  const flags = new Int32Array(job.flags);
  if (job.mode === 'latency') {
    const stamp = new BigInt64Array(job.stamps);
    for (let seq = 0; seq < job.count; seq++) {
      stamp[0] = process.hrtime.bigint();
      port.postMessage({ worker: 0, seq });
      while (Atomics.load(flags, 0) <= seq) Atomics.wait(flags, 0, seq);
    }
  } else {
    for (let seq = 0; seq < THROUGHPUT_WARMUP; seq++) port.postMessage({ worker: job.worker, seq });
    Atomics.add(flags, 2, 1);
    Atomics.wait(flags, 1, 0);
    for (let seq = THROUGHPUT_WARMUP; seq < THROUGHPUT_WARMUP + job.count; seq++) port.postMessage({ worker: job.worker, seq });
  }
}

function startPoster(job: Job, onMessage: (m: { worker: number; seq: number }) => void, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    // Workers inherit the main thread's execArgv, so tsx loads this file there too.
    const w = new Worker(__filename, { workerData: job });
    w.on('message', onMessage);
    w.once('error', reject);
    w.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${what}: a poster exited with ${code}`))));
  });
}

async function latency(n: number): Promise<void> {
  const what = `W6 latency ${PEER}`;
  const flags = new SharedArrayBuffer(12);
  const stamps = new SharedArrayBuffer(8);
  const handled = new Int32Array(flags);
  const stamp = new BigInt64Array(stamps);
  const total = WARMUP + n;
  const latencies = new Float64Array(n);
  const span = new Span();
  let next = 0;
  await startPoster({ mode: 'latency', flags, stamps, worker: 0, count: total }, (m) => {
    const t = process.hrtime.bigint();
    if (m.seq !== next) fail(what, `message ${m.seq} arrived when ${next} was due`);
    if (next >= WARMUP) latencies[next - WARMUP] = Number(t - stamp[0]!);
    next++;
    if (next === WARMUP) span.start();
    Atomics.store(handled, 0, next);
    Atomics.notify(handled, 0);
    if (next === total) span.stop();
  }, what);
  if (next !== total) fail(what, `${next} of ${total} messages arrived`);
  const s = latencySummary(latencies, what);
  emit({
    scenario: 'W6', peer: PEER, config: 'latency', n, wallMs: span.wallMs, cpuMs: span.cpuMs, nsPerOp: s.p50Us * 1000,
    p50Us: s.p50Us, p99Us: s.p99Us, maxUs: s.maxUs, cpuNsPerMsg: (span.cpuMs * 1e6) / n,
  });
}

async function throughput(n: number): Promise<void> {
  const what = `W6 throughput ${PEER}`;
  const per = Math.floor(n / THROUGHPUT_WORKERS);
  const total = per * THROUGHPUT_WORKERS;
  const warm = THROUGHPUT_WARMUP * THROUGHPUT_WORKERS;
  const flags = new SharedArrayBuffer(12);
  const flags32 = new Int32Array(flags);
  const next = new Array<number>(THROUGHPUT_WORKERS).fill(0);
  const span = new Span();
  let got = 0;
  let allIn!: () => void;
  const arrived = new Promise<void>((resolve) => (allIn = resolve));
  // Once every warm-up message is handled and every poster waits for the go signal, start the clock.
  const go = (): void => {
    if (Atomics.load(flags32, 2) < THROUGHPUT_WORKERS) {
      setTimeout(go, 1);
      return;
    }
    span.start();
    Atomics.store(flags32, 1, 1);
    Atomics.notify(flags32, 1);
  };
  const onMessage = (m: { worker: number; seq: number }): void => {
    if (m.seq !== next[m.worker]) fail(what, `worker ${m.worker}: message ${m.seq} arrived when ${next[m.worker]} was due`);
    next[m.worker]++;
    ++got;
    if (got === warm) go();
    else if (got === warm + total) {
      span.stop();
      allIn();
    }
  };
  const posters = Array.from({ length: THROUGHPUT_WORKERS }, (_, worker) =>
    startPoster({ mode: 'throughput', flags, stamps: flags, worker, count: per }, onMessage, what),
  );
  await Promise.all([arrived, ...posters]);
  if (got !== warm + total) fail(what, `${got} of ${warm + total} messages arrived`);
  emit({
    scenario: 'W6', peer: PEER, config: 'throughput', n: total, wallMs: span.wallMs, cpuMs: span.cpuMs,
    nsPerOp: (span.wallMs * 1e6) / total, msgsPerSec: total / (span.wallMs / 1000), cpuNsPerMsg: (span.cpuMs * 1e6) / total,
  });
}

if (isMainThread) {
  main(async () => {
    for (const { config, n } of parseJob()) await (config === 'latency' ? latency(n) : throughput(n));
  });
} else {
  poster(workerData as Job);
}
