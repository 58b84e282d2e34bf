#!/usr/bin/env node
// The controller's entry: `npm start`, `tradewarden controller`, and the controller app in
// ecosystem.config.js. Runs the built controller, dist/controller/main.js (in the package as packed:
// `prepack` builds it; in a clone: `npm install` through the `dependencies` script, or `npm run
// build`), unless a source is newer than the build or there is none: then src/main.ts through tsx.
// Chosen at every start, so a controller PM2 restarts after an edit runs the edit. The built one
// spares the long-running process tsx's loader thread and its compiled sources (bench/idle.ts).
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const { freshBuild, noBuild } = createRequire(import.meta.url)('./fresh-build.cjs');
const root = path.resolve(import.meta.dirname, '..');

if (freshBuild(root, 'controller')) {
  await import('../dist/controller/main.js');
} else if (!fs.existsSync(path.join(root, 'src'))) {
  process.stderr.write(noBuild(root));
  process.exit(1);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/main.ts');
}
