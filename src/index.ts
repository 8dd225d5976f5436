/**
 * wasm-ioloop: a Tornado-style IOLoop for TypeScript. The timer heap and the
 * event-dispatch core are WebAssembly; a native shim gives them epoll; this
 * package's TypeScript runs your handlers, callbacks and timers.
 *
 * @packageDocumentation
 */
export { NONE, READ, WRITE, ERROR } from './constants';
export { IOLoop, type FdLike, type Handler, type IOLoopOptions, type LoopStats, type Duration, type Timeout, type Logger } from './ioloop';
export { PeriodicCallback } from './periodic';
export { SysError, TimeoutError, ChannelFullError, ChannelClosedError } from './errors';
export { openChannel, type ChannelPort, type ChannelSender, type ChannelOptions } from './channel';
export { sys } from './sys';
