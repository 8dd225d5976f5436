// The package's WASI preview1 provider over node:net sockets (provider.ts), with
// preview1's errno numbering (errno.ts) and record layouts (layout.ts).
export * from './provider';
export * from './errno';
export * from './layout';
