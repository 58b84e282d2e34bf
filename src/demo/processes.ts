// The OS processes only the demo has: the rogue copy of the trader it starts, and the leftovers of
// a demo that crashed, recognised by a marker in their environment. Ending processes (and the PM2
// daemon) is src/os/'s: by PID, only while the PID is still what we think it is.
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { ancestorsOf, readProcessTable, type OsProcess } from '../os/process-table.ts';
import { processInfo, type ProcessRef } from '../os/processes.ts';
import { programOf } from '../os/program.ts';

/**
 * Set in the demo's environment, so every process it starts (PM2 daemon, trader, rogue copy)
 * carries the demo folder in its environment: a crashed demo's leftovers are recognisable, and a
 * test can prove that nothing is left.
 */
export const DEMO_DIR_VARIABLE = 'TRADEWARDEN_DEMO_DIR';

function readProcText(pid: number, file: 'environ'): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return undefined;
  }
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
