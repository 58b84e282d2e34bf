#!/usr/bin/env node
// `npm run build` (and `prepare`, so `npm install`/`npm ci` build it): bundles the CLI into one
// CommonJS file, dist/cli.cjs, so `tradewarden` neither compiles TypeScript at every call nor walks
// ~40 ES modules through the loader (one file through require: ~25 ms less per call, bench/cli.ts).
// Packages stay in node_modules (loaded only when a verb needs them); the controller itself runs
// the sources through tsx (`npm start`). Without esbuild there is nothing to build: bin/tradewarden.cjs
// then runs the sources through tsx, slower but the same.
//
//   node scripts/build.js                  → dist/cli.cjs and dist/BUILT
//   node scripts/build.js --outdir <dir>   → <dir>/cli.cjs only (the tests build their own copy)
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const root = path.resolve(import.meta.dirname, '..');
const { values } = parseArgs({ options: { outdir: { type: 'string' } }, strict: true });
const outdir = path.resolve(values.outdir ?? path.join(root, 'dist'));

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  console.log('tradewarden build: esbuild is not installed; the CLI will run the sources through tsx.');
  process.exit(0);
}

// A clean folder: a stale bundle must never outlive a failed build.
if (!values.outdir) fs.rmSync(outdir, { recursive: true, force: true });
try {
  await esbuild.build({
    stdin: { contents: "export { main } from './src/cli/main.ts';", resolveDir: root, loader: 'ts', sourcefile: 'cli-entry.ts' },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    packages: 'external',
    outfile: path.join(outdir, 'cli.cjs'),
    logLevel: 'warning',
    minifyWhitespace: true,
    minifySyntax: true,
    // The sources are ES modules; in one CommonJS file import.meta is the bundle's own location
    // (project-root.ts walks up from it to package.json, as it does from src/).
    banner: { js: "const __bundleUrl = require('node:url').pathToFileURL(__filename).href;" },
    define: { 'import.meta.url': '__bundleUrl', 'import.meta.filename': '__filename', 'import.meta.dirname': '__dirname' },
  });
} catch (error) {
  if (!values.outdir) fs.rmSync(outdir, { recursive: true, force: true });
  console.error(`tradewarden build failed (${error.message}); the CLI will run the sources through tsx.`);
  process.exit(1);
}
// The build's moment, for bin/tradewarden.cjs: sources newer than this mean the bundle is stale.
if (!values.outdir) fs.writeFileSync(path.join(outdir, 'BUILT'), `${new Date().toISOString()}\n`);
