// The core's timers: heap order, removal from any position, stale handles, the
// due list of one iteration, and the poll timeout.

import fc from 'fast-check';
import { coreLayout, instantiateCore, type CoreExports } from '../src/core';

const SLOTS = 1 << 24;

/** A core whose poller does nothing: timers need no fds. */
function timerCore(): CoreExports {
  return instantiateCore({ epoll_create: () => 3, epoll_ctl: () => 0, epoll_wait: () => 0, fd_close: () => 0 });
}

/** xorshift32: a seeded PRNG, so a failure can be replayed from its seed. */
function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

interface ModelTimer { handle: number; deadline: number; seq: number; where: 'heap' | 'due' }

/** A cheap assertion for hot loops: jest's expect costs microseconds per call. */
function same(actual: unknown, expected: unknown, what: string): void {
  if (!Object.is(actual, expected)) throw new Error(`${what}: got ${String(actual)}, expected ${String(expected)}`);
}

/** Drives a core and a plain-array model side by side; any difference fails. */
class TimerModel {
  readonly live = new Map<number, ModelTimer>();
  /** Collected, not yet taken, in the order they must be taken. */
  due: ModelTimer[] = [];
  readonly stale: number[] = [];
  private seq = 0;
  fired = 0;

  constructor(readonly core: CoreExports) {}

  start(deadline: number): number {
    const handle = this.core.timer_start(deadline);
    // generation >= 1, so every handle is at least TIMER_SLOTS.
    if (!(Number.isInteger(handle) && handle >= SLOTS)) throw new Error(`timer_start(${deadline}) returned ${handle}`);
    if (this.live.has(handle)) throw new Error(`handle ${handle} handed out twice`);
    this.live.set(handle, { handle, deadline, seq: this.seq++, where: 'heap' });
    return handle;
  }

  stop(handle: number): void {
    const t = this.live.get(handle);
    const r = this.core.timer_stop(handle);
    if (!t) {
      same(r, 0, `timer_stop(${handle}) of a timer that is not pending`);
      return;
    }
    same(r, 1, `timer_stop(${handle}) of a pending timer`);
    this.live.delete(handle);
    if (t.where === 'due') this.due.splice(this.due.indexOf(t), 1);
    this.stale.push(handle);
  }

  collect(now: number): void {
    const got = this.core.timers_collect(now);
    const ready: ModelTimer[] = [];
    for (const t of this.live.values()) if (t.where === 'heap' && t.deadline <= now) ready.push(t);
    ready.sort((a, b) => (a.deadline < b.deadline ? -1 : a.deadline > b.deadline ? 1 : a.seq - b.seq));
    for (const t of ready) t.where = 'due';
    this.due.push(...ready);
    same(got, ready.length, `timers_collect(${now})`);
  }

  take(): void {
    const slot = this.core.timer_next_due();
    const t = this.due.shift();
    if (!t) {
      same(slot, -1, 'timer_next_due() with nothing collected');
      return;
    }
    same(slot, t.handle % SLOTS, `timer_next_due() (expected deadline ${t.deadline}, insertion ${t.seq})`);
    this.live.delete(t.handle);
    this.stale.push(t.handle);
    this.fired++;
  }

  check(): void {
    same(this.core.timer_count(), this.live.size, 'timer_count()');
    let min = Infinity;
    for (const t of this.live.values()) if (t.where === 'heap' && t.deadline < min) min = t.deadline;
    same(this.core.timer_next_deadline(), min, 'timer_next_deadline()');
  }
}

describe('timer heap', () => {
  test('random start/stop/collect/take sequences match a sorted reference (120,000 operations)', () => {
    let ops = 0;
    // Each seed hovers around a different number of pending timers: shallow and deep heaps.
    for (const [seed, target] of [[1, 30], [2, 300], [3, 3000], [4, 300]]) {
      const core = timerCore();
      const model = new TimerModel(core);
      const rnd = prng(seed * 7919);
      const handles: number[] = [];
      const deadline = (): number => {
        const r = rnd();
        if (r < 0.02) return Infinity;
        if (r < 0.03) return -Infinity;
        if (r < 0.6) return Math.floor(rnd() * 40); // many equal deadlines
        return rnd() * 40;
      };
      for (let step = 0; step < 30000; step++, ops++) {
        const r = rnd();
        const startBias = model.live.size < target ? 0.45 : 0.3;
        if (r < startBias) {
          handles.push(model.start(deadline()));
        } else if (r < startBias + 0.25) {
          // Remove from anywhere: a pending timer, in the heap or collected.
          while (handles.length && !model.live.has(handles[handles.length - 1])) handles.pop();
          if (handles.length) {
            const i = Math.floor(rnd() * handles.length);
            const h = handles[i];
            handles[i] = handles[handles.length - 1];
            handles.pop();
            model.stop(h);
          }
        } else if (r < startBias + 0.32) {
          // A stale handle: fired, stopped, or its slot is in use by a newer timer.
          if (model.stale.length) {
            const h = model.stale[Math.floor(rnd() * model.stale.length)];
            same(core.timer_stop(h), 0, `timer_stop(${h}) of a stale handle`);
          }
        } else if (r < startBias + 0.37) {
          model.collect(rnd() < 0.05 ? Infinity : rnd() * 40);
        } else {
          model.take();
        }
        model.check();
      }
      // Drain everything that is left, in order.
      model.collect(Infinity);
      while (model.due.length) model.take();
      model.take();
      model.check();
      expect(core.timer_count()).toBe(0);
      expect(core.stat_timers_fired()).toBe(model.fired);
    }
    expect(ops).toBeGreaterThanOrEqual(100000);
  });

  test('a million timers with many equal deadlines fire in (deadline, insertion) order', () => {
    const core = timerCore();
    const N = 1_000_000;
    const rnd = prng(20240601);
    const deadlines = new Float64Array(N);
    // Global lookups are slow inside jest's sandbox: keep the hot loop's local.
    const floor = Math.floor;
    for (let i = 0; i < N; i++) {
      // About a thousand timers share each deadline.
      deadlines[i] = floor(rnd() * 1000) / 4;
      // A fresh core hands out slots 0, 1, 2, ... so the slot is the insertion number.
      if (core.timer_start(deadlines[i]) !== SLOTS + i) throw new Error(`timer ${i}: unexpected handle`);
    }
    expect(core.timer_count()).toBe(N);
    let fired = 0;
    let prevDeadline = -Infinity;
    let prevSlot = -1;
    // Collect in ten slices, as ten iterations would.
    for (let now = 25; now <= 250; now += 25) {
      core.timers_collect(now);
      for (let slot; (slot = core.timer_next_due()) !== -1; fired++) {
        const d = deadlines[slot];
        if (d > now || d < prevDeadline || (d === prevDeadline && slot <= prevSlot)) {
          throw new Error(`out of order at ${fired}: slot ${slot} deadline ${d} after slot ${prevSlot} deadline ${prevDeadline}`);
        }
        prevDeadline = d;
        prevSlot = slot;
      }
    }
    expect(fired).toBe(N);
    expect(core.timer_count()).toBe(0);
    expect(core.timer_next_deadline()).toBe(Infinity);
  });
});

describe('timer handles', () => {
  test('a handle is generation * TIMER_SLOTS + slot, and a reused slot gets a new generation', () => {
    const core = timerCore();
    expect(coreLayout(core).TIMER_SLOTS).toBe(SLOTS);
    const a = core.timer_start(10);
    const b = core.timer_start(20);
    expect([a, b]).toEqual([SLOTS + 0, SLOTS + 1]);
    expect(core.timer_stop(a)).toBe(1);
    const c = core.timer_start(30);
    expect(c).toBe(2 * SLOTS + 0);
    // The old handle names the same slot but not the new timer.
    expect(core.timer_stop(a)).toBe(0);
    expect(core.timer_count()).toBe(2);
    expect(core.timer_stop(c)).toBe(1);
    expect(core.timer_stop(c)).toBe(0);
  });

  test('a fired timer\'s handle is stale and cannot stop the timer that reuses its slot', () => {
    const core = timerCore();
    const a = core.timer_start(1);
    expect(core.timers_collect(1)).toBe(1);
    expect(core.timer_next_due()).toBe(a % SLOTS);
    expect(core.timer_stop(a)).toBe(0);
    const b = core.timer_start(2);
    expect(b % SLOTS).toBe(a % SLOTS);
    expect(core.timer_stop(a)).toBe(0);
    expect(core.timer_count()).toBe(1);
    expect(core.timer_stop(b)).toBe(1);
  });

  test('timer_stop is safe for any number and never removes a timer it does not name', () => {
    const core = timerCore();
    const live = new Set<number>();
    for (let i = 0; i < 50; i++) live.add(core.timer_start(i));
    const special = [NaN, -NaN, Infinity, -Infinity, 0, -0, -1, 1, 0.5, SLOTS - 1, SLOTS + 0.5, SLOTS + 50,
      2 ** 52, 2 ** 53, 2 ** 60, -(2 ** 53), Number.MAX_VALUE, Number.MIN_VALUE, Number.EPSILON, 3 * SLOTS,
      2 ** 28 * SLOTS, 2 ** 28 * SLOTS + 1];
    for (const h of special) expect(core.timer_stop(h)).toBe(0);
    fc.assert(
      fc.property(fc.oneof(fc.double(), fc.integer(), fc.integer({ min: 0, max: 2 ** 40 }).map((n) => n * 1.0)), (h) => {
        fc.pre(!live.has(h));
        return core.timer_stop(h) === 0;
      }),
      { numRuns: 5000 },
    );
    expect(core.timer_count()).toBe(50);
    for (const h of live) expect(core.timer_stop(h)).toBe(1);
    expect(core.timer_count()).toBe(0);
  });

  test('timer_start refuses a NaN deadline with EINVAL and accepts infinities', () => {
    const core = timerCore();
    expect(core.timer_start(NaN)).toBe(-22);
    expect(core.timer_count()).toBe(0);
    const late = core.timer_start(Infinity);
    const early = core.timer_start(-Infinity);
    expect(core.timer_next_deadline()).toBe(-Infinity);
    expect(core.timers_collect(-1e300)).toBe(1);
    expect(core.timer_next_due()).toBe(early % SLOTS);
    expect(core.timers_collect(1e308)).toBe(0);
    expect(core.timers_collect(NaN)).toBe(0);
    expect(core.timers_collect(Infinity)).toBe(1);
    expect(core.timer_next_due()).toBe(late % SLOTS);
  });

  test('equal deadlines keep insertion order after removals from the middle', () => {
    const core = timerCore();
    const hs: number[] = [];
    for (let i = 0; i < 100; i++) hs.push(core.timer_start(5));
    for (let i = 0; i < 100; i += 3) core.timer_stop(hs[i]);
    core.timers_collect(5);
    const got: number[] = [];
    for (let s; (s = core.timer_next_due()) !== -1; ) got.push(s);
    expect(got).toEqual(hs.filter((_, i) => i % 3 !== 0).map((h) => h % SLOTS));
  });
});

describe('one iteration', () => {
  test('a timer started during the drain with a past deadline waits for the next iteration', () => {
    const core = timerCore();
    const a = core.timer_start(1);
    const b = core.timer_start(2);
    expect(core.iteration_begin(5)).toBe(2);
    expect(core.timer_next_due()).toBe(a % SLOTS);
    const c = core.timer_start(0); // already past, and earlier than b
    expect(core.timer_next_due()).toBe(b % SLOTS);
    expect(core.timer_next_due()).toBe(-1);
    expect(core.timer_count()).toBe(1);
    expect(core.iteration_begin(5)).toBe(1);
    expect(core.timer_next_due()).toBe(c % SLOTS);
    expect(core.timer_next_due()).toBe(-1);
    expect(core.stat_iterations()).toBe(2);
    expect(core.stat_timers_fired()).toBe(3);
  });

  test('timer_stop of a collected timer prevents its take', () => {
    const core = timerCore();
    const a = core.timer_start(1);
    const b = core.timer_start(2);
    const c = core.timer_start(3);
    expect(core.iteration_begin(10)).toBe(3);
    expect(core.timer_count()).toBe(3);
    expect(core.timer_next_due()).toBe(a % SLOTS);
    expect(core.timer_stop(b)).toBe(1);
    expect(core.timer_count()).toBe(1);
    expect(core.timer_stop(b)).toBe(0);
    expect(core.timer_next_due()).toBe(c % SLOTS);
    expect(core.timer_next_due()).toBe(-1);
    expect(core.timer_count()).toBe(0);
  });

  test('a collected timer stopped and its slot reused is skipped, and the new timer is not taken early', () => {
    const core = timerCore();
    const a = core.timer_start(1);
    core.timer_start(2);
    core.iteration_begin(10);
    expect(core.timer_stop(a)).toBe(1);
    const reuse = core.timer_start(0); // takes a's slot
    expect(reuse % SLOTS).toBe(a % SLOTS);
    expect(core.timer_next_due()).toBe(1);
    expect(core.timer_next_due()).toBe(-1);
    expect(core.timer_count()).toBe(1);
    expect(core.iteration_begin(10)).toBe(1);
    expect(core.timer_next_due()).toBe(reuse % SLOTS);
  });

  test('a collect before the due list is drained appends after the entries not yet taken', () => {
    const core = timerCore();
    const a = core.timer_start(1);
    const b = core.timer_start(2);
    core.timers_collect(1);
    const c = core.timer_start(0);
    expect(core.timers_collect(5)).toBe(2);
    expect([core.timer_next_due(), core.timer_next_due(), core.timer_next_due(), core.timer_next_due()])
      .toEqual([a % SLOTS, c % SLOTS, b % SLOTS, -1]);
  });

  test('collecting never runs out of room, even with many stopped entries left in the due list', () => {
    const core = timerCore();
    // Fill the due list, stop most of it without taking, and collect again and again.
    for (let round = 0; round < 50; round++) {
      const hs: number[] = [];
      for (let i = 0; i < 1000; i++) hs.push(core.timer_start(round));
      core.timers_collect(round);
      for (let i = 0; i < hs.length; i++) if (i % 10 !== 0) core.timer_stop(hs[i]);
    }
    expect(core.timer_count()).toBe(50 * 100);
    let n = 0;
    let prev = -1;
    for (let s; (s = core.timer_next_due()) !== -1; n++) prev = s;
    expect(prev).toBeGreaterThanOrEqual(0);
    expect(n).toBe(5000);
  });
});

describe('poll timeout', () => {
  test('is 0 while callbacks are pending', () => {
    const core = timerCore();
    expect(core.poll_timeout(0, 1)).toBe(0);
    core.timer_start(100);
    expect(core.poll_timeout(0, 5)).toBe(0);
  });

  test('is MAX_POLL_TIMEOUT with no timers, or only timers that never fire', () => {
    const core = timerCore();
    expect(core.poll_timeout(0, 0)).toBe(3600);
    core.timer_start(Infinity);
    expect(core.poll_timeout(1e9, 0)).toBe(3600);
    expect(core.poll_timeout(NaN, 0)).toBe(3600);
  });

  test('is the time to the earliest deadline, clamped to [0, 3600]', () => {
    const core = timerCore();
    core.timer_start(10.25);
    core.timer_start(50);
    expect(core.poll_timeout(10, 0)).toBe(0.25);
    expect(core.poll_timeout(11, 0)).toBe(0);
    expect(core.poll_timeout(10.25, 0)).toBe(0);
    expect(core.poll_timeout(-1e6, 0)).toBe(3600);
    expect(core.poll_timeout(-Infinity, 0)).toBe(3600);
    expect(core.poll_timeout(Infinity, 0)).toBe(0);
    expect(core.poll_timeout(NaN, 0)).toBe(0);
  });

  test('is 0 while collected timers wait to be taken', () => {
    const core = timerCore();
    core.timer_start(1);
    core.timer_start(100);
    core.iteration_begin(1);
    expect(core.poll_timeout(1, 0)).toBe(0);
    core.timer_next_due();
    expect(core.poll_timeout(1, 0)).toBe(99);
  });

  test('is never negative, never NaN, never above 3600, whatever the clock and deadlines', () => {
    fc.assert(
      fc.property(fc.array(fc.double(), { maxLength: 8 }), fc.double(), fc.integer({ min: 0, max: 3 }), (deadlines, now, cbs) => {
        const core = timerCore();
        for (const d of deadlines) core.timer_start(d);
        const t = core.poll_timeout(now, cbs);
        // false for NaN as well
        return t >= 0 && t <= 3600 && (cbs === 0 || t === 0);
      }),
      { numRuns: 1000 },
    );
  });
});
