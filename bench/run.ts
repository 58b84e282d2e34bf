// `npm run bench [-- name …]`: runs every bench/*.ts (or the named ones) one after the other, each in
// its own process so one bench's daemons, timers and memory cannot colour the next one's figures.
// Exits non-zero if any bench failed; the others still run.
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';

const BENCH_DIR = import.meta.dirname;
const NOT_BENCHES = new Set(['stats.ts', 'run.ts', 'cleanup.ts', 'controller-process.ts', 'proc.ts']);

const all = fs
  .readdirSync(BENCH_DIR)
  .filter((file) => file.endsWith('.ts') && !NOT_BENCHES.has(file))
  .sort();
const wanted = process.argv.slice(2).map((arg) => path.basename(arg, '.ts'));
const unknown = wanted.filter((name) => !all.includes(`${name}.ts`));
if (unknown.length) {
  console.error(`no such bench: ${unknown.join(', ')} (there are: ${all.map((f) => path.basename(f, '.ts')).join(', ')})`);
  process.exit(2);
}
const benches = wanted.length ? all.filter((file) => wanted.includes(path.basename(file, '.ts'))) : all;

let current: ChildProcess | undefined;
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    // Ctrl-C reaches the bench too (same process group); SIGTERM may not. Either way the bench
    // cleans up after itself, and no further bench starts.
    interrupted = true;
    if (signal === 'SIGTERM' && current?.pid) current.kill('SIGTERM');
  });
}

console.log(`tradewarden benchmarks — ${new Date().toISOString()}, node ${process.version}, ${process.platform}`);
const failed: string[] = [];
for (const file of benches) {
  if (interrupted) break;
  console.log(`\n# ${file}`);
  const began = performance.now();
  const code = await new Promise<number | null>((resolve) => {
    current = spawn(process.execPath, ['--import', 'tsx', path.join(BENCH_DIR, file)], { cwd: path.dirname(BENCH_DIR), stdio: 'inherit' });
    current.on('error', (error) => {
      console.error(`could not start ${file}: ${error.message}`);
      resolve(null);
    });
    current.on('exit', (exitCode, signal) => resolve(signal ? null : exitCode));
  });
  current = undefined;
  const seconds = ((performance.now() - began) / 1000).toFixed(1);
  if (code === 0) {
    console.log(`(${file}: ${seconds} s)`);
  } else {
    failed.push(file);
    console.log(`(${file}: FAILED${code === null ? '' : `, exit ${code}`}, ${seconds} s)`);
  }
}
if (interrupted) console.log('\ninterrupted');
if (failed.length) console.log(`\nfailed: ${failed.join(', ')}`);
process.exit(interrupted ? 130 : failed.length ? 1 : 0);
