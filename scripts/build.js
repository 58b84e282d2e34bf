#!/usr/bin/env node
// `npm run build` (and `prepare`, so `npm install`/`npm ci` build it): compiles src/ and commands/
// into dist/, so `tradewarden` runs plain JavaScript instead of compiling TypeScript at every call.
// Without TypeScript (a production-only install) there is nothing to build: bin/tradewarden.js
// then runs the sources through tsx, slower but the same.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
let tsc;
try {
  const require = createRequire(import.meta.url);
  const pkgPath = require.resolve('typescript/package.json');
  tsc = path.join(path.dirname(pkgPath), JSON.parse(fs.readFileSync(pkgPath, 'utf8')).bin.tsc);
} catch {
  console.log('tradewarden build: TypeScript is not installed; the CLI will run the sources through tsx.');
  process.exit(0);
}
// A clean tree: a source deleted since the last build must not live on in dist/.
fs.rmSync(path.join(root, 'dist'), { recursive: true, force: true });
const result = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });
if (result.status !== 0) {
  fs.rmSync(path.join(root, 'dist'), { recursive: true, force: true });
  console.error('tradewarden build failed (see above); the CLI will run the sources through tsx.');
  process.exit(result.status ?? 1);
}
// The build's moment, for bin/tradewarden.js: sources newer than this mean dist/ is stale.
fs.writeFileSync(path.join(root, 'dist', 'BUILT'), `${new Date().toISOString()}\n`);
