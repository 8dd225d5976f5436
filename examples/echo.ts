// An echo server on 127.0.0.1 built on addHandler and sys, driven for a few
// seconds by clients on the same loop. Prints round trips per second and the
// loop's stats, then exits 0 (1 if an echoed byte ever differs).
//
//   npm start                      # 3 seconds, 8 clients
//   ECHO_SECONDS=10 ECHO_CLIENTS=64 npm start

import { IOLoop, READ, WRITE, ERROR, sys } from '../src/index';

const SECONDS = Number(process.env.ECHO_SECONDS ?? 3);
const CLIENTS = Number(process.env.ECHO_CLIENTS ?? 8);
const MESSAGE_SIZE = 64;

/** A nonblocking socket with the bytes it still has to write. */
class Conn {
  pending: Uint8Array | null = null;
  constructor(readonly fd: number) {}
  fileno(): number {
    return this.fd;
  }
  close(): void {
    sys.close(this.fd);
  }
  /** Writes what it can; keeps the rest and asks for WRITE readiness. */
  send(loop: IOLoop, data: Uint8Array): void {
    const n = sys.write(this.fd, data);
    const written = Math.max(n, 0);
    if (written === data.length) return;
    this.pending = data.slice(written);
    loop.updateHandler(this, READ | WRITE);
  }
  flush(loop: IOLoop): void {
    const data = this.pending!;
    this.pending = null;
    loop.updateHandler(this, READ);
    this.send(loop, data);
  }
}

const loop = new IOLoop();
const buf = new Uint8Array(64 * 1024);
let roundTrips = 0;
let mismatches = 0;

// ---- server
const listener = sys.listenTcp('127.0.0.1', 0);
const port = sys.localPort(listener);

loop.addHandler(
  listener,
  () => {
    for (let fd = sys.accept(listener); fd >= 0; fd = sys.accept(listener)) {
      loop.addHandler(new Conn(fd), onServerReady, READ);
    }
  },
  READ,
);

function onServerReady(fdLike: unknown, events: number): void {
  const conn = fdLike as Conn;
  if (events & WRITE && conn.pending) conn.flush(loop);
  if (!(events & (READ | ERROR))) return;
  const n = sys.read(conn.fd, buf);
  if (n === -1) return; // spurious wake-up
  if (n === 0) {
    loop.removeHandler(conn);
    conn.close();
    return;
  }
  conn.send(loop, buf.slice(0, n));
}

// ---- clients: each sends a message, waits for all of it to come back, repeats
function startClient(id: number): void {
  const conn = new Conn(sys.connectTcp('127.0.0.1', port));
  const message = new Uint8Array(MESSAGE_SIZE).fill(id & 0xff);
  const reply = new Uint8Array(MESSAGE_SIZE);
  let received = 0;
  let connected = false;
  loop.addHandler(
    conn,
    (_fd, events) => {
      if (!connected) {
        connected = true;
        loop.updateHandler(conn, READ);
        conn.send(loop, message);
        return;
      }
      if (events & WRITE && conn.pending) conn.flush(loop);
      if (!(events & (READ | ERROR))) return;
      const n = sys.read(conn.fd, reply.subarray(received));
      if (n <= 0) return;
      received += n;
      if (received < MESSAGE_SIZE) return;
      if (!reply.every((b) => b === (id & 0xff))) mismatches++;
      received = 0;
      roundTrips++;
      conn.send(loop, message);
    },
    WRITE,
  );
}

for (let i = 0; i < CLIENTS; i++) startClient(i);

const startedAt = loop.time();
loop.callLater(SECONDS, () => loop.stop());

loop.start().then(() => {
  const elapsed = loop.time() - startedAt;
  const stats = loop.stats();
  console.log(`echo: ${CLIENTS} clients, ${MESSAGE_SIZE}-byte messages, ${elapsed.toFixed(2)} s on 127.0.0.1:${port}`);
  console.log(`round trips: ${roundTrips} (${Math.round(roundTrips / elapsed)} per second), mismatches: ${mismatches}`);
  console.log('loop stats:', stats);
  loop.close({ allFds: true }); // closes the listener, every server connection and every client
  process.exitCode = mismatches === 0 && roundTrips > 0 ? 0 : 1;
});
