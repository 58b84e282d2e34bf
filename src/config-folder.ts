// The configuration folder: the one place a tradewarden's configuration lives. It holds `.env`, and
// every relative path of the configuration (TRADING_SCRIPT, TRADING_CWD, DATA_DIR, PM2_HOME) is taken
// from it, by the CLI, the controller and ecosystem.config.js alike; the default DATA_DIR (./data)
// lives there too. It is the working directory, unless TRADEWARDEN_CONFIG (or the CLI's
// `--config DIR`, which sets it for everything the CLI runs) names another folder.
//
// Never the package's own folder: installed with `npm install` beside a bot, the package sits in
// node_modules/tradewarden, which every `npm update` replaces; a bot's `main_bot.py` is beside `.env`,
// not inside the package. (Before, relative trader paths were taken from the package's folder while
// `.env` and DATA_DIR came from the working directory: two rules for one configuration.)
// ecosystem.config.js is plain JavaScript that PM2 loads by itself: it repeats this rule in configDir().
import path from 'node:path';

export const CONFIG_FOLDER_VARIABLE = 'TRADEWARDEN_CONFIG';

/** The configuration folder, absolute: TRADEWARDEN_CONFIG (relative to the working directory) or the working directory. */
export function configFolder(env: Record<string, string | undefined> = process.env): string {
  const named = env[CONFIG_FOLDER_VARIABLE]?.trim();
  return named ? path.resolve(named) : process.cwd();
}

/** How a message names where relative paths are taken from, so the reader knows what to change. */
export function describeConfigFolder(env: Record<string, string | undefined> = process.env): string {
  const folder = configFolder(env);
  return env[CONFIG_FOLDER_VARIABLE]?.trim()
    ? `the configuration folder ${folder} (${CONFIG_FOLDER_VARIABLE} or --config)`
    : `the configuration folder ${folder} (the working directory; TRADEWARDEN_CONFIG or --config DIR name another)`;
}
