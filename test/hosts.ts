// The other JavaScript hosts the tests run: Bun and Deno, from their devDependencies
// (@oven/bun-linux-x64, @deno/linux-x64-glibc), and Node running TypeScript through
// tsx. Every test that spawns a host gets its command from here.
//
// npm installs the Deno binary without its exec bit (the package has no install
// script to set it), so denoPath() sets it when it is missing. A missing binary is an
// error that says what to install: a host test never passes by not running.
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..');

/** The Bun binary of the devDependency @oven/bun-linux-x64. @throws Error if it is not installed. */
export function bunPath(): string {
  return executable('Bun', '@oven/bun-linux-x64', path.join('bin', 'bun'));
}

/** The Deno binary of the devDependency @deno/linux-x64-glibc, made executable if needed. @throws Error if it is not installed. */
export function denoPath(): string {
  return executable('Deno', '@deno/linux-x64-glibc', 'deno');
}

/** Node with tsx, which runs a .ts file: the command and its leading arguments. */
export function nodeTs(): [string, string[]] {
  return [process.execPath, ['--import', 'tsx']];
}

function executable(host: string, pkg: string, file: string): string {
  const binary = path.join(ROOT, 'node_modules', pkg, file);
  let mode: number;
  try {
    mode = fs.statSync(binary).mode;
  } catch {
    throw new Error(`${host} is not installed: ${binary} does not exist (the devDependency ${pkg}; run npm ci)`);
  }
  if ((mode & 0o111) !== 0o111) fs.chmodSync(binary, mode | 0o755);
  fs.accessSync(binary, fs.constants.X_OK);
  return binary;
}
