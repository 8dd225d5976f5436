// Channels: messages from any thread into a loop, through shared memory and the
// loop's waker (docs/API.md, "threads and signals").
//
// A channel is two SharedArrayBuffers and the id of the loop's waker in the
// native shim's process-wide registry (bindings/wakers.c). IOLoop.createChannel
// makes them and returns them as a ChannelPort, plain data that postMessage and
// workerData carry to other threads; openChannel(port) there gives a sender.
//
// Shared memory
//   control  CONTROL_BYTES of Int32 words, the hot ones on 64-byte lines by who
//            writes them (COUNT and TAIL, which a poster writes one after the
//            other, share one):
//     COUNT    low 29 bits: messages counted in (reserved, or about to be) and not
//              yet consumed, at most `capacity`; bit 30 CLOSED (the loop closed
//              the channel); bit 29 ABANDONED (the loop's thread ended without
//              closing it: a poster found the waker id retired). Posters count
//              themselves in with one Atomics.add, so a post and the loop's close
//              are ordered by this one word.
//     PENDING  1 while a wake-up is owed (libuv's uv_async_send coalescing): a
//              poster writes the eventfd only if it moved PENDING from 0 to 1, and
//              the loop stores 0 BEFORE it drains, so a message committed after
//              the drain looked is followed by a 0 -> 1 move and another wake-up.
//     HEAD     ring position of the next record the loop reads (the loop writes it).
//     TAIL     ring position where the next record is reserved (posters CAS it).
//     SPACE    bumped, with Atomics.notify, whenever room is made or the channel
//              closes; posters waiting for room Atomics.wait on it.
//     WAITERS  posters waiting on SPACE (the loop notifies only when > 0).
//     MAGIC, VERSION, CAPACITY, RING_SIZE: written once, checked by openChannel.
//   ring     a power of two of bytes, records back to back, 8-aligned. Positions
//     are byte counters modulo 2**32; a record is at (position & mask):
//     i32 tag (the commit word, stored last), i32 payload length, the payload
//     (which may wrap past the end of the ring), padding to 8 bytes. Tag 0 means
//     "not committed yet". Before it moves HEAD the loop zeroes the first word of
//     every 8-byte slot it consumed, so a stale byte is never read as a tag.
//
// A post (any thread)
//   1. encode the message, outside shared memory (Encoder, below)
//   2. count in: Atomics.add(COUNT, 1); CLOSED or ABANDONED set: undo, throw
//      ChannelClosedError; `capacity` reached: undo, full
//   3. reserve: CAS TAIL forward by the record's size if HEAD leaves room; no
//      room: undo the count, full
//   4. write the length and the payload, Atomics.store the tag (commit)
//   5. if PENDING is 0 and this poster moves it to 1: wakeId(waker)
//   Full: post waits on SPACE (Atomics.wait) until the queue is down to three
//   quarters of its capacity and its record fits, then tries again, except on
//   the loop's thread, which cannot wait for itself (ChannelFullError); tryPost
//   returns false. The loop notifies SPACE when it makes room and a poster waits
//   (for a count, only once the queue is that low), and so does a poster that
//   undoes a count.
// The loop drains records in ring order and stops at the first one not committed
// (its poster wakes the loop once it commits). Records are in the order their
// posters reserved them (step 3): per sender that is the order of its posts, and
// across senders the order in which they entered the queue.
//
// The loop's close, per channel (IOLoop.close, before the waker is released)
//   1. Atomics.or(COUNT, CLOSED): no post counts in after this
//   2. bump SPACE and notify: posters waiting for room wake and throw
//   3. wait until every message counted in is committed (or its poster undid
//      its count): each post that counted in before step 1 finishes. A poster
//      never waits inside steps 2-4, so this takes microseconds; after
//      CLOSE_WAIT_MS (a poster terminated mid-post) the loop gives up and logs it
//   4. the committed messages left are dropped; the loop's logger says how many
// Then the waker id is unregistered, and the engine closes the eventfd. A post
// either returned before step 3 ended (its message delivered, or counted in
// step 4) or threw ChannelClosedError: delivered + logged dropped == posted.

import { Buffer } from 'node:buffer';
import { types as utilTypes } from 'node:util';
import type { Engine, Logger, Waker } from './engine';
import { ChannelClosedError, ChannelFullError, SysError } from './errors';
import { requireNative, type NativeShim } from './native';
import { checkFunction, describe } from './validate';

// ---------------------------------------------------------------- the layout

/** Int32 indices of the control words (a line is 16 words). */
const COUNT = 0;
const TAIL = 1;
const PENDING = 16;
const HEAD = 32;
const SPACE = 64;
const WAITERS = 80;
/** A word nobody notifies: the loop's close sleeps on it between checks. */
const SLEEP = 96;
const MAGIC = 112;
const VERSION = 113;
const CAPACITY = 114;
const RING_SIZE = 115;
/** The control buffer's size in bytes. */
const CONTROL_BYTES = 512;

/** Bits of COUNT. */
const CLOSED = 1 << 30;
const ABANDONED = 1 << 29;
const ENDED = CLOSED | ABANDONED;
const COUNT_MASK = ABANDONED - 1;

const MAGIC_VALUE = 0x57494f43; // 'WIOC'
const LAYOUT_VERSION = 1;

/** Record header: tag, then payload length. */
const HEADER_BYTES = 8;
/** Record tags (the commit word): never 0. */
const R_CLONE = 1; // the Encoder's format
const R_BYTES = 2; // a Uint8Array's bytes
const R_V8 = 3; // v8.serialize

const DEFAULT_CAPACITY = 1024;
const MAX_CAPACITY = 1 << 24;
const MIN_RING_BYTES = 1 << 12;
const MAX_RING_BYTES = 1 << 30;
const DEFAULT_MIN_RING_BYTES = 1 << 16;
const DEFAULT_MAX_RING_BYTES = 1 << 26;
/** Default ring bytes per message of capacity. */
const DEFAULT_BYTES_PER_MESSAGE = 256;

/** The loop publishes HEAD and COUNT at least every this many messages of a drain. */
const PUBLISH_EVERY = 32;
/** A drain delivers at most max(capacity, this) messages, then goes on in a loop callback. */
const MIN_DRAIN_BUDGET = 64;
/** How long the loop's close waits for posts in progress (only a poster terminated mid-post takes this long). */
const CLOSE_WAIT_MS = 1000;
/** Checks the close makes before it sleeps between checks. */
const CLOSE_SPINS = 1000;
/** A poster waiting for room checks this often that the loop is still there. */
const PROBE_MS = 250;

// ---------------------------------------------------------------- the port

/**
 * A channel's shared memory and the identity of its loop's waker: plain data,
 * made by {@link IOLoop.createChannel}. Send it to a Worker with postMessage or
 * workerData (the SharedArrayBuffers are shared, not copied) and pass it to
 * {@link openChannel} there. Names no file descriptor: the waker is an id in the
 * native shim's registry, never reused, so a port outliving its loop wakes
 * nothing. Treat it as opaque; its fields may change between versions.
 */
export interface ChannelPort {
  /** What this object is, for openChannel's check. */
  readonly kind: 'wasm-ioloop.channel';
  /** The layout of its shared memory; openChannel refuses one it does not read. */
  readonly version: number;
  /** COUNT, PENDING, HEAD, TAIL, SPACE, WAITERS and the layout words. */
  readonly control: SharedArrayBuffer;
  /** The message ring. */
  readonly ring: SharedArrayBuffer;
  /** Messages the channel holds at most. */
  readonly capacity: number;
  /** The loop's waker id (native shim, wakerRegister). */
  readonly waker: number;
  /** worker_threads.threadId of the loop's thread. */
  readonly thread: number;
}

/** Options of {@link IOLoop.createChannel}. */
export interface ChannelOptions {
  /** Messages queued at most (an integer in [1, 2**24]); default 1024. */
  capacity?: number;
  /**
   * Bytes of the ring that holds them, rounded up to a power of two in
   * [4096, 2**30]; default capacity × 256 rounded up, between 64 KiB and 64 MiB.
   * Each message takes 8 bytes plus its encoded size rounded up to 8; one larger
   * than the ring less 8 bytes can never be posted (RangeError). The channel is
   * full when either bound is reached.
   */
  bytes?: number;
}

/**
 * The sending side of a channel, from {@link openChannel}. Use it on the thread
 * that opened it; open the port again on each thread that posts.
 */
export interface ChannelSender<T> {
  /**
   * Queues a copy of `msg` for the loop's `onMessage` and wakes the loop. When the
   * channel is full it waits (Atomics.wait) until the loop makes room, except on
   * the loop's own thread, which cannot wait for itself: there it throws
   * ChannelFullError.
   * @throws ChannelClosedError if the loop closed (also while waiting for room),
   *   if its thread ended without closing it, or if this sender was closed; the
   *   message is not queued. ChannelFullError on the loop's thread when full.
   *   RangeError if the encoded message is larger than the channel's ring can
   *   ever hold. What v8.serialize throws for a value structured clone refuses
   *   (a function, a symbol, a SharedArrayBuffer).
   */
  post(msg: T): void;
  /**
   * As {@link post}, but never waits: false when the channel is full (nothing
   * queued), true when queued.
   * @throws as post, except ChannelFullError.
   */
  tryPost(msg: T): boolean;
  /**
   * This sender is done: later post/tryPost calls throw ChannelClosedError. What it
   * queued is still delivered. Other senders of the channel are not affected.
   * Idempotent; never throws.
   */
  close(): void;
}

// ---------------------------------------------------------------- host pieces

type V8 = { serialize(v: unknown): Buffer; deserialize(b: Uint8Array): unknown };

let v8Module: V8 | null | undefined;
/** node:v8 where the host has it (Node, Bun, Deno), else null. */
function v8(): V8 | null {
  if (v8Module === undefined) {
    try {
      v8Module = require('node:v8') as V8;
    } catch {
      v8Module = null;
    }
  }
  return v8Module;
}

/** worker_threads.threadId of this thread (0 where the host has no worker_threads). */
function thisThread(): number {
  try {
    return (require('node:worker_threads') as { threadId: number }).threadId;
  } catch {
    return 0;
  }
}

type Slicer = (buf: Buffer, start: number, end: number) => string;
type FastSlices = { latin1Slice?: (start: number, end: number) => string; utf8Slice?: (start: number, end: number) => string };
/** Buffer's latin1Slice/utf8Slice where the host has them (they skip toString's encoding lookup), else toString. */
const latin1Slice: Slicer =
  typeof (Buffer.prototype as FastSlices).latin1Slice === 'function'
    ? (buf, start, end) => (buf as FastSlices).latin1Slice!(start, end)
    : (buf, start, end) => buf.toString('latin1', start, end);
const utf8Slice: Slicer =
  typeof (Buffer.prototype as FastSlices).utf8Slice === 'function'
    ? (buf, start, end) => (buf as FastSlices).utf8Slice!(start, end)
    : (buf, start, end) => buf.toString('utf8', start, end);

const isProxy: (v: unknown) => boolean = typeof utilTypes?.isProxy === 'function' ? utilTypes.isProxy : () => false;

const hasIsWellFormed = typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === 'function';
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?:^|[^\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** Whether a string has no lone surrogate (UTF-8 would replace one with U+FFFD). */
function wellFormed(s: string): boolean {
  return hasIsWellFormed ? (s as unknown as { isWellFormed(): boolean }).isWellFormed() : !LONE_SURROGATE.test(s);
}

// ---------------------------------------------------------------- the encoding

/*
 * Messages are copied as postMessage copies them (structured clone), in one of
 * three forms:
 *   R_BYTES  a Uint8Array (a Buffer too): its bytes; it arrives as a Uint8Array.
 *   R_CLONE  this file's format, for the values JSON-like messages are made of:
 *            undefined, null, booleans, numbers (-0 and NaN kept), strings
 *            (lone surrogates kept), dense arrays with no other own properties,
 *            plain objects (prototype Object.prototype or null: own enumerable
 *            string keys, as structured clone takes them, getters called), and
 *            Uint8Arrays inside them. Each object may occur once (no cycles,
 *            no shared references), at most MAX_DEPTH deep.
 *   R_V8     anything else: v8.serialize / v8.deserialize, which keep shared
 *            references and cycles and clone Map, Set, Date, RegExp, Error,
 *            BigInt, typed arrays and ArrayBuffers.
 * A message that R_CLONE cannot take is encoded again with v8.serialize from the
 * start, so getters on it may run twice.
 * Uint8Arrays (in every form) arrive as a copy of the bytes they view, in a
 * buffer of their own (byteOffset 0), as v8.serialize copies them.
 */

const V_UNDEFINED = 0;
const V_NULL = 1;
const V_FALSE = 2;
const V_TRUE = 3;
const V_INT = 4; // i32
const V_FLOAT = 5; // f64
const V_ASCII = 6; // u32 length, bytes
const V_UTF8 = 7; // u32 byte length, UTF-8
const V_UTF16 = 8; // u32 code units, UTF-16LE
const V_ARRAY = 9; // u32 length, items
const V_OBJECT = 10; // u32 count, (string, value) pairs
const V_BYTES = 11; // u32 length, bytes

const MAX_DEPTH = 64;
const MAX_FAST_ARRAY = 4096;
/** Strings up to this length are written by a loop that also tells whether they are ASCII. */
const SHORT_STRING = 64;

/** Encodes one message into its own growable buffer. Not thread-safe: one per thread (and one more per re-entrant post). */
class Encoder {
  bytes = new Uint8Array(1024);
  view = new DataView(this.bytes.buffer);
  buf = Buffer.from(this.bytes.buffer);
  /** Bytes written. */
  length = 0;
  busy = false;
  private seen: object[] = [];
  private nseen = 0;

  /** Encodes `value` in the R_CLONE format; false if it cannot (the buffer is then garbage). */
  encode(value: unknown): boolean {
    this.length = 0;
    this.nseen = 0;
    try {
      return this.value(value, 0);
    } finally {
      for (let i = 0; i < this.nseen; i++) this.seen[i] = undefined as unknown as object;
      this.nseen = 0;
    }
  }

  /** Takes a v8.serialize result as the payload. */
  useBytes(b: Uint8Array): void {
    this.length = 0;
    this.ensure(b.length);
    this.bytes.set(b, 0);
    this.length = b.length;
  }

  private ensure(n: number): void {
    const need = this.length + n;
    if (need <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < need) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
    this.view = new DataView(grown.buffer);
    this.buf = Buffer.from(grown.buffer);
  }

  private tagged(tag: number, n: number): void {
    const w = this.length;
    this.bytes[w] = tag;
    this.view.setUint32(w + 1, n, true);
    this.length = w + 5;
  }

  private value(v: unknown, depth: number): boolean {
    switch (typeof v) {
      case 'string':
        this.string(v);
        return true;
      case 'number': {
        const w = this.length;
        if ((v | 0) === v && (v !== 0 || 1 / v > 0)) {
          this.ensure(5);
          this.bytes[w] = V_INT;
          this.view.setInt32(w + 1, v, true);
          this.length = w + 5;
        } else {
          this.ensure(9);
          this.bytes[w] = V_FLOAT;
          this.view.setFloat64(w + 1, v, true);
          this.length = w + 9;
        }
        return true;
      }
      case 'boolean':
        this.ensure(1);
        this.bytes[this.length++] = v ? V_TRUE : V_FALSE;
        return true;
      case 'undefined':
        this.ensure(1);
        this.bytes[this.length++] = V_UNDEFINED;
        return true;
      case 'object':
        if (v === null) {
          this.ensure(1);
          this.bytes[this.length++] = V_NULL;
          return true;
        }
        return this.object(v, depth);
      default:
        return false; // bigint, symbol, function
    }
  }

  private object(v: object, depth: number): boolean {
    if (depth >= MAX_DEPTH) return false;
    for (let i = 0; i < this.nseen; i++) if (this.seen[i] === v) return false;
    this.seen[this.nseen++] = v;
    if (isProxy(v)) return false;
    if (Array.isArray(v)) {
      if (Object.getPrototypeOf(v) !== Array.prototype) return false;
      const n = v.length;
      // Holes and named properties both make the key count differ from the length.
      if (n > MAX_FAST_ARRAY || Object.keys(v).length !== n) return false;
      this.ensure(5);
      this.tagged(V_ARRAY, n);
      for (let i = 0; i < n; i++) if (!this.value(v[i], depth + 1)) return false;
      return true;
    }
    if (v instanceof Uint8Array) {
      const n = v.byteLength;
      this.ensure(5 + n);
      this.tagged(V_BYTES, n);
      this.bytes.set(v, this.length);
      this.length += n;
      return true;
    }
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) return false;
    const keys = Object.keys(v);
    const n = keys.length;
    this.ensure(5);
    this.tagged(V_OBJECT, n);
    for (let i = 0; i < n; i++) {
      const k = keys[i]!;
      this.string(k);
      if (!this.value((v as Record<string, unknown>)[k], depth + 1)) return false;
    }
    return true;
  }

  private string(s: string): void {
    const n = s.length;
    if (n <= SHORT_STRING) {
      this.ensure(5 + n);
      const bytes = this.bytes;
      const at = this.length + 5;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        bytes[at + i] = c;
      }
      if (i === n) {
        this.tagged(V_ASCII, n);
        this.length = at + n;
        return;
      }
    }
    if (wellFormed(s)) {
      this.ensure(5 + 3 * n);
      const at = this.length + 5;
      const written = this.buf.write(s, at, 'utf8');
      this.tagged(written === n ? V_ASCII : V_UTF8, written);
      this.length = at + written;
    } else {
      this.ensure(5 + 2 * n);
      const at = this.length + 5;
      this.buf.write(s, at, 'utf16le');
      this.tagged(V_UTF16, n);
      this.length = at + 2 * n;
    }
  }
}

/** Short ASCII object keys a decoder remembers, by a hash of their bytes. */
const KEY_CACHE_SLOTS = 256;
const KEY_CACHE_MAX = 32;

/** Reads the R_CLONE format from a byte range. One per receiver. */
class Decoder {
  private bytes!: Uint8Array;
  private view!: DataView;
  private buf!: Buffer;
  private at = 0;
  /** Object keys decoded before: the same few keys come in every message. */
  private readonly keys: (string | undefined)[] = new Array(KEY_CACHE_SLOTS).fill(undefined);

  decode(bytes: Uint8Array, view: DataView, buf: Buffer, at: number): unknown {
    this.bytes = bytes;
    this.view = view;
    this.buf = buf;
    this.at = at;
    return this.value();
  }

  private u32(): number {
    const n = this.view.getUint32(this.at, true);
    this.at += 4;
    return n;
  }

  /** An object key: a short ASCII one from the cache when it was seen before. */
  private key(): string {
    const bytes = this.bytes;
    const at = this.at;
    if (bytes[at] !== V_ASCII) return this.value() as string;
    const n = this.view.getUint32(at + 1, true);
    if (n > KEY_CACHE_MAX) return this.value() as string;
    const start = at + 5;
    let h = n;
    for (let i = 0; i < n; i++) h = (Math.imul(h, 31) + bytes[start + i]!) | 0;
    const slot = h & (KEY_CACHE_SLOTS - 1);
    const cached = this.keys[slot];
    this.at = start + n;
    if (cached !== undefined && cached.length === n) {
      let i = 0;
      while (i < n && cached.charCodeAt(i) === bytes[start + i]) i++;
      if (i === n) return cached;
    }
    const key = latin1Slice(this.buf, start, start + n);
    this.keys[slot] = key;
    return key;
  }

  private value(): unknown {
    const tag = this.bytes[this.at++];
    switch (tag) {
      case V_UNDEFINED:
        return undefined;
      case V_NULL:
        return null;
      case V_FALSE:
        return false;
      case V_TRUE:
        return true;
      case V_INT: {
        const v = this.view.getInt32(this.at, true);
        this.at += 4;
        return v;
      }
      case V_FLOAT: {
        const v = this.view.getFloat64(this.at, true);
        this.at += 8;
        return v;
      }
      case V_ASCII:
      case V_UTF8:
      case V_UTF16: {
        const n = this.u32();
        const bytes = tag === V_UTF16 ? 2 * n : n;
        const end = this.at + bytes;
        const s = tag === V_ASCII ? latin1Slice(this.buf, this.at, end) : tag === V_UTF8 ? utf8Slice(this.buf, this.at, end) : this.buf.toString('utf16le', this.at, end);
        this.at += bytes;
        return s;
      }
      case V_ARRAY: {
        const n = this.u32();
        const a = new Array(n);
        for (let i = 0; i < n; i++) a[i] = this.value();
        return a;
      }
      case V_OBJECT: {
        const n = this.u32();
        const o: Record<string, unknown> = {};
        for (let i = 0; i < n; i++) {
          const k = this.key();
          const v = this.value();
          // An own '__proto__' key stays an own property, as structured clone makes it.
          if (k === '__proto__') Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
          else o[k] = v;
        }
        return o;
      }
      case V_BYTES: {
        const n = this.u32();
        const copy = this.bytes.slice(this.at, this.at + n);
        this.at += n;
        return copy;
      }
      default:
        throw new Error(`corrupt channel record (value tag ${tag})`);
    }
  }
}

const encoder = new Encoder();

/** Views of a ring. */
class Ring {
  readonly size: number;
  readonly mask: number;
  readonly bytes: Uint8Array;
  readonly words: Int32Array;
  readonly view: DataView;
  readonly buf: Buffer;

  constructor(sab: SharedArrayBuffer) {
    this.size = sab.byteLength;
    this.mask = this.size - 1;
    this.bytes = new Uint8Array(sab);
    this.words = new Int32Array(sab);
    this.view = new DataView(sab);
    this.buf = Buffer.from(sab);
  }
}

/**
 * Posters waiting for room wait until the queue is down to this many messages
 * (three quarters of capacity), and the loop wakes them only then: a full channel
 * then costs one futex wake-up per quarter of its capacity, not one per message
 * the loop takes.
 */
function lowWaterOf(capacity: number): number {
  return capacity - Math.max(1, capacity >> 2);
}

/** The record size of a payload. */
function recordBytes(payload: number): number {
  return HEADER_BYTES + ((payload + 7) & ~7);
}

// ---------------------------------------------------------------- the loop's side

/** One channel as its loop sees it. Loop's thread only. */
class Receiver {
  readonly control: Int32Array;
  readonly ring: Ring;
  /** Ring position of the next record (only the loop moves it). */
  private head = 0;
  /** Messages consumed since HEAD and COUNT were last published. */
  private unpublished = 0;
  private readonly decoder = new Decoder();
  private wrapped = new Uint8Array(0);
  closed = false;
  readonly budget: number;
  private readonly lowWater: number;
  private continuing = false;

  constructor(
    private readonly hub: Hub,
    private readonly onMessage: (msg: unknown) => unknown,
    readonly port: ChannelPort,
  ) {
    this.control = new Int32Array(port.control);
    this.ring = new Ring(port.ring);
    this.budget = Math.max(port.capacity, MIN_DRAIN_BUDGET);
    this.lowWater = lowWaterOf(port.capacity);
  }

  /**
   * Delivers what is committed, in ring order, at most `budget` messages; a
   * drain that stops there goes on in a loop callback. PENDING is cleared first
   * (see the header).
   */
  drain(): void {
    if (this.closed) return;
    Atomics.store(this.control, PENDING, 0);
    const n = this.take(0);
    if (this.closed) return;
    this.publish();
    if (n >= this.budget && !this.continuing) {
      // More may be committed: the rest waits for the next iteration, so a
      // stream of posts does not starve the loop's other work.
      this.continuing = true;
      this.hub.schedule(this.continueDrain);
    }
  }

  /** Delivers committed records until one is not, or `n` reaches the budget: the new `n`. */
  private take(n: number): number {
    const ring = this.ring;
    const words = ring.words;
    const mask = ring.mask;
    while (n < this.budget) {
      const at = this.head & mask;
      const tag = Atomics.load(words, at >> 2);
      if (tag === 0) break;
      const length = words[(at >> 2) + 1]!;
      const size = recordBytes(length);
      let msg: unknown;
      let ok = true;
      try {
        msg = this.read(tag, (at + HEADER_BYTES) & mask, length);
      } catch (e) {
        ok = false;
        this.hub.logger.error('Channel message could not be decoded; it is skipped:', e);
      }
      this.zero(at, size);
      this.head = (this.head + size) | 0;
      if (++this.unpublished >= PUBLISH_EVERY) this.publish();
      n++;
      if (ok) this.deliver(msg);
      if (this.closed) break;
    }
    return n;
  }

  private readonly continueDrain = (): void => {
    this.continuing = false;
    this.drain();
  };

  private read(tag: number, start: number, length: number): unknown {
    const ring = this.ring;
    let bytes = ring.bytes;
    let view = ring.view;
    let buf = ring.buf;
    let at = start;
    if (start + length > ring.size) {
      // The payload wraps past the end of the ring: read a contiguous copy.
      if (this.wrapped.length < length) this.wrapped = new Uint8Array(Math.max(length, 2 * this.wrapped.length));
      const first = ring.size - start;
      this.wrapped.set(ring.bytes.subarray(start, ring.size), 0);
      this.wrapped.set(ring.bytes.subarray(0, length - first), first);
      bytes = this.wrapped;
      view = new DataView(bytes.buffer);
      buf = Buffer.from(bytes.buffer);
      at = 0;
    }
    switch (tag) {
      case R_CLONE:
        return this.decoder.decode(bytes, view, buf, at);
      case R_BYTES:
        return bytes.slice(at, at + length);
      case R_V8: {
        const codec = v8();
        if (codec === null) throw new Error('a message was encoded with v8.serialize, and this host has no node:v8');
        // From a private copy: v8.deserialize makes typed arrays that view its input.
        return codec.deserialize(bytes.slice(at, at + length));
      }
      default:
        throw new Error(`corrupt channel record (tag ${tag})`);
    }
  }

  /**
   * Zeroes the first word of each 8-byte slot of a consumed record: any of them
   * may be where a later record's tag goes, and must read 0 until it commits.
   */
  private zero(at: number, size: number): void {
    const ring = this.ring;
    const words = ring.words;
    const slots = ring.size >> 3;
    let slot = at >> 3;
    for (let end = slot + (size >> 3); slot < end; slot++) words[(slot & (slots - 1)) << 1] = 0;
  }

  /** Makes consumed room visible to posters and wakes those waiting for it. */
  private publish(): void {
    if (this.unpublished === 0) return;
    const control = this.control;
    Atomics.store(control, HEAD, this.head);
    Atomics.sub(control, COUNT, this.unpublished);
    this.unpublished = 0;
    if (Atomics.load(control, WAITERS) > 0 && (Atomics.load(control, COUNT) & COUNT_MASK) <= this.lowWater) {
      Atomics.add(control, SPACE, 1);
      Atomics.notify(control, SPACE);
    }
  }

  private deliver(msg: unknown): void {
    try {
      const r = this.onMessage(msg);
      if (r != null && typeof (r as PromiseLike<unknown>).then === 'function') {
        (r as PromiseLike<unknown>).then(undefined, this.hub.onRejection);
      }
    } catch (e) {
      this.hub.logger.error('Exception in channel onMessage:', e);
    }
  }

  /**
   * Closes the channel (steps 1-4 of the header): no post counts in any more,
   * those that did finish, and what is left queued is counted. Returns
   * [dropped, stuck]: the committed messages never delivered, and the posts still
   * unfinished after CLOSE_WAIT_MS.
   */
  close(): [number, number] {
    if (this.closed) return [0, 0];
    this.closed = true;
    const control = this.control;
    Atomics.or(control, COUNT, CLOSED);
    Atomics.add(control, SPACE, 1);
    Atomics.notify(control, SPACE);
    this.publish();
    // Walk the committed records from HEAD; a walk resumes where the last one
    // stopped, at the first record not committed yet.
    const words = this.ring.words;
    const mask = this.ring.mask;
    let pos = this.head;
    let committed = 0;
    const deadline = performance.now() + CLOSE_WAIT_MS;
    for (let check = 0; ; check++) {
      const counted = Atomics.load(control, COUNT) & COUNT_MASK;
      while (committed < counted) {
        const at = pos & mask;
        if (Atomics.load(words, at >> 2) === 0) break;
        pos = (pos + recordBytes(words[(at >> 2) + 1]!)) | 0;
        committed++;
      }
      if (committed >= counted) return [committed, 0];
      if (performance.now() >= deadline) return [committed, counted - committed];
      // A post between its count and its commit: microseconds, unless its thread was terminated.
      if (check >= CLOSE_SPINS) sleepMs(control, 1);
    }
  }
}

/** Sleeps about `ms` on a word nobody notifies (a spin where the thread may not wait). */
function sleepMs(control: Int32Array, ms: number): void {
  try {
    Atomics.wait(control, SLEEP, 0, ms);
  } catch {
    // A thread that may not wait (a browser's main thread): the caller spins.
  }
}

/** The channels of one loop and their shared waker. Loop's thread only. */
class Hub {
  readonly receivers: Receiver[] = [];
  private readonly waker: Waker;
  readonly id: number;
  closed = false;

  constructor(
    private readonly engine: Engine,
    readonly native: NativeShim,
    readonly logger: Logger,
    readonly schedule: (fn: () => void) => void,
  ) {
    this.waker = engine.openWaker(this.onWake);
    const id = native.wakerRegister(this.waker.fd);
    if (id < 0) {
      this.waker.remove();
      throw new SysError(-id, 'wakerRegister', 'createChannel: the waker could not be registered');
    }
    this.id = id;
  }

  private readonly onWake = (): void => {
    const receivers = this.receivers;
    for (let i = 0; i < receivers.length; i++) {
      receivers[i]!.drain();
      if (this.closed) return;
    }
  };

  readonly onRejection = (e: unknown): void => {
    this.logger.error('Exception in channel onMessage (rejected promise):', e);
  };

  close(): void {
    if (this.closed) return;
    this.closed = true;
    let dropped = 0;
    let stuck = 0;
    let channels = 0;
    for (const r of this.receivers) {
      const [d, s] = r.close();
      dropped += d;
      stuck += s;
      if (d > 0) channels++;
    }
    // After this no wakeId reaches the eventfd, which the engine closes next.
    this.native.wakerUnregister(this.id);
    this.waker.remove();
    if (stuck > 0) {
      this.logger.error(
        `IOLoop.close(): ${stuck} post(s) had reserved room and not finished after ${CLOSE_WAIT_MS} ms ` +
          '(a thread terminated in the middle of post()?); those messages are neither delivered nor counted as dropped',
      );
    }
    if (dropped > 0) {
      this.logger.warn(`IOLoop.close(): dropped ${dropped} message(s) queued on ${channels} channel(s) and not yet delivered`);
    }
  }
}

const hubs = new WeakMap<Engine, Hub>();

function pow2AtLeast(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/**
 * IOLoop.createChannel's body (the loop checked that it is open). Internal.
 * @throws TypeError/RangeError for bad arguments; Error without the native shim
 *   or when the loop's backend has no waker.
 */
export function createChannelOn(
  engine: Engine,
  logger: Logger,
  schedule: (fn: () => void) => void,
  onMessage: unknown,
  opts: unknown,
): ChannelPort {
  checkFunction(onMessage, 'onMessage');
  if (opts !== undefined && (typeof opts !== 'object' || opts === null)) {
    throw new TypeError(`options must be an object, got ${describe(opts)}`);
  }
  const { capacity = DEFAULT_CAPACITY, bytes } = (opts ?? {}) as ChannelOptions;
  if (typeof capacity !== 'number' || !Number.isInteger(capacity)) {
    throw new TypeError(`options.capacity must be an integer, got ${describe(capacity)}`);
  }
  if (capacity < 1 || capacity > MAX_CAPACITY) throw new RangeError(`options.capacity must be in [1, ${MAX_CAPACITY}], got ${capacity}`);
  let ringBytes: number;
  if (bytes === undefined) {
    ringBytes = Math.min(DEFAULT_MAX_RING_BYTES, Math.max(DEFAULT_MIN_RING_BYTES, pow2AtLeast(capacity * DEFAULT_BYTES_PER_MESSAGE)));
  } else {
    if (typeof bytes !== 'number' || !Number.isInteger(bytes)) throw new TypeError(`options.bytes must be an integer, got ${describe(bytes)}`);
    if (bytes < 1 || bytes > MAX_RING_BYTES) throw new RangeError(`options.bytes must be in [1, ${MAX_RING_BYTES}], got ${bytes}`);
    ringBytes = Math.max(MIN_RING_BYTES, pow2AtLeast(bytes));
  }
  const native = engine.backend.native;
  if (native === null) {
    throw new Error(`createChannel needs the native shim's waker; this loop's backend '${engine.backend.name}' has none`);
  }
  if (!engine.wakerWatched()) {
    throw new Error("createChannel needs a driver that waits for the waker (guest or blocking); the portable driver waits only for timers");
  }
  let hub = hubs.get(engine);
  if (hub === undefined) {
    hub = new Hub(engine, native, logger, schedule);
    hubs.set(engine, hub);
  }
  const control = new SharedArrayBuffer(CONTROL_BYTES);
  const words = new Int32Array(control);
  words[MAGIC] = MAGIC_VALUE;
  words[VERSION] = LAYOUT_VERSION;
  words[CAPACITY] = capacity;
  words[RING_SIZE] = ringBytes;
  const port: ChannelPort = {
    kind: 'wasm-ioloop.channel',
    version: LAYOUT_VERSION,
    control,
    ring: new SharedArrayBuffer(ringBytes),
    capacity,
    waker: hub.id,
    thread: thisThread(),
  };
  hub.receivers.push(new Receiver(hub, onMessage as (msg: unknown) => unknown, port));
  return port;
}

/**
 * IOLoop.close's part for channels: closes every channel of the loop (posters
 * get ChannelClosedError from then on), logs what was dropped, and retires the
 * waker id. Call before the engine closes the waker's eventfd. Internal.
 */
export function closeChannelsOf(engine: Engine): void {
  const hub = hubs.get(engine);
  if (hub === undefined) return;
  hubs.delete(engine);
  hub.close();
}

// ---------------------------------------------------------------- the posters' side

const PORT_RULE = 'a ChannelPort from IOLoop.createChannel';

/** A SharedArrayBuffer of any realm (a port that came through postMessage into a vm context has the host's). */
function isShared(x: unknown): x is SharedArrayBuffer {
  return Object.prototype.toString.call(x) === '[object SharedArrayBuffer]';
}

function checkPort(port: unknown): ChannelPort {
  const bad = (why: string): never => {
    throw new TypeError(`openChannel: port must be ${PORT_RULE} (${why})`);
  };
  if (typeof port !== 'object' || port === null) bad(`got ${describe(port)}`);
  const p = port as Partial<ChannelPort>;
  if (p.kind !== 'wasm-ioloop.channel') bad('its kind is not wasm-ioloop.channel');
  if (p.version !== LAYOUT_VERSION) bad(`its version is ${describe(p.version)}, this package reads ${LAYOUT_VERSION}`);
  if (!isShared(p.control) || p.control.byteLength !== CONTROL_BYTES) bad('its control is not its SharedArrayBuffer');
  if (!isShared(p.ring)) bad('its ring is not a SharedArrayBuffer');
  const words = new Int32Array(p.control!);
  if (words[MAGIC] !== MAGIC_VALUE || words[VERSION] !== LAYOUT_VERSION) bad('its control memory is not a channel');
  if (words[CAPACITY] !== p.capacity || words[RING_SIZE] !== p.ring!.byteLength) bad('its capacity or ring does not match its control memory');
  if (!Number.isSafeInteger(p.waker) || p.waker! < 1) bad('its waker is not a waker id');
  if (!Number.isSafeInteger(p.thread) || p.thread! < 0) bad('its thread is not a thread id');
  return p as ChannelPort;
}

/** One thread's sender on a channel. */
class Sender<T> implements ChannelSender<T> {
  private readonly control: Int32Array;
  private readonly ring: Ring;
  private readonly capacity: number;
  private readonly waker: number;
  private readonly onLoopThread: boolean;
  /** A poster that found the channel full waits until no more than this many messages are queued. */
  private readonly lowWater: number;
  private closed = false;

  constructor(
    port: ChannelPort,
    private readonly native: NativeShim,
  ) {
    this.control = new Int32Array(port.control);
    this.ring = new Ring(port.ring);
    this.capacity = port.capacity;
    this.lowWater = lowWaterOf(port.capacity);
    this.waker = port.waker;
    this.onLoopThread = port.thread === thisThread();
  }

  post(msg: T): void {
    this.send(msg, false);
  }

  tryPost(msg: T): boolean {
    return this.send(msg, true);
  }

  close(): void {
    this.closed = true;
  }

  private send(msg: unknown, once: boolean): boolean {
    if (this.closed) throw new ChannelClosedError('this sender is closed');
    // Encode outside shared memory. A post made by a getter of a message being
    // encoded gets an encoder of its own.
    const enc = encoder.busy ? new Encoder() : encoder;
    let tag: number;
    let payload: Uint8Array;
    let length: number;
    enc.busy = true;
    try {
      if (msg instanceof Uint8Array) {
        tag = R_BYTES;
        payload = msg;
        length = msg.byteLength;
      } else if (enc.encode(msg)) {
        tag = R_CLONE;
        payload = enc.bytes;
        length = enc.length;
      } else {
        const codec = v8();
        if (codec === null) throw new TypeError('post: this message needs v8.serialize, and this host has no node:v8');
        enc.useBytes(codec.serialize(msg));
        tag = R_V8;
        payload = enc.bytes;
        length = enc.length;
      }
      const ring = this.ring;
      if (length > ring.size - HEADER_BYTES) {
        throw new RangeError(`post: the message takes ${length} bytes; this channel's ring holds at most ${ring.size - HEADER_BYTES} per message`);
      }
      const size = recordBytes(length);
      for (;;) {
        const pos = this.reserve(size);
        if (pos !== -1) {
          this.write(pos, tag, payload, length);
          break;
        }
        if (once) return false;
        if (this.onLoopThread) throw new ChannelFullError(`post: the channel is full (${this.capacity} messages or ${ring.size} bytes) and this is its loop's thread, which cannot wait for itself; use tryPost or a larger capacity`);
        this.waitForRoom(size);
      }
    } finally {
      enc.busy = false;
    }
    this.signal();
    return true;
  }

  private closedError(bits: number): ChannelClosedError {
    return new ChannelClosedError(
      (bits & ABANDONED) !== 0 ? "the channel's loop thread ended without closing the loop" : "the channel's loop is closed",
    );
  }

  /**
   * Counts a message in and reserves `size` bytes for it (steps 2-3 of the
   * header): the record's position, or -1 when full.
   * @throws ChannelClosedError if the channel is closed.
   */
  private reserve(size: number): number {
    const control = this.control;
    const before = Atomics.add(control, COUNT, 1);
    if ((before & ENDED) !== 0) {
      Atomics.sub(control, COUNT, 1);
      throw this.closedError(before);
    }
    if ((before & COUNT_MASK) >= this.capacity) {
      this.uncount();
      return -1;
    }
    const ringSize = this.ring.size;
    // TAIL may be read plainly: the CAS checks it. HEAD is read with Atomics.load,
    // so the loop's zeroing of the room it made happens before this poster writes there.
    let tail = control[TAIL]!;
    for (;;) {
      const head = Atomics.load(control, HEAD);
      if (((tail - head) >>> 0) + size > ringSize) {
        // Full, or a stale TAIL read behind HEAD: look again.
        tail = Atomics.load(control, TAIL);
        if (((tail - head) >>> 0) + size > ringSize) {
          this.uncount();
          return -1;
        }
      }
      const seen = Atomics.compareExchange(control, TAIL, tail, (tail + size) | 0);
      if (seen === tail) return tail;
      tail = seen;
    }
  }

  /** Gives back a count; a poster that waits for room is told. */
  private uncount(): void {
    const control = this.control;
    Atomics.sub(control, COUNT, 1);
    if (Atomics.load(control, WAITERS) > 0) {
      Atomics.add(control, SPACE, 1);
      Atomics.notify(control, SPACE);
    }
  }

  private write(pos: number, tag: number, payload: Uint8Array, length: number): void {
    const ring = this.ring;
    const at = pos & ring.mask;
    const words = ring.words;
    words[(at >> 2) + 1] = length;
    const start = (at + HEADER_BYTES) & ring.mask;
    const bytes = ring.bytes;
    if (start + length <= ring.size) {
      // A loop for small payloads: set() of a subarray costs more than it copies.
      if (length <= 64) for (let i = 0; i < length; i++) bytes[start + i] = payload[i]!;
      else bytes.set(length === payload.length ? payload : payload.subarray(0, length), start);
    } else {
      const first = ring.size - start;
      bytes.set(payload.subarray(0, first), start);
      bytes.set(payload.subarray(first, length), 0);
    }
    Atomics.store(words, at >> 2, tag);
  }

  /** Wakes the loop unless a wake-up is already owed (uv_async_send's coalescing). */
  private signal(): void {
    const control = this.control;
    if (Atomics.load(control, PENDING) !== 0 || Atomics.exchange(control, PENDING, 1) !== 0) return;
    const rc = this.native.wakeId(this.waker);
    if (rc < 0) this.lostLoop();
  }

  /**
   * The waker id is retired. If the loop did not close the channel, its thread
   * ended without closing it: mark the channel abandoned, so posts throw.
   * @throws ChannelClosedError then: this message will not be delivered.
   */
  private lostLoop(): void {
    const control = this.control;
    if ((Atomics.load(control, COUNT) & CLOSED) !== 0) return; // closed by the loop, which counted the message
    Atomics.or(control, COUNT, ENDED);
    Atomics.add(control, SPACE, 1);
    Atomics.notify(control, SPACE);
    throw this.closedError(ABANDONED);
  }

  /** Waits until there may be room for a record of `size`, or the channel closes. */
  private waitForRoom(size: number): void {
    const control = this.control;
    Atomics.add(control, WAITERS, 1);
    try {
      for (;;) {
        const seq = Atomics.load(control, SPACE);
        const count = Atomics.load(control, COUNT);
        if ((count & ENDED) !== 0) throw this.closedError(count);
        const head = Atomics.load(control, HEAD);
        const used = (Atomics.load(control, TAIL) - head) >>> 0;
        if ((count & COUNT_MASK) <= this.lowWater && used + size <= this.ring.size) return;
        if (Atomics.wait(control, SPACE, seq, PROBE_MS) === 'timed-out') {
          // Still full: make sure the loop is there to drain (this also wakes it).
          if (this.native.wakeId(this.waker) < 0) this.lostLoop();
        }
      }
    } finally {
      Atomics.sub(control, WAITERS, 1);
    }
  }
}

/**
 * Opens the sending side of a channel made by {@link IOLoop.createChannel}, in
 * any thread of the process (a Worker the port was sent to, or the loop's own
 * thread). Messages arrive at the loop's `onMessage` in order: each sender's in
 * the order it posted them, and those of different senders in the order they
 * entered the queue. None is lost or delivered twice; see ChannelSender.post for
 * what happens when the channel is full or closed.
 *
 * Thread-safety: the port may be opened on many threads at once; each sender
 * belongs to the thread that opened it.
 * @throws TypeError if `port` is not a ChannelPort; Error without the native shim.
 */
export function openChannel<T = unknown>(port: ChannelPort): ChannelSender<T> {
  const checked = checkPort(port);
  return new Sender<T>(checked, requireNative('openChannel'));
}
