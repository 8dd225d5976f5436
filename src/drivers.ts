// Drivers decide who waits. The loop runs one turn at a time (see the iteration in
// ioloop.ts); a driver calls `turn` when there may be work and waits in between.
//
//   guest     Node's own libuv loop waits: the native shim watches our epoll fd with
//             a uv_poll handle and keeps one uv_timer armed for the next deadline,
//             so promises, setTimeout, fs and net keep running beside the loop.
//   portable  no native shim: the next turn is a host timer (setImmediate or
//             setTimeout); nothing watches fds.
//   blocking  (declared by the API, not yet built) the loop owns its thread.

import type { NativeShim } from './native';

/** The drivers the API names. */
export type DriverName = 'guest' | 'blocking' | 'portable';

/** What the loop needs from a driver. Not thread-safe: the loop's thread only. */
export interface Driver {
  /** Starts waiting on the loop's behalf; a started driver keeps the host alive. */
  start(): void;
  /** Asks for the next turn in `ms` milliseconds: 0 as soon as the host comes round, -1 only on I/O. */
  arm(ms: number): void;
  /** Stops waiting; a stopped driver keeps nothing alive. */
  stop(): void;
  /** Releases everything; idempotent. */
  close(): void;
}

/** The turn reason for "the timer fired" (the native shim reports 1 for I/O, 2 for the timer). */
export const TURN_TIMER = 2;

/** The guest driver: our epoll fd nested in Node's libuv loop. */
export class GuestDriver implements Driver {
  private readonly handle: object;
  private closed = false;

  constructor(
    private readonly native: NativeShim,
    epfd: number,
    turn: (reason: number) => void,
  ) {
    this.handle = native.guestOpen(epfd, turn);
  }

  start(): void {
    this.native.guestStart(this.handle);
  }

  arm(ms: number): void {
    this.native.guestArm(this.handle, ms);
  }

  stop(): void {
    if (!this.closed) this.native.guestStop(this.handle);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.native.guestClose(this.handle);
  }
}

/** The portable driver: host timers only. */
export class PortableDriver implements Driver {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private immediate: ReturnType<typeof setImmediate> | undefined;
  private keepAlive: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly turn: (reason: number) => void) {}

  private readonly fire = (): void => {
    this.timer = undefined;
    this.immediate = undefined;
    this.turn(TURN_TIMER);
  };

  start(): void {
    // A running loop keeps the host alive even when it has nothing scheduled, as a
    // listening server does; the longest interval a host timer accepts does that.
    this.keepAlive ??= setInterval(() => {}, 0x7fffffff);
  }

  arm(ms: number): void {
    this.disarm();
    if (ms === 0) this.immediate = setImmediate(this.fire);
    else if (ms > 0) this.timer = setTimeout(this.fire, ms);
  }

  stop(): void {
    this.disarm();
    if (this.keepAlive !== undefined) clearInterval(this.keepAlive);
    this.keepAlive = undefined;
  }

  close(): void {
    this.stop();
  }

  private disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
  }
}

/** The driver a loop gets when none is named. */
export function defaultDriver(native: NativeShim | null): DriverName {
  return native ? 'guest' : 'portable';
}
