/**
 * W7 on wasm-ioloop (blocking driver): examples/http.ts on one worker thread whose
 * loop owns the thread; see bench/lib/w7-workers.ts.
 */
import { w7OnWorkers } from '../../lib/w7-workers';

w7OnWorkers('wasm-ioloop-blocking', 1);
