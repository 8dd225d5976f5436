/**
 * W4 on wasm-ioloop's WASI build over the package's own WASI provider, portable
 * driver (`new IOLoop({ backend: 'wasi', driver: 'portable' })`), over TCP on the
 * loopback interface: the provider has no socketpair, so where the epoll program
 * (../../lib/pingpong-loop.ts) takes `pairs` socketpairs from sys.socketpair(),
 * this one opens a listener with loop.sys.listenTcp('127.0.0.1', 0) and `pairs`
 * connections to it with loop.sys.connectTcp, accepted with loop.sys.accept, every
 * call the provider's (node:net underneath, TCP_NODELAY set). The ping-pong is the
 * same: the accepted end echoes what it reads, the connecting end sends a 64-byte
 * message, waits for all 64 bytes of its echo, checks them, and sends the next,
 * until n round trips are done across all pairs; both ends are READ handlers on one
 * loop. The span starts once every connection is accepted and writable. The row
 * reports round trips per second of wall time; nsPerOp is CPU ns per round trip.
 *
 * BENCH_W4_LOOP=epoll runs the same program on the default loop instead (epoll,
 * guest driver, the native sys's TCP sockets), peer 'wasm-ioloop-tcp' in its row:
 * the epoll build over the same transport, to tell the transport's share of the
 * difference from the WASI build's. The harness never sets it.
 */
import { IOLoop } from 'wasm-ioloop';
import { emit, fail, jobs, main, Span, type Row } from '../../lib/measure';
import { fillMessage, MESSAGE_SIZE, pairsOf, sameMessage } from '../../lib/pingpong';

const EPOLL = process.env.BENCH_W4_LOOP === 'epoll';
const PEER = EPOLL ? 'wasm-ioloop-tcp' : 'wasm-ioloop-wasi';

async function pingPong(config: string, n: number): Promise<Row> {
  const what = `W4 ${config} ${PEER}`;
  const pairs = pairsOf(config);
  const rounds = Math.floor(n / pairs);
  const loop = EPOLL ? new IOLoop() : new IOLoop({ backend: 'wasi', driver: 'portable' });
  const sys = loop.sys;
  const span = new Span();
  const fds: number[] = [];
  const echoBuf = new Uint8Array(4096);
  let finished = 0;
  let total = 0;

  const echo = (fd: number): void => {
    const r = sys.read(fd, echoBuf);
    if (r <= 0) return; // would block, or EOF at teardown
    const w = sys.write(fd, echoBuf.subarray(0, r));
    if (w !== r) fail(what, `echo wrote ${w} of ${r} bytes`);
  };

  const listener = sys.listenTcp('127.0.0.1', 0, { backlog: pairs });
  fds.push(listener);
  const port = sys.localPort(listener);
  let accepted = 0;
  let writable = 0;
  const sendFirst: Array<() => void> = [];
  const begin = (): void => {
    if (accepted < pairs || writable < pairs) return;
    span.start();
    for (const send of sendFirst) send();
  };
  loop.addHandler(listener, () => {
    for (let fd = sys.accept(listener); fd >= 0; fd = sys.accept(listener)) {
      fds.push(fd);
      accepted++;
      loop.addHandler(fd, (s) => echo(s as number), IOLoop.READ);
    }
    if (accepted === pairs) loop.removeHandler(listener);
    begin();
  }, IOLoop.READ);

  for (let p = 0; p < pairs; p++) {
    const client = sys.connectTcp('127.0.0.1', port);
    fds.push(client);
    const sent = new Uint8Array(MESSAGE_SIZE);
    const got = new Uint8Array(MESSAGE_SIZE);
    let have = 0;
    let round = 0;
    let connected = false;
    const send = (): void => {
      fillMessage(sent, p, round);
      const w = sys.write(client, sent);
      if (w !== MESSAGE_SIZE) fail(what, `pair ${p} wrote ${w} of ${MESSAGE_SIZE} bytes`);
    };
    // WRITE first: the connect is done when the socket is writable.
    loop.addHandler(client, (_fd, events) => {
      if (!connected) {
        if ((events & IOLoop.ERROR) !== 0) fail(what, `pair ${p}: the connect failed`);
        if ((events & IOLoop.WRITE) === 0) return;
        connected = true;
        writable++;
        loop.updateHandler(client, IOLoop.READ);
        begin();
        return;
      }
      const r = sys.read(client, got.subarray(have));
      if (r < 0) return;
      if (r === 0) fail(what, `pair ${p}: the echo side closed`);
      have += r;
      if (have < MESSAGE_SIZE) return;
      if (!sameMessage(got, sent)) fail(what, `pair ${p} round ${round}: the echo differs from the message`);
      have = 0;
      round++;
      total++;
      if (round < rounds) send();
      else if (++finished === pairs) {
        span.stop();
        loop.stop();
      }
    }, IOLoop.WRITE);
    sendFirst.push(send);
  }

  await loop.start();
  loop.close();
  for (const fd of fds) sys.close(fd);
  if (total !== rounds * pairs) fail(what, `${total} of ${rounds * pairs} round trips`);
  return {
    scenario: 'W4', peer: PEER, config, n: rounds * pairs, pairs, transport: 'tcp-loopback',
    wallMs: span.wallMs, cpuMs: span.cpuMs, nsPerOp: (span.cpuMs * 1e6) / total,
    roundTripsPerSec: total / (span.wallMs / 1000),
  };
}

main(async () => {
  for (const { config, n } of jobs(['1pair', '100pairs'], 200_000)) emit(await pingPong(config, n));
});
