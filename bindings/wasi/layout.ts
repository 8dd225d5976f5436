// Record layouts and flag values of WASI preview1 (`wasi_snapshot_preview1`) that
// the provider reads and writes in the guest's memory: little-endian, each field at
// its natural alignment, as the standard's witx type definitions lay them out.

/** `subscription`: 48 bytes, align 8. */
export const SUBSCRIPTION_SIZE = 48;
/** `subscription.userdata`: u64. */
export const SUB_USERDATA = 0;
/** `subscription.u.tag` (an `eventtype`): u8. */
export const SUB_TAG = 8;
/** `subscription_clock.id` (a `clockid`): u32. */
export const SUB_CLOCK_ID = 16;
/** `subscription_clock.timeout` (a `timestamp`, ns): u64. */
export const SUB_CLOCK_TIMEOUT = 24;
/** `subscription_clock.precision` (ns): u64. */
export const SUB_CLOCK_PRECISION = 32;
/** `subscription_clock.flags` (`subclockflags`): u16. */
export const SUB_CLOCK_FLAGS = 40;
/** `subscription_fd_readwrite.file_descriptor`: u32. */
export const SUB_FD = 16;

/** `event`: 32 bytes, align 8. */
export const EVENT_SIZE = 32;
/** `event.userdata`: u64, copied from the subscription. */
export const EVENT_USERDATA = 0;
/** `event.error` (an `errno`): u16. */
export const EVENT_ERROR = 8;
/** `event.type` (an `eventtype`): u8. */
export const EVENT_TYPE = 10;
/** `event_fd_readwrite.nbytes` (a `filesize`): u64. */
export const EVENT_NBYTES = 16;
/** `event_fd_readwrite.flags` (`eventrwflags`): u16. */
export const EVENT_FLAGS = 24;

/** `iovec` and `ciovec`: {buf u32, buf_len u32}, 8 bytes. */
export const IOVEC_SIZE = 8;

/** `eventtype`. */
export const EVENTTYPE_CLOCK = 0;
export const EVENTTYPE_FD_READ = 1;
export const EVENTTYPE_FD_WRITE = 2;

/** `eventrwflags`: the peer has closed or disconnected. */
export const EVENT_FD_READWRITE_HANGUP = 1;

/** `subclockflags`: the timeout is an absolute time of the clock. */
export const SUBSCRIPTION_CLOCK_ABSTIME = 1;

/** `clockid`. */
export const CLOCKID_REALTIME = 0;
export const CLOCKID_MONOTONIC = 1;
export const CLOCKID_PROCESS_CPUTIME_ID = 2;
export const CLOCKID_THREAD_CPUTIME_ID = 3;

/** `fdflags`. */
export const FDFLAGS_APPEND = 1;
export const FDFLAGS_DSYNC = 2;
export const FDFLAGS_NONBLOCK = 4;
export const FDFLAGS_RSYNC = 8;
export const FDFLAGS_SYNC = 16;

/** `riflags`. */
export const RIFLAGS_RECV_PEEK = 1;
export const RIFLAGS_RECV_WAITALL = 2;
/** `roflags`. */
export const ROFLAGS_RECV_DATA_TRUNCATED = 1;

/** `sdflags`. */
export const SDFLAGS_RD = 1;
export const SDFLAGS_WR = 2;

/** `wasm_ioloop_sock.sock_listen_tcp` flags: set SO_REUSEPORT where the host can. */
export const LISTEN_REUSE_PORT = 1;
