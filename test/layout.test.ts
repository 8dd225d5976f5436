// One source for shared constants and record layouts: assembly/layout.ts. The core
// exports its values; this checks the native shim's copies (bindings/layout.h),
// the public constants (src/constants.ts) and the OS's own values against it.
import { coreLayout, instantiateCore } from '../src/core';
import { ERROR, IOLoop, NONE, READ, WRITE } from '../src/index';
import { loadNative } from '../src/native';

const native = loadNative()!;
const core = instantiateCore({ epoll_create: () => 3, epoll_ctl: () => 0, epoll_wait: () => 0, fd_close: () => 0 });
const layout = coreLayout(core) as unknown as Record<string, number>;

test('the native shim is built and loaded', () => {
  expect(native).not.toBeNull();
});

test.each(['EV_NONE', 'EV_READ', 'EV_WRITE', 'EV_ERROR', 'EVENT_SIZE', 'EVENT_TOKEN_OFFSET', 'EVENT_EVENTS_OFFSET', 'HANDLER_SLOT_BITS', 'WAKER_TOKEN', 'CTL_ADD', 'CTL_DEL', 'CTL_MOD'])(
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
