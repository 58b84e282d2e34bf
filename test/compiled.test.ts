// The CLI as `npm install` builds it: the compiled JavaScript, not the sources through tsx. A path
// computed from the module's own location is right in src/ and wrong one folder deeper in dist/src/
// (relative TRADING_SCRIPT once resolved against dist/): only running the compiled code shows it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { execFileSync, spawnSync } from 'node:child_process';

const ROOT = path.resolve(import.meta.dirname, '..');
// Inside the project (the compiled code finds package.json by walking up), apart from dist/, which
// other test files may be running at the same time.
const OUT = path.join(ROOT, '.test-build', String(process.pid));
let work: string;

before(() => {
  const require = createRequire(import.meta.url);
  const pkgPath = require.resolve('typescript/package.json');
  const tsc = path.join(path.dirname(pkgPath), JSON.parse(fs.readFileSync(pkgPath, 'utf8')).bin.tsc);
  execFileSync(process.execPath, [tsc, '-p', path.join(ROOT, 'tsconfig.build.json'), '--outDir', OUT], { cwd: ROOT, stdio: 'pipe' });
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-compiled-'));
});

after(() => {
  fs.rmSync(OUT, { recursive: true, force: true });
  if (fs.readdirSync(path.dirname(OUT)).length === 0) fs.rmSync(path.dirname(OUT), { recursive: true, force: true });
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

function compiledCli(args: string[], env: Record<string, string>) {
  // Run from elsewhere, as an operator would from any folder; no .env of ours is read (dotenv
  // looks in the working directory).
  return spawnSync(process.execPath, [path.join(OUT, 'src/cli/main.js'), ...args], {
    cwd: work,
    env: { PATH: process.env.PATH ?? '', HOME: work, DATA_DIR: path.join(work, 'data'), PM2_HOME: path.join(work, 'pm2'), ...env },
    encoding: 'utf8',
  });
}

test('compiled CLI: a relative TRADING_SCRIPT is taken from the project root, as ecosystem.config.js does', () => {
  const run = compiledCli(['audit', '--json'], { TRADING_SCRIPT: 'examples/heartbeat-trader.js' });
  assert.equal(run.status, 0, `exit 0, not a configuration error: ${run.stderr}`);
  assert.deepEqual(JSON.parse(run.stdout), [], 'an empty audit log from a fresh DATA_DIR');
});

test('compiled CLI: a TRADING_SCRIPT that does not exist names the variable and where it looked', () => {
  const run = compiledCli(['audit'], { TRADING_SCRIPT: 'examples/no-such-trader.js' });
  assert.equal(run.status, 2, 'a configuration error is a usage error');
  assert.match(run.stderr, new RegExp(`TRADING_SCRIPT is "examples/no-such-trader.js": no such file \\(looked for ${path.join(ROOT, 'examples/no-such-trader.js').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\)`));
});
