// The core's handler table, ready queue and poller lifecycle, over a fake epoll
// written in JS: a Map of fd -> registration, and epoll_wait writing records the
// test chose into the core's memory.

import fc from 'fast-check';
import { coreLayout, coreModule, instantiateCore, type CoreExports, type CoreImports, type CoreLayout } from '../src/core';

const EBADF = 9;
const ENOENT = 2;
const EEXIST = 17;
const ENOMEM = 12;
const ENOSPC = 28;
const EINTR = 4;
const EPERM = 1;

interface Registration { events: number; token: number }
interface CtlCall { op: number; fd: number; events: number; token: number }

/** An epoll in JS. `open` holds the fds that exist; a test queues ready records. */
class FakeEpoll {
  readonly epfd = 3;
  readonly open = new Set<number>();
  readonly regs = new Map<number, Registration>();
  readonly ctlCalls: CtlCall[] = [];
  /** Records the next epoll_wait writes (token as unsigned, events). */
  queue: Array<[number, number]> = [];
  /** If set, the next epoll_ctl returns this instead of acting. */
  failNextCtl: number | null = null;
  /** If set, the next epoll_wait returns this. */
  failNextWait: number | null = null;
  /** If set, epoll_wait claims this many records whatever it wrote. */
  claim: number | null = null;
  waitMax: number[] = [];
  closed: number[] = [];
  createResult: number | null = null;
  core: CoreExports | null = null;

  imports(): CoreImports {
    return {
      epoll_create: () => this.createResult ?? this.epfd,
      epoll_ctl: (epfd, op, fd, events, token) => this.ctl(epfd, op, fd, events, token),
      epoll_wait: (epfd, ptr, max, timeoutMs) => this.wait(epfd, ptr, max, timeoutMs),
      fd_close: (fd) => {
        this.closed.push(fd);
        return 0;
      },
    };
  }

  private ctl(epfd: number, op: number, fd: number, events: number, token: number): number {
    this.ctlCalls.push({ op, fd, events, token: token >>> 0 });
    if (this.failNextCtl !== null) {
      const r = this.failNextCtl;
      this.failNextCtl = null;
      return r;
    }
    if (epfd !== this.epfd) return -EBADF;
    if (!this.open.has(fd)) return -EBADF;
    switch (op) {
      case 1:
        if (this.regs.has(fd)) return -EEXIST;
        this.regs.set(fd, { events, token: token >>> 0 });
        return 0;
      case 2:
        if (!this.regs.delete(fd)) return -ENOENT;
        return 0;
      case 3:
        if (!this.regs.has(fd)) return -ENOENT;
        this.regs.set(fd, { events, token: token >>> 0 });
        return 0;
      default:
        return -22;
    }
  }

  private wait(epfd: number, ptr: number, max: number, _timeoutMs: number): number {
    this.waitMax.push(max);
    if (this.failNextWait !== null) {
      const r = this.failNextWait;
      this.failNextWait = null;
      return r;
    }
    if (epfd !== this.epfd) return -EBADF;
    // Re-derived on every call: memory.grow detaches the previous buffer.
    const view = new DataView(this.core!.memory.buffer);
    const n = Math.min(max, this.queue.length);
    for (let i = 0; i < n; i++) {
      const [token, events] = this.queue[i];
      view.setUint32(ptr + i * 8, token, true);
      view.setUint32(ptr + i * 8 + 4, events, true);
    }
    this.queue = this.queue.slice(n);
    return this.claim ?? n;
  }

  /** The token the core registered fd under. */
  token(fd: number): number {
    const reg = this.regs.get(fd);
    if (!reg) throw new Error(`fd ${fd} is not registered`);
    return reg.token;
  }
}

function setup(): { core: CoreExports; ep: FakeEpoll; L: CoreLayout } {
  const ep = new FakeEpoll();
  for (let fd = 4; fd < 64; fd++) ep.open.add(fd);
  const core = instantiateCore(ep.imports());
  ep.core = core;
  expect(core.loop_init()).toBe(0);
  return { core, ep, L: coreLayout(core) };
}

/** Drains event_next into a list. */
function drain(core: CoreExports): number[] {
  const out: number[] = [];
  for (let e; (e = core.event_next()) !== -1; ) out.push(e);
  return out;
}

describe('core module', () => {
  test('imports nothing but the four ioloop functions', () => {
    const imports = WebAssembly.Module.imports(coreModule());
    expect(imports.map((i) => `${i.module}.${i.name}:${i.kind}`).sort()).toEqual([
      'ioloop.epoll_create:function',
      'ioloop.epoll_ctl:function',
      'ioloop.epoll_wait:function',
      'ioloop.fd_close:function',
    ]);
  });

  test('exports every function of the contract and the layout constants', () => {
    const names = WebAssembly.Module.exports(coreModule()).map((e) => e.name);
    for (const fn of [
      'loop_init', 'loop_fd', 'loop_close', 'timer_start', 'timer_stop', 'timer_count',
      'timer_next_deadline', 'timers_collect', 'timer_next_due', 'handler_add', 'handler_update',
      'handler_remove', 'handler_slot', 'handler_count', 'waker_add', 'poll', 'event_next',
      'iteration_begin', 'poll_timeout', 'stat_iterations', 'stat_timers_fired', 'stat_events', 'memory',
    ]) {
      expect(names).toContain(fn);
    }
    const { L } = setup();
    expect(L).toEqual({
      EV_NONE: 0, EV_READ: 1, EV_WRITE: 4, EV_ERROR: 0x18,
      EVENT_SIZE: 8, EVENT_TOKEN_OFFSET: 0, EVENT_EVENTS_OFFSET: 4,
      EVENT_SLOT_SHIFT: 8, EVENT_BITS_MASK: 0xff, EVENT_NONE_LEFT: -1, EVENT_WAKER: -2,
      HANDLER_SLOT_BITS: 20, WAKER_TOKEN: 0xffffffff,
      CTL_ADD: 1, CTL_DEL: 2, CTL_MOD: 3,
      TIMER_SLOT_BITS: 24, TIMER_SLOTS: 1 << 24,
      MAX_POLL_TIMEOUT: 3600, TURN_IO: 1, TURN_TIMER: 2, READY_CAPACITY: 1024,
      ERRNO_ENOENT: 2, ERRNO_EINTR: 4, ERRNO_EBADF: 9, ERRNO_EAGAIN: 11, ERRNO_ENOMEM: 12,
      ERRNO_EEXIST: 17, ERRNO_EINVAL: 22, ERRNO_ENOSPC: 28, ERRNO_EPIPE: 32, ERRNO_ENOSYS: 38,
    });
  });

  test('coreModule names the missing file and the build command', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const fs = require('fs') as typeof import('fs');
    const original = fs.readFileSync;
    // Only the core's file is missing: jest reads sources through the same fs.
    const spy = jest.spyOn(fs, 'readFileSync').mockImplementation(((file: unknown, ...rest: unknown[]) => {
      if (typeof file === 'string' && file.endsWith('core.wasm')) {
        throw Object.assign(new Error(`ENOENT: no such file or directory, open '${file}'`), { code: 'ENOENT' });
      }
      return (original as (...a: unknown[]) => unknown)(file, ...rest);
    }) as typeof fs.readFileSync);
    try {
      jest.isolateModules(() => {
        // A fresh copy of the module, whose cache is empty, loaded while fs is mocked.
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const fresh = require('../src/core') as typeof import('../src/core');
        expect(() => fresh.coreModule()).toThrow(/wasm[/\\]core\.wasm is missing; run `npm run build:wasm`/);
      });
    } finally {
      spy.mockRestore();
    }
  });
});

describe('poller lifecycle', () => {
  test('loop_init keeps the epoll fd and loop_close closes it exactly once', () => {
    const ep = new FakeEpoll();
    const core = instantiateCore(ep.imports());
    expect(core.loop_fd()).toBe(-1);
    expect(core.loop_close()).toBe(0);
    expect(ep.closed).toEqual([]);
    expect(core.loop_init()).toBe(0);
    expect(core.loop_fd()).toBe(3);
    expect(core.loop_init()).toBe(0); // already open: nothing happens
    expect(core.loop_close()).toBe(0);
    expect(core.loop_close()).toBe(0);
    expect(ep.closed).toEqual([3]);
    expect(core.loop_fd()).toBe(-1);
  });

  test('loop_init returns the errno of epoll_create and keeps no fd', () => {
    const ep = new FakeEpoll();
    ep.createResult = -24;
    const core = instantiateCore(ep.imports());
    expect(core.loop_init()).toBe(-24);
    expect(core.loop_fd()).toBe(-1);
    expect(core.loop_close()).toBe(0);
    expect(ep.closed).toEqual([]);
  });

  test('loop_close reports the errno of fd_close and still forgets the fd', () => {
    const ep = new FakeEpoll();
    const imports = ep.imports();
    const core = instantiateCore({ ...imports, fd_close: () => -EINTR });
    ep.core = core;
    expect(core.loop_init()).toBe(0);
    expect(core.loop_close()).toBe(-EINTR);
    expect(core.loop_fd()).toBe(-1);
    expect(core.loop_close()).toBe(0);
  });

  test('loop_close drops ready records not yet read', () => {
    const { core, ep } = setup();
    core.handler_add(5, 1);
    ep.queue.push([ep.token(5), 1]);
    expect(core.poll(0)).toBe(1);
    expect(core.loop_close()).toBe(0);
    expect(core.event_next()).toBe(-1);
  });
});

describe('handler table', () => {
  test('handler_add registers events | EV_ERROR under slot | generation << 20 and returns the slot', () => {
    const { core, ep, L } = setup();
    expect(core.handler_add(5, L.EV_READ)).toBe(0);
    expect(core.handler_add(6, L.EV_WRITE)).toBe(1);
    expect(ep.regs.get(5)).toEqual({ events: L.EV_READ | L.EV_ERROR, token: 0 });
    expect(ep.regs.get(6)).toEqual({ events: L.EV_WRITE | L.EV_ERROR, token: 1 });
    expect(core.handler_slot(5)).toBe(0);
    expect(core.handler_slot(6)).toBe(1);
    expect(core.handler_slot(7)).toBe(-1);
    expect(core.handler_slot(-1)).toBe(-1);
    expect(core.handler_count()).toBe(2);
    // A freed slot is reused with the next generation.
    expect(core.handler_remove(5)).toBe(0);
    expect(core.handler_add(7, L.EV_READ)).toBe(0);
    expect(ep.token(7)).toBe(0 | (1 << L.HANDLER_SLOT_BITS));
  });

  test('handler_add refuses a negative fd with EBADF without asking the kernel', () => {
    const { core, ep } = setup();
    expect(core.handler_add(-1, 1)).toBe(-EBADF);
    expect(core.handler_add(-2147483648, 1)).toBe(-EBADF);
    expect(ep.ctlCalls).toEqual([]);
    expect(core.handler_count()).toBe(0);
  });

  test('handler_add of a registered fd returns EEXIST and changes nothing', () => {
    const { core, ep } = setup();
    expect(core.handler_add(5, 1)).toBe(0);
    expect(core.handler_add(5, 4)).toBe(-EEXIST);
    expect(ep.regs.get(5)!.events).toBe(1 | 0x18);
    expect(core.handler_count()).toBe(1);
  });

  test('a kernel error from handler_add is returned and the table is rolled back', () => {
    const { core, ep } = setup();
    expect(core.handler_add(5, 1)).toBe(0);
    // A closed fd: the kernel says EBADF.
    expect(core.handler_add(99, 1)).toBe(-EBADF);
    ep.failNextCtl = -EPERM;
    expect(core.handler_add(6, 1)).toBe(-EPERM);
    expect(core.handler_slot(99)).toBe(-1);
    expect(core.handler_slot(6)).toBe(-1);
    expect(core.handler_count()).toBe(1);
    // The slot the failed adds would have had is the next one handed out, same token.
    expect(core.handler_add(6, 1)).toBe(1);
    expect(ep.token(6)).toBe(1);
    // Also for a slot from the free list.
    expect(core.handler_remove(5)).toBe(0);
    ep.failNextCtl = -EPERM;
    expect(core.handler_add(7, 1)).toBe(-EPERM);
    expect(core.handler_add(7, 1)).toBe(0);
    expect(ep.token(7)).toBe(1 << 20);
  });

  test('handler_add returns ENOMEM when the fd table cannot grow, and undoes the kernel registration', () => {
    const { core, ep } = setup();
    // fd 2^31 - 1 needs an 8 GiB table; the kernel (here) accepts it first.
    const huge = 0x7fffffff;
    ep.open.add(huge);
    expect(core.handler_add(huge, 1)).toBe(-ENOMEM);
    expect(ep.regs.has(huge)).toBe(false);
    expect(ep.ctlCalls.map((c) => c.op)).toEqual([1, 2]);
    expect(core.handler_slot(huge)).toBe(-1);
    expect(core.handler_count()).toBe(0);
    // And the core goes on working.
    expect(core.handler_add(5, 1)).toBe(0);
    expect(core.handler_count()).toBe(1);
  });

  test('handler_update re-registers with EV_ERROR, ENOENT for unknown fds, kernel errors leave it unchanged', () => {
    const { core, ep, L } = setup();
    expect(core.handler_update(5, 1)).toBe(-ENOENT);
    expect(core.handler_update(-1, 1)).toBe(-ENOENT);
    expect(core.handler_update(1 << 30, 1)).toBe(-ENOENT);
    const slot = core.handler_add(5, L.EV_READ);
    expect(core.handler_update(5, L.EV_WRITE)).toBe(0);
    expect(ep.regs.get(5)).toEqual({ events: L.EV_WRITE | L.EV_ERROR, token: ep.token(5) });
    ep.failNextCtl = -EPERM;
    expect(core.handler_update(5, L.EV_READ)).toBe(-EPERM);
    // Still masked to WRITE: the failed update did not change the interest.
    ep.queue.push([ep.token(5), L.EV_READ | L.EV_WRITE]);
    core.poll(0);
    expect(drain(core)).toEqual([slot * 256 + L.EV_WRITE]);
  });

  test('handler_remove returns the slot, ENOENT for unknown fds, and ignores the kernel error of DEL', () => {
    const { core, ep } = setup();
    expect(core.handler_remove(5)).toBe(-ENOENT);
    expect(core.handler_remove(-3)).toBe(-ENOENT);
    core.handler_add(5, 1);
    core.handler_add(6, 1);
    expect(core.handler_remove(6)).toBe(1);
    expect(ep.regs.has(6)).toBe(false);
    expect(core.handler_remove(6)).toBe(-ENOENT);
    // The fd was closed first: the kernel has already forgotten it.
    ep.open.delete(5);
    ep.regs.delete(5);
    expect(core.handler_remove(5)).toBe(0);
    expect(core.handler_count()).toBe(0);
    expect(core.handler_slot(5)).toBe(-1);
  });

  test('no token equals WAKER_TOKEN, across generation wrap-around', () => {
    const { core, ep, L } = setup();
    const seen = new Set<number>();
    for (let i = 0; i < 5000; i++) {
      // Plain checks in the loop: jest's expect is slow enough to dominate it.
      if (core.handler_add(5, 1) !== 0) throw new Error(`handler_add failed at ${i}`);
      const token = ep.token(5);
      if (token === L.WAKER_TOKEN || (token & 0xfffff) !== 0) throw new Error(`bad token ${token}`);
      seen.add(token >>> 20);
      if (core.handler_remove(5) !== 0) throw new Error(`handler_remove failed at ${i}`);
    }
    // The 12-bit generation took every value.
    expect(seen.size).toBe(4096);
  });

  test('the table holds 2^20 - 1 handlers; one more returns ENOSPC and the table keeps working', () => {
    const ep = new FakeEpoll();
    // A fake whose fds all exist, with the least bookkeeping.
    let last = 0;
    const core = instantiateCore({
      epoll_create: () => 3,
      epoll_ctl: (_e, op, _fd, _ev, token) => {
        if (op === 1) last = token >>> 0;
        return 0;
      },
      epoll_wait: () => 0,
      fd_close: () => 0,
    });
    ep.core = core;
    core.loop_init();
    const max = (1 << 20) - 1;
    for (let fd = 0; fd < max; fd++) {
      if (core.handler_add(fd, 1) !== fd) throw new Error(`handler_add(${fd}) failed`);
    }
    expect(last).toBe(max - 1);
    expect(core.handler_count()).toBe(max);
    expect(core.handler_add(max, 1)).toBe(-ENOSPC);
    expect(core.handler_count()).toBe(max);
    expect(core.handler_remove(12345)).toBe(12345);
    expect(core.handler_add(max, 1)).toBe(12345);
    expect(core.handler_slot(max)).toBe(12345);
  });
});

describe('ready queue', () => {
  test('event_next masks events to the interest plus EV_ERROR and drops records left empty', () => {
    const { core, ep, L } = setup();
    const r = core.handler_add(5, L.EV_READ);
    const w = core.handler_add(6, L.EV_WRITE);
    ep.queue.push(
      [ep.token(5), L.EV_READ | L.EV_WRITE], // WRITE not asked for
      [ep.token(6), L.EV_READ], // nothing asked for is left: dropped
      [ep.token(6), 0x10], // EPOLLHUP is part of EV_ERROR
      [ep.token(5), 0x08 | 0x2000], // EPOLLERR, plus a bit nobody asked for
    );
    expect(core.poll(0)).toBe(4);
    expect(drain(core)).toEqual([r * 256 + L.EV_READ, w * 256 + 0x10, r * 256 + 0x08]);
    expect(core.stat_events()).toBe(3);
  });

  test('events of a removed fd are dropped, even if the fd is added again before they are read', () => {
    const { core, ep, L } = setup();
    const a = core.handler_add(5, L.EV_READ);
    core.handler_add(6, L.EV_READ);
    const oldToken = ep.token(5);
    ep.queue.push([oldToken, L.EV_READ], [ep.token(6), L.EV_READ], [oldToken, L.EV_READ]);
    expect(core.poll(0)).toBe(3);
    expect(core.handler_remove(5)).toBe(a);
    // Re-added: the same slot comes back with a new generation.
    expect(core.handler_add(5, L.EV_READ)).toBe(a);
    expect(ep.token(5)).not.toBe(oldToken);
    expect(drain(core)).toEqual([1 * 256 + L.EV_READ]);
    // Records under the new token are delivered.
    ep.queue.push([ep.token(5), L.EV_READ]);
    core.poll(0);
    expect(drain(core)).toEqual([a * 256 + L.EV_READ]);
  });

  test('events of a slot reused by another fd are not given to the new fd', () => {
    const { core, ep, L } = setup();
    const a = core.handler_add(5, L.EV_READ | L.EV_WRITE);
    const oldToken = ep.token(5);
    ep.queue.push([oldToken, L.EV_WRITE]);
    core.poll(0);
    core.handler_remove(5);
    expect(core.handler_add(9, L.EV_WRITE)).toBe(a);
    expect(core.event_next()).toBe(-1);
  });

  test('records with tokens never handed out are dropped', () => {
    const { core, ep } = setup();
    core.handler_add(5, 1);
    ep.queue.push([7, 1], [0xfffff, 1], [0xfffffffe, 1], [1 << 20, 1]);
    expect(core.poll(0)).toBe(4);
    expect(drain(core)).toEqual([]);
  });

  test('waker records give -2 wherever they are, and are not counted as events', () => {
    const { core, ep, L } = setup();
    expect(core.waker_add(8)).toBe(0);
    expect(ep.regs.get(8)).toEqual({ events: L.EV_READ, token: L.WAKER_TOKEN });
    expect(core.handler_slot(8)).toBe(-1);
    expect(core.waker_add(8)).toBe(-EEXIST);
    expect(core.waker_add(-1)).toBe(-EBADF);
    const s = core.handler_add(5, L.EV_READ);
    ep.queue.push([L.WAKER_TOKEN, L.EV_READ], [ep.token(5), L.EV_READ], [L.WAKER_TOKEN, L.EV_READ]);
    core.poll(0);
    expect(drain(core)).toEqual([-2, s * 256 + 1, -2]);
    expect(core.stat_events()).toBe(1);
  });

  test('poll asks for at most READY_CAPACITY records; the rest come with the next poll', () => {
    const { core, ep, L } = setup();
    const s = core.handler_add(5, L.EV_READ);
    for (let i = 0; i < 2500; i++) ep.queue.push([ep.token(5), L.EV_READ]);
    expect(core.poll(0)).toBe(L.READY_CAPACITY);
    expect(ep.waitMax).toEqual([1024]);
    expect(drain(core).length).toBe(1024);
    expect(core.poll(0)).toBe(1024);
    expect(drain(core).length).toBe(1024);
    expect(core.poll(0)).toBe(452);
    const last = drain(core);
    expect(last.length).toBe(452);
    expect(last[0]).toBe(s * 256 + 1);
    expect(core.stat_events()).toBe(2500);
  });

  test('a poller that claims more records than allowed is held to READY_CAPACITY', () => {
    const { core, ep, L } = setup();
    core.handler_add(5, L.EV_READ);
    for (let i = 0; i < 1024; i++) ep.queue.push([ep.token(5), L.EV_READ]);
    ep.claim = 5000;
    expect(core.poll(0)).toBe(1024);
    expect(drain(core).length).toBe(1024);
  });

  test('a failed poll returns the errno and leaves the queue empty', () => {
    const { core, ep, L } = setup();
    core.handler_add(5, L.EV_READ);
    ep.queue.push([ep.token(5), L.EV_READ], [ep.token(5), L.EV_READ]);
    expect(core.poll(0)).toBe(2);
    expect(core.event_next()).toBe(1);
    ep.failNextWait = -EINTR;
    expect(core.poll(0)).toBe(-EINTR);
    expect(core.event_next()).toBe(-1);
  });

  test('poll restarts the read cursor; event_next without a poll returns -1', () => {
    const { core, ep, L } = setup();
    expect(core.event_next()).toBe(-1);
    core.handler_add(5, L.EV_READ);
    ep.queue.push([ep.token(5), L.EV_READ], [ep.token(5), L.EV_READ]);
    core.poll(0);
    expect(core.event_next()).toBe(1);
    expect(core.poll(0)).toBe(0);
    expect(core.event_next()).toBe(-1);
  });

  test('epoll_wait may write through a buffer taken after the memory grew', () => {
    const { core, ep, L } = setup();
    const s = core.handler_add(5, L.EV_READ);
    const before = core.memory.buffer.byteLength;
    for (let i = 0; i < 100000; i++) core.timer_start(i);
    expect(core.memory.buffer.byteLength).toBeGreaterThan(before);
    ep.queue.push([ep.token(5), L.EV_READ]);
    core.poll(0);
    expect(drain(core)).toEqual([s * 256 + 1]);
  });

  test('any interleaving of adds, removes, polls and reads delivers exactly the current records', () => {
    const fd = fc.integer({ min: 4, max: 10 });
    const op = fc.oneof(
      fc.record({ kind: fc.constant('add' as const), fd, ev: fc.constantFrom(1, 4, 5) }),
      fc.record({ kind: fc.constant('remove' as const), fd }),
      fc.record({ kind: fc.constant('ready' as const), pick: fc.nat(), ev: fc.integer({ min: 0, max: 0x1f }) }),
      fc.record({ kind: fc.constant('poll' as const) }),
      fc.record({ kind: fc.constant('next' as const) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
        const { core, ep } = setup();
        // The model: fd -> current registration; every token ever handed out.
        const model = new Map<number, { slot: number; interest: number; token: number }>();
        const tokens: number[] = [];
        let pending: Array<[number, number]> = [];
        let batch: Array<[number, number]> = [];
        let cursor = 0;
        const expectedNext = (): number => {
          while (cursor < batch.length) {
            const [token, ev] = batch[cursor++];
            const reg = [...model.values()].find((m) => m.token === token);
            if (!reg) continue;
            const bits = ev & reg.interest & 0xff;
            if (bits) return reg.slot * 256 + bits;
          }
          return -1;
        };
        for (const o of ops) {
          if (o.kind === 'add') {
            const r = core.handler_add(o.fd, o.ev);
            if (model.has(o.fd)) {
              expect(r).toBe(-EEXIST);
            } else {
              expect(r).toBeGreaterThanOrEqual(0);
              model.set(o.fd, { slot: r, interest: o.ev | 0x18, token: ep.token(o.fd) });
              tokens.push(ep.token(o.fd));
            }
          } else if (o.kind === 'remove') {
            expect(core.handler_remove(o.fd)).toBe(model.get(o.fd)?.slot ?? -ENOENT);
            model.delete(o.fd);
          } else if (o.kind === 'ready') {
            // Current or stale: any token ever handed out.
            if (tokens.length) pending.push([tokens[o.pick % tokens.length], o.ev]);
          } else if (o.kind === 'poll') {
            ep.queue = pending;
            batch = pending;
            pending = [];
            cursor = 0;
            expect(core.poll(0)).toBe(batch.length);
          } else {
            expect(core.event_next()).toBe(expectedNext());
          }
          expect(core.handler_count()).toBe(model.size);
        }
      }),
      { numRuns: 400 },
    );
  });
});
