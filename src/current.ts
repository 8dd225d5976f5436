// The loops of this thread that the API calls global: the current loop (Tornado's
// IOLoop.current()) and the defaults IOLoop.configure() sets. Each worker thread
// has its own copy of this module, so "global" means "of this thread".

import type { BackendName } from './backends';
import type { IOLoop, IOLoopOptions } from './ioloop';

let currentLoop: IOLoop | null = null;
let configured: { backend: BackendName | undefined; defaults: IOLoopOptions } = { backend: undefined, defaults: {} };

/** The current loop of this thread, or null. */
export function currentLoopOf(): IOLoop | null {
  return currentLoop;
}

/** Makes `loop` (or no loop) current. */
export function setCurrentLoop(loop: IOLoop | null): void {
  currentLoop = loop;
}

/** What IOLoop.configure set: the backend and the default options of new loops. */
export function configuredDefaults(): { backend: BackendName | undefined; defaults: IOLoopOptions } {
  return configured;
}

/** Records IOLoop.configure's arguments (already checked). */
export function setConfigured(backend: BackendName | undefined, defaults: IOLoopOptions): void {
  configured = { backend, defaults };
}
