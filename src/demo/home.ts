// The demo's own folder (default <project>/.demo, gitignored): its PM2_HOME, its DATA_DIR, its copy
// of the trader — never the user's ~/.pm2 or ./data. One demo per folder at a time, and a folder a
// crashed demo left behind is put back in order before the next one starts.
import fs from 'node:fs';
import path from 'node:path';
import { OperationError, describeError, refused } from '../errors.ts';
import { holdFileLock } from '../lock.ts';
import { isAlive } from '../os/process-table.ts';
import { endPm2Daemon } from '../os/pm2-daemon.ts';
import { endProcess, processInfo, type ProcessRef } from '../os/processes.ts';
import { leftoversOf } from './processes.ts';
import { createDataDir } from '../store/data-dir.ts';
import { PROJECT_ROOT } from '../project-root.ts';

export { PROJECT_ROOT };
export const TRADER_SOURCE = path.join(PROJECT_ROOT, 'examples/demo-trader.js');

export interface DemoHome {
  root: string;
  pm2Home: string;
  dataDir: string;
  /**
   * The trader the demo runs: a copy of examples/demo-trader.js in this folder. The duplicate scan
   * reports every process running the same *file*, so two demos (or a demo and `npm test`) running
   * examples/demo-trader.js itself would take each other's traders for duplicates.
   */
  traderScript: string;
  /** output of the copy started outside PM2, as nohup.out would be */
  rogueLog: string;
  /** this run's log (everything the controller logs), kept with the data */
  logFile: string;
}

export function demoHome(root: string): DemoHome {
  const abs = path.resolve(root);
  return {
    root: abs,
    pm2Home: path.join(abs, 'pm2'),
    dataDir: path.join(abs, 'data'),
    traderScript: path.join(abs, 'trader', 'demo-trader.js'),
    rogueLog: path.join(abs, 'data', 'rogue-trader.log'),
    logFile: path.join(abs, 'data', 'demo.log'),
  };
}

const pidFile = (home: DemoHome) => path.join(home.root, 'demo.pid');
const rogueFile = (home: DemoHome) => path.join(home.root, 'rogue.json');

/** PM2's sockets live in PM2_HOME, and a unix socket path is limited to ~107 bytes. */
export function checkSocketRoom(home: DemoHome): void {
  const socket = path.join(home.pm2Home, 'rpc.sock');
  if (Buffer.byteLength(socket) > 100) {
    throw new OperationError('usage', `the demo folder ${home.root} is too deep for PM2's sockets (${socket} is over 100 bytes); use a shorter --home`);
  }
}

/**
 * One demo per folder. A second one is refused with who holds it; a demo that crashed leaves a
 * lock that goes stale within ~10 s of its last refresh, which is waited out (with a word).
 */
export async function takeDemoLock(home: DemoHome, say: (line: string) => void, staleMs = 10_000): Promise<() => Promise<void>> {
  fs.mkdirSync(home.root, { recursive: true });
  const deadline = Date.now() + staleMs + 3000;
  let told = false;
  for (;;) {
    try {
      const release = await holdFileLock(path.join(home.root, 'demo'), { staleMs });
      fs.writeFileSync(pidFile(home), `${process.pid}\n`);
      return release;
    } catch (error) {
      if (!isLocked(error)) throw error;
      const holder = await runningDemo(home);
      if (holder) {
        throw refused(
          `a demo is already running in ${home.root} (PID ${holder}). Use its terminal, or stop it there with Ctrl-C. ` +
            `To run another one alongside it, give it its own folder: npx tradewarden demo --home /tmp/tradewarden-demo-2`,
        );
      }
      if (Date.now() >= deadline) throw refused(`${home.root}/demo.lock is held, but by no running demo; remove that directory if no demo is running`);
      if (!told) say('A previous demo ended without cleaning up; waiting for its lock to expire (up to 10 s)…');
      told = true;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

function isLocked(error: unknown): boolean {
  const cause = error instanceof Error ? (error.cause as NodeJS.ErrnoException | undefined) : undefined;
  return cause?.code === 'ELOCKED';
}

/** The PID in demo.pid, if that process is alive and is a demo (not a reused PID). */
async function runningDemo(home: DemoHome): Promise<number | undefined> {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(pidFile(home), 'utf8').trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || !isAlive(pid)) return undefined;
  const command = (await processInfo(pid))?.command ?? '';
  return /demo[\\/]main\.ts/.test(command) ? pid : undefined;
}

/**
 * What a demo that did not stop cleanly (killed, terminal closed, machine slept through a crash)
 * left running, ended by PID: its PM2 daemon (only if it really is the God Daemon of this folder's
 * PM2_HOME — which also stops the trader it ran), its rogue copy (same PID *and* start time as
 * recorded), and on Linux any process still marked with this folder running the trader.
 *
 * Ended rather than reused: that daemon was spawned with the crashed demo's environment (the
 * broker URL and keys of a broker that died with it), so a trader it restarts could not trade,
 * and its state (trader entry, restart counts) describes an account that no longer exists.
 * A fresh daemon, data and broker give every demo the same clean start.
 */
export async function clearLeftovers(home: DemoHome, say: (line: string) => void): Promise<void> {
  const daemon = await endPm2Daemon(home.pm2Home);
  if (daemon?.outcome === 'not-ours') {
    say(`${home.pm2Home}/pm2.pid names PID ${daemon.pid}, which is not this demo's PM2 daemon: left alone.`);
  } else if (daemon && daemon.outcome !== 'gone') {
    say(`Ended the PM2 daemon a previous demo left running (PID ${daemon.pid}${daemon.orphansKilled.length ? `, and its apps ${daemon.orphansKilled.join(', ')}` : ''}).`);
  }
  const rogue = readRogue(home);
  if (rogue) {
    const how = await endProcess(rogue).catch((e: unknown) => `not ended: ${describeError(e)}`);
    if (how !== 'gone') say(`Ended the copy outside PM2 a previous runaway demo left running (PID ${rogue.pid}, ${how}).`);
    fs.rmSync(rogueFile(home), { force: true });
  }
  for (const stray of await leftoversOf(home.root, home.traderScript)) {
    const how = await endProcess(stray).catch((e: unknown) => `not ended: ${describeError(e)}`);
    if (how !== 'gone') say(`Ended PID ${stray.pid} a previous demo left running (${stray.command}, ${how}).`);
  }
}

export function recordRogue(home: DemoHome, rogue: ProcessRef): void {
  fs.writeFileSync(rogueFile(home), JSON.stringify(rogue) + '\n');
}

export function forgetRogue(home: DemoHome): void {
  fs.rmSync(rogueFile(home), { force: true });
}

function readRogue(home: DemoHome): ProcessRef | undefined {
  try {
    const value = JSON.parse(fs.readFileSync(rogueFile(home), 'utf8')) as Partial<ProcessRef>;
    if (typeof value.pid !== 'number' || !Number.isInteger(value.pid) || value.pid <= 0) return undefined;
    return { pid: value.pid, startedAt: typeof value.startedAt === 'number' ? value.startedAt : undefined };
  } catch {
    return undefined;
  }
}

/**
 * Each demo starts with empty data: the broker lives in memory and is new every run, so the last
 * run's trades, breaker and alerts describe an account that is gone (and its trades would still
 * count in the rolling hour). The last run's data is kept as data.previous.
 */
export function freshData(home: DemoHome): void {
  const previous = `${home.dataDir}.previous`;
  fs.rmSync(previous, { recursive: true, force: true });
  if (fs.existsSync(home.dataDir)) fs.renameSync(home.dataDir, previous);
  createDataDir(home.dataDir);
}

/** Copies the trader into the demo folder (fresh every run, so an edit to the example is picked up). */
export function installTrader(home: DemoHome): void {
  fs.mkdirSync(path.dirname(home.traderScript), { recursive: true });
  fs.copyFileSync(TRADER_SOURCE, home.traderScript);
}
