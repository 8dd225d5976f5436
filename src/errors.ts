import { getSystemErrorName } from 'node:util';

/**
 * A failed system call: `code` is the errno's name (`'EBADF'`, `'ECONNRESET'`, …),
 * `errno` its number and `syscall` the call that failed.
 *
 * Thrown by {@link sys} and by the fd methods of {@link IOLoop}.
 */
export class SysError extends Error {
  /** The errno's symbolic name, e.g. `'EBADF'`. */
  readonly code: string;
  /** The errno as a positive number, e.g. `9`. */
  readonly errno: number;
  /** The system call (or operation) that failed, e.g. `'epoll_ctl'`. */
  readonly syscall: string;

  constructor(errno: number, syscall: string, detail?: string) {
    const code = errnoName(errno);
    super(`${syscall}: ${code}${detail ? ` (${detail})` : ''}`);
    this.name = 'SysError';
    this.code = code;
    this.errno = errno;
    this.syscall = syscall;
  }
}

/**
 * Rejection of {@link IOLoop.run} when its timeout passes first:
 * `'Operation timed out after N seconds'`.
 */
export class TimeoutError extends Error {
  constructor(message = 'Operation timed out') {
    super(message);
    this.name = 'TimeoutError';
  }
}

/** The symbolic name of a positive errno, or `E<number>` for one Node does not know. */
export function errnoName(errno: number): string {
  try {
    return getSystemErrorName(-errno);
  } catch {
    return `E${errno}`;
  }
}

/**
 * Errno values (Linux's) that the core returns negated and the runtime tests for
 * by name. Their one source is assembly/layout.ts (`ERRNO_*`); a const enum needs
 * literal values, so they are copied here, and test/layout.test.ts checks every
 * member against the core's value and against `os.constants.errno`.
 */
export const enum Errno {
  ENOENT = 2,
  EINTR = 4,
  EBADF = 9,
  EAGAIN = 11,
  ENOMEM = 12,
  EEXIST = 17,
  EINVAL = 22,
  ENOSPC = 28,
  EPIPE = 32,
  ENOSYS = 38,
}

/**
 * A channel's queue is full and the message cannot wait for room: thrown by
 * `post()` on the loop's own thread (which cannot wait for itself to drain the
 * queue). In any other thread `post()` waits instead, and `tryPost()` returns
 * false. The message was not queued.
 */
export class ChannelFullError extends Error {
  constructor(message = 'the channel is full') {
    super(message);
    this.name = 'ChannelFullError';
  }
}

/**
 * The channel is closed: its loop was closed (or its thread ended without
 * closing it), or this sender was closed. Thrown by `post()` and `tryPost()`; the
 * message was not queued.
 */
export class ChannelClosedError extends Error {
  constructor(message = 'the channel is closed') {
    super(message);
    this.name = 'ChannelClosedError';
  }
}
