// Supervision of the one trading process: status, start, stop, restart, duplicates, logs.
// Every change runs under the exactly-one guard — an in-process Mutex and a cross-process lock in
// DATA_DIR — so the CLI, the Discord bot and a second controller cannot interleave a start with a
// start. PM2's word is never taken alone: a start is confirmed by listing, a stop by the OS.
import fs from 'node:fs/promises';
import path from 'node:path';
import { OperationError, failed, refused, describeError } from '../errors.ts';
import { Mutex, withFileLock } from '../lock.ts';
import type { Logger } from '../log.ts';
import type { Duplicate, ProcessState, ProcessStatus, StartResult, StopDuplicatesResult, StopResult, Supervision } from './types.ts';
import { Pm2Connection, type Pm2Entry } from './pm2-connection.ts';
import { DEFAULT_ECOSYSTEM_PATH, readTradingDefinition, type TradingDefinition } from './ecosystem.ts';
import { descendantsOf, familyOf, isAlive, readEnviron, readProcessTable, type OsProcess } from '../os/process-table.ts';
import { sameStart, signalQuietly, terminate, waitUntilGone } from '../os/processes.ts';
import { findDuplicates, isRunning, primaryEntry } from './duplicate-scan.ts';
import { fileSize, tailLines } from './log-tail.ts';
import { launchesUnderway, pm2ForceKilled } from './daemon-log.ts';

export interface SupervisorOptions {
  pm2Home: string;
  dataDir: string;
  /** PM2 name of the trader; wins over TRADING_PROCESS_NAME in `env` */
  processName: string;
  /** environment tradingApp(env) is built from (TRADING_SCRIPT, …); default process.env */
  env?: NodeJS.ProcessEnv;
  logger: Logger;
  /** last word before a start (e.g. the runaway breaker); throws OperationError('refused') to refuse */
  beforeStart?: () => Promise<void>;
  /** bound on one ordinary PM2 call (default 5000 ms) */
  callTimeoutMs?: number;
  /** bound on a start, from asking PM2 to a confirmed, settled process (default 20000 ms) */
  startTimeoutMs?: number;
  /** how long a new process must stay up, same PID, before a start counts as done (default 1000 ms) */
  settleMs?: number;
  /** how long a change waits for another holder of the guard (default 60000 ms) */
  lockWaitMs?: number;
  ecosystemPath?: string;
  /** a short-lived process (the CLI): read PM2's list without loading its client (see Pm2Connection) */
  lightPm2Reads?: boolean;
}

/** How long after PM2's stop we wait for the OS to agree, before SIGKILLing what is left. */
const OS_CONFIRM_MS = 3000;
/** stopDuplicates: SIGTERM, then this long, then SIGKILL. */
const DUPLICATE_GRACE_MS = 3000;
/** Stop rounds before a trader that PM2 keeps relaunching is reported instead of chased. */
const STOP_ROUNDS = 5;

export interface StopDetails extends StopResult {
  /** PIDs of the trader's family still alive after PM2's stop, which we ended ourselves */
  killedSurvivors?: number[];
}

export class Supervisor implements Supervision {
  private readonly pm2: Pm2Connection;
  private readonly name: string;
  private readonly dataDir: string;
  private readonly env: NodeJS.ProcessEnv;
  private readonly logger: Logger;
  private readonly beforeStart?: () => Promise<void>;
  private readonly callTimeoutMs: number;
  private readonly startTimeoutMs: number;
  private readonly settleMs: number;
  private readonly lockWaitMs: number;
  private readonly ecosystemPath: string;
  private readonly pm2Home: string;
  private readonly guardMutex = new Mutex();
  /** what the latest scan reported, by PID: stopDuplicates only ends these */
  private latestScan = new Map<number, Duplicate>();

  constructor(options: SupervisorOptions) {
    // PM2 reads a numeric name as a pm_id, 'all' as every process and /…/ as a regex.
    if (/^\d+$/.test(options.processName) || options.processName === 'all' || options.processName.startsWith('/')) {
      throw new OperationError('usage', `"${options.processName}" cannot be a PM2 process name here: PM2 would read it as an id, 'all' or a pattern`);
    }
    this.name = options.processName;
    this.dataDir = path.resolve(options.dataDir);
    this.env = options.env ?? process.env;
    this.logger = options.logger;
    this.beforeStart = options.beforeStart;
    this.callTimeoutMs = options.callTimeoutMs ?? 5000;
    this.startTimeoutMs = options.startTimeoutMs ?? 20_000;
    this.settleMs = options.settleMs ?? 1000;
    this.lockWaitMs = options.lockWaitMs ?? 60_000;
    this.ecosystemPath = options.ecosystemPath ?? DEFAULT_ECOSYSTEM_PATH;
    this.pm2Home = path.resolve(options.pm2Home);
    this.pm2 = new Pm2Connection({ pm2Home: options.pm2Home, logger: options.logger, callTimeoutMs: this.callTimeoutMs, lightReads: options.lightPm2Reads });
  }

  // ---- reads ----

  async status(): Promise<ProcessStatus> {
    // PM2's answer and the definition are awaited together; the OS table is read after PM2 answers
    // (a process PM2 started after a table read would look like a copy outside PM2).
    const [entries, definition] = await Promise.all([
      this.pm2.list(),
      this.definition().catch((error: unknown) => {
        this.logger.warn(`status without the trading definition: ${describeError(error)}`);
        return undefined;
      }),
    ]);
    const primary = primaryEntry(entries, this.name);
    const duplicates = await this.scan(entries, definition);
    return this.describe(primary, definition, duplicates);
  }

  async traderPid(): Promise<number | undefined> {
    const primary = primaryEntry(await this.pm2.list(), this.name);
    return primary && isRunning(primary) ? primary.pid : undefined;
  }

  async scanDuplicates(): Promise<Duplicate[]> {
    const [entries, definition] = await Promise.all([this.pm2.list(), this.definition()]);
    return this.scan(entries, definition);
  }

  async logs(lines: number): Promise<string> {
    if (!Number.isInteger(lines) || lines < 1 || lines > 10_000) {
      throw new OperationError('usage', `lines must be a whole number from 1 to 10000 (got ${lines})`);
    }
    const primary = primaryEntry(await this.pm2.list(), this.name);
    const definition = primary ? undefined : await this.definition();
    const out = primary?.outLogPath ?? definition?.outFile;
    const err = primary?.errLogPath ?? definition?.errorFile;
    const files = [...new Set([out, err].filter((f): f is string => Boolean(f)))];
    const tails = await Promise.all(files.map((f) => tailLines(f, lines)));
    return mergeByTimestamp(tails).slice(-lines).join('\n');
  }

  // ---- changes (each under the guard) ----

  start(): Promise<StartResult> {
    return this.guarded('start', () => this.startLocked({ askBeforeStart: true }));
  }

  stop(): Promise<StopDetails> {
    // A stop only reduces risk: a disk that cannot take the lock must not keep the trader running.
    return this.guarded('stop', () => this.stopLocked(), (error) => this.logger.error(`stopping ${this.name} without the cross-process lock: ${describeError(error)}`));
  }

  restart(): Promise<StartResult & { stopped: StopDetails }> {
    return this.guarded('restart', async () => {
      // Everything that would refuse the start is checked before stopping, so a refused restart
      // leaves the running trader alone.
      await this.beforeStart?.();
      const [entries, definition] = await Promise.all([this.pm2.list(), this.definition()]);
      const duplicates = await this.scan(entries, definition);
      if (duplicates.length) throw refused(`refusing to restart ${this.name}: ${describeDuplicates(duplicates)}`);
      const stopped = await this.stopLocked();
      const started = await this.startLocked({ askBeforeStart: false });
      return { ...started, stopped };
    });
  }

  stopDuplicates(pids: number[]): Promise<StopDuplicatesResult> {
    return this.guarded('stopping duplicates', async () => {
      const result: StopDuplicatesResult = { stopped: [], notInLatestScan: [], failed: [] };
      const asked = [...new Set(pids)];
      result.notInLatestScan = asked.filter((pid) => !this.latestScan.has(pid));
      const reported = asked.filter((pid) => this.latestScan.has(pid)).map((pid) => this.latestScan.get(pid)!);
      if (!reported.length) return result;

      // Re-scan: a PID is only signalled if it is still the same duplicate (same start time), so a
      // PID reused since the report is never hit.
      const [entries, definition] = await Promise.all([this.pm2.list(), this.definition()]);
      const fresh = new Map((await this.scan(entries, definition)).map((d) => [d.pid, d]));
      await Promise.all(
        reported.map(async (was) => {
          const now = fresh.get(was.pid);
          if (!now || !sameStart(was.startedAt, now.startedAt)) {
            result.failed.push({ pid: was.pid, reason: 'no longer running as a duplicate (it exited, or the PID now belongs to another process)' });
            return;
          }
          try {
            if (now.foundIn === 'pm2' && now.pmId !== undefined) {
              const entry = entries.find((e) => e.pmId === now.pmId);
              await this.pm2.delete(now.pmId, (entry?.killTimeoutMs ?? 10_000) + this.callTimeoutMs + 2000);
              if (!(await waitUntilGone([now.pid], OS_CONFIRM_MS))) signalQuietly(now.pid, 'SIGKILL');
              result.stopped.push({ pid: now.pid, signal: 'SIGTERM' }); // graceful, through PM2
            } else {
              // The start time is re-read before SIGKILL: a PID reused during the grace is never hit.
              result.stopped.push({ pid: now.pid, signal: (await terminate(now.pid, { graceMs: DUPLICATE_GRACE_MS, confirmMs: OS_CONFIRM_MS, startedAt: now.startedAt })) as 'SIGTERM' | 'SIGKILL' });
            }
            this.logger.info(`duplicate ${now.pid} (${now.foundIn}: ${now.command}) stopped`);
          } catch (error) {
            result.failed.push({ pid: was.pid, reason: describeError(error) });
          }
        }),
      );
      for (const { pid } of result.stopped) this.latestScan.delete(pid);
      this.latestScan = new Map([...this.latestScan].filter(([pid]) => isAlive(pid)));
      return result;
    });
  }

  /** Disconnects from PM2; the daemon and the trader keep running. */
  async close(): Promise<void> {
    await this.pm2.close();
  }

  // ---- internals ----

  /** In-process Mutex first (cheap, fair), then the cross-process lock in DATA_DIR. */
  private guarded<T>(what: string, work: () => Promise<T>, onDiskProblem?: (error: Error) => void): Promise<T> {
    return this.guardMutex.run(() =>
      withFileLock(path.join(this.dataDir, 'supervisor'), work, {
        onDiskProblem,
        waitMs: this.lockWaitMs,
        what: `another tradewarden process (CLI, Discord bot or controller) changing ${this.name} while we wanted to ${what}`,
      }),
    );
  }

  private definition(): Promise<TradingDefinition> {
    // Our name and data directory win: the definition must describe the process we supervise.
    return readTradingDefinition({ ...this.env, TRADING_PROCESS_NAME: this.name, DATA_DIR: this.dataDir }, this.ecosystemPath);
  }

  private async scan(entries: Pm2Entry[], definition: TradingDefinition | undefined): Promise<Duplicate[]> {
    const primary = primaryEntry(entries, this.name);
    const scripts = [...new Set([definition?.script, primary?.script].filter((s): s is string => Boolean(s)))];
    const table = await readProcessTable();
    const duplicates = findDuplicates({ name: this.name, scripts, entries, primary, table, selfPid: process.pid });
    this.latestScan = new Map(duplicates.map((d) => [d.pid, d]));
    return duplicates;
  }

  private async startLocked(options: { askBeforeStart: boolean }): Promise<StartResult> {
    if (options.askBeforeStart) await this.beforeStart?.();
    const definition = await this.definition();
    const entries = await this.pm2.list();
    const primary = primaryEntry(entries, this.name);
    if (primary && isRunning(primary)) {
      if (primary.status === 'stopping') throw refused(`${this.name} is stopping (pid ${primary.pid}); start it again once it has stopped`);
      throw refused(`${this.name} is already running (pid ${primary.pid}, ${primary.status}); stop it first, or restart`);
    }
    const duplicates = await this.scan(entries, definition);
    if (duplicates.length) throw refused(`refusing to start ${this.name}: ${describeDuplicates(duplicates)}`);

    // PM2 `start` of an existing name restarts it, and a second entry would be a duplicate: remove
    // the stopped/errored entry and start from the file (which also picks up an edited definition).
    // A "stopped" entry may be a crash loop between exit and relaunch: a delete landing there lets
    // the relaunch come up as an entry PM2 no longer lists. Stop it for good first.
    const resting = entries.filter((e) => e.name === this.name && e.status === 'stopped');
    if (resting.length) await this.stopConfirmed(resting, Math.max(...resting.map((e) => e.killTimeoutMs ?? 10_000)) + this.callTimeoutMs);
    for (const entry of entries.filter((e) => e.name === this.name)) {
      await this.pm2.delete(entry.pmId, this.callTimeoutMs);
    }
    // PM2 would answer a missing script with a bare error list; say what and how to fix it.
    try {
      await fs.access(definition.script);
    } catch (error) {
      throw failed(
        `the trading script ${definition.script} cannot be read (${(error as NodeJS.ErrnoException).code ?? describeError(error)}): ` +
          'set TRADING_SCRIPT (and TRADING_CWD) in .env to the trader\'s script, or put the file back',
        error,
      );
    }
    const deadline = Date.now() + this.startTimeoutMs;
    this.logger.info(`starting ${this.name}: ${definition.script}`);
    await this.pm2.start(definition.app, this.startTimeoutMs);
    const entry = await this.confirmStarted(definition, deadline);

    // Exactly one, counted in PM2 and in the OS.
    const after = await this.pm2.list();
    const named = after.filter((e) => e.name === this.name);
    const others = await this.scan(after, definition);
    if (named.length !== 1 || others.length) {
      throw failed(
        `${this.name} started (pid ${entry.pid}) but it is not alone: ${named.length} PM2 entries named ${this.name}` +
          (others.length ? `; ${describeDuplicates(others)}` : ''),
      );
    }
    const status = this.describe(primaryEntry(after, this.name), definition, others);
    this.logger.info(`${this.name} online, pid ${entry.pid}`);
    return { pid: entry.pid, status };
  }

  /**
   * Waits until PM2 shows the process online and it stays up, same PID and restart count, for
   * settleMs — or until it fails (errored, exited, restarted). PM2 answers a start as soon as it
   * has forked, so "online" alone does not mean the trader got past its first second.
   */
  private async confirmStarted(definition: TradingDefinition, deadline: number): Promise<Pm2Entry> {
    let seen: { pid: number; restarts: number; since: number } | undefined;
    for (;;) {
      const entry = primaryEntry(await this.pm2.list(), this.name);
      const now = Date.now();
      if (entry && (entry.status === 'errored' || entry.status === 'stopped' || (seen && (entry.pid !== seen.pid || entry.restarts !== seen.restarts)))) {
        await this.abandonStart(entry);
        throw failed(
          `${this.name} did not stay up: ${entry.status === 'errored' ? 'PM2 gave up on it (errored)' : 'it exited'}` +
            `${entry.exitCode !== null ? ` with code ${entry.exitCode}` : ''}; see its logs (${definition.errorFile ?? 'PM2 logs'})`,
        );
      }
      if (entry?.status === 'online' && entry.pid > 0 && isAlive(entry.pid)) {
        seen ??= { pid: entry.pid, restarts: entry.restarts, since: now };
        if (now - seen.since >= this.settleMs) return entry;
      }
      if (now >= deadline) {
        if (entry) await this.abandonStart(entry);
        throw failed(
          entry
            ? `${this.name} was not confirmed online within ${this.startTimeoutMs} ms (PM2 says ${entry.status})`
            : `PM2 accepted the start of ${this.name} but started nothing within ${this.startTimeoutMs} ms`,
        );
      }
      await delay(Math.min(100, Math.max(10, deadline - now)));
    }
  }

  /** A start that did not take: stop PM2's restart loop rather than leave a flapping trader. */
  private async abandonStart(entry: Pm2Entry): Promise<void> {
    try {
      await this.stopConfirmed([entry], (entry.killTimeoutMs ?? 10_000) + this.callTimeoutMs);
    } catch (error) {
      this.logger.warn(`could not stop ${this.name} after a failed start: ${describeError(error)}`);
    }
  }

  /**
   * Stops the entries and returns once PM2 cannot bring them back. A stop cancels a relaunch PM2
   * has scheduled after a crash (its timer), but not one it has begun: PM2 opens the app's log
   * files before it forks, and a stop landing there answers at once while the fork comes up after
   * it. So after each stop PM2's own log is read for a launch still under way (daemon-log.ts); one
   * is waited out, and whatever PM2 brought back is stopped again. Returns those relaunches (none,
   * normally).
   */
  private async stopConfirmed(entries: Pm2Entry[], timeoutMs: number): Promise<Pm2Entry[]> {
    const relaunched: Pm2Entry[] = [];
    let targets = entries;
    for (let round = 1; ; round++) {
      for (const entry of targets) await this.pm2.stop(entry.pmId, timeoutMs);
      const back = await this.notStoppedForGood(targets.map((e) => e.pmId), timeoutMs);
      if (!back.length) return relaunched;
      const pids = back.map((e) => e.pid).join(', ');
      if (round >= STOP_ROUNDS) {
        throw failed(`${this.name} could not be stopped: PM2 relaunched it ${round} times during the stop (now pid ${pids}); stop it again, or see \`pm2 describe ${this.name}\``);
      }
      this.logger.warn(`${this.name} was relaunched by PM2 as it was being stopped (pid ${pids}); stopping it again`);
      relaunched.push(...back.filter(isRunning));
      targets = back;
    }
  }

  /**
   * Of the entries just stopped, those PM2 may still run: running again, waiting to relaunch after
   * a crash (stopped, yet still showing the PID that exited: PM2 zeroes it only on a stop), or
   * being launched (waited for until it is online or has failed, at most `timeoutMs`).
   */
  private async notStoppedForGood(pmIds: number[], timeoutMs: number): Promise<Pm2Entry[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // The log before the list: a launch that ends between the two is then seen in the list.
      const underway = (await launchesUnderway(this.pm2.daemonLogPath, this.name, pmIds)) ?? [];
      const named = (await this.pm2.list()).filter((e) => e.name === this.name);
      const back = named.filter((e) => isRunning(e) || (pmIds.includes(e.pmId) && !underway.includes(e.pmId) && e.pid > 0 && e.status !== 'errored'));
      if (back.length || !underway.length) return back;
      if (Date.now() >= deadline) {
        throw failed(`${this.name} could not be confirmed stopped: PM2 began relaunching it (pm_id ${underway.join(', ')}) and has not finished after ${timeoutMs} ms; stop it again, or see ${this.pm2.daemonLogPath}`);
      }
      await delay(25);
    }
  }

  private async stopLocked(): Promise<StopDetails> {
    const began = Date.now();
    // The first call after the daemon died reports that PM2 lost track (see Pm2Connection); a stop
    // does not stop there: it reconnects once and ends the trader wherever it now runs.
    const entries = await this.pm2.list().catch((error: unknown) => {
      this.logger.warn(`stopping ${this.name}: ${describeError(error)}; reconnecting, then ending the trader wherever it runs`);
      return this.pm2.list();
    });
    const primary = primaryEntry(entries, this.name);
    // Every entry with the name that could run again (including one waiting to restart after a crash).
    const active = entries.filter((e) => e.name === this.name && e.status !== 'stopped' && e.status !== 'errored');
    // A crash-looping trader shows "stopped" between its exit and PM2's relaunch; stopping it
    // cancels the relaunch (and costs PM2 nothing when it is simply stopped).
    const resting = entries.filter((e) => e.name === this.name && e.status === 'stopped');
    const table = await readProcessTable();
    // A trader PM2 started but no longer knows (its daemon was killed): the stop must end it too.
    const orphans = await this.orphans(entries, table);
    if (!active.length && !orphans.length) {
      const timeoutMs = Math.max(0, ...resting.map((e) => e.killTimeoutMs ?? 10_000)) + this.callTimeoutMs + 2000;
      const relaunched = resting.length ? await this.stopConfirmed(resting, timeoutMs) : [];
      if (relaunched.length) {
        this.logger.warn(`${this.name} was relaunching after a crash (pid ${relaunched.map((e) => e.pid).join(', ')}); stopped`);
        await waitUntilGone(relaunched.map((e) => e.pid), OS_CONFIRM_MS);
      }
      return { pid: relaunched[0]?.pid, wasRunning: relaunched.length > 0, forceKilled: false, durationMs: Date.now() - began };
    }

    // The families as they are now, with start times: what must be gone afterwards (and nothing
    // else). A family is the tree and, for a session leader, its whole session: a worker that
    // double-forked away from the tree is still the trader's.
    const tree = uniqueByPid([...active.filter((e) => e.pid > 0).flatMap((e) => familyOf(table, e.pid)), ...orphans.flatMap((o) => familyOf(table, o.pid))]);
    const wasRunning = tree.length > 0;
    const definition = orphans.length ? await this.definition().catch(() => undefined) : undefined;
    const killTimeoutMs = Math.max(...active.map((e) => e.killTimeoutMs ?? 1600), definition?.killTimeoutMs ?? 1600);
    const daemonLog = this.pm2.daemonLogPath;
    const mark = await fileSize(daemonLog);

    const stopBegan = Date.now();
    const relaunched = await this.stopConfirmed([...active, ...resting], killTimeoutMs + this.callTimeoutMs + 2000);
    const stopMs = Date.now() - stopBegan;
    let forceKilled = active.length ? await pm2ForceKilled(daemonLog, mark, active.map((e) => e.pid), stopMs, killTimeoutMs) : false;
    if (orphans.length) {
      this.logger.warn(`${this.name}: ${orphans.map((o) => o.pid).join(', ')} still running outside PM2 (its PM2 daemon was lost); stopping it as PM2 would`);
      // As PM2 does: SIGINT to the family, kill_timeout to close out, then SIGKILL.
      const family = uniqueByPid(orphans.flatMap((o) => familyOf(table, o.pid)));
      for (const p of family) signalQuietly(p.pid, 'SIGINT');
      if (!(await waitUntilGone(family.map((p) => p.pid), killTimeoutMs))) {
        for (const p of family) if (isAlive(p.pid)) signalQuietly(p.pid, 'SIGKILL');
        forceKilled = true;
      }
    }

    // PM2 (or we) stopped the leaders; the OS must agree for the whole family. Whatever survives
    // (a worker re-parented to init that PM2's tree kill did not reach) gets SIGKILL.
    const gone = await waitUntilGone([...tree.map((p) => p.pid), ...relaunched.map((e) => e.pid)], OS_CONFIRM_MS);
    let killedSurvivors: number[] | undefined;
    if (!gone) {
      const now = new Map((await readProcessTable()).map((p) => [p.pid, p]));
      const survivors = tree.filter((p) => now.has(p.pid) && sameStart(p.startedAt, now.get(p.pid)!.startedAt));
      for (const p of survivors) signalQuietly(p.pid, 'SIGKILL');
      killedSurvivors = survivors.map((p) => p.pid);
      if (survivors.length) {
        forceKilled = true;
        this.logger.warn(`${this.name}: PM2 stopped it but ${killedSurvivors.join(', ')} survived; sent SIGKILL`);
        if (!(await waitUntilGone(survivors.map((p) => p.pid), OS_CONFIRM_MS))) {
          throw failed(`${this.name} could not be stopped: ${survivors.filter((p) => isAlive(p.pid)).map((p) => p.pid).join(', ')} still alive after SIGKILL`);
        }
      }
    }
    const durationMs = Date.now() - began;
    const pid = primary && primary.pid > 0 && active.length ? primary.pid : orphans[0]?.pid;
    this.logger.info(`${this.name} stopped (pid ${pid ?? '-'}, ${durationMs} ms${forceKilled ? ', force-killed' : ''})`);
    return {
      pid,
      wasRunning,
      forceKilled,
      durationMs,
      ...(killedSurvivors?.length ? { killedSurvivors } : {}),
      ...(orphans.length ? { endedOutsidePm2: orphans.map((o) => o.pid) } : {}),
    };
  }

  /**
   * Processes running the trader's script outside PM2 that PM2 itself started for this name and
   * this PM2_HOME (their environment says so: PM2 hands every app name, pm_id and PM2_HOME) — left
   * behind when the daemon died. Other copies are duplicates, ended only on request.
   */
  private async orphans(entries: Pm2Entry[], table: readonly OsProcess[]): Promise<OsProcess[]> {
    const definition = await this.definition().catch(() => undefined);
    const primary = primaryEntry(entries, this.name);
    const scripts = [...new Set([definition?.script, primary?.script].filter((s): s is string => Boolean(s)))];
    if (!scripts.length) return [];
    const outside = findDuplicates({ name: this.name, scripts, entries, primary, table, selfPid: process.pid }).filter((d) => d.foundIn === 'os');
    const byPid = new Map(table.map((p) => [p.pid, p]));
    return outside.flatMap((d) => {
      const env = readEnviron(d.pid);
      const ours = env && env.name === this.name && env.pm_id !== undefined && env.PM2_HOME !== undefined && path.resolve(env.PM2_HOME) === this.pm2Home;
      const proc = byPid.get(d.pid);
      return ours && proc ? [proc] : [];
    });
  }

  private describe(primary: Pm2Entry | undefined, definition: TradingDefinition | undefined, duplicates: Duplicate[]): ProcessStatus {
    const script = primary?.script ?? definition?.script ?? '';
    if (!primary) {
      return { name: this.name, state: 'not_found', restarts: 0, script, outLogPath: definition?.outFile, errLogPath: definition?.errorFile, duplicates };
    }
    const state = toState(primary.status);
    const running = state === 'online' && primary.pid > 0;
    return {
      name: this.name,
      state,
      pid: primary.pid > 0 ? primary.pid : undefined,
      startedAt: running ? primary.startedAt : undefined,
      uptimeMs: running && primary.startedAt ? Math.max(0, Date.now() - primary.startedAt) : undefined,
      restarts: primary.restarts,
      cpuPercent: running ? primary.cpuPercent : undefined,
      memoryBytes: running ? primary.memoryBytes : undefined,
      lastExitCode: primary.exitCode,
      script,
      outLogPath: primary.outLogPath,
      errLogPath: primary.errLogPath,
      duplicates,
    };
  }
}

function toState(status: string): ProcessState {
  switch (status) {
    case 'online':
    case 'stopping':
    case 'stopped':
    case 'errored':
    case 'launching':
      return status;
    case 'waiting restart':
      return 'launching'; // between a crash and PM2's automatic restart
    case 'one-launch-status':
      return 'stopped';
    default:
      return 'errored';
  }
}

function uniqueByPid(processes: OsProcess[]): OsProcess[] {
  return [...new Map(processes.map((p) => [p.pid, p])).values()];
}

function treeOf(table: readonly OsProcess[], pid: number): OsProcess[] {
  const self = table.find((p) => p.pid === pid);
  return [...(self ? [self] : [{ pid, ppid: 0, argv: [], command: '' }]), ...descendantsOf(table, pid)];
}

function describeDuplicates(duplicates: Duplicate[]): string {
  const shown = duplicates.map((d) => `pid ${d.pid} (${d.foundIn === 'pm2' ? `PM2 entry ${d.pm2Name}#${d.pmId}` : 'outside PM2'}: ${d.command})`);
  return `${duplicates.length} other cop${duplicates.length === 1 ? 'y' : 'ies'} of the trader running — ${shown.join('; ')}. Stop ${duplicates.length === 1 ? 'it' : 'them'} first (stop duplicates).`;
}

/** PM2's `time: true` prefix, "2026-01-05T15:00:00: ". */
const STAMP = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)/;

/** Interleaves out and err tails by their timestamps; unstamped lines stay behind their predecessor. */
function mergeByTimestamp(tails: string[][]): string[] {
  if (tails.length === 1) return tails[0]!;
  const keyed: Array<{ key: string; source: number; index: number; line: string }> = [];
  tails.forEach((lines, source) => {
    let key = '';
    lines.forEach((line, index) => {
      key = STAMP.exec(line)?.[1] ?? key;
      keyed.push({ key, source, index, line });
    });
  });
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.source - b.source || a.index - b.index));
  return keyed.map((k) => k.line);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
