// The core's exports: the constants of layout.ts (as WebAssembly globals), and the
// functions of each part. `memory` is exported by the compiler. Both builds (the
// epoll one and the WASI one, asconfig.json) export the same names; only the
// poller behind them differs (poller.ts). Every export takes and returns i32 or
// f64 only, since an i64 costs a BigInt on each JS call.

export {
  EV_NONE, EV_READ, EV_WRITE, EV_ERROR,
  EVENT_SIZE, EVENT_TOKEN_OFFSET, EVENT_EVENTS_OFFSET,
  EVENT_SLOT_SHIFT, EVENT_BITS_MASK, EVENT_NONE_LEFT, EVENT_WAKER,
  HANDLER_SLOT_BITS, WAKER_TOKEN,
  CTL_ADD, CTL_DEL, CTL_MOD,
  TIMER_SLOT_BITS, TIMER_SLOTS,
  MAX_POLL_TIMEOUT, TURN_IO, TURN_TIMER, READY_CAPACITY,
  ERRNO_ENOENT, ERRNO_EINTR, ERRNO_EBADF, ERRNO_EAGAIN, ERRNO_ENOMEM,
  ERRNO_EEXIST, ERRNO_EINVAL, ERRNO_ENOSPC, ERRNO_EPIPE, ERRNO_ENOSYS,
} from "./layout";

export { loop_init, loop_fd, loop_close, iteration_begin, poll_timeout,
  stat_iterations, stat_timers_fired, stat_events } from "./loop";
export { timer_start, timer_stop, timer_count, timer_next_deadline,
  timers_collect, timer_next_due, timer_start_after, timers_commit } from "./timers";
export { handler_add, handler_update, handler_remove, handler_slot, handler_count,
  waker_add } from "./handlers";
export { poll, event_next } from "./ready";
export { memory_limit } from "./memory";
export { sys_buffer, sys_read, sys_write, sys_close, sys_accept, sys_recv, sys_send,
  sys_shutdown, clock_now, errno_from_wasi } from "./sys";
