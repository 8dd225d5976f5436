/**
 * Event masks for {@link IOLoop.addHandler} and the events a handler receives.
 *
 * They are Linux's `EPOLLIN`, `EPOLLOUT` and `EPOLLERR | EPOLLHUP`, which equal
 * poll(2)'s `POLLIN`, `POLLOUT` and `POLLERR | POLLHUP`, so no backend translates
 * them. test/layout.test.ts checks them against the core and the native shim.
 */

/** No events. */
export const NONE = 0;
/** The fd is readable (or a listening socket has a connection waiting). */
export const READ = 0x001;
/** The fd is writable (or a nonblocking connect has finished). */
export const WRITE = 0x004;
/** An error or hang-up on the fd. Always added to a registration, as in Tornado. */
export const ERROR = 0x018;
