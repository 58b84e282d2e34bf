// What the PM2 daemon's own log (PM2_HOME/pm2.log) tells that its API does not.
//
// The daemon's stdout and stderr are that file, and Node writes to a file synchronously, so a line
// the daemon printed before answering a call is in the file when the answer arrives. Two facts are
// read from it (PM2 7.0.4's wording, pinned by tests):
// - A forced kill: "Process with pid N still alive after Mms, sending SIGKILL" (God/Methods.js).
// - A launch under way. PM2 relaunches a crashed app from a timer that prints
//   "App [name:id] starting in -fork mode-" (God/ForkMode.js), then opens the app's log files and
//   only then forks and prints "App [name:id] online" (God.js). A stop that lands between the two
//   finds the old entry "stopped" and answers at once, and the fork comes up after it. Nothing in
//   `pm2 jlist` shows that gap: the old entry already looks stopped for good.
import { readSince, tailLines } from './log-tail.ts';

/** How far back a launch under way is looked for: its "starting" line was printed moments ago. */
const LAUNCH_LOOKBACK_BYTES = 256 * 1024;
const LAUNCH_LOOKBACK_LINES = 4000;

/**
 * The pm_ids, of those asked for, that PM2 has begun to launch and not yet brought online (nor
 * seen exit): a relaunch a stop cannot cancel and must wait out. `undefined` when the log cannot
 * be read.
 */
export async function launchesUnderway(daemonLog: string, name: string, pmIds: readonly number[]): Promise<number[] | undefined> {
  let lines: string[];
  try {
    lines = await tailLines(daemonLog, LAUNCH_LOOKBACK_LINES, LAUNCH_LOOKBACK_BYTES);
  } catch {
    return undefined;
  }
  return pmIds.filter((pmId) => {
    const app = `App [${name}:${pmId}] `;
    for (let i = lines.length - 1; i >= 0; i--) {
      const at = lines[i]!.indexOf(app);
      if (at < 0) continue;
      const said = lines[i]!.slice(at + app.length);
      if (/^starting in -\w+ mode-/.test(said)) return true;
      if (said.startsWith('online') || said.startsWith('exited with code')) return false;
    }
    return false;
  });
}

/**
 * Did PM2 have to SIGKILL? The daemon logs exactly that when kill_timeout expires, and we read only
 * what it wrote during our stop (from `mark`). Timing is ambiguous near the edge (a trader that
 * needs 9.95 s of a 10 s kill_timeout), so it is used only when the daemon's log cannot be read.
 */
export async function pm2ForceKilled(daemonLog: string, mark: number, pids: number[], stopMs: number, killTimeoutMs: number): Promise<boolean> {
  const written = await readSince(daemonLog, mark);
  if (!written) return stopMs >= killTimeoutMs;
  return pids.some((pid) => pid > 0 && written.includes(`Process with pid ${pid} still alive after`));
}
