// Misuse of the native shim throws a TypeError (or an Error for a closed guest)
// that names the function, the argument and the rule, and never takes the
// process down. The whole table runs in one child process, which must then
// exit normally; each row is its own test here.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const ADDON = path.join(__dirname, '..', 'build', 'Release', 'wasm_ioloop.node');

/** [call as evaluated in the child, error name, message pattern]. The child has
 * `n` (the shim), `ep` (an epoll fd), `r`/`w` (a pipe), `buf` (64-byte
 * ArrayBuffer), `g` (an open guest) and `closed` (a closed guest). */
const table: Array<[string, 'TypeError' | 'Error', RegExp]> = [
  ["n.epollCtl('3', 1, r, 1, 0)", 'TypeError', /^epollCtl: epfd must be an integer >= 0 \(got string\)$/],
  ['n.epollCtl(3.5, 1, r, 1, 0)', 'TypeError', /^epollCtl: epfd must be an integer >= 0 \(got 3.5\)$/],
  ['n.epollCtl(-1, 1, r, 1, 0)', 'TypeError', /^epollCtl: epfd must be an integer >= 0 \(got -1\)$/],
  ['n.epollCtl(3n, 1, r, 1, 0)', 'TypeError', /epfd must be an integer >= 0 \(got bigint\)/],
  ['n.epollCtl(NaN, 1, r, 1, 0)', 'TypeError', /epfd must be an integer >= 0 \(got NaN\)/],
  ['n.epollCtl(2 ** 31, 1, r, 1, 0)', 'TypeError', /epfd must be an integer >= 0/],
  ['n.epollCtl()', 'TypeError', /^epollCtl: epfd must be an integer >= 0 \(got undefined\)$/],
  ['n.epollCtl(ep)', 'TypeError', /^epollCtl: op must be CTL_ADD \(1\), CTL_DEL \(2\) or CTL_MOD \(3\) \(got undefined\)$/],
  ['n.epollCtl(ep, 4, r, 1, 0)', 'TypeError', /op must be CTL_ADD/],
  ['n.epollCtl(ep, 1, null, 1, 0)', 'TypeError', /^epollCtl: fd must be an integer >= 0 \(got null\)$/],
  ['n.epollCtl(ep, 1, r, 0x80000001, 0)', 'TypeError', /^epollCtl: events must be an integer made of EV_READ, EV_WRITE and EV_ERROR bits/],
  ['n.epollCtl(ep, 1, r, 2, 0)', 'TypeError', /events must be an integer made of EV_READ, EV_WRITE and EV_ERROR bits \(got 2\)/],
  ['n.epollCtl(ep, 1, r, 1)', 'TypeError', /^epollCtl: token must be an integer in \[0, 2\*\*32 - 1\] \(got undefined\)$/],
  ['n.epollCtl(ep, 1, r, 1, -1)', 'TypeError', /token must be an integer in \[0, 2\*\*32 - 1\]/],
  ['n.epollCtl(ep, 1, r, 1, 2 ** 32)', 'TypeError', /token must be an integer in \[0, 2\*\*32 - 1\]/],
  ['n.epollWait(ep, new Uint8Array(64), 0, 1, 0)', 'TypeError', /^epollWait: buffer must be an ArrayBuffer \(got object\)$/],
  ['n.epollWait(ep, new SharedArrayBuffer(64), 0, 1, 0)', 'TypeError', /^epollWait: buffer must be an ArrayBuffer/],
  ['n.epollWait(ep, undefined, 0, 1, 0)', 'TypeError', /buffer must be an ArrayBuffer \(got undefined\)/],
  ['n.epollWait(ep, buf, 0.5, 1, 0)', 'TypeError', /^epollWait: byteOffset must be an integer >= 0 \(got 0.5\)$/],
  ['n.epollWait(ep, buf, 0, 1.5, 0)', 'TypeError', /^epollWait: maxEvents must be an integer >= 1 \(got 1.5\)$/],
  ['n.epollWait(ep, buf, 0, 1, NaN)', 'TypeError', /^epollWait: timeoutMs must be a number \(< 0 waits forever\) \(got NaN\)$/],
  ["n.epollWait(ep, buf, 0, 1, '5')", 'TypeError', /timeoutMs must be a number/],
  ['n.epollWait(ep, buf, 60, 1, 0)', 'TypeError', /^epollWait: byteOffset \+ maxEvents \* 8 must be <= buffer.byteLength \(got byteOffset 60, maxEvents 1, byteLength 64\)$/],
  ["n.wake('x')", 'TypeError', /^wake: fd must be an integer >= 0 \(got string\)$/],
  ['n.consume(null)', 'TypeError', /^consume: fd must be an integer >= 0 \(got null\)$/],
  ['n.close(1.25)', 'TypeError', /^close: fd must be an integer >= 0 \(got 1.25\)$/],
  ['n.close(0.1)', 'TypeError', /^close: fd must be an integer >= 0 \(got 0.1\)$/],
  ['n.close(-Infinity)', 'TypeError', /^close: fd must be an integer >= 0 \(got -Infinity\)$/],
  ['n.close({})', 'TypeError', /^close: fd must be an integer >= 0 \(got object\)$/],
  ["n.read(r, 'abc')", 'TypeError', /^read: view must be an ArrayBufferView \(TypedArray, DataView or Buffer\) \(got string\)$/],
  ['n.read(r, new ArrayBuffer(4))', 'TypeError', /^read: view must be an ArrayBufferView/],
  ['n.read(r)', 'TypeError', /^read: view must be an ArrayBufferView .*\(got undefined\)$/],
  ['n.read(r, new Uint8Array(0))', 'TypeError', /^read: view must have byteLength > 0/],
  ['n.write(w, [1, 2])', 'TypeError', /^write: view must be an ArrayBufferView/],
  ["n.write('w', new Uint8Array(1))", 'TypeError', /^write: fd must be an integer >= 0 \(got string\)$/],
  ['n.listenTcp(1, 0, 1, false)', 'TypeError', /^listenTcp: host must be a string \(got 1\)$/],
  ["n.listenTcp('', 0, 1, false)", 'TypeError', /^listenTcp: host must be a non-empty string of at most 1024 bytes \(got 0\)$/],
  ["n.listenTcp('x'.repeat(2000), 0, 1, false)", 'TypeError', /host must be a non-empty string of at most 1024 bytes \(got 2000\)/],
  ["n.listenTcp('127.0.0.1\\0evil', 0, 1, false)", 'TypeError', /^listenTcp: host must not contain NUL characters$/],
  ["n.listenTcp('127.0.0.1', 65536, 1, false)", 'TypeError', /^listenTcp: port must be an integer in \[0, 65535\] \(got 65536\)$/],
  ["n.listenTcp('127.0.0.1', -1, 1, false)", 'TypeError', /port must be an integer in \[0, 65535\]/],
  ["n.listenTcp('127.0.0.1', 0, 1.5, false)", 'TypeError', /^listenTcp: backlog must be an integer >= 0 \(got 1.5\)$/],
  ["n.listenTcp('127.0.0.1', 0, 1, 'yes')", 'TypeError', /^listenTcp: reusePort must be a boolean \(got string\)$/],
  ["n.listenTcp('127.0.0.1', 0, 1)", 'TypeError', /reusePort must be a boolean \(got undefined\)/],
  ["n.connectTcp('127.0.0.1', 0)", 'TypeError', /^connectTcp: port must be an integer in \[1, 65535\] \(got 0\)$/],
  ['n.connectTcp(null, 80)', 'TypeError', /^connectTcp: host must be a string \(got null\)$/],
  ['n.localPort(-3)', 'TypeError', /^localPort: fd must be an integer >= 0 \(got -3\)$/],
  ["n.accept('3')", 'TypeError', /^accept: fd must be an integer >= 0 \(got string\)$/],
  ["n.guestOpen(ep, 'onTurn')", 'TypeError', /^guestOpen: onTurn must be a function \(got string\)$/],
  ['n.guestOpen(ep)', 'TypeError', /^guestOpen: onTurn must be a function \(got undefined\)$/],
  ['n.guestOpen(undefined, () => {})', 'TypeError', /^guestOpen: epfd must be an integer >= 0 \(got undefined\)$/],
  ['n.guestStart({})', 'TypeError', /^guestStart: g must be an object returned by guestOpen \(got object\)$/],
  ['n.guestStart()', 'TypeError', /^guestStart: g must be an object returned by guestOpen \(got undefined\)$/],
  ['n.guestStart(Object.create(g))', 'TypeError', /^guestStart: g must be an object returned by guestOpen/],
  ['n.guestArm(g, NaN)', 'TypeError', /^guestArm: timeoutMs must be a number \(< 0 stops the timer\) \(got NaN\)$/],
  ['n.guestArm(g)', 'TypeError', /^guestArm: timeoutMs must be a number/],
  ['n.guestStop(42)', 'TypeError', /^guestStop: g must be an object returned by guestOpen \(got 42\)$/],
  ["n.guestClose('g')", 'TypeError', /^guestClose: g must be an object returned by guestOpen \(got string\)$/],
  ['n.guestStart(closed)', 'Error', /^guestStart: guest driver is closed$/],
  ['n.guestArm(closed, 5)', 'Error', /^guestArm: guest driver is closed$/],
  ['n.guestStop(closed)', 'Error', /^guestStop: guest driver is closed$/],
];

type Outcome = { name?: string; message?: string; code?: string; returned?: unknown };

function runTable(): { outcomes: Outcome[]; status: number | null; signal: string | null; stderr: string; fdsLeaked: number } {
  const script = `
    const fs = require('fs');
    const fdsAtStart = fs.readdirSync('/proc/self/fd').length;
    const n = require(${JSON.stringify(ADDON)});
    const ep = n.epollCreate();
    const [r, w] = n.pipe();
    const buf = new ArrayBuffer(64);
    const g = n.guestOpen(ep, () => {});
    const closedEp = n.epollCreate();
    const closed = n.guestOpen(closedEp, () => {});
    n.guestClose(closed);
    const outcomes = [];
    for (const call of JSON.parse(process.argv[1])) {
      try {
        outcomes.push({ returned: eval(call) });
      } catch (e) {
        outcomes.push({ name: e.name, message: e.message, code: e.code });
      }
    }
    // Everything still works after the misuse.
    if (n.write(w, Buffer.from('ok')) !== 2) throw new Error('write after misuse');
    n.guestClose(g);
    for (const fd of [r, w, ep, closedEp]) n.close(fd);
    setImmediate(() => {
      const fdsLeaked = fs.readdirSync('/proc/self/fd').length - fdsAtStart;
      process.stdout.write(JSON.stringify({ outcomes, fdsLeaked }));
    });
  `;
  const calls = JSON.stringify(table.map(([call]) => call));
  const r = spawnSync(process.execPath, ['-e', script, calls], { encoding: 'utf8', timeout: 20000 });
  let parsed: { outcomes: Outcome[]; fdsLeaked: number } = { outcomes: [], fdsLeaked: -1 };
  try {
    parsed = JSON.parse(r.stdout);
  } catch {
    // Reported by the process test below.
  }
  return { ...parsed, status: r.status, signal: r.signal, stderr: r.stderr };
}

describe('native shim misuse', () => {
  let result: ReturnType<typeof runTable>;
  beforeAll(() => {
    result = runTable();
  });

  test('the_child_survives_every_misuse_and_exits_normally', () => {
    expect({ status: result.status, signal: result.signal, stderr: result.stderr }).toEqual({ status: 0, signal: null, stderr: '' });
    expect(result.outcomes).toHaveLength(table.length);
    expect(result.fdsLeaked).toBe(0);
  });

  test.each(table.map(([call, name, message], i) => [call, name, message, i] as const))('%s throws a %s', (_call, name, message, i) => {
    const outcome = result.outcomes[i];
    expect(outcome).toBeDefined();
    expect(outcome.returned).toBeUndefined();
    expect(outcome.name).toBe(name);
    expect(outcome.message).toMatch(message);
  });

  test('type_errors_carry_a_node_style_code', () => {
    const codes = new Set(result.outcomes.filter((o) => o.name === 'TypeError').map((o) => o.code));
    expect([...codes].sort()).toEqual(['ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_VALUE']);
    expect(result.outcomes.filter((o) => o.name === 'Error').map((o) => o.code)).toEqual([
      'ERR_GUEST_CLOSED',
      'ERR_GUEST_CLOSED',
      'ERR_GUEST_CLOSED',
    ]);
  });
});
