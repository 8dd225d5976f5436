// The errno values of WASI preview1 (`wasi_snapshot_preview1`, type `errno`, a u16
// enumeration) and their mapping to and from the error codes of Node-style hosts.
//
// Preview1 numbers its errors in the order the standard lists them: ESUCCESS is 0,
// E2BIG 1, ... ENOTCAPABLE 76. They are not Linux's numbers (EAGAIN is 6 here,
// 11 on Linux). This file is the one place of that numbering in the provider.
//
// Extension values: preview1 has no code for a failed name lookup, so the
// provider returns ERRNO_EXT_* values (256 and up, beyond the standard's range)
// for the failures of getaddrinfo that node:net reports as ENOTFOUND, EAI_AGAIN
// and EAI_FAIL. Only sockets opened through the `wasm_ioloop_sock` module (a
// listen or connect with a host name) can carry them.
import * as os from 'node:os';

/** Preview1's errno names, indexed by their value. */
export const ERRNO_NAMES = [
  'ESUCCESS', 'E2BIG', 'EACCES', 'EADDRINUSE', 'EADDRNOTAVAIL', 'EAFNOSUPPORT', 'EAGAIN', 'EALREADY',
  'EBADF', 'EBADMSG', 'EBUSY', 'ECANCELED', 'ECHILD', 'ECONNABORTED', 'ECONNREFUSED', 'ECONNRESET',
  'EDEADLK', 'EDESTADDRREQ', 'EDOM', 'EDQUOT', 'EEXIST', 'EFAULT', 'EFBIG', 'EHOSTUNREACH',
  'EIDRM', 'EILSEQ', 'EINPROGRESS', 'EINTR', 'EINVAL', 'EIO', 'EISCONN', 'EISDIR',
  'ELOOP', 'EMFILE', 'EMLINK', 'EMSGSIZE', 'EMULTIHOP', 'ENAMETOOLONG', 'ENETDOWN', 'ENETRESET',
  'ENETUNREACH', 'ENFILE', 'ENOBUFS', 'ENODEV', 'ENOENT', 'ENOEXEC', 'ENOLCK', 'ENOLINK',
  'ENOMEM', 'ENOMSG', 'ENOPROTOOPT', 'ENOSPC', 'ENOSYS', 'ENOTCONN', 'ENOTDIR', 'ENOTEMPTY',
  'ENOTRECOVERABLE', 'ENOTSOCK', 'ENOTSUP', 'ENOTTY', 'ENXIO', 'EOVERFLOW', 'EOWNERDEAD', 'EPERM',
  'EPIPE', 'EPROTO', 'EPROTONOSUPPORT', 'EPROTOTYPE', 'ERANGE', 'EROFS', 'ESPIPE', 'ESRCH',
  'ESTALE', 'ETIMEDOUT', 'ETXTBSY', 'EXDEV', 'ENOTCAPABLE',
] as const;

/** A name of preview1's errno enumeration. */
export type ErrnoName = (typeof ERRNO_NAMES)[number];

/** Preview1's errno values by name (`Errno.EAGAIN === 6`). */
export const Errno: { readonly [K in ErrnoName]: number } = Object.freeze(
  Object.fromEntries(ERRNO_NAMES.map((name, value) => [name, value])) as { [K in ErrnoName]: number },
);

/** A name lookup found no such host (node:net's `ENOTFOUND`; getaddrinfo's EAI_NONAME or EAI_NODATA). */
export const ERRNO_EXT_ENOTFOUND = 256;
/** A name lookup failed for now (getaddrinfo's EAI_AGAIN). */
export const ERRNO_EXT_EAI_AGAIN = 257;
/** A name lookup failed for good (getaddrinfo's EAI_FAIL, or another resolver failure). */
export const ERRNO_EXT_EAI_FAIL = 258;

const EXTENSION_NAMES: Record<number, string> = {
  [ERRNO_EXT_ENOTFOUND]: 'ENOTFOUND',
  [ERRNO_EXT_EAI_AGAIN]: 'EAI_AGAIN',
  [ERRNO_EXT_EAI_FAIL]: 'EAI_FAIL',
};

/** libuv's (negated) numbers for the extension values, as the native sys returns them. */
const EXTENSION_HOST: Record<number, number> = {
  [ERRNO_EXT_ENOTFOUND]: 3008, // UV_EAI_NONAME
  [ERRNO_EXT_EAI_AGAIN]: 3001, // UV_EAI_AGAIN
  [ERRNO_EXT_EAI_FAIL]: 3004, // UV_EAI_FAIL
};

/**
 * The Node-style code of a preview1 errno value (or of an ERRNO_EXT_* value):
 * `errnoCode(6) === 'EAGAIN'`, `errnoCode(256) === 'ENOTFOUND'`; `E<n>` for a value
 * that has no name.
 */
export function errnoCode(errno: number): string {
  if (Number.isInteger(errno) && errno >= 0 && errno < ERRNO_NAMES.length) return ERRNO_NAMES[errno];
  return EXTENSION_NAMES[errno] ?? `E${errno}`;
}

/** Preview1 errno → Node-style code, for every standard and extension value. */
export const ERRNO_CODES: Readonly<Record<number, string>> = Object.freeze({
  ...Object.fromEntries(ERRNO_NAMES.map((name, value) => [value, name])),
  ...EXTENSION_NAMES,
});

/**
 * The host's own positive errno for a preview1 value, as the native sys would
 * return it negated (Linux's number from `os.constants.errno`; libuv's UV_EAI_*
 * number for an extension value), or undefined where the host has none (ESUCCESS,
 * ENOTCAPABLE).
 */
export function hostErrno(errno: number): number | undefined {
  if (errno in EXTENSION_HOST) return EXTENSION_HOST[errno];
  if (errno <= 0 || errno >= ERRNO_NAMES.length) return undefined;
  const table = os.constants.errno as Record<string, number | undefined>;
  return table[ERRNO_NAMES[errno]];
}

/** Node's codes that are not errno names, or whose name preview1 spells otherwise. */
const NODE_CODES: Record<string, number> = {
  ENOTFOUND: ERRNO_EXT_ENOTFOUND,
  EAI_NONAME: ERRNO_EXT_ENOTFOUND,
  EAI_NODATA: ERRNO_EXT_ENOTFOUND,
  ENODATA: ERRNO_EXT_ENOTFOUND,
  EAI_AGAIN: ERRNO_EXT_EAI_AGAIN,
  EAI_FAIL: ERRNO_EXT_EAI_FAIL,
  ESERVFAIL: ERRNO_EXT_EAI_FAIL,
  EAI_FAMILY: Errno.EAFNOSUPPORT,
  EAI_ADDRFAMILY: Errno.EAFNOSUPPORT,
  EAI_MEMORY: Errno.ENOMEM,
  EAI_SERVICE: Errno.EINVAL,
  EAI_SOCKTYPE: Errno.EINVAL,
  EAI_BADFLAGS: Errno.EINVAL,
  EWOULDBLOCK: Errno.EAGAIN,
  EOPNOTSUPP: Errno.ENOTSUP,
  // node:stream and node:net's own codes
  ERR_STREAM_DESTROYED: Errno.EPIPE,
  ERR_STREAM_WRITE_AFTER_END: Errno.EPIPE,
  ERR_SOCKET_CLOSED: Errno.EPIPE,
  ERR_SOCKET_CLOSED_BEFORE_CONNECTION: Errno.ECONNRESET,
  ERR_SOCKET_CONNECTION_TIMEOUT: Errno.ETIMEDOUT,
  ERR_SOCKET_BAD_PORT: Errno.EINVAL,
  ERR_INVALID_ARG_TYPE: Errno.EINVAL,
  ERR_INVALID_ARG_VALUE: Errno.EINVAL,
  ERR_INVALID_IP_ADDRESS: Errno.EINVAL,
  ERR_OUT_OF_RANGE: Errno.EINVAL,
  ERR_SERVER_ALREADY_LISTEN: Errno.EINVAL,
  ERR_SERVER_NOT_RUNNING: Errno.ENOTCONN,
};

const BY_NAME: Record<string, number> = Object.fromEntries(ERRNO_NAMES.map((name, value) => [name, value]));

/**
 * The preview1 errno of a host error: by its `code` (`'ECONNREFUSED'` → 14,
 * `'ENOTFOUND'` → ERRNO_EXT_ENOTFOUND), EIO for a code it does not know or an
 * error without one. Never 0.
 */
export function errnoOf(err: unknown): number {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  if (typeof code !== 'string') return Errno.EIO;
  const known = NODE_CODES[code] ?? BY_NAME[code];
  return known !== undefined && known !== 0 ? known : Errno.EIO;
}
