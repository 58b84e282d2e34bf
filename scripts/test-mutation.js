#!/usr/bin/env node
// `npm run test:mutation [-- module…]`: StrykerJS once per module (stryker.config.mjs names the
// modules and their test files), then one line per module: its mutation score and what survived.
// Not part of `npm test` or CI: a module whose tests run PM2 takes tens of minutes on two cores.
// Run it before calling a change to one of these modules done; keep each at 80 % or more.
//
//   npm run test:mutation                   → every module, one after the other
//   npm run test:mutation -- log flatten    → only these
//   MUTATION_CONCURRENCY=2 npm run test:mutation -- log   → two mutants at once (default one)
//
// Each module's report: reports/mutation/<module>.html (and .json). Exit 1 if a module scored
// under 80 % or Stryker failed, 2 for an unknown module.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
process.env.MUTATION_MODULE ??= 'log'; // only so the config file can be imported for its list
const { MODULES } = await import(path.join(root, 'stryker.config.mjs'));
const names = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(MODULES);
const unknown = names.filter((n) => !(n in MODULES));
if (unknown.length) {
  console.error(`test:mutation: unknown module ${unknown.join(', ')}; the modules are ${Object.keys(MODULES).join(', ')}`);
  process.exit(2);
}

/** One Stryker run; resolves to its exit code and duration. */
function stryker(name) {
  const began = Date.now();
  const bin = path.join(root, 'node_modules/@stryker-mutator/core/bin/stryker.js');
  const child = spawn(process.execPath, [bin, 'run', 'stryker.config.mjs'], { cwd: root, stdio: 'inherit', env: { ...process.env, MUTATION_MODULE: name } });
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), ms: Date.now() - began })));
}

/**
 * Ends what a module's run left behind. The TAP runner kills a test file at its first failure (and
 * Stryker at a time-out) before the file's own clean-up runs, so a PM2 daemon or a fixture process
 * it started lives on. Each is known by its working directory, inside Stryker's copy of the project
 * (.stryker-tmp/, this run's only): ended by PID, SIGTERM (a PM2 daemon stops its apps) then SIGKILL.
 */
async function endLeftovers() {
  const sandbox = path.join(root, '.stryker-tmp') + path.sep;
  let entries;
  try {
    entries = fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return []; // no /proc (macOS): nothing to find this way
  }
  const left = [];
  for (const entry of entries) {
    const pid = Number(entry);
    try {
      if (pid !== process.pid && fs.readlinkSync(`/proc/${pid}/cwd`).startsWith(sandbox)) {
        left.push({ pid, command: fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim() });
      }
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  const alive = (pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (const { pid } of left) process.kill(pid, 'SIGTERM');
  for (let waited = 0; waited < 5000 && left.some(({ pid }) => alive(pid)); waited += 100) await new Promise((r) => setTimeout(r, 100));
  for (const { pid } of left) if (alive(pid)) process.kill(pid, 'SIGKILL');
  return left;
}

/** Stryker's own score from its JSON report: detected (killed, timed out) of the valid mutants. */
function score(name) {
  const file = path.join(root, 'reports/mutation', `${name}.json`);
  if (!fs.existsSync(file)) return undefined;
  const count = {};
  for (const f of Object.values(JSON.parse(fs.readFileSync(file, 'utf8')).files)) {
    for (const m of f.mutants) count[m.status] = (count[m.status] ?? 0) + 1;
  }
  const n = (s) => count[s] ?? 0;
  const detected = n('Killed') + n('Timeout');
  const valid = detected + n('Survived') + n('NoCoverage');
  return { percent: valid ? (100 * detected) / valid : NaN, killed: n('Killed'), timeout: n('Timeout'), survived: n('Survived'), noCoverage: n('NoCoverage') };
}

const results = [];
for (const name of names) {
  console.log(`\n=== mutation testing: ${name} (${MODULES[name].tests.join(', ')}) ===`);
  fs.rmSync(path.join(root, 'reports/mutation', `${name}.json`), { force: true }); // never report an old run
  const run = await stryker(name);
  for (const { pid, command } of await endLeftovers()) console.log(`test:mutation: ended PID ${pid} left by a killed test file: ${command}`);
  results.push({ name, ...run, score: score(name) });
}

console.log('\nmutation scores (detected / valid mutants; target ≥ 80 %):');
let bad = false;
for (const { name, code, ms, score: s } of results) {
  const time = `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
  if (!s) {
    bad = true;
    console.log(`  ${name.padEnd(18)} no report: Stryker exited ${code} (${time})`);
    continue;
  }
  if (s.percent < 80 || code !== 0) bad = true;
  console.log(
    `  ${name.padEnd(18)} ${s.percent.toFixed(1).padStart(5)} %  killed ${s.killed}, timed out ${s.timeout}, survived ${s.survived}, no coverage ${s.noCoverage}  (${time}; reports/mutation/${name}.html)`,
  );
}
process.exit(bad ? 1 : 0);
