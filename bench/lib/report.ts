/**
 * The harness's outputs: the results table (Markdown, so that it pastes into
 * the README as it is), the targets table, the SVG chart, and for the scaling
 * scenarios (S1, S2) their own tables and line chart.
 */
import {
  baselineOf, BASELINES, bytesPerTimer, Cell, cost, Figures, LOOP_PEERS, PEERS, Runtime, RUNTIME_LABELS, runtimeOf, SCALING_SIZES, SCENARIOS,
  scenarioKey, Target, TARGETS,
} from './plan';

/** Three significant figures, thousands grouped. */
export function fmt(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString('en-US');
  return Number(v.toPrecision(3)).toString();
}

const peerLabel = (name: string): string => PEERS.find((p) => p.name === name)?.label ?? name;

/** The per-operation figure of a cell, with its unit. */
function perOp(scenario: string, unit: string, f: Figures): string {
  if (scenario === 'W4') return `${fmt(f.roundTripsPerSec)} rt/s`;
  if (scenario === 'W7') return `${fmt(f.requestsPerSec)} req/s`;
  if (scenario === 'W5') return f.pollSyscalls === undefined ? 'polls n/a' : `${f.pollSyscalls} polls`;
  return `${fmt(f.nsPerOp)} ${unit}`;
}

export type Lookup = (scenario: string, config: string, peer: string) => Figures | undefined;

export function lookup(cells: Cell[]): Lookup {
  return (scenario, config, peer) =>
    cells.find((c) => c.scenario === scenario && c.config === config && c.peer === peer && c.status === 'ok')?.median;
}

/** What the tables say about each runtime under its block's heading: version, where 'wasm-ioloop' came from. */
export type HostNotes = Partial<Record<Runtime, string>>;

const RUNTIMES: Runtime[] = ['node', 'bun', 'deno'];

/** The runtime of a cell (written into cells since there is more than one; older results are Node's). */
const runtimeOfCell = (c: Cell): Runtime => c.runtime ?? runtimeOf(c.peer);
const baselineOfCell = (c: Cell): string => c.baseline ?? baselineOf(c.peer);

/** A cell's cost over that of its runtime's built-ins, when both ran. */
export function costRatio(cells: Cell[], c: Cell): number | undefined {
  if (c.status !== 'ok' || c.median === undefined) return undefined;
  const base = lookup(cells)(c.scenario, c.config, baselineOfCell(c));
  if (base === undefined) return undefined;
  const r = cost(c.scenario, c.median) / cost(c.scenario, base);
  return Number.isFinite(r) ? r : undefined;
}

/**
 * One block per runtime that has cells (Node's holds the Python and C peers too),
 * each a table with one row per scenario configuration and peer, whose last
 * column is the cost relative to that runtime's built-ins, named in its header.
 */
export function resultsTable(cells: Cell[], hosts: HostNotes = {}): string {
  const blocks: string[] = [];
  for (const rt of RUNTIMES) {
    const mine = cells.filter((c) => runtimeOfCell(c) === rt && c.scenario !== 'S1' && c.scenario !== 'S2');
    if (mine.length === 0) continue;
    const baseline = peerLabel(mine.map(baselineOfCell)[0]);
    const lines = [
      `${RUNTIME_LABELS[rt]}${hosts[rt] ? ` (${hosts[rt]})` : ''}: cost relative to ${baseline}`,
      '',
      `| scenario | peer | wall ms | CPU ms | per op | peak RSS MB | cost vs ${baseline} |`,
      `|---|---|--:|--:|--:|--:|--:|`,
    ];
    for (const s of SCENARIOS) {
      // The scaling curves have tables of their own (scalingTable, memoryTable).
      if (s.scaling) continue;
      for (const c of mine.filter((x) => x.scenario === s.id && x.config === s.config)) {
        const name = `${s.id} ${s.title}`;
        if (c.status !== 'ok' || c.median === undefined) {
          const why = c.note ? `${c.status}: ${c.note}` : c.status;
          lines.push(`| ${name} | ${peerLabel(c.peer)} | ${why.replace(/\|/g, '\\|').replace(/\n/g, ' ')} | | | | |`);
          continue;
        }
        const f = c.median;
        const r = costRatio(cells, c);
        lines.push(
          `| ${name} | ${peerLabel(c.peer)} | ${fmt(f.wallMs)} | ${fmt(f.cpuMs)} | ${perOp(s.id, s.unit, f)} | ` +
            `${fmt(f.rssPeakMb)} | ${r === undefined ? '–' : `${fmt(r)}×`} |`,
        );
      }
    }
    blocks.push(lines.join('\n'));
  }
  return blocks.join('\n\n');
}

/**
 * wasm-ioloop against the built-ins of each runtime side by side: per scenario
 * configuration, the per-operation figure of both and the cost ratio. Empty when
 * only Node's peers ran.
 */
export function runtimesTable(cells: Cell[]): string {
  if (!cells.some((c) => runtimeOfCell(c) !== 'node')) return '';
  const shown = RUNTIMES.filter((rt) => cells.some((c) => c.peer === LOOP_PEERS[rt] || c.peer === BASELINES[rt]));
  const head = ['scenario', ...shown.flatMap((rt) => [`${RUNTIME_LABELS[rt]}: wasm-ioloop`, `${RUNTIME_LABELS[rt]} built-ins`, 'cost ratio'])];
  const lines = [
    'wasm-ioloop against the built-ins of the runtime it runs in (cost ratio < 1: wasm-ioloop is cheaper)',
    '',
    `| ${head.join(' | ')} |`,
    `|---|${shown.map(() => '--:|--:|--:|').join('')}`,
  ];
  const show = (c: Cell | undefined, s: { id: string; unit: string }): string => {
    if (c === undefined) return '';
    if (c.status !== 'ok' || c.median === undefined) return c.status;
    return perOp(s.id, s.unit, c.median);
  };
  for (const s of SCENARIOS) {
    if (s.notYet || s.id === 'W5' || s.scaling) continue;
    const at = (peer: string): Cell | undefined => cells.find((c) => c.scenario === s.id && c.config === s.config && c.peer === peer);
    const row: string[] = [];
    let any = false;
    for (const rt of shown) {
      const loop = at(LOOP_PEERS[rt]);
      const base = at(BASELINES[rt]);
      any ||= loop !== undefined || base !== undefined;
      const r = loop === undefined ? undefined : costRatio(cells, loop);
      row.push(show(loop, s), show(base, s), r === undefined ? '–' : `${fmt(r)}×`);
    }
    if (any) lines.push(`| ${s.id} ${s.title} | ${row.join(' | ')} |`);
  }
  return lines.join('\n');
}

export interface TargetResult {
  target: string;
  measured: string;
  value?: number;
  met: boolean | null;
}

export function evaluateTargets(targets: Target[], cells: Cell[]): TargetResult[] {
  const get = lookup(cells);
  return targets.map((t) => {
    const m = t.measure(get);
    if (typeof m === 'string') return { target: t.text, measured: m, met: null };
    return { target: t.text, measured: m.shown, value: m.value, met: t.met(m.value) };
  });
}

export function targetsTable(results: TargetResult[]): string {
  const lines = ['| target | measured | met |', '|---|--:|:-:|'];
  for (const r of results) lines.push(`| ${r.target} | ${r.measured} | ${r.met === null ? '–' : r.met ? 'yes' : 'no'} |`);
  return lines.join('\n');
}

// ---- the chart ----

const COLORS: Record<string, string> = {
  'wasm-ioloop': '#6d28d9',
  'wasm-ioloop-blocking': '#a78bfa',
  'wasm-ioloop-reuseport': '#c4b5fd',
  'wasm-ioloop-wasi': '#854d0e',
  node: '#15803d',
  'plain-loop': '#d97706',
  tornado: '#2563eb',
  cloop: '#525252',
  'wasm-ioloop-bun': '#be185d',
  bun: '#f9a8d4',
  'wasm-ioloop-deno': '#0e7490',
  deno: '#67e8f9',
};

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

interface Bar {
  peer: string;
  ratio?: number;
  label: string;
}

interface Group {
  /** Matches Target.mark.group. */
  key: string;
  title: string;
  bars: Bar[];
}

/** The chart's groups: one per scenario configuration, plus W2's peak RSS. */
function chartGroups(cells: Cell[]): Group[] {
  const get = lookup(cells);
  const groups: Group[] = [];
  for (const s of SCENARIOS) {
    const here = cells.filter((c) => c.scenario === s.id && c.config === s.config);
    if (here.length === 0 || s.notYet || s.scaling) continue;
    const bar = (c: Cell, figure: (f: Figures) => number, label: (f: Figures) => string): Bar => {
      if (c.status !== 'ok' || c.median === undefined) return { peer: c.peer, label: c.status };
      const base = get(s.id, s.config, baselineOfCell(c));
      const r = base ? figure(c.median) / figure(base) : undefined;
      // The 1× line is each runtime's own built-ins; a bar of Bun or Deno names it.
      const rt = runtimeOfCell(c);
      const vs = rt === 'node' ? '' : ` ${RUNTIME_LABELS[rt]}`;
      return { peer: c.peer, ratio: r, label: `${r === undefined ? '' : `${fmt(r)}×${vs} · `}${label(c.median)}` };
    };
    const what = s.id === 'W4' ? 'wall time per round trip' : s.id === 'W7' ? 'wall time per request' : 'CPU time';
    groups.push({
      key: scenarioKey(s),
      title: `${s.id} ${s.title} (${what})`,
      bars: here.map((c) => bar(c, (f) => cost(s.id, f), (f) => (s.id === 'W5' ? `${fmt(f.cpuMs)} ms CPU` : perOp(s.id, s.unit, f)))),
    });
    if (s.id === 'W2') {
      groups.push({ key: `${scenarioKey(s)} rss`, title: 'W2 cancel churn (peak RSS)', bars: here.map((c) => bar(c, (f) => f.rssPeakMb, (f) => `${fmt(f.rssPeakMb)} MB`)) });
    }
  }
  return groups;
}

/**
 * Grouped horizontal bars of each scenario's cost relative to the built-ins of the
 * peer's runtime (Node's for the Node, Python and C peers, Bun's and Deno's for
 * theirs), on a log scale: a bar to the left of the 1× line is cheaper than those
 * built-ins, to the right dearer. Each bar is labelled with its ratio and figure.
 */
export function chartSvg(cells: Cell[], subtitle: string): string {
  const groups = chartGroups(cells);
  const ratios = groups.flatMap((g) => g.bars.map((b) => b.ratio)).filter((r): r is number => r !== undefined && r > 0);
  const lo = Math.pow(10, Math.floor(Math.log10(Math.min(0.5, ...ratios))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(2, ...ratios))));
  const W = 960;
  const left = 190;
  const right = 40;
  const plotW = W - left - right;
  const x = (r: number): number => left + ((Math.log10(r) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotW;
  const barH = 15;
  const gap = 3;
  // The legend: one entry per peer, then the target mark, wrapped to the width.
  const legend: string[] = [];
  let lx = 12;
  let ly = 54;
  type Swatch = (x: number, y: number) => string;
  const entries: Array<[string, Swatch]> = PEERS.filter((p) => cells.some((c) => c.peer === p.name)).map((p) => [
    p.label,
    (sx, sy) => `<rect x="${sx}" y="${sy}" width="12" height="12" fill="${COLORS[p.name]}"/>`,
  ]);
  entries.push(["wasm-ioloop's target", (sx, sy) => `<line x1="${sx + 6}" y1="${sy - 1}" x2="${sx + 6}" y2="${sy + 13}" class="target"/>`]);
  for (const [label, swatch] of entries) {
    const width = 30 + label.length * 6.5;
    if (lx + width > W - 12) {
      lx = 12;
      ly += 18;
    }
    legend.push(`${swatch(lx, ly)}<text x="${lx + 16}" y="${ly + 10}" class="peer">${esc(label)}</text>`);
    lx += width;
  }
  const legendH = ly - 54 + 24;
  let y = 64 + legendH;
  const out: string[] = [];

  for (const g of groups) {
    out.push(`<text x="12" y="${y + 11}" class="group">${esc(g.title)}</text>`);
    y += 18;
    for (const b of g.bars) {
      const label = PEERS.find((p) => p.name === b.peer)?.label ?? b.peer;
      out.push(`<text x="${left - 8}" y="${y + barH - 3}" class="peer" text-anchor="end">${esc(label)}</text>`);
      if (b.ratio !== undefined && b.ratio > 0) {
        const x0 = x(1);
        const x1 = x(Math.min(hi, Math.max(lo, b.ratio)));
        const [bx, bw] = x1 >= x0 ? [x0, Math.max(1, x1 - x0)] : [x1, x0 - x1];
        out.push(`<rect x="${bx.toFixed(1)}" y="${y}" width="${bw.toFixed(1)}" height="${barH}" fill="${COLORS[b.peer] ?? '#888'}"/>`);
        // Labels sit right of the bar or of the 1× line, whichever is further right, clear of the peer names.
        const tx = Math.max(x0, x1) + 4;
        out.push(`<text x="${tx.toFixed(1)}" y="${y + barH - 3}" class="fig">${esc(b.label)}</text>`);
      } else {
        out.push(`<text x="${(x(1) + 4).toFixed(1)}" y="${y + barH - 3}" class="missing">${esc(b.label)}</text>`);
      }
      const mark = b.peer === 'wasm-ioloop' ? TARGETS.find((t) => t.mark?.group === g.key)?.mark : undefined;
      if (mark !== undefined) {
        const mx = x(mark.ratio).toFixed(1);
        out.push(`<line x1="${mx}" y1="${y - 2}" x2="${mx}" y2="${y + barH + 2}" class="target"/>`);
      }
      y += barH + gap;
    }
    y += 10;
  }

  const top = 64 + legendH;
  const axis: string[] = [];
  for (let e = Math.log10(lo); e <= Math.log10(hi) + 1e-9; e++) {
    for (const m of [1, 3]) {
      const r = m * Math.pow(10, e);
      if (r > hi * 1.0001) continue;
      const xx = x(r).toFixed(1);
      axis.push(`<line x1="${xx}" y1="${top - 4}" x2="${xx}" y2="${y}" class="${r === 1 ? 'one' : 'grid'}"/>`);
      axis.push(`<text x="${xx}" y="${y + 14}" class="tick" text-anchor="middle">${fmt(r)}×</text>`);
    }
  }
  const H = y + 26;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, -apple-system, Segoe UI, sans-serif">`,
    `<style>.title{font-size:16px;font-weight:600}.sub{font-size:12px;fill:#555}.group{font-size:13px;font-weight:600}` +
      `.peer{font-size:12px}.fig{font-size:11px;fill:#222}.missing{font-size:11px;fill:#999;font-style:italic}` +
      `.tick{font-size:11px;fill:#555}.grid{stroke:#e5e5e5}.one{stroke:#15803d;stroke-width:1.5}.target{stroke:#dc2626;stroke-width:2.5}</style>`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="12" y="22" class="title">wasm-ioloop benchmarks: cost relative to the built-ins of each runtime (log scale, left of the green line is cheaper)</text>`,
    `<text x="12" y="40" class="sub">${esc(subtitle)}</text>`,
    ...legend,
    ...axis,
    ...out,
    `</svg>`,
    '',
  ].join('\n');
}


// ---- the scaling curves (S1, S2) ----

const SCALING_IDS = ['S1', 'S2'] as const;
const SCALING_TITLES: Record<(typeof SCALING_IDS)[number], string> = {
  S1: 'S1: CPU ns per timer, n pending, schedule through fire',
  S2: 'S2: CPU ns per removal, n pending, removed in random order',
};
const SCALING_PEERS = ['wasm-ioloop', 'node', 'cloop'];

/** True if any cell of S1 or S2 has a result. */
export function hasScaling(cells: Cell[]): boolean {
  return cells.some((c) => (c.scenario === 'S1' || c.scenario === 'S2') && c.status === 'ok');
}

/**
 * One row per size, the per-operation figure of each peer in S1 and in S2, and a
 * last row with each curve's growth from its first size to its last.
 */
export function scalingTable(cells: Cell[]): string {
  const get = lookup(cells);
  const cols = SCALING_IDS.flatMap((id) => SCALING_PEERS.map((peer) => ({ id, peer })));
  const head = ['pending', ...cols.map(({ id, peer }) => `${id} ${peerLabel(peer)}`)];
  const lines = [
    'Timers at scale: S1 CPU ns per timer (schedule through fire), S2 CPU ns per removal (random order)',
    '',
    `| ${head.join(' | ')} |`,
    `|--:|${cols.map(() => '--:|').join('')}`,
  ];
  for (const { config } of SCALING_SIZES) {
    const row = cols.map(({ id, peer }) => {
      const f = get(id, config, peer);
      return f === undefined ? '–' : fmt(f.nsPerOp);
    });
    lines.push(`| ${config} | ${row.join(' | ')} |`);
  }
  const first = SCALING_SIZES[0]!.config;
  const growth = cols.map(({ id, peer }) => {
    let last: Figures | undefined;
    let lastConfig = '';
    for (const { config } of SCALING_SIZES) {
      const f = get(id, config, peer);
      if (f !== undefined) {
        last = f;
        lastConfig = config;
      }
    }
    const f0 = get(id, first, peer);
    return f0 === undefined || last === undefined || lastConfig === first ? '–' : `${fmt(last.nsPerOp / f0.nsPerOp)}× (to ${lastConfig})`;
  });
  lines.push(`| growth from ${first} | ${growth.join(' | ')} |`);
  return lines.join('\n');
}

/** S1's memory at each size: peak RSS, RSS before scheduling, and the bytes added per pending timer. */
export function memoryTable(cells: Cell[]): string {
  const get = lookup(cells);
  const lines = [
    'Memory of S1: peak RSS, RSS just before scheduling, and what the pending timers added, per timer',
    '',
    '| pending | peer | peak RSS MB | RSS before MB | added B per timer |',
    '|--:|---|--:|--:|--:|',
  ];
  for (const { config, n } of SCALING_SIZES) {
    if (n < 1_000_000) continue;
    for (const peer of SCALING_PEERS) {
      const f = get('S1', config, peer);
      if (f === undefined) continue;
      lines.push(`| ${config} | ${peerLabel(peer)} | ${fmt(f.rssPeakMb)} | ${fmt(f.rssBeforeMb)} | ${fmt(bytesPerTimer(f, n))} |`);
    }
  }
  return lines.length > 4 ? lines.join('\n') : '';
}

/**
 * The scaling curves as a log-log line chart, S1 and S2 side by side: per-operation
 * CPU ns against pending timers, one line per peer, each point labelled.
 */
export function scalingSvg(cells: Cell[], subtitle: string): string {
  const get = lookup(cells);
  const W = 960;
  const panelW = 440;
  const panelH = 300;
  const top = 70;
  const left0 = 60;
  const gapX = 40;
  const nMin = SCALING_SIZES[0]!.n;
  const nMax = SCALING_SIZES[SCALING_SIZES.length - 1]!.n;
  const values = SCALING_IDS.flatMap((id) =>
    SCALING_PEERS.flatMap((peer) => SCALING_SIZES.map(({ config }) => get(id, config, peer)?.nsPerOp).filter((v): v is number => v !== undefined && v > 0)));
  const yLo = Math.pow(10, Math.floor(Math.log10(Math.min(10, ...values))));
  const yHi = Math.pow(10, Math.ceil(Math.log10(Math.max(1000, ...values))));
  const out: string[] = [];
  SCALING_IDS.forEach((id, p) => {
    const x0 = left0 + p * (panelW + gapX);
    const x = (n: number): number => x0 + ((Math.log10(n) - Math.log10(nMin)) / (Math.log10(nMax) - Math.log10(nMin))) * panelW;
    const y = (v: number): number => top + panelH - ((Math.log10(v) - Math.log10(yLo)) / (Math.log10(yHi) - Math.log10(yLo))) * panelH;
    out.push(`<text x="${x0}" y="${top - 12}" class="group">${esc(SCALING_TITLES[id])}</text>`);
    for (let e = Math.log10(yLo); e <= Math.log10(yHi) + 1e-9; e++) {
      for (const m of [1, 3]) {
        const v = m * Math.pow(10, e);
        if (v > yHi * 1.0001) continue;
        const yy = y(v).toFixed(1);
        out.push(`<line x1="${x0}" y1="${yy}" x2="${x0 + panelW}" y2="${yy}" class="grid"/>`);
        out.push(`<text x="${x0 - 6}" y="${(Number(yy) + 4).toFixed(1)}" class="tick" text-anchor="end">${fmt(v)}</text>`);
      }
    }
    for (const { config, n } of SCALING_SIZES) {
      const xx = x(n).toFixed(1);
      out.push(`<line x1="${xx}" y1="${top}" x2="${xx}" y2="${top + panelH}" class="grid"/>`);
      out.push(`<text x="${xx}" y="${top + panelH + 16}" class="tick" text-anchor="middle">${config}</text>`);
    }
    out.push(`<text x="${x0 + panelW / 2}" y="${top + panelH + 34}" class="tick" text-anchor="middle">pending timers (log)</text>`);
    for (const peer of SCALING_PEERS) {
      const pts = SCALING_SIZES.map(({ config, n }) => ({ n, f: get(id, config, peer) })).filter((q) => q.f !== undefined && q.f.nsPerOp > 0);
      if (pts.length === 0) continue;
      const color = COLORS[peer] ?? '#888';
      out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map((q) => `${x(q.n).toFixed(1)},${y(q.f!.nsPerOp).toFixed(1)}`).join(' ')}"/>`);
      for (const q of pts) {
        const cx = x(q.n);
        const cy = y(q.f!.nsPerOp);
        out.push(`<circle cx="${cx.toFixed(1)}" cy="${cy.toFixed(1)}" r="3" fill="${color}"/>`);
        out.push(`<text x="${(cx + 4).toFixed(1)}" y="${(cy - 5).toFixed(1)}" class="fig" fill="${color}">${fmt(q.f!.nsPerOp)}</text>`);
      }
    }
  });
  const legendY = top + panelH + 56;
  let lx = left0;
  const legend: string[] = [];
  for (const peer of SCALING_PEERS) {
    if (!cells.some((c) => c.peer === peer && (c.scenario === 'S1' || c.scenario === 'S2'))) continue;
    const label = peerLabel(peer);
    legend.push(`<line x1="${lx}" y1="${legendY - 4}" x2="${lx + 18}" y2="${legendY - 4}" stroke="${COLORS[peer] ?? '#888'}" stroke-width="3"/>`);
    legend.push(`<text x="${lx + 24}" y="${legendY}" class="peer">${esc(label)}</text>`);
    lx += 40 + label.length * 6.5;
  }
  const H = legendY + 20;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, -apple-system, Segoe UI, sans-serif">`,
    `<style>.title{font-size:16px;font-weight:600}.sub{font-size:12px;fill:#555}.group{font-size:13px;font-weight:600}` +
      `.peer{font-size:12px}.fig{font-size:10px}.tick{font-size:11px;fill:#555}.grid{stroke:#e5e5e5}</style>`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="12" y="22" class="title">Timers at scale: CPU ns per operation against pending timers (log-log; flatter is better)</text>`,
    `<text x="12" y="40" class="sub">${esc(subtitle)}</text>`,
    ...out,
    ...legend,
    `</svg>`,
    '',
  ].join('\n');
}

export { scenarioKey };
