#!/usr/bin/env node
// Builds dist/: CommonJS with type declarations from src/ (and bindings/wasi, the
// WASI provider, into dist/wasi), plus an ES module
// entry (dist/index.mjs) that re-exports the CommonJS one by name, so the package
// works from both `require` and `import` with one copy of its state.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const dist = path.join(root, 'dist');
fs.rmSync(dist, { recursive: true, force: true });
// The runtime, and the package's WASI provider (bindings/wasi) beside it in dist/wasi,
// where src/selection.ts looks for it in the built package.
for (const project of ['tsconfig.build.json', 'tsconfig.wasi.json']) {
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(root, project)], {
    stdio: 'inherit',
  });
}
const names = Object.keys(require(path.join(dist, 'index.js'))).filter((n) => n !== '__esModule' && n !== 'default');
const mjs = [
  '// ES module entry: the CommonJS build, re-exported by name (one copy of the state).',
  "import cjs from './index.js';",
  `export const { ${names.join(', ')} } = cjs;`,
  '',
].join('\n');
fs.writeFileSync(path.join(dist, 'index.mjs'), mjs);
console.log(`dist/ built: ${names.length} exports`);
