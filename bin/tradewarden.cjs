#!/usr/bin/env node
// The installed command. Runs the bundled CLI, dist/cli.cjs (built by `npm install` through
// `prepare`, or `npm run build`) — unless a source is newer than the build, or there is no build:
// then the TypeScript sources run through tsx, so an edit is never answered by stale code.
// CommonJS on purpose: an ES module entry costs every call ~10 ms more before any work starts.
'use strict';
const path = require('node:path');
const { freshBuild } = require('./fresh-build.cjs');

if (freshBuild(path.resolve(__dirname, '..'), 'cli')) {
  require('../dist/cli.cjs').main();
} else {
  import('tsx/esm/api')
    .then(({ register }) => {
      register();
      return import('../src/cli/main.ts');
    })
    .then(({ main }) => main());
}
