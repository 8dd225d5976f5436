/* Constants and record layouts shared with the WebAssembly core.
 *
 * The source of truth is assembly/layout.ts; test/layout.test.ts checks every value
 * here (the shim exports them as `layout`) against the core's exports. */
#ifndef WASM_IOLOOP_LAYOUT_H
#define WASM_IOLOOP_LAYOUT_H

#define IOLOOP_EV_NONE 0x000
#define IOLOOP_EV_READ 0x001  /* EPOLLIN */
#define IOLOOP_EV_WRITE 0x004 /* EPOLLOUT */
#define IOLOOP_EV_ERROR 0x018 /* EPOLLERR | EPOLLHUP */

/* One ready record in the core's memory: u32 token at 0, u32 events at 4. */
#define IOLOOP_EVENT_SIZE 8
#define IOLOOP_EVENT_TOKEN_OFFSET 0
#define IOLOOP_EVENT_EVENTS_OFFSET 4

#define IOLOOP_HANDLER_SLOT_BITS 20
#define IOLOOP_WAKER_TOKEN 0xffffffffu

#define IOLOOP_CTL_ADD 1
#define IOLOOP_CTL_DEL 2
#define IOLOOP_CTL_MOD 3

/* Why the guest driver calls onTurn: the poller's fd is readable, or the armed
 * timer fired. A negative reason is -errno. */
#define IOLOOP_TURN_IO 1
#define IOLOOP_TURN_TIMER 2

/* Ready records the core's buffer holds, and so the most one epoll_wait call
 * writes into it. */
#define IOLOOP_READY_CAPACITY 1024

#endif
