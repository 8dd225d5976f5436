// docs/API.md "Semantics": file descriptors — registration errors, level-triggered
// readiness, masks, removal, handler errors, close({ allFds }).
import * as fs from 'node:fs';
import { ERROR, IOLoop, READ, WRITE, sys, type SysError } from '../src/index';
import { RecordingLogger, guardResources, newLoop } from './helpers';

guardResources();

const fds: number[] = [];
afterEach(() => {
  for (const fd of fds.splice(0)) {
    try {
      sys.close(fd);
    } catch {
      // closed by the test itself
    }
  }
});
function pipe(): [number, number] {
  const p = sys.pipe();
  fds.push(...p);
  return p;
}
function socketpair(): [number, number] {
  const p = sys.socketpair();
  fds.push(...p);
  return p;
}
const one = new Uint8Array([1]);

function thrown(fn: () => unknown): SysError & TypeError {
  try {
    fn();
  } catch (e) {
    return e as SysError & TypeError;
  }
  throw new Error('expected a throw');
}

test('addHandler for an fd that is already registered throws EEXIST', () => {
  const loop = newLoop();
  const [r] = pipe();
  loop.addHandler(r, () => {}, READ);
  const e = thrown(() => loop.addHandler(r, () => {}, READ));
  expect(e.code).toBe('EEXIST');
  expect(e.message).toMatch(/already registered/);
});

test('addHandler for a closed or invalid fd throws EBADF', () => {
  const loop = newLoop();
  const [r, w] = sys.pipe();
  sys.close(r);
  sys.close(w);
  expect(thrown(() => loop.addHandler(r, () => {}, READ)).code).toBe('EBADF');
  expect(thrown(() => loop.addHandler(-1, () => {}, READ)).code).toBe('EBADF');
  expect(loop.stats().handlers).toBe(0);
});

test('addHandler with a non-integer fd throws a TypeError naming fd', () => {
  const loop = newLoop();
  for (const bad of [1.5, '3', null, undefined, {}, { fileno: () => 'x' }, NaN]) {
    const e = thrown(() => loop.addHandler(bad as never, () => {}, READ));
    expect(e).toBeInstanceOf(TypeError);
    expect(e.message).toMatch(/^fd must be an integer/);
  }
});

test('updateHandler for an unknown fd throws ENOENT', () => {
  const loop = newLoop();
  const [r] = pipe();
  expect(thrown(() => loop.updateHandler(r, WRITE)).code).toBe('ENOENT');
});

test('removeHandler is idempotent', () => {
  const loop = newLoop();
  const [r] = pipe();
  loop.addHandler(r, () => {}, READ);
  loop.removeHandler(r);
  loop.removeHandler(r);
  expect(loop.stats().handlers).toBe(0);
  loop.addHandler(r, () => {}, READ); // and the fd can be registered again
  expect(loop.stats().handlers).toBe(1);
});

test('readiness is level-triggered: an undrained fd is reported again in each iteration', async () => {
  const loop = newLoop();
  const [r, w] = pipe();
  sys.write(w, one);
  const iterations: number[] = [];
  loop.addHandler(
    r,
    () => {
      iterations.push(loop.stats().iterations);
      if (iterations.length === 3) {
        sys.read(r, new Uint8Array(8));
        loop.stop();
      }
    },
    READ,
  );
  await loop.start();
  expect(iterations).toHaveLength(3);
  expect(iterations[2]! - iterations[0]!).toBe(2);
});

test('a handler is told only the events it asked for, plus the ERROR bits', async () => {
  const loop = newLoop();
  const [a, b] = socketpair(); // a is always writable; readable once b writes
  sys.write(b, one);
  const seen: Record<string, number> = {};
  loop.addHandler(a, (_fd, events) => {
    seen.readOnly = events;
    loop.removeHandler(a);
    loop.addHandler(a, (_fd2, events2) => {
      seen.writeOnly = events2;
      loop.stop();
    }, WRITE);
  }, READ);
  await loop.start();
  expect(seen).toEqual({ readOnly: READ, writeOnly: WRITE });

  // A hang-up is reported with ERROR bits even though only READ was asked for.
  const [r, w] = pipe();
  sys.close(w);
  fds.splice(fds.indexOf(w), 1);
  loop.addHandler(r, (_fd, events) => {
    seen.hangup = events;
    loop.stop();
  }, READ);
  await loop.start();
  expect(seen.hangup! & ERROR).not.toBe(0);
  expect(seen.hangup! & WRITE).toBe(0);
});

test('updateHandler changes the events reported', async () => {
  const loop = newLoop();
  const [a] = socketpair();
  const seen: number[] = [];
  loop.addHandler(a, (_fd, events) => {
    seen.push(events);
    loop.stop();
  }, READ);
  loop.updateHandler(a, READ | WRITE);
  await loop.start();
  expect(seen).toEqual([WRITE]);
});

test('removeHandler drops the events of that fd not yet dispatched', async () => {
  const loop = newLoop();
  const [r1, w1] = pipe();
  const [r2, w2] = pipe();
  sys.write(w1, one);
  sys.write(w2, one);
  const calls: string[] = [];
  loop.addHandler(r1, () => {
    calls.push('r1');
    loop.removeHandler(r2);
    loop.stop();
  }, READ);
  loop.addHandler(r2, () => {
    calls.push('r2');
    loop.removeHandler(r1);
    loop.stop();
  }, READ);
  await loop.start();
  // Both were ready in the same poll; whichever ran first removed the other,
  // whose event was already in the ready queue.
  expect(calls).toHaveLength(1);
});

test('an fd removed and added again mid-dispatch does not get the old registration\'s event', async () => {
  const loop = newLoop();
  const [r1, w1] = pipe();
  const [r2, w2] = pipe();
  sys.write(w1, one);
  sys.write(w2, one);
  const log: string[] = [];
  const reAdd = (fd: number) => () => {
    const other = fd === r1 ? r2 : r1;
    if (log.length > 0) return;
    log.push(`first ${fd === r1 ? 'r1' : 'r2'} at ${loop.stats().iterations}`);
    loop.removeHandler(other);
    loop.addHandler(other, () => {
      log.push(`new handler at ${loop.stats().iterations}`);
      loop.stop();
    }, READ);
  };
  loop.addHandler(r1, reAdd(r1), READ);
  loop.addHandler(r2, reAdd(r2), READ);
  await loop.start();
  const first = Number(log[0]!.split(' at ')[1]);
  const later = Number(log[1]!.split(' at ')[1]);
  expect(later).toBeGreaterThan(first);
});

test('a handler that throws is logged and the loop goes on; EPIPE is ignored', async () => {
  const logger = new RecordingLogger();
  const loop = newLoop({ logger });
  const [a, b] = socketpair();
  sys.write(b, one);
  let calls = 0;
  loop.addHandler(a, () => {
    calls++;
    if (calls === 1) throw Object.assign(new Error('peer went away'), { code: 'EPIPE' });
    if (calls === 2) throw new Error('handler failed');
    if (calls === 3) return Promise.reject(new Error('async handler failed'));
    loop.stop();
  }, READ);
  await loop.start();
  await new Promise((r) => setImmediate(r));
  expect(calls).toBe(4);
  expect(logger.errors.map((e) => String(e[1]))).toEqual(['Error: handler failed', 'Error: async handler failed']);
});

test('handlers receive the object they were registered with', async () => {
  const loop = newLoop();
  const [r, w] = pipe();
  sys.write(w, one);
  const obj = { fileno: () => r };
  let got: unknown;
  loop.addHandler(obj, (fd) => {
    got = fd;
    loop.stop();
  }, READ);
  await loop.start();
  expect(got).toBe(obj);
  loop.removeHandler(obj);
});

test('close({ allFds: true }) closes numbers with sys.close and objects with their close()', () => {
  const loop = new IOLoop({ makeCurrent: false });
  const [r, w] = sys.pipe();
  const [a, b] = sys.pipe();
  const closed: number[] = [];
  const obj = {
    fileno: () => a,
    close: () => {
      closed.push(a);
      sys.close(a);
    },
  };
  loop.addHandler(r, () => {}, READ);
  loop.addHandler(obj, () => {}, READ);
  loop.close({ allFds: true });
  expect(closed).toEqual([a]);
  expect(() => fs.fstatSync(r)).toThrow(/EBADF/);
  expect(() => fs.fstatSync(a)).toThrow(/EBADF/);
  sys.close(w);
  sys.close(b);
});

test('close() without allFds leaves registered fds open', () => {
  const loop = new IOLoop({ makeCurrent: false });
  const [r] = pipe();
  loop.addHandler(r, () => {}, READ);
  loop.close();
  expect(fs.fstatSync(r).isFIFO()).toBe(true);
});

test('events of a TCP echo round trip arrive through handlers', async () => {
  const loop = newLoop();
  const listener = sys.listenTcp('127.0.0.1', 0);
  fds.push(listener);
  const port = sys.localPort(listener);
  const client = sys.connectTcp('127.0.0.1', port);
  fds.push(client);
  const reply = new Uint8Array(5);
  loop.addHandler(listener, () => {
    const conn = sys.accept(listener);
    if (conn < 0) return;
    fds.push(conn);
    loop.addHandler(conn, () => {
      const buf = new Uint8Array(64);
      const n = sys.read(conn, buf);
      if (n > 0) sys.write(conn, buf.subarray(0, n));
    }, READ);
  }, READ);
  loop.addHandler(client, (_fd, events) => {
    if (events & WRITE) {
      loop.updateHandler(client, READ);
      sys.write(client, new TextEncoder().encode('hello'));
    } else if (sys.read(client, reply) > 0) {
      loop.stop();
    }
  }, WRITE);
  await loop.start();
  expect(new TextDecoder().decode(reply)).toBe('hello');
});
