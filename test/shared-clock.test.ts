// One clock read for the relative timers of a callback (src/shared-clock.ts): the
// first relative timer of a callback reads the clock, later ones count from a read
// taken when the callback returns or when it calls loop.time(). No timer fires
// before its delay has passed, and deadlines agree with every loop.time() reading.
import { instantiateCore, type CoreExports } from '../src/core';
import type { RelativeTimerExports } from '../src/shared-clock';
import { guardResources, newLoop } from './helpers';

guardResources();

const SLOTS = 1 << 24;

function timerCore(): CoreExports & RelativeTimerExports {
  return instantiateCore({ epoll_create: () => 3, epoll_ctl: () => 0, epoll_wait: () => 0, fd_close: () => 0 }) as CoreExports &
    RelativeTimerExports;
}

describe('the core', () => {
  test('a timer started after a delay has no deadline until committed, then now + delay', () => {
    const core = timerCore();
    const a = core.timer_start(5);
    const b = core.timer_start_after(2);
    const c = core.timer_start_after(0.5);
    expect(core.timer_count()).toBe(3);
    // Not in the order yet.
    expect(core.timer_next_deadline()).toBe(5);
    expect(core.timer_stop(c)).toBe(1);
    expect(core.timer_stop(c)).toBe(0);
    expect(core.timers_commit(1)).toBe(1);
    expect(core.timers_commit(1)).toBe(0);
    expect(core.timer_next_deadline()).toBe(3);
    expect(core.timers_collect(10)).toBe(2);
    expect([core.timer_next_due(), core.timer_next_due(), core.timer_next_due()]).toEqual([b % SLOTS, a % SLOTS, -1]);
  });

  test('collect commits at its now first; a NaN now commits nothing', () => {
    const core = timerCore();
    const a = core.timer_start_after(1);
    expect(core.timers_commit(NaN)).toBe(0);
    expect(core.timers_collect(NaN)).toBe(0);
    expect(core.timer_count()).toBe(1);
    expect(core.timers_collect(7)).toBe(0);
    expect(core.timer_next_deadline()).toBe(8);
    expect(core.timers_collect(8)).toBe(1);
    expect(core.timer_next_due()).toBe(a % SLOTS);
  });

  test('equal deadlines keep the order started across timer_start and committed timers', () => {
    const core = timerCore();
    const order: number[] = [];
    for (let i = 0; i < 300; i++) {
      order.push(i % 3 === 0 ? core.timer_start(11) : core.timer_start_after(1));
      if (i % 7 === 0) core.timers_commit(10);
    }
    core.timers_commit(10);
    expect(core.timers_collect(11)).toBe(300);
    for (const h of order) expect(core.timer_next_due()).toBe(h % SLOTS);
  });

  test('opposite infinities give the delay\'s infinity, never NaN', () => {
    const core = timerCore();
    const late = core.timer_start_after(Infinity);
    const early = core.timer_start_after(-Infinity);
    expect(core.timer_start_after(NaN)).toBe(-22);
    core.timers_commit(-Infinity);
    expect(core.timer_next_deadline()).toBe(-Infinity);
    expect(core.timers_collect(0)).toBe(1);
    expect(core.timer_next_due()).toBe(early % SLOTS);
    expect(core.timer_stop(late)).toBe(1);
  });
});

describe('the loop', () => {
  test('relative timers of one callback never fire before their delay has passed', async () => {
    const loop = newLoop();
    const early: string[] = [];
    let left = 0;
    loop.addCallback(() => {
      for (let i = 0; i < 2000; i++) {
        const delay = (i % 40) / 1000;
        const at = performance.now();
        left++;
        loop.callLater(delay, () => {
          const waited = performance.now() - at;
          // performance.now() and the loop's clock are one clock, in ms and s.
          if (waited < delay * 1000 - 1e-6) early.push(`timer ${i}: ${waited} ms of ${delay * 1000}`);
          if (--left === 0) loop.stop();
        });
        // A callback that keeps running after it starts timers.
        while (performance.now() - at < 0.002);
      }
    });
    await loop.start();
    expect(early).toEqual([]);
  });

  test('a deadline agrees with loop.time() read after the call (Tornado: time() + delay)', async () => {
    const loop = newLoop();
    const ran: string[] = [];
    loop.addCallback(() => {
      loop.callLater(0.05, () => ran.push('first'));
      loop.callLater(0.02, () => ran.push('a'));
      const t = loop.time();
      // Started before t, so due by t + 0.02 at the latest: before b.
      loop.callAt(t + 0.02 + 1e-9, () => ran.push('b'));
      loop.callLater(0.05, () => {
        ran.push('last');
        loop.stop();
      });
    });
    await loop.start();
    expect(ran).toEqual(['a', 'b', 'first', 'last']);
  });

  test('addTimeout with a duration shares the read; with a number it is absolute', async () => {
    const loop = newLoop();
    const ran: string[] = [];
    loop.addCallback(() => {
      const t = loop.time();
      loop.addTimeout({ seconds: 0.03 }, () => ran.push('first'));
      loop.addTimeout({ seconds: 0.01 }, () => ran.push('shared'));
      loop.addTimeout(t + 0.02, () => ran.push('absolute'));
      loop.callLater(0.04, () => loop.stop());
    });
    await loop.start();
    expect(ran).toEqual(['shared', 'absolute', 'first']);
  });

  test('removeTimeout before the commit, and pending timers count in stats()', async () => {
    const loop = newLoop();
    let pendingInside = -1;
    let ran = 0;
    loop.addCallback(() => {
      loop.callLater(10, () => ran++);
      const handles = [];
      for (let i = 0; i < 100; i++) handles.push(loop.callLater(0, () => ran++));
      for (let i = 0; i < 100; i += 2) loop.removeTimeout(handles[i]);
      pendingInside = loop.stats().pendingTimers;
      loop.callLater(0.01, () => loop.stop());
    });
    await loop.start();
    expect(pendingInside).toBe(51);
    expect(ran).toBe(50);
    expect(loop.stats().pendingTimers).toBe(1);
  });

  test('a callback of one loop that schedules on another reads the other loop\'s clock', async () => {
    let fake = 100;
    const other = newLoop({ time: () => fake });
    const loop = newLoop();
    const order: string[] = [];
    loop.addCallback(() => {
      // Each reads `other`'s clock at once (101, then 201); nothing waits for this
      // loop's share, which would give both the same later read.
      other.callLater(1, () => order.push('a'));
      fake = 200;
      other.callLater(1, () => order.push('b'));
      loop.stop();
    });
    await loop.start();
    other.callAt(150, () => order.push('between'));
    fake = 1000;
    other.callLater(0, () => other.stop());
    await other.start();
    expect(order).toEqual(['a', 'between', 'b']);
  });
});
