/**
 * `npm run bench`: runs every scenario program of every peer in one run and
 * compares them.
 *
 *   npm run bench                      full size, 3 repetitions
 *   npm run bench -- --quick           a tenth of the size (under 2 minutes)
 *   npm run bench -- --check           quick, plus the cross-language PRNG check;
 *                                      exits non-zero only if a self-check fails
 *   npm run bench -- --only W1,W4      only these scenario ids
 *   npm run bench -- --peers node,cloop  only these peers (names as in lib/plan.ts)
 *   npm run bench -- --reps 5          repetitions per peer (at least 3)
 *   npm run bench -- --redraw          no runs: redraw the tables and latest.svg
 *                                      from latest.json (quick.* with --quick)
 *
 * For each scenario configuration the peers run back to back, alternating
 * (A B C A B C A B C), one process per run, and the table reports medians. A
 * program checks its own result and exits with status 2 when it is wrong; any
 * failed run fails its cell and makes the harness exit 1. Missed targets are
 * reported, never an error. W5 runs under `strace` (when present) to count the
 * poll calls made inside its measured window.
 *
 * Writes bench/results/latest.json and latest.svg (full runs of every scenario),
 * quick.* (--quick, --check) or partial.* (--only, --peers), and prints the tables on
 * stdout; progress goes to stderr.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { mulberry32, SEED } from './lib/prng';
import { Cell, Figures, Peer, PEERS, Scenario, SCENARIOS, TARGETS } from './lib/plan';
import { chartSvg, evaluateTargets, resultsTable, targetsTable } from './lib/report';

const ROOT = path.resolve(__dirname, '..');
const BUILD = path.join(__dirname, '.build');
const RESULTS = path.join(__dirname, 'results');
const POLL_SYSCALLS = 'epoll_wait,epoll_pwait,epoll_pwait2,poll,ppoll,select,pselect6';

/** A wrong command line: reported by its message alone. */
class UsageError extends Error {}

interface Options {
  quick: boolean;
  check: boolean;
  only: Set<string> | null;
  peers: Set<string> | null;
  reps: number;
  redraw: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { quick: false, check: false, only: null, peers: null, reps: 3, redraw: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const eq = a.indexOf('=');
      if (eq >= 0) return a.slice(eq + 1);
      if (i + 1 >= argv.length) throw new UsageError(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--quick') o.quick = true;
    else if (a === '--check') o.check = o.quick = true;
    else if (a === '--redraw') o.redraw = true;
    else if (a.startsWith('--only')) o.only = new Set(value().split(',').map((s) => s.trim()).filter(Boolean));
    else if (a.startsWith('--peers')) o.peers = new Set(value().split(',').map((s) => s.trim()).filter(Boolean));
    else if (a.startsWith('--reps')) o.reps = Math.max(3, Number(value()) || 3);
    else if (a === '--help' || a === '-h') {
      process.stdout.write(fs.readFileSync(__filename, 'utf8').split('*/')[0] + '*/\n');
      process.exit(0);
    } else throw new UsageError(`unknown argument '${a}' (try --help)`);
  }
  if (o.only) {
    const known = new Set(SCENARIOS.map((s) => s.id));
    for (const id of o.only) if (!known.has(id)) throw new UsageError(`--only: unknown scenario '${id}' (have: ${[...known].join(', ')})`);
  }
  if (o.peers) {
    const known = new Set(PEERS.map((p) => p.name));
    for (const name of o.peers) if (!known.has(name)) throw new UsageError(`--peers: unknown peer '${name}' (have: ${[...known].join(', ')})`);
  }
  return o;
}

const log = (msg: string): void => void process.stderr.write(msg + '\n');

// ---- what this machine has ----

interface Availability {
  /** argv of a scenario program, or why the peer cannot run. */
  command?: (s: Scenario, n: number) => string[];
  status?: 'not installed' | 'not yet';
  note?: string;
}

function works(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore', timeout: 20_000 });
  return r.status === 0;
}

/** The first Python interpreter that imports tornado, if any. */
function findTornadoPython(): string | null {
  const seen = new Set<string>();
  for (const py of ['python3', '/usr/bin/python3']) {
    if (seen.has(py)) continue;
    seen.add(py);
    if (works(py, ['-c', 'import tornado'])) return py;
  }
  return null;
}

function buildCloop(): string | null {
  if (!works('cc', ['--version'])) return null;
  fs.mkdirSync(BUILD, { recursive: true });
  const out = path.join(BUILD, 'cloop');
  const r = spawnSync('cc', ['-O2', '-o', out, path.join(__dirname, 'peers', 'cloop.c')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cc failed to build bench/peers/cloop.c:\n${r.stderr}`);
  return out;
}

function detect(): { peers: Map<string, Availability>; strace: boolean; python: string | null; cloop: string | null } {
  const peers = new Map<string, Availability>();
  const tsProgram = (dir: string) => (s: Scenario, n: number): string[] => [
    process.execPath, '--require', 'tsx/cjs', path.join(__dirname, 'scenarios', dir, `${s.ts}.ts`), s.config, String(n),
  ];
  const python = findTornadoPython();
  const cloop = buildCloop();
  for (const p of PEERS) {
    if (p.notYet) peers.set(p.name, { status: 'not yet', note: p.notYet });
    else if (p.kind === 'ts') {
      if (p.name.startsWith('wasm-ioloop') && !fs.existsSync(path.join(ROOT, 'src', 'index.ts'))) {
        peers.set(p.name, { status: 'not yet', note: 'src/index.ts does not exist' });
      } else peers.set(p.name, { command: tsProgram(p.name) });
    } else if (p.kind === 'py') {
      peers.set(p.name, python
        ? { command: (s, n) => [python, path.join(__dirname, 'scenarios', 'tornado', `${s.py}.py`), s.config, String(n)] }
        : { status: 'not installed', note: 'no python3 that imports tornado' });
    } else if (p.kind === 'c') {
      peers.set(p.name, cloop ? { command: (s, n) => [cloop, s.c, s.config, String(n)] } : { status: 'not installed', note: 'no cc' });
    }
  }
  const strace = works('strace', ['-f', '--seccomp-bpf', '-e', 'trace=epoll_wait', '-o', '/dev/null', 'true']);
  return { peers, strace, python, cloop };
}

// ---- running one program ----

interface RunResult {
  ok: boolean;
  row?: Record<string, unknown>;
  why?: string;
}

function runProgram(argv: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

/** Poll calls that strace saw start inside [startMs, endMs] (epoch ms). */
function countPolls(traceFile: string, startMs: number, endMs: number): number {
  let count = 0;
  for (const line of fs.readFileSync(traceFile, 'utf8').split('\n')) {
    const m = /^\d+\s+(\d+\.\d+)\s+(\w+)\(/.exec(line);
    if (m === null) continue;
    const t = Number(m[1]) * 1000;
    if (t >= startMs && t <= endMs) count++;
  }
  return count;
}

async function runOnce(argv: string[], s: Scenario, strace: boolean, timeoutMs: number): Promise<RunResult> {
  let traceFile: string | null = null;
  if (s.id === 'W5' && strace) {
    traceFile = path.join(os.tmpdir(), `wasm-ioloop-bench-${process.pid}-${Date.now()}.strace`);
    argv = ['strace', '-f', '--seccomp-bpf', '-ttt', '-e', `trace=${POLL_SYSCALLS}`, '-o', traceFile, ...argv];
  }
  try {
    const r = await runProgram(argv, timeoutMs);
    const tail = r.stderr.trim().split('\n').slice(-6).join('\n');
    if (r.timedOut) return { ok: false, why: `timed out after ${timeoutMs / 1000} s` };
    if (r.code !== 0) return { ok: false, why: `${r.code === 2 ? 'self-check failed' : `exit ${r.code}`}: ${tail}` };
    const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
    if (line === undefined) return { ok: false, why: `no result line: ${tail}` };
    const row = JSON.parse(line) as Record<string, unknown>;
    if (traceFile !== null) row.pollSyscalls = countPolls(traceFile, row.epochStartMs as number, row.epochEndMs as number);
    return { ok: true, row };
  } finally {
    if (traceFile !== null) fs.rmSync(traceFile, { force: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function medians(rows: Array<Record<string, unknown>>): Figures {
  const pick = (k: string): number | undefined => {
    const xs = rows.map((r) => r[k]).filter((v): v is number => typeof v === 'number');
    return xs.length === rows.length ? median(xs) : undefined;
  };
  return {
    wallMs: pick('wallMs')!, cpuMs: pick('cpuMs')!, nsPerOp: pick('nsPerOp')!, rssPeakMb: pick('rssPeakMb')!,
    roundTripsPerSec: pick('roundTripsPerSec'), pollSyscalls: pick('pollSyscalls'), shimEpollWaits: pick('shimEpollWaits'),
  };
}

// ---- the cross-language PRNG check ----

function prngCheck(python: string | null, cloop: string | null): string[] {
  const k = 16;
  const next = mulberry32(SEED);
  const expected = Array.from({ length: k }, () => next()).join(' ');
  const faults: string[] = [];
  const others: Array<[string, string[]]> = [];
  if (python) others.push(['Python', [python, path.join(__dirname, 'lib', 'prng.py'), String(k)]]);
  else if (works('python3', ['--version'])) others.push(['Python', ['python3', path.join(__dirname, 'lib', 'prng.py'), String(k)]]);
  if (cloop) others.push(['C', [cloop, 'prng', String(k)]]);
  for (const [lang, argv] of others) {
    const got = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' }).stdout.trim();
    if (got !== expected) faults.push(`PRNG: ${lang} gives "${got}", TypeScript "${expected}"`);
  }
  log(`PRNG: TypeScript${others.map(([l]) => `, ${l}`).join('')}: ${faults.length === 0 ? 'same first ' + k + ' outputs' : 'DIFFER'}`);
  return faults;
}

// ---- main ----

interface Saved {
  command: string;
  date: string;
  mode: string;
  reps: number;
  machine: { cpu: string; cores: number; os: string; node: string };
  cells: Cell[];
}

function subtitle(r: Saved): string {
  const m = r.machine;
  return `${r.mode === 'quick' ? 'quick (1/10 size)' : 'full'} run, medians of ${r.reps}; ${m.cpu}, ${m.cores} cores, ` +
    `${m.os}, Node ${m.node}; ${r.command}; ${r.date.slice(0, 10)}`;
}

/** Prints the tables of a saved run and draws its chart again. */
function redraw(name: string): void {
  const file = path.join(RESULTS, `${name}.json`);
  const saved = JSON.parse(fs.readFileSync(file, 'utf8')) as Saved;
  const targets = evaluateTargets(TARGETS, saved.cells);
  process.stdout.write(`${resultsTable(saved.cells)}\n\n${targetsTable(targets)}\n\n${subtitle(saved)}\n`);
  fs.writeFileSync(path.join(RESULTS, `${name}.svg`), chartSvg(saved.cells, subtitle(saved)));
  log(`redrew bench/results/${name}.svg from ${name}.json`);
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.redraw) return redraw(opts.quick ? 'quick' : 'latest');
  const scale = opts.quick ? 0.1 : 1;
  const { peers: avail, strace, python, cloop } = detect();
  const failures: string[] = opts.check ? prngCheck(python, cloop) : [];
  if (!strace) log('strace: not available; W5 poll counts read n/a');

  const scenarios = SCENARIOS.filter((s) => opts.only === null || opts.only.has(s.id));
  const cells: Cell[] = [];
  const plan: Array<{ s: Scenario; peer: Peer; cell: Cell; argv: string[] }> = [];
  for (const s of scenarios) {
    for (const peer of PEERS) {
      if (peer.only && !peer.only.includes(s.id)) continue;
      if (opts.peers && !opts.peers.has(peer.name)) continue;
      // A scenario that no peer can run yet gets one row, not one per peer.
      if (s.notYet && peer.name !== PEERS[0].name) continue;
      const cell: Cell = { scenario: s.id, config: s.config, peer: peer.name, status: 'ok', samples: [] };
      cells.push(cell);
      const a = avail.get(peer.name)!;
      if (s.notYet) Object.assign(cell, { status: 'not yet', note: s.notYet });
      else if (peer.skips?.[s.id]) Object.assign(cell, { status: 'n/a', note: peer.skips[s.id].replace(/^n\/a: /, '') });
      else if (a.command === undefined) Object.assign(cell, { status: a.status, note: a.note });
      else plan.push({ s, peer, cell, argv: a.command(s, Math.max(1, Math.round(s.fullN * scale))) });
    }
  }

  const total = plan.length * opts.reps;
  const started = Date.now();
  let done = 0;
  const timeoutMs = opts.quick ? 120_000 : 600_000;
  log(`${opts.quick ? 'quick' : 'full'} run: ${plan.length} scenario × peer cells, ${opts.reps} repetitions, ${total} runs`);
  for (const s of scenarios) {
    const jobs = plan.filter((j) => j.s === s);
    for (let rep = 0; rep < opts.reps; rep++) {
      for (const j of jobs) {
        if (j.cell.status === 'failed') continue;
        const t0 = Date.now();
        const r = await runOnce(j.argv, s, strace, timeoutMs);
        done++;
        const secs = ((Date.now() - t0) / 1000).toFixed(1);
        const elapsed = Math.round((Date.now() - started) / 1000);
        log(`[${String(done).padStart(String(total).length)}/${total}] ${s.id} ${s.config} · ${j.peer.name} · rep ${rep + 1}/${opts.reps}: ` +
          `${r.ok ? 'ok' : 'FAILED'} in ${secs} s (${elapsed} s so far)`);
        if (r.ok) j.cell.samples.push(r.row!);
        else {
          j.cell.status = 'failed';
          j.cell.note = r.why;
          failures.push(`${s.id} ${s.config} ${j.peer.name}: ${r.why}`);
          done += opts.reps - rep - 1;
        }
      }
    }
    for (const j of jobs) if (j.cell.status === 'ok') j.cell.median = medians(j.cell.samples);
  }

  const targets = evaluateTargets(TARGETS, cells);
  const machine = {
    cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, memoryGb: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`, node: process.version,
    python: python ? spawnSync(python, ['--version'], { encoding: 'utf8' }).stdout.trim() : null,
    cc: cloop ? spawnSync('cc', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0] : null,
  };
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  const date = new Date().toISOString();
  const json = { command, date, mode: opts.quick ? 'quick' : 'full', scale, reps: opts.reps, machine, cells, targets, failures };
  process.stdout.write(`\n${resultsTable(cells)}\n\n${targetsTable(targets)}\n\n${subtitle(json)}\n`);

  // Only a full run of every scenario replaces latest.*, the figures the README quotes.
  const name = opts.quick ? 'quick' : opts.only || opts.peers ? 'partial' : 'latest';
  fs.mkdirSync(RESULTS, { recursive: true });
  fs.writeFileSync(path.join(RESULTS, `${name}.json`), JSON.stringify(json, null, 2) + '\n');
  fs.writeFileSync(path.join(RESULTS, `${name}.svg`), chartSvg(cells, subtitle(json)));
  log(`wrote bench/results/${name}.json and ${name}.svg in ${Math.round((Date.now() - started) / 1000)} s`);

  if (failures.length > 0) {
    log(`\n${failures.length} failed:\n  ${failures.join('\n  ')}`);
    process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  log(err instanceof UsageError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
