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
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
// Packages stay in node_modules, loaded when a verb needs them, except dotenv: every verb reads
// .env, and resolving a package from node_modules costs more than its 5 KB inside the bundle.
const INLINED = new Set(['dotenv']);
const external = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies }).filter((name) => !INLINED.has(name));
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
let result;
try {
  result = await esbuild.build({
    stdin: { contents: "export { main } from './src/cli/main.ts';", resolveDir: root, loader: 'ts', sourcefile: 'cli-entry.ts' },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: [...external, ...external.map((name) => `${name}/*`)],
    outfile: path.join(outdir, 'cli.cjs'),
    logLevel: 'warning',
    metafile: true,
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
// For bin/tradewarden.cjs: the sources this bundle was made of. One of them newer than this file
// (or gone) means the bundle is stale. Only these matter: a new file reaches the bundle only through
// an edit to one of them. (Checking 41 files instead of walking src/ saves the CLI ~6 ms a call.)
if (!values.outdir) {
  const sources = Object.keys(result.metafile.inputs).filter((input) => input.startsWith('src/'));
  fs.writeFileSync(path.join(outdir, 'BUILT'), JSON.stringify({ builtAt: new Date().toISOString(), sources }) + '\n');
}
