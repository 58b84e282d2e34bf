// `tradewarden status --json` as a whole process against `pm2 jlist` on the same PM2_HOME (targets:
// ≤ 1× without a controller, ≤ 0.5× with one running). A private PM2 daemon runs a heartbeat trader
// that `tradewarden start` put there; the two commands run alternately (so load on the machine hits
// both alike), CLI_RUNS (15) times each per case, and the medians and their ratio are printed.
// The CLI runs as installed: bin/tradewarden.cjs on a fresh dist/cli.cjs bundle (built here first).
// When NODE_EXTRA_CA_CERTS is set (it is on some build machines), Node reads that certificate file
// at every start, ~50 ms before any code runs, in both commands; each case is then measured again
// without it, for both, so the figure for a machine without it is known too.
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { copyTrader, killPid, makeTempHome } from '../testkit/pm2-home.ts';
import { report, summarize } from './stats.ts';
import { cleanUp, cleanups } from './cleanup.ts';
import { controllerArgs } from './controller-process.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const RUNS = Number(process.env.CLI_RUNS ?? 15);
const PM2_BIN = path.join(ROOT, 'node_modules/pm2/bin/pm2');

function timed(args: string[], env: NodeJS.ProcessEnv): Promise<{ ms: number; code: number | null; output: string }> {
  return new Promise((resolve) => {
    const began = performance.now();
    const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.on('exit', (code) => resolve({ ms: performance.now() - began, code, output }));
  });
}

async function compare(label: string, env: NodeJS.ProcessEnv): Promise<void> {
  const cli: number[] = [];
  const pm2: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const status = await timed(['bin/tradewarden.cjs', 'status', '--json'], env);
    if (status.code !== 0) throw new Error(`tradewarden status exited ${status.code}: ${status.output}`);
    cli.push(status.ms);
    const jlist = await timed([PM2_BIN, 'jlist'], env);
    if (jlist.code !== 0) throw new Error(`pm2 jlist exited ${jlist.code}: ${jlist.output}`);
    pm2.push(jlist.ms);
  }
  const target = label.includes('with a controller') ? '≤ 0.5×' : '≤ 1×';
  report(`tradewarden status --json (${label})`, 'ms', cli, `${target} pm2 jlist`);
  report(`pm2 jlist (${label})`, 'ms', pm2, 'anchor');
  const ratio = summarize(cli).median / summarize(pm2).median;
  console.log(`${`ratio of medians (${label})`.padEnd(44)} ${ratio.toFixed(2)}×   target ${target}`);
}

try {
  const build = spawnSync(process.execPath, ['scripts/build.js'], { cwd: ROOT, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`the build failed: ${build.stdout}${build.stderr}`);

  const home = makeTempHome('tw-bcli-');
  cleanups.push(() => home.cleanup()); // ends this home's PM2 daemon and the trader under it, by PID
  const trader = copyTrader(path.join(ROOT, 'examples/heartbeat-trader.js'), path.join(home.root, 'bot'));
  // Our environment minus the configuration contract, then the bench's (no broker, no Discord).
  const env: NodeJS.ProcessEnv = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !/^(DISCORD_|APCA_|TRADING_|MAX_TRADES|ON_RUNAWAY|TRADE_POLL|DUPLICATE_SCAN|DATA_DIR|PM2_HOME|STATUS_MESSAGE|LOG_LEVEL)/.test(name)),
  );
  Object.assign(env, { DISCORD_TOKEN: '', PM2_HOME: home.pm2Home, DATA_DIR: home.dataDir, TRADING_SCRIPT: trader, HOME: home.root });

  const start = await timed(['bin/tradewarden.cjs', 'start'], env);
  if (start.code !== 0) throw new Error(`tradewarden start exited ${start.code}: ${start.output}`);
  await timed(['bin/tradewarden.cjs', 'status', '--json'], env); // first run: file-system caches, not the CLI
  const { NODE_EXTRA_CA_CERTS: extraCerts, ...envWithoutCerts } = env;
  await compare('no controller', env);
  if (extraCerts) await compare('no controller, without NODE_EXTRA_CA_CERTS', envWithoutCerts);

  const controller = spawn(process.execPath, controllerArgs(), { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  cleanups.push(async () => {
    if (controller.pid) await killPid(controller.pid, 'SIGINT', 10_000);
  });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the controller did not start in 30 s:\n${log}`)), 30_000);
    const look = (chunk: Buffer) => {
      log += chunk.toString();
      if (/tradewarden controller watching/.test(log)) {
        clearTimeout(timer);
        resolve();
      }
    };
    controller.stdout.on('data', look);
    controller.stderr.on('data', look);
    controller.once('exit', (code) => reject(new Error(`the controller exited (${code}):\n${log}`)));
  });
  await compare('with a controller running', env);
  if (extraCerts) await compare('with a controller running, without NODE_EXTRA_CA_CERTS', envWithoutCerts);
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
} finally {
  await cleanUp();
}
