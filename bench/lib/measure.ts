/**
 * What every TypeScript benchmark program shares: its arguments, the measured
 * span, the result line, and failing loudly.
 *
 * A program runs one configuration when given `<config> [n]` and every
 * configuration in turn when given none; the harness always names one, so that
 * each process's peak RSS belongs to one configuration. It prints one JSON line
 * per configuration on stdout and nothing else there.
 */
import * as fs from 'node:fs';

/** One configuration to run: its name and its size. */
export interface Job {
  config: string;
  n: number;
}

/** Reads `<config> [n]` from argv (or BENCH_N); without a config, every configuration at full size. */
export function jobs(configs: readonly string[], fullN: number): Job[] {
  const [config, nArg] = process.argv.slice(2);
  const n = Number(nArg ?? process.env.BENCH_N ?? fullN);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`size must be a positive integer, got '${nArg}'`);
  if (config === undefined) return configs.map((c) => ({ config: c, n }));
  if (!configs.includes(config)) throw new Error(`unknown configuration '${config}' (have: ${configs.join(', ')})`);
  return [{ config, n }];
}

/**
 * The runtime this program runs in, e.g. 'node 20.20.2', 'bun 1.4.4', 'deno 2.9.6'.
 * Bun and Deno imitate Node's `process.versions`, so their own globals are read first.
 */
export const RUNTIME: string = (() => {
  const g = globalThis as { Bun?: { version: string }; Deno?: { version: { deno: string } } };
  if (g.Deno?.version?.deno) return `deno ${g.Deno.version.deno}`;
  if (g.Bun?.version) return `bun ${g.Bun.version}`;
  return `node ${process.versions.node}`;
})();

/**
 * Where the CPU and peak-RSS figures come from. Node, Bun (1.4) and Deno (2.9) all
 * have `process.cpuUsage()` and `process.resourceUsage().maxRSS`, both of the whole
 * process (getrusage RUSAGE_SELF: every thread, in Bun and Deno as in Node) and
 * maxRSS in KiB; a runtime without them is read from /proc instead, and its rows
 * say so (cpuFrom, rssFrom).
 */
const hasCpuUsage = typeof process.cpuUsage === 'function';
const hasResourceUsage = typeof process.resourceUsage === 'function';

/** CPU time of the whole process in µs, from /proc/self/stat (clock ticks of 10 ms). */
function procCpuMicros(): number {
  // The fields after the command name, which is in parentheses and may hold spaces.
  const f = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) * 10_000;
}

function cpuMicros(): number {
  if (!hasCpuUsage) return procCpuMicros();
  const c = process.cpuUsage();
  return c.user + c.system;
}

/** Peak RSS of the process in KiB. */
function maxRssKiB(): number {
  if (hasResourceUsage) return process.resourceUsage().maxRSS;
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m === null ? NaN : Number(m[1]);
}

/**
 * Rounds of a scaling program (S1, S2) at n pending timers: enough that about
 * BENCH_SCALING_OPS timers (default a million; --quick asks for 100,000) go
 * through in all, and every round but the first is measured unless there is only
 * one. A thousand timers once would measure V8's warm-up, not the loop.
 */
export function scalingRounds(n: number): { total: number; measured: number } {
  const ops = Number(process.env.BENCH_SCALING_OPS ?? 1_000_000);
  const total = Math.max(1, Math.ceil(ops / n)) + (ops / n > 1 ? 1 : 0);
  return { total, measured: total > 1 ? total - 1 : 1 };
}

/** The process's resident set now, in MiB (Node's memoryUsage.rss(), else /proc). */
export function rssNowMb(): number {
  const usage = (process as { memoryUsage?: { rss?: () => number } }).memoryUsage;
  if (typeof usage?.rss === 'function') return usage.rss() / 2 ** 20;
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m === null ? NaN : Number(m[1]) / 1024;
}

/** Wall and CPU (user + sys of the whole process) time between start() and stop(). */
export class Span {
  private wall0 = 0;
  private cpu0 = 0;
  wallMs = NaN;
  cpuMs = NaN;
  /** Wall-clock bounds in epoch milliseconds, for matching against a syscall trace. */
  epochStartMs = NaN;
  epochEndMs = NaN;

  start(): void {
    this.epochStartMs = Date.now();
    this.cpu0 = cpuMicros();
    this.wall0 = performance.now();
  }

  stop(): void {
    this.wallMs = performance.now() - this.wall0;
    this.cpuMs = (cpuMicros() - this.cpu0) / 1000;
    this.epochEndMs = Date.now();
  }
}

/** The fields every result line carries; scenarios add their own. */
export interface Row {
  scenario: string;
  peer: string;
  config: string;
  n: number;
  wallMs: number;
  cpuMs: number;
  /** CPU nanoseconds per operation (what an operation is, the scenario says). */
  nsPerOp: number;
  [field: string]: unknown;
}

/** Prints the result line, adding the process's peak RSS so far and the runtime. */
export function emit(row: Row): void {
  const rssPeakMb = maxRssKiB() / 1024;
  const sources = { ...(hasCpuUsage ? {} : { cpuFrom: '/proc/self/stat' }), ...(hasResourceUsage ? {} : { rssFrom: '/proc/self/status VmHWM' }) };
  const rounded: Record<string, unknown> = {};
  for (const [k, v] of Object.entries({ ...row, rssPeakMb, runtime: RUNTIME, ...sources })) {
    // Six significant figures, except for the epoch times that a syscall trace is matched against.
    rounded[k] = typeof v === 'number' && !Number.isInteger(v) && !k.startsWith('epoch') ? Number(v.toPrecision(6)) : v;
  }
  process.stdout.write(JSON.stringify(rounded) + '\n');
}

/** Exit status of a program whose self-check failed (a crash exits 1). */
export const CHECK_FAILED = 2;

/** Ends the program at once: its result is wrong, so it prints no row. */
export function fail(what: string, message: string): never {
  process.stderr.write(`CHECK FAILED ${what}: ${message}\n`);
  process.exit(CHECK_FAILED);
}

/** Runs an async main and turns an exception into exit status 1. */
export function main(body: () => Promise<void> | void): void {
  Promise.resolve()
    .then(body)
    .catch((err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    });
}

/**
 * How long an idle-CPU measurement waits before it starts. Right after start-up
 * a Node process spends a few ms of CPU on background work (V8's compiler and GC
 * threads): measured here under `node --require tsx/cjs`, 3.4 ms in the first
 * 0.3 s and 0.5-0.7 ms once it has waited 100-300 ms. That work is not the
 * loop's, so W5 leaves it out.
 */
export const SETTLE_MS = 300;

/** Resolves after SETTLE_MS. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
}
