#!/usr/bin/env node
// The installed command. Runs the bundled CLI, dist/cli.cjs (in the package as packed: `prepack`
// builds it; in a clone: `npm install` through the `dependencies` script, or `npm run build`) —
// unless a source is newer than the build, or there is no build: then the TypeScript sources run
// through tsx (a clone's dev dependency), so an edit is never answered by stale code.
// CommonJS on purpose: an ES module entry costs every call ~10 ms more before any work starts.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { freshBuild, noBuild } = require('./fresh-build.cjs');

const root = path.resolve(__dirname, '..');
if (freshBuild(root, 'cli')) {
  require('../dist/cli.cjs').main();
} else if (!fs.existsSync(path.join(root, 'src'))) {
  process.stderr.write(noBuild(root));
  process.exitCode = 1;
} else {
  import('tsx/esm/api')
    .then(({ register }) => {
      register();
      return import('../src/cli/main.ts');
    })
    .then(({ main }) => main());
}
