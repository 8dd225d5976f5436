/**
 * The W4 ping-pong on one wasm-ioloop loop, for the programs of both drivers:
 * `pairs` socketpairs from sys.socketpair(); one end of each echoes what it reads,
 * the other sends a 64-byte message, waits for all 64 bytes of its echo, checks
 * them, and sends the next, until n round trips are done across all pairs. Both
 * ends are READ handlers on one loop. The row reports round trips per second of
 * wall time; nsPerOp is CPU ns per round trip.
 */
import { IOLoop, sys, type IOLoopOptions } from 'wasm-ioloop';
import { fail, Span, type Row } from './measure';
import { fillMessage, MESSAGE_SIZE, pairsOf, sameMessage } from './pingpong';

/** Runs the ping-pong on a loop made with `options`; returns its row, checked. */
export async function pingPongOnLoop(peer: string, options: IOLoopOptions, config: string, n: number): Promise<Row> {

  const what = `W4 ${config} ${peer}`;
  const pairs = pairsOf(config);
  const rounds = Math.floor(n / pairs);
  const loop = new IOLoop(options);
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

  const sendFirst: Array<() => void> = [];
  for (let p = 0; p < pairs; p++) {
    const [client, server] = sys.socketpair();
    fds.push(client, server);
    const sent = new Uint8Array(MESSAGE_SIZE);
    const got = new Uint8Array(MESSAGE_SIZE);
    let have = 0;
    let round = 0;
    const send = (): void => {
      fillMessage(sent, p, round);
      const w = sys.write(client, sent);
      if (w !== MESSAGE_SIZE) fail(what, `pair ${p} wrote ${w} of ${MESSAGE_SIZE} bytes`);
    };
    loop.addHandler(server, (fd) => echo(fd as number), IOLoop.READ);
    loop.addHandler(client, () => {
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
    }, IOLoop.READ);
    sendFirst.push(send);
  }

  loop.addCallback(() => {
    span.start();
    for (const send of sendFirst) send();
  });
  await loop.start();
  for (const fd of fds) loop.removeHandler(fd);
  loop.close();
  for (const fd of fds) sys.close(fd);
  if (total !== rounds * pairs) fail(what, `${total} of ${rounds * pairs} round trips`);
  return {
    scenario: 'W4', peer, config, n: rounds * pairs, pairs,
    wallMs: span.wallMs, cpuMs: span.cpuMs, nsPerOp: (span.cpuMs * 1e6) / total,
    roundTripsPerSec: total / (span.wallMs / 1000),
  };
}

