// setBlockingLogThreshold: the blocking watchdog (bindings/watchdog.cc, src/watchdog.ts).
//
// Argument checks run in this process. Every case that blocks runs in a child
// process, because the watchdog writes to the process's stderr (fd 2) while
// the function still runs: the child's stdout and stderr are one file (one
// open file description, so writes land in the order they were made), and a
// case reads it after the child exits. The child's own lines say when the
// blocking function started and ended; its logger writes each warning as one
// `WARN <json>` line; a last `RESULT <json>` line carries what the child
// checked itself (threads, host()). Children load the built package (dist/,
// which `npm test` builds first) under Node, and under Bun for the fallback.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { IOLoop } from '../src/index';
import { watchdogStatus } from '../src/watchdog';
import { closeLoops, guardResources, newLoop } from './helpers';
import { bunPath } from './hosts';

guardResources();
afterEach(() => closeLoops());

const DIST = path.join(__dirname, '..', 'dist', 'index.js');
const STDERR_HEAD = '[wasm-ioloop] blocking:';

/** Shared by every child script: the package, a logger that prints, spinning, thread counts. */
const PRELUDE = `
const fs = require('node:fs');
const { IOLoop } = require(${JSON.stringify(DIST)});
const say = (line) => fs.writeSync(1, line + '\\n');
const logger = {
  error: (...a) => say('ERROR ' + a.map(String).join(' ')),
  warn: (...a) => say('WARN ' + JSON.stringify(a)),
};
const spinFor = (ms) => { const end = performance.now() + ms; while (performance.now() < end); };
const threads = () => fs.readdirSync('/proc/self/task').length;
const done = (result) => say('RESULT ' + JSON.stringify(result));
`;

interface ChildRun {
  /** stdout and stderr, in the order written. */
  readonly output: string;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** The logger's warnings, each the arguments of one warn() call. */
  readonly warnings: string[][];
  /** The blocks the watchdog wrote to stderr: a header line and its `    at` lines. */
  readonly stderrBlocks: string[];
  readonly result: Record<string, unknown>;
}

let scriptCount = 0;

/** Runs `body` (after PRELUDE) as a CommonJS script under `command` (default: this Node). */
async function runChild(body: string, opts: { command?: string; env?: Record<string, string> } = {}): Promise<ChildRun> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-ioloop-watchdog-'));
  try {
    const script = path.join(dir, `child-${scriptCount++}.js`);
    fs.writeFileSync(script, PRELUDE + body);
    const outFile = path.join(dir, 'output');
    const out = fs.openSync(outFile, 'a');
    const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
    if (opts.env?.WASM_IOLOOP_NO_WATCHDOG === undefined) delete env.WASM_IOLOOP_NO_WATCHDOG;
    const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      const child = spawn(opts.command ?? process.execPath, [script], { stdio: ['ignore', out, out], env });
      fs.closeSync(out);
      const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
      child.once('error', reject);
      child.once('exit', (c, s) => {
        clearTimeout(timer);
        resolve({ code: c, signal: s });
      });
    });
    const output = fs.readFileSync(outFile, 'utf8');
    const lines = output.split('\n');
    const warnings = lines.filter((l) => l.startsWith('WARN ')).map((l) => JSON.parse(l.slice(5)) as string[]);
    const stderrBlocks: string[] = [];
    for (let i = 0; i < lines.length; i++) {
      if (!lines[i]!.startsWith(STDERR_HEAD)) continue;
      let block = lines[i]!;
      while (lines[i + 1]?.startsWith('    at ')) block += '\n' + lines[++i];
      stderrBlocks.push(block);
    }
    const resultLine = lines.find((l) => l.startsWith('RESULT '));
    const result = resultLine === undefined ? {} : (JSON.parse(resultLine.slice(7)) as Record<string, unknown>);
    return { output, code, signal, warnings, stderrBlocks, result };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Fails with the child's whole output unless it exited with 0 and printed its result. */
function expectClean(run: ChildRun): void {
  if (run.code !== 0 || run.result.ok !== true) {
    throw new Error(`the child exited with ${run.code ?? run.signal}; its output:\n${run.output}`);
  }
}

/** The number of seconds the first group of `re` matches in `text`. */
function secondsIn(text: string, re: RegExp): number {
  const m = re.exec(text);
  if (m === null) throw new Error(`no ${re} in:\n${text}`);
  return Number(m[1]);
}

/** The index of the first line of `output` that starts with `prefix` (-1 if none). */
function lineIndex(output: string, prefix: string): number {
  return output.split('\n').findIndex((l) => l.startsWith(prefix));
}

describe('setBlockingLogThreshold: arguments', () => {
  test.each([
    ['a negative number', -1, RangeError, /^seconds must be a finite number > 0 .*got -1$/],
    ['zero', 0, RangeError, /^seconds must be a finite number > 0 .*got 0$/],
    ['Infinity', Infinity, RangeError, /^seconds must be a finite number > 0 .*got Infinity$/],
    ['NaN', NaN, RangeError, /^seconds must not be NaN$/],
    ['a string', '0.1', TypeError, /^seconds must be a number or null, got /],
    ['undefined', undefined, TypeError, /^seconds must be a number or null, got /],
    ['an object', { seconds: 1 }, TypeError, /^seconds must be a number or null, got /],
  ])('%s throws, naming seconds', (_what, value, type, message) => {
    const loop = newLoop();
    let thrown: unknown;
    try {
      loop.setBlockingLogThreshold(value as number);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(type);
    expect((thrown as Error).message).toMatch(message);
  });

  test('null turns it off, and may be given when it is already off', () => {
    const loop = newLoop();
    loop.setBlockingLogThreshold(null);
    loop.setBlockingLogThreshold(5);
    loop.setBlockingLogThreshold(2);
    loop.setBlockingLogThreshold(null);
    loop.setBlockingLogThreshold(null);
  });

  test('IOLoop.host() says the watchdog is in use here (Node, with the addon built)', () => {
    expect(watchdogStatus()).toBe(true);
    expect(IOLoop.host().watchdog).toBe(true);
  });
});

describe('setBlockingLogThreshold in Node with the watchdog', () => {
  test('a 300 ms callback over a 0.1 s threshold: one warning on stderr while it runs and one through the logger, both with its stack; 20 ms gives none; null turns it off', async () => {
    const run = await runChild(`
      const loop = new IOLoop({ logger });
      const before = threads();
      loop.setBlockingLogThreshold(0.1);
      const armed = threads();
      function spinningCallback() {
        say('spin-start');
        spinFor(300);
        say('spin-end');
      }
      function shortSpin() { spinFor(20); }
      loop.addCallback(spinningCallback);
      loop.callLater(0.01, shortSpin);
      loop.callLater(0.05, () => {
        say('off');
        loop.setBlockingLogThreshold(null);
        const off = threads();
        loop.addCallback(function spinWhileOff() { spinFor(300); });
        loop.callLater(0.01, () => {
          loop.stop();
          done({ ok: true, before, armed, off, host: IOLoop.host().watchdog });
        });
      });
      loop.start().then(() => loop.close());
    `);
    expectClean(run);
    expect(run.result).toMatchObject({ host: true, armed: (run.result.before as number) + 1, off: run.result.before });

    // One warning, naming the callback and with its stack, through the logger.
    expect(run.warnings).toHaveLength(1);
    const [message] = run.warnings[0]!;
    expect(message).toMatch(/^Blocking: callback spinningCallback blocked the loop for \d\.\d{3} s \(threshold 0\.1 s\); its JavaScript stack \d\.\d{3} s in:\n/);
    expect(secondsIn(message, /for (\S+) s/)).toBeGreaterThanOrEqual(0.3);
    const takenAt = secondsIn(message, /stack (\S+) s in/);
    expect(takenAt).toBeGreaterThanOrEqual(0.1);
    expect(takenAt).toBeLessThanOrEqual(secondsIn(message, /for (\S+) s/));
    expect(message).toMatch(/\n {4}at spinningCallback \(/);

    // The same on stderr, written while the callback was still spinning.
    expect(run.stderrBlocks).toHaveLength(1);
    expect(run.stderrBlocks[0]).toMatch(
      /^\[wasm-ioloop\] blocking: callback spinningCallback has blocked the loop for \d\.\d{3} s \(threshold 0\.1 s\) and is still running; its JavaScript stack:\n/,
    );
    expect(secondsIn(run.stderrBlocks[0]!, /for (\S+) s/)).toBeGreaterThanOrEqual(0.1);
    expect(run.stderrBlocks[0]).toMatch(/\n {4}at spinningCallback \(/);
    const start = lineIndex(run.output, 'spin-start');
    const warned = lineIndex(run.output, STDERR_HEAD);
    const end = lineIndex(run.output, 'spin-end');
    expect(start).toBeGreaterThanOrEqual(0);
    expect(warned).toBeGreaterThan(start);
    expect(end).toBeGreaterThan(warned);
    // Nothing at all once it was off.
    expect(lineIndex(run.output, 'WARN ')).toBeLessThan(lineIndex(run.output, 'off'));
  });

  test('timers and handlers are named as such; a loop waiting in its own poll is never reported, under the guest and blocking drivers', async () => {
    const run = await runChild(`
      const { sys, READ } = require(${JSON.stringify(DIST)});
      async function main() {
        for (const driver of ['guest', 'blocking']) {
          const loop = new IOLoop({ logger, driver });
          loop.setBlockingLogThreshold(0.05);
          const [r, w] = sys.pipe();
          loop.addHandler(r, function onReadable() {
            sys.read(r, new Uint8Array(8));
            spinFor(120);
            loop.removeHandler(r);
          }, READ);
          loop.callLater(0.01, function slowTimer() { spinFor(120); sys.write(w, new Uint8Array([1])); });
          // Then idle: 400 ms in the loop's own wait, 8 thresholds.
          loop.callLater(0.6, () => loop.stop());
          await loop.start();
          loop.close();
          sys.close(r);
          sys.close(w);
          say('driver ' + driver + ' done');
        }
        done({ ok: true });
      }
      main();
    `);
    expectClean(run);
    const names = run.warnings.map(([m]) => /^Blocking: (\w+ \w+) blocked/.exec(m!)?.[1]);
    expect(names).toEqual(['timer slowTimer', 'handler onReadable', 'timer slowTimer', 'handler onReadable']);
    for (const [m] of run.warnings) {
      expect(m).toMatch(/; its JavaScript stack \d\.\d{3} s in:\n {4}at /);
      // Taken past the threshold, while the function still ran.
      expect(secondsIn(m!, /stack (\S+) s in/)).toBeGreaterThanOrEqual(0.05);
      expect(secondsIn(m!, /stack (\S+) s in/)).toBeLessThanOrEqual(secondsIn(m!, /for (\S+) s/));
    }
    expect(run.stderrBlocks.map((b) => /^\S+ blocking: (\w+ \w+) /.exec(b)?.[1])).toEqual(names);
  });

  test('a function inside native code is reported as such on stderr one threshold later, and through the logger when it returns', async () => {
    const run = await runChild(`
      const { spawnSync } = require('node:child_process');
      const loop = new IOLoop({ logger });
      loop.setBlockingLogThreshold(0.1);
      loop.callLater(0, function waitsInNativeCode() {
        say('native-start');
        spawnSync('sleep', ['0.4']);
        say('native-end');
      });
      loop.callLater(0.05, () => { loop.stop(); done({ ok: true }); });
      loop.start().then(() => loop.close());
    `);
    expectClean(run);
    // While it sleeps: the thread's own line (it cannot name the function).
    expect(run.stderrBlocks).toHaveLength(2);
    expect(run.stderrBlocks[0]).toMatch(
      /^\[wasm-ioloop\] blocking: a timer has blocked the loop for (\d\.\d{3}) s \(threshold 0\.1 s\), in native code: its JavaScript stack cannot be taken until it is back in JavaScript$/,
    );
    expect(secondsIn(run.stderrBlocks[0]!, /for (\d\.\d{3}) s/)).toBeGreaterThanOrEqual(0.2);
    const at = lineIndex(run.output, STDERR_HEAD);
    expect(at).toBeGreaterThan(lineIndex(run.output, 'native-start'));
    expect(at).toBeLessThan(lineIndex(run.output, 'native-end'));
    // Back in JavaScript and still in the function (its next call, say()): the stack from there.
    expect(run.stderrBlocks[1]).toMatch(
      /^\[wasm-ioloop\] blocking: timer waitsInNativeCode is back in JavaScript after \d\.\d{3} s, most of it in native code, and still blocks the loop \(threshold 0\.1 s\); its JavaScript stack:\n {4}at say \(.*\n {4}at waitsInNativeCode \(/,
    );
    expect(run.warnings).toHaveLength(1);
    const [message] = run.warnings[0]!;
    expect(message).toMatch(
      /^Blocking: timer waitsInNativeCode blocked the loop for \d\.\d{3} s \(threshold 0\.1 s\), in native code \(no stack could be taken there\); its JavaScript stack once back in JavaScript, \d\.\d{3} s in:\n {4}at say \(.*\n {4}at waitsInNativeCode \(/,
    );
    expect(secondsIn(message, /for (\d\.\d{3}) s/)).toBeGreaterThanOrEqual(0.4);
  });

  test('in worker threads: each has its own watchdog; a worker that exits with it on, or is terminated while blocking, exits cleanly and its thread is joined', async () => {
    const run = await runChild(`
      const { Worker } = require('node:worker_threads');
      const WORKER = ${JSON.stringify(PRELUDE)} + \`
        const { parentPort, workerData } = require('node:worker_threads');
        const loop = new IOLoop({ logger: { error: logger.error, warn: (...a) => parentPort.postMessage(a) } });
        loop.setBlockingLogThreshold(0.1);
        if (workerData === 'spin') {
          loop.addCallback(function spinsInAWorker() { spinFor(300); });
          loop.callLater(0.05, () => { loop.stop(); });
          loop.start().then(() => loop.close());
        } else if (workerData === 'left-on') {
          // Stops with the threshold set and the loop open: the worker exits by itself.
          loop.addCallback(function shortInAWorker() { spinFor(5); });
          loop.callLater(0.02, () => loop.stop());
          loop.start().then(() => parentPort.postMessage('stopped'));
        } else {
          loop.addCallback(function spinsForever() { parentPort.postMessage('spinning'); for (;;); });
          loop.start();
        }
      \`;
      const start = (data) => {
        const worker = new Worker(WORKER, { eval: true, workerData: data });
        const messages = [];
        worker.on('message', (m) => {
          messages.push(m);
          if (m === 'spinning') setTimeout(() => worker.terminate(), 250);
        });
        return new Promise((resolve, reject) => {
          worker.once('error', reject);
          worker.once('exit', (code) => resolve({ code, messages }));
        });
      };
      (async () => {
        const before = threads();
        const [spin, leftOn, terminated] = await Promise.all([start('spin'), start('left-on'), start('terminated')]);
        // Threads of exited workers are gone once 'exit' has been emitted; let the OS catch up.
        let after = threads();
        for (let i = 0; i < 50 && after > before; i++) {
          await new Promise((r) => setTimeout(r, 20));
          after = threads();
        }
        done({ ok: true, before, after, spin, leftOn, terminated });
      })();
    `);
    expectClean(run);
    const result = run.result as Record<string, { code: number; messages: unknown[] }> & { before: number; after: number };
    expect(result.after).toBe(result.before);
    expect(result.spin.code).toBe(0);
    expect(result.spin.messages).toHaveLength(1);
    const [warning] = result.spin.messages[0] as string[];
    expect(warning).toMatch(/^Blocking: callback spinsInAWorker blocked the loop for \d\.\d{3} s \(threshold 0\.1 s\); its JavaScript stack \d\.\d{3} s in:\n/);
    expect(secondsIn(warning!, /for (\S+) s/)).toBeGreaterThanOrEqual(0.3);
    expect(warning).toMatch(/\n {4}at spinsInAWorker \(/);
    expect(result.leftOn).toEqual({ code: 0, messages: ['stopped'] });
    expect(result.terminated.code).toBe(1);
    expect(result.terminated.messages).toEqual(['spinning']);
    // stderr: the worker's warning, and the terminated worker's while it spun.
    const heads = run.stderrBlocks.map((b) => b.split('\n')[0]!.replace(/ for [\d.]+ s/, '')).sort();
    expect(heads).toEqual([
      `${STDERR_HEAD} callback spinsForever has blocked the loop (threshold 0.1 s) and is still running; its JavaScript stack:`,
      `${STDERR_HEAD} callback spinsInAWorker has blocked the loop (threshold 0.1 s) and is still running; its JavaScript stack:`,
    ]);
  });
});

describe('setBlockingLogThreshold where the watchdog is not available', () => {
  const FALLBACK = `
    const loop = new IOLoop({ logger });
    loop.setBlockingLogThreshold(0.1);
    loop.addCallback(function spinningCallback() { spinFor(300); });
    loop.callLater(0.01, function shortSpin() { spinFor(20); });
    loop.callLater(0.05, () => { loop.stop(); done({ ok: true, host: IOLoop.host() }); });
    loop.start().then(() => loop.close());
  `;

  function expectAfterTheFact(run: ChildRun, reason: RegExp): void {
    expectClean(run);
    expect((run.result.host as { watchdog: unknown }).watchdog).toMatch(reason);
    expect(run.stderrBlocks).toEqual([]);
    expect(run.warnings).toHaveLength(1);
    const [message] = run.warnings[0]!;
    expect(message).toMatch(
      /^Blocking: callback spinningCallback blocked the loop for \d\.\d{3} s \(threshold 0\.1 s\); no stack: the blocking watchdog is not available here \(/,
    );
    expect(secondsIn(message!, /for (\S+) s/)).toBeGreaterThanOrEqual(0.3);
    expect(message).toMatch(reason);
  }

  test('Node with WASM_IOLOOP_NO_WATCHDOG=1: the name and the duration after the fact, and no stack', async () => {
    const run = await runChild(FALLBACK, { env: { WASM_IOLOOP_NO_WATCHDOG: '1' } });
    expectAfterTheFact(run, /disabled by WASM_IOLOOP_NO_WATCHDOG=1/);
  });

  test('Bun: the name and the duration after the fact, and no stack; IOLoop.host() says why', async () => {
    const run = await runChild(FALLBACK, { command: bunPath() });
    expectAfterTheFact(run, /not loaded in Bun: .*Bun has no V8/);
    expect(run.result.host).toMatchObject({ runtime: 'bun', native: true });
  });
});
