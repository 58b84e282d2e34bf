#!/usr/bin/env node
// The installed command. Runs the bundled CLI, dist/cli.cjs (built by `npm install` through
// `prepare`, or `npm run build`) — unless a source is newer than the build, or there is no build:
// then the TypeScript sources run through tsx, so an edit is never answered by stale code.
// CommonJS on purpose: an ES module entry costs every call ~10 ms more before any work starts.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

function newestSource(dir) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(full));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(full).mtimeMs);
  }
  return newest;
}

function freshBuild() {
  try {
    const built = fs.statSync(path.join(root, 'dist', 'BUILT')).mtimeMs;
    return newestSource(path.join(root, 'src')) <= built;
  } catch {
    return false;
  }
}

if (freshBuild()) {
  require('../dist/cli.cjs').main();
} else {
  import('tsx/esm/api')
    .then(({ register }) => {
      register();
      return import('../src/cli/main.ts');
    })
    .then(({ main }) => main());
}
