// Verbs that run tradewarden itself from wherever it is installed (npm install beside the bot, a
// global install, a clone), beside the catalogue's operations:
//   controller  the controller in the foreground: what PM2, systemd or a container runs
//   ecosystem   writes ecosystem.config.cjs into the configuration folder: the PM2 process file
//               for that folder, so `npx pm2 start ecosystem.config.cjs` deploys the controller
//   demo        the demo, as `npm run demo` in a clone; its files in a folder of the user's choosing
// Each reads the configuration folder (src/config-folder.ts) and writes nothing inside the package:
// an installed package is node_modules/tradewarden, replaced by every `npm update`.
//
// Cheap to load with every CLI call (Node's own modules and three small ones of ours): the entry a
// verb runs (the controller, the demo) is imported only when it runs.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { CONFIG_FOLDER_VARIABLE, configFolder } from '../config-folder.ts';
import { ECOSYSTEM_FILE, writeEcosystemFile } from '../ecosystem-file.ts';
import { OperationError, describeError } from '../errors.ts';
import { PROJECT_ROOT } from '../project-root.ts';

interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

export const PACKAGE_VERBS = {
  controller: {
    usage: 'controller',
    summary: 'run the controller in the foreground, from the configuration folder (what PM2, systemd or a container runs)',
    details:
      'Watches the trader, serves Discord (with DISCORD_TOKEN), the CLI\'s control socket, the order gate and /metrics when configured, until SIGINT or SIGTERM. ' +
      'Reads .env from the configuration folder (the working directory, or --config DIR / TRADEWARDEN_CONFIG); relative paths in it are taken from that folder. ' +
      'Under PM2: `tradewarden ecosystem`, then `npx pm2 start ecosystem.config.cjs`.',
  },
  ecosystem: {
    usage: 'ecosystem [--force]',
    summary: 'write ecosystem.config.cjs beside .env: this folder\'s controller under PM2 (npx pm2 start ecosystem.config.cjs)',
    details:
      'Then `npx pm2 start ecosystem.config.cjs && npx tradewarden start && npx pm2 save` is the deployment. The file declares the controller only: the trader is started ' +
      'through tradewarden (start, /bot start), where the exactly-one guard and the breaker are, so `pm2 start` of the file never restarts a trader the breaker halted. ' +
      'An existing file is left alone unless --force is given.',
  },
  demo: {
    usage: 'demo [options]',
    summary: 'the whole system here with no accounts: a paper broker, a demo trader, the controller; files in ./.demo',
    details:
      'Options: --scenario runaway|loss, --gate, --exit-after SECONDS, --home DIR (the demo\'s files; default .demo in the configuration folder, never inside the package). ' +
      'Everything after `demo` is the demo\'s own: `tradewarden demo --help` explains each.',
  },
} as const;
export type PackageVerb = keyof typeof PACKAGE_VERBS;
export const isPackageVerb = (verb: string): verb is PackageVerb => Object.hasOwn(PACKAGE_VERBS, verb);

const EXIT = { ok: 0, failed: 1, usage: 2, refused: 3 } as const;

export function packageVerbHelp(verb: PackageVerb): string {
  const { usage, summary, details } = PACKAGE_VERBS[verb];
  return [`Usage: tradewarden ${usage}`, '', summary, '', details].join('\n');
}

/** Runs a package verb. `controller` and `demo` never return: they end the process themselves. */
export async function runPackageVerb(verb: PackageVerb, rest: readonly string[], io: CliIo): Promise<number> {
  if (verb === 'demo') {
    // The demo parses its own options (process.argv, as under `npm run demo`); its --help is its own.
    return runEntry({ built: 'dist/controller/demo.js', source: 'src/demo/main.ts', build: 'demo' }, rest, io);
  }
  let values: { force?: boolean; help?: boolean };
  try {
    const parsed = parseArgs({
      args: [...rest],
      // --force only where it means something: `controller --force` is a usage error
      options: verb === 'ecosystem' ? { help: { type: 'boolean', short: 'h' }, force: { type: 'boolean' } } : { help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: true,
    });
    if (parsed.positionals.length) throw new Error(`takes no words, got "${parsed.positionals.join(' ')}"`);
    values = parsed.values as { force?: boolean; help?: boolean };
  } catch (error) {
    io.err(`${verb}: ${describeError(error)}. Usage: tradewarden ${PACKAGE_VERBS[verb].usage}`);
    return EXIT.usage;
  }
  if (values.help) {
    io.out(packageVerbHelp(verb));
    return EXIT.ok;
  }
  if (verb === 'ecosystem') return writeEcosystem(configFolder(), values.force === true, io);
  // bin/controller.js, as PM2 runs it: the same launcher, whichever way the controller is started.
  return runEntry({ built: 'bin/controller.js' }, [], io);
}

/**
 * Runs an entry module of the package in this process (so the PID is the controller's or the
 * demo's own, for PM2's signals and the control socket). A source is run through tsx only in a
 * clone whose build is stale; an installed package has its build and no sources (bin/fresh-build.cjs).
 */
async function runEntry(entry: { built: string; source?: string; build?: string }, args: readonly string[], io: CliIo): Promise<number> {
  const require = createRequire(import.meta.url);
  const launch = require(path.join(PROJECT_ROOT, 'bin/fresh-build.cjs')) as { freshBuild(root: string, build: string): boolean; noBuild(root: string): string };
  let file = path.join(PROJECT_ROOT, entry.built);
  if (entry.source && entry.build && !launch.freshBuild(PROJECT_ROOT, entry.build)) {
    file = path.join(PROJECT_ROOT, entry.source);
    if (!fs.existsSync(file)) {
      io.err(launch.noBuild(PROJECT_ROOT).trimEnd());
      return EXIT.failed;
    }
    const { register } = await import('tsx/esm/api');
    register();
  }
  process.argv = [process.argv[0]!, file, ...args];
  await import(pathToFileURL(file).href);
  return new Promise<number>(() => {}); // the entry owns the process from here, and exits it
}

function writeEcosystem(folder: string, force: boolean, io: CliIo): number {
  let file: string;
  try {
    file = writeEcosystemFile(folder, { force });
  } catch (error) {
    const refusal = error instanceof OperationError && error.kind === 'refused';
    io.err(`${refusal ? 'Refused' : 'Error'}: ${describeError(error)}`);
    return refusal ? EXIT.refused : EXIT.failed;
  }
  const env = fs.existsSync(path.join(folder, '.env')) ? '' : ` (no .env there yet: copy ${path.join(PROJECT_ROOT, '.env.example')} to ${path.join(folder, '.env')} and fill it in)`;
  io.out(
    [
      `Wrote ${file}${env}.`,
      'Deploy from that folder:',
      `  npx pm2 start ${ECOSYSTEM_FILE}     # the controller, under PM2`,
      '  npx tradewarden start                  # the trader, through the guard',
      '  npx pm2 save && npx pm2 startup        # both come back after a reboot',
    ].join('\n'),
  );
  return EXIT.ok;
}

function isDirectory(dir: string): boolean {
  try {
    return fs.statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Takes the global `--config DIR` (or `--config=DIR`, before or after the verb) out of the command
 * line and makes DIR the configuration folder of this process and of everything it starts (the
 * variable is inherited). Returns the rest of the command line, or the problem with DIR.
 */
export function takeConfigOption(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): { argv: string[] } | { problem: string } {
  const rest: string[] = [];
  let dir: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    if (arg === '--config' || arg.startsWith('--config=')) {
      const value = arg === '--config' ? argv[++i] : arg.slice('--config='.length);
      if (value === undefined || value === '' || value.startsWith('-')) return { problem: '--config needs a folder: the one that holds .env, e.g. --config ~/bot' };
      dir = value;
      continue;
    }
    rest.push(arg);
  }
  if (dir !== undefined) {
    const folder = path.resolve(dir);
    if (!isDirectory(folder)) return { problem: `--config ${dir}: no such folder (looked for ${folder}); name the folder that holds .env` };
    env[CONFIG_FOLDER_VARIABLE] = folder;
  }
  return { argv: rest };
}
