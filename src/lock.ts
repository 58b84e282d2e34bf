// Cross-process and in-process mutual exclusion. The only module that imports proper-lockfile.
// A lock is a directory `<target>.lock` created atomically by mkdir; a holder refreshes its mtime,
// so a lock left by a crashed process goes stale and is taken over (stale-lock recovery).
import fs from 'node:fs';
import path from 'node:path';
import type Lockfile from 'proper-lockfile';
import { failed, refused } from './errors.ts';

// Loaded on the first lock, not at import: proper-lockfile brings graceful-fs (~15 ms to load),
// and a process that only reads (`tradewarden status`) never locks.
let lockfileModule: typeof Lockfile | undefined;
async function lockfileLib(): Promise<typeof Lockfile> {
  lockfileModule ??= (await import('proper-lockfile')).default;
  return lockfileModule;
}

/** Serializes async work within one process: each call waits for the previous one to settle. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(work: () => Promise<T>): Promise<T> {
    const result = this.tail.then(work, work);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

export interface FileLockOptions {
  /** How long to wait for another holder before giving up. */
  waitMs?: number;
  /** After this long without a refresh, a lock is considered abandoned. */
  staleMs?: number;
  /** Shown in the time-out error: what was being waited for. */
  what?: string;
  /**
   * When the lock cannot be made because of the disk (full, read-only, quota), run `work` anyway
   * after telling this — for risk-reducing work (stop) that must not depend on the disk.
   */
  onDiskProblem?: (error: Error) => void;
}

/** Errors that mean "the disk will not take a lock", not "someone holds it". */
const DISK_PROBLEMS = new Set(['ENOSPC', 'EDQUOT', 'EROFS']);

/** Runs `work` while holding the cross-process lock on `target` (a file that need not exist). */
export async function withFileLock<T>(target: string, work: () => Promise<T>, options: FileLockOptions = {}): Promise<T> {
  const waitMs = options.waitMs ?? 60_000;
  const staleMs = options.staleMs ?? 10_000;
  try {
    fs.mkdirSync(path.dirname(target), { recursive: true });
  } catch (error) {
    if (options.onDiskProblem && DISK_PROBLEMS.has((error as NodeJS.ErrnoException).code ?? '')) {
      options.onDiskProblem(error as Error);
      return work();
    }
    throw error;
  }
  const deadline = Date.now() + waitMs;
  let release: (() => Promise<void>) | undefined;
  let compromised: Error | undefined;
  for (let attempt = 0; !release; attempt++) {
    try {
      release = await (await lockfileLib()).lock(target, {
        realpath: false,
        stale: staleMs,
        update: Math.max(1000, Math.floor(staleMs / 3)),
        onCompromised: (error) => {
          compromised = error;
        },
      });
    } catch (error) {
      if (options.onDiskProblem && DISK_PROBLEMS.has((error as NodeJS.ErrnoException).code ?? '')) {
        options.onDiskProblem(error as Error);
        return work();
      }
      if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') throw failed(`could not lock ${target}`, error);
      if (Date.now() >= deadline) {
        throw failed(`${options.what ?? 'another tradewarden process'} still holds ${target}.lock after ${waitMs} ms`, error);
      }
      // Short, jittered waits: the usual holder finishes in well under a second.
      await new Promise((r) => setTimeout(r, Math.min(25 * 2 ** Math.min(attempt, 4), 250) + Math.random() * 25));
    }
  }
  try {
    return await work();
  } finally {
    await release().catch(() => undefined);
    if (compromised) throw failed(`lock ${target}.lock was lost while held`, compromised);
  }
}

/** Takes a lock and keeps it until `release()` (the controller's singleton lock). */
export async function holdFileLock(target: string, options: { staleMs?: number } = {}): Promise<() => Promise<void>> {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const staleMs = options.staleMs ?? 10_000;
  try {
    return await (await lockfileLib()).lock(target, { realpath: false, stale: staleMs, update: Math.floor(staleMs / 3) });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOCKED') {
      throw Object.assign(refused(`another process holds ${target}.lock`), { cause: error });
    }
    throw failed(`could not lock ${target}`, error);
  }
}

/** targets held by this process, with their holder's description */
const heldHere = new Map<string, string>();

/**
 * Runs `work` only if nobody (this process or another) is running work under `target`; never
 * waits. A busy lock calls `busy` with the holder's description (written beside the lock) and
 * throws what it returns. A disk that cannot take the lock calls `diskProblem` and runs `work`
 * guarded in this process only: an emergency must not wait for disk space.
 */
export async function holdExclusive<T>(
  target: string,
  holder: string,
  work: () => Promise<T>,
  options: { busy: (holder: string | undefined) => Error; diskProblem: (error: Error) => void; staleMs?: number },
): Promise<T> {
  const readHolder = () => {
    try {
      return fs.readFileSync(`${target}.holder`, 'utf8').trim() || undefined;
    } catch {
      return undefined;
    }
  };
  if (heldHere.has(target)) throw options.busy(heldHere.get(target));
  heldHere.set(target, holder);
  try {
    const staleMs = options.staleMs ?? 10_000;
    let release: (() => Promise<void>) | undefined;
    try {
      fs.mkdirSync(path.dirname(target), { recursive: true });
      release = await (await lockfileLib()).lock(target, { realpath: false, stale: staleMs, update: Math.floor(staleMs / 3) });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? '';
      if (code === 'ELOCKED') throw options.busy(readHolder());
      if (!DISK_PROBLEMS.has(code)) throw failed(`could not lock ${target}`, error);
      options.diskProblem(error as Error);
    }
    try {
      fs.writeFileSync(`${target}.holder`, holder);
    } catch {
      // only a description for the refusal; a full disk must not stop the work
    }
    try {
      return await work();
    } finally {
      await release?.().catch(() => undefined);
    }
  } finally {
    heldHere.delete(target);
  }
}
