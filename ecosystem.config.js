// PM2 process file: the whole runtime of tradewarden in one declarative place.
//
//   pm2 start ecosystem.config.js --only trading-bot   # the managed trader, by hand
//   pm2 start ecosystem.config.js --only tradewarden   # the controller itself
//
// Run from the configuration folder (the one holding .env, beside the bot), or with
// TRADEWARDEN_CONFIG naming it: every relative path in .env is taken from that folder, as the CLI
// and the controller take it (src/config-folder.ts), never from this package's folder (installed,
// it is node_modules/tradewarden, replaced by every `npm update`). `tradewarden ecosystem` writes an
// ecosystem.config.cjs into the configuration folder that fixes the folder and uses this file.
//
// The controller's supervisor reads tradingApp() from this file (never re-declares it), so what an
// operator starts by hand and what /bot start starts are the same definition. The package is ESM;
// PM2 loads this file with require(), which works for ESM on Node >= 20.19 (require(esm)).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import dotenv from 'dotenv';

/** This package's folder: the controller's launcher and the default trader live here, nothing of the user's. */
const packageRoot = path.dirname(fileURLToPath(import.meta.url));

/** The configuration folder: TRADEWARDEN_CONFIG, or the working directory (the rule of src/config-folder.ts). */
export function configDir(env = process.env) {
  const named = env.TRADEWARDEN_CONFIG?.trim();
  return named ? path.resolve(named) : process.cwd();
}

// `pm2 start ecosystem.config.js` reads the same .env as the controller (the real environment wins).
dotenv.config({ path: path.join(configDir(), '.env'), quiet: true });

/** A non-empty, trimmed variable, or undefined. */
function text(env, name) {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

/** Relative paths are taken from the configuration folder. */
function fromConfig(env, value) {
  return path.resolve(configDir(env), value);
}

/** What runs the script when TRADING_INTERPRETER is unset: by extension, like an operator would. */
function inferInterpreter(script) {
  switch (path.extname(script).toLowerCase()) {
    case '.py':
      return 'python3';
    case '.js':
    case '.mjs':
    case '.cjs':
      return 'node';
    default:
      return 'none'; // an executable (binary or shebang script) runs as itself
  }
}

/** TRADING_ARGS as an argv array: whitespace-separated, "double" or 'single' quotes group words. */
function splitArgs(value) {
  if (!value) return [];
  const args = [];
  for (const match of value.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)) args.push(match[1] ?? match[2] ?? match[3]);
  return args;
}

function milliseconds(env, name, fallback) {
  const value = text(env, name);
  if (value === undefined) return fallback;
  const ms = /^\d{1,15}$/.test(value) ? Number(value) : NaN; // digits only: not "1e3", "0x10", "10s"
  if (!Number.isInteger(ms) || ms < 100 || ms > 600_000) {
    throw new Error(`${name} is ${JSON.stringify(value)}: expected milliseconds from 100 to 600000`);
  }
  return ms;
}

/**
 * GATEWAY_ADDR (host:port, [v6]:port, :port or port) as the URL the trader reaches the order gate
 * at; undefined when the gate is off. A wildcard listen address is reached through loopback.
 * src/config.ts validates the same variable for the controller.
 */
function gatewayUrl(env) {
  const value = text(env, 'GATEWAY_ADDR');
  if (value === undefined) return undefined;
  const match = /^(?:(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)?:)?(\d{1,5})$/.exec(value);
  if (!match || Number(match[2]) < 1 || Number(match[2]) > 65535) {
    throw new Error(`GATEWAY_ADDR is ${JSON.stringify(value)}: expected host:port (e.g. 127.0.0.1:8790), or a port alone for loopback`);
  }
  let host = match[1] ?? '127.0.0.1';
  if (host === '0.0.0.0') host = '127.0.0.1';
  if (host === '[::]') host = '[::1]';
  return `http://${host}:${match[2]}`;
}

function logsDir(env) {
  return path.join(fromConfig(env, text(env, 'DATA_DIR') ?? 'data'), 'logs');
}

/**
 * The script as PM2 is given it. PM2 reads a script with a space as a shell command and rewrites it
 * to `bash -c "<script>"` (then runs bash under python or node, so it never starts): a path under
 * "My Bots/" is handed over relative to the app's cwd instead, which PM2 resolves back to the same
 * absolute file. A space in the file name itself (or on the way from TRADING_CWD) has no such way.
 */
function pm2Script(script, cwd) {
  if (!script.includes(' ')) return script;
  const relative = path.relative(cwd, script);
  if (!relative.includes(' ')) return relative;
  throw new Error(
    `TRADING_SCRIPT ${JSON.stringify(script)} has a space in a part PM2 cannot take (PM2 runs such a script as a shell command): ` +
      'rename the file (or the folders between TRADING_CWD and it) without spaces, or leave TRADING_CWD unset',
  );
}

/** The managed trading process: exactly one of it, kept alive by PM2. */
export function tradingApp(env = process.env) {
  const name = text(env, 'TRADING_PROCESS_NAME') ?? 'trading-bot';
  const cwdSetting = text(env, 'TRADING_CWD');
  const base = cwdSetting ? fromConfig(env, cwdSetting) : configDir(env);
  // Absolute, so PM2, the duplicate scan and `ps` all name the same file. Unset: this package's
  // example trader (a heartbeat that never trades).
  const scriptSetting = text(env, 'TRADING_SCRIPT');
  const script = scriptSetting ? path.resolve(base, scriptSetting) : path.join(packageRoot, 'examples/heartbeat-trader.js');
  const logs = logsDir(env);
  const gateway = gatewayUrl(env);
  // Default: the script's own directory, as when an operator ran `python3 bot.py` from there
  // (bots read config files relative to it).
  const cwd = cwdSetting ? base : path.dirname(script);
  return {
    name,
    script: pm2Script(script, cwd),
    interpreter: text(env, 'TRADING_INTERPRETER') ?? inferInterpreter(script),
    args: splitArgs(text(env, 'TRADING_ARGS')),
    cwd,
    // Fork mode, one instance: a trader is one account-holding process, never a cluster.
    exec_mode: 'fork',
    instances: 1,
    // Restart after a crash, but give up (status "errored") on a crash loop instead of hammering
    // the broker: 10 restarts that each lived < 10 s.
    autorestart: true,
    max_restarts: 10,
    min_uptime: '10s',
    // Stop = SIGINT, then SIGKILL after kill_timeout. Long enough for a trader to cancel orders
    // and close out; tests shorten it with TRADING_KILL_TIMEOUT_MS.
    kill_timeout: milliseconds(env, 'TRADING_KILL_TIMEOUT_MS', 10_000),
    // Signal the whole process tree, so a worker the trader spawned cannot outlive it.
    treekill: true,
    watch: false,
    // Logs live in DATA_DIR/logs, not PM2_HOME/logs: they belong with the controller's data,
    // survive a new PM2 daemon or home, and `/bot logs` can read them even when PM2 has no entry.
    out_file: path.join(logs, `${name}.out.log`),
    error_file: path.join(logs, `${name}.err.log`),
    merge_logs: true, // one file per stream, no "-<id>" suffix per instance
    time: true, // timestamp every line, so out and err can be read side by side
    // PM2 hands the starting client's environment to the app; the Discord token and the
    // dead-man's switch URL are the controller's, not the trader's. (Broker keys stay: the trader
    // trades.) With the order gate on, the trader's broker is the gate: an unmodified Alpaca bot
    // trades through it.
    env: { DISCORD_TOKEN: '', HEALTHCHECK_URL: '', ...(gateway ? { APCA_API_BASE_URL: gateway } : {}) },
  };
}

/** The controller (Discord bot + watchers), supervised by the same PM2 daemon. */
export function controllerApp(env = process.env) {
  const logs = logsDir(env);
  const config = configDir(env);
  return {
    name: 'tradewarden',
    // The built controller (dist/controller/: shipped built in the package, `npm run build` in a
    // clone), or src/main.ts through tsx when a source is newer: bin/controller.js decides at every
    // start, restarts included.
    script: path.join(packageRoot, 'bin/controller.js'),
    interpreter: 'node',
    // .env and ./data are found from the configuration folder; said twice (cwd and the variable) so
    // `pm2 save` keeps it and a resurrected controller reads the same folder.
    cwd: config,
    env: { TRADEWARDEN_CONFIG: config },
    exec_mode: 'fork',
    instances: 1, // the controller is a singleton (its control socket in DATA_DIR also enforces it)
    // The watcher must never stay down: no restart budget that ends in "errored". PM2 counts a
    // restart "unstable" only when the app lived < min_uptime, and gives up at max_restarts of
    // them; the controller comes back after every crash instead, with an exponential back-off
    // (100 ms, ×1.5 per crash, at most 15 s; back to 100 ms once it has run for 30 s) so a crash
    // loop (a bad .env) does not spin.
    autorestart: true,
    exp_backoff_restart_delay: 100,
    min_uptime: 1000,
    max_restarts: 1_000_000_000,
    // Time to flush the alert outbox and say goodbye on Discord before SIGKILL.
    kill_timeout: 15_000,
    treekill: true,
    watch: false,
    out_file: path.join(logs, 'tradewarden.out.log'),
    error_file: path.join(logs, 'tradewarden.err.log'),
    merge_logs: true,
    time: true,
  };
}

export const apps = [tradingApp(), controllerApp()];
export default { apps };
