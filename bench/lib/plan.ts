/**
 * What the harness runs: the scenarios, the peers, and the targets of issue 3.
 * Each scenario configuration names the program it runs in each language; a
 * peer runs it, or says why it does not (not installed, not yet, n/a).
 */

export interface Scenario {
  /** Scenario id as the issue names it: W1, W1e, W2, ... */
  id: string;
  config: string;
  title: string;
  /** Program base names: bench/scenarios/<peer>/<ts>.ts, bench/scenarios/tornado/<py>.py, `cloop <c>`. */
  ts: string;
  py: string;
  c: string;
  /** Size at full scale (n, or the window in ms for W5); quick mode runs a tenth. */
  fullN: number;
  /** Unit of the per-operation figure. */
  unit: string;
  /** Set when no peer can run it yet. */
  notYet?: string;
  /** A program its programs run, which must be on PATH (else its rows read "not installed"): W7's wrk. */
  tool?: string;
  /** Only these peers run it (the scaling scenarios: wasm-ioloop, Node, the C loop). */
  peers?: string[];
  /** A point of a scaling curve: its size is not scaled down by --quick, and `fullOnly` ones are left out of it. */
  scaling?: { fullOnly?: boolean };
}

/** The peers of the scaling scenarios S1 and S2. */
const SCALING_PEERS = ['wasm-ioloop', 'node', 'cloop'];

/** The sizes of the scaling scenarios: pending timers. --quick runs those up to 100k. */
export const SCALING_SIZES: Array<{ config: string; n: number }> = [
  { config: '1k', n: 1_000 },
  { config: '10k', n: 10_000 },
  { config: '100k', n: 100_000 },
  { config: '1M', n: 1_000_000 },
  { config: '4M', n: 4_000_000 },
];

function scaling(id: 'S1' | 'S2'): Scenario[] {
  return SCALING_SIZES.map(({ config, n }) => ({
    id, config,
    title: id === 'S1' ? `timers at scale, ${config} pending, to fire` : `timers at scale, ${config} pending, removed`,
    ts: id === 'S1' ? 's1-fire' : 's2-cancel', py: '', c: id === 'S1' ? 's1' : 's2', fullN: n,
    unit: id === 'S1' ? 'ns/timer' : 'ns/cancel', peers: SCALING_PEERS, scaling: { fullOnly: n > 100_000 },
  }));
}

export const SCENARIOS: Scenario[] = [
  { id: 'W1', config: 'random', title: 'timers, random delays', ts: 'w1-timers', py: 'w1_timers', c: 'w1', fullN: 1_000_000, unit: 'ns/timer' },
  { id: 'W1e', config: 'equal', title: 'timers, equal delays', ts: 'w1-timers', py: 'w1_timers', c: 'w1', fullN: 1_000_000, unit: 'ns/timer' },
  { id: 'W2', config: 'churn', title: 'cancel churn', ts: 'w2-cancel', py: 'w2_cancel', c: 'w2', fullN: 1_000_000, unit: 'ns/timer' },
  { id: 'W3', config: 'chain', title: 'callbacks, chain', ts: 'w3-callbacks', py: 'w3_callbacks', c: 'w3', fullN: 1_000_000, unit: 'ns/callback' },
  { id: 'W3', config: 'batch', title: 'callbacks, batch', ts: 'w3-callbacks', py: 'w3_callbacks', c: 'w3', fullN: 1_000_000, unit: 'ns/callback' },
  { id: 'W4', config: '1pair', title: 'ping-pong, 1 pair', ts: 'w4-pingpong', py: 'w4_pingpong', c: 'w4', fullN: 200_000, unit: 'rt/s' },
  { id: 'W4', config: '100pairs', title: 'ping-pong, 100 pairs', ts: 'w4-pingpong', py: 'w4_pingpong', c: 'w4', fullN: 200_000, unit: 'rt/s' },
  { id: 'W5', config: 'idle', title: 'idle, 1 timer', ts: 'w5-idle', py: 'w5_idle', c: 'w5', fullN: 3000, unit: 'ms CPU' },
  // W6's per-operation figure is wall-clock: the median one-way latency of a message
  // from another thread (latency), wall ns per message from 4 posting workers (throughput).
  { id: 'W6', config: 'latency', title: 'wake latency, 1 poster', ts: 'w6-wake', py: '', c: '', fullN: 10_000, unit: 'ns p50 one-way' },
  { id: 'W6', config: 'throughput', title: 'messages from 4 posters', ts: 'w6-wake', py: '', c: '', fullN: 400_000, unit: 'ns/msg wall' },
  // W7's size is wrk's measured run in ms; before it come a 200 ms pre-flight and a warm-up of a third of it (at most 1 s).
  { id: 'W7', config: '1conn', title: 'HTTP keep-alive, 1 connection', ts: 'w7-http', py: 'w7_http', c: 'w7', fullN: 3000, unit: 'req/s', tool: 'wrk' },
  { id: 'W7', config: '64conns', title: 'HTTP keep-alive, 64 connections', ts: 'w7-http', py: 'w7_http', c: 'w7', fullN: 3000, unit: 'req/s', tool: 'wrk' },
  // S1 / S2: n timers pending at once (delays uniform over 0..n/1000 ms, a thousand
  // due per ms), then fired (S1: CPU ns per timer, schedule through fire) or removed
  // in a random order (S2: CPU ns per removal). bench/results/*-scaling.svg draws them.
  ...scaling('S1'),
  ...scaling('S2'),
];

export const scenarioKey = (s: { id: string; config: string }): string => `${s.id} ${s.config}`;

export type PeerKind = 'ts' | 'py' | 'c' | 'none';

/** The JavaScript runtimes the TypeScript programs run under. */
export type Runtime = 'node' | 'bun' | 'deno';

export interface Peer {
  name: string;
  label: string;
  kind: PeerKind;
  /**
   * The runtime of a 'ts' peer's programs (default node). Its ratios are to that
   * runtime's built-ins (BASELINES); the Python and C peers count as Node's, whose
   * built-ins they have always been compared with.
   */
  runtime?: Runtime;
  /** The directory under bench/scenarios/ of its programs (default: its name). */
  programs?: string;
  /** Scenario ids this peer does not run, with the reason. */
  skips?: Record<string, string>;
  /** Scenario ids this peer is listed for, when not all. */
  only?: string[];
  /** Why the peer never runs yet. */
  notYet?: string;
}

/** Node's built-ins: the baseline of the Node peers and of the targets. */
export const BASELINE = 'node';

/** The baseline peer of each runtime's ratios: its own setTimeout, setImmediate and net. */
export const BASELINES: Record<Runtime, string> = { node: 'node', bun: 'bun', deno: 'deno' };

/** What the runtimes are called in tables. */
export const RUNTIME_LABELS: Record<Runtime, string> = { node: 'Node', bun: 'Bun', deno: 'Deno' };

/** The scenarios the Bun and Deno peers run (W5 counts syscalls under strace and reads the shim's counters from src/). */
const OTHER_RUNTIMES_RUN = ['W1', 'W1e', 'W2', 'W3', 'W4'];

/** W6 compares the channel with Node's MessagePort only. */
const W6_PEERS_ONLY = "n/a: W6 compares wasm-ioloop's channel with Node's MessagePort";

export const PEERS: Peer[] = [
  { name: 'wasm-ioloop', label: 'wasm-ioloop (guest)', kind: 'ts' },
  { name: 'wasm-ioloop-blocking', label: 'wasm-ioloop (blocking, worker)', kind: 'ts', only: ['W4', 'W7'] },
  { name: 'wasm-ioloop-reuseport', label: 'wasm-ioloop (2 worker loops, SO_REUSEPORT)', kind: 'ts', only: ['W7'] },
  // The WASI build over the package's own provider, portable driver: no native code.
  // Its W4 runs over TCP loopback (the provider has no socketpair). W1 random, W3
  // and W4 only, which keeps its share of --check under 15 s (W1e's program is there).
  // The label is short enough for the chart's column of bar labels.
  {
    name: 'wasm-ioloop-wasi', label: 'wasm-ioloop (WASI; W4 on TCP)', kind: 'ts',
    only: ['W1', 'W3', 'W4'],
  },
  { name: 'node', label: 'Node built-ins', kind: 'ts' },
  {
    name: 'plain-loop', label: 'plain TS loop', kind: 'ts',
    skips: { W4: 'n/a: no poller without native code', W6: W6_PEERS_ONLY, W7: 'n/a: no poller without native code' },
  },
  { name: 'tornado', label: 'Tornado (Python)', kind: 'py', skips: { W6: W6_PEERS_ONLY } },
  { name: 'cloop', label: 'C loop (epoll)', kind: 'c', skips: { W6: W6_PEERS_ONLY } },
  // The same programs under Bun and Deno: the built-ins ones use setTimeout,
  // setImmediate and node:net, which there are the runtime's own.
  { name: 'wasm-ioloop-bun', label: 'wasm-ioloop (Bun)', kind: 'ts', runtime: 'bun', programs: 'wasm-ioloop', only: OTHER_RUNTIMES_RUN },
  { name: 'bun', label: 'Bun built-ins', kind: 'ts', runtime: 'bun', programs: 'node', only: OTHER_RUNTIMES_RUN },
  { name: 'wasm-ioloop-deno', label: 'wasm-ioloop (Deno)', kind: 'ts', runtime: 'deno', programs: 'wasm-ioloop', only: OTHER_RUNTIMES_RUN },
  { name: 'deno', label: 'Deno built-ins', kind: 'ts', runtime: 'deno', programs: 'node', only: OTHER_RUNTIMES_RUN },
];

/** The wasm-ioloop peer (guest driver) of each runtime, for the table across runtimes. */
export const LOOP_PEERS: Record<Runtime, string> = { node: 'wasm-ioloop', bun: 'wasm-ioloop-bun', deno: 'wasm-ioloop-deno' };

/** The runtime whose built-ins a peer is compared with. */
export function runtimeOf(peer: string): Runtime {
  return PEERS.find((p) => p.name === peer)?.runtime ?? 'node';
}

/** The peer a peer's ratios are to: the built-ins of its runtime. */
export function baselineOf(peer: string): string {
  return BASELINES[runtimeOf(peer)];
}

/** The figures a program reports, as the harness keeps their medians. */
export interface Figures {
  wallMs: number;
  cpuMs: number;
  nsPerOp: number;
  rssPeakMb: number;
  roundTripsPerSec?: number;
  /** W7: responses per second of wrk's run. */
  requestsPerSec?: number;
  pollSyscalls?: number;
  /** wasm-ioloop only: epoll_wait calls its native shim counted (libuv's not included). */
  shimEpollWaits?: number;
  /** S1: the resident set just before scheduling, MiB. */
  rssBeforeMb?: number;
}

/** S1: bytes the n pending timers added to the resident set, per timer. */
export function bytesPerTimer(f: Figures, n: number): number | undefined {
  if (f.rssBeforeMb === undefined || !(n > 0)) return undefined;
  return ((f.rssPeakMb - f.rssBeforeMb) * 2 ** 20) / n;
}

/** How much more a peer's cost grows from the first to the last size of a scaling
 * scenario than the C loop's (its binary heap's O(log n) and cache misses): at most 1
 * means no faster. */
function growthVsC(id: string, peer: string): Target['measure'] {
  const first = SCALING_SIZES[0]!.config;
  const last = SCALING_SIZES[SCALING_SIZES.length - 1]!.config;
  return (get) => {
    const a0 = get(id, first, peer);
    const a1 = get(id, last, peer);
    const c0 = get(id, first, 'cloop');
    const c1 = get(id, last, 'cloop');
    if (a0 === undefined || a1 === undefined) return `no ${peer} result at ${first} and ${last}`;
    if (c0 === undefined || c1 === undefined) return `no cloop result at ${first} and ${last}`;
    const ours = a1.nsPerOp / a0.nsPerOp;
    const theirs = c1.nsPerOp / c0.nsPerOp;
    return { value: ours / theirs, shown: `${ours.toPrecision(2)}× vs ${theirs.toPrecision(2)}×` };
  };
}

/** Added RSS per pending timer, ours over Node's, at one S1 size. */
function memoryVsNode(config: string): Target['measure'] {
  const n = SCALING_SIZES.find((s) => s.config === config)!.n;
  return (get) => {
    const a = get('S1', config, 'wasm-ioloop');
    const b = get('S1', config, 'node');
    if (a === undefined || b === undefined) return `no S1 ${config} result`;
    const ba = bytesPerTimer(a, n);
    const bb = bytesPerTimer(b, n);
    if (ba === undefined || bb === undefined || !(bb > 0)) return 'no figure';
    return { value: ba / bb, shown: `${Math.round(ba)} vs ${Math.round(bb)} B` };
  };
}

export type Status = 'ok' | 'failed' | 'not installed' | 'not yet' | 'n/a';

export interface Cell {
  scenario: string;
  config: string;
  peer: string;
  /** The runtime of the peer and the peer its ratio is to (absent in results written before there was more than one). */
  runtime?: Runtime;
  baseline?: string;
  status: Status;
  note?: string;
  /** The result line of each repetition. */
  samples: Array<Record<string, unknown>>;
  median?: Figures;
  /** cost() of the median over that of the baseline's median, when both ran. */
  costRatio?: number;
}

/**
 * The figure each scenario compares, as a cost (lower is better), so that one
 * ratio to the baseline reads the same way everywhere: CPU time for timers,
 * callbacks and idling, wall time per round trip for ping-pong, per request for HTTP.
 */
export function cost(scenario: string, f: Figures): number {
  if (scenario === 'W4') return f.roundTripsPerSec ? 1 / f.roundTripsPerSec : NaN;
  if (scenario === 'W7') return f.requestsPerSec ? 1 / f.requestsPerSec : NaN;
  return f.cpuMs;
}

export interface Target {
  text: string;
  /** Measured value shown (a ratio or an absolute figure), or why there is none. */
  measure(get: (scenario: string, config: string, peer: string) => Figures | undefined): { value: number; shown: string } | string;
  met(value: number): boolean;
  /** Where the chart marks this target on wasm-ioloop's bar: the chart group and the cost ratio to Node. */
  mark?: { group: string; ratio: number };
}

const times = (v: number): string => `${v.toPrecision(2)}×`;

function ratio(
  scenario: string,
  config: string,
  peer: string,
  vs: string,
  field: (f: Figures) => number | undefined,
): Target['measure'] {
  return (get) => {
    const a = get(scenario, config, peer);
    const b = get(scenario, config, vs);
    if (a === undefined) return `no ${peer} result`;
    if (b === undefined) return `no ${vs} result`;
    const fa = field(a);
    const fb = field(b);
    if (fa === undefined || fb === undefined || !(fb > 0)) return 'no figure';
    const value = fa / fb;
    return { value, shown: times(value) };
  };
}

const cpu = (f: Figures): number => f.cpuMs;

export const TARGETS: Target[] = [
  { text: 'W1 random, CPU ≤ 0.5× Node setTimeout', measure: ratio('W1', 'random', 'wasm-ioloop', 'node', cpu), met: (v) => v <= 0.5, mark: { group: 'W1 random', ratio: 0.5 } },
  { text: 'W1 random, CPU ≤ 1.3× the C loop', measure: ratio('W1', 'random', 'wasm-ioloop', 'cloop', cpu), met: (v) => v <= 1.3 },
  { text: 'W1 equal, CPU ≤ 1.0× Node setTimeout', measure: ratio('W1e', 'equal', 'wasm-ioloop', 'node', cpu), met: (v) => v <= 1.0, mark: { group: 'W1e equal', ratio: 1 } },
  { text: 'W2, ns per pair ≤ 0.3× Node', measure: ratio('W2', 'churn', 'wasm-ioloop', 'node', cpu), met: (v) => v <= 0.3, mark: { group: 'W2 churn', ratio: 0.3 } },
  { text: 'W2, peak RSS ≤ Node', measure: ratio('W2', 'churn', 'wasm-ioloop', 'node', (f) => f.rssPeakMb), met: (v) => v <= 1.0,
    mark: { group: 'W2 churn rss', ratio: 1 },
  },
  { text: 'W3 chain ≤ 0.1× setImmediate', measure: ratio('W3', 'chain', 'wasm-ioloop', 'node', cpu), met: (v) => v <= 0.1, mark: { group: 'W3 chain', ratio: 0.1 } },
  { text: 'W3 batch ≤ 0.1× setImmediate', measure: ratio('W3', 'batch', 'wasm-ioloop', 'node', cpu), met: (v) => v <= 0.1, mark: { group: 'W3 batch', ratio: 0.1 } },
  {
    text: 'W4 1 pair, guest driver ≥ 1.5× Node net round trips/s',
    measure: ratio('W4', '1pair', 'wasm-ioloop', 'node', (f) => f.roundTripsPerSec), met: (v) => v >= 1.5,
    mark: { group: 'W4 1pair', ratio: 1 / 1.5 },
  },
  {
    text: 'W4 100 pairs, guest driver ≥ 1.5× Node net round trips/s',
    measure: ratio('W4', '100pairs', 'wasm-ioloop', 'node', (f) => f.roundTripsPerSec), met: (v) => v >= 1.5,
    mark: { group: 'W4 100pairs', ratio: 1 / 1.5 },
  },
  {
    text: 'W4 1 pair, blocking driver in a worker ≥ 0.8× the C loop round trips/s',
    measure: ratio('W4', '1pair', 'wasm-ioloop-blocking', 'cloop', (f) => f.roundTripsPerSec), met: (v) => v >= 0.8,
  },
  {
    text: 'W4 100 pairs, blocking driver in a worker ≥ 0.8× the C loop round trips/s',
    measure: ratio('W4', '100pairs', 'wasm-ioloop-blocking', 'cloop', (f) => f.roundTripsPerSec), met: (v) => v >= 0.8,
  },
  {
    text: 'W5, ≤ 10 poll syscalls in 3 s',
    measure: (get) => {
      const f = get('W5', 'idle', 'wasm-ioloop');
      if (f === undefined) return 'no wasm-ioloop result';
      if (f.pollSyscalls === undefined) {
        // Without strace, the shim's own count is a lower bound: libuv's waits are not in it.
        if (f.shimEpollWaits === undefined) return 'n/a (no strace)';
        return { value: f.shimEpollWaits, shown: `${f.shimEpollWaits} (shim only, no strace)` };
      }
      return { value: f.pollSyscalls, shown: String(f.pollSyscalls) };
    },
    met: (v) => v <= 10,
  },
  {
    text: 'W5, ≤ 20 ms CPU in 3 s',
    measure: (get) => {
      const f = get('W5', 'idle', 'wasm-ioloop');
      return f === undefined ? 'no wasm-ioloop result' : { value: f.cpuMs, shown: `${f.cpuMs.toFixed(1)} ms` };
    },
    met: (v) => v <= 20,
  },
  {
    text: 'W6, wake latency p50 ≤ 20 µs',
    measure: (get) => {
      const f = get('W6', 'latency', 'wasm-ioloop');
      return f === undefined ? 'no wasm-ioloop result' : { value: f.nsPerOp / 1000, shown: `${(f.nsPerOp / 1000).toPrecision(3)} µs` };
    },
    met: (v) => v <= 20,
  },
  {
    text: "W6, wake latency p50 ≤ 0.5× Node MessagePort's",
    measure: ratio('W6', 'latency', 'wasm-ioloop', 'node', (f) => f.nsPerOp), met: (v) => v <= 0.5,
  },
  {
    // nsPerOp is wall ns per message, so Node's over ours is our throughput over Node's.
    text: "W6, messages/s from 4 posters ≥ 3× Node MessagePort's",
    measure: ratio('W6', 'throughput', 'node', 'wasm-ioloop', (f) => f.nsPerOp), met: (v) => v >= 3,
  },
  {
    text: 'W7 1 connection, 1 loop (guest) ≥ 1.5× Node http requests/s',
    measure: ratio('W7', '1conn', 'wasm-ioloop', 'node', (f) => f.requestsPerSec), met: (v) => v >= 1.5,
    mark: { group: 'W7 1conn', ratio: 1 / 1.5 },
  },
  {
    text: 'W7 64 connections, 1 loop (guest) ≥ 1.5× Node http requests/s',
    measure: ratio('W7', '64conns', 'wasm-ioloop', 'node', (f) => f.requestsPerSec), met: (v) => v >= 1.5,
    mark: { group: 'W7 64conns', ratio: 1 / 1.5 },
  },
  { text: 'S1, ns per timer grows from 1k to 4M pending no faster than the C heap\'s', measure: growthVsC('S1', 'wasm-ioloop'), met: (v) => v <= 1 },
  { text: 'S2, ns per removal grows from 1k to 4M pending no faster than the C heap\'s', measure: growthVsC('S2', 'wasm-ioloop'), met: (v) => v <= 1 },
  { text: 'S1 1M pending, RSS per pending timer ≤ Node\'s', measure: memoryVsNode('1M'), met: (v) => v <= 1 },
  { text: 'S1 4M pending, RSS per pending timer ≤ Node\'s', measure: memoryVsNode('4M'), met: (v) => v <= 1 },
];
