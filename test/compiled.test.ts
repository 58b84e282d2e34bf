// The CLI as `npm install` builds it: one bundled CommonJS file (scripts/build.js), not the sources
// through tsx. A path computed from the module's own location is right in src/ and wrong from
// dist/ (relative TRADING_SCRIPT once resolved against dist/; import.meta inside a CommonJS
// bundle): only running the bundle shows it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyTrader, isAlive, makeTempHome } from '../testkit/pm2-home.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
// Inside the project (the compiled code finds package.json by walking up), apart from dist/, which
// other test files may be running at the same time.
const OUT = path.join(ROOT, '.test-build', String(process.pid));
let work: string;

before(() => {
  execFileSync(process.execPath, [path.join(ROOT, 'scripts/build.js'), '--outdir', OUT], { cwd: ROOT, stdio: 'pipe' });
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
  return spawnSync(process.execPath, [path.join(OUT, 'cli.cjs'), ...args], {
    cwd: work,
    env: { PATH: process.env.PATH ?? '', HOME: work, DATA_DIR: path.join(work, 'data'), PM2_HOME: path.join(work, 'pm2'), ...env },
    encoding: 'utf8',
  });
}

test('bundled CLI: a relative TRADING_SCRIPT is taken from the project root, as ecosystem.config.js does', () => {
  const run = compiledCli(['audit', '--json'], { TRADING_SCRIPT: 'examples/heartbeat-trader.js' });
  assert.equal(run.status, 0, `exit 0, not a configuration error: ${run.stderr}`);
  assert.deepEqual(JSON.parse(run.stdout), [], 'an empty audit log from a fresh DATA_DIR');
});

test('bundled CLI: a TRADING_SCRIPT that does not exist names the variable and where it looked', () => {
  const run = compiledCli(['audit'], { TRADING_SCRIPT: 'examples/no-such-trader.js' });
  assert.equal(run.status, 2, 'a configuration error is a usage error');
  assert.match(run.stderr, new RegExp(`TRADING_SCRIPT is "examples/no-such-trader.js": no such file \\(looked for ${path.join(ROOT, 'examples/no-such-trader.js').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\)`));
});

test('bundled CLI against a real PM2 daemon: start, status (PM2 read without its client, the ecosystem file loaded), stop', async () => {
  const home = makeTempHome('tw-bundle-');
  try {
    const trader = copyTrader(path.join(ROOT, 'examples/heartbeat-trader.js'), path.join(home.root, 'bot'));
    const env = { PM2_HOME: home.pm2Home, DATA_DIR: home.dataDir, TRADING_SCRIPT: trader, TRADING_KILL_TIMEOUT_MS: '1500' };
    const start = compiledCli(['start', '--json'], env);
    assert.equal(start.status, 0, `start: ${start.stdout}${start.stderr}`);
    const status = compiledCli(['status', '--json'], env);
    assert.equal(status.status, 0, `status: ${status.stderr}`);
    const report = JSON.parse(status.stdout) as { process: { state: string; pid?: number; script?: string; duplicates: unknown[] } };
    assert.equal(report.process.state, 'online');
    assert.equal(report.process.script, trader);
    assert.ok(report.process.pid && isAlive(report.process.pid), 'the PID status names is alive');
    assert.deepEqual(report.process.duplicates, []);
    const stop = compiledCli(['stop', '--json'], env);
    assert.equal(stop.status, 0, `stop: ${stop.stderr}`);
    assert.equal(isAlive(report.process.pid!), false, 'stopped in the OS');
  } finally {
    await home.cleanup();
  }
});

test('bin/tradewarden.cjs runs the bundle only while none of its sources is newer or gone; otherwise the sources through tsx', () => {
  // A project of its own with stand-in entry points that say which one ran (the choice is the bin's).
  const project = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-bin-'));
  try {
    fs.mkdirSync(path.join(project, 'bin'));
    fs.mkdirSync(path.join(project, 'dist'));
    fs.mkdirSync(path.join(project, 'src/cli'), { recursive: true });
    fs.copyFileSync(path.join(ROOT, 'bin/tradewarden.cjs'), path.join(project, 'bin/tradewarden.cjs'));
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(project, 'node_modules'));
    fs.writeFileSync(path.join(project, 'package.json'), '{"type":"module"}');
    fs.writeFileSync(path.join(project, 'src/cli/main.ts'), "export function main(): void { console.log('sources'); }\n");
    fs.writeFileSync(path.join(project, 'src/cli/part.ts'), 'export const part: number = 1;\n');
    fs.writeFileSync(path.join(project, 'dist/cli.cjs'), "exports.main = () => console.log('bundle');\n");
    const past = new Date(Date.now() - 60_000);
    for (const file of ['src/cli/main.ts', 'src/cli/part.ts']) fs.utimesSync(path.join(project, file), past, past);
    const stamp = (content: string) => fs.writeFileSync(path.join(project, 'dist/BUILT'), content);
    const ran = () => execFileSync(process.execPath, [path.join(project, 'bin/tradewarden.cjs')], { encoding: 'utf8' }).trim();

    stamp(JSON.stringify({ builtAt: new Date().toISOString(), sources: ['src/cli/main.ts', 'src/cli/part.ts'] }));
    assert.equal(ran(), 'bundle', 'a fresh build runs the bundle');
    fs.writeFileSync(path.join(project, 'src/cli/unrelated.ts'), 'export {};\n');
    assert.equal(ran(), 'bundle', 'a new file the bundle was not made of does not make it stale');
    fs.utimesSync(path.join(project, 'src/cli/part.ts'), new Date(), new Date(Date.now() + 5000));
    assert.equal(ran(), 'sources', 'an edited source is run, not the stale bundle');
    fs.utimesSync(path.join(project, 'src/cli/part.ts'), past, past);
    assert.equal(ran(), 'bundle', 'back to fresh');
    fs.rmSync(path.join(project, 'src/cli/part.ts'));
    assert.equal(ran(), 'sources', 'a source gone: the bundle is not trusted');
    stamp(`${new Date().toISOString()}\n`);
    assert.equal(ran(), 'sources', 'a stamp without its list of sources (an older build): the sources');
  } finally {
    fs.rmSync(project, { recursive: true, force: true });
  }
});
