#!/usr/bin/env node
// `npm run build`; `prepack` (`npm pack`, `npm publish`: the package ships built, with no sources
// and no tsx); and, in a clone, the `dependencies` script, which npm runs after an `npm install` or
// `npm ci` that changed node_modules. Not `prepare`: npm 11 lists a package's `prepare` among the
// install scripts it warns about when the package is installed from a tarball, while `dependencies`
// runs only for the project being installed (a clone), never for an installed package.
// Two builds, each of which spares its process the TypeScript compile at start and the loader's
// worker thread for good:
// - the CLI: one CommonJS file, dist/cli.cjs, so `tradewarden` neither compiles TypeScript at every
//   call nor walks ~40 ES modules through the loader (one file through require: ~25 ms less per
//   call, bench/cli.ts);
// - the controller: ES modules in dist/controller/ (main.js, the chart renderer's chart-process.js,
//   one commands/<name>.js per slash command module, demo.js for `tradewarden demo`, and the chunks
//   they share, so the catalogue exists once), run by bin/controller.js (`npm start`, the
//   ecosystem's controller app, `tradewarden controller`).
// Packages stay in node_modules (loaded only when needed). Without esbuild there is nothing to
// build: both launchers then run the sources through tsx, slower but the same.
//
//   node scripts/build.js                  → dist/cli.cjs, dist/controller/, dist/BUILT
//   node scripts/build.js --pack           → the same, and no esbuild is an error (prepack: a package without its build would not run)
//   node scripts/build.js --outdir <dir>   → the same in <dir>, without BUILT (the tests build their own copy)
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const root = path.resolve(import.meta.dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
// Packages stay in node_modules, loaded when a verb needs them, except dotenv: every verb reads
// .env, and resolving a package from node_modules costs more than its 5 KB inside the bundle.
const INLINED = new Set(['dotenv']);
// ccxt (an optional peer: installed by whoever sets BROKER=ccxt) is among them: 63 MB that only
// src/broker/ccxt.ts imports, when it is loaded.
const external = Object.keys({ ...pkg.dependencies, ...pkg.peerDependencies, ...pkg.devDependencies }).filter((name) => !INLINED.has(name));
const { values } = parseArgs({ options: { outdir: { type: 'string' }, pack: { type: 'boolean' } }, strict: true });
const outdir = path.resolve(values.outdir ?? path.join(root, 'dist'));

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  if (values.pack) {
    console.error('tradewarden build: esbuild is not installed, and a package is built when packed: run `npm install` (dev dependencies included) first.');
    process.exit(1);
  }
  console.log('tradewarden build: esbuild is not installed; the CLI will run the sources through tsx.');
  process.exit(0);
}

// A clean folder: a stale bundle must never outlive a failed build.
if (!values.outdir) fs.rmSync(outdir, { recursive: true, force: true });
// The controller's entry points. Code that finds files from import.meta.dirname (the command
// modules, the chart renderer's process) lands in main.js or a chunk, and chunks sit beside main.js:
// the same folder.
const commandsDir = path.join(root, 'commands');
const controllerEntries = [
  { in: 'src/main.ts', out: 'main' },
  { in: 'src/render/chart-process.ts', out: 'chart-process' },
  // The demo runs its paper broker (testkit/paper-broker.ts) in its own process: bundled here, so an
  // installed package has the demo without testkit/.
  { in: 'src/demo/main.ts', out: 'demo' },
  ...fs
    .readdirSync(commandsDir)
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))
    .map((file) => ({ in: `commands/${file}`, out: `commands/${path.basename(file, '.ts')}` })),
];

let cli;
let controller;
try {
  [cli, controller] = await Promise.all([
    esbuild.build({
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
    }),
    esbuild.build({
      absWorkingDir: root,
      entryPoints: controllerEntries,
      bundle: true,
      splitting: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      // Every package stays in node_modules: an ES module cannot inline a CommonJS one (dotenv)
      // that requires Node's own modules, and one read at start costs a long-running process nothing.
      packages: 'external',
      outdir: path.join(outdir, 'controller'),
      logLevel: 'warning',
      metafile: true,
      // Readable stack traces in the controller's log; the files are read once per start.
      minify: false,
    }),
  ]);
} catch (error) {
  if (!values.outdir) fs.rmSync(outdir, { recursive: true, force: true });
  console.error(`tradewarden build failed (${error.message}); the CLI and the controller will run the sources through tsx.`);
  process.exit(1);
}
// For the launchers (bin/fresh-build.cjs): the sources each build was made of. One of them newer
// than this file (or gone) means that build is stale. Only these matter: a new file reaches a build
// only through an edit to one of them, except a new command module, which the commands folder's own
// time shows. (Checking ~40 files instead of walking src/ saves the CLI ~6 ms a call.)
if (!values.outdir) {
  const sourcesOf = (result, folders = ['src/', 'commands/']) => Object.keys(result.metafile.inputs).filter((input) => folders.some((folder) => input.startsWith(folder)));
  const stamp = {
    builtAt: new Date().toISOString(),
    cli: sourcesOf(cli),
    controller: [...sourcesOf(controller), 'commands'],
    // The demo (demo.js) also bundles testkit/'s paper broker; an edit there makes it stale, not the controller.
    demo: [...sourcesOf(controller, ['src/', 'commands/', 'testkit/']), 'commands'],
  };
  fs.writeFileSync(path.join(outdir, 'BUILT'), JSON.stringify(stamp) + '\n');
}
