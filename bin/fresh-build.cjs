// Whether a build in dist/ may run: none of the sources it was made of (listed under the build's
// name, cli or controller, in dist/BUILT by scripts/build.js) is newer than the stamp, or gone. Shared by the two launchers,
// bin/tradewarden.cjs and bin/controller.js, so an edit is never answered by stale code.
// CommonJS, and nothing but fs and path: the CLI pays for every module it loads before any work.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

/** @param {string} root the project folder  @param {'cli' | 'controller'} build */
exports.freshBuild = function freshBuild(root, build) {
  try {
    const stamp = path.join(root, 'dist', 'BUILT');
    const built = fs.statSync(stamp).mtimeMs;
    const sources = JSON.parse(fs.readFileSync(stamp, 'utf8'))[build];
    return Array.isArray(sources) && sources.length > 0 && sources.every((source) => fs.statSync(path.join(root, source)).mtimeMs <= built);
  } catch {
    return false; // no build, an older stamp, a source gone: run the sources
  }
};
