// Handlers: which fds are registered with the poller, under which tokens.
//
// fd table: a direct array indexed by fd of u32 (slot + 1), 0 for "not registered";
// it grows to the largest fd registered, as fds are small dense integers.
// Handler slot: a 16-byte record
//   offset 0   i32 fd          -1 while the slot is free
//   offset 4   i32 interest    the events registered, always including EV_ERROR
//   offset 8   u32 generation  changes (mod 2^(32 - HANDLER_SLOT_BITS)) whenever the slot is freed
//   offset 12  u32 next        next free slot, while free
// Token = slot | (generation << HANDLER_SLOT_BITS): what the kernel carries back.
//
// Invariants
// - fdTable[fd] == slot + 1 exactly when slot's record has that fd; the runtime
//   keeps its closures in a dense array by the same slot.
// - A token is current exactly when its slot is in use and has its generation.
//   Freeing a slot changes the generation, so ready records of a removed fd, or of
//   an fd whose slot was reused before the records were read, are not current and
//   are dropped. (The generation has 12 bits; a record is misattributed only if its
//   slot is freed a multiple of 4096 times between a poll and the record's read.)
// - Slots are < MAX_HANDLER_SLOTS = 2^HANDLER_SLOT_BITS - 1. Never handing out the
//   all-ones slot means no token can equal WAKER_TOKEN, whatever the generation.
// - Every failure leaves the table as it was: registration with the kernel comes
//   after all the memory it needs is reserved, except the fd table, which grows
//   only once the kernel accepts the fd (so a bogus huge fd costs no memory), and
//   whose growth failing undoes the kernel registration.

import { EV_ERROR, EV_READ, CTL_ADD, CTL_DEL, CTL_MOD, HANDLER_SLOT_BITS, WAKER_TOKEN } from "./layout";
import { ERRNO_EBADF, ERRNO_ENOENT, ERRNO_EEXIST, ERRNO_ENOMEM, ERRNO_ENOSPC } from "./layout";
import { regionGrow, grantedBytes } from "./memory";
import { epoll_ctl, epollFd } from "./poller";

const HANDLER_SLOT_SIZE: usize = 16;
const SLOT_MASK: u32 = (1 << HANDLER_SLOT_BITS) - 1;
const GENERATION_MASK: u32 = (1 << (32 - HANDLER_SLOT_BITS)) - 1;
const MAX_HANDLER_SLOTS: u32 = (1 << HANDLER_SLOT_BITS) - 1;
const NO_SLOT: u32 = 0xffffffff;
const INITIAL_SLOTS: u64 = 64;
const INITIAL_FDS: u64 = 1024;

let fdTableBase: usize = 0;
/** Entries in the fd table (fds 0 .. fdTableLength-1). */
let fdTableLength: u32 = 0;

let slotBase: usize = 0;
let slotCapacity: u32 = 0;
/** Slots handed out at least once. */
let slotCount: u32 = 0;
let freeHead: u32 = NO_SLOT;
/** Registered fds. */
let registered: u32 = 0;

// @ts-ignore: decorator
@inline function slotPtr(slot: u32): usize {
  return slotBase + (<usize>slot << 4);
}

/** The slot registered for fd, or NO_SLOT. */
// @ts-ignore: decorator
@inline function lookup(fd: i32): u32 {
  if (fd < 0 || <u32>fd >= fdTableLength) return NO_SLOT;
  return load<u32>(fdTableBase + (<usize>fd << 2)) - 1;
}

// @ts-ignore: decorator
@inline function tokenOf(slot: u32): u32 {
  return slot | (load<u32>(slotPtr(slot), 8) << HANDLER_SLOT_BITS);
}

function growFdTable(fd: i32): bool {
  let need = <u64>fd + 1;
  let want = max<u64>(need, max<u64>(INITIAL_FDS, <u64>fdTableLength * 2));
  let p = regionGrow(fdTableBase, <usize>fdTableLength << 2, want << 2, need << 2);
  if (p == 0) return false;
  fdTableBase = p;
  fdTableLength = <u32>(grantedBytes >> 2);
  return true;
}

function growSlots(): bool {
  let want = max<u64>(INITIAL_SLOTS, <u64>slotCapacity * 2);
  if (want > <u64>MAX_HANDLER_SLOTS) want = <u64>MAX_HANDLER_SLOTS;
  let need = <u64>slotCapacity + 1;
  let p = regionGrow(slotBase, <usize>slotCapacity * HANDLER_SLOT_SIZE,
    want * HANDLER_SLOT_SIZE, need * HANDLER_SLOT_SIZE);
  if (p == 0) return false;
  slotBase = p;
  slotCapacity = <u32>(grantedBytes / HANDLER_SLOT_SIZE);
  return true;
}

/**
 * Registers fd with the poller for `events | EV_ERROR`. Returns the new slot
 * (>= 0), -9 (EBADF) if fd < 0, -17 (EEXIST) if fd is already registered, the
 * poller's -errno, -12 (ENOMEM) if memory is exhausted, or -28 (ENOSPC, as
 * epoll_ctl says at its watch limit) if 2^HANDLER_SLOT_BITS - 1 fds are
 * registered. On any error nothing changes.
 */
export function handler_add(fd: i32, events: i32): i32 {
  if (fd < 0) return -ERRNO_EBADF;
  if (lookup(fd) != NO_SLOT) return -ERRNO_EEXIST;
  let fresh = freeHead == NO_SLOT;
  if (fresh) {
    if (slotCount >= MAX_HANDLER_SLOTS) return -ERRNO_ENOSPC;
    if (slotCount >= slotCapacity && !growSlots()) return -ERRNO_ENOMEM;
    // A fresh record past slotCount is still the zero its region started as, so
    // its generation is 0.
  }
  let slot = fresh ? slotCount : freeHead;
  let interest = events | EV_ERROR;
  let token = tokenOf(slot);
  let result = epoll_ctl(epollFd, CTL_ADD, fd, interest, <i32>token);
  if (result < 0) return result;
  if (<u32>fd >= fdTableLength && !growFdTable(fd)) {
    epoll_ctl(epollFd, CTL_DEL, fd, 0, <i32>token);
    return -ERRNO_ENOMEM;
  }
  let p = slotPtr(slot);
  if (fresh) {
    slotCount++;
  } else {
    freeHead = load<u32>(p, 12);
  }
  store<i32>(p, fd);
  store<i32>(p, interest, 4);
  store<u32>(fdTableBase + (<usize>fd << 2), slot + 1);
  registered++;
  return <i32>slot;
}

/**
 * Changes the events fd is registered for to `events | EV_ERROR` (epoll_ctl MOD).
 * Returns 0, -2 (ENOENT) if fd is not registered, or the poller's -errno, in which
 * case the registration is unchanged.
 */
export function handler_update(fd: i32, events: i32): i32 {
  let slot = lookup(fd);
  if (slot == NO_SLOT) return -ERRNO_ENOENT;
  let interest = events | EV_ERROR;
  let result = epoll_ctl(epollFd, CTL_MOD, fd, interest, <i32>tokenOf(slot));
  if (result < 0) return result;
  store<i32>(slotPtr(slot), interest, 4);
  return 0;
}

/**
 * Unregisters fd and returns the slot it had, or -2 (ENOENT) if it was not
 * registered. The poller's error from epoll_ctl DEL is ignored: the fd may already
 * be closed, which removed it from the epoll set. The slot's generation changes,
 * so ready records of fd not yet read are dropped by event_next.
 */
export function handler_remove(fd: i32): i32 {
  let slot = lookup(fd);
  if (slot == NO_SLOT) return -ERRNO_ENOENT;
  let p = slotPtr(slot);
  epoll_ctl(epollFd, CTL_DEL, fd, 0, <i32>tokenOf(slot));
  store<i32>(p, -1);
  store<i32>(p, 0, 4);
  store<u32>(p, (load<u32>(p, 8) + 1) & GENERATION_MASK, 8);
  store<u32>(p, freeHead, 12);
  freeHead = slot;
  store<u32>(fdTableBase + (<usize>fd << 2), 0);
  registered--;
  return <i32>slot;
}

/** The slot registered for fd, or -1. */
export function handler_slot(fd: i32): i32 {
  return <i32>lookup(fd);
}

/** Registered fds. */
export function handler_count(): i32 {
  return <i32>registered;
}

/** Registers the waker's fd for EV_READ under WAKER_TOKEN; it is not in the table.
 * Returns 0, -9 (EBADF) if fd < 0, or the poller's -errno. */
export function waker_add(fd: i32): i32 {
  if (fd < 0) return -ERRNO_EBADF;
  let result = epoll_ctl(epollFd, CTL_ADD, fd, EV_READ, <i32>WAKER_TOKEN);
  return result < 0 ? result : 0;
}

/** The interest (including EV_ERROR) of the slot a token names, or -1 if the token
 * is not current (its slot was freed, or freed and reused, or never handed out). */
export function tokenInterest(token: u32): i32 {
  let slot = token & SLOT_MASK;
  if (slot >= slotCount) return -1;
  let p = slotPtr(slot);
  if (load<i32>(p) < 0) return -1;
  if (load<u32>(p, 8) != token >> HANDLER_SLOT_BITS) return -1;
  return load<i32>(p, 4);
}
