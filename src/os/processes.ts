// Ending OS processes, the one copy (used by the supervisor, the demo, bench and tests): always by
// PID, with a grace period before SIGKILL, and only while the PID is still the process we mean
// (same start time), so a PID the kernel has handed to someone else is never hit.
import { isAlive, readProcessTable, type OsProcess } from './process-table.ts';

export interface ProcessRef {
  pid: number;
  /** ms since epoch, to tell this process from a later one that reuses the PID */
  startedAt?: number;
}

const POLL_MS = 50;
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Same process if both start times are known and within a second (ps has 1 s resolution). */
export function sameStart(a: number | undefined, b: number | undefined): boolean {
  return a === undefined || b === undefined || Math.abs(a - b) < 1000;
}

/** Sends `signal`; false when there was no such process (any more). */
export function signalQuietly(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Polls until every PID is gone (or a zombie); false if some still run after `withinMs`. */
export async function waitUntilGone(pids: readonly number[], withinMs: number): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    if (pids.every((pid) => !isAlive(pid))) return true;
    if (Date.now() >= deadline) return false;
    await delay(POLL_MS);
  }
}

export interface TerminateOptions {
  /** the polite signal (default SIGTERM; SIGINT for what handles Ctrl-C) */
  signal?: NodeJS.Signals;
  /** how long after it before SIGKILL (default 3000 ms) */
  graceMs?: number;
  /** how long SIGKILL may take to show (default 3000 ms) */
  confirmMs?: number;
  /**
   * When known, the start time is read again before SIGKILL: a process that ended during the grace
   * and whose PID was reused is not hit (it counts as ended by the polite signal).
   */
  startedAt?: number;
}

/** The polite signal, a grace period, then SIGKILL. Returns what ended it; throws if nothing did. */
export async function terminate(pid: number, options: TerminateOptions = {}): Promise<NodeJS.Signals> {
  const { signal = 'SIGTERM', graceMs = 3000, confirmMs = 3000 } = options;
  signalQuietly(pid, signal);
  if (await waitUntilGone([pid], graceMs)) return signal;
  if (options.startedAt !== undefined && !(await isSameProcess({ pid, startedAt: options.startedAt }))) return signal;
  signalQuietly(pid, 'SIGKILL');
  if (await waitUntilGone([pid], confirmMs)) return 'SIGKILL';
  throw new Error(`process ${pid} is still alive after SIGKILL`);
}

export async function processInfo(pid: number): Promise<OsProcess | undefined> {
  return (await readProcessTable()).find((p) => p.pid === pid);
}

/** Still the process we mean: alive, and started when it did. */
export async function isSameProcess(ref: ProcessRef): Promise<boolean> {
  if (!isAlive(ref.pid)) return false;
  if (ref.startedAt === undefined) return true;
  return sameStart(ref.startedAt, (await processInfo(ref.pid))?.startedAt);
}

/** terminate(), if `ref` is still that process: 'gone' when it no longer was. */
export async function endProcess(ref: ProcessRef, options: TerminateOptions = {}): Promise<'gone' | NodeJS.Signals> {
  if (!(await isSameProcess(ref))) return 'gone';
  return terminate(ref.pid, options);
}
