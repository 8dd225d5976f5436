/**
 * W7 on wasm-ioloop (guest driver): examples/http.ts on one loop in this thread,
 * Node's loop waiting beside it (it also runs wrk, a child process); see
 * bench/lib/wrk.ts.
 */
import { serveOneLoop } from '../../../examples/http';
import { emit, jobs, main } from '../../lib/measure';
import { w7 } from '../../lib/wrk';

main(async () => {
  for (const { config, n } of jobs(['1conn', '64conns'], 3000)) {
    const server = serveOneLoop({ port: 0, driver: 'guest', signals: false });
    emit(await w7('wasm-ioloop', config, n, server.port, async () => {
      server.stop();
      return (await server.done).requests;
    }));
  }
});
