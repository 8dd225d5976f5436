// One echo server, written once against loop.sys and handlers, that runs unchanged
// wherever the package runs. The loop's defaults pick what the host has:
//
//   npx tsx examples/echo-anywhere.ts [port]
//       Node with the native shim: backend epoll, guest driver (libuv watches the poller)
//   WASM_IOLOOP_NO_NATIVE=1 npx tsx examples/echo-anywhere.ts [port]
//       Node without it: backend wasi over the package's own WASI provider (node:net
//       sockets), portable driver
//   deno run --allow-net --allow-read --allow-env --sloppy-imports examples/echo-anywhere.ts [port]
//       Deno without --allow-ffi (no native shim): backend wasi, provider, portable driver
//   bun examples/echo-anywhere.ts [port]
//       Bun: the native shim through N-API: backend epoll, the shim's watcher thread
//
// It listens on 127.0.0.1 (port 0: any free port), prints one JSON line
// `{"listening": port, "runtime", "backend", "native"}` once it accepts connections,
// and echoes every byte of every connection until the process is ended.
//
// Deno and the package's sources: src/ is CommonJS written as TypeScript, which uses
// `require` and `__dirname`; Deno gives an ES module neither, so under Deno they are
// defined for src/ before it is loaded (as test/contract/run-host.ts does).
import { createRequire } from 'node:module';
import * as path from 'node:path';

const SRC = path.join(path.dirname(path.resolve(process.argv[1] ?? 'examples/echo-anywhere.ts')), '..', 'src');

function provideCommonJsGlobals(): void {
  const g = globalThis as { Deno?: unknown; require?: unknown; __dirname?: unknown };
  if (g.Deno === undefined) return; // Node (tsx) and Bun give modules their own
  g.require ??= createRequire(path.join(SRC, 'index.ts'));
  g.__dirname ??= SRC;
}

async function main(): Promise<void> {
  provideCommonJsGlobals();
  const { IOLoop, READ, WRITE } = await import('../src/index');
  const loop = new IOLoop();
  const sys = loop.sys; // the calls of this loop's backend: native ones, or the WASI host's

  /** A connection and the bytes it could not write yet. */
  class Conn {
    pending: Uint8Array | null = null;
    constructor(readonly fd: number) {}
    fileno(): number {
      return this.fd;
    }
    close(): void {
      loop.removeHandler(this.fd);
      sys.close(this.fd);
    }
    /** Writes what it can; keeps the rest and asks for WRITE. */
    send(data: Uint8Array): void {
      const n = Math.max(sys.write(this.fd, data), 0);
      if (n === data.length) return;
      this.pending = data.slice(n);
      loop.updateHandler(this.fd, READ | WRITE);
    }
  }

  const buf = new Uint8Array(64 * 1024);
  const onConn = (registered: unknown, events: number): void => {
    const c = registered as Conn;
    try {
      if (c.pending !== null) {
        if ((events & WRITE) === 0) return;
        const data = c.pending;
        c.pending = null;
        loop.updateHandler(c.fd, READ);
        c.send(data);
        return;
      }
      const n = sys.read(c.fd, buf);
      if (n === 0) c.close();
      else if (n > 0) c.send(buf.subarray(0, n));
    } catch (e) {
      // The peer went away (ECONNRESET, EPIPE): this connection is done.
      c.close();
      if (!['ECONNRESET', 'EPIPE', 'ENOTCONN'].includes((e as { code?: string }).code ?? '')) console.error(e);
    }
  };

  const listener = sys.listenTcp('127.0.0.1', Number(process.argv[2] ?? 0));
  loop.addHandler(
    listener,
    () => {
      for (let fd = sys.accept(listener); fd >= 0; fd = sys.accept(listener)) loop.addHandler(new Conn(fd), onConn, READ);
    },
    READ,
  );
  const g = globalThis as { Bun?: unknown; Deno?: unknown };
  const host = IOLoop.host();
  console.log(
    JSON.stringify({
      listening: sys.localPort(listener),
      runtime: g.Bun ? 'bun' : g.Deno ? 'deno' : 'node',
      backend: IOLoop.configuredBackend(),
      native: host.native,
    }),
  );
  await loop.start();
}

main().catch((e: unknown) => {
  console.error('echo-anywhere failed:', e);
  process.exitCode = 1;
});
