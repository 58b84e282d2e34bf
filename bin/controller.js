#!/usr/bin/env node
// The controller's entry: `npm start`, and the controller app in ecosystem.config.js. Runs the
// built controller, dist/controller/main.js (built by `npm install` through `prepare`), unless a
// source is newer than the build or there is none: then src/main.ts through tsx. Chosen at every
// start, so a controller PM2 restarts after an edit runs the edit. The built one spares the
// long-running process tsx's loader thread and its compiled sources (bench/idle.ts).
import { createRequire } from 'node:module';
import path from 'node:path';

const { freshBuild } = createRequire(import.meta.url)('./fresh-build.cjs');

if (freshBuild(path.resolve(import.meta.dirname, '..'), 'controller')) {
  await import('../dist/controller/main.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/main.ts');
}
