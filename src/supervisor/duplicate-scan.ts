// Finding copies of the trader wherever they hide (DESIGN invariant 2): a second PM2 entry for the
// name or the script, or an OS process running the script outside PM2 (`nohup python3 bot.py &`
// from another shell). Pure functions over a PM2 listing and a process table, so they are tested
// without either.
import fs from 'node:fs';
import path from 'node:path';
import type { Duplicate } from './types.ts';
import { ancestorsOf, descendantsOf, type OsProcess } from '../os/process-table.ts';
import { programOf } from '../os/program.ts';
import type { Pm2Entry } from './pm2-connection.ts';

export { programOf };

/**
 * Whether `proc` runs `scripts` (absolute paths): its program resolves, against its own cwd, to one
 * of them; when that cwd is unreadable (another user's process), a relative program matches by
 * basename. An editor (`vim bot.py`) or `tail -f bot.log` is not a match: their program is vim/tail.
 */
export function runsScript(proc: Pick<OsProcess, 'argv' | 'cwd'>, scripts: readonly string[], realpath: (file: string) => string = realPathOf): boolean {
  const program = programOf(proc.argv);
  if (!program) return false;
  let resolved: string;
  if (path.isAbsolute(program)) resolved = path.normalize(program);
  else if (proc.cwd) resolved = path.resolve(proc.cwd, program);
  else return scripts.some((s) => path.basename(program) === path.basename(s));
  if (scripts.includes(resolved)) return true;
  // Through a symlink (`~/bot → releases/v2`, a common deploy layout) the same file has two names:
  // compare real paths. Only for a matching file name, so a scan stays one syscall per candidate.
  if (!scripts.some((s) => path.basename(s) === path.basename(resolved))) return false;
  const real = realpath(resolved);
  return scripts.some((s) => s === real || realpath(s) === real);
}

/** The file's real path (symlinks resolved), or the path itself when it cannot be resolved. */
export function realPathOf(file: string): string {
  try {
    return fs.realpathSync(file);
  } catch {
    return file;
  }
}

export interface ScanInput {
  /** the PM2 name of the managed process */
  name: string;
  /** absolute script paths the trader runs (the definition's, and a running entry's if it differs) */
  scripts: readonly string[];
  /** the whole PM2 listing */
  entries: readonly Pm2Entry[];
  /** the entry that counts as "the" trader (see primaryEntry), if any */
  primary?: Pm2Entry;
  table: readonly OsProcess[];
  /** our own PID: we and our ancestors are never duplicates */
  selfPid: number;
}

const RUNNING = new Set(['online', 'launching', 'stopping', 'waiting restart']);
export const isRunning = (e: Pm2Entry) => e.pid > 0 && RUNNING.has(e.status);

/** Of several entries with the name, the trader is the running one with the lowest pm_id. */
export function primaryEntry(entries: readonly Pm2Entry[], name: string): Pm2Entry | undefined {
  const named = entries.filter((e) => e.name === name).sort((a, b) => a.pmId - b.pmId);
  return named.find(isRunning) ?? named[0];
}

/**
 * Duplicates: (a) running PM2 entries other than the primary with the same name or script (a
 * stopped entry is not a process, so it is not reported); (b) OS processes running the script that
 * PM2 did not start — every PM2-managed PID and its descendants are excluded (they are either the
 * trader itself or reported under (a)), as are we and our ancestors.
 */
export function findDuplicates(input: ScanInput): Duplicate[] {
  const duplicates: Duplicate[] = [];
  const byPid = new Map(input.table.map((p) => [p.pid, p]));
  for (const entry of input.entries) {
    if (entry === input.primary || entry.pmId === input.primary?.pmId) continue;
    if (entry.name !== input.name && !input.scripts.includes(entry.script)) continue;
    if (!isRunning(entry)) continue;
    const proc = byPid.get(entry.pid);
    duplicates.push({
      pid: entry.pid,
      command: proc?.command ?? entry.script,
      startedAt: entry.startedAt ?? proc?.startedAt,
      foundIn: 'pm2',
      pm2Name: entry.name,
      pmId: entry.pmId,
    });
  }

  const excluded = ancestorsOf(input.table, input.selfPid);
  for (const entry of input.entries) {
    if (entry.pid <= 0) continue;
    excluded.add(entry.pid);
    for (const d of descendantsOf(input.table, entry.pid)) excluded.add(d.pid);
  }
  for (const proc of input.table) {
    if (excluded.has(proc.pid) || !runsScript(proc, input.scripts)) continue;
    duplicates.push({ pid: proc.pid, command: proc.command, startedAt: proc.startedAt, foundIn: 'os' });
  }
  return duplicates;
}
