/**
 * W7, HTTP keep-alive: what the TypeScript programs share. The program hosts a
 * server on 127.0.0.1 (in its own process: this thread's loop, or worker
 * threads) and loads it with wrk (Debian's), a child process:
 *
 *   1. the pre-flight, lib/w7-check.lua: three pipelined requests at a time on
 *      up to 4 connections for CHECK_MS; every response must be right and wrk
 *      must count no socket or status error;
 *   2. the warm-up: the measured run's load for warmUpMs(n) (a third of n, at
 *      most 1 s), so that the figures are of code the JIT has compiled;
 *   3. the measured run, lib/w7-load.lua: `connections` keep-alive connections
 *      for n ms (wrk's -d counts whole seconds, so each run is ended with SIGINT,
 *      after which wrk reports as at the end of -d). No run may count an error.
 *
 * wrk has one thread (-t1) and shares the machine's cores with the server: its
 * CPU is not in the row (a child's), but it competes for the same two cores.
 * The row's CPU is the server process's over the measured run; requests/s is
 * wrk's count over wrk's own duration.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { fail, Span, type Row } from './measure';

export const CHECK_MS = 200;

/** The warm-up before a measured run of n ms. */
export const warmUpMs = (n: number): number => Math.min(1000, Math.round(n / 3));
const CHECK_SCRIPT = path.join(__dirname, 'w7-check.lua');
const LOAD_SCRIPT = path.join(__dirname, 'w7-load.lua');

/** Connections of a W7 configuration: "1conn", "64conns". */
export function connectionsOf(config: string): number {
  const m = /^(\d+)conns?$/.exec(config);
  if (m === null) throw new Error(`unknown W7 configuration '${config}'`);
  return Number(m[1]);
}

interface WrkErrors {
  connect: number;
  read: number;
  write: number;
  status: number;
  timeout: number;
}

export interface CheckResult extends WrkErrors {
  good: number;
  bad: number;
  first: string;
  requests: number;
}

export interface LoadResult extends WrkErrors {
  requests: number;
  durationUs: number;
  bytes: number;
  p50Us: number;
  p99Us: number;
}

/** Runs wrk against 127.0.0.1:port for `ms`, ended by SIGINT; resolves with the JSON line its script printed. */
function runWrk<T>(what: string, script: string, connections: number, port: number, ms: number): Promise<T> {
  const args = ['-t1', `-c${connections}`, `-d${Math.ceil(ms / 1000) + 5}s`, '--timeout', '2s', '-s', script, `http://127.0.0.1:${port}/`];
  return new Promise((resolve) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', (err) => fail(what, `wrk: ${err.message}`));
    const timer = setTimeout(() => child.kill('SIGINT'), ms);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      if (code !== 0 || line === undefined) {
        fail(what, `wrk ${args.join(' ')} ended with ${code ?? signal} and no result: ${(stderr || stdout).trim().split('\n').slice(-3).join(' / ')}`);
      }
      resolve(JSON.parse(line) as T);
    });
  });
}

function errorsOf(r: WrkErrors): string | null {
  const e = { connect: r.connect, read: r.read, write: r.write, status: r.status, timeout: r.timeout };
  return Object.values(e).some((v) => v !== 0) ? `wrk counted errors ${JSON.stringify(e)}` : null;
}

/** The pre-flight: fails the program unless every response was right. */
export async function preflight(what: string, port: number, connections: number): Promise<CheckResult> {
  const r = await runWrk<CheckResult>(`${what} (pre-flight)`, CHECK_SCRIPT, Math.min(connections, 4), port, CHECK_MS);
  if (r.bad > 0) fail(what, `pre-flight: ${r.bad} of ${r.good + r.bad} responses wrong, the first: ${r.first}`);
  if (r.good < 3) fail(what, `pre-flight: only ${r.good} responses`);
  if (r.good !== r.requests) fail(what, `pre-flight: ${r.good} responses checked, wrk counted ${r.requests}`);
  const errors = errorsOf(r);
  if (errors !== null) fail(what, `pre-flight: ${errors}`);
  return r;
}

/** The measured run, with the process's CPU over it; a warm-up run first. */
export async function load(what: string, port: number, connections: number, ms: number): Promise<{ r: LoadResult; span: Span; warmUp: number }> {
  const warm = await runWrk<LoadResult>(`${what} (warm-up)`, LOAD_SCRIPT, connections, port, warmUpMs(ms));
  const warmErrors = errorsOf(warm);
  if (warmErrors !== null) fail(what, `warm-up: ${warmErrors}`);
  const span = new Span();
  span.start();
  const r = await runWrk<LoadResult>(what, LOAD_SCRIPT, connections, port, ms);
  span.stop();
  if (!(r.requests > 0)) fail(what, 'wrk completed no request');
  const errors = errorsOf(r);
  if (errors !== null) fail(what, errors);
  return { r, span, warmUp: warm.requests };
}

/** Pre-flight and measured run; `served()` (after both) must count at least the responses wrk got. */
export async function w7(
  peer: string,
  config: string,
  n: number,
  port: number,
  served: () => Promise<number> | number,
): Promise<Row> {
  const what = `W7 ${config} ${peer}`;
  const connections = connectionsOf(config);
  const check = await preflight(what, port, connections);
  const { r, span, warmUp } = await load(what, port, connections, n);
  const count = await served();
  const got = check.good + warmUp + r.requests;
  if (count < got) fail(what, `the server answered ${count} requests, wrk got ${got} responses`);
  const wallMs = r.durationUs / 1000;
  return {
    scenario: 'W7', peer, config, n, connections,
    wallMs, cpuMs: span.cpuMs, nsPerOp: (span.cpuMs * 1e6) / r.requests,
    requestsPerSec: r.requests / (r.durationUs / 1e6),
    requests: r.requests, p50Us: r.p50Us, p99Us: r.p99Us, checked: check.good,
  };
}
