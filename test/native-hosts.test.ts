// The native shim in hosts that implement N-API without libuv: Bun (whose uv_*
// functions exist but end the process) and Deno (which exports only part of
// libuv). The shim links no libuv symbol, so it loads there; the poller, the sys
// calls, the poll set and the watcher work; guestOpen says ENOSYS where libuv is
// missing. Each host runs the same script in a child process, Node too as the
// baseline. The host binaries are devDependencies; a missing one fails the test
// with the command that installs it.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..');
const ADDON = path.join(ROOT, 'build', 'Release', 'wasm_ioloop.node');

interface Host {
  name: string;
  /** The binary: node_modules first, then the environment variable. */
  candidates: Array<string | undefined>;
  install: string;
  args: (script: string) => string[];
}

const HOSTS: Host[] = [
  {
    name: 'bun',
    candidates: [path.join(ROOT, 'node_modules', '@oven', 'bun-linux-x64', 'bin', 'bun'), process.env.WASM_IOLOOP_BUN],
    install: '`npm i --no-save @oven/bun-linux-x64@1.4.4` (or set WASM_IOLOOP_BUN to a bun 1.4.4 binary)',
    args: (script) => [script],
  },
  {
    name: 'deno',
    candidates: [path.join(ROOT, 'node_modules', '@deno', 'linux-x64-glibc', 'deno'), process.env.WASM_IOLOOP_DENO],
    install: '`npm i --no-save @deno/linux-x64-glibc@2.9.6` (or set WASM_IOLOOP_DENO to a deno 2.9.6 binary)',
    // Loading an addon needs --allow-ffi; the script also reads /proc and the addon.
    args: (script) => ['run', '--allow-ffi', '--allow-read', '--allow-env', script],
  },
];

function binary(host: Host): string {
  for (const candidate of host.candidates) {
    if (!candidate || !fs.existsSync(candidate)) continue;
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
    } catch {
      fs.chmodSync(candidate, 0o755); // npm may unpack it without the execute bit
    }
    return candidate;
  }
  throw new Error(`${host.name} is not installed (looked in ${host.candidates.filter(Boolean).join(', ')}): install it with ${host.install}`);
}

let dir = '';
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-ioloop-hosts-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs `body` as an ES module in `host`, with `n` the shim and `host` its name. */
function run(command: string, args: (script: string) => string[], hostName: string, body: string): { status: number | null; signal: string | null; stdout: string; stderr: string; ms: number } {
  const script = path.join(dir, `${hostName}-${Math.random().toString(36).slice(2)}.mjs`);
  fs.writeFileSync(
    script,
    `import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const n = require(${JSON.stringify(ADDON)});
const host = ${JSON.stringify(hostName)};
const now = () => performance.now();
${body}
`,
  );
  const start = Date.now();
  const r = spawnSync(command, args(script), {
    encoding: 'utf8',
    timeout: 20000,
    env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1', DENO_NO_PROMPT: '1' },
  });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - start };
}

/** Everything but the guest driver, each result printed as one JSON line; then every
 * watcher is left open but stopped, and the host must exit on its own. */
const SMOKE = `
const L = n.layout;
const out = {};
const buf = new ArrayBuffer(64);
const rec = (count) => [...new Uint32Array(buf, 0, count * 2)];

// epoll poller and eventfd waker
const ep = n.epollCreate();
const [r, w] = n.pipe();
const efd = n.eventfdOpen();
out.epollCtl = [n.epollCtl(ep, L.CTL_ADD, r, L.EV_READ, 7), n.epollCtl(ep, L.CTL_ADD, efd, L.EV_READ, L.WAKER_TOKEN)];
out.write = n.write(w, new Uint8Array([1, 2]));
out.wake = n.wake(efd);
out.epollWait = [n.epollWait(ep, buf, 0, 8, 1000), rec(2)];
out.read = n.read(r, new Uint8Array(8));
out.consume = n.consume(efd);
out.epollWaitAfter = n.epollWait(ep, buf, 0, 8, 0);
const sp = n.socketpair();
out.socketpair = [n.write(sp[0], new Uint8Array([9])), n.read(sp[1], new Uint8Array(4))];

// poll set
const ps = n.pollCreate();
out.pollCtl = [n.pollCtl(ps, L.CTL_ADD, r, L.EV_READ, 11), n.pollCtl(ps, L.CTL_ADD, r, L.EV_READ, 11)];
n.write(w, new Uint8Array([3]));
out.pollWait = [n.pollWait(ps, buf, 0, 8, 1000), rec(1)];
n.read(r, new Uint8Array(8));

// guest driver: only where libuv is missing altogether (Bun's uv_* end the process)
if (host === 'deno') {
  try { n.guestOpen(ep, () => {}); out.guestOpen = 'opened'; } catch (e) { out.guestOpen = [e.code, e.message]; }
}

// watchers: one turn for readiness, one for the timeout, no spin on a ready fd
const turn = (fd, kind, arm) => new Promise((resolve) => {
  const t0 = now();
  const watcher = n.watcherOpen(fd, kind, (reason) => { n.watcherStop(watcher); resolve([reason, now() - t0, watcher]); });
  n.watcherStart(watcher);
  n.watcherArm(watcher, arm);
});
const keep = [];
let [reason, ms, watcher] = await turn(ep, 'epoll', 20);
out.epollTimer = [reason, ms >= 20];
keep.push(watcher);
setTimeout(() => n.write(w, new Uint8Array([4])), 10);
[reason, ms, watcher] = await turn(ps, 'poll', -1);
out.pollIo = reason;
keep.push(watcher);
[reason, ms, watcher] = await turn(ep, 'epoll', -1);
out.epollIo = reason;
keep.push(watcher);
const turns = [];
const spin = n.watcherOpen(ps, 'poll', (reason) => turns.push(reason));
n.watcherStart(spin);
n.watcherArm(spin, -1);
await new Promise((resolve) => setTimeout(resolve, 100));
out.noSpin = turns;
n.watcherStop(spin);
keep.push(spin);
globalThis.keep = keep;

for (const fd of [r, w, efd, ep, ...sp]) n.close(fd);
n.close(ps);
out.closeAgain = n.close(ps);
console.log(JSON.stringify(out));
`;

const KEEP_ALIVE = `
const ep = n.epollCreate();
const w = n.watcherOpen(ep, 'epoll', () => {});
n.watcherStart(w);
const t0 = now();
const timer = setTimeout(() => {
  console.log('alive after', now() - t0 >= 290 ? '300ms' : 'less');
  n.watcherStop(w);
}, 300);
// Only the started watcher may keep the host alive.
if (typeof timer === 'object' && timer.unref) timer.unref(); else if (globalThis.Deno) Deno.unrefTimer(timer);
`;

const expected = (hostName: string) => ({
  epollCtl: [0, 0],
  write: 2,
  wake: 0,
  epollWait: [2, expect.arrayContaining([7, 1, 0xffffffff, 1])],
  read: 2,
  consume: 1,
  epollWaitAfter: 0,
  socketpair: [1, 1],
  pollCtl: [0, -17],
  pollWait: [1, [11, 1]],
  ...(hostName === 'deno'
    ? { guestOpen: ['ENOSYS', expect.stringMatching(/^guestOpen: this host does not provide uv_\w+ \(/)] }
    : {}),
  epollTimer: [2, true],
  pollIo: 1,
  epollIo: 1,
  noSpin: [1],
  closeAgain: -9,
});

describe('the shim in other hosts', () => {
  test('the_shim_references_no_libuv_symbol', () => {
    expect(undefinedSymbols(fs.readFileSync(ADDON)).filter((s) => s.startsWith('uv_'))).toEqual([]);
    // napi_get_uv_event_loop is N-API, but not every host has it: found at run time too.
    expect(undefinedSymbols(fs.readFileSync(ADDON))).not.toContain('napi_get_uv_event_loop');
    expect(undefinedSymbols(fs.readFileSync(ADDON))).toContain('napi_create_threadsafe_function');
  });

  test('node_baseline_runs_the_smoke_script', () => {
    const r = run(process.execPath, (script) => [script], 'node', SMOKE);
    expect(r).toMatchObject({ status: 0, signal: null, stderr: '' });
    expect(JSON.parse(r.stdout)).toEqual(expected('node'));
  });

  describe.each(HOSTS)('$name', (host) => {
    test('poller_sys_poll_set_and_watcher_work_and_the_host_exits_with_stopped_watchers_open', () => {
      const r = run(binary(host), host.args, host.name, SMOKE);
      expect({ status: r.status, signal: r.signal, stderr: r.stderr }).toEqual({ status: 0, signal: null, stderr: '' });
      expect(JSON.parse(r.stdout)).toEqual(expected(host.name));
      expect(r.ms).toBeLessThan(15000);
    }, 30000);

    test('a_started_watcher_keeps_the_host_alive_until_stopped', () => {
      const r = run(binary(host), host.args, host.name, KEEP_ALIVE);
      expect({ status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 0, signal: null, stdout: 'alive after 300ms\n', stderr: '' });
    }, 30000);
  });
});

/** The undefined dynamic symbols of an ELF64 little-endian shared object (what
 * `nm -D --undefined-only` lists), read from its .dynsym section. */
function undefinedSymbols(elf: Buffer): string[] {
  expect(elf.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
  expect(elf[4]).toBe(2); // ELFCLASS64
  expect(elf[5]).toBe(1); // little-endian
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a);
  const shnum = elf.readUInt16LE(0x3c);
  const section = (i: number) => {
    const at = shoff + i * shentsize;
    return { type: elf.readUInt32LE(at + 4), offset: Number(elf.readBigUInt64LE(at + 0x18)), size: Number(elf.readBigUInt64LE(at + 0x20)), link: elf.readUInt32LE(at + 0x28), entsize: Number(elf.readBigUInt64LE(at + 0x38)) };
  };
  const SHT_DYNSYM = 11;
  const out: string[] = [];
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    if (s.type !== SHT_DYNSYM) continue;
    const strtab = section(s.link);
    for (let at = s.offset + s.entsize; at < s.offset + s.size; at += s.entsize) {
      const name = elf.readUInt32LE(at);
      const shndx = elf.readUInt16LE(at + 6);
      if (shndx !== 0) continue; // defined here
      const start = strtab.offset + name;
      out.push(elf.subarray(start, elf.indexOf(0, start)).toString('latin1'));
    }
  }
  expect(out.length).toBeGreaterThan(0);
  return out;
}
