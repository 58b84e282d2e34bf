// Test support for anything that drives a real PM2 daemon: a private PM2_HOME and DATA_DIR under
// os.tmpdir(), the daemon of that home ended by its PID (never `pm2 kill` on a shared home, never
// by name), and a poller for waiting on the OS.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

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

/** Alive and not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return process.platform !== 'linux';
  }
}

/** Signals `pid`, waits for it to go, SIGKILLs it if it has not within `graceMs`. */
export async function killPid(pid: number, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
  if (!isAlive(pid)) return;
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  try {
    await waitFor(() => !isAlive(pid), { timeoutMs: graceMs, what: `pid ${pid} to exit` });
  } catch {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      return;
    }
    await waitFor(() => !isAlive(pid), { timeoutMs: 3000, what: `pid ${pid} to exit after SIGKILL` });
  }
}

export function daemonPid(pm2Home: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(path.join(pm2Home, 'pm2.pid'), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Ends the God Daemon of `pm2Home` by the PID in `$PM2_HOME/pm2.pid`. SIGTERM (default) makes it
 * stop its apps first; SIGKILL simulates a crash (its apps live on as orphans). Returns the PID.
 */
export async function killDaemon(pm2Home: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | undefined> {
  const pid = daemonPid(pm2Home);
  if (pid === undefined || !isDaemonOf(pid, pm2Home)) return undefined;
  await killPid(pid, signal, 15_000);
  return pid;
}

/** Whether `pid` is a PM2 God Daemon whose environment says PM2_HOME=<pm2Home>. */
function isDaemonOf(pid: number, pm2Home: string): boolean {
  try {
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!cmdline.includes('God Daemon')) return false;
    const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    return environ.includes(`PM2_HOME=${pm2Home}`);
  } catch {
    return false;
  }
}

/**
 * PIDs of every God Daemon serving `pm2Home`. The title ("PM2 vX: God Daemon (<home>)") may be
 * truncated to the original argv's length, so the home is read from /proc/PID/environ instead.
 */
export function godDaemonsFor(pm2Home: string): number[] {
  return fs
    .readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((pid) => isDaemonOf(pid, pm2Home));
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
