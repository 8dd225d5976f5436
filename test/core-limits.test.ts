// The core's limits: how many timers fit, and what happens at the edge of its
// memory. The core must return an error value there, never trap, and keep working.
//
// The real limit on pending timers is TIMER_SLOTS = 2^24 (16,777,216): a handle
// has 24 bits of slot. Holding them takes 32 bytes per timer (a 16-byte heap entry,
// an 8-byte slot, an 8-byte due-list record), 512 MiB in all, about 1 GiB of
// WebAssembly memory with the regions left behind by doubling; the module may
// grow to 4 GiB, so the slot limit is reached before the memory limit. The
// memory-exhausted paths are reached with `memory_limit`, which lowers the cap.

import { coreLayout, instantiateCore, type CoreExports } from '../src/core';

const SLOTS = 1 << 24;

function timerCore(): CoreExports {
  return instantiateCore({ epoll_create: () => 3, epoll_ctl: () => 0, epoll_wait: () => 0, fd_close: () => 0 });
}

/** A linear congruential generator: cheap enough for 16 million deadlines. (Inside
 * jest every lookup of a global such as `Math` goes through the sandbox's global
 * object and costs far more than the core's call, so hot loops keep them local.) */
const imul = Math.imul;
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => (x = (imul(x, 1103515245) + 12345) >>> 0) / 4294967296;
}

describe('timer limits', () => {
  test('4,000,000 pending timers fit; at TIMER_SLOTS timer_start returns -1, never traps, and keeps working', () => {
    const core = timerCore();
    expect(coreLayout(core).TIMER_SLOTS).toBe(SLOTS);
    const rnd = lcg(7);
    let n = 0;
    for (; n < 4_000_000; n++) {
      if (core.timer_start(rnd() * 1000) <= 0) throw new Error(`timer_start failed at ${n}`);
    }
    expect(core.timer_count()).toBe(4_000_000);
    let h: number;
    while ((h = core.timer_start(rnd() * 1000)) > 0) n++;
    expect(h).toBe(-1);
    expect(n).toBe(SLOTS);
    expect(core.timer_count()).toBe(SLOTS);
    expect(core.timer_start(1)).toBe(-1);
    expect(core.timer_count()).toBe(SLOTS);
    // Stopping one makes room for exactly one more.
    expect(core.timer_stop(SLOTS + 12345)).toBe(1);
    const again = core.timer_start(-1);
    expect(again).toBe(2 * SLOTS + 12345);
    expect(core.timer_start(1)).toBe(-1);
    // The heap is still in order: the earliest deadlines come out first.
    expect(core.timer_next_deadline()).toBe(-1);
    expect(core.timers_collect(0.01)).toBeGreaterThan(1);
    let prev = -Infinity;
    let taken = 0;
    for (let slot; (slot = core.timer_next_due()) !== -1; taken++) {
      // Slots were handed out in order, so the slot is the insertion number; no
      // deadline is kept, but the due list must start with the timer at -1.
      if (taken === 0) expect(slot).toBe(12345);
      prev = slot;
    }
    expect(prev).not.toBe(-Infinity);
    expect(core.timer_count()).toBe(SLOTS - taken);
  });

  test('when memory runs out timer_start returns -1, and every timer that fit still fires in order', () => {
    const core = timerCore();
    const pagesNow = core.memory.buffer.byteLength / 65536;
    // 4 MiB of memory in all.
    expect(core.memory_limit(64)).toBe(64);
    expect(pagesNow).toBeLessThan(64);
    const rnd = lcg(11);
    let h: number;
    let fitted = 0;
    while ((h = core.timer_start(1 + Math.floor(rnd() * 100))) > 0) fitted++;
    expect(h).toBe(-1);
    expect(core.timer_count()).toBe(fitted);
    expect(fitted).toBeGreaterThan(50_000);
    expect(core.memory.buffer.byteLength).toBeLessThanOrEqual(64 * 65536);
    // Still refused, still no trap; nothing changed.
    for (let i = 0; i < 10; i++) expect(core.timer_start(1)).toBe(-1);
    expect(core.timer_count()).toBe(fitted);
    // A stopped timer's slot can be reused without new memory.
    expect(core.timer_stop(SLOTS + 3)).toBe(1);
    expect(core.timer_start(0)).toBe(2 * SLOTS + 3);
    // Collecting needs no memory either: everything fires, the timer at 0 first.
    expect(core.timers_collect(Infinity)).toBe(fitted);
    let n = 0;
    for (let s; (s = core.timer_next_due()) !== -1; n++) if (n === 0) expect(s).toBe(3);
    expect(n).toBe(fitted);
    // Everything freed: the same number fits again.
    let refill = 0;
    while (core.timer_start(1) > 0) refill++;
    expect(refill).toBe(fitted);
  });

  test('memory_limit never lowers the cap below the memory in use or raises it past 65536 pages', () => {
    const core = timerCore();
    for (let i = 0; i < 100_000; i++) core.timer_start(i);
    const pages = core.memory.buffer.byteLength / 65536;
    expect(core.memory_limit(1)).toBe(pages);
    expect(core.memory_limit(1 << 20)).toBe(65536);
    expect(core.timer_start(1)).toBeGreaterThan(0);
  });
});

describe('handler limits', () => {
  test('when memory runs out handler_add returns ENOMEM and the table keeps working', () => {
    const calls: number[] = [];
    const core = instantiateCore({
      epoll_create: () => 3,
      epoll_ctl: (_e, op) => {
        calls.push(op);
        return 0;
      },
      epoll_wait: () => 0,
      fd_close: () => 0,
    });
    core.loop_init();
    core.memory_limit(core.memory.buffer.byteLength / 65536 + 4);
    // fd 300,000 needs a 1.2 MiB table: more than the 256 KiB left.
    expect(core.handler_add(300_000, 1)).toBe(-12);
    expect(calls).toEqual([1, 2]); // registered, then undone
    expect(core.handler_count()).toBe(0);
    expect(core.handler_add(3, 1)).toBe(0);
    expect(core.handler_add(300_000, 1)).toBe(-12);
    core.memory_limit(65536);
    expect(core.handler_add(300_000, 1)).toBe(1);
    expect(core.handler_count()).toBe(2);
  });
});
