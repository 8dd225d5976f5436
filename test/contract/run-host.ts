// Runs the contract cases (cases.ts) over every combination (combos.ts) in whatever
// host runs this file, and prints one line per case:
//   ok <combo> <case>
//   FAIL <combo> <case>: <message>
//   n/a <combo> <case>: <why>
// after a first line `host <IOLoop.host() as JSON>`, and ends with
// `N passed, M failed (K not applicable)`. The exit code is 1 when a case failed.
// Arguments, if any, name the combinations to run (default: all of them); `<combo>#<n>`
// starts that combination at its case n (0-based), for a run that resumes one that hung.
// A combination the host cannot make (IOLoop.host() lacks its backend or driver) is
// n/a for every case, with the host's reason.
//
//   bun test/contract/run-host.ts
//   deno run -A --sloppy-imports test/contract/run-host.ts
//   deno run --allow-read --allow-env --sloppy-imports test/contract/run-host.ts   (no FFI: portable)
//   WASM_IOLOOP_NO_NATIVE=1 node --import tsx test/contract/run-host.ts
//
// Deno and the package's sources: src/ is CommonJS written as TypeScript modules. Its
// relative imports have no extension (Deno resolves them with --sloppy-imports), and
// native.ts, core.ts, drivers.ts and validate.ts use the CommonJS `require` and
// `__dirname` (the shim's and core.wasm's paths are relative to src/), which Deno
// gives no ES module, whatever its flags or deno.json say. Under Deno this runner
// therefore defines both as globals for src/ before it imports anything from there.
import { createRequire } from 'node:module';
import * as path from 'node:path';

type Line = { status: 'ok' | 'FAIL' | 'n/a'; text: string };

const HERE = path.dirname(path.resolve(process.argv[1] ?? 'test/contract/run-host.ts'));
const SRC = path.join(HERE, '..', '..', 'src');

function provideCommonJsGlobals(): void {
  const g = globalThis as { Deno?: unknown; require?: unknown; __dirname?: unknown };
  if (g.Deno === undefined) return; // Node (tsx) and Bun give modules their own
  g.require ??= createRequire(path.join(SRC, 'index.ts'));
  g.__dirname ??= SRC;
}

async function main(): Promise<number> {
  provideCommonJsGlobals();
  const { IOLoop } = await import('../../src/index');
  const { CASES } = await import('./cases');
  const { COMBOS, unavailable } = await import('./combos');
  const { checkNotApplicable, describeError, runCase } = await import('./harness');

  console.log(`host ${JSON.stringify(IOLoop.host())}`);
  const lines: Line[] = [];
  const emit = (line: Line): void => {
    lines.push(line);
    console.log(line.text);
  };
  // `<combo>` or `<combo>#<n>`: that combination, from its case n (0-based) on.
  const only = new Map(
    process.argv.slice(2).map((arg) => {
      const [name, from] = arg.split('#');
      if (!COMBOS.some((c) => c.name === name)) throw new Error(`unknown combination ${name}; known: ${COMBOS.map((c) => c.name).join(', ')}`);
      return [name!, Number(from ?? 0)] as const;
    }),
  );
  for (const combo of COMBOS) {
    if (only.size > 0 && !only.has(combo.name)) continue;
    const missing = unavailable(combo);
    for (const c of CASES.slice(only.get(combo.name) ?? 0)) {
      const label = `${combo.name} ${c.name}`;
      if (missing !== null) {
        emit({ status: 'n/a', text: `n/a ${label}: ${missing}` });
        continue;
      }
      console.error(`> ${label}`); // the case running, should it never finish
      const outcome = await runCase(combo, c);
      if (outcome.status === 'ok') emit({ status: 'ok', text: `ok ${label}` });
      else if (outcome.status === 'fail') emit({ status: 'FAIL', text: `FAIL ${label}: ${outcome.message}` });
      else {
        // Not applicable: check that the reason holds on this host.
        try {
          checkNotApplicable(combo, c);
          emit({ status: 'n/a', text: `n/a ${label}: ${outcome.reason}` });
        } catch (e) {
          emit({ status: 'FAIL', text: `FAIL ${label}: not applicable as "${outcome.reason}", but ${describeError(e)}` });
        }
      }
    }
  }
  const count = (s: Line['status']): number => lines.filter((l) => l.status === s).length;
  console.log(`${count('ok')} passed, ${count('FAIL')} failed (${count('n/a')} not applicable)`);
  return count('FAIL') > 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error('run-host failed before its cases ran:', e);
    process.exitCode = 2;
  },
);
