// "The PM2 daemon of this PM2_HOME", as the OS sees it: its PID file, whether a PID really is that
// home's God Daemon, and ending it by PID (never `pm2 kill`, never by name, never another home's).
import fs from 'node:fs';
import path from 'node:path';
import { descendantsOf, isAlive, readProcessTable } from './process-table.ts';
import { endProcess, isSameProcess, processInfo, signalQuietly, waitUntilGone } from './processes.ts';

/** The PID `$PM2_HOME/pm2.pid` names, if any. */
export function daemonPidOf(pm2Home: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(path.join(pm2Home, 'pm2.pid'), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function readProcText(pid: number, file: 'cmdline' | 'environ'): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Linux: whether `pid` is a God Daemon whose environment says PM2_HOME=<pm2Home>. Its title is
 * "PM2 vX: God Daemon (<home>)", but the kernel may cut a title to the length of the original argv,
 * so the home is read from its environment (PM2 spawns the daemon with PM2_HOME set).
 * undefined where /proc cannot tell (not Linux, or not readable).
 */
function procSaysDaemonOf(pid: number, pm2Home: string): boolean | undefined {
  if (process.platform !== 'linux') return undefined;
  const cmdline = readProcText(pid, 'cmdline');
  const environ = readProcText(pid, 'environ');
  if (cmdline === undefined || environ === undefined) return undefined;
  return cmdline.includes('God Daemon') && environ.split('\0').includes(`PM2_HOME=${pm2Home}`);
}

/** Whether `pid` is the PM2 God Daemon of `pm2Home` (elsewhere than Linux its title must show it). */
export async function isPm2DaemonOf(pid: number, pm2Home: string): Promise<boolean> {
  if (!isAlive(pid)) return false;
  const fromProc = procSaysDaemonOf(pid, pm2Home);
  if (fromProc !== undefined) return fromProc;
  const command = (await processInfo(pid))?.command ?? '';
  return command.includes('God Daemon') && command.includes(pm2Home);
}

/** Linux: every God Daemon serving `pm2Home` (more than one is the bug invariant 1 is about). */
export function godDaemonsFor(pm2Home: string): number[] {
  return fs
    .readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((pid) => procSaysDaemonOf(pid, pm2Home) === true);
}

export interface DaemonEnding {
  pid: number;
  /** how it ended; 'not-ours' = the PID file names a process that is not our home's daemon (left alone) */
  outcome: NodeJS.Signals | 'gone' | 'not-ours';
  /** its apps that outlived it and were SIGKILLed */
  orphansKilled: number[];
}

/**
 * Ends the PM2 daemon of `pm2Home` by the PID in its pm2.pid. SIGTERM makes PM2 delete (stop) its
 * apps and exit; if it has not within `graceMs`, SIGKILL — and then whatever it was running that
 * survived it (same PIDs, same start times as before the signal) is SIGKILLed too. `signal: SIGKILL`
 * simulates a crash: its apps live on.
 */
export async function endPm2Daemon(
  pm2Home: string,
  options: { graceMs?: number; pid?: number; signal?: NodeJS.Signals } = {},
): Promise<DaemonEnding | undefined> {
  const { graceMs = 15_000, pid = daemonPidOf(pm2Home), signal = 'SIGTERM' } = options;
  if (pid === undefined || !isAlive(pid)) return undefined;
  if (!(await isPm2DaemonOf(pid, pm2Home))) return { pid, outcome: 'not-ours', orphansKilled: [] };
  const before = await readProcessTable();
  const self = before.find((p) => p.pid === pid);
  const apps = signal === 'SIGKILL' ? [] : descendantsOf(before, pid);
  const outcome = await endProcess({ pid, startedAt: self?.startedAt }, { signal, graceMs });
  const orphansKilled: number[] = [];
  for (const app of apps) {
    if (await isSameProcess(app)) {
      signalQuietly(app.pid, 'SIGKILL');
      orphansKilled.push(app.pid);
    }
  }
  await waitUntilGone(orphansKilled, 3000);
  return { pid, outcome, orphansKilled };
}
