// One place for the configuration (issue 29): the folder that holds .env — the working directory,
// or the one TRADEWARDEN_CONFIG / --config DIR names — and every relative path taken from it, by
// the configuration's checks (src/config.ts), by ecosystem.config.js (what PM2 and the supervisor
// start) and by the CLI; the PM2 process file `tradewarden ecosystem` writes for a folder. In-process
// and quick; the package installed beside a bot, end to end: test/package.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ConfigError, loadConfig, parseConfig } from '../src/config.ts';
import { configFolder } from '../src/config-folder.ts';
import { ECOSYSTEM_FILE, writeEcosystemFile } from '../src/ecosystem-file.ts';
import { OperationError } from '../src/errors.ts';
import { runCli } from '../src/cli/main.ts';
import { runInit } from '../src/doctor/init.ts';
import { Readable } from 'node:stream';
import { takeConfigOption } from '../src/cli/package-verbs.ts';
import { scratchDir } from '../testkit/scratch.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
// Plain JS, no declarations: imported by name.
const ecosystemModule = '../ecosystem.config.js';
const { tradingApp, controllerApp } = (await import(ecosystemModule)) as {
  tradingApp(env: Record<string, string>): { script: string; cwd: string; out_file: string };
  controllerApp(env: Record<string, string>): { script: string; cwd: string; out_file: string; env: Record<string, string> };
};

/** A bot's folder: main_bot.py beside it, and bots/other.py one level down. */
function botFolder(): string {
  const folder = scratchDir('tw-config-folder-');
  fs.writeFileSync(path.join(folder, 'main_bot.py'), 'print("bot")\n');
  fs.mkdirSync(path.join(folder, 'bots'));
  fs.writeFileSync(path.join(folder, 'bots', 'other.py'), 'print("other")\n');
  return folder;
}

function problemsOf(env: Record<string, string>): string[] {
  try {
    parseConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  return [];
}

test('the configuration folder is TRADEWARDEN_CONFIG (relative to the working directory), else the working directory', () => {
  assert.equal(configFolder({}), process.cwd());
  assert.equal(configFolder({ TRADEWARDEN_CONFIG: '  ' }), process.cwd(), 'blank is unset');
  assert.equal(configFolder({ TRADEWARDEN_CONFIG: '/srv/bot' }), '/srv/bot');
  assert.equal(configFolder({ TRADEWARDEN_CONFIG: 'bot' }), path.join(process.cwd(), 'bot'));
});

test('every relative path is taken from the configuration folder: TRADING_SCRIPT, TRADING_CWD, DATA_DIR (default ./data there), PM2_HOME', () => {
  const folder = botFolder();
  const config = parseConfig({ TRADEWARDEN_CONFIG: folder, TRADING_SCRIPT: 'main_bot.py', PM2_HOME: 'pm2' });
  assert.equal(config.dataDir, path.join(folder, 'data'), 'the default DATA_DIR lives in the configuration folder');
  assert.equal(config.pm2Home, path.join(folder, 'pm2'));
  assert.equal(parseConfig({ TRADEWARDEN_CONFIG: folder, DATA_DIR: 'state' }).dataDir, path.join(folder, 'state'));
  assert.deepEqual(problemsOf({ TRADEWARDEN_CONFIG: folder, TRADING_CWD: 'bots', TRADING_SCRIPT: 'other.py' }), [], 'the script relative to TRADING_CWD, itself relative to the folder');
});

test('a wrong relative path names the variable, the file it looked for and the folder it is relative to', () => {
  const folder = botFolder();
  const [script] = problemsOf({ TRADEWARDEN_CONFIG: folder, TRADING_SCRIPT: 'missing_bot.py' });
  assert.equal(
    script,
    `TRADING_SCRIPT is "missing_bot.py": no such file (looked for ${path.join(folder, 'missing_bot.py')}); give the trader's script, absolute or relative to the configuration folder ${folder} (TRADEWARDEN_CONFIG or --config)`,
  );
  const [cwd] = problemsOf({ TRADEWARDEN_CONFIG: folder, TRADING_CWD: 'nowhere' });
  assert.match(cwd!, new RegExp(`^TRADING_CWD is "nowhere": no such folder \\(looked for ${escape(path.join(folder, 'nowhere'))}\\).*relative to the configuration folder ${escape(folder)}`));
  const [underCwd] = problemsOf({ TRADEWARDEN_CONFIG: folder, TRADING_CWD: 'bots', TRADING_SCRIPT: 'main_bot.py' });
  assert.match(underCwd!, new RegExp(`looked for ${escape(path.join(folder, 'bots', 'main_bot.py'))}\\); .*relative to TRADING_CWD \\(${escape(path.join(folder, 'bots'))}\\)`));
  const [named] = problemsOf({ TRADEWARDEN_CONFIG: path.join(folder, 'gone') });
  assert.equal(named, `TRADEWARDEN_CONFIG is "${path.join(folder, 'gone')}": no such folder (looked for ${path.join(folder, 'gone')}); name the folder that holds .env, or leave it unset to use the working directory`);
});

test('loadConfig reads the .env of the configuration folder, not of the working directory', () => {
  const folder = botFolder();
  fs.writeFileSync(path.join(folder, '.env'), 'MAX_TRADES_PER_HOUR=7\nTRADING_SCRIPT=main_bot.py\n');
  const config = loadConfig({ TRADEWARDEN_CONFIG: folder });
  assert.equal(config.maxTradesPerHour, 7, 'the folder\'s .env was read');
  assert.equal(config.dataDir, path.join(folder, 'data'));
});

test('ecosystem.config.js takes the same folder: the trader as .env says, the controller from the package with the folder kept for PM2', () => {
  const folder = botFolder();
  const trader = tradingApp({ TRADEWARDEN_CONFIG: folder, TRADING_SCRIPT: 'main_bot.py' });
  assert.equal(trader.script, path.join(folder, 'main_bot.py'));
  assert.equal(trader.cwd, folder, 'by default the script\'s own folder');
  assert.equal(trader.out_file, path.join(folder, 'data', 'logs', 'trading-bot.out.log'));
  const underCwd = tradingApp({ TRADEWARDEN_CONFIG: folder, TRADING_CWD: 'bots', TRADING_SCRIPT: 'other.py', DATA_DIR: 'state' });
  assert.deepEqual([underCwd.script, underCwd.cwd, underCwd.out_file], [path.join(folder, 'bots', 'other.py'), path.join(folder, 'bots'), path.join(folder, 'state', 'logs', 'trading-bot.out.log')]);
  assert.equal(tradingApp({ TRADEWARDEN_CONFIG: folder }).script, path.join(ROOT, 'examples', 'heartbeat-trader.js'), 'unset: the package\'s heartbeat trader');

  const controller = controllerApp({ TRADEWARDEN_CONFIG: folder });
  assert.equal(controller.script, path.join(ROOT, 'bin', 'controller.js'), 'the package\'s launcher');
  assert.equal(controller.cwd, folder);
  assert.deepEqual(controller.env, { TRADEWARDEN_CONFIG: folder }, 'in the app\'s own environment, which `pm2 save` keeps');
  assert.equal(controller.out_file, path.join(folder, 'data', 'logs', 'tradewarden.out.log'));
});

test('--config DIR, before or after the verb, names the folder for the CLI and everything it starts; a missing folder is a usage problem', () => {
  const folder = botFolder();
  const env: NodeJS.ProcessEnv = {};
  assert.deepEqual(takeConfigOption(['--config', folder, 'status', '--json'], env), { argv: ['status', '--json'] });
  assert.equal(env.TRADEWARDEN_CONFIG, folder);
  const relative = path.relative(process.cwd(), path.join(folder, 'bots'));
  assert.deepEqual(takeConfigOption(['status', `--config=${relative}`], env), { argv: ['status'] });
  assert.equal(env.TRADEWARDEN_CONFIG, path.join(folder, 'bots'), 'made absolute: a child process may run elsewhere');
  assert.deepEqual(takeConfigOption(['status', '--config'], env), { problem: '--config needs a folder: the one that holds .env, e.g. --config ~/bot' });
  assert.deepEqual(takeConfigOption(['--config', path.join(folder, 'gone'), 'status'], env), {
    problem: `--config ${path.join(folder, 'gone')}: no such folder (looked for ${path.join(folder, 'gone')}); name the folder that holds .env`,
  });
  assert.deepEqual(takeConfigOption(['stop-duplicates', '--', '--config'], {}), { argv: ['stop-duplicates', '--', '--config'] }, 'after --, a word is a word');
});

test('tradewarden ecosystem writes a PM2 file that fixes its own folder, whichever folder PM2 is run from; an existing one is refused', () => {
  const folder = botFolder();
  const file = writeEcosystemFile(folder);
  assert.equal(file, path.join(folder, ECOSYSTEM_FILE));
  // Evaluated as PM2 evaluates it (require), from another working directory.
  const evaluated = spawnSync(process.execPath, ['-e', 'process.stdout.write(JSON.stringify(require(process.argv[1]).apps))', file], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '' },
    encoding: 'utf8',
  });
  assert.equal(evaluated.status, 0, `the file loads: ${evaluated.stderr}`);
  const apps = JSON.parse(evaluated.stdout) as { name: string; cwd: string; script: string; env: Record<string, string> }[];
  assert.deepEqual(
    apps.map((app) => [app.name, app.cwd, app.script, app.env.TRADEWARDEN_CONFIG]),
    [['tradewarden', folder, path.join(ROOT, 'bin', 'controller.js'), folder]],
    'the controller only, of this folder (a folder that does not resolve the package by name gets its path)',
  );
  assert.throws(() => writeEcosystemFile(folder), (error: unknown) => error instanceof OperationError && error.kind === 'refused' && /exists: nothing was written\. Add --force/.test(error.message));
  fs.writeFileSync(file, '// edited\n');
  writeEcosystemFile(folder, { force: true });
  assert.match(fs.readFileSync(file, 'utf8'), /controllerApp/, '--force replaces it');
});

test('tradewarden init writes the PM2 file beside the .env it writes, and keeps one already there', async () => {
  const folder = botFolder();
  const said: string[] = [];
  // Every question skipped (an empty line each): .env with nothing set, then doctor on it.
  const init = (answers: string) =>
    runInit({
      dir: folder,
      env: { PATH: process.env.PATH ?? '', HOME: folder, PM2_HOME: path.join(folder, 'pm2') },
      io: { input: Readable.from([answers]), say: (line) => said.push(line), prompt: () => {}, out: () => {} },
    });
  await init('\n'.repeat(10));
  assert.ok(fs.existsSync(path.join(folder, '.env')), `.env written:\n${said.join('\n')}`);
  assert.match(fs.readFileSync(path.join(folder, ECOSYSTEM_FILE), 'utf8'), /controllerApp\(\)/, 'the PM2 file beside it');
  assert.ok(said.some((line) => line.includes(`Wrote ${path.join(folder, ECOSYSTEM_FILE)}: \`npx pm2 start ${ECOSYSTEM_FILE}`)), said.join('\n'));
  fs.writeFileSync(path.join(folder, ECOSYSTEM_FILE), '// mine\n');
  await init('y\n' + '\n'.repeat(10)); // replace .env: yes
  assert.equal(fs.readFileSync(path.join(folder, ECOSYSTEM_FILE), 'utf8'), '// mine\n', 'an existing PM2 file is kept');
  assert.ok(said.some((line) => line.includes(`Kept the ${ECOSYSTEM_FILE} already in ${folder}`)), said.join('\n'));
});

test('the CLI: --config, and the verbs that run tradewarden itself, in --help and strict', async () => {
  const out: string[] = [];
  const err: string[] = [];
  const io = { out: (s: string) => out.push(s), err: (s: string) => err.push(s) };
  assert.equal(await runCli(['--help'], io), 0);
  const help = out.join('\n');
  for (const line of ['controller  ', 'ecosystem [--force]', 'demo [options]', '--config DIR']) assert.ok(help.includes(line), `--help lists ${line.trim()}:\n${help}`);
  assert.equal(await runCli(['controller', '--help'], io), 0);
  assert.match(out.at(-1)!, /^Usage: tradewarden controller\n/);
  assert.equal(await runCli(['controller', '--force'], io), 2, 'controller takes no options');
  assert.match(err.at(-1)!, /^controller: Unknown option '--force'/);
  assert.equal(await runCli(['controler'], io), 2);
  assert.match(err.at(-1)!, /Did you mean "controller"\?/);

  const before = process.env.TRADEWARDEN_CONFIG;
  const folder = botFolder();
  try {
    assert.equal(await runCli(['--config', path.join(folder, 'gone'), 'status'], io), 2);
    assert.match(err.at(-1)!, /^--config .*gone: no such folder/);
    assert.equal(await runCli(['ecosystem', '--config', folder], io), 0, err.at(-1));
    assert.ok(fs.existsSync(path.join(folder, ECOSYSTEM_FILE)), 'written into the folder --config named');
    assert.match(out.at(-1)!, /no \.env there yet: copy .*\.env\.example/, 'it says what the folder still lacks');
    assert.equal(await runCli(['ecosystem', '--config', folder], io), 3, 'refused: it exists');
  } finally {
    if (before === undefined) delete process.env.TRADEWARDEN_CONFIG;
    else process.env.TRADEWARDEN_CONFIG = before;
  }
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
