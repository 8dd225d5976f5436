/**
 * W4 on wasm-ioloop (guest driver): the ping-pong of bench/lib/pingpong-loop.ts on
 * the main thread, Node's loop waiting.
 */
import { emit, jobs, main } from '../../lib/measure';
import { pingPongOnLoop } from '../../lib/pingpong-loop';

main(async () => {
  for (const { config, n } of jobs(['1pair', '100pairs'], 200_000)) emit(await pingPongOnLoop('wasm-ioloop', {}, config, n));
});
