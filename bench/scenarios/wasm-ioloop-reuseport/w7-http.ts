/**
 * W7 on wasm-ioloop, two loops: examples/http.ts on two worker threads, each a
 * blocking loop with its own SO_REUSEPORT listener on one port; see
 * bench/lib/w7-workers.ts.
 */
import { w7OnWorkers } from '../../lib/w7-workers';

w7OnWorkers('wasm-ioloop-reuseport', 2);
