/**
 * What the harness asks a runtime before it runs the wasm-ioloop programs
 * there: which runtime this is, whether the package loaded its native shim, and
 * whether a default loop (the guest driver: nested in libuv under Node, the
 * shim's watcher thread under Bun and Deno) runs a timer and a READ handler.
 * Without the shim a default loop falls back to the portable driver, and the
 * timer and callback programs would pass on it without measuring the guest
 * driver; so the harness runs none of them when this probe fails.
 *
 * Prints one JSON line: {runtime, version, native, drivers, entry, ok, why?};
 * exits 0 when the loop works with the shim, CHECK_FAILED otherwise.
 */
import { IOLoop, sys } from 'wasm-ioloop';
import { CHECK_FAILED, RUNTIME } from './measure';

/** How long the loop may take to run one timer and one handler call. */
const DEADLINE_MS = 5000;

async function exercise(): Promise<string | null> {
  const loop = new IOLoop();
  const [a, b] = sys.socketpair();
  let read = 0;
  let fired = false;
  const buf = new Uint8Array(8);
  loop.addHandler(b, () => {
    const r = sys.read(b, buf);
    if (r > 0) read += r;
    if (read === 1 && fired) loop.stop();
  }, IOLoop.READ);
  loop.callLater(0.01, () => {
    fired = true;
    if (sys.write(a, Uint8Array.of(7)) !== 1) throw new Error('write to the socketpair failed');
  });
  // The runtime's own timer: a loop that never wakes is reported, not waited for.
  const guard = setTimeout(() => {
    process.stdout.write(JSON.stringify({ ...report, ok: false, why: `the default loop ran ${fired ? 'its timer but not its READ handler' : 'nothing'} within ${DEADLINE_MS} ms` }) + '\n');
    process.exit(CHECK_FAILED);
  }, DEADLINE_MS);
  await loop.start();
  clearTimeout(guard);
  loop.removeHandler(b);
  loop.close();
  sys.close(a);
  sys.close(b);
  return read === 1 && fired ? null : `timer fired: ${fired}, bytes read: ${read}`;
}

const host = IOLoop.host();
const report = {
  probe: RUNTIME,
  runtime: host.runtime,
  version: host.version,
  native: host.native,
  drivers: host.drivers,
  // Where 'wasm-ioloop' resolved to; Deno's ES modules have no require (the harness reads its import map).
  entry: typeof require !== 'undefined' ? require.resolve('wasm-ioloop') : null,
};

(async () => {
  let why: string | null;
  if (host.native !== true) why = `the native shim did not load (${host.native}), so a default loop would take the portable driver`;
  else {
    try {
      why = await exercise();
    } catch (err) {
      why = `the default loop failed: ${err instanceof Error ? err.message : String(err)}`;
    }
  }
  process.stdout.write(JSON.stringify({ ...report, ok: why === null, ...(why === null ? {} : { why }) }) + '\n');
  process.exit(why === null ? 0 : CHECK_FAILED);
})();
