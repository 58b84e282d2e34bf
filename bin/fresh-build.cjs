// Whether a build in dist/ may run: none of the sources it was made of (listed under the build's
// name, cli, controller or demo, in dist/BUILT by scripts/build.js) is newer than the stamp, or gone.
// Shared by the launchers, bin/tradewarden.cjs and bin/controller.js, and `tradewarden demo`, so an
// edit is never answered by stale code. An installed package carries its build and none of the
// sources (package.json's `files`): its build is all there is.
// CommonJS, and nothing but fs and path: the CLI pays for every module it loads before any work.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

/** @param {string} root the project folder  @param {'cli' | 'controller' | 'demo'} build */
exports.freshBuild = function freshBuild(root, build) {
  try {
    const stamp = path.join(root, 'dist', 'BUILT');
    const built = fs.statSync(stamp).mtimeMs;
    const sources = JSON.parse(fs.readFileSync(stamp, 'utf8'))[build];
    if (!Array.isArray(sources) || sources.length === 0) return false;
    if (!fs.existsSync(path.join(root, 'src'))) return true; // the package as installed: nothing to be newer than
    return sources.every((source) => fs.statSync(path.join(root, source)).mtimeMs <= built);
  } catch {
    return false; // no build, an older stamp, a source gone: run the sources
  }
};

/** The launchers' message when there is neither a build nor the sources to run instead. */
exports.noBuild = function noBuild(root) {
  return `tradewarden: ${root} has no build (dist/) and no sources (src/) to run: reinstall the package (a packed tarball carries its build), or run \`npm run build\` in a clone\n`;
};
