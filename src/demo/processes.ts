// The OS processes the demo starts and ends itself: its PM2 daemon, the rogue copy of the trader,
// and leftovers of a demo that crashed. Everything is ended by PID, and only after checking that
// the PID is still what we think it is (same start time, or a PM2 God Daemon of *our* PM2_HOME):
// never by name, never another home's daemon.
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { ancestorsOf, descendantsOf, isAlive, readProcessTable, type OsProcess } from '../os/process-table.ts';
import { programOf } from '../supervisor/duplicate-scan.ts';

/**
 * Set in the demo's environment, so every process it starts (PM2 daemon, trader, rogue copy)
 * carries the demo folder in its environment: a crashed demo's leftovers are recognisable, and a
 * test can prove that nothing is left.
 */
export const DEMO_DIR_VARIABLE = 'TRADEWARDEN_DEMO_DIR';

export interface ProcessRef {
  pid: number;
  /** ms since epoch, to tell this process from a later one that reuses the PID */
  startedAt?: number;
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitGone(pids: readonly number[], withinMs: number): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    if (pids.every((pid) => !isAlive(pid))) return true;
    if (Date.now() >= deadline) return false;
    await delay(50);
  }
}

export async function processInfo(pid: number): Promise<OsProcess | undefined> {
  return (await readProcessTable()).find((p) => p.pid === pid);
}

/** Still the process we started: alive, and started when it did (ps has 1 s resolution). */
export async function isSameProcess(ref: ProcessRef): Promise<boolean> {
  if (!isAlive(ref.pid)) return false;
  if (ref.startedAt === undefined) return true;
  const now = await processInfo(ref.pid);
  return now?.startedAt === undefined || Math.abs(now.startedAt - ref.startedAt) < 1000;
}

/** SIGTERM, a grace period, then SIGKILL. 'gone' when it was no longer (that) process. */
export async function endProcess(ref: ProcessRef, graceMs = 3000): Promise<'gone' | 'SIGTERM' | 'SIGKILL'> {
  if (!(await isSameProcess(ref))) return 'gone';
  signal(ref.pid, 'SIGTERM');
  if (await waitGone([ref.pid], graceMs)) return 'SIGTERM';
  signal(ref.pid, 'SIGKILL');
  if (await waitGone([ref.pid], 3000)) return 'SIGKILL';
  throw new Error(`process ${ref.pid} is still alive after SIGKILL`);
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
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
 * Whether `pid` is the PM2 God Daemon of `pm2Home`. Its title is "PM2 vX: God Daemon (<home>)",
 * but the kernel may cut a title to the length of the original argv, so on Linux the home is read
 * from its environment (PM2 spawns the daemon with PM2_HOME set); elsewhere the title must show it.
 */
export async function isPm2DaemonOf(pid: number, pm2Home: string): Promise<boolean> {
  if (!isAlive(pid)) return false;
  if (process.platform === 'linux') {
    const cmdline = readProcText(pid, 'cmdline');
    const environ = readProcText(pid, 'environ');
    if (cmdline !== undefined && environ !== undefined) {
      return cmdline.includes('God Daemon') && environ.split('\0').includes(`PM2_HOME=${pm2Home}`);
    }
  }
  const command = (await processInfo(pid))?.command ?? '';
  return command.includes('God Daemon') && command.includes(pm2Home);
}

export function daemonPidOf(pm2Home: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(path.join(pm2Home, 'pm2.pid'), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export interface DaemonEnding {
  pid: number;
  /** how it ended; 'not-ours' = the PID file names a process that is not our home's daemon (left alone) */
  outcome: 'SIGTERM' | 'SIGKILL' | 'gone' | 'not-ours';
  /** its apps that outlived it and were SIGKILLed */
  orphansKilled: number[];
}

/**
 * Ends the PM2 daemon of `pm2Home` by the PID in its pm2.pid. SIGTERM makes PM2 delete (stop) its
 * apps and exit; if it has not within `graceMs`, SIGKILL — and then whatever it was running that
 * survived it (same PIDs, same start times as before the signal) is SIGKILLed too.
 */
export async function endPm2Daemon(pm2Home: string, graceMs = 15_000, pid = daemonPidOf(pm2Home)): Promise<DaemonEnding | undefined> {
  if (pid === undefined || !isAlive(pid)) return undefined;
  if (!(await isPm2DaemonOf(pid, pm2Home))) return { pid, outcome: 'not-ours', orphansKilled: [] };
  const before = await readProcessTable();
  const self = before.find((p) => p.pid === pid);
  const apps = descendantsOf(before, pid);
  const outcome = await endProcess({ pid, startedAt: self?.startedAt }, graceMs);
  const orphansKilled: number[] = [];
  for (const app of apps) {
    if (await isSameProcess(app)) {
      signal(app.pid, 'SIGKILL');
      orphansKilled.push(app.pid);
    }
  }
  await waitGone(orphansKilled, 3000);
  return { pid, outcome, orphansKilled };
}

/** Linux: processes whose environment names this demo folder (see DEMO_DIR_VARIABLE). */
export async function markedProcesses(demoDir: string): Promise<OsProcess[]> {
  if (process.platform !== 'linux') return [];
  const table = await readProcessTable();
  const mine = ancestorsOf(table, process.pid); // this demo, and the shell/npm that started it
  const marker = `${DEMO_DIR_VARIABLE}=${demoDir}`;
  return table.filter((p) => !mine.has(p.pid) && (readProcText(p.pid, 'environ') ?? '').split('\0').includes(marker));
}

/** Of the marked processes, the ones running the demo trader or a PM2 daemon: what a crash leaves. */
export async function leftoversOf(demoDir: string, traderScript: string): Promise<OsProcess[]> {
  const name = path.basename(traderScript);
  return (await markedProcesses(demoDir)).filter((p) => {
    const program = programOf(p.argv);
    return (program !== undefined && path.basename(program) === name) || p.command.includes('God Daemon');
  });
}

/**
 * Starts a copy of the trader outside PM2, as `nohup node demo-trader.js &` from the script's own
 * folder would: relative path, detached from our terminal and process group, output to a file.
 */
export async function spawnOutsidePm2(options: { script: string; args: string[]; env: NodeJS.ProcessEnv; logFile: string }): Promise<ProcessRef> {
  const out = fs.openSync(options.logFile, 'a');
  try {
    const child = spawn(process.execPath, [path.basename(options.script), ...options.args], {
      cwd: path.dirname(options.script),
      env: options.env,
      detached: true,
      stdio: ['ignore', out, out],
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    child.unref();
    const pid = child.pid!;
    return { pid, startedAt: (await processInfo(pid))?.startedAt };
  } finally {
    fs.closeSync(out);
  }
}
