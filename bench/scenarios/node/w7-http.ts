/**
 * W7 on Node's `http`: a server on 127.0.0.1 that answers every request with
 * "hello world" (Content-Type text/plain; Node adds Content-Length, Date and its
 * keep-alive headers), loaded by wrk; see bench/lib/wrk.ts.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { emit, jobs, main } from '../../lib/measure';
import { w7 } from '../../lib/wrk';

main(async () => {
  for (const { config, n } of jobs(['1conn', '64conns'], 3000)) {
    let served = 0;
    const server = http.createServer((_req, res) => {
      served++;
      res.setHeader('Content-Type', 'text/plain');
      res.end('hello world');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    emit(await w7('node', config, n, port, async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      return served;
    }));
  }
});
