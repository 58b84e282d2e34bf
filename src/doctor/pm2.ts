// Doctor's PM2 and trader checks: the PM2 daemon of PM2_HOME (one read of its list over its RPC
// socket, never a connect that would spawn one: doctor starts nothing), PM2_HOME's mode (PM2 saves
// the apps' environments there, broker keys included), the trader as ecosystem.config.js defines it
// (the same function the supervisor reads), its script and folder, its interpreter on PATH and
// running (`--version`), and any copy of its script running outside PM2 right now (the duplicate
// scan's own rule, src/supervisor/duplicate-scan.ts).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { isDirectory, isFile } from '../config.ts';
import { describeError } from '../errors.ts';
import { daemonPidOf, isPm2DaemonOf } from '../os/pm2-daemon.ts';
import { readProcessTable } from '../os/process-table.ts';
import { findDuplicates, primaryEntry } from '../supervisor/duplicate-scan.ts';
import { readTradingDefinition, type TradingDefinition } from '../supervisor/ecosystem.ts';
import { parseEntry, type Pm2Entry } from '../supervisor/pm2-connection.ts';
import { readPm2List } from '../supervisor/pm2-rpc.ts';
import { octal, writableAncestor } from './files.ts';
import type { DoctorCheck } from './report.ts';

type Add = (check: Omit<DoctorCheck, 'area'>) => void;

export async function pm2Checks(pm2Home: string, env: NodeJS.ProcessEnv, add: Add, timeoutMs: number): Promise<void> {
  const [entries, definition] = await Promise.all([daemon(pm2Home, add, timeoutMs), ecosystem(env, add)]);
  if (!definition) return;
  const interpreterCheck = interpreter(definition, env, add, timeoutMs);
  files(definition, add);
  await Promise.all([interpreterCheck, copies(definition, entries ?? [], add)]);
}

/** The daemon's entries when it answers; undefined when there is none (yet). */
async function daemon(pm2Home: string, add: Add, timeoutMs: number): Promise<Pm2Entry[] | undefined> {
  const mode = modeOf(pm2Home);
  if (mode !== undefined && mode & 0o077) {
    add({
      name: 'PM2_HOME',
      status: 'warn',
      detail: `${pm2Home} is mode ${octal(mode)}: other users can read what PM2 saves there (the apps' environments, broker keys included)`,
      fix: `chmod 700 ${pm2Home}`,
    });
  } else if (mode !== undefined) add({ name: 'PM2_HOME', status: 'ok', detail: `${pm2Home} (${octal(mode)})` });
  try {
    const raw = await readPm2List(pm2Home, Math.min(timeoutMs, 2000));
    const entries = Array.isArray(raw) ? raw.map(parseEntry).filter((e): e is Pm2Entry => e !== undefined) : [];
    add({ name: 'PM2 daemon', status: 'ok', detail: `answers for PM2_HOME (PID ${daemonPidOf(pm2Home) ?? '?'}, ${entries.length} app${entries.length === 1 ? '' : 's'})` });
    return entries;
  } catch (error) {
    const pid = daemonPidOf(pm2Home);
    if (pid !== undefined && (await isPm2DaemonOf(pid, pm2Home))) {
      add({
        name: 'PM2 daemon',
        status: 'fail',
        detail: `PID ${pid}, the daemon of ${pm2Home}, does not answer: ${describeError(error)}`,
        fix: `end it (kill ${pid}; its apps stop with it) and let the next start begin a new one`,
      });
      return undefined;
    }
    const creatable = mode !== undefined || writableAncestor(pm2Home);
    if (!creatable) {
      add({ name: 'PM2 daemon', status: 'fail', detail: `PM2_HOME ${pm2Home} cannot be created by this user`, fix: 'point PM2_HOME at a folder this user may create (default ~/.pm2)' });
      return undefined;
    }
    add({ name: 'PM2 daemon', status: 'warn', detail: `none runs for PM2_HOME ${pm2Home} yet`, fix: 'nothing to do: the first start (npm start, /bot start) starts one' });
    return undefined;
  }
}

async function ecosystem(env: NodeJS.ProcessEnv, add: Add): Promise<TradingDefinition | undefined> {
  try {
    const definition = await readTradingDefinition(env);
    add({ name: 'ecosystem', status: 'ok', detail: `ecosystem.config.js loads: ${definition.name} runs ${definition.script}` });
    return definition;
  } catch (error) {
    add({ name: 'ecosystem', status: 'fail', detail: describeError(error), fix: 'the message names the variable to change in .env (see .env.example)' });
    return undefined;
  }
}

function files(definition: TradingDefinition, add: Add): void {
  if (!isFile(definition.script)) {
    add({ name: 'script', status: 'fail', detail: `${definition.script} does not exist`, fix: 'set TRADING_SCRIPT to your bot (absolute, or relative to TRADING_CWD)' });
  }
  if (!isDirectory(definition.cwd)) {
    add({ name: 'working folder', status: 'fail', detail: `${definition.cwd} does not exist`, fix: 'set TRADING_CWD to the folder your bot runs from (default: the script\'s own)' });
  } else add({ name: 'working folder', status: 'ok', detail: definition.cwd });
}

async function interpreter(definition: TradingDefinition, env: NodeJS.ProcessEnv, add: Add, timeoutMs: number): Promise<void> {
  const name = typeof definition.app.interpreter === 'string' ? definition.app.interpreter : 'node';
  const source = env.TRADING_INTERPRETER?.trim() ? 'TRADING_INTERPRETER' : "from the script's extension";
  if (name === 'none') {
    try {
      fs.accessSync(definition.script, fs.constants.X_OK);
      add({ name: 'interpreter', status: 'ok', detail: 'none: the script runs as itself (it is executable)' });
    } catch {
      add({ name: 'interpreter', status: 'fail', detail: `none (${source}), but ${definition.script} is not executable`, fix: `chmod +x ${definition.script}, or set TRADING_INTERPRETER (python3, node, …)` });
    }
    return;
  }
  // PM2 looks the interpreter up on PATH (and runs `node` with its own Node when there is none).
  const found = path.isAbsolute(name) ? (isExecutable(name) ? name : undefined) : onPath(name, env.PATH) ?? (name === 'node' ? process.execPath : undefined);
  if (!found) {
    add({
      name: 'interpreter',
      status: 'fail',
      detail: `${name} (${source}) is not ${path.isAbsolute(name) ? 'an executable file' : 'on PATH'}`,
      fix: `install it, or set TRADING_INTERPRETER to the full path of the program that runs ${path.basename(definition.script)} (e.g. /usr/bin/python3)`,
    });
    return;
  }
  try {
    const version = await run(found, ['--version'], timeoutMs);
    add({ name: 'interpreter', status: 'ok', detail: `${name} → ${found} (${version || 'runs'})` });
  } catch (error) {
    add({ name: 'interpreter', status: 'fail', detail: `${found} --version failed: ${describeError(error)}`, fix: `repair or reinstall ${name}, or set TRADING_INTERPRETER to one that runs` });
  }
}

async function copies(definition: TradingDefinition, entries: readonly Pm2Entry[], add: Add): Promise<void> {
  const table = await readProcessTable();
  const duplicates = findDuplicates({
    name: definition.name,
    scripts: [definition.script],
    entries,
    primary: primaryEntry(entries, definition.name),
    table,
    selfPid: process.pid,
  });
  for (const copy of duplicates) {
    add({
      name: 'copies',
      status: 'fail',
      detail: copy.foundIn === 'os' ? `PID ${copy.pid} runs the trader's script outside PM2: ${copy.command}` : `PID ${copy.pid} is a second PM2 entry (${copy.pm2Name}) for the trader`,
      fix: `end it (kill ${copy.pid}) and start the trader only through tradewarden (npx tradewarden start, /bot start): that is where the one-copy guard is`,
    });
  }
  if (!duplicates.length) add({ name: 'copies', status: 'ok', detail: `no copy of ${path.basename(definition.script)} runs outside PM2` });
}

function run(file: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, env: { PATH: process.env.PATH ?? '' } }, (error, stdout, stderr) => {
      if (error) reject(new Error(error.killed ? `no answer within ${timeoutMs} ms` : describeError(error).split('\n')[0]));
      else resolve(`${stdout}${stderr}`.trim().split('\n')[0] ?? '');
    });
  });
}

function onPath(name: string, pathVariable: string | undefined): string | undefined {
  for (const dir of (pathVariable ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function modeOf(file: string): number | undefined {
  try {
    return fs.statSync(file).mode & 0o777;
  } catch {
    return undefined;
  }
}
