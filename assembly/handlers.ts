// Handlers: which fds are registered with the poller, under which tokens.
//
// fd table: a direct array indexed by fd of u32 (slot + 1), 0 for "not registered";
// it grows to the largest fd registered, as fds are small dense integers.
// Handler slots: a slot table (slots.ts) of 16-byte records
//   offset 0   u32 generation  0 .. GENERATION_LIMIT-1 (2^(32 - HANDLER_SLOT_BITS)
//                              values); advances whenever the slot is freed
//   offset 4   u32 link        while in use, the fd (never negative, so below FREE);
//                              while free, FREE | the next free slot
//   offset 8   i32 interest    the events registered, always including EV_ERROR
//   offset 12  u32 unused      (16 bytes, so a record's address is a shift)
// Token = slot | (generation << HANDLER_SLOT_BITS): what the poller carries back.
// The poller is the global `Poller` (poller.ts describes the interface).
//
// Invariants
// - fdTable[fd] == slot + 1 exactly when slot is in use with that fd; the runtime
//   keeps its closures in a dense array by the same slot.
// - A token is current exactly when (slot, generation) is current in the table.
//   Freeing a slot changes the generation, so ready records of a removed fd, or of
//   an fd whose slot was reused before the records were read, are not current and
//   are dropped. (The generation has 12 bits and takes every value, 0 included; a
//   record is misattributed only if its slot is freed a multiple of 4096 times
//   between a poll and the record's read.)
// - Slots are < MAX_HANDLER_SLOTS = 2^HANDLER_SLOT_BITS - 1. Never handing out the
//   all-ones slot means no token can equal WAKER_TOKEN, whatever the generation.
// - Every failure leaves the table as it was: registration with the poller comes
//   after all the memory it needs is reserved, except the fd table, which grows
//   only once the poller accepts the fd (so a bogus huge fd costs no memory), and
//   whose growth failing undoes the poller registration. The token is computed
//   before the slot is taken, so a failed registration does not use up a generation.

import {
  EV_ERROR, HANDLER_SLOT_BITS,
  ERRNO_EBADF, ERRNO_ENOENT, ERRNO_EEXIST, ERRNO_ENOMEM, ERRNO_ENOSPC,
} from "./layout";
import { regionGrow, grantedBytes } from "./memory";
import { SlotRecord, slotTable, FREE } from "./slots";

const SLOT_MASK: u32 = (1 << HANDLER_SLOT_BITS) - 1;
const FIRST_GENERATION: u32 = 0;
const GENERATION_LIMIT: u32 = 1 << (32 - HANDLER_SLOT_BITS);
const MAX_HANDLER_SLOTS: u32 = (1 << HANDLER_SLOT_BITS) - 1;
/** What `lookup` returns for an fd that is not registered (fdTable entry 0, minus 1). */
const UNREGISTERED: u32 = 0xffffffff;
const INITIAL_SLOTS: u64 = 64;
const INITIAL_FDS: u64 = 1024;

@unmanaged class HandlerSlot extends SlotRecord {
  interest: i32;
  unused: u32;
}

const slots = slotTable<HandlerSlot>();

let fdTableBase: usize = 0;
/** Entries in the fd table (fds 0 .. fdTableLength-1). */
let fdTableLength: u32 = 0;

/** Registered fds. */
let registered: u32 = 0;

/** The slot registered for fd, or UNREGISTERED. */
// @ts-ignore: decorator
@inline function lookup(fd: i32): u32 {
  if (fd < 0 || <u32>fd >= fdTableLength) return UNREGISTERED;
  return load<u32>(fdTableBase + (<usize>fd << 2)) - 1;
}

// @ts-ignore: decorator
@inline function tokenOf(slot: u32): u32 {
  return slot | (slots.record(slot).generation << HANDLER_SLOT_BITS);
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

/**
 * Registers fd with the poller for `events | EV_ERROR`. Returns the new slot
 * (>= 0), -9 (EBADF) if fd < 0, -17 (EEXIST) if fd is already registered, the
 * poller's -errno, -12 (ENOMEM) if memory is exhausted, or -28 (ENOSPC, as
 * epoll_ctl says at its watch limit) if 2^HANDLER_SLOT_BITS - 1 fds are
 * registered. On any error nothing changes.
 */
export function handler_add(fd: i32, events: i32): i32 {
  if (fd < 0) return -ERRNO_EBADF;
  if (lookup(fd) != UNREGISTERED) return -ERRNO_EEXIST;
  if (!slots.hasFree()) {
    if (slots.count >= MAX_HANDLER_SLOTS) return -ERRNO_ENOSPC;
    if (slots.count >= slots.capacity && !slots.grow(INITIAL_SLOTS, MAX_HANDLER_SLOTS)) return -ERRNO_ENOMEM;
  }
  let interest = events | EV_ERROR;
  let token = slots.next() | (slots.nextGeneration(FIRST_GENERATION) << HANDLER_SLOT_BITS);
  let result = Poller.add(fd, interest, token);
  if (result < 0) return result;
  if (<u32>fd >= fdTableLength && !growFdTable(fd)) {
    Poller.remove(fd, token);
    return -ERRNO_ENOMEM;
  }
  let slot = slots.take(<u32>fd, FIRST_GENERATION);
  slots.record(slot).interest = interest;
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
  if (slot == UNREGISTERED) return -ERRNO_ENOENT;
  let interest = events | EV_ERROR;
  let result = Poller.modify(fd, interest, tokenOf(slot));
  if (result < 0) return result;
  slots.record(slot).interest = interest;
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
  if (slot == UNREGISTERED) return -ERRNO_ENOENT;
  Poller.remove(fd, tokenOf(slot));
  slots.free(slot, FIRST_GENERATION, GENERATION_LIMIT);
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
 * Returns 0, -9 (EBADF) if fd < 0, or the poller's -errno (-38, ENOSYS, in the
 * WASI build, which has no waker). */
export function waker_add(fd: i32): i32 {
  if (fd < 0) return -ERRNO_EBADF;
  let result = Poller.addWaker(fd);
  return result < 0 ? result : 0;
}

/** The interest (including EV_ERROR) of the slot a token names, or -1 if the token
 * is not current (its slot was freed, or freed and reused, or never handed out). */
export function tokenInterest(token: u32): i32 {
  let slot = token & SLOT_MASK;
  if (!slots.isCurrent(slot, token >> HANDLER_SLOT_BITS)) return -1;
  return slots.record(slot).interest;
}

// The table, slot by slot, for a poller that builds its interest list from it
// (poller-wasi.ts). A slot below `handlerSlotsUsed()` is either in use or free.

/** Slots handed out at least once: every registered fd's slot is below this. */
// @ts-ignore: decorator
@inline export function handlerSlotsUsed(): u32 {
  return slots.count;
}

/** The fd of a slot below handlerSlotsUsed(), or -1 if the slot is free. */
// @ts-ignore: decorator
@inline export function handlerFdAt(slot: u32): i32 {
  let link = slots.record(slot).link;
  return (link & FREE) != 0 ? -1 : <i32>link;
}

/** The interest (EV_ERROR included) of a slot in use. */
// @ts-ignore: decorator
@inline export function handlerInterestAt(slot: u32): i32 {
  return slots.record(slot).interest;
}

/** The token of a slot in use: what its ready records must carry. */
// @ts-ignore: decorator
@inline export function handlerTokenAt(slot: u32): u32 {
  return tokenOf(slot);
}
