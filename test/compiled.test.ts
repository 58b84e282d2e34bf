// The CLI and the controller as scripts/build.js builds them (`npm pack`, `npm install` in a clone):
// one bundled CommonJS file for the CLI, ES modules in controller/ for the controller, not the
// sources through tsx. A path computed from the module's own location is right in src/ and wrong
// from dist/ (relative TRADING_SCRIPT once resolved against dist/; import.meta inside a CommonJS
// bundle; the command modules and the chart renderer's process found beside the code): only running
// the build shows it. The package as installed from its tarball: test/package.test.ts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { pathToFileURL } from 'node:url';
import { commandDefinitions, loadCommands } from '../src/discord/commands.ts';
import { startDiscordStandIn } from '../testkit/discord/discord.ts';
import { startPaperBroker } from '../testkit/paper-broker.ts';
import { copyTrader, godDaemonsFor, isAlive, killDaemon, killPid, makeTempHome, waitFor } from '../testkit/pm2-home.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
// Inside the project (the compiled code finds package.json by walking up), apart from dist/, which
// other test files may be running at the same time.
const OUT = path.join(ROOT, '.test-build', String(process.pid));
let work: string;

before(() => {
  execFileSync(process.execPath, [path.join(ROOT, 'scripts/build.js'), '--outdir', OUT], { cwd: ROOT, stdio: 'pipe' });
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-compiled-'));
});

after(async () => {
  fs.rmSync(OUT, { recursive: true, force: true });
  if (fs.readdirSync(path.dirname(OUT)).length === 0) fs.rmSync(path.dirname(OUT), { recursive: true, force: true });
  if (!work) return;
  // `status` read PM2's list, which starts the daemon of the CLI's PM2_HOME: end it before its folder goes.
  const pm2Home = path.join(work, 'pm2');
  await killDaemon(pm2Home);
  for (const pid of godDaemonsFor(pm2Home)) await killPid(pid);
  fs.rmSync(work, { recursive: true, force: true });
});

function compiledCli(args: string[], env: Record<string, string>) {
  // Run from elsewhere, as an operator would from the bot's folder: that is the configuration
  // folder (no .env of ours is read; relative paths are taken from there).
  return spawnSync(process.execPath, [path.join(OUT, 'cli.cjs'), ...args], {
    cwd: work,
    env: { PATH: process.env.PATH ?? '', HOME: work, DATA_DIR: path.join(work, 'data'), PM2_HOME: path.join(work, 'pm2'), ...env },
    encoding: 'utf8',
  });
}

test('bundled CLI: a relative TRADING_SCRIPT is taken from the configuration folder (the working directory), as ecosystem.config.js does', () => {
  copyTrader(path.join(ROOT, 'examples/heartbeat-trader.js'), path.join(work, 'bots'), 'main_bot.js');
  const run = compiledCli(['audit', '--json'], { TRADING_SCRIPT: 'bots/main_bot.js' });
  assert.equal(run.status, 0, `exit 0, not a configuration error: ${run.stderr}`);
  assert.deepEqual(JSON.parse(run.stdout), [], 'an empty audit log from a fresh DATA_DIR');
});

test('bundled CLI: a TRADING_SCRIPT that does not exist names the variable and where it looked', () => {
  const run = compiledCli(['audit'], { TRADING_SCRIPT: 'examples/no-such-trader.js' });
  assert.equal(run.status, 2, 'a configuration error is a usage error');
  assert.match(run.stderr, new RegExp(`TRADING_SCRIPT is "examples/no-such-trader.js": no such file \\(looked for ${path.join(work, 'examples/no-such-trader.js').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\)`));
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

/**
 * A project of its own for a launcher in bin/: the launcher and the freshness check copied, our
 * node_modules (for tsx), and stand-in files (built and source entry points that say which one ran).
 */
function launcherProject(launcher: string, files: Record<string, string>): string {
  const project = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-launcher-'));
  fs.mkdirSync(path.join(project, 'bin'));
  for (const file of [launcher, 'fresh-build.cjs']) fs.copyFileSync(path.join(ROOT, 'bin', file), path.join(project, 'bin', file));
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(project, 'node_modules'));
  for (const [file, content] of Object.entries({ 'package.json': '{"type":"module"}', ...files })) {
    fs.mkdirSync(path.dirname(path.join(project, file)), { recursive: true });
    fs.writeFileSync(path.join(project, file), content);
  }
  return project;
}

test('bin/tradewarden.cjs runs the bundle only while none of its sources is newer or gone; otherwise the sources through tsx', () => {
  const project = launcherProject('tradewarden.cjs', {
    'src/cli/main.ts': "export function main(): void { console.log('sources'); }\n",
    'src/cli/part.ts': 'export const part: number = 1;\n',
    'dist/cli.cjs': "exports.main = () => console.log('bundle');\n",
  });
  try {
    const past = new Date(Date.now() - 60_000);
    for (const file of ['src/cli/main.ts', 'src/cli/part.ts']) fs.utimesSync(path.join(project, file), past, past);
    const stamp = (content: string) => fs.writeFileSync(path.join(project, 'dist/BUILT'), content);
    const ran = () => execFileSync(process.execPath, [path.join(project, 'bin/tradewarden.cjs')], { encoding: 'utf8' }).trim();

    stamp(JSON.stringify({ builtAt: new Date().toISOString(), cli: ['src/cli/main.ts', 'src/cli/part.ts'] }));
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

    stamp(JSON.stringify({ builtAt: new Date().toISOString(), cli: ['src/cli/main.ts', 'src/cli/part.ts'] }));
    fs.rmSync(path.join(project, 'src'), { recursive: true });
    assert.equal(ran(), 'bundle', 'no src/ at all (the package as installed: its files are the build): the bundle, whatever the times');
    fs.rmSync(path.join(project, 'dist'), { recursive: true });
    const neither = spawnSync(process.execPath, [path.join(project, 'bin/tradewarden.cjs')], { encoding: 'utf8' });
    assert.equal(neither.status, 1, 'neither a build nor the sources: a failure');
    assert.match(neither.stderr, /has no build \(dist\/\) and no sources \(src\/\) to run: reinstall the package/, 'saying what to do, not tsx\'s "cannot find module"');
  } finally {
    fs.rmSync(project, { recursive: true, force: true });
  }
});

test('bin/controller.js runs the built controller only while its sources and the commands folder are older than the build', () => {
  const project = launcherProject('controller.js', {
    'src/main.ts': "const from: string = 'sources';\nconsole.log(from);\n",
    'commands/bot.ts': 'export {};\n',
    'dist/controller/main.js': "console.log('built');\n",
    'dist/BUILT': JSON.stringify({ builtAt: new Date().toISOString(), controller: ['src/main.ts', 'commands/bot.ts', 'commands'] }),
  });
  try {
    const at = (file: string, secondsAgo: number) => fs.utimesSync(path.join(project, file), new Date(), new Date(Date.now() - secondsAgo * 1000));
    for (const file of ['src/main.ts', 'commands/bot.ts', 'commands']) at(file, 60);
    at('dist/BUILT', 30);
    const ran = () => execFileSync(process.execPath, [path.join(project, 'bin/controller.js')], { encoding: 'utf8' }).trim();

    assert.equal(ran(), 'built', 'a fresh build runs');
    fs.writeFileSync(path.join(project, 'commands/extra.ts'), 'export {};\n');
    assert.equal(ran(), 'sources', 'a command module added since the build: the sources, which load it');
    fs.rmSync(path.join(project, 'commands/extra.ts'));
    at('commands', 60);
    assert.equal(ran(), 'built', 'back to fresh');
    at('src/main.ts', 0);
    assert.equal(ran(), 'sources', 'an edited source is run, not the stale build');
  } finally {
    fs.rmSync(project, { recursive: true, force: true });
  }
});

test('the built controller: deploys the same commands as the sources, draws a /pnl chart without tsx, stops on SIGINT', async () => {
  const home = makeTempHome('tw-built-ctl-');
  const applicationId = '1100000000000000007';
  const guildId = '1200000000000000007';
  const channelId = '1300000000000000007';
  const keyId = 'PKBUILTKEY0123456789';
  const secretKey = 'SKBUILTSECRETabcdefghijklmnopqrstuvwxyz01';
  const paper = await startPaperBroker({ keyId, secretKey, cash: 1_000_000 });
  const discord = await startDiscordStandIn({
    applicationId,
    guilds: [{ id: guildId, name: 'Desk', channels: [{ id: channelId, name: 'ops' }] }],
    heartbeatIntervalMs: 500,
    waitTimeoutMs: 20_000,
  });
  const controller = spawn(process.execPath, [path.join(OUT, 'controller/main.js')], {
    cwd: work,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: home.root,
      PM2_HOME: home.pm2Home,
      DATA_DIR: home.dataDir,
      DISCORD_TOKEN: discord.token,
      DISCORD_API_URL: discord.apiUrl,
      DISCORD_CLIENT_ID: applicationId,
      DISCORD_GUILD_ID: guildId,
      DISCORD_ALERT_CHANNEL_ID: channelId,
      APCA_API_KEY_ID: keyId,
      APCA_API_SECRET_KEY: secretKey,
      APCA_API_BASE_URL: paper.url,
      TRADING_SCRIPT: copyTrader(path.join(ROOT, 'examples/heartbeat-trader.js'), path.join(home.root, 'bot')),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  controller.stdout.on('data', (chunk: Buffer) => (output += chunk));
  controller.stderr.on('data', (chunk: Buffer) => (output += chunk));
  try {
    await waitFor(() => output.includes('controller watching'), { timeoutMs: 30_000, what: `the built controller to start; its output:\n${output}` });
    const put = await discord.waitForRequest((r) => r.method === 'PUT' && r.path === `/applications/${applicationId}/guilds/${guildId}/commands`);
    assert.deepEqual(put.body, JSON.parse(JSON.stringify(commandDefinitions(await loadCommands()))), 'the built commands/ are the sources\' commands');

    const now = Date.now();
    paper.seedHistory([
      { at: now - 20 * 86_400_000, equity: 990_000 },
      { at: now - 10 * 86_400_000, equity: 1_010_000 },
    ]);
    const pnl = await discord.slashCommand({ channelId, user: { id: '1500000000000000007', username: 'viewer' }, roles: [], name: 'pnl', options: [] });
    const reply = await pnl.response();
    assert.equal(reply.embeds[0]?.title, 'P/L, last month');
    const [chart] = reply.message.files;
    assert.equal(chart?.name, 'pnl.png', `the chart is attached (files: ${reply.message.files.map((f) => f.name).join(', ') || 'none'}; output:\n${output})`);
    assert.deepEqual([...chart.data.subarray(1, 4)], [0x50, 0x4e, 0x47], 'a PNG');

    controller.kill('SIGINT');
    const [code] = await once(controller, 'exit');
    assert.equal(code, 0, `exit 0 on SIGINT; output:\n${output}`);
  } finally {
    if (controller.exitCode === null && controller.signalCode === null) controller.kill('SIGKILL');
    await discord.close();
    await paper.close();
    await home.cleanup();
  }
});

test('bundled CLI with BROKER=ccxt: ccxt stays out of cli.cjs; status and audit never load it, account loads it (the exchange\'s own module) from node_modules and reads the exchange', async () => {
  const bundle = fs.readFileSync(path.join(OUT, 'cli.cjs'), 'utf8');
  assert.doesNotMatch(bundle, /class kraken extends|EAPI:Invalid key/, 'none of ccxt\'s code is bundled');
  const { startKrakenStandIn } = await import('../testkit/kraken-exchange.ts');
  const secret = Buffer.from('compiled-secret').toString('base64');
  const kraken = await startKrakenStandIn({ apiKey: 'compiled-key', secret, balances: { USD: 1234.5 } });
  // Every file of ccxt the CLI loads, written down as it is asked for: required (CommonJS) or imported (ES modules).
  const loads = path.join(work, 'loads.txt');
  const preload = path.join(work, 'record-loads.cjs');
  const hooks = path.join(work, 'record-imports.mjs');
  fs.writeFileSync(hooks, `import fs from 'node:fs'; export async function resolve(specifier, context, next) { const resolved = await next(specifier, context); if (resolved.url.includes('/node_modules/ccxt/')) fs.appendFileSync(${JSON.stringify(loads)}, resolved.url + '\\n'); return resolved; }`);
  fs.writeFileSync(
    preload,
    `const Module = require('node:module'); const fs = require('node:fs'); Module.register(${JSON.stringify(pathToFileURL(hooks).href)}); ` +
      `const load = Module._load; Module._load = function (request, ...rest) { if (request === 'ccxt' || request.includes('/node_modules/ccxt/')) fs.appendFileSync(${JSON.stringify(loads)}, request + '\\n'); return load.call(this, request, ...rest); };`,
  );
  const env = { BROKER: 'ccxt', CCXT_EXCHANGE: 'kraken', CCXT_API_KEY: 'compiled-key', CCXT_SECRET: secret, CCXT_OPTIONS: kraken.ccxtOptions, NODE_OPTIONS: `--require ${preload}` };
  try {
    for (const verb of ['status', 'audit']) {
      fs.rmSync(loads, { force: true });
      const run = compiledCli([verb, '--json'], env);
      assert.equal(run.status, 0, `${verb}: ${run.stderr}`);
      const loaded = fs.existsSync(loads) ? fs.readFileSync(loads, 'utf8').trim() : '';
      assert.equal(loaded, '', `tradewarden ${verb} does not load ccxt`);
    }
    fs.rmSync(loads, { force: true });
    const account = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      // Asynchronous: the stand-in answers from this process.
      const child = spawn(process.execPath, [path.join(OUT, 'cli.cjs'), 'account', '--json'], { cwd: work, env: { PATH: process.env.PATH ?? '', HOME: work, DATA_DIR: path.join(work, 'data'), PM2_HOME: path.join(work, 'pm2'), ...env } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d));
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    assert.equal(account.code, 0, `account: ${account.stderr}`);
    assert.equal((JSON.parse(account.stdout) as { account: { equity: number; currency: string } }).account.equity, 1234.5, account.stdout);
    const loaded = fs.readFileSync(loads, 'utf8');
    assert.match(loaded, /node_modules\/ccxt\/js\/src\/kraken\.js/, 'account loads ccxt\'s kraken module');
    assert.doesNotMatch(loaded, /node_modules\/ccxt\/js\/src\/binance\.js/, 'and not every exchange ccxt has');
  } finally {
    await kraken.close();
  }
});
