// The poller interface, and its epoll implementation (the build wasm/core.wasm).
//
// The rest of the core calls the poller only through the global namespace
// `Poller`, never by importing a poller's functions. asconfig.json's targets bind
// that name to one implementation with a global alias (`--use`):
//   release  Poller=EpollPoller  this file: the host's epoll-shaped `ioloop` imports
//   wasi     Poller=WasiPoller   poller-wasi.ts: WASI preview1's poll_oneoff
// Both files are entries of both targets; a namespace nobody names is not
// compiled, so each build imports only what its own poller calls. Every member
// below exists with the same signature in both (test/wasi-build.test.ts checks).
//
// The interface (every result is non-negative or -errno, Linux's numbers):
//   open()                          creates the poller; 0 or -errno. loop.ts calls it only while closed.
//   isOpen()                        true between a successful open and close.
//   fd()                            an fd a driver outside the core can watch, or -1.
//   close()                         releases it; 0 or -errno (it is closed either way).
//   add(fd, interest, token)        registers fd for `interest` (EV_* bits, EV_ERROR
//                                   included); ready records carry `token` back.
//   modify(fd, interest, token)     changes the interest of a registered fd.
//   remove(fd, token)               deregisters fd (the caller ignores the result).
//   addWaker(fd)                    registers the waker's fd for EV_READ under WAKER_TOKEN.
//   wait(buf, max, timeout_ms)      waits up to timeout_ms (-1: no limit, 0: not at
//                                   all), writes up to `max` EVENT_SIZE records at
//                                   `buf` and returns how many.
//   now()                           the poller's monotonic clock in seconds, or -1 if it has none.
//   buffer(len)                     a scratch region of at least `len` bytes for the
//                                   descriptor calls below, or 0 (none, or out of memory).
//   read(fd, ptr, len), write(fd, ptr, len), closeFd(fd), accept(fd),
//   recv(fd, ptr, len), send(fd, ptr, len), shutdown(fd, how)
//                                   descriptor calls on the poller's own fds, for a
//                                   runtime that has no other way to make them.
//
// This implementation's imports are WASIX-shaped and errno-returning: each returns a
// non-negative result or -errno, and none of them may call back into the core (the
// core is not re-entrant: an import runs in the middle of a table update). Its
// descriptor calls return -ENOSYS: with epoll, the native shim makes them.
//
// Invariants
// - epollFd is -1 until open succeeds and again after close; otherwise it is the
//   fd that epoll_create returned, and it is closed exactly once.

import { CTL_ADD, CTL_DEL, CTL_MOD, EV_READ, WAKER_TOKEN, ERRNO_ENOSYS } from "./layout";

// @ts-ignore: decorator
@external("ioloop", "epoll_create")
declare function epoll_create(): i32;

/** op is CTL_ADD, CTL_DEL or CTL_MOD; token is carried back in ready records. */
// @ts-ignore: decorator
@external("ioloop", "epoll_ctl")
declare function epoll_ctl(epfd: i32, op: i32, fd: i32, events: i32, token: i32): i32;

/** Writes up to `max` EVENT_SIZE-byte records at `buf` in the core's memory and
 * returns how many, or -errno. */
// @ts-ignore: decorator
@external("ioloop", "epoll_wait")
declare function epoll_wait(epfd: i32, buf: i32, max: i32, timeout_ms: i32): i32;

// @ts-ignore: decorator
@external("ioloop", "fd_close")
declare function fd_close(fd: i32): i32;

let epollFd: i32 = -1;

// @ts-ignore: decorator
@global namespace EpollPoller {
  export function open(): i32 {
    let fd = epoll_create();
    if (fd < 0) return fd;
    epollFd = fd;
    return 0;
  }

  export function isOpen(): bool {
    return epollFd >= 0;
  }

  export function fd(): i32 {
    return epollFd;
  }

  export function close(): i32 {
    let fd = epollFd;
    epollFd = -1;
    return fd_close(fd);
  }

  export function add(fd: i32, interest: i32, token: u32): i32 {
    return epoll_ctl(epollFd, CTL_ADD, fd, interest, <i32>token);
  }

  export function modify(fd: i32, interest: i32, token: u32): i32 {
    return epoll_ctl(epollFd, CTL_MOD, fd, interest, <i32>token);
  }

  export function remove(fd: i32, token: u32): i32 {
    return epoll_ctl(epollFd, CTL_DEL, fd, 0, <i32>token);
  }

  export function addWaker(fd: i32): i32 {
    return epoll_ctl(epollFd, CTL_ADD, fd, EV_READ, <i32>WAKER_TOKEN);
  }

  export function wait(buf: usize, max: i32, timeout_ms: i32): i32 {
    return epoll_wait(epollFd, <i32>buf, max, timeout_ms);
  }

  export function now(): f64 {
    return -1;
  }

  export function buffer(len: i32): usize {
    return 0;
  }

  export function read(fd: i32, ptr: usize, len: i32): i32 {
    return -ERRNO_ENOSYS;
  }

  export function write(fd: i32, ptr: usize, len: i32): i32 {
    return -ERRNO_ENOSYS;
  }

  export function closeFd(fd: i32): i32 {
    return -ERRNO_ENOSYS;
  }

  export function accept(fd: i32): i32 {
    return -ERRNO_ENOSYS;
  }

  export function recv(fd: i32, ptr: usize, len: i32): i32 {
    return -ERRNO_ENOSYS;
  }

  export function send(fd: i32, ptr: usize, len: i32): i32 {
    return -ERRNO_ENOSYS;
  }

  export function shutdown(fd: i32, how: i32): i32 {
    return -ERRNO_ENOSYS;
  }
}
