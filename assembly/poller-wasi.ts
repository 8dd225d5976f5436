// The poller of the WASI build (wasm/core-wasi.wasm): WASI preview1's poll_oneoff.
//
// poller.ts describes the interface; asconfig.json's `wasi` target binds the global
// `Poller` to `WasiPoller` below. The build imports nothing but these nine
// functions of `wasi_snapshot_preview1`: poll_oneoff, clock_time_get, fd_read,
// fd_write, fd_close, sock_accept, sock_recv, sock_send, sock_shutdown. The
// poller itself needs poll_oneoff and clock_time_get; the rest are passed through,
// one call each, for the runtime's `loop.sys` (sys.ts), so every call of a loop
// goes to the same WASI host.
//
// poll_oneoff keeps no registrations: each wait hands the host every subscription.
// They are built from the handler table (handlers.ts), when it changed since the
// last wait, into three regions:
//   subscriptions  48 bytes each (preview1's `subscription`): at 0 a clock
//                  subscription for the timeout; then, per registered fd, one for
//                  EV_WRITE and one for EV_READ, as its interest asks. userdata is
//                  the fd's entry number (the clock's is CLOCK_USERDATA).
//   events         32 bytes each (preview1's `event`), as many as subscriptions.
//   entries        16 bytes per registered fd with READ or WRITE interest:
//                    offset 0  u32 token   the handler's token
//                    offset 4  u32 serial  the wait that last wrote its record
//                    offset 8  u32 record  the index of that record in the ready buffer
// A wait turns the host's events into ready records: both events of one fd go
// into one record (its token, the OR of their bits), so a handler runs once per
// iteration with both bits, as with epoll. preview1 events map to EV_* bits:
// fd_read → EV_READ, fd_write → EV_WRITE, the hangup flag → EPOLLHUP, an error →
// EPOLLERR (the two halves of EV_ERROR).
//
// Timeouts are relative clock subscriptions on the monotonic clock, in whole
// milliseconds (the runtime rounds up), never negative: node:wasi compares an
// absolute deadline with the realtime clock through an unsigned subtraction and
// truncates its timeout to whole milliseconds, and its timer may end up to a
// millisecond early; a wait that ends before its timeout with nothing ready
// therefore waits again for the rest, by clock_time_get.
//
// Limits (the host decides, the poller cannot):
// - No waker: there is nothing another thread could write to that poll_oneoff
//   watches; addWaker returns -ENOSYS.
// - An fd registered for neither READ nor WRITE is not subscribed at all, so its
//   errors are not reported until it asks for one (preview1 cannot poll for errors
//   alone, and a read subscription would report readiness nobody asked for).
// - Whether poll_oneoff blocks is the host's: node:wasi's does; the package's own
//   provider's never does, and tells the driver when a socket became ready.
// - node:wasi polls one fd once: its second subscription of an fd shares the
//   first's direction, which is why EV_WRITE comes first (a handler that asked for
//   both is told it can write, writes, and drops WRITE); with more than one fd its
//   poll_oneoff returns only when all of them are ready or the timeout passes; with
//   a zero timeout it reports no fd at all; and a subscription of a closed fd
//   followed by any other kills the process (a null dereference). So an fd closed
//   through closeFd while registered is no longer subscribed, as epoll drops a
//   closed fd from its set (test/wasi-node.test.ts shows each of these).
//
// Invariants
// - `opened` is true between open and close; add, modify and remove only mark the
//   subscriptions stale, and wait rebuilds them before it polls.
// - Records [0, n) of the ready buffer after a wait have distinct tokens.

import {
  EV_READ, EV_WRITE, EVENT_SIZE, EVENT_TOKEN_OFFSET, EVENT_EVENTS_OFFSET,
  MAX_POLL_TIMEOUT, HANDLER_SLOT_BITS, ERRNO_EBADF, ERRNO_ENOMEM, ERRNO_ENOSYS,
} from "./layout";
import { regionGrow, grantedBytes } from "./memory";
import { handlerSlotsUsed, handlerFdAt, handlerInterestAt, handlerTokenAt, handler_slot } from "./handlers";
import { errnoFromWasi } from "./wasi-errno";

// ---------------------------------------------------------------- imports

// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "poll_oneoff")
declare function poll_oneoff(subscriptions: usize, events: usize, nsubscriptions: u32, nevents: usize): u32;

// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "clock_time_get")
declare function clock_time_get(id: u32, precision: u64, time: usize): u32;

// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_read")
declare function fd_read(fd: i32, iovs: usize, iovs_len: u32, nread: usize): u32;

// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_write")
declare function fd_write(fd: i32, iovs: usize, iovs_len: u32, nwritten: usize): u32;

// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_close")
declare function fd_close(fd: i32): u32;

// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "sock_accept")
declare function sock_accept(fd: i32, flags: u32, result_fd: usize): u32;

// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "sock_recv")
declare function sock_recv(fd: i32, ri_data: usize, ri_data_len: u32, ri_flags: u32, ro_datalen: usize, ro_flags: usize): u32;

// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "sock_send")
declare function sock_send(fd: i32, si_data: usize, si_data_len: u32, si_flags: u32, so_datalen: usize): u32;

// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "sock_shutdown")
declare function sock_shutdown(fd: i32, how: u32): u32;

// ---------------------------------------------------------------- preview1's records

const SUBSCRIPTION_SIZE: usize = 48;
const SUB_USERDATA: usize = 0; // u64
const SUB_TAG: usize = 8; // u8 eventtype
const SUB_CLOCK_ID: usize = 16; // u32
const SUB_CLOCK_TIMEOUT: usize = 24; // u64 ns
const SUB_CLOCK_PRECISION: usize = 32; // u64 ns
const SUB_CLOCK_FLAGS: usize = 40; // u16; 0: relative
const SUB_FD: usize = 16; // u32

const EVENT_RECORD_SIZE: usize = 32;
const EV_USERDATA: usize = 0; // u64
const EV_ERRNO: usize = 8; // u16
const EV_TYPE: usize = 10; // u8
const EV_FLAGS: usize = 24; // u16

const EVENTTYPE_CLOCK: u8 = 0;
const EVENTTYPE_FD_READ: u8 = 1;
const EVENTTYPE_FD_WRITE: u8 = 2;
const EVENT_FD_READWRITE_HANGUP: u16 = 1;
const CLOCKID_MONOTONIC: u32 = 1;
const FDFLAGS_NONBLOCK: u32 = 4;

/** The userdata of the clock subscription; an fd's is its entry number. */
const CLOCK_USERDATA: u64 = 0xffffffffffffffff;

/** The halves of EV_ERROR: EPOLLERR and EPOLLHUP. */
const EV_ERR: i32 = 0x008;
const EV_HUP: i32 = 0x010;

const ENTRY_SIZE: usize = 16;
const ENTRY_TOKEN: usize = 0;
const ENTRY_SERIAL: usize = 4;
const ENTRY_RECORD: usize = 8;

const NS_PER_MS: u64 = 1000000;
/** A wait with no limit (-1) waits this long, as the loop's longest poll. */
const MAX_WAIT_MS: u64 = <u64>(MAX_POLL_TIMEOUT * 1000);

// ---------------------------------------------------------------- state

let opened = false;
/** The handler table changed since the subscriptions were built. */
let stale = true;

let subsBase: usize = 0;
let subsCapacity: usize = 0; // bytes
let eventsBase: usize = 0;
let eventsCapacity: usize = 0; // bytes
let entriesBase: usize = 0;
let entriesCapacity: usize = 0; // bytes
/** Subscriptions built, the clock's included. */
let nsubs: u32 = 1;
/** Entries built. */
let nentries: u32 = 0;
/** The number of the current wait, for the entries' serial (0 is never current). */
let serial: u32 = 0;

let scratchBase: usize = 0;
let scratchCapacity: usize = 0;

/** By handler slot: ~token of a registration whose fd closeFd closed (0: none; no
 * handler token is 0xffffffff, so ~token is never 0). Its subscriptions are left out. */
let closedBase: usize = 0;
let closedCapacity: usize = 0; // bytes

/** Words for the calls' results: [0, 8) an iovec, [8, 16) results, [16, 24) a u64. */
// @ts-ignore: decorator
@lazy const words: usize = memory.data(24, 16);

// ---------------------------------------------------------------- helpers

/** Grows a region of `capacity` bytes at `base` to at least `need` bytes (doubling);
 * returns the new base with grantedBytes set, or 0. */
function ensure(base: usize, capacity: usize, need: u64): usize {
  if (need <= <u64>capacity) {
    grantedBytes = capacity;
    return base;
  }
  let want = max<u64>(need, <u64>capacity * 2);
  return regionGrow(base, capacity, want, need);
}

/** Rebuilds the subscriptions and entries from the handler table; false if memory
 * is exhausted (the previous ones stay). */
function rebuild(): bool {
  let slotCount = handlerSlotsUsed();
  let needSubs = (1 + 2 * <u64>slotCount) * <u64>SUBSCRIPTION_SIZE;
  let needEvents = (1 + 2 * <u64>slotCount) * <u64>EVENT_RECORD_SIZE;
  let needEntries = max<u64>(1, <u64>slotCount) * <u64>ENTRY_SIZE;
  let p = ensure(subsBase, subsCapacity, needSubs);
  if (p == 0) return false;
  subsBase = p;
  subsCapacity = grantedBytes;
  p = ensure(eventsBase, eventsCapacity, needEvents);
  if (p == 0) return false;
  eventsBase = p;
  eventsCapacity = grantedBytes;
  p = ensure(entriesBase, entriesCapacity, needEntries);
  if (p == 0) return false;
  entriesBase = p;
  entriesCapacity = grantedBytes;

  let clock = subsBase;
  store<u64>(clock, CLOCK_USERDATA, SUB_USERDATA);
  store<u8>(clock, EVENTTYPE_CLOCK, SUB_TAG);
  store<u32>(clock, CLOCKID_MONOTONIC, SUB_CLOCK_ID);
  store<u64>(clock, 0, SUB_CLOCK_PRECISION);
  store<u16>(clock, 0, SUB_CLOCK_FLAGS);
  let n: u32 = 1;
  let e: u32 = 0;
  for (let slot: u32 = 0; slot < slotCount; slot++) {
    let fd = handlerFdAt(slot);
    if (fd < 0 || isClosed(slot)) continue;
    let interest = handlerInterestAt(slot);
    if ((interest & (EV_READ | EV_WRITE)) == 0) continue;
    let entry = entriesBase + <usize>e * ENTRY_SIZE;
    store<u32>(entry, handlerTokenAt(slot), ENTRY_TOKEN);
    store<u32>(entry, 0, ENTRY_SERIAL);
    if ((interest & EV_WRITE) != 0) subscribe(n++, e, EVENTTYPE_FD_WRITE, fd);
    if ((interest & EV_READ) != 0) subscribe(n++, e, EVENTTYPE_FD_READ, fd);
    e++;
  }
  nsubs = n;
  nentries = e;
  stale = false;
  return true;
}

// @ts-ignore: decorator
@inline function subscribe(index: u32, entry: u32, type: u8, fd: i32): void {
  let s = subsBase + <usize>index * SUBSCRIPTION_SIZE;
  store<u64>(s, <u64>entry, SUB_USERDATA);
  store<u8>(s, type, SUB_TAG);
  store<u32>(s, <u32>fd, SUB_FD);
}

/** True if the registration in `slot` is of an fd closeFd closed. */
// @ts-ignore: decorator
@inline function isClosed(slot: u32): bool {
  return <usize>slot * 4 < closedCapacity && load<u32>(closedBase + <usize>slot * 4) == ~handlerTokenAt(slot);
}

/** Leaves the registration of `fd`, if any, out of the subscriptions from now on. */
function markClosed(fd: i32): void {
  let slot = handler_slot(fd);
  if (slot < 0) return;
  let p = ensure(closedBase, closedCapacity, (<u64>slot + 1) * 4);
  if (p == 0) return; // out of memory: the registration stays subscribed
  closedBase = p;
  closedCapacity = grantedBytes;
  store<u32>(closedBase + <usize>slot * 4, ~handlerTokenAt(<u32>slot));
  stale = true;
}

/** Forgets the mark of the slot a token names (its registration is new, or gone). */
// @ts-ignore: decorator
@inline function clearClosed(token: u32): void {
  let slot = token & ((1 << HANDLER_SLOT_BITS) - 1);
  if (<usize>slot * 4 < closedCapacity) store<u32>(closedBase + <usize>slot * 4, 0);
}

/** The monotonic clock in ns, or -1 if the host cannot read it. */
function nowNs(): i64 {
  if (clock_time_get(CLOCKID_MONOTONIC, 1, words + 16) != 0) return -1;
  return load<i64>(words + 16);
}

/** Turns `count` events into ready records at `buf` (at most `max`); returns how many. */
function collect(buf: usize, max: i32, count: u32): i32 {
  if (++serial == 0) {
    // After 2^32 waits: forget every serial, so none is mistaken for the new one.
    memory.fill(entriesBase, 0, entriesCapacity);
    serial = 1;
  }
  let n: i32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    let ev = eventsBase + <usize>i * EVENT_RECORD_SIZE;
    let type = load<u8>(ev, EV_TYPE);
    if (type == EVENTTYPE_CLOCK) continue;
    let userdata = load<u64>(ev, EV_USERDATA);
    if (userdata >= <u64>nentries) continue;
    let bits = type == EVENTTYPE_FD_READ ? EV_READ : type == EVENTTYPE_FD_WRITE ? EV_WRITE : 0;
    if (load<u16>(ev, EV_ERRNO) != 0) bits |= EV_ERR;
    if ((load<u16>(ev, EV_FLAGS) & EVENT_FD_READWRITE_HANGUP) != 0) bits |= EV_HUP;
    if (bits == 0) continue;
    let entry = entriesBase + <usize>userdata * ENTRY_SIZE;
    if (load<u32>(entry, ENTRY_SERIAL) == serial) {
      let record = buf + <usize>load<u32>(entry, ENTRY_RECORD) * <usize>EVENT_SIZE;
      store<u32>(record, load<u32>(record, EVENT_EVENTS_OFFSET) | <u32>bits, EVENT_EVENTS_OFFSET);
      continue;
    }
    if (n >= max) continue;
    let record = buf + <usize>n * <usize>EVENT_SIZE;
    store<u32>(record, load<u32>(entry, ENTRY_TOKEN), EVENT_TOKEN_OFFSET);
    store<u32>(record, <u32>bits, EVENT_EVENTS_OFFSET);
    store<u32>(entry, serial, ENTRY_SERIAL);
    store<u32>(entry, <u32>n, ENTRY_RECORD);
    n++;
  }
  return n;
}

/** One poll_oneoff with a relative timeout of `ms`; the number of events, or -errno. */
function pollOnce(ms: u64): i32 {
  store<u64>(subsBase, ms * NS_PER_MS, SUB_CLOCK_TIMEOUT);
  store<u32>(words + 8, 0);
  let err = poll_oneoff(subsBase, eventsBase, nsubs, words + 8);
  if (err != 0) return -errnoFromWasi(err);
  let count = load<u32>(words + 8);
  return <i32>min<u32>(count, nsubs);
}

/** An iovec of one buffer at `words`. */
// @ts-ignore: decorator
@inline function iovec(ptr: usize, len: i32): usize {
  store<u32>(words, <u32>ptr);
  store<u32>(words, <u32>len, 4);
  return words;
}

// @ts-ignore: decorator
@inline function result(err: u32): i32 {
  return err != 0 ? -errnoFromWasi(err) : <i32>load<u32>(words + 8);
}

// ---------------------------------------------------------------- the interface

// @ts-ignore: decorator
@global namespace WasiPoller {
  export function open(): i32 {
    opened = true;
    stale = true;
    return 0;
  }

  export function isOpen(): bool {
    return opened;
  }

  /** No fd: a driver outside the core has nothing of this poller to watch. */
  export function fd(): i32 {
    return -1;
  }

  export function close(): i32 {
    opened = false;
    return 0;
  }

  /** Marks the subscriptions stale. A host that says the fd does not exist (a
   * zero-length fd_read, or fd_write for WRITE alone, fails with EBADF) refuses it. */
  export function add(fd: i32, interest: i32, token: u32): i32 {
    if (!opened) return -ERRNO_EBADF;
    let iov = iovec(0, 0);
    let err = (interest & (EV_READ | EV_WRITE)) == EV_WRITE
      ? fd_write(fd, iov, 1, words + 8)
      : fd_read(fd, iov, 1, words + 8);
    if (err != 0 && errnoFromWasi(err) == ERRNO_EBADF) return -ERRNO_EBADF;
    clearClosed(token);
    stale = true;
    return 0;
  }

  export function modify(fd: i32, interest: i32, token: u32): i32 {
    if (!opened) return -ERRNO_EBADF;
    stale = true;
    return 0;
  }

  export function remove(fd: i32, token: u32): i32 {
    clearClosed(token);
    stale = true;
    return 0;
  }

  /** The WASI build has no waker. */
  export function addWaker(fd: i32): i32 {
    return -ERRNO_ENOSYS;
  }

  export function wait(buf: usize, max: i32, timeout_ms: i32): i32 {
    if (!opened) return -ERRNO_EBADF;
    if (stale && !rebuild()) return -ERRNO_ENOMEM;
    let ms: u64 = timeout_ms < 0 ? MAX_WAIT_MS : <u64>timeout_ms;
    let deadline: i64 = -1;
    if (ms > 0 && timeout_ms >= 0) {
      let start = nowNs();
      if (start >= 0) deadline = start + <i64>(ms * NS_PER_MS);
    }
    while (true) {
      let count = pollOnce(ms);
      if (count < 0) return count;
      let n = collect(buf, max, <u32>count);
      if (n > 0 || deadline < 0) return n;
      // Nothing ready: a host whose timer ended early is asked again for the rest.
      let now = nowNs();
      if (now < 0 || now >= deadline) return 0;
      ms = (<u64>(deadline - now) + NS_PER_MS - 1) / NS_PER_MS;
    }
  }

  export function now(): f64 {
    let ns = nowNs();
    return ns < 0 ? -1 : <f64>ns / 1e9;
  }

  export function buffer(len: i32): usize {
    if (len < 0) return 0;
    let need = max<u64>(16, <u64>len);
    let p = ensure(scratchBase, scratchCapacity, need);
    if (p == 0) return 0;
    scratchBase = p;
    scratchCapacity = grantedBytes;
    return p;
  }

  export function read(fd: i32, ptr: usize, len: i32): i32 {
    return result(fd_read(fd, iovec(ptr, len), 1, words + 8));
  }

  export function write(fd: i32, ptr: usize, len: i32): i32 {
    return result(fd_write(fd, iovec(ptr, len), 1, words + 8));
  }

  /** fd_close; a registered fd it closes is no longer subscribed. */
  export function closeFd(fd: i32): i32 {
    let err = fd_close(fd);
    if (err != 0) return -errnoFromWasi(err);
    markClosed(fd);
    return 0;
  }

  export function accept(fd: i32): i32 {
    return result(sock_accept(fd, FDFLAGS_NONBLOCK, words + 8));
  }

  export function recv(fd: i32, ptr: usize, len: i32): i32 {
    return result(sock_recv(fd, iovec(ptr, len), 1, 0, words + 8, words + 12));
  }

  export function send(fd: i32, ptr: usize, len: i32): i32 {
    return result(sock_send(fd, iovec(ptr, len), 1, 0, words + 8));
  }

  export function shutdown(fd: i32, how: i32): i32 {
    let err = sock_shutdown(fd, <u32>how);
    return err != 0 ? -errnoFromWasi(err) : 0;
  }
}
