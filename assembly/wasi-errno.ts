// WASI preview1's errno numbers, as Linux numbers them.
//
// preview1 numbers its errno values alphabetically (`errno` in the witx spec:
// 0 success, 1 2big, 2 acces, ... 76 notcapable); the core returns Linux's numbers
// negated, as the native shim does, so the runtime names both the same way
// (SysError's `code`). test/wasi-build.test.ts checks every entry against the OS.
// The package's provider adds three numbers past preview1's for failed name
// lookups (bindings/wasi/errno.ts, ERRNO_EXT_*).

/** Linux's errno for preview1 errno 0 .. 76. `notcapable` (76), which Linux does
 * not have, becomes EPERM; 0 (success) stays 0. */
// @ts-ignore: decorator
@lazy const LINUX_ERRNO: usize = memory.data<u8>([
  0, 7, 13, 98, 99, 97, 11, 114, 9, 74,        //  0 success 2big acces addrinuse addrnotavail afnosupport again already badf badmsg
  16, 125, 10, 103, 111, 104, 35, 89, 33, 122, // 10 busy canceled child connaborted connrefused connreset deadlk destaddrreq dom dquot
  17, 14, 27, 113, 43, 84, 115, 4, 22, 5,      // 20 exist fault fbig hostunreach idrm ilseq inprogress intr inval io
  106, 21, 40, 24, 31, 90, 72, 36, 100, 102,   // 30 isconn isdir loop mfile mlink msgsize multihop nametoolong netdown netreset
  101, 23, 105, 19, 2, 8, 37, 67, 12, 42,      // 40 netunreach nfile nobufs nodev noent noexec nolck nolink nomem nomsg
  92, 28, 38, 107, 20, 39, 131, 88, 95, 25,    // 50 noprotoopt nospc nosys notconn notdir notempty notrecoverable notsock notsup notty
  6, 75, 130, 1, 32, 71, 93, 91, 34, 30,       // 60 nxio overflow ownerdead perm pipe proto protonosupport prototype range rofs
  29, 3, 116, 110, 26, 18, 1,                  // 70 spipe srch stale timedout txtbsy xdev notcapable
]);

/** Entries in LINUX_ERRNO. */
const WASI_ERRNO_COUNT: u32 = 77;

/** EIO: what a number preview1 does not define becomes. */
const LINUX_EIO: i32 = 5;

/** The package's provider returns 256, 257 and 258 for a failed name lookup
 * (preview1 has no number for it); they become libuv's UV_EAI_NONAME, UV_EAI_AGAIN
 * and UV_EAI_FAIL, which the native shim returns for the same failures (Node names
 * them EAI_NONAME, EAI_AGAIN, EAI_FAIL). */
const EXT_LOOKUP_FIRST: u32 = 256;
const UV_EAI_NONAME: i32 = 3008;
const UV_EAI_AGAIN: i32 = 3001;
const UV_EAI_FAIL: i32 = 3004;

/** Linux's number for a preview1 errno (libuv's for a name lookup); a number
 * neither preview1 nor the provider defines becomes EIO, a failure with no
 * better name. */
export function errnoFromWasi(errno: u32): i32 {
  if (errno < WASI_ERRNO_COUNT) return <i32>load<u8>(LINUX_ERRNO + <usize>errno);
  if (errno == EXT_LOOKUP_FIRST) return UV_EAI_NONAME;
  if (errno == EXT_LOOKUP_FIRST + 1) return UV_EAI_AGAIN;
  if (errno == EXT_LOOKUP_FIRST + 2) return UV_EAI_FAIL;
  return LINUX_EIO;
}
