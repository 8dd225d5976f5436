/**
 * W7 on worker loops: examples/http.ts's startWorkers, each worker thread with its
 * own blocking loop and its own SO_REUSEPORT listener on one port. The main thread
 * only runs wrk (bench/lib/wrk.ts) and prints the row.
 */
import { startWorkers, type ServerStats } from '../../examples/http';
import { emit, fail, jobs, main } from './measure';
import { connectionsOf, w7 } from './wrk';

/** The W7 program of `workers` worker loops, reported as `peer`. */
export function w7OnWorkers(peer: string, workers: number): void {
  main(async () => {
    for (const { config, n } of jobs(['1conn', '64conns'], 3000)) {
      const pool = await startWorkers({ port: 0, workers });
      let stats: ServerStats[] = [];
      const row = await w7(peer, config, n, pool.port, async () => {
        stats = await pool.stop();
        // With 64 connections over 2 sockets the kernel's hash leaves one idle with p = 2^-63.
        if (connectionsOf(config) >= 16 * workers && stats.some((s) => s.connections === 0)) {
          fail(`W7 ${config} ${peer}`, `a worker accepted no connection: ${JSON.stringify(stats)}`);
        }
        return stats.reduce((sum, s) => sum + s.requests, 0);
      });
      // Each worker's share of the connections and requests (pre-flight included).
      emit({ ...row, workers, workerConnections: stats.map((s) => s.connections), workerRequests: stats.map((s) => s.requests) });
    }
  });
}
