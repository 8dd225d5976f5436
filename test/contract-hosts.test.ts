// The contract suite (test/contract/cases.ts) in other hosts: test/contract/run-host.ts
// under Bun, under Deno with FFI (the native shim) and without it (the portable
// driver), and under Node with WASM_IOLOOP_NO_NATIVE=1. Each run must fail no case,
// run at least the cases that apply everywhere on every combination the host must
// have, and report the host it ran in; the per-combination counts are printed.
//
// A blocked host loop cannot be timed out from inside (a blocking-driver loop that
// waits in its poll runs no host timer), so a runner that prints nothing for
// STALL_MS is killed: the case it was running fails, and a new runner carries on
// from the next case.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { CASES } from './contract/cases';
import { COMBOS } from './contract/combos';
import { bunPath, denoPath, nodeTs } from './hosts';

const ROOT = path.join(__dirname, '..');
const SCRIPT = path.join('test', 'contract', 'run-host.ts');
/** How long a runner may print nothing once it has started its cases. */
const STALL_MS = 4_000;
/** How long a runner may take to load the package and print its host line. */
const STARTUP_MS = 30_000;
/** Runners at once (this machine has two cores). */
const CONCURRENCY = 2;

interface HostSpec {
  readonly name: string;
  readonly command: () => [string, string[]];
  readonly env?: Record<string, string>;
  readonly runtime: string;
  /** What IOLoop.host().native must be there: true, or a pattern for the reason. */
  readonly native: true | RegExp;
  /** The combinations that host must be able to run. */
  readonly mustRun: readonly string[];
  /** What IOLoop.host() must list there, where the shim is not in use. */
  readonly has?: { readonly backends: string[]; readonly drivers: string[] };
}

const PORTABLE_ONLY = { backends: ['wasi', 'fake'], drivers: ['portable'] };

const ALL = COMBOS.map((c) => c.name);

const HOSTS: readonly HostSpec[] = [
  { name: 'Bun', command: () => [bunPath(), [SCRIPT]], runtime: 'bun', native: true, mustRun: ALL },
  { name: 'Deno -A', command: () => [denoPath(), ['run', '-A', '--sloppy-imports', SCRIPT]], runtime: 'deno', native: true, mustRun: ALL },
  {
    name: 'Deno without --allow-ffi',
    command: () => [denoPath(), ['run', '--allow-read', '--allow-env', '--sloppy-imports', SCRIPT]],
    runtime: 'deno',
    native: /--allow-ffi/,
    mustRun: ['fake', 'portable'],
    has: PORTABLE_ONLY,
  },
  {
    name: 'Node with WASM_IOLOOP_NO_NATIVE=1',
    command: () => {
      const [node, args] = nodeTs();
      return [node, [...args, SCRIPT]];
    },
    env: { WASM_IOLOOP_NO_NATIVE: '1' },
    runtime: 'node',
    native: /^disabled by WASM_IOLOOP_NO_NATIVE=1$/,
    mustRun: ['fake', 'portable'],
    has: PORTABLE_ONLY,
  },
];

type Status = 'ok' | 'FAIL' | 'n/a';
interface Result {
  readonly combo: string;
  readonly status: Status;
  /** The case's name, or '' if the line names no case of cases.ts. */
  readonly name: string;
  /** What follows the name: the failure or why not applicable. */
  readonly message: string;
  readonly line: string;
}
interface HostRun {
  host: Record<string, unknown> | null;
  results: Result[];
  /** What went wrong with the runner processes themselves (exit status, missing summary, kills). */
  problems: string[];
}

/** One runner process over `combos`: what it printed, and whether it was killed for printing nothing. */
interface Spawned {
  stdout: string;
  stderr: string;
  code: number | null;
  signal: string | null;
  stalled: boolean;
}

let running = 0;
const waiting: (() => void)[] = [];
async function limited<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= CONCURRENCY) await new Promise<void>((r) => waiting.push(r));
  running++;
  try {
    return await fn();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

function spawnRunner(spec: HostSpec, combos: readonly string[]): Promise<Spawned> {
  return limited(
    () =>
      new Promise<Spawned>((resolve, reject) => {
        const [command, args] = spec.command();
        const child = spawn(command, [...args, ...combos], {
          cwd: ROOT,
          env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1', DENO_NO_PROMPT: '1', ...spec.env },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        const out: Spawned = { stdout: '', stderr: '', code: null, signal: null, stalled: false };
        let timer: ReturnType<typeof setTimeout> | undefined;
        const watch = (ms: number): void => {
          clearTimeout(timer);
          timer = setTimeout(() => {
            out.stalled = true;
            child.kill('SIGKILL');
          }, ms);
        };
        watch(STARTUP_MS);
        child.stdout.setEncoding('utf8').on('data', (d: string) => {
          out.stdout += d;
          watch(STALL_MS);
        });
        child.stderr.setEncoding('utf8').on('data', (d: string) => {
          out.stderr += d;
          if (out.stdout !== '') watch(STALL_MS);
        });
        child.on('error', reject);
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          out.code = code;
          out.signal = signal;
          resolve(out);
        });
      }),
  );
}

const LINE = /^(ok|FAIL|n\/a) (\S+) /;
const SUMMARY = /^(\d+) passed, (\d+) failed \((\d+) not applicable\)$/;

/** Runs the runner over every combination, starting a new one after each that stalled. */
async function runHost(spec: HostSpec): Promise<HostRun> {
  const run: HostRun = { host: null, results: [], problems: [] };
  let remaining = [...ALL];
  while (remaining.length > 0) {
    const s = await spawnRunner(spec, remaining);
    const lines = s.stdout.split('\n').filter((l) => l !== '');
    const hostLine = lines.find((l) => l.startsWith('host '));
    if (hostLine !== undefined) run.host ??= JSON.parse(hostLine.slice(5)) as Record<string, unknown>;
    const results = lines.flatMap((line): Result[] => {
      const m = LINE.exec(line);
      return m ? [parseResult(m[1] as Status, m[2]!, line.slice(m[0].length), line)] : [];
    });
    run.results.push(...results);
    if (!s.stalled) {
      const summary = lines.map((l) => SUMMARY.exec(l)).find((m) => m !== null);
      const failed = results.filter((r) => r.status === 'FAIL').length;
      if (!summary) run.problems.push(`no summary line; exit ${s.code ?? s.signal}; stderr: ${tail(s.stderr)}`);
      else if (Number(summary[1]) !== results.filter((r) => r.status === 'ok').length || Number(summary[2]) !== failed) {
        run.problems.push(`the summary "${summary[0]}" does not match the lines printed`);
      }
      const expected = failed > 0 ? 1 : 0;
      if (s.code !== expected) run.problems.push(`exited with ${s.code === null ? `signal ${s.signal}` : `code ${s.code}`} (expected ${expected}); stderr: ${tail(s.stderr)}`);
      break;
    }
    if (lines.some((l) => SUMMARY.test(l))) {
      run.problems.push(`did not exit within ${STALL_MS / 1000} s of its summary line: something keeps the host alive`);
      break;
    }
    // Killed while a case ran: that case failed.
    const current = s.stderr
      .split('\n')
      .filter((l) => l.startsWith('> '))
      .pop();
    if (current === undefined) {
      run.problems.push(`printed nothing for ${STARTUP_MS / 1000} s and was killed; stderr: ${tail(s.stderr)}`);
      break;
    }
    const [combo, ...rest] = current.slice(2).split(' ');
    const hung = rest.join(' ');
    const index = CASES.findIndex((c) => c.name === hung);
    if (results.some((r) => r.combo === combo && r.name === hung)) {
      run.problems.push(`printed nothing for ${STALL_MS / 1000} s after the result of ${combo} "${hung}" (killed)`);
    } else {
      const why = `printed nothing for ${STALL_MS / 1000} s: the host's loop never came back (killed)`;
      run.results.push({ status: 'FAIL', combo: combo!, name: hung, message: why, line: `FAIL ${combo} ${hung}: ${why}` });
    }
    // Carry on with the next case of that combination, then the combinations after it.
    const after = remaining.slice(remaining.findIndex((r) => r.split('#')[0] === combo) + 1);
    remaining = index + 1 < CASES.length ? [`${combo}#${index + 1}`, ...after] : after;
  }
  return run;
}

/** Splits what follows `<status> <combo> ` into the case's name and the message after it. */
function parseResult(status: Status, combo: string, rest: string, line: string): Result {
  const c = CASES.find((k) => rest === k.name || rest.startsWith(`${k.name}: `));
  return { status, combo, line, name: c?.name ?? '', message: c ? rest.slice(c.name.length + 2) : rest };
}

function tail(text: string): string {
  return text.trim().split('\n').slice(-5).join(' | ') || '(empty)';
}

function summarize(spec: HostSpec, run: HostRun): string {
  const rows = ALL.map((combo) => {
    const mine = run.results.filter((r) => r.combo === combo);
    const count = (s: Status): number => mine.filter((r) => r.status === s).length;
    const reasons = [...new Set(mine.filter((r) => r.status === 'n/a').map((r) => r.message))];
    const na = count('n/a') > 0 ? `, ${count('n/a')} not applicable (${reasons.join('; ')})` : '';
    return `  ${combo}: ${count('ok')} passed, ${count('FAIL')} failed${na}`;
  });
  const failures = run.results.filter((r) => r.status === 'FAIL').map((r) => `  ${r.line}`);
  return [`${spec.name} (${JSON.stringify(run.host)}):`, ...rows, ...failures, ...run.problems.map((p) => `  runner: ${p}`)].join('\n');
}

const runs = new Map<string, Promise<HostRun>>();
beforeAll(() => {
  for (const spec of HOSTS) {
    const p = runHost(spec);
    p.catch(() => {}); // awaited by its test
    runs.set(spec.name, p);
  }
});

// Every runner has ended before the file does, whichever tests ran.
afterAll(() => Promise.all([...runs.values()].map((p) => p.catch(() => {}))), 120_000);

/** The cases that apply to every combination: each combination a host must have runs at least these. */
const EVERYWHERE = CASES.filter((c) => (c.requires ?? []).length === 0).length;

describe.each(HOSTS.map((h) => [h.name, h] as const))('the contract suite under %s', (_name, spec) => {
  test(
    'fails no case, and runs every case that applies on each combination it must have',
    async () => {
      const run = await runs.get(spec.name)!;
      console.log(summarize(spec, run));
      expect(run.problems).toEqual([]);
      expect(run.host).toMatchObject({ runtime: spec.runtime });
      if (spec.native === true) expect(run.host?.native).toBe(true);
      else expect(run.host?.native).toMatch(spec.native);
      if (spec.has) expect(run.host).toMatchObject(spec.has);
      expect(run.results.filter((r) => r.status === 'FAIL').map((r) => r.line)).toEqual([]);
      for (const combo of ALL) {
        const names = run.results.filter((r) => r.combo === combo).map((r) => r.name);
        expect({ combo, cases: names }).toEqual({ combo, cases: CASES.map((c) => c.name) });
      }
      for (const combo of spec.mustRun) {
        const ran = run.results.filter((r) => r.combo === combo && r.status !== 'n/a').length;
        expect({ combo, ran: ran >= EVERYWHERE ? `at least ${EVERYWHERE}` : ran }).toEqual({ combo, ran: `at least ${EVERYWHERE}` });
      }
    },
    120_000,
  );
});
