// Channels (IOLoop.createChannel / openChannel) and the shim's waker registry:
// messages from worker threads into a loop under every driver that has a waker,
// checked end to end; coalesced wake-ups; a full queue; closing while posts
// stream in; and ports that outlive their loop.
import * as os from 'node:os';
import * as path from 'node:path';
import { serialize } from 'node:v8';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { ChannelClosedError, ChannelFullError, IOLoop, openChannel, type ChannelPort } from '../src/index';
import { loadNative } from '../src/native';
import { guardResources, newLoop, RecordingLogger } from './helpers';

guardResources();

const native = loadNative()!;
const SRC = path.join(__dirname, '..', 'src');
const EBADF = os.constants.errno.EBADF;
const ESRCH = os.constants.errno.ESRCH;
const EPERM = os.constants.errno.EPERM;

/**
 * Whether two values are the same structured-clone value: their v8.serialize bytes
 * are equal (types, holes, -0, shared references and cycles included). Compared this
 * way because jest's realm differs from the one structuredClone and v8 make objects in.
 */
function sameClone(a: unknown, b: unknown): boolean {
  return Buffer.compare(serialize(a), serialize(b)) === 0;
}

const SENDERS = 4;
const PER_SENDER = 100_000;

/**
 * The messages of the end-to-end runs, as code that both the posters (in workers)
 * and the test evaluate: `make(w, i)` is sender w's message i, `identify(m)` gives
 * back [w, i] and throws unless m is a faithful copy of make(w, i). Every form of
 * the encoding is there: plain objects, strings (some not ASCII), Uint8Arrays,
 * numbers, and now and then a Map (v8.serialize).
 */
const MESSAGES = String.raw`
function make(w, i) {
  switch (i % 4) {
    case 0: return { w, i, name: 'sender-' + w, list: [i, -i, i / 4, null, true, undefined], nested: { s: 'é' + i } };
    case 1: return w + ':' + i + (i % 8 === 1 ? ':ünï' : '');
    case 2: {
      const b = new Uint8Array(4 + (i % 13));
      b[0] = w; b[1] = i & 255; b[2] = (i >> 8) & 255; b[3] = (i >> 16) & 255;
      for (let k = 4; k < b.length; k++) b[k] = k;
      return b;
    }
    default: return i % 1000 === 3 ? new Map([['w', w], ['i', i]]) : i * 8 + w;
  }
}
// Types are told by their tag: under jest, what v8.deserialize makes comes from another realm.
const tag = (m) => Object.prototype.toString.call(m);
function identify(m) {
  let w, i;
  if (typeof m === 'number') { w = m % 8; i = (m - w) / 8; }
  else if (typeof m === 'string') { const p = m.split(':'); w = Number(p[0]); i = Number(p[1]); if (m !== make(w, i)) throw new Error('string ' + m); }
  else if (tag(m) === '[object Uint8Array]') {
    w = m[0]; i = m[1] | (m[2] << 8) | (m[3] << 16);
    const e = make(w, i);
    if (m.length !== e.length || m.some((x, k) => x !== e[k])) throw new Error('bytes ' + m);
  } else if (tag(m) === '[object Map]') { w = m.get('w'); i = m.get('i'); if (m.size !== 2) throw new Error('map'); }
  else {
    w = m.w; i = m.i;
    const e = make(w, i);
    if (m.name !== e.name || m.nested.s !== e.nested.s || m.list.length !== 6 || m.list[2] !== i / 4 || m.list[1] !== -i ||
        !Object.is(m.list[1], e.list[1]) || m.list[3] !== null || m.list[4] !== true || m.list[5] !== undefined || !(5 in m.list))
      throw new Error('object ' + JSON.stringify(m));
  }
  if (tag(make(w, i)) !== tag(m)) throw new Error('form of ' + w + ':' + i);
  return [w, i];
}
`;
const { make, identify } = new Function(`${MESSAGES}; return { make, identify };`)() as {
  make: (w: number, i: number) => unknown;
  identify: (m: unknown) => [number, number];
};

/** What every worker starts with: the sources through tsx, the channel API, the shim. */
const PRELUDE = `
const { parentPort, workerData } = require('node:worker_threads');
require(${JSON.stringify(require.resolve('tsx/cjs/api'))}).register();
const api = require(${JSON.stringify(path.join(SRC, 'index.ts'))});
const { loadNative } = require(${JSON.stringify(path.join(SRC, 'native.ts'))});
const native = loadNative();
${MESSAGES}
`;

/** A poster: waits for the go flag, posts make(w, 0..n-1), reports its wake syscalls. */
const POSTER = `${PRELUDE}
const { port, w, n, flags } = workerData;
const go = new Int32Array(flags);
const sender = api.openChannel(port);
parentPort.postMessage({ ready: true });
Atomics.wait(go, 0, 0);
const before = native.counters().wakes;
for (let i = 0; i < n; i++) sender.post(make(w, i));
sender.close();
parentPort.postMessage({ wakes: native.counters().wakes - before });
`;

interface Running {
  worker: Worker;
  /** The worker's next message (rejects if it fails or exits first). */
  next(): Promise<any>;
  exited: Promise<number>;
}

const workers: Running[] = [];

/** A worker running `code`; its messages queue up for next(); terminated and awaited after the test. */
function start(code: string, workerData: unknown): Running {
  const worker = new Worker(code, { eval: true, workerData });
  const queued: unknown[] = [];
  const waiting: { resolve(m: unknown): void; reject(e: unknown): void }[] = [];
  let ended: unknown = null;
  worker.on('message', (m) => {
    const w = waiting.shift();
    if (w) w.resolve(m);
    else queued.push(m);
  });
  const end = (e: unknown): void => {
    ended ??= e;
    for (const w of waiting.splice(0)) w.reject(ended);
  };
  worker.on('error', end);
  const exited = new Promise<number>((resolve) =>
    worker.once('exit', (code) => {
      end(new Error(`the worker exited (${code}) before its next message`));
      resolve(code);
    }),
  );
  const running: Running = {
    worker,
    exited,
    next: () =>
      queued.length > 0
        ? Promise.resolve(queued.shift())
        : ended !== null
          ? Promise.reject(ended)
          : new Promise((resolve, reject) => waiting.push({ resolve, reject })),
  };
  workers.push(running);
  return running;
}

afterEach(async () => {
  const all = workers.splice(0);
  await Promise.all(all.map(async (w) => {
    await w.worker.terminate();
    await w.exited;
  }));
});

/** Starts SENDERS posters on `port`, lets them go at once, and returns their wake counts when done. */
async function burst(port: ChannelPort, n: number): Promise<number[]> {
  const flags = new SharedArrayBuffer(4);
  const posters = Array.from({ length: SENDERS }, (_, w) => start(POSTER, { port, w, n, flags }));
  for (const p of posters) expect(await p.next()).toEqual({ ready: true });
  const go = new Int32Array(flags);
  Atomics.store(go, 0, 1);
  Atomics.notify(go, 0);
  const wakes: number[] = [];
  for (const p of posters) wakes.push((await p.next()).wakes);
  for (const p of posters) expect(await p.exited).toBe(0);
  return wakes;
}

/** The receiving end of a run: each sender's messages in order, each checked. */
class Tally {
  readonly next = new Array<number>(SENDERS).fill(0);
  readonly errors: string[] = [];
  got = 0;
  constructor(private readonly total: number, private readonly done: () => void) {}
  readonly onMessage = (m: unknown): void => {
    try {
      const [w, i] = identify(m);
      if (i !== this.next[w]) this.errors.push(`sender ${w}: got ${i}, expected ${this.next[w]}`);
      this.next[w] = i + 1;
    } catch (e) {
      this.errors.push(String(e));
    }
    if (++this.got === this.total) this.done();
  };
}

describe('4 workers × 100,000 messages, end to end', () => {
  const total = SENDERS * PER_SENDER;

  async function onThisThread(options: ConstructorParameters<typeof IOLoop>[0]): Promise<void> {
    const logger = new RecordingLogger();
    const loop = newLoop({ ...options, logger });
    let tally!: Tally;
    const received = new Promise<void>((resolve) => (tally = new Tally(total, resolve)));
    const port = loop.createChannel(tally.onMessage, { capacity: 1024 });
    const [wakes] = await Promise.all([burst(port, PER_SENDER), loop.run(() => received, { timeout: 25 })]);
    expect(tally.errors.slice(0, 5)).toEqual([]);
    expect(tally.next).toEqual(new Array(SENDERS).fill(PER_SENDER));
    expect(tally.got).toBe(total);
    // Coalesced: one wake syscall per drain the loop owed, far fewer than messages.
    const sum = wakes.reduce((a, b) => a + b, 0);
    expect(sum).toBeGreaterThan(0);
    expect(sum).toBeLessThan(total / 20);
    expect(logger.errors).toEqual([]);
  }

  test('guest driver (libuv)', () => onThisThread({}));

  test('guest driver through the watcher thread (poll backend)', () => onThisThread({ backend: 'poll' }));

  test('blocking driver: the loop in a worker, posters in other workers, results sent back', async () => {
    const loopWorker = start(
      `${PRELUDE}
      const { total, senders } = workerData;
      const loop = new api.IOLoop({ driver: 'blocking' });
      const next = new Array(senders).fill(0);
      const errors = [];
      let got = 0;
      const port = loop.createChannel((m) => {
        try {
          const [w, i] = identify(m);
          if (i !== next[w]) errors.push('sender ' + w + ': got ' + i + ', expected ' + next[w]);
          next[w] = i + 1;
        } catch (e) { errors.push(String(e)); }
        if (++got === total) loop.stop();
      }, { capacity: 1024 });
      const guard = loop.callLater(25, () => { errors.push('timed out'); loop.stop(); });
      parentPort.postMessage({ port });
      loop.start().then(() => {
        const iterations = loop.stats().iterations;
        loop.removeTimeout(guard);
        loop.close();
        parentPort.postMessage({ got, next, errors: errors.slice(0, 5), iterations });
      });`,
      { total, senders: SENDERS },
    );
    const { port } = await loopWorker.next();
    const wakes = await burst(port, PER_SENDER);
    const result = await loopWorker.next();
    expect(await loopWorker.exited).toBe(0);
    expect(result.errors).toEqual([]);
    expect(result.next).toEqual(new Array(SENDERS).fill(PER_SENDER));
    expect(result.got).toBe(total);
    const sum = wakes.reduce((a, b) => a + b, 0);
    expect(sum).toBeLessThan(total / 20);
    // The blocking loop waited in its poll between bursts rather than spinning.
    expect(result.iterations).toBeLessThan(total / 20);
  });
});

test('posts to a loop that is not running share one wake syscall', async () => {
  const loop = newLoop();
  const got: unknown[] = [];
  const port = loop.createChannel((m) => got.push(m), { capacity: 2000 });
  const poster = start(
    `${PRELUDE}
    const sender = api.openChannel(workerData.port);
    const before = native.counters().wakes;
    for (let i = 0; i < 1000; i++) sender.post(i);
    parentPort.postMessage(native.counters().wakes - before);`,
    { port },
  );
  expect(await poster.next()).toBe(1);
  await loop.run(() => new Promise<void>((resolve) => {
    const check = (): void => (got.length === 1000 ? resolve() : void loop.callLater(0.001, check));
    check();
  }), { timeout: 10 });
  expect(got).toEqual(Array.from({ length: 1000 }, (_, i) => i));
});

describe('a full queue', () => {
  test("a worker's post waits until the loop drains; tryPost says false", async () => {
    const loop = newLoop();
    const flags = new SharedArrayBuffer(8);
    const state = new Int32Array(flags); // [0]: the first 4 posts are in; [1]: the 5th post returned
    const log: string[] = [];
    const port = loop.createChannel((m: number) => log.push(`${m} (5th post returned: ${Atomics.load(state, 1)})`), { capacity: 4 });
    const poster = start(
      `${PRELUDE}
      const sender = api.openChannel(workerData.port);
      const state = new Int32Array(workerData.flags);
      for (let i = 0; i < 4; i++) sender.post(i);
      const tried = sender.tryPost(99);
      Atomics.store(state, 0, 1);
      sender.post(4);
      Atomics.store(state, 1, 1);
      parentPort.postMessage({ tried });`,
      { port, flags },
    );
    while (Atomics.load(state, 0) === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(Atomics.load(state, 1)).toBe(0); // still waiting for room: the loop has not run
    await loop.run(() => new Promise<void>((resolve) => {
      const check = (): void => (log.length === 5 ? resolve() : void loop.callLater(0.001, check));
      check();
    }), { timeout: 10 });
    expect(await poster.next()).toEqual({ tried: false });
    // The 5th post returned only after the loop had taken the first four.
    expect(log.slice(0, 4)).toEqual(['0 (5th post returned: 0)', '1 (5th post returned: 0)', '2 (5th post returned: 0)', '3 (5th post returned: 0)']);
    expect(log[4]).toMatch(/^4 /);
  });

  test("on the loop's own thread post throws ChannelFullError and tryPost returns false", async () => {
    const loop = newLoop();
    const got: unknown[] = [];
    const sender = openChannel<string>(loop.createChannel((m) => got.push(m), { capacity: 2 }));
    sender.post('a');
    expect(sender.tryPost('b')).toBe(true);
    expect(sender.tryPost('c')).toBe(false);
    expect(() => sender.post('c')).toThrow(ChannelFullError);
    expect(() => sender.post('c')).toThrow(/full \(2 messages or 65536 bytes\) and this is its loop's thread/);
    await loop.run(() => new Promise<void>((resolve) => loop.callLater(0.01, resolve)));
    expect(got).toEqual(['a', 'b']);
    sender.post('c');
  });

  test('the byte bound: a message larger than the ring is a RangeError; small ones fill it by bytes', () => {
    const loop = newLoop();
    const port = loop.createChannel(() => {}, { capacity: 1000, bytes: 4096 });
    expect(port.ring.byteLength).toBe(4096);
    const sender = openChannel(port);
    expect(() => sender.post(new Uint8Array(4089))).toThrow(RangeError);
    expect(() => sender.post(new Uint8Array(4089))).toThrow(/takes 4089 bytes; this channel's ring holds at most 4088 per message/);
    let n = 0;
    while (sender.tryPost(new Uint8Array(1000))) n++;
    expect(n).toBe(4); // 4 × (8 + 1000) bytes; a fifth does not fit
    expect(sender.tryPost(new Uint8Array(8))).toBe(true); // 16 more bytes still do
  });
});

describe('closing', () => {
  test('post after close throws ChannelClosedError, on the loop thread and in a worker', async () => {
    const loop = newLoop();
    const port = loop.createChannel(() => {});
    const sender = openChannel(port);
    loop.close();
    expect(() => sender.post(1)).toThrow(ChannelClosedError);
    expect(() => sender.tryPost(1)).toThrow("the channel's loop is closed");
    const poster = start(
      `${PRELUDE}
      const sender = api.openChannel(workerData.port);
      try { sender.post(1); parentPort.postMessage('posted'); } catch (e) { parentPort.postMessage(e.name + ': ' + e.message); }`,
      { port },
    );
    expect(await poster.next()).toBe("ChannelClosedError: the channel's loop is closed");
    // The port's waker id is retired and names no descriptor: nothing reaches an eventfd that reuses the number.
    expect(native.wakeId(port.waker)).toBe(-EBADF);
  });

  test('a closed sender throws, and what it posted is still delivered', async () => {
    const loop = newLoop();
    const got: unknown[] = [];
    const port = loop.createChannel((m) => got.push(m));
    const a = openChannel(port);
    const b = openChannel(port);
    a.post('from a');
    a.close();
    a.close();
    expect(() => a.post('again')).toThrow(new ChannelClosedError('this sender is closed'));
    b.post('from b');
    await loop.run(() => new Promise<void>((resolve) => loop.callLater(0.01, resolve)));
    expect(got).toEqual(['from a', 'from b']);
  });

  /** Posters that post {w, i} until the channel closes, and report how many posts returned. */
  const STREAMER = `${PRELUDE}
    const sender = api.openChannel(workerData.port);
    const go = new Int32Array(workerData.flags);
    parentPort.postMessage('ready');
    Atomics.wait(go, 0, 0);
    let posted = 0;
    let error = null;
    try { for (;;) { sender.post({ w: workerData.w, i: posted }); posted++; } }
    catch (e) { error = e.name; }
    parentPort.postMessage({ posted, error });`;

  async function stream(closeWhen: (loop: IOLoop, delivered: number) => boolean, stopFirst: boolean): Promise<void> {
    const logger = new RecordingLogger();
    const loop = newLoop({ logger });
    const next = [0, 0, 0];
    const errors: string[] = [];
    let delivered = 0;
    let closed!: () => void;
    const whenClosed = new Promise<void>((resolve) => (closed = resolve));
    const port = loop.createChannel((m: { w: number; i: number }) => {
      if (m.i !== next[m.w]) errors.push(`sender ${m.w}: ${m.i} after ${next[m.w]! - 1}`);
      next[m.w] = m.i + 1;
      delivered++;
      if (closeWhen(loop, delivered)) {
        if (stopFirst) {
          // Stop taking messages, let the posters fill the queue and wait for room, then close.
          loop.stop();
          setTimeout(() => {
            loop.close();
            closed();
          }, 100);
        } else {
          loop.close();
          closed();
        }
      }
    }, { capacity: 64 });
    const flags = new SharedArrayBuffer(4);
    const posters = [0, 1, 2].map((w) => start(STREAMER, { port, w, flags }));
    for (const p of posters) expect(await p.next()).toBe('ready');
    Atomics.store(new Int32Array(flags), 0, 1);
    Atomics.notify(new Int32Array(flags), 0);
    void loop.start().catch(() => {});
    await whenClosed;
    const reports = await Promise.all(posters.map((p) => p.next()));
    for (const r of reports) expect(r.error).toBe('ChannelClosedError');
    const posted = reports.reduce((sum, r) => sum + r.posted, 0);
    const warned = logger.warnings.map((w) => String(w[0]));
    const dropped = warned.map((w) => Number(/dropped (\d+) message/.exec(w)?.[1] ?? 0)).reduce((a, b) => a + b, 0);
    expect(errors).toEqual([]);
    expect(logger.errors).toEqual([]);
    // Nothing lost silently: every post that returned was delivered or counted as dropped.
    expect({ delivered, dropped, sum: delivered + dropped }).toEqual({ delivered, dropped, sum: posted });
    if (stopFirst) {
      expect(dropped).toBeGreaterThan(0);
      expect(warned).toEqual([`IOLoop.close(): dropped ${dropped} message(s) queued on 1 channel(s) and not yet delivered`]);
    }
  }

  test('a close from onMessage during a stream of posts loses nothing silently', () => stream((_, n) => n === 30_000, false));

  test('a close while the queue is full and posters wait for room: they throw, the queue is counted as dropped', () =>
    stream((_, n) => n === 5_000, true));
});

test('a post that never finishes (its thread killed mid-post) holds close() back at most a second, and is logged', () => {
  const logger = new RecordingLogger();
  const loop = newLoop({ logger });
  const port = loop.createChannel(() => {});
  openChannel(port).post('queued');
  // What a poster terminated between counting itself in and committing leaves: one
  // more message counted (COUNT is the control's first word) than the ring holds.
  Atomics.add(new Int32Array(port.control), 0, 1);
  const t0 = performance.now();
  loop.close();
  const waited = performance.now() - t0;
  expect(waited).toBeGreaterThanOrEqual(990);
  expect(waited).toBeLessThan(5000);
  expect(logger.errors.map((e) => e[0])).toEqual([
    'IOLoop.close(): 1 post(s) had reserved room and not finished after 1000 ms (a thread terminated in the middle of post()?); those messages are neither delivered nor counted as dropped',
  ]);
  expect(logger.warnings.map((w) => w[0])).toEqual(['IOLoop.close(): dropped 1 message(s) queued on 1 channel(s) and not yet delivered']);
});

describe('ports that outlive their loop', () => {
  test("a loop whose thread ended without closing it: posts throw, and its id is retired", async () => {
    const owner = start(
      `${PRELUDE}
      const loop = new api.IOLoop();
      parentPort.postMessage(loop.createChannel(() => {}));`,
      {},
    );
    const port = (await owner.next()) as ChannelPort;
    expect(await owner.exited).toBe(0);
    // The environment's teardown retired the id before it closed the eventfd.
    expect(native.wakeId(port.waker)).toBe(-EBADF);
    const sender = openChannel(port);
    expect(() => sender.post('lost')).toThrow(new ChannelClosedError("the channel's loop thread ended without closing the loop"));
    expect(() => sender.post('after')).toThrow(ChannelClosedError);
  });
});

describe('the waker registry', () => {
  test('ids name a registered fd until retired, are never reused, and belong to the environment that made them', async () => {
    const fd = native.eventfdOpen();
    try {
      const id = native.wakerRegister(fd);
      expect(id).toBeGreaterThanOrEqual(1);
      const before = native.counters().wakes;
      expect(native.wakeId(id)).toBe(0);
      expect(native.wakeId(id)).toBe(0);
      expect(native.counters().wakes - before).toBe(2);
      expect(native.consume(fd)).toBe(2);
      const other = native.wakerRegister(fd); // the same fd twice: two ids
      expect(other).toBeGreaterThan(id);
      const worker = start(
        `${PRELUDE}
        const before = native.counters().wakes;
        parentPort.postMessage([native.wakeId(workerData.id), native.wakerUnregister(workerData.id), native.counters().wakes - before]);`,
        { id },
      );
      expect(await worker.next()).toEqual([0, -EPERM, 1]);
      expect(native.consume(fd)).toBe(1);
      expect(native.wakerUnregister(id)).toBe(0);
      expect(native.wakeId(id)).toBe(-EBADF);
      expect(native.wakerUnregister(id)).toBe(-EBADF);
      expect(native.wakeId(other)).toBe(0);
      expect(native.wakerUnregister(other)).toBe(0);
      const again = native.wakerRegister(fd);
      expect(again).toBeGreaterThan(other);
      expect(native.wakerUnregister(again)).toBe(0);
      expect(native.wakeId(2 ** 53 - 1)).toBe(-ESRCH);
      expect(native.wakerUnregister(2 ** 53 - 1)).toBe(-ESRCH);
      expect(native.consume(fd)).toBe(1);
    } finally {
      native.close(fd);
    }
    expect(native.wakerRegister(fd)).toBe(-EBADF);
  });

  test('misuse throws a TypeError naming the function and the argument', () => {
    const cases: [() => unknown, string][] = [
      [() => native.wakerRegister(-1), 'wakerRegister: fd must be an integer >= 0 (got -1)'],
      [() => (native.wakerRegister as (x?: unknown) => number)(), 'wakerRegister: fd must be an integer >= 0 (got undefined)'],
      [() => (native.wakeId as (x: unknown) => number)('1'), 'wakeId: id must be an integer in [1, 2**53 - 1] (got string)'],
      [() => native.wakeId(0), 'wakeId: id must be an integer in [1, 2**53 - 1] (got 0)'],
      [() => native.wakeId(1.5), 'wakeId: id must be an integer in [1, 2**53 - 1] (got 1.5)'],
      [() => native.wakeId(2 ** 53), 'wakeId: id must be an integer in [1, 2**53 - 1] (got 9007199254740992)'],
      [() => (native.wakeId as (x: unknown) => number)(1n), 'wakeId: id must be an integer in [1, 2**53 - 1] (got bigint)'],
      [() => native.wakerUnregister(NaN), 'wakerUnregister: id must be an integer in [1, 2**53 - 1] (got NaN)'],
    ];
    for (const [call, message] of cases) {
      let thrown: unknown = null;
      try {
        call();
      } catch (e) {
        thrown = e;
      }
      expect(thrown && { name: (thrown as Error).name, message: (thrown as Error).message }).toEqual({ name: 'TypeError', message });
    }
  });
});

describe('createChannel and openChannel arguments', () => {
  test('bad arguments throw, naming them', () => {
    const loop = newLoop();
    const create = loop.createChannel.bind(loop) as (...a: unknown[]) => ChannelPort;
    expect(() => create('f')).toThrow(new TypeError('onMessage must be a function, got string "f"'));
    expect(() => create(() => {}, 5)).toThrow(new TypeError('options must be an object, got number 5'));
    expect(() => create(() => {}, { capacity: 1.5 })).toThrow(new TypeError('options.capacity must be an integer, got number 1.5'));
    expect(() => create(() => {}, { capacity: 0 })).toThrow(new RangeError('options.capacity must be in [1, 16777216], got 0'));
    expect(() => create(() => {}, { bytes: 2 ** 31 })).toThrow(RangeError);
    expect(() => create(() => {}, { bytes: '1' })).toThrow(new TypeError('options.bytes must be an integer, got string "1"'));
    expect(create(() => {}, { capacity: 10, bytes: 5000 }).ring.byteLength).toBe(8192);
    expect(create(() => {}, { capacity: 4096 }).ring.byteLength).toBe(1 << 20);
    const open = openChannel as (p: unknown) => unknown;
    expect(() => open(undefined)).toThrow(new TypeError('openChannel: port must be a ChannelPort from IOLoop.createChannel (got undefined)'));
    const port = create(() => {});
    expect(() => open({ ...port, kind: 'x' })).toThrow(/its kind is not wasm-ioloop.channel/);
    expect(() => open({ ...port, capacity: 7 })).toThrow(/its capacity or ring does not match its control memory/);
    expect(() => open({ ...port, control: new SharedArrayBuffer(512) })).toThrow(/its control memory is not a channel/);
    expect(() => open({ ...port, waker: 0 })).toThrow(/its waker is not a waker id/);
  });

  test('the port is plain data that survives postMessage, and names no descriptor', () => {
    const loop = newLoop();
    const port = loop.createChannel(() => {});
    expect(Object.keys(port).sort()).toEqual(['capacity', 'control', 'kind', 'ring', 'thread', 'version', 'waker']);
    const copy = structuredClone(port);
    expect(Object.prototype.toString.call(copy.control)).toBe('[object SharedArrayBuffer]');
    expect(() => openChannel(copy)).not.toThrow();
  });

  test('a loop without a waker cannot have channels', () => {
    const portable = newLoop({ driver: 'portable' });
    expect(() => portable.createChannel(() => {})).toThrow(/needs the native shim's waker; this loop's backend 'none' has none/);
    const fakePortable = newLoop({ backend: 'fake', driver: 'portable' });
    expect(() => fakePortable.createChannel(() => {})).toThrow(/the portable driver waits only for timers/);
  });

  test('onMessage errors are logged and the next message follows; many channels share the waker', async () => {
    const logger = new RecordingLogger();
    const loop = newLoop({ logger });
    const got: string[] = [];
    const a = openChannel<string>(loop.createChannel((m: string) => {
      if (m === 'throw') throw new Error('boom');
      got.push(`a ${m}`);
    }));
    const b = openChannel<string>(loop.createChannel(async (m: string) => {
      if (m === 'reject') throw new Error('async boom');
      got.push(`b ${m}`);
    }));
    a.post('throw');
    b.post('reject');
    a.post('1');
    b.post('2');
    await loop.run(() => new Promise<void>((resolve) => loop.callLater(0.02, resolve)));
    expect(got).toEqual(['a 1', 'b 2']);
    expect(logger.errors.map((e) => [e[0], (e[1] as Error).message])).toEqual([
      ['Exception in channel onMessage:', 'boom'],
      ['Exception in channel onMessage (rejected promise):', 'async boom'],
    ]);
  });
});

describe('copies as structured clone', () => {
  /** Posts every value on one thread and returns what onMessage got. */
  async function roundTrip(values: unknown[], bytes?: number): Promise<unknown[]> {
    const loop = newLoop();
    const got: unknown[] = [];
    const sender = openChannel(loop.createChannel((m) => got.push(m), { capacity: values.length + 1, bytes }));
    for (const v of values) sender.post(v);
    await loop.run(() => new Promise<void>((resolve) => {
      const check = (): void => (got.length === values.length ? resolve() : void loop.callLater(0.001, check));
      check();
    }), { timeout: 10 });
    loop.close();
    return got;
  }

  test('values of every encoding arrive as structuredClone makes them', async () => {
    const cyclic: Record<string, unknown> = { name: 'cycle' };
    cyclic.self = cyclic;
    const shared = { s: 1 };
    const proto = JSON.parse('{"__proto__": {"x": 1}, "y": 2}');
    const sparse = [1, , 3]; // eslint-disable-line no-sparse-arrays
    const named = Object.assign([1, 2], { extra: 'kept' });
    class Point { constructor(public x: number, public y: number) {} }
    const values: unknown[] = [
      undefined, null, true, false, 0, -0, 1.5, NaN, -Infinity, 2 ** 31, -(2 ** 31), 'ascii', 'ünïcödé', '\uD800 lone', '\uDC00', '',
      'x'.repeat(70), 'é'.repeat(100), { a: 1, b: [1, 'two', { c: null }] }, [], {}, Object.create(null), proto, sparse, named,
      new Map([[1, { a: 2 }]]), new Set(['s']), new Date(0), /re/g, 12345678901234567890n, new Float64Array([1.5]),
      new Uint8Array([1, 2, 3]), { bytes: new Uint8Array([9]) }, cyclic, { one: shared, two: shared }, new Point(1, 2),
      { nested: { deeper: { deepest: [[[]]] } } },
    ];
    const got = await roundTrip(values);
    expect(got.length).toBe(values.length);
    for (let i = 0; i < values.length; i++) {
      const expected = structuredClone(values[i]);
      expect({ i, same: sameClone(got[i], expected) }).toEqual({ i, same: true });
    }
    expect(Object.getOwnPropertyNames(got[22] as object)).toEqual(['__proto__', 'y']);
    expect(Object.getPrototypeOf(got[22])).toBe(Object.prototype);
    expect(1 in (got[23] as unknown[])).toBe(false);
    const c = got[33] as Record<string, unknown>;
    expect(c.self).toBe(c);
    const s = got[34] as { one: unknown; two: unknown };
    expect(s.one).toBe(s.two);
    expect(got[35]).not.toBeInstanceOf(Point);
    expect(Object.getPrototypeOf(Object.getPrototypeOf(got[35]))).toBe(null); // a plain object (of v8's realm)
  });

  test('getters run once per post', async () => {
    let reads = 0;
    const getter = { get g() { return ++reads; } };
    expect(await roundTrip([getter, getter])).toEqual([{ g: 1 }, { g: 2 }]);
  });

  test('a Buffer, or a view into a larger buffer, arrives as a Uint8Array of its own bytes', async () => {
    const big = new Uint8Array([0, 1, 2, 3, 4, 5]);
    const [b, view, inner] = (await roundTrip([Buffer.from('hi'), big.subarray(2, 4), { v: big.subarray(1, 2) }])) as [Uint8Array, Uint8Array, { v: Uint8Array }];
    for (const u of [b, view, inner.v]) {
      expect(u.constructor).toBe(Uint8Array);
      expect(u.byteOffset).toBe(0);
      expect(u.buffer.byteLength).toBe(u.byteLength);
      expect(u.buffer).not.toBeInstanceOf(SharedArrayBuffer);
    }
    expect([...b]).toEqual([104, 105]);
    expect([...view]).toEqual([2, 3]);
    expect([...inner.v]).toEqual([1]);
  });

  test("typed arrays from v8.deserialize do not view the channel's memory", async () => {
    const loop = newLoop();
    const got: unknown[] = [];
    const sender = openChannel(loop.createChannel((m) => got.push(m), { capacity: 8, bytes: 4096 }));
    const deliver = () => loop.run(() => new Promise<void>((resolve) => loop.callLater(0.005, resolve)));
    sender.post(new Map<string, ArrayBufferView>([['f', new Float64Array([1.5, 2.5, 3.5])], ['u', new Uint8Array([1, 2, 3])]]));
    await deliver();
    // Enough traffic to pass over that part of the ring again.
    for (let round = 0; round < 8; round++) {
      for (let k = 0; k < 4; k++) sender.post(new Uint8Array(200).fill(0xff));
      await deliver();
    }
    const map = got[0] as Map<string, Float64Array | Uint8Array>;
    expect([...map.get('f')!]).toEqual([1.5, 2.5, 3.5]);
    expect([...map.get('u')!]).toEqual([1, 2, 3]);
    for (const v of map.values()) expect(Object.prototype.toString.call(v.buffer)).toBe('[object ArrayBuffer]');
  });

  test('what structured clone refuses throws from post, and nothing is queued', () => {
    const loop = newLoop();
    const sender = openChannel(loop.createChannel(() => {}));
    expect(() => sender.post(() => 1)).toThrow(/could not be cloned/);
    expect(() => sender.post({ f: Symbol('s') })).toThrow(/could not be cloned/);
    expect(() => sender.post(new SharedArrayBuffer(4))).toThrow(/could not be cloned/);
  });

  test('records that wrap around a small ring', async () => {
    const loop = newLoop();
    const got: unknown[] = [];
    const sender = openChannel(loop.createChannel((m) => got.push(m), { capacity: 64, bytes: 4096 }));
    const sent: unknown[] = [];
    for (let round = 0; round < 40; round++) {
      for (let k = 0; k < 7; k++) {
        const n = sent.length;
        const v = n % 3 === 0 ? 'é'.repeat(n % 200) : n % 3 === 1 ? new Uint8Array(n % 300).fill(n & 255) : { n, s: 'x'.repeat(n % 150) };
        sender.post(v);
        sent.push(v);
      }
      await loop.run(() => new Promise<void>((resolve) => {
        const check = (): void => (got.length === sent.length ? resolve() : void loop.callLater(0.001, check));
        check();
      }), { timeout: 10 });
    }
    expect(got.length).toBe(sent.length);
    for (let i = 0; i < sent.length; i++) expect({ i, same: sameClone(got[i], sent[i]) }).toEqual({ i, same: true });
  });

  test('random values arrive as structuredClone copies them', async () => {
    const values = fc.sample(fc.anything({ withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withSparseArray: true, withNullPrototype: true, withBoxedValues: true, stringUnit: 'binary', maxDepth: 4, maxKeys: 8 }), { numRuns: 400, seed: 42 });
    const got = await roundTrip(values, 1 << 22);
    for (let i = 0; i < values.length; i++) {
      expect({ i, same: sameClone(got[i], structuredClone(values[i])) }).toEqual({ i, same: true });
    }
  });
});
