// The poller: the host's epoll-shaped imports, and the one epoll fd of this core.
// loop.ts opens and closes that fd; handlers.ts and ready.ts use it.
//
// The imports are WASIX-shaped and errno-returning: each returns a non-negative
// result or -errno, and none of them may call back into the core (the core is not
// re-entrant: an import runs in the middle of a table update).
//
// Invariants
// - epollFd is -1 until loop_init succeeds and again after loop_close; otherwise
//   it is the fd that epoll_create returned, and it is closed exactly once.

// @ts-ignore: decorator
@external("ioloop", "epoll_create")
export declare function epoll_create(): i32;

/** op is CTL_ADD, CTL_DEL or CTL_MOD; token is carried back in ready records. */
// @ts-ignore: decorator
@external("ioloop", "epoll_ctl")
export declare function epoll_ctl(epfd: i32, op: i32, fd: i32, events: i32, token: i32): i32;

/** Writes up to `max` EVENT_SIZE-byte records at `buf` in the core's memory and
 * returns how many, or -errno. */
// @ts-ignore: decorator
@external("ioloop", "epoll_wait")
export declare function epoll_wait(epfd: i32, buf: i32, max: i32, timeout_ms: i32): i32;

// @ts-ignore: decorator
@external("ioloop", "fd_close")
export declare function fd_close(fd: i32): i32;

export let epollFd: i32 = -1;

/** Records the poller's fd (loop.ts owns the lifecycle; -1 forgets it). */
export function setEpollFd(fd: i32): void {
  epollFd = fd;
}
