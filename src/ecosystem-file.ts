// The PM2 process file a configuration folder gets (`tradewarden ecosystem`; `tradewarden init` may
// write it too): ecosystem.config.cjs beside .env, so `npx pm2 start ecosystem.config.cjs` runs the
// controller of that folder from the installed package. It holds no settings of its own: it fixes
// the folder (TRADEWARDEN_CONFIG = its own folder) and takes controllerApp() from the package's
// ecosystem.config.js, so .env stays the one place to configure and an `npm update` updates it.
//
// Only the controller is declared. `pm2 start <file>` restarts every app of the file that PM2
// already knows, stopped ones included: a trader in the file would be started again past a tripped
// breaker. The trader is started through tradewarden (start, /bot start), where the guard is.
// CommonJS (.cjs): PM2 require()s the file, and a bot's package.json may say "type": "module".
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { CONFIG_FOLDER_VARIABLE } from './config-folder.ts';
import { failed, refused } from './errors.ts';
import { PROJECT_ROOT } from './project-root.ts';

export const ECOSYSTEM_FILE = 'ecosystem.config.cjs';

/** The file's text for `folder`. */
export function ecosystemFileText(folder: string): string {
  const ours = path.join(PROJECT_ROOT, 'ecosystem.config.js');
  // By package name when the folder resolves it to this very package (npm install beside the bot:
  // the file survives `npm update` and a moved folder); by path otherwise (a global install, a clone).
  let target = ours;
  try {
    if (createRequire(path.join(folder, 'noop.js')).resolve('tradewarden/ecosystem.config.js') === ours) target = 'tradewarden/ecosystem.config.js';
  } catch {
    // not resolvable from the folder: the absolute path
  }
  return [
    `// PM2 process file of the tradewarden controller for this folder, written by \`tradewarden ecosystem\`.`,
    `//   npx pm2 start ${ECOSYSTEM_FILE} && npx tradewarden start && npx pm2 save`,
    `// Configure in .env, beside this file: relative paths there are taken from this folder. Only the`,
    `// controller is declared: the trader is started through tradewarden (start, /bot start), where the`,
    `// exactly-one guard and the breaker are, so \`pm2 start\` of this file never restarts a halted trader.`,
    `// The controller reads the trader's definition from the package's ecosystem.config.js with this .env.`,
    `process.env.${CONFIG_FOLDER_VARIABLE} = __dirname;`,
    `const { controllerApp } = require(${JSON.stringify(target)});`,
    `module.exports = { apps: [controllerApp()] };`,
    '',
  ].join('\n');
}

/**
 * Writes ecosystem.config.cjs into `folder` and returns its path. An existing file is refused
 * (an OperationError of kind refused) unless `force`; a folder that does not exist is a failure.
 */
export function writeEcosystemFile(folder: string, options: { force?: boolean } = {}): string {
  if (!isDirectory(folder)) {
    throw failed(`the configuration folder ${folder} does not exist: create it (with its .env), or name another with --config DIR or ${CONFIG_FOLDER_VARIABLE}`);
  }
  const file = path.join(folder, ECOSYSTEM_FILE);
  try {
    fs.writeFileSync(file, ecosystemFileText(folder), { flag: options.force ? 'w' : 'wx', mode: 0o644 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw refused(`${file} exists: nothing was written. Add --force to replace it.`);
    throw failed(`could not write ${file}: ${(error as Error).message}`, error);
  }
  return file;
}

function isDirectory(dir: string): boolean {
  try {
    return fs.statSync(dir).isDirectory();
  } catch {
    return false;
  }
}
