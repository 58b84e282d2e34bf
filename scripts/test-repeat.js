#!/usr/bin/env node
// `npm run test:repeat -- N`: the whole suite (`npm test`, exactly as CI runs it) N times in a row.
// A test that fails one run in seven passes most single runs; only repetition finds it. Each run's
// failures are printed as they happen (test name and the first lines of its error), each run's
// whole output is kept in a log file, and the last line is "<runs> passed, <runs> failed".
//
//   npm run test:repeat               → 5 runs
//   npm run test:repeat -- 10         → 10 runs
//   npm run test:repeat -- 10 --bail  → stop at the first red run
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  options: { bail: { type: 'boolean', default: false }, 'log-dir': { type: 'string' } },
  allowPositionals: true,
  strict: true,
});
const runs = positionals[0] === undefined ? 5 : Number(positionals[0]);
if (!Number.isInteger(runs) || runs < 1 || runs > 1000) {
  console.error(`test:repeat: the number of runs must be a whole number from 1 to 1000 (got ${JSON.stringify(positionals[0])})`);
  process.exit(2);
}
const root = path.resolve(import.meta.dirname, '..');
const logDir = path.resolve(values['log-dir'] ?? fs.mkdtempSync(path.join(os.tmpdir(), 'tw-test-repeat-')));
fs.mkdirSync(logDir, { recursive: true });

/** One `npm test` with its output in `logFile`; resolves to its exit code and duration. */
function runSuite(logFile) {
  const began = Date.now();
  const out = fs.openSync(logFile, 'w');
  // Not a terminal, so node's test runner writes TAP: its "not ok" blocks are what we report from.
  const child = spawn('npm', ['test'], { cwd: root, stdio: ['ignore', out, out] });
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      fs.closeSync(out);
      resolve({ code: code ?? (signal ? 128 : 1), ms: Date.now() - began });
    });
  });
}

/**
 * The failed tests of one TAP log: each "not ok" with the keys of its YAML block that say why
 * (location, error, expected, actual). A suite's "not ok" only repeats its failed subtests, so
 * only the leaves are reported.
 */
function failuresIn(logFile) {
  const lines = fs.readFileSync(logFile, 'utf8').split('\n');
  const failures = [];
  for (let i = 0; i < lines.length; i++) {
    const match = /^(\s*)not ok \d+ - (.*)$/.exec(lines[i]);
    if (!match || lines[i + 1]?.trim() !== '---') continue;
    const keyIndent = match[1].length + 2;
    const block = {};
    let key;
    for (let j = i + 2; j < lines.length && lines[j].trim() !== '...'; j++) {
      const line = lines[j];
      const indent = line.search(/\S/);
      const keyed = indent === keyIndent ? /^\s*([A-Za-z_]+):\s?(.*)$/.exec(line) : null;
      if (keyed) {
        key = keyed[1];
        block[key] = keyed[2] === '|-' || keyed[2] === '>-' ? [] : [keyed[2]];
      } else if (key && indent > keyIndent && block[key].length < 4) {
        block[key].push(line.trim());
      }
    }
    if (block.failureType?.[0] === "'subtestsFailed'") continue;
    const details = ['location', 'error', 'expected', 'actual']
      .filter((k) => block[k]?.length)
      .map((k) => `${k}: ${block[k].join(' ')}`.slice(0, 400));
    failures.push({ name: match[2], details });
  }
  return failures;
}

const began = Date.now();
let passed = 0;
let failed = 0;
console.log(`test:repeat: ${runs} run${runs === 1 ? '' : 's'} of npm test; logs in ${logDir}`);
for (let run = 1; run <= runs; run++) {
  const logFile = path.join(logDir, `run-${String(run).padStart(3, '0')}.log`);
  const { code, ms } = await runSuite(logFile);
  const failures = code === 0 ? [] : failuresIn(logFile);
  if (code === 0) passed++;
  else failed++;
  console.log(`run ${run}/${runs}: ${code === 0 ? 'green' : `RED (exit ${code})`} in ${(ms / 1000).toFixed(0)} s${code === 0 ? '' : ` — ${logFile}`}`);
  for (const failure of failures) {
    console.log(`  ✗ ${failure.name}`);
    for (const detail of failure.details) console.log(`      ${detail}`);
  }
  if (code !== 0 && !failures.length) console.log('  (no failing test named: the run itself failed; see the log)');
  if (code !== 0 && values.bail) break;
}
console.log(`test:repeat: ${((Date.now() - began) / 60_000).toFixed(1)} min`);
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
