// The OS process table, read without PM2: /proc on Linux, `ps` elsewhere. It is how we verify
// that a stop really ended a process tree and how duplicates outside PM2 are found.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

export interface OsProcess {
  pid: number;
  ppid: number;
  /** argv as the process shows it (a rewritten process title comes back as one word list) */
  argv: string[];
  /** argv joined with spaces, for humans */
  command: string;
  /** working directory, when readable (own user's processes on Linux) */
  cwd?: string;
  /** ms since epoch */
  startedAt?: number;
  /** process group and session (Linux /proc): a trader PM2 started leads its own session */
  pgid?: number;
  sid?: number;
}

export async function readProcessTable(): Promise<OsProcess[]> {
  if (process.platform === 'linux') {
    try {
      return await readProc();
    } catch {
      // /proc not mounted (some containers): fall through to ps
    }
  }
  return readPs();
}

/** True while `pid` exists and is not a zombie (a zombie has already exited). */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: it exists but belongs to someone else
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  if (process.platform === 'linux') {
    try {
      return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.state !== 'Z';
    } catch {
      return false; // gone between the two checks
    }
  }
  return true;
}

/** All descendants of `pid` (children, grandchildren, …) in `table`. */
export function descendantsOf(table: readonly OsProcess[], pid: number): OsProcess[] {
  const children = new Map<number, OsProcess[]>();
  for (const p of table) {
    const list = children.get(p.ppid) ?? [];
    list.push(p);
    children.set(p.ppid, list);
  }
  const out: OsProcess[] = [];
  const stack = [pid];
  const seen = new Set<number>([pid]);
  while (stack.length) {
    for (const child of children.get(stack.pop()!) ?? []) {
      if (seen.has(child.pid)) continue;
      seen.add(child.pid);
      out.push(child);
      stack.push(child.pid);
    }
  }
  return out;
}

/**
 * Everything that belongs to the process `pid` started: its descendants, and — when it leads its own
 * session or process group (PM2 spawns traders detached, so they do) — every member of that session
 * or group, which catches a worker that double-forked and was re-parented to init.
 */
export function familyOf(table: readonly OsProcess[], pid: number): OsProcess[] {
  const self = table.find((p) => p.pid === pid);
  const family = new Map<number, OsProcess>(self ? [[pid, self]] : []);
  for (const p of descendantsOf(table, pid)) family.set(p.pid, p);
  const leads = self && (self.sid === pid || self.pgid === pid);
  if (leads) {
    for (const p of table) if (p.sid === pid || p.pgid === pid) family.set(p.pid, p);
    // and their descendants (a member that started its own session still hangs below one)
    for (const p of [...family.values()]) for (const d of descendantsOf(table, p.pid)) family.set(d.pid, d);
  }
  return [...family.values()];
}

/** A process's environment (own user's processes on Linux), or undefined when it cannot be read. */
export function readEnviron(pid: number): Record<string, string> | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/environ`, 'utf8');
    const env: Record<string, string> = {};
    for (const pair of raw.split('\0')) {
      const eq = pair.indexOf('=');
      if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    return env;
  } catch {
    return undefined;
  }
}

/** PIDs of `pid` and its ancestors up to init. */
export function ancestorsOf(table: readonly OsProcess[], pid: number): Set<number> {
  const byPid = new Map(table.map((p) => [p.pid, p]));
  const out = new Set<number>();
  for (let current: number | undefined = pid; current && !out.has(current); current = byPid.get(current)?.ppid) {
    out.add(current);
  }
  return out;
}

// ---- Linux: /proc ----

interface Stat {
  ppid: number;
  pgid: number;
  sid: number;
  state: string;
  /** clock ticks since boot */
  startTicks: number;
}

function parseStat(text: string): Stat | undefined {
  // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ')'.
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const fields = text.slice(close + 2).split(' ');
  // fields[0] is field 3 (state); starttime is field 22
  const ppid = Number(fields[1]);
  const startTicks = Number(fields[19]);
  if (!Number.isFinite(ppid) || !Number.isFinite(startTicks)) return undefined;
  return { ppid, pgid: Number(fields[2]), sid: Number(fields[3]), state: fields[0] ?? '?', startTicks };
}

let bootTimeMs: number | undefined;
let ticksPerSecond: number | undefined;

/** AT_CLKTCK from /proc/self/auxv (pairs of native words: type, value; 0 ends it). No child process. */
export function clockTicksFromAuxv(auxv?: Buffer): number | undefined {
  const AT_CLKTCK = 17n;
  try {
    const bytes = auxv ?? readFileSync('/proc/self/auxv');
    const word = /64|s390x/.test(process.arch) ? 8 : 4; // x64, arm64, ppc64, riscv64, s390x, …
    const le = os.endianness() === 'LE';
    const read = (at: number): bigint =>
      word === 8 ? (le ? bytes.readBigUInt64LE(at) : bytes.readBigUInt64BE(at)) : BigInt(le ? bytes.readUInt32LE(at) : bytes.readUInt32BE(at));
    for (let at = 0; at + 2 * word <= bytes.length; at += 2 * word) {
      const type = read(at);
      if (type === 0n) break;
      if (type === AT_CLKTCK) {
        const hz = Number(read(at + word));
        return Number.isInteger(hz) && hz > 0 && hz <= 100_000 ? hz : undefined;
      }
    }
  } catch {
    // not Linux, or /proc not mounted
  }
  return undefined;
}

function clockTicksFromGetconf(): Promise<number> {
  // USER_HZ is 100 on every mainstream Linux; fall back to it if getconf cannot say.
  return new Promise<number>((resolve) => {
    execFile('getconf', ['CLK_TCK'], { timeout: 2000 }, (error, stdout) => {
      const n = Number(String(stdout).trim());
      resolve(!error && Number.isInteger(n) && n > 0 ? n : 100);
    });
  });
}

/** USER_HZ, the unit of /proc/PID/stat's times (start time, CPU): read once, then remembered. */
export async function clockTicksPerSecond(): Promise<number> {
  // The kernel hands it to every process in its auxiliary vector; getconf only if that fails.
  ticksPerSecond ??= clockTicksFromAuxv() ?? (await clockTicksFromGetconf());
  return ticksPerSecond;
}

async function procClock(): Promise<{ bootTimeMs: number; ticksPerSecond: number }> {
  if (bootTimeMs === undefined) {
    const stat = await fs.readFile('/proc/stat', 'utf8');
    const match = /^btime (\d+)$/m.exec(stat);
    bootTimeMs = match ? Number(match[1]) * 1000 : 0;
  }
  return { bootTimeMs, ticksPerSecond: await clockTicksPerSecond() };
}

/** Splits /proc/PID/cmdline. A process that set its title (PM2's node wrapper does) shows one
 *  space-separated string padded with NULs; that is split on whitespace, best effort. */
export function parseCmdline(raw: string): string[] {
  const argv = raw.split('\0');
  while (argv.length && argv[argv.length - 1] === '') argv.pop();
  if (argv.length === 1 && /\s/.test(argv[0]!)) return argv[0]!.trim().split(/\s+/);
  return argv;
}

async function readProc(): Promise<OsProcess[]> {
  const { bootTimeMs: boot, ticksPerSecond: hz } = await procClock();
  // Synchronous on purpose: procfs reads are served from kernel memory in microseconds, and a few
  // hundred promise round trips per scan cost the idle controller ~20x more CPU than the reads.
  const rows: OsProcess[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    try {
      const stat = parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      if (!stat || stat.state === 'Z') continue; // zombies have already exited
      const argv = parseCmdline(readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
      if (argv.length === 0) continue; // kernel threads
      let cwd: string | undefined;
      try {
        cwd = readlinkSync(`/proc/${pid}/cwd`);
      } catch {
        cwd = undefined; // another user's process
      }
      rows.push({
        pid,
        ppid: stat.ppid,
        argv,
        command: argv.join(' '),
        cwd,
        startedAt: boot ? Math.round(boot + (stat.startTicks / hz) * 1000) : undefined,
        pgid: stat.pgid,
        sid: stat.sid,
      });
    } catch {
      // exited while we looked
    }
  }
  return rows;
}

// ---- elsewhere: ps ----

function readPs(): Promise<OsProcess[]> {
  return new Promise((resolve, reject) => {
    execFile(
      'ps',
      ['-A', '-o', 'pid=,ppid=,lstart=,args='],
      { timeout: 5000, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, LC_ALL: 'C' } },
      (error, stdout) => {
        if (error) return reject(error);
        resolve(parsePs(stdout));
      },
    );
  });
}

/** `ps -o pid=,ppid=,lstart=,args=`: lstart is always five words ("Mon Jan  5 15:00:00 2026"). */
export function parsePs(stdout: string): OsProcess[] {
  const out: OsProcess[] = [];
  for (const line of stdout.split('\n')) {
    const match = /^\s*(\d+)\s+(\d+)\s+(\S+\s+\S+\s+\d+\s+[\d:]+\s+\d+)\s+(.*)$/.exec(line);
    if (!match) continue;
    const argv = match[4]!.trim().split(/\s+/);
    const started = Date.parse(match[3]!);
    out.push({
      pid: Number(match[1]),
      ppid: Number(match[2]),
      argv,
      command: match[4]!.trim(),
      startedAt: Number.isNaN(started) ? undefined : started,
    });
  }
  return out;
}
