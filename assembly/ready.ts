// The ready queue: the buffer the poller (the global `Poller`, poller.ts) fills,
// and the cursor that reads it.
//
// The buffer holds READY_CAPACITY records of EVENT_SIZE bytes (layout.ts): u32
// token at EVENT_TOKEN_OFFSET, u32 events at EVENT_EVENTS_OFFSET. It is static
// data below the regions, so its address never changes and the poller may write
// it directly. 1024 records is one epoll_wait batch, as libuv and Tornado take;
// readiness is level-triggered, so records that do not fit are reported again by
// the next poll, one iteration later.
//
// Invariants
// - readCursor <= readyLength <= READY_CAPACITY; records [readCursor, readyLength)
//   are the ones event_next has not looked at.
// - After a failed poll the queue is empty.

import {
  EV_ERROR, EVENT_SIZE, HANDLER_SLOT_BITS, EVENT_TOKEN_OFFSET, EVENT_EVENTS_OFFSET, READY_CAPACITY, WAKER_TOKEN,
  EVENT_SLOT_SHIFT, EVENT_BITS_MASK, EVENT_NONE_LEFT, EVENT_WAKER,
} from "./layout";
import { tokenInterest } from "./handlers";

const SLOT_MASK: u32 = (1 << HANDLER_SLOT_BITS) - 1;

const readyBuffer: usize = memory.data(READY_CAPACITY * EVENT_SIZE, 16);

let readyLength: u32 = 0;
let readCursor: u32 = 0;

/** Events returned by event_next since the module started (waker records excluded). */
export let eventsDelivered: f64 = 0;

/**
 * Waits up to `timeout_ms` (-1: no limit, 0: do not block) for readiness and fills
 * the ready buffer (Poller.wait with max = READY_CAPACITY). Returns the number of
 * records, or the poller's -errno, in which case the queue is empty. Either way
 * the read cursor starts again at the first record.
 */
export function poll(timeout_ms: i32): i32 {
  readyLength = 0;
  readCursor = 0;
  let n = Poller.wait(readyBuffer, READY_CAPACITY, timeout_ms);
  if (n < 0) return n;
  // A poller that claims more than it was allowed to write is not believed.
  if (n > READY_CAPACITY) n = READY_CAPACITY;
  readyLength = <u32>n;
  return n;
}

/**
 * The next ready record that is still current: returns
 * `slot << EVENT_SLOT_SHIFT | events`, where events is what was ready masked by the
 * slot's interest (which includes EV_ERROR) and by EVENT_BITS_MASK; EVENT_WAKER
 * for a WAKER_TOKEN record; EVENT_NONE_LEFT when no records are left (layout.ts).
 * Records of a removed or reused slot, and records with no bits left after
 * masking, are dropped.
 */
export function event_next(): i32 {
  while (readCursor < readyLength) {
    let p = readyBuffer + <usize>readCursor * <usize>EVENT_SIZE;
    readCursor++;
    let token = load<u32>(p, EVENT_TOKEN_OFFSET);
    if (token == WAKER_TOKEN) return EVENT_WAKER;
    let interest = tokenInterest(token);
    if (interest < 0) continue;
    let events = load<i32>(p, EVENT_EVENTS_OFFSET) & (interest | EV_ERROR) & EVENT_BITS_MASK;
    if (events == 0) continue;
    eventsDelivered += 1;
    return <i32>((token & SLOT_MASK) << EVENT_SLOT_SHIFT) | events;
  }
  return EVENT_NONE_LEFT;
}

/** Forgets records not yet read (when the poller closes). */
export function readyClear(): void {
  readyLength = 0;
  readCursor = 0;
}
