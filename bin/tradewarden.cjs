#!/usr/bin/env node
// The installed command. Runs the bundled CLI, dist/cli.cjs (built by `npm install` through
// `prepare`, or `npm run build`) — unless a source is newer than the build, or there is no build:
// then the TypeScript sources run through tsx, so an edit is never answered by stale code.
// CommonJS on purpose: an ES module entry costs every call ~10 ms more before any work starts.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

/** The bundle is fresh when none of the sources it was built from (listed in dist/BUILT) is newer or gone. */
function freshBuild() {
  try {
    const stamp = path.join(root, 'dist', 'BUILT');
    const built = fs.statSync(stamp).mtimeMs;
    const { sources } = JSON.parse(fs.readFileSync(stamp, 'utf8'));
    return Array.isArray(sources) && sources.length > 0 && sources.every((source) => fs.statSync(path.join(root, source)).mtimeMs <= built);
  } catch {
    return false; // no build, an old stamp, a source gone: run the sources
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
