// Reads the managed process's definition from ecosystem.config.js — the one place it is declared
// (STYLE: code reads it, never re-declares it). The file is imported fresh when it changes, so an
// edited definition is picked up by the next start without restarting the controller.
import fs from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { failed } from '../errors.ts';
import { PROJECT_ROOT } from '../project-root.ts';
import type { Pm2AppDefinition } from './pm2-connection.ts';

export const DEFAULT_ECOSYSTEM_PATH = path.join(PROJECT_ROOT, 'ecosystem.config.js');

/** The fields of the trading app that the supervisor itself relies on, checked. */
export interface TradingDefinition {
  name: string;
  /** absolute (app.script may be relative to cwd) */
  script: string;
  /** absolute */
  cwd: string;
  killTimeoutMs: number;
  outFile?: string;
  errorFile?: string;
  /** the whole definition, handed to PM2 as is */
  app: Pm2AppDefinition;
}

type Env = NodeJS.ProcessEnv;
interface EcosystemModule {
  tradingApp?: (env?: Env) => unknown;
}

/** Builds tradingApp(env) from the ecosystem file at `file`. */
export async function readTradingDefinition(env: Env, file = DEFAULT_ECOSYSTEM_PATH): Promise<TradingDefinition> {
  let mod: EcosystemModule;
  try {
    // The query makes an edited file a new module; an unchanged one is served from the cache.
    const { mtimeMs, size } = await fs.stat(file);
    mod = (await import(`${pathToFileURL(file).href}?v=${mtimeMs}-${size}`)) as EcosystemModule;
  } catch (error) {
    throw failed(`could not load ${file}: ${error instanceof Error ? error.message : String(error)}`, error);
  }
  if (typeof mod.tradingApp !== 'function') throw failed(`${file} does not export a tradingApp(env) function`);
  let raw: unknown;
  try {
    raw = mod.tradingApp(env);
  } catch (error) {
    // e.g. a malformed TRADING_KILL_TIMEOUT_MS: the message names the variable
    throw failed(`the trading app definition in ${path.basename(file)} is invalid: ${error instanceof Error ? error.message : String(error)}`, error);
  }
  return parseDefinition(raw, file);
}

function parseDefinition(raw: unknown, file: string): TradingDefinition {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw failed(`tradingApp() in ${file} did not return an object`);
  const app = raw as Pm2AppDefinition;
  const problems: string[] = [];
  const name = typeof app.name === 'string' && app.name ? app.name : (problems.push('name is missing'), '');
  // A relative script is taken from an absolute cwd, as PM2 does (ecosystem.config.js hands a
  // script under a folder with a space over that way).
  const cwdSetting = typeof app.cwd === 'string' && path.isAbsolute(app.cwd) ? app.cwd : undefined;
  const script =
    typeof app.script === 'string' && (path.isAbsolute(app.script) || (cwdSetting && app.script))
      ? path.resolve(cwdSetting ?? '/', app.script)
      : (problems.push('script must be an absolute path, or relative to an absolute cwd'), '');
  const cwd = cwdSetting ?? path.dirname(script);
  const killTimeoutMs = typeof app.kill_timeout === 'number' && app.kill_timeout > 0 ? app.kill_timeout : 1600; // PM2's default
  if (app.exec_mode !== undefined && app.exec_mode !== 'fork' && app.exec_mode !== 'fork_mode') problems.push('exec_mode must be fork');
  if (app.instances !== undefined && app.instances !== 1) problems.push('instances must be 1');
  if (problems.length) throw failed(`tradingApp() in ${file}: ${problems.join('; ')}`);
  const logFile = (v: unknown) => (typeof v === 'string' && v ? path.resolve(cwd, v) : undefined);
  return { name, script, cwd, killTimeoutMs, outFile: logFile(app.out_file), errorFile: logFile(app.error_file), app };
}
