// DATA_DIR is private to its user: it holds the data file (the audit, the account's alerts), the
// trader's logs (DATA_DIR/logs, written by PM2: a bot may print keys, balances, orders) and the
// controller's socket. Everything that creates it creates it 0700, and the controller tightens an
// existing one at start (older versions made it 0755). The folder is the guard that covers every
// file in it: PM2 creates the log files with the default umask (0644), which a 0700 folder makes
// unreadable to others all the same. The data file is written 0600 besides (store.ts).
import fs from 'node:fs';
import path from 'node:path';
import { describeError, failed, type OperationError } from '../errors.ts';
import type { Logger } from '../log.ts';

export const DATA_DIR_MODE = 0o700;
/** Where ecosystem.config.js points the trader's logs by default. */
export const LOGS_FOLDER = 'logs';

/** Creates `dataDir` (and missing parents) owner-only; an existing folder is left as it is. */
export function createDataDir(dataDir: string): void {
  fs.mkdirSync(dataDir, { recursive: true, mode: DATA_DIR_MODE });
}

/** The error for a DATA_DIR that cannot be created or entered, naming the variable and the fix. */
export function unusableDataDir(dataDir: string, error: unknown): OperationError {
  const code = (error as NodeJS.ErrnoException).code ?? describeError(error);
  return failed(
    `DATA_DIR ${dataDir} cannot be used (${code}${code === 'ENOTDIR' ? ': a part of the path is a file' : code === 'EACCES' || code === 'EPERM' ? ': no permission' : ''}): ` +
      'point DATA_DIR in .env at a folder this user can create, read and write',
    error,
  );
}

/**
 * The controller's start: DATA_DIR and DATA_DIR/logs exist and are 0700. A folder this user owns
 * that others could enter is chmodded (and logged); one it does not own is only warned about.
 */
export function securePrivateDataDir(dataDir: string, logger: Logger): void {
  const logs = path.join(dataDir, LOGS_FOLDER);
  try {
    createDataDir(dataDir);
    fs.mkdirSync(logs, { mode: DATA_DIR_MODE, recursive: true });
  } catch (error) {
    throw unusableDataDir(dataDir, error);
  }
  for (const [dir, what] of [
    [dataDir, 'DATA_DIR'],
    [logs, 'DATA_DIR/logs'],
  ] as const) {
    const stat = fs.statSync(dir);
    if ((stat.mode & 0o077) === 0) continue;
    const uid = typeof process.getuid === 'function' ? process.getuid() : stat.uid;
    const was = (stat.mode & 0o777).toString(8).padStart(4, '0');
    if (stat.uid !== uid) {
      logger.warn(`${what} ${dir} is mode ${was} and owned by another user: others may read the data file and the trader's logs; chmod 700 it as its owner`);
      continue;
    }
    fs.chmodSync(dir, DATA_DIR_MODE);
    logger.info(`${what} ${dir} was mode ${was}; now 0700 (the data file and the trader's logs may hold account details)`);
  }
}
