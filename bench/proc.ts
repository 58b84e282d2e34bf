// What the benches that start whole processes share: /proc readings, a one-number figure line,
// waiting for a child's ready line, running a command to its end.
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';

const ROOT = path.resolve(import.meta.dirname, '..');

export interface ProcSample {
  /** utime + stime, ticks */
  cpuTicks: number;
  /** cutime + cstime: waited-for children (e.g. a `ps` fallback), ticks */
  childTicks: number;
  rssMb: number;
}

export function readProc(pid: number): ProcSample {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after "(comm)": state is field 3, so utime (14) is index 11 of what follows.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const [utime, stime, cutime, cstime] = fields.slice(11, 15).map(Number);
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
  return { cpuTicks: utime + stime, childTicks: cutime + cstime, rssMb: rssKb / 1024 };
}

/** A line aligned with stats.ts's report() for figures that are one number. */
export function figure(name: string, value: string, target: string): void {
  console.log(`${name.padEnd(44)} ${value}   target ${target}`);
}

/** Resolves once the child has printed `ready` (stdout or stderr); rejects if it exits first. */
export function started(child: ChildProcess, ready: RegExp, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => finish(new Error(`the controller did not start within ${timeoutMs} ms`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      if (ready.test(seen)) finish();
    };
    const onExit = (code: number | null) => finish(new Error(`the controller exited (${code}) before it was ready`));
    function finish(error?: Error) {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      if (error) reject(error);
      else resolve();
    }
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('exit', onExit);
  });
}

export function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, output }));
  });
}

