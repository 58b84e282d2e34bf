// The idle controller's footprint (targets < 150 MB RSS, < 1 % CPU): the real controller process as
// `npm start` runs it (bin/controller.js, the built controller; BENCH_CONTROLLER=sources for
// `node --import tsx src/main.ts`), no Discord, default 10 s cadences, watching a heartbeat trader
// that `tradewarden start` put under a private PM2 daemon, its broker a paper broker in this process.
// After IDLE_SETTLE_SECONDS (5) it samples /proc/PID/stat (utime+stime) and /proc/PID/status (VmRSS)
// once a second for IDLE_SECONDS (60). The PM2 daemon's RSS is reported for context.
// IDLE_WITH_CHARTS=1: the controller first draws one chart of each kind (bench/preload/, TypeScript:
// this one runs from the sources), so the figures are those of a controller that has drawn charts.
import path from 'node:path';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { clockTicksPerSecond } from '../src/os/process-table.ts';
import { startPaperBroker } from '../testkit/paper-broker.ts';
import { copyTrader, daemonPid, isAlive, killPid, makeTempHome } from '../testkit/pm2-home.ts';
import { report } from './stats.ts';
import { cleanUp, cleanups } from './cleanup.ts';
import { controllerArgs, controllerKind } from './controller-process.ts';
import { figure, readProc, run, started } from './proc.ts';

const WINDOW_SECONDS = seconds('IDLE_SECONDS', 60);
const SETTLE_SECONDS = seconds('IDLE_SETTLE_SECONDS', 5);
const KEY_ID = 'PKBENCHIDLE';
const SECRET = 'SKBENCHIDLE';
/** Clock ticks per second of /proc/PID/stat times (USER_HZ), as src/os reads it for start times. */
const TICKS_PER_SECOND = await clockTicksPerSecond();
const ROOT = path.resolve(import.meta.dirname, '..');
const WITH_CHARTS = process.env.IDLE_WITH_CHARTS === '1';


let output = ''; // the controller's log, shown if something goes wrong
let failed = false;
try {
  const home = makeTempHome('tw-bidle-');
  cleanups.push(() => home.cleanup()); // ends this home's PM2 daemon and the trader under it, by PID
  const paper = await startPaperBroker({ keyId: KEY_ID, secretKey: SECRET, prices: { 'BTC/USD': 50_000 } });
  cleanups.push(() => paper.close());
  const trader = copyTrader(path.join(ROOT, 'examples/heartbeat-trader.js'), path.join(home.root, 'bot'));

  // Our own environment minus every variable of the configuration contract, then the bench's.
  const env: NodeJS.ProcessEnv = Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) => !/^(DISCORD_|APCA_|TRADING_|MAX_TRADES|ON_RUNAWAY|TRADE_POLL|DUPLICATE_SCAN|DATA_DIR|PM2_HOME|STATUS_MESSAGE|LOG_LEVEL)/.test(name),
    ),
  );
  Object.assign(env, {
    DISCORD_TOKEN: '', // set-but-empty: a .env cannot bring Discord in (dotenv never overrides)
    APCA_API_BASE_URL: paper.url,
    APCA_API_KEY_ID: KEY_ID,
    APCA_API_SECRET_KEY: SECRET,
    PM2_HOME: home.pm2Home,
    DATA_DIR: home.dataDir,
    TRADING_SCRIPT: trader,
  });

  const kind = WITH_CHARTS ? 'sources' : controllerKind();
  const args = controllerArgs(kind, WITH_CHARTS ? ['--import', './bench/preload/charts-loaded.ts'] : []);
  console.log(`controller: ${kind === 'built' ? 'built (bin/controller.js → dist/controller/main.js)' : 'sources through tsx (src/main.ts)'}`);
  const controller = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  cleanups.push(async () => {
    if (controller.pid) await killPid(controller.pid, 'SIGINT', 10_000); // graceful, SIGKILL if it hangs
  });
  controller.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  controller.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await started(controller, /tradewarden controller watching/, 30_000);
  const pid = controller.pid!;

  const cli = await run(process.execPath, ['bin/tradewarden.cjs', 'start'], env);
  if (cli.code !== 0) throw new Error(`tradewarden start exited ${cli.code}: ${cli.output.trim()}`);

  await sleep(SETTLE_SECONDS * 1000); // start-up work (module loading, first connect) is not idle
  const daemon = daemonPid(home.pm2Home);
  const requestsBefore = paper.requests;
  const rss: number[] = [];
  const cpuPerSecond: number[] = [];
  const daemonRss: number[] = [];
  const first = readProc(pid);
  const daemonFirst = daemon ? readProc(daemon) : undefined;
  const began = performance.now();
  let previous = { sample: first, at: began };
  for (let second = 1; second <= WINDOW_SECONDS; second++) {
    await sleep(Math.max(0, began + second * 1000 - performance.now()));
    if (!isAlive(pid)) throw new Error(`the controller exited during the window`);
    const sample = readProc(pid);
    const at = performance.now();
    rss.push(sample.rssMb);
    cpuPerSecond.push(((sample.cpuTicks - previous.sample.cpuTicks) / TICKS_PER_SECOND / ((at - previous.at) / 1000)) * 100);
    if (daemon && isAlive(daemon)) daemonRss.push(readProc(daemon).rssMb);
    previous = { sample, at };
  }
  const elapsedSeconds = (previous.at - began) / 1000;
  const meanCpu = ((previous.sample.cpuTicks - first.cpuTicks) / TICKS_PER_SECOND / elapsedSeconds) * 100;
  const childCpu = ((previous.sample.childTicks - first.childTicks) / TICKS_PER_SECOND / elapsedSeconds) * 100;

  figure(`idle controller CPU, mean over ${WINDOW_SECONDS} s`, `${meanCpu.toFixed(2)} % (+ ${childCpu.toFixed(2)} % in child processes)`, '< 1 %');
  report('idle controller CPU, per 1 s sample', '%', cpuPerSecond, '< 1 %');
  report(`idle controller RSS${WITH_CHARTS ? ', renderer loaded' : ''}`, 'MB', rss, '< 150 MB');
  if (daemonRss.length && daemonFirst && daemon) {
    const daemonCpu = ((readProc(daemon).cpuTicks - daemonFirst.cpuTicks) / TICKS_PER_SECOND / elapsedSeconds) * 100;
    report(`PM2 daemon RSS (context; CPU ${daemonCpu.toFixed(2)} %)`, 'MB', daemonRss, '—');
  }
  // A controller that had silently stopped polling would look idle too: show that it worked.
  figure('broker requests by the controller in window', `${paper.requests - requestsBefore} (trade poll every 10 s)`, '—');
} catch (error) {
  failed = true;
  console.error(`idle bench failed: ${error instanceof Error ? error.message : String(error)}`);
  if (output) console.error(`controller output:\n${output.trim().split('\n').slice(-30).join('\n')}`);
} finally {
  await cleanUp();
}
process.exit(failed ? 1 : 0);

function seconds(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value < 1) throw new Error(`${name} must be a number of seconds ≥ 1`);
  return Math.round(value);
}
