// The one source of the constants and record layouts that the WebAssembly core,
// the TypeScript runtime and the native shim share.
//
// The core exports each of these (see index.ts); the runtime reads them from the
// instance, and test/layout.test.ts checks the C copies in bindings/layout.h (which
// the shim exports as `layout`) and the public constants in src/constants.ts
// against the core's exports. Change a value here and that test tells you what
// else must change.

/** Interest and readiness bits. They are Linux's EPOLL* values, which equal the
 * POLL* values of poll(2), so neither backend translates them. */
export const EV_NONE: i32 = 0;
export const EV_READ: i32 = 0x001; // EPOLLIN / POLLIN
export const EV_WRITE: i32 = 0x004; // EPOLLOUT / POLLOUT
export const EV_ERROR: i32 = 0x018; // EPOLLERR | EPOLLHUP; POLLERR | POLLHUP

/** One ready record, written by the poller into the core's ready buffer:
 *   offset 0  u32 token   the token given at registration
 *   offset 4  u32 events  the ready bits (EV_*)
 *   size   8 */
export const EVENT_SIZE: i32 = 8;
export const EVENT_TOKEN_OFFSET: i32 = 0;
export const EVENT_EVENTS_OFFSET: i32 = 4;

/** Handler tokens: slot in the low HANDLER_SLOT_BITS bits, the slot's generation
 * above them. A token never equals WAKER_TOKEN. */
export const HANDLER_SLOT_BITS: i32 = 20;
export const WAKER_TOKEN: u32 = 0xffffffff;

/** epoll_ctl operations, as Linux numbers them. */
export const CTL_ADD: i32 = 1;
export const CTL_DEL: i32 = 2;
export const CTL_MOD: i32 = 3;

/** Timer handles are `generation * TIMER_SLOTS + slot`: exact in a double, and a
 * Smi while the generation stays small. */
export const TIMER_SLOT_BITS: i32 = 24;
export const TIMER_SLOTS: i32 = 1 << TIMER_SLOT_BITS;

/** The longest the loop waits in one poll, in seconds (Tornado's _POLL_TIMEOUT). */
export const MAX_POLL_TIMEOUT: f64 = 3600.0;

/** Ready records the core's buffer holds: `poll` asks the poller for at most this
 * many per call. 1024 is one `epoll_wait` batch, as libuv and Tornado take; since
 * readiness is level-triggered, whatever does not fit is reported again by the
 * next iteration's poll, so a larger buffer only delays timers and callbacks. */
export const READY_CAPACITY: i32 = 1024;
