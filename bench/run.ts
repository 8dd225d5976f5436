/**
 * `npm run bench`: runs every scenario program of every peer in one run and
 * compares them.
 *
 *   npm run bench                      full size, 3 repetitions
 *   npm run bench -- --quick           a tenth of the size (under 2 minutes)
 *   npm run bench -- --check           quick, plus the cross-language PRNG check, the
 *                                      Bun and Deno peers and W7 once each, and each
 *                                      ratio to Node against latest.json (one more
 *                                      than 2x worse is rerun, up to 3 times); exits
 *                                      non-zero if a self-check fails or 3 reruns in
 *                                      a row confirm a regression
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
 * poll calls made inside its measured window. W7 loads HTTP servers with wrk
 * (`apt-get install wrk`); without it W7's rows read "not installed".
 *
 * The TypeScript programs run under Node (tsx) and, for W1-W4, under Bun and
 * Deno too (BENCH_BUN / BENCH_DENO, else the devDependencies, else PATH), each
 * peer's ratio to the built-ins of its runtime. Before a runtime's wasm-ioloop
 * programs run, lib/host-probe.ts checks there that the native shim loaded and a
 * default loop runs; when it does not, those cells fail with its reason.
 *
 * Writes bench/results/latest.json and latest.svg (full runs of every scenario),
 * quick.* (--quick, --check) or partial.* (--only, --peers), each with a
 * *-scaling.svg when S1 or S2 ran, and prints the tables on stdout; progress (and
 * --check's comparison) goes to stderr.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { mulberry32, permutation, SEED } from './lib/prng';
import { BASELINE, baselineOf, BASELINES, Cell, cost, Figures, Peer, PEERS, Runtime, runtimeOf, RUNTIME_LABELS, Scenario, SCENARIOS, TARGETS } from './lib/plan';
import {
  chartSvg, costRatio, evaluateTargets, hasScaling, type HostNotes, memoryTable, resultsTable, runtimesTable, scalingSvg, scalingTable, targetsTable,
} from './lib/report';

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
  status?: 'not installed' | 'not yet' | 'failed';
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

/** Deno's configuration: the import map of 'wasm-ioloop' and sloppy, CommonJS-detecting imports. */
const DENO_CONFIG = path.join(__dirname, 'deno.json');

/** How a runtime runs a TypeScript program, and what it said when asked. */
interface RuntimeHost {
  runtime: Runtime;
  /** argv before the program's path, or null when the runtime is not installed. */
  prefix: string[] | null;
  version?: string;
  /** Why it is not installed. */
  why?: string;
  /** The host probe's line (lib/host-probe.ts): what the wasm-ioloop programs get there. */
  probe?: Record<string, unknown>;
  /** Why the wasm-ioloop programs do not run there: the probe failed. */
  probeFailed?: string;
  /** Where 'wasm-ioloop' resolves to, relative to the repository. */
  entry?: string;
  /** What the tables say about the host: where 'wasm-ioloop' came from. */
  notes: string[];
}

/**
 * The binary of a runtime: the one `envVar` names (BENCH_BUN, BENCH_DENO), else
 * its devDependency in node_modules (made executable: npm may install Deno's
 * without the exec bit), else one on PATH.
 */
function findBinary(pkgFile: string, onPath: string, envVar: string): { bin: string; version: string } | { why: string } {
  const local = path.join(ROOT, 'node_modules', pkgFile);
  const tried: string[] = [];
  const named = process.env[envVar];
  for (const bin of named ? [named] : [local, onPath]) {
    if (bin === local) {
      let mode: number;
      try {
        mode = fs.statSync(local).mode;
      } catch {
        tried.push(`no node_modules/${pkgFile}`);
        continue;
      }
      if ((mode & 0o111) !== 0o111) {
        try {
          fs.chmodSync(local, mode | 0o755);
        } catch (err) {
          tried.push(`node_modules/${pkgFile} is not executable (${(err as Error).message})`);
          continue;
        }
      }
    }
    const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 20_000 });
    if (r.status === 0) return { bin, version: r.stdout.trim().split('\n')[0].match(/\d+\.\d+\.\d+\S*/)?.[0] ?? r.stdout.trim() };
    if (r.error) tried.push(bin === named ? `${envVar}=${named}: ${r.error.message}` : `no ${onPath} on PATH`);
    else tried.push(`${bin} --version failed (${r.status === null ? r.signal : `exit ${r.status}`})${r.stderr?.trim() ? `: ${r.stderr.trim().split('\n')[0]}` : ''}`);
  }
  return { why: tried.join('; ') };
}

/**
 * Where the Deno programs get the package: Deno runs .ts files as ES modules,
 * where src/'s CommonJS idioms (__dirname, require of the shim) do not exist, so
 * the harness transpiles src/ as the package build does (tsconfig.build.json's
 * options, CommonJS, no type check) into .build/deno-pkg/dist/, next to links to
 * the shim (build/, prebuilds/) and the core (wasm/). deno.json maps
 * 'wasm-ioloop' to its index.js. Node (tsx) and Bun resolve the name to
 * src/index.ts through tsconfig.json's paths, so all three run the same source.
 */
const DENO_PKG = path.join(BUILD, 'deno-pkg');

/** Builds .build/deno-pkg; returns why it could not. */
function buildDenoPackage(): string | null {
  const ts = require('typescript') as typeof import('typescript');
  const configFile = path.join(ROOT, 'tsconfig.build.json');
  const read = ts.readConfigFile(configFile, ts.sys.readFile);
  if (read.error) return `tsconfig.build.json: ${ts.flattenDiagnosticMessageText(read.error.messageText, '\n')}`;
  const parsed = ts.parseJsonConfigFileContent(read.config, ts.sys, ROOT, undefined, configFile);
  const out = path.join(DENO_PKG, 'dist');
  fs.rmSync(out, { recursive: true, force: true });
  const srcDir = path.join(ROOT, 'src');
  for (const file of parsed.fileNames) {
    if (!file.endsWith('.ts') || file.endsWith('.d.ts')) continue;
    const rel = path.relative(srcDir, file);
    if (rel.startsWith('..')) continue;
    const r = ts.transpileModule(fs.readFileSync(file, 'utf8'), {
      compilerOptions: { ...parsed.options, declaration: false, sourceMap: false, noEmit: false },
      fileName: file, reportDiagnostics: true,
    });
    const errors = (r.diagnostics ?? []).filter((d) => d.category === ts.DiagnosticCategory.Error);
    if (errors.length > 0) return `src/${rel}: ${ts.flattenDiagnosticMessageText(errors[0].messageText, '\n')}`;
    const target = path.join(out, rel.replace(/\.ts$/, '.js'));
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, r.outputText);
  }
  if (!fs.existsSync(path.join(out, 'index.js'))) return 'src/index.ts was not among tsconfig.build.json\'s files';
  fs.writeFileSync(path.join(DENO_PKG, 'package.json'), '{ "type": "commonjs" }\n');
  for (const dir of ['build', 'prebuilds', 'wasm']) {
    const link = path.join(DENO_PKG, dir);
    fs.rmSync(link, { recursive: true, force: true });
    if (fs.existsSync(path.join(ROOT, dir))) fs.symlinkSync(path.join(ROOT, dir), link);
  }
  return null;
}

function findRuntimes(): Map<Runtime, RuntimeHost> {
  const hosts = new Map<Runtime, RuntimeHost>();
  hosts.set('node', { runtime: 'node', prefix: [process.execPath, '--require', 'tsx/cjs'], version: process.versions.node, notes: [] });
  const bun = findBinary(path.join('@oven', 'bun-linux-x64', 'bin', 'bun'), 'bun', 'BENCH_BUN');
  hosts.set('bun', 'bin' in bun ? { runtime: 'bun', prefix: [bun.bin], version: bun.version, notes: [] } : { runtime: 'bun', prefix: null, why: bun.why, notes: [] });
  const deno = findBinary(path.join('@deno', 'linux-x64-glibc', 'deno'), 'deno', 'BENCH_DENO');
  // -A: the programs read files, the environment and /tmp sockets, and load the shim (--allow-ffi).
  hosts.set('deno', 'bin' in deno
    ? { runtime: 'deno', prefix: [deno.bin, 'run', '-A', '--config', DENO_CONFIG], version: deno.version, notes: [] }
    : { runtime: 'deno', prefix: null, why: deno.why, notes: [] });
  return hosts;
}

/** Runs lib/host-probe.ts under a runtime, which says whether the wasm-ioloop programs can run there. */
function probeRuntime(h: RuntimeHost): void {
  if (h.prefix === null) return;
  const label = `${RUNTIME_LABELS[h.runtime]} ${h.version}`;
  if (h.runtime === 'deno') {
    const why = buildDenoPackage();
    if (why !== null) {
      h.probeFailed = `the package for Deno did not build: ${why}`;
      log(`${label}: wasm-ioloop does not run there: ${h.probeFailed}`);
      return;
    }
  }
  const r = spawnSync(h.prefix[0], [...h.prefix.slice(1), path.join(__dirname, 'lib', 'host-probe.ts')], {
    cwd: ROOT, encoding: 'utf8', timeout: 30_000,
  });
  const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('{'));
  if (line !== undefined) h.probe = JSON.parse(line) as Record<string, unknown>;
  if (r.status !== 0 || h.probe?.ok !== true) {
    const tail = (r.stderr ?? '').trim().split('\n').slice(-4).join(' / ');
    h.probeFailed = (h.probe?.why as string | undefined) ??
      (r.error ? r.error.message : `host probe exited ${r.status ?? r.signal}${tail ? `: ${tail}` : ''}`);
    log(`${label}: wasm-ioloop does not run there: ${h.probeFailed}`);
  }
  if (h.runtime === 'deno') {
    h.entry = path.relative(ROOT, path.join(DENO_PKG, 'dist', 'index.js'));
    h.notes.unshift(`'wasm-ioloop' from src/, transpiled to ${path.relative(ROOT, DENO_PKG)}/dist`);
  } else if (typeof h.probe?.entry === 'string') {
    h.entry = path.relative(ROOT, h.probe.entry);
    h.notes.unshift(`'wasm-ioloop' from ${h.entry}`);
  }
}

/** What can run here; `selected` limits the host probes to the peers that will run. */
function detect(selected: (peer: string) => boolean): {
  peers: Map<string, Availability>; hosts: Map<Runtime, RuntimeHost>; strace: boolean; python: string | null; cloop: string | null;
} {
  const peers = new Map<string, Availability>();
  const hosts = findRuntimes();
  const tsProgram = (prefix: string[], dir: string) => (s: Scenario, n: number): string[] => [
    ...prefix, path.join(__dirname, 'scenarios', dir, `${s.ts}.ts`), s.config, String(n),
  ];
  const python = findTornadoPython();
  const cloop = buildCloop();
  const hasSrc = fs.existsSync(path.join(ROOT, 'src', 'index.ts'));
  const probed = new Set<Runtime>();
  for (const p of PEERS) {
    if (p.notYet) peers.set(p.name, { status: 'not yet', note: p.notYet });
    else if (p.kind === 'ts') {
      const host = hosts.get(p.runtime ?? 'node')!;
      const dir = p.programs ?? p.name;
      if (p.name.startsWith('wasm-ioloop') && !hasSrc) {
        peers.set(p.name, { status: 'not yet', note: 'src/index.ts does not exist' });
      } else if (host.prefix === null) {
        peers.set(p.name, { status: 'not installed', note: `no ${RUNTIME_LABELS[host.runtime]} (${host.why})` });
      } else if (dir === 'wasm-ioloop') {
        // The guest-driver programs run only where the probe found the shim and a working default loop.
        if (!probed.has(host.runtime) && selected(p.name)) {
          probeRuntime(host);
          probed.add(host.runtime);
        }
        peers.set(p.name, host.probeFailed === undefined
          ? { command: tsProgram(host.prefix, dir) }
          : { status: 'failed', note: `host probe under ${RUNTIME_LABELS[host.runtime]} ${host.version}: ${host.probeFailed}` });
      } else peers.set(p.name, { command: tsProgram(host.prefix, dir) });
    } else if (p.kind === 'py') {
      peers.set(p.name, python
        ? { command: (s, n) => [python, path.join(__dirname, 'scenarios', 'tornado', `${s.py}.py`), s.config, String(n)] }
        : { status: 'not installed', note: 'no python3 that imports tornado' });
    } else if (p.kind === 'c') {
      peers.set(p.name, cloop ? { command: (s, n) => [cloop, s.c, s.config, String(n)] } : { status: 'not installed', note: 'no cc' });
    }
  }
  const strace = works('strace', ['-f', '--seccomp-bpf', '-e', 'trace=epoll_wait', '-o', '/dev/null', 'true']);
  return { peers, hosts, strace, python, cloop };
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
    roundTripsPerSec: pick('roundTripsPerSec'), requestsPerSec: pick('requestsPerSec'), pollSyscalls: pick('pollSyscalls'), shimEpollWaits: pick('shimEpollWaits'),
    rssBeforeMb: pick('rssBeforeMb'),
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
  // S2's removal order (a Fisher-Yates shuffle whose products pass 2^53 in doubles).
  if (cloop) {
    const n = 4_000_000;
    const order = Array.from(permutation(n).subarray(0, k)).join(' ');
    const got = spawnSync(cloop, ['perm', String(n), String(k)], { encoding: 'utf8' }).stdout.trim();
    if (got !== order) faults.push(`S2 order of ${n}: C gives "${got}", TypeScript "${order}"`);
    log(`S2 removal order: TypeScript, C: ${got === order ? `same first ${k} of ${n}` : 'DIFFER'}`);
  }
  return faults;
}

// ---- main ----

interface Saved {
  command: string;
  date: string;
  mode: string;
  reps: number;
  machine: { cpu: string; cores: number; os: string; node: string; bun?: string | null; deno?: string | null };
  cells: Cell[];
  /** Per runtime: its version, where 'wasm-ioloop' resolved to, and the host probe's line. */
  hosts?: Partial<Record<Runtime, { version: string | null; entry: string | null; notes: string[]; probe: Record<string, unknown> | null; why?: string }>>;
  /** Repetitions of the Bun and Deno peers when fewer than `reps` (--check). */
  otherRuntimeReps?: number;
}

function subtitle(r: Saved): string {
  const m = r.machine;
  const others = [m.bun ? `Bun ${m.bun}` : '', m.deno ? `Deno ${m.deno}` : ''].filter(Boolean).join(', ');
  const reps = r.otherRuntimeReps !== undefined && r.otherRuntimeReps !== r.reps
    ? `medians of ${r.reps} (Bun and Deno peers, W7: ${r.otherRuntimeReps} run${r.otherRuntimeReps === 1 ? '' : 's'})` : `medians of ${r.reps}`;
  return `${r.mode === 'quick' ? 'quick (1/10 size)' : 'full'} run, ${reps}; ${m.cpu}, ${m.cores} cores, ` +
    `${m.os}, Node ${m.node}${others ? `, ${others}` : ''}; ${r.command}; ${r.date.slice(0, 10)}`;
}

/** The heading notes of each runtime's block: its version and where the package came from. */
function hostNotes(r: Saved): HostNotes {
  const notes: HostNotes = {};
  for (const [rt, h] of Object.entries(r.hosts ?? {}) as Array<[Runtime, NonNullable<Saved['hosts']>[Runtime]]>) {
    if (h === undefined) continue;
    notes[rt] = [h.version ?? 'not installed', ...h.notes].join('; ');
  }
  return notes;
}

function tables(r: Saved, targets: ReturnType<typeof evaluateTargets>): string {
  const across = runtimesTable(r.cells);
  const memory = memoryTable(r.cells);
  const scaling = hasScaling(r.cells) ? `${scalingTable(r.cells)}\n\n${memory ? `${memory}\n\n` : ''}` : '';
  return `${resultsTable(r.cells, hostNotes(r))}\n\n${across ? `${across}\n\n` : ''}${scaling}${targetsTable(targets)}\n\n${subtitle(r)}\n`;
}

/** Writes `<name>.svg`, and `<name>-scaling.svg` when the run has S1 or S2. */
function writeCharts(name: string, cells: Cell[], sub: string): string[] {
  fs.writeFileSync(path.join(RESULTS, `${name}.svg`), chartSvg(cells, sub));
  if (!hasScaling(cells)) return [`${name}.svg`];
  fs.writeFileSync(path.join(RESULTS, `${name}-scaling.svg`), scalingSvg(cells, sub));
  return [`${name}.svg`, `${name}-scaling.svg`];
}

/** Prints the tables of a saved run and draws its chart again. */
function redraw(name: string): void {
  const file = path.join(RESULTS, `${name}.json`);
  const saved = JSON.parse(fs.readFileSync(file, 'utf8')) as Saved;
  const targets = evaluateTargets(TARGETS, saved.cells);
  process.stdout.write(tables(saved, targets));
  const drawn = writeCharts(name, saved.cells, subtitle(saved));
  log(`redrew bench/results/${drawn.join(' and ')} from ${name}.json`);
}

// ---- --check: ratios against the last committed full run ----

/** A ratio more than this many times the last full run's is a suspected regression. */
const REGRESSION_FACTOR = 2;
/** A suspected regression is rerun up to this many times; it fails if every rerun confirms it. */
const REGRESSION_RERUNS = 3;
/** The peer whose ratio to Node the comparison follows. */
const COMPARED_PEER = 'wasm-ioloop';

/**
 * Compares each scenario's wasm-ioloop cost ratio to Node (quick size) with the one
 * in results/latest.json (the last committed full run) and prints every change. A
 * ratio more than REGRESSION_FACTOR times the old one is run again, at the full
 * size the old one was measured at (a tenth of the size is not comparable: W3 chain
 * is 0.41x Node at 100,000 callbacks and 0.1x at 1,000,000, V8 warming up), the
 * wasm-ioloop and Node programs once each, up to REGRESSION_RERUNS times: one rerun
 * within the factor clears it, and only a regression that every rerun confirms
 * fails the check. Costs nothing when nothing looks worse.
 */
async function compareWithLatest(
  cells: Cell[],
  plan: Array<{ s: Scenario; peer: Peer; cell: Cell; fullArgv: string[] }>,
  strace: boolean,
  timeoutMs: number,
): Promise<string[]> {
  const file = path.join(RESULTS, 'latest.json');
  let last: Saved;
  try {
    last = JSON.parse(fs.readFileSync(file, 'utf8')) as Saved;
  } catch {
    log('regressions: no bench/results/latest.json to compare with');
    return [];
  }
  const lines: string[] = [];
  const failures: string[] = [];
  const rows: Array<{ key: string; s: Scenario; old: number; now: number }> = [];
  for (const c of cells) {
    if (c.peer !== COMPARED_PEER || c.costRatio === undefined) continue;
    // From the medians, as a run written before cells kept costRatio has none.
    const before = last.cells.find((o) => o.scenario === c.scenario && o.config === c.config && o.peer === c.peer);
    const old = before === undefined ? undefined : costRatio(last.cells, before);
    const s = plan.find((j) => j.cell === c)?.s;
    if (old === undefined || !(old > 0) || s === undefined) continue;
    rows.push({ key: `${c.scenario} ${c.config}`, s, old, now: c.costRatio });
  }
  log(`\nratios to Node against ${path.relative(ROOT, file)} (${last.date.slice(0, 10)}, ${last.mode} run); reruns at full size:`);
  for (const r of rows) {
    const change = r.now / r.old;
    let verdict = change > REGRESSION_FACTOR ? 'worse' : change < 1 / REGRESSION_FACTOR ? 'better' : 'within 2x';
    if (change > REGRESSION_FACTOR) {
      const again: number[] = [];
      for (let k = 0; k < REGRESSION_RERUNS; k++) {
        const ratio = await rerunRatio(r.s, plan, strace, timeoutMs);
        again.push(ratio);
        if (!(ratio / r.old > REGRESSION_FACTOR)) break;
      }
      const confirmed = again.length === REGRESSION_RERUNS && again.every((x) => x / r.old > REGRESSION_FACTOR);
      verdict = `${confirmed ? 'REGRESSION' : 'cleared'} (reruns: ${again.map((x) => `${x.toPrecision(3)}×`).join(', ')})`;
      if (confirmed) failures.push(`${r.key}: ratio to Node ${r.old.toPrecision(3)}× -> ${again.map((x) => x.toPrecision(3)).join(', ')}× on ${REGRESSION_RERUNS} reruns`);
    }
    lines.push(`  ${r.key.padEnd(16)} ${r.old.toPrecision(3).padStart(7)}× -> ${r.now.toPrecision(3).padStart(7)}×  (${change.toPrecision(3)}×)  ${verdict}`);
  }
  for (const l of lines) log(l);
  if (rows.length === 0) log('  no scenario has a ratio in both runs');
  return failures;
}

/** One more run of a configuration's wasm-ioloop and Node programs at full size: the cost ratio, or NaN. */
async function rerunRatio(s: Scenario, plan: Array<{ s: Scenario; peer: Peer; fullArgv: string[] }>, strace: boolean, timeoutMs: number): Promise<number> {
  const costOf = async (peer: string): Promise<number> => {
    const j = plan.find((x) => x.s === s && x.peer.name === peer);
    if (j === undefined) return NaN;
    const r = await runOnce(j.fullArgv, s, strace, timeoutMs);
    return r.ok ? cost(s.id, medians([r.row!])) : NaN;
  };
  // The scaling programs' rounds at full size, too (measure.ts).
  const quickOps = process.env.BENCH_SCALING_OPS;
  delete process.env.BENCH_SCALING_OPS;
  try {
    const ours = await costOf(COMPARED_PEER);
    const theirs = await costOf(BASELINE);
    return ours / theirs;
  } finally {
    if (quickOps !== undefined) process.env.BENCH_SCALING_OPS = quickOps;
  }
}

/** Under --check the Bun and Deno peers, and W7 (wrk runs for a fixed time), run once: CI asks them for their self-checks, not their speed. */
const CHECK_REPS_OTHER_RUNTIMES = 1;

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.redraw) return redraw(opts.quick ? 'quick' : 'latest');
  const scale = opts.quick ? 0.1 : 1;
  // The scaling programs repeat rounds until this many timers went through (measure.ts).
  if (opts.quick) process.env.BENCH_SCALING_OPS = '100000';
  // A scaling curve keeps its sizes; --quick leaves out its largest points.
  const scenarios = SCENARIOS.filter((s) => (opts.only === null || opts.only.has(s.id)) && !(opts.quick && s.scaling?.fullOnly));
  const sizeOf = (s: Scenario): number => (s.scaling ? s.fullN : Math.max(1, Math.round(s.fullN * scale)));
  const selected = (name: string): boolean => {
    const peer = PEERS.find((p) => p.name === name)!;
    return (opts.peers === null || opts.peers.has(name)) &&
      scenarios.some((s) => !s.notYet && (!peer.only || peer.only.includes(s.id)) && (!s.peers || s.peers.includes(name)));
  };
  const { peers: avail, hosts, strace, python, cloop } = detect(selected);
  const failures: string[] = opts.check ? prngCheck(python, cloop) : [];
  if (!strace) log('strace: not available; W5 poll counts read n/a');
  const repsOf = (peer: Peer, s: Scenario): number =>
    (opts.check && ((peer.runtime ?? 'node') !== 'node' || s.tool !== undefined) ? CHECK_REPS_OTHER_RUNTIMES : opts.reps);
  const onPath = (tool: string): boolean =>
    (process.env.PATH ?? '').split(path.delimiter).some((dir) => dir !== '' && fs.existsSync(path.join(dir, tool)));

  const cells: Cell[] = [];
  const plan: Array<{ s: Scenario; peer: Peer; cell: Cell; argv: string[]; fullArgv: string[]; reps: number }> = [];
  for (const s of scenarios) {
    for (const peer of PEERS) {
      if (peer.only && !peer.only.includes(s.id)) continue;
      if (s.peers && !s.peers.includes(peer.name)) continue;
      if (opts.peers && !opts.peers.has(peer.name)) continue;
      // A scenario that no peer can run yet gets one row, not one per peer.
      if (s.notYet && peer.name !== PEERS[0].name) continue;
      const cell: Cell = {
        scenario: s.id, config: s.config, peer: peer.name, runtime: runtimeOf(peer.name), baseline: baselineOf(peer.name),
        status: 'ok', samples: [],
      };
      cells.push(cell);
      const a = avail.get(peer.name)!;
      if (s.notYet) Object.assign(cell, { status: 'not yet', note: s.notYet });
      else if (peer.skips?.[s.id]) Object.assign(cell, { status: 'n/a', note: peer.skips[s.id].replace(/^n\/a: /, '') });
      else if (s.tool !== undefined && !onPath(s.tool)) Object.assign(cell, { status: 'not installed', note: `no ${s.tool} on PATH` });
      else if (a.command === undefined) {
        Object.assign(cell, { status: a.status, note: a.note });
        if (a.status === 'failed') failures.push(`${s.id} ${s.config} ${peer.name}: ${a.note}`);
      } else plan.push({ s, peer, cell, argv: a.command(s, sizeOf(s)), fullArgv: a.command(s, s.fullN), reps: repsOf(peer, s) });
    }
  }

  const total = plan.reduce((sum, j) => sum + j.reps, 0);
  const started = Date.now();
  let done = 0;
  const timeoutMs = opts.quick ? 120_000 : 600_000;
  log(`${opts.quick ? 'quick' : 'full'} run: ${plan.length} scenario × peer cells, ${opts.reps} repetitions` +
    `${plan.some((j) => j.reps !== opts.reps) ? ` (Bun and Deno peers, W7: ${CHECK_REPS_OTHER_RUNTIMES})` : ''}, ${total} runs`);
  for (const s of scenarios) {
    const jobs = plan.filter((j) => j.s === s);
    for (let rep = 0; rep < opts.reps; rep++) {
      for (const j of jobs) {
        if (j.cell.status === 'failed' || rep >= j.reps) continue;
        const t0 = Date.now();
        const r = await runOnce(j.argv, s, strace, timeoutMs);
        done++;
        const secs = ((Date.now() - t0) / 1000).toFixed(1);
        const elapsed = Math.round((Date.now() - started) / 1000);
        log(`[${String(done).padStart(String(total).length)}/${total}] ${s.id} ${s.config} · ${j.peer.name} · rep ${rep + 1}/${j.reps}: ` +
          `${r.ok ? 'ok' : 'FAILED'} in ${secs} s (${elapsed} s so far)`);
        if (r.ok) j.cell.samples.push(r.row!);
        else {
          j.cell.status = 'failed';
          j.cell.note = r.why;
          failures.push(`${s.id} ${s.config} ${j.peer.name}: ${r.why}`);
          done += j.reps - rep - 1;
        }
      }
    }
    for (const j of jobs) if (j.cell.status === 'ok') j.cell.median = medians(j.cell.samples);
  }
  for (const c of cells) {
    const r = costRatio(cells, c);
    if (r !== undefined) c.costRatio = Number(r.toPrecision(6));
  }

  const targets = evaluateTargets(TARGETS, cells);
  const version = (rt: Runtime): string | null => (hosts.get(rt)!.prefix === null ? null : hosts.get(rt)!.version ?? null);
  const machine = {
    cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, memoryGb: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`, node: process.version, bun: version('bun'), deno: version('deno'),
    python: python ? spawnSync(python, ['--version'], { encoding: 'utf8' }).stdout.trim() : null,
    cc: cloop ? spawnSync('cc', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0] : null,
  };
  const savedHosts: NonNullable<Saved['hosts']> = {};
  for (const [rt, h] of hosts) {
    if (!cells.some((c) => c.runtime === rt)) continue;
    savedHosts[rt] = {
      version: h.prefix === null ? null : h.version ?? null, entry: h.entry ?? null, notes: h.notes, probe: h.probe ?? null,
      ...(h.prefix === null ? { why: h.why } : h.probeFailed ? { why: h.probeFailed } : {}),
    };
  }
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  const date = new Date().toISOString();
  const otherRuntimeReps = opts.check ? CHECK_REPS_OTHER_RUNTIMES : opts.reps;
  const json = {
    command, date, mode: opts.quick ? 'quick' : 'full', scale, reps: opts.reps, otherRuntimeReps, machine,
    baselines: BASELINES, hosts: savedHosts, cells, targets, failures,
  };
  process.stdout.write(`\n${tables(json, targets)}`);

  // Only a full run of every scenario replaces latest.*, the figures the README quotes.
  const name = opts.quick ? 'quick' : opts.only || opts.peers ? 'partial' : 'latest';
  fs.mkdirSync(RESULTS, { recursive: true });
  fs.writeFileSync(path.join(RESULTS, `${name}.json`), JSON.stringify(json, null, 2) + '\n');
  const drawn = writeCharts(name, cells, subtitle(json));
  log(`wrote bench/results/${name}.json and ${drawn.join(', ')} in ${Math.round((Date.now() - started) / 1000)} s`);

  if (opts.check) failures.push(...(await compareWithLatest(cells, plan, strace, timeoutMs)));

  if (failures.length > 0) {
    log(`\n${failures.length} failed:\n  ${failures.join('\n  ')}`);
    process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  log(err instanceof UsageError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
