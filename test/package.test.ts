// The package as a user meets it (issue 29): the working tree packed with `npm pack` (whose
// `prepack` builds dist/), the tarball installed with `npm install` into a fresh folder beside a
// small Python bot whose .env uses relative paths (TRADING_SCRIPT=main_bot.py, no DATA_DIR), and
// tradewarden run there as the README says: `npx tradewarden status|start|stop`, the controller in
// the foreground and `health`, the PM2 deployment (`tradewarden ecosystem`, `npx pm2 start
// ecosystem.config.cjs`), `--config` from another folder, and the demo. Against the local paper
// broker and a PM2 daemon of the test's own (a temporary PM2_HOME, ended by PID).
//
// What it costs: packing ~1 s (the build), installing the tarball's ~150 dependencies 4 s with npm's
// cache warm and ~9 s from the registry with it empty (2 cores; `--prefer-offline` reuses what the
// cache holds), then ~20 s of CLI calls, PM2 and the demo. Without a registry (and a cache that
// lacks a dependency) the install cannot happen: the test is skipped then, saying why.
//
// The tree is copied before packing (with our node_modules linked in for the build): `prepack`
// replaces dist/, which other test files and a running controller of the checkout may be using.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fork, spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { startPaperBroker } from '../testkit/paper-broker.ts';
import { isAlive, killPid, makeTempHome, waitFor } from '../testkit/pm2-home.ts';
import { scratchDir } from '../testkit/scratch.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
type Child = ChildProcessByStdio<null, Readable, Readable>;

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end without blocking this process (the paper broker answers from here). */
async function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Ran> {
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

/** Resolves when `text` has appeared in the child's output (an event, not a poll); rejects if it exits first. */
function untilOutput(child: Child, text: string, output: { all: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    const look = () => {
      if (!output.all.includes(text)) return;
      child.stdout.off('data', look);
      child.stderr.off('data', look);
      child.off('exit', exited);
      resolve();
    };
    const exited = (code: number | null) => reject(new Error(`exited (${code}) before printing "${text}"; its output:\n${output.all}`));
    child.stdout.on('data', look);
    child.stderr.on('data', look);
    child.once('exit', exited);
    look();
  });
}

/** The working tree as git sees it (tracked and new files, not ignored ones), copied into `target`. */
function copyWorkingTree(target: string): void {
  const listed = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(listed.status, 0, `git ls-files in ${ROOT}: ${listed.stderr}`);
  for (const file of new Set(listed.stdout.split('\0').filter(Boolean))) {
    const from = path.join(ROOT, file);
    if (!fs.lstatSync(from, { throwIfNoEntry: false })?.isFile()) continue; // deleted in the working tree (not yet in the index), or a link
    fs.mkdirSync(path.dirname(path.join(target, file)), { recursive: true });
    fs.copyFileSync(from, path.join(target, file));
  }
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(target, 'node_modules'));
}

/** Every file under `dir`, relative, sorted: what "nothing written inside the package" compares. */
function filesUnder(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .filter((entry) => !entry.isDirectory())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)))
    .sort();
}

const NETWORK_TROUBLE = /E(NOTFOUND|AI_AGAIN|CONNREFUSED|CONNRESET|TIMEDOUT|NETUNREACH)|network request .* failed/;

test('the package installed beside a Python bot: npx tradewarden status, start, stop, controller, health, the PM2 deployment, --config, the demo', async (t) => {
  const npm = spawnSync('npm', ['--version'], { encoding: 'utf8' });
  const python = spawnSync('python3', ['--version'], { encoding: 'utf8' });
  if (npm.status !== 0 || python.status !== 0) {
    t.skip(`needs npm and python3 on PATH (${npm.status !== 0 ? 'no npm' : 'no python3'})`);
    return;
  }
  const work = scratchDir('tw-package-');
  const home = makeTempHome('tw-pkg-');
  const keyId = 'PKPACKAGEKEY01234567';
  const secretKey = 'SKPACKAGESECRETabcdefghijklmnopqrstuvwx01';
  const paper = await startPaperBroker({ keyId, secretKey });
  // A user's shell: no variable of this test run, none of our node_modules/.bin on PATH (npx must
  // find tradewarden and pm2 in the bot's folder), the user's HOME for npm's cache and settings.
  const env: NodeJS.ProcessEnv = {
    PATH: (process.env.PATH ?? '').split(path.delimiter).filter((dir) => !dir.endsWith(path.join('node_modules', '.bin'))).join(path.delimiter),
    HOME: process.env.HOME ?? work,
    PM2_HOME: home.pm2Home,
    NO_COLOR: '1',
  };
  const bot = path.join(work, 'my-bot');
  const pkg = path.join(bot, 'node_modules', 'tradewarden');
  let controller: Child | undefined;
  try {
    // ---- pack ----
    const tree = path.join(work, 'tree');
    copyWorkingTree(tree);
    const packStarted = Date.now();
    const pack = await run('npm', ['pack', '--json', '--pack-destination', work], tree, env);
    assert.equal(pack.code, 0, `npm pack: ${pack.stderr}`);
    const [packed] = JSON.parse(pack.stdout) as { filename: string; size: number; unpackedSize: number; entryCount: number; files: { path: string }[] }[];
    const files = packed!.files.map((f) => f.path).sort();
    t.diagnostic(`packed in ${Date.now() - packStarted} ms: ${packed!.entryCount} files, ${Math.round(packed!.size / 1024)} kB (${Math.round(packed!.unpackedSize / 1024)} kB unpacked)`);

    await t.test('the tarball carries what runs, built, and no tests, bench, testkit or sources', () => {
      const top = [...new Set(files.map((f) => f.split('/')[0]))].sort();
      assert.deepEqual(top, ['.env.example', 'LICENSE', 'README.md', 'bin', 'dist', 'ecosystem.config.js', 'examples', 'package.json'], 'the top level of the package is package.json\'s `files` and what npm always adds');
      for (const file of [
        'bin/tradewarden.cjs',
        'bin/controller.js',
        'bin/fresh-build.cjs',
        'dist/BUILT',
        'dist/cli.cjs',
        'dist/controller/main.js',
        'dist/controller/chart-process.js',
        'dist/controller/demo.js',
        'dist/controller/commands/bot.js',
        'examples/heartbeat-trader.js',
        'examples/demo-trader.js',
      ]) {
        assert.ok(files.includes(file), `${file} is in the package (prepack built it); the package has: ${files.join(', ')}`);
      }
      assert.deepEqual(files.filter((f) => f.endsWith('.ts')), [], 'no TypeScript: the package runs its build, without tsx');
    });

    // ---- install ----
    fs.mkdirSync(bot);
    fs.writeFileSync(path.join(bot, 'package.json'), JSON.stringify({ name: 'my-bot', private: true }));
    const installStarted = Date.now();
    const install = await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', path.join(work, packed!.filename)], bot, env);
    if (install.code !== 0 && NETWORK_TROUBLE.test(install.stderr)) {
      t.skip(`npm install could not fetch the package's dependencies (no registry, and npm's cache lacks one): ${install.stderr.split('\n').find((l) => NETWORK_TROUBLE.test(l))}`);
      return;
    }
    assert.equal(install.code, 0, `npm install of the tarball: ${install.stderr}`);
    t.diagnostic(`installed in ${Date.now() - installStarted} ms`);
    const installed = filesUnder(pkg);

    await t.test('installing prints no install-scripts warning: the package has nothing to run at install, build tools are dev dependencies', () => {
      assert.doesNotMatch(install.stderr, /install-scripts/, `npm's output:\n${install.stderr}`);
      const manifest = JSON.parse(fs.readFileSync(path.join(pkg, 'package.json'), 'utf8')) as { scripts: Record<string, string>; dependencies: Record<string, string> };
      for (const script of ['preinstall', 'install', 'postinstall', 'prepare']) assert.equal(manifest.scripts[script], undefined, `no ${script} script`);
      for (const tool of ['tsx', 'esbuild', 'typescript']) assert.equal(manifest.dependencies[tool], undefined, `${tool} is not a dependency`);
    });

    // ---- the bot's folder: a Python bot and a .env of relative paths ----
    fs.writeFileSync(
      path.join(bot, 'main_bot.py'),
      ['import os, signal, sys, time', 'signal.signal(signal.SIGINT, lambda *_: sys.exit(0))', 'print("bot up in", os.getcwd(), flush=True)', 'while True:', '    time.sleep(1)', ''].join('\n'),
    );
    fs.writeFileSync(
      path.join(bot, '.env'),
      [
        'TRADING_SCRIPT=main_bot.py',
        'TRADING_KILL_TIMEOUT_MS=2000',
        `APCA_API_KEY_ID=${keyId}`,
        `APCA_API_SECRET_KEY=${secretKey}`,
        `APCA_API_BASE_URL=${paper.url}`,
        'TRADE_POLL_SECONDS=1',
        'DUPLICATE_SCAN_SECONDS=1',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    const npx = (...args: string[]) => run('npx', ['tradewarden', ...args], bot, env);

    let traderPid: number | undefined;
    await t.test('npx tradewarden status, start, stop in the bot\'s folder: the trader is main_bot.py there, DATA_DIR is its ./data', async () => {
      const before = await npx('status', '--json');
      assert.equal(before.code, 0, `status: ${before.stderr}`);
      assert.equal((JSON.parse(before.stdout) as { process: { state: string } }).process.state, 'not_found', 'nothing runs yet');

      const start = await npx('start');
      assert.equal(start.code, 0, `start: ${start.stdout}${start.stderr}`);
      const status = await npx('status', '--json');
      assert.equal(status.code, 0, `status: ${status.stderr}`);
      const report = JSON.parse(status.stdout) as { process: { state: string; pid?: number; script?: string; outLogPath?: string } };
      assert.equal(report.process.state, 'online');
      assert.equal(report.process.script, path.join(bot, 'main_bot.py'), 'TRADING_SCRIPT is taken from the folder of .env, not from the package');
      assert.ok(report.process.pid && isAlive(report.process.pid), 'the PID status names is alive');
      traderPid = report.process.pid;
      assert.equal(fs.realpathSync(`/proc/${traderPid}/cwd`), fs.realpathSync(bot), 'the trader runs in its own folder');
      assert.equal(report.process.outLogPath, path.join(bot, 'data', 'logs', 'trading-bot.out.log'), 'the default DATA_DIR is ./data of the folder of .env');
      assert.ok(fs.existsSync(path.join(bot, 'data', 'tradewarden.json')), 'the data file is in the bot\'s folder');

      const stop = await npx('stop');
      assert.equal(stop.code, 0, `stop: ${stop.stdout}${stop.stderr}`);
      assert.equal(isAlive(traderPid!), false, 'the trader is gone from the OS');
    });

    await t.test('--config and TRADEWARDEN_CONFIG name the folder from anywhere; a wrong path names the variable and the folder it looked in', async () => {
      const elsewhere = path.join(work, 'elsewhere');
      fs.mkdirSync(elsewhere);
      const bin = path.join(bot, 'node_modules', '.bin', 'tradewarden');
      const byOption = await run(bin, ['--config', bot, 'status', '--json'], elsewhere, env);
      assert.equal(byOption.code, 0, `--config: ${byOption.stderr}`);
      assert.equal((JSON.parse(byOption.stdout) as { process: { script?: string } }).process.script, path.join(bot, 'main_bot.py'));
      const byVariable = await run(bin, ['audit', '--json'], elsewhere, { ...env, TRADEWARDEN_CONFIG: bot });
      assert.equal(byVariable.code, 0, `TRADEWARDEN_CONFIG: ${byVariable.stderr}`);
      assert.deepEqual((JSON.parse(byVariable.stdout) as { what: string }[]).map((entry) => entry.what), ['stop', 'start'], 'the audit log of the bot\'s DATA_DIR');

      fs.writeFileSync(path.join(elsewhere, '.env'), 'TRADING_SCRIPT=main_bot.py\n');
      const wrong = await run(bin, ['status'], elsewhere, env);
      assert.equal(wrong.code, 2, 'a configuration error is a usage error');
      assert.match(wrong.stderr, new RegExp(`TRADING_SCRIPT is "main_bot.py": no such file \\(looked for ${escape(path.join(elsewhere, 'main_bot.py'))}\\)`));
      assert.match(wrong.stderr, new RegExp(`relative to the configuration folder ${escape(elsewhere)}`), 'it names the folder relative paths come from');
      assert.ok(!fs.existsSync(path.join(elsewhere, 'data')), 'a refused configuration creates nothing');
    });

    await t.test('tradewarden controller runs in the foreground from the folder\'s .env; health says so; SIGTERM ends it', async () => {
      // The installed bin, as PM2, systemd or a container runs it (npx would put npm in between).
      const child = spawn(path.join(bot, 'node_modules', '.bin', 'tradewarden'), ['controller'], { cwd: bot, env, stdio: ['ignore', 'pipe', 'pipe'] });
      controller = child; // ended in the finally below if this test fails midway
      const output = { all: '' };
      child.stdout.on('data', (chunk: Buffer) => (output.all += chunk));
      child.stderr.on('data', (chunk: Buffer) => (output.all += chunk));
      await untilOutput(child, 'controller watching', output);
      assert.match(output.all, new RegExp(`data ${escape(path.join(bot, 'data'))}`), `the controller's DATA_DIR is the bot's ./data:\n${output.all}`);
      await waitFor(async () => (await npx('health')).code === 0, { timeoutMs: 15_000, intervalMs: 250, what: `tradewarden health to pass; controller output:\n${output.all}` });
      const health = await npx('health', '--json');
      assert.equal((JSON.parse(health.stdout) as { pid?: number }).pid, child.pid, 'the controller health found is the one started here');
      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number | null];
      assert.equal(code, 0, `exit 0 on SIGTERM; output:\n${output.all}`);
      controller = undefined;
    });

    await t.test('the PM2 deployment: tradewarden ecosystem writes the file beside .env, npx pm2 start runs the controller from the package with this folder', async () => {
      const written = await npx('ecosystem');
      assert.equal(written.code, 0, `ecosystem: ${written.stderr}`);
      const file = path.join(bot, 'ecosystem.config.cjs');
      assert.match(fs.readFileSync(file, 'utf8'), /require\("tradewarden\/ecosystem\.config\.js"\)/, 'the package by name: the file survives npm update');
      const again = await npx('ecosystem');
      assert.equal(again.code, 3, 'an existing file is refused, not replaced');

      const started = await run('npx', ['pm2', 'start', 'ecosystem.config.cjs'], bot, env);
      assert.equal(started.code, 0, `pm2 start: ${started.stdout}${started.stderr}`);
      const list = await run('npx', ['pm2', 'jlist'], bot, env);
      const apps = JSON.parse(list.stdout) as { name: string; pid: number; pm2_env: { status: string; pm_cwd: string; pm_exec_path: string; TRADEWARDEN_CONFIG?: string } }[];
      const app = apps.find((a) => a.name === 'tradewarden');
      assert.ok(app, `the controller is in PM2's list: ${list.stdout}`);
      assert.equal(apps.find((a) => a.name === 'trading-bot')?.pm2_env.status, 'stopped', 'the trader stopped above is left stopped: the file declares the controller only');
      assert.equal(app!.pm2_env.pm_exec_path, path.join(pkg, 'bin', 'controller.js'), 'the controller through the package\'s bin');
      assert.equal(app!.pm2_env.pm_cwd, bot);
      assert.equal(app!.pm2_env.TRADEWARDEN_CONFIG, bot, 'kept in the app\'s environment: `pm2 save` and a resurrection keep the folder');
      await waitFor(async () => (await npx('health')).code === 0, { timeoutMs: 15_000, intervalMs: 250, what: 'the controller under PM2 to be healthy' });
      const start = await npx('start');
      assert.equal(start.code, 0, `start beside the PM2 controller: ${start.stdout}${start.stderr}`);
      const stop = await npx('stop');
      assert.equal(stop.code, 0, `stop: ${stop.stdout}${stop.stderr}`);
    });

    await t.test('npx tradewarden demo runs from the package; its files go to .demo in the bot\'s folder', async () => {
      const demo = await run('npx', ['tradewarden', 'demo', '--exit-after', '1'], bot, env);
      assert.equal(demo.code, 0, `demo: ${demo.stdout}${demo.stderr}`);
      assert.match(demo.stdout, /Demo stopped/);
      assert.ok(fs.existsSync(path.join(bot, '.demo', 'data')), 'the demo\'s files are in the folder it was run from');
    });

    await t.test('the installed renderer draws a chart with the charts\' own font, found in the bot\'s node_modules', async () => {
      assert.ok(fs.existsSync(path.join(bot, 'node_modules', '@fontsource', 'inter', 'files', 'inter-latin-400-normal.woff2')), 'the font package is installed beside tradewarden, as a dependency');
      // The renderer process as the installed controller forks it (no --import tsx from this test's
      // own command line); a font it cannot find fails the chart.
      const renderer = fork(path.join(pkg, 'dist', 'controller', 'chart-process.js'), [], { cwd: bot, env, execArgv: [], stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'json' });
      let stderr = '';
      renderer.stderr!.on('data', (chunk: Buffer) => (stderr += chunk));
      try {
        const end = Date.parse('2026-01-05T15:00:00Z');
        const points = Array.from({ length: 10 }, (_, i) => ({ at: end - (9 - i) * 86_400_000, equity: 100_000 + i * 100 }));
        const answered = new Promise<{ ok: boolean; png?: string; error?: string }>((resolve, reject) => {
          renderer.once('message', resolve);
          renderer.once('exit', (code, signal) => reject(new Error(`the renderer exited (${signal ?? code}) without an answer: ${stderr}`)));
        });
        renderer.send({ id: 1, kind: 'equity', input: { points, baseValue: 100_000, title: 'Equity, last week' } });
        const answer = await answered;
        assert.equal(answer.ok, true, `the chart is drawn: ${answer.error}`);
        assert.deepEqual([...Buffer.from(answer.png!, 'base64').subarray(1, 4)], [0x50, 0x4e, 0x47], 'a PNG');
      } finally {
        if (renderer.connected) renderer.disconnect();
      }
    });

    await t.test('nothing was written inside the installed package', () => {
      assert.deepEqual(filesUnder(pkg), installed, 'node_modules/tradewarden is as npm installed it (npm update would wipe anything there)');
    });
  } finally {
    if (controller?.pid && controller.exitCode === null) await killPid(controller.pid, 'SIGKILL');
    await home.cleanup();
    await paper.close();
  }
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
