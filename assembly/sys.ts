// Descriptor calls and the clock, passed through the poller (the global `Poller`,
// poller.ts) for a runtime that has no other way to make them: the WASI build's
// `loop.sys` calls its host's fd_read, fd_write, fd_close and sock_* through these,
// on the fds of the same host the poller watches. The epoll build's return -ENOSYS
// (38) and clock_now -1: there the native shim makes the calls and the runtime
// reads its own clock.
//
// Buffers are in the core's memory: `sys_buffer(len)` hands out a scratch region
// of at least `len` bytes, which stays valid until the next sys_buffer call (it may
// move when it grows; memory.grow detaches the JS views of the old buffer).
// Every result is non-negative or -errno, Linux's numbers, as the shim returns them.

import { errnoFromWasi } from "./wasi-errno";

/** A scratch region of at least `len` bytes for the calls below; 0 if there is none
 * (the epoll build) or memory is exhausted. */
export function sys_buffer(len: i32): usize {
  return Poller.buffer(len);
}

/** fd_read of `len` bytes into `ptr`: the bytes read (0 at end of file) or -errno. */
export function sys_read(fd: i32, ptr: usize, len: i32): i32 {
  return Poller.read(fd, ptr, len);
}

/** fd_write of `len` bytes from `ptr`: the bytes written or -errno. */
export function sys_write(fd: i32, ptr: usize, len: i32): i32 {
  return Poller.write(fd, ptr, len);
}

/** fd_close: 0 or -errno. */
export function sys_close(fd: i32): i32 {
  return Poller.closeFd(fd);
}

/** sock_accept with the nonblocking flag: the new fd or -errno (-11, EAGAIN, when none is pending). */
export function sys_accept(fd: i32): i32 {
  return Poller.accept(fd);
}

/** sock_recv of `len` bytes into `ptr`, no flags: the bytes received or -errno. */
export function sys_recv(fd: i32, ptr: usize, len: i32): i32 {
  return Poller.recv(fd, ptr, len);
}

/** sock_send of `len` bytes from `ptr`, no flags: the bytes sent or -errno. */
export function sys_send(fd: i32, ptr: usize, len: i32): i32 {
  return Poller.send(fd, ptr, len);
}

/** sock_shutdown (`how`: 1 read, 2 write, 3 both, as preview1's sdflags): 0 or -errno. */
export function sys_shutdown(fd: i32, how: i32): i32 {
  return Poller.shutdown(fd, how);
}

/** The poller's monotonic clock in seconds (clock_time_get in the WASI build), or
 * -1 where it has none (the epoll build) or the host cannot read it. */
export function clock_now(): f64 {
  return Poller.now();
}

/** Linux's errno for a WASI preview1 errno (wasi-errno.ts), for errors the runtime
 * gets from its WASI host directly. */
export function errno_from_wasi(errno: i32): i32 {
  return errnoFromWasi(<u32>errno);
}
