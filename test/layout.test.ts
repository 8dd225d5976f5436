// One source for shared constants and record layouts: assembly/layout.ts. The core
// exports its values; this checks the native shim's copies (bindings/layout.h),
// the runtime's copies (src/constants.ts, the Errno enum of src/errors.ts) and the
// OS's own values against it.
import * as os from 'node:os';
import { coreLayout, instantiateCore } from '../src/core';
import { Errno } from '../src/errors';
import { ERROR, IOLoop, NONE, READ, WRITE } from '../src/index';
import { loadNative } from '../src/native';

const native = loadNative()!;
const core = instantiateCore({ epoll_create: () => 3, epoll_ctl: () => 0, epoll_wait: () => 0, fd_close: () => 0 });
const layout = coreLayout(core) as unknown as Record<string, number>;

test('the native shim is built and loaded', () => {
  expect(native).not.toBeNull();
});

test.each([
  'EV_NONE', 'EV_READ', 'EV_WRITE', 'EV_ERROR', 'EVENT_SIZE', 'EVENT_TOKEN_OFFSET', 'EVENT_EVENTS_OFFSET',
  'HANDLER_SLOT_BITS', 'WAKER_TOKEN', 'CTL_ADD', 'CTL_DEL', 'CTL_MOD',
  'TURN_IO', 'TURN_TIMER', 'READY_CAPACITY',
])(
  'bindings/layout.h agrees with the core on %s',
  (name) => {
    const fromCore = layout[name];
    expect(typeof fromCore).toBe('number');
    // The core's u32 globals read back as signed i32 in JS; compare as u32.
    expect((native.layout as unknown as Record<string, number>)[name]! >>> 0).toBe(fromCore! >>> 0);
  },
);

test('the public event constants agree with the core', () => {
  expect({ NONE, READ, WRITE, ERROR }).toEqual({ NONE: layout.EV_NONE, READ: layout.EV_READ, WRITE: layout.EV_WRITE, ERROR: layout.EV_ERROR });
  expect([IOLoop.NONE, IOLoop.READ, IOLoop.WRITE, IOLoop.ERROR]).toEqual([NONE, READ, WRITE, ERROR]);
});

test("the event bits are the OS's epoll and poll bits, so no backend translates them", () => {
  const os = native.layout;
  expect(READ).toBe(os.EPOLLIN);
  expect(WRITE).toBe(os.EPOLLOUT);
  expect(ERROR).toBe(os.EPOLLERR | os.EPOLLHUP);
  expect([READ, WRITE, ERROR]).toEqual([os.POLLIN, os.POLLOUT, os.POLLERR | os.POLLHUP]);
  expect([layout.CTL_ADD, layout.CTL_DEL, layout.CTL_MOD]).toEqual([os.EPOLL_CTL_ADD, os.EPOLL_CTL_DEL, os.EPOLL_CTL_MOD]);
});

test('the turn reasons are 1 and 2: positive, so that a negative reason can only be -errno', () => {
  expect(layout.TURN_IO).toBe(1);
  expect(layout.TURN_TIMER).toBe(2);
});

test('the event_next encoding: slot << EVENT_SLOT_SHIFT | events, EVENT_NONE_LEFT, EVENT_WAKER', () => {
  expect(layout.EVENT_SLOT_SHIFT).toBe(8);
  expect(layout.EVENT_BITS_MASK).toBe(0xff);
  expect(layout.EVENT_NONE_LEFT).toBe(-1);
  expect(layout.EVENT_WAKER).toBe(-2);
  // The events fit below the shift, and the largest slot's value is still positive.
  expect(layout.EVENT_BITS_MASK).toBe((1 << layout.EVENT_SLOT_SHIFT) - 1);
  expect(layout.EVENT_BITS_MASK & (layout.EV_READ | layout.EV_WRITE | layout.EV_ERROR)).toBe(layout.EV_READ | layout.EV_WRITE | layout.EV_ERROR);
  expect(layout.HANDLER_SLOT_BITS + layout.EVENT_SLOT_SHIFT).toBeLessThan(31);

  // And event_next returns exactly that: a core whose epoll_wait reports a handler
  // record and a waker record.
  let records: Array<[number, number]> = [];
  const tokens = new Map<number, number>();
  const c = instantiateCore({
    epoll_create: () => 3,
    epoll_ctl: (_epfd, _op, fd, _events, token) => (tokens.set(fd, token >>> 0), 0),
    epoll_wait: (_epfd, ptr, max) => {
      const view = new DataView(c.memory.buffer);
      const n = Math.min(max, records.length);
      for (let i = 0; i < n; i++) {
        view.setUint32(ptr + i * layout.EVENT_SIZE + layout.EVENT_TOKEN_OFFSET, records[i][0], true);
        view.setUint32(ptr + i * layout.EVENT_SIZE + layout.EVENT_EVENTS_OFFSET, records[i][1], true);
      }
      return n;
    },
    fd_close: () => 0,
  });
  expect(c.loop_init()).toBe(0);
  for (let fd = 10; fd < 15; fd++) c.handler_add(fd, layout.EV_READ | layout.EV_WRITE);
  expect(c.waker_add(20)).toBe(0);
  records = [[tokens.get(13)!, layout.EV_WRITE], [layout.WAKER_TOKEN, layout.EV_READ]];
  expect(c.poll(0)).toBe(2);
  expect(c.event_next()).toBe((c.handler_slot(13) << layout.EVENT_SLOT_SHIFT) | layout.EV_WRITE);
  expect(c.event_next()).toBe(layout.EVENT_WAKER);
  expect(c.event_next()).toBe(layout.EVENT_NONE_LEFT);
});

// Every member of the Errno const enum, listed by name: the type makes this list
// exactly the enum's members, so a member added there must be added here.
const ERRNO: Record<keyof typeof Errno, number> = {
  ENOENT: Errno.ENOENT,
  EINTR: Errno.EINTR,
  EBADF: Errno.EBADF,
  EAGAIN: Errno.EAGAIN,
  ENOMEM: Errno.ENOMEM,
  EEXIST: Errno.EEXIST,
  EINVAL: Errno.EINVAL,
  ENOSPC: Errno.ENOSPC,
  EPIPE: Errno.EPIPE,
  ENOSYS: Errno.ENOSYS,
};

test('the Errno enum and the core have the same errno names', () => {
  const fromCore = Object.keys(layout).filter((k) => k.startsWith('ERRNO_')).map((k) => k.slice('ERRNO_'.length));
  expect(Object.keys(ERRNO).sort()).toEqual(fromCore.sort());
});

test.each(Object.entries(ERRNO))("Errno.%s agrees with the core's ERRNO_ value and with the OS", (name, value) => {
  expect(value).toBe(layout[`ERRNO_${name}`]);
  expect(value).toBe((os.constants.errno as Record<string, number>)[name]);
});

test("the runtime's literal copies of the event encoding and the turn reasons agree with the core", () => {
  const engine = require('../src/engine') as Record<string, number>;
  const drivers = require('../src/drivers') as Record<string, number>;
  for (const name of ['EVENT_NONE_LEFT', 'EVENT_WAKER', 'EVENT_SLOT_SHIFT', 'EVENT_BITS_MASK']) expect([name, engine[name]]).toEqual([name, layout[name]]);
  for (const name of ['TURN_IO', 'TURN_TIMER']) expect([name, drivers[name]]).toEqual([name, layout[name]]);
});
