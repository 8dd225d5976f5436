/**
 * W4 with Node's net over AF_UNIX: a server on a socket path in os.tmpdir()
 * echoes what it reads; `pairs` clients each send a 64-byte message, wait for
 * all 64 bytes of its echo, check them, and send the next, until n round trips
 * are done across all pairs. Reports round trips per second of wall time;
 * nsPerOp is CPU ns per round trip.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { emit, fail, jobs, main, Span } from '../../lib/measure';
import { fillMessage, MESSAGE_SIZE, pairsOf, sameMessage } from '../../lib/pingpong';

async function run(config: string, n: number): Promise<void> {
  const what = `W4 ${config} node-net`;
  const pairs = pairsOf(config);
  const rounds = Math.floor(n / pairs);
  const sockPath = path.join(os.tmpdir(), `wasm-ioloop-bench-${process.pid}.sock`);
  fs.rmSync(sockPath, { force: true });

  const server = net.createServer((s) => {
    s.on('data', (d) => s.write(d));
    s.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(sockPath, resolve));
  const clients = await Promise.all(
    Array.from({ length: pairs }, () => new Promise<net.Socket>((resolve) => {
      const c = net.connect(sockPath, () => resolve(c));
    })),
  );

  const span = new Span();
  let finished = 0;
  let total = 0;
  const sent = clients.map(() => Buffer.alloc(MESSAGE_SIZE));
  await new Promise<void>((resolve) => {
    clients.forEach((c, p) => {
      const got = Buffer.alloc(MESSAGE_SIZE);
      let have = 0;
      let round = 0;
      c.on('data', (chunk: Buffer) => {
        if (have + chunk.length > MESSAGE_SIZE) fail(what, `pair ${p} received more bytes than it sent`);
        chunk.copy(got, have);
        have += chunk.length;
        if (have < MESSAGE_SIZE) return;
        if (!sameMessage(got, sent[p])) fail(what, `pair ${p} round ${round}: the echo differs from the message`);
        have = 0;
        round++;
        total++;
        if (round < rounds) {
          // The previous write is done: its echo has come back.
          fillMessage(sent[p], p, round);
          c.write(sent[p]);
        } else if (++finished === pairs) {
          span.stop();
          resolve();
        }
      });
    });
    span.start();
    clients.forEach((c, p) => {
      fillMessage(sent[p], p, 0);
      c.write(sent[p]);
    });
  });
  for (const c of clients) c.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  fs.rmSync(sockPath, { force: true });
  if (total !== rounds * pairs) fail(what, `${total} of ${rounds * pairs} round trips`);
  emit({
    scenario: 'W4', peer: 'node', config, n: rounds * pairs, pairs,
    wallMs: span.wallMs, cpuMs: span.cpuMs, nsPerOp: (span.cpuMs * 1e6) / total,
    roundTripsPerSec: total / (span.wallMs / 1000),
  });
}

main(async () => {
  for (const { config, n } of jobs(['1pair', '100pairs'], 200_000)) await run(config, n);
});
