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

/** What event_next returns: `slot << EVENT_SLOT_SHIFT | events` for a handler's
 * ready record, where events (the EV_* bits) are masked to EVENT_BITS_MASK so they
 * stay below the shift; EVENT_NONE_LEFT when no records are left; EVENT_WAKER for
 * a waker record. A handler's value is never negative (its slot is below
 * 2^HANDLER_SLOT_BITS, so the value is below 2^28), so the two negatives cannot be
 * taken for one. */
export const EVENT_SLOT_SHIFT: i32 = 8;
export const EVENT_BITS_MASK: i32 = 0xff;
export const EVENT_NONE_LEFT: i32 = -1;
export const EVENT_WAKER: i32 = -2;

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

/** Why the native shim's guest driver calls the runtime's onTurn: TURN_IO when the
 * poller's fd is readable, TURN_TIMER when the timer the runtime armed fires, or a
 * negative -errno when libuv reports a poll error. The core never sees them; they
 * are here so that the shim and the runtime have one source to agree on. */
export const TURN_IO: i32 = 1;
export const TURN_TIMER: i32 = 2;

/** Ready records the core's buffer holds: `poll` asks the poller for at most this
 * many per call. 1024 is one `epoll_wait` batch, as libuv and Tornado take; since
 * readiness is level-triggered, whatever does not fit is reported again by the
 * next iteration's poll, so a larger buffer only delays timers and callbacks.
 * The native shim's epoll_wait writes at most as many per call. */
export const READY_CAPACITY: i32 = 1024;

/** The errno values (Linux's) that the core returns negated and that the runtime
 * tests for by name. The shim takes its values from <errno.h>; the runtime's
 * `Errno` enum (src/errors.ts) copies these, and test/layout.test.ts checks both
 * against these and against the OS. */
export const ERRNO_ENOENT: i32 = 2;
export const ERRNO_EINTR: i32 = 4;
export const ERRNO_EBADF: i32 = 9;
export const ERRNO_EAGAIN: i32 = 11;
export const ERRNO_ENOMEM: i32 = 12;
export const ERRNO_EEXIST: i32 = 17;
export const ERRNO_EINVAL: i32 = 22;
/** What epoll_ctl itself returns at the user's watch limit, and so what the core
 * returns when its handler table is full. */
export const ERRNO_ENOSPC: i32 = 28;
export const ERRNO_EPIPE: i32 = 32;
export const ERRNO_ENOSYS: i32 = 38;
