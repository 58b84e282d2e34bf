// Test support for anything that drives a real PM2 daemon: a private PM2_HOME and DATA_DIR under
// os.tmpdir(), the daemon of that home ended by its PID (never `pm2 kill` on a shared home, never
// by name; src/os/ does the ending), and a poller for waiting on the OS.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isAlive } from '../src/os/process-table.ts';
import { terminate } from '../src/os/processes.ts';
import { daemonPidOf, endPm2Daemon, godDaemonsFor } from '../src/os/pm2-daemon.ts';

export interface TempHome {
  root: string;
  pm2Home: string;
  dataDir: string;
  /** ends this home's daemon (and so its apps) and removes the directories */
  cleanup(): Promise<void>;
}

export function makeTempHome(prefix = 'tw-pm2-'): TempHome {
  // Short paths: PM2's unix sockets live in PM2_HOME and socket paths are limited to ~107 bytes.
  const root = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const pm2Home = path.join(root, 'pm2');
  const dataDir = path.join(root, 'data');
  fs.mkdirSync(pm2Home, { recursive: true });
  fs.mkdirSync(dataDir, { recursive: true });
  return {
    root,
    pm2Home,
    dataDir,
    async cleanup() {
      await killDaemon(pm2Home);
      for (const pid of godDaemonsFor(pm2Home)) await killPid(pid); // any a bug let loose
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** named in the time-out error */
  what?: string;
}

/** Polls `predicate` until it returns a truthy value (which is returned) or the deadline passes. */
export async function waitFor<T>(predicate: () => T | Promise<T>, options: WaitOptions = {}): Promise<NonNullable<T>> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const intervalMs = options.intervalMs ?? 25;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await predicate();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${options.what ?? 'a condition'}`, { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export { isAlive, godDaemonsFor };
/** The PID `$PM2_HOME/pm2.pid` names. */
export const daemonPid = daemonPidOf;

/** Signals `pid`, waits for it to go, SIGKILLs it if it has not within `graceMs` (src/os's terminate). */
export async function killPid(pid: number, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
  if (!isAlive(pid)) return;
  await terminate(pid, { signal, graceMs });
}

/**
 * Ends the God Daemon of `pm2Home` by the PID in `$PM2_HOME/pm2.pid`. SIGTERM (default) makes it
 * stop its apps first; SIGKILL simulates a crash (its apps live on as orphans). Returns the PID.
 */
export async function killDaemon(pm2Home: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | undefined> {
  const ended = await endPm2Daemon(pm2Home, { signal });
  return ended && ended.outcome !== 'not-ours' ? ended.pid : undefined;
}

/**
 * Copies a trader script into `dir` and returns its absolute path. Tests run traders from their
 * own copies: a duplicate scan looks for every process running the *same file*, so two test files
 * running examples/heartbeat-trader.js at once would see each other's traders as duplicates.
 */
export function copyTrader(source: string, dir: string, name = path.basename(source)): string {
  fs.mkdirSync(dir, { recursive: true });
  const target = path.join(dir, name);
  fs.copyFileSync(source, target);
  return target;
}
