// A controller under a busy trader, with a long history (issue 20). First, in this process: the cost
// of recording one fill with SCALE_RETAINED (100,000) trades in retention against none. Then the real
// controller process (as `npm start` runs it, MAX_TRADES_PER_HOUR=10000, default cadences, a metrics
// endpoint) over that history, while the paper broker in this process fills SCALE_RATE (50) orders a
// second for SCALE_SECONDS (300), each pushed by the trade stream and read again by the 10 s poll:
// the controller's CPU minute by minute, how long after the last fill its count has every fill (its
// /metrics), whether each was counted exactly once, `tradewarden status` with and without the
// controller at the start and at the end, and the sizes of the data file and the fills ledger.
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { clockTicksPerSecond } from '../src/os/process-table.ts';
import { Store } from '../src/store/store.ts';
import { requestControl } from '../src/control/client.ts';
import { FILLS_DIR } from '../src/store/fill-ledger.ts';
import { fill } from '../testkit/fills.ts';
import { startPaperBroker } from '../testkit/paper-broker.ts';
import { killPid, makeTempHome } from '../testkit/pm2-home.ts';
import { freeLoopbackPort } from '../testkit/ports.ts';
import { scratchDir } from '../testkit/scratch.ts';
import { report, summarize } from './stats.ts';
import { cleanUp, cleanups } from './cleanup.ts';
import { controllerArgs, controllerKind } from './controller-process.ts';
import { figure, readProc, run, started } from './proc.ts';

const RETAINED = whole('SCALE_RETAINED', 100_000);
const RATE = whole('SCALE_RATE', 50);
const SECONDS = whole('SCALE_SECONDS', 300);
const KEY_ID = 'PKBENCHSCALE';
const SECRET = 'SKBENCHSCALE';
const HOUR = 3600_000;
const TICKS_PER_SECOND = await clockTicksPerSecond();
const ROOT = path.resolve(import.meta.dirname, '..');
/** The retained history ends here: the last hour is the burst's alone. */
const HISTORY_END = Date.now() - HOUR - 60_000;

let output = '';
let failed = false;
try {
  // ---- recording one fill, in this process ----
  // Each a new trade just after the newest retained one (before the last hour: the burst's count stays its own).
  const recordOne = async (store: Store, n: number) => {
    const samples: number[] = [];
    for (let i = 0; i < n; i++) {
      const began = performance.now();
      await store.update((data) => store.recordFills(data, [fill(`one-${i}`, 'AAPL', 'buy', 1, 200, HISTORY_END + i)]));
      samples.push(performance.now() - began);
    }
    return samples;
  };
  const empty = new Store(scratchDir('tw-bscale-empty-'));
  report('record one fill, 0 trades retained', 'ms', await recordOne(empty, 200), 'p95 < 5 ms');

  const home = makeTempHome('tw-bscale-');
  cleanups.push(() => home.cleanup());
  const paper = await startPaperBroker({ keyId: KEY_ID, secretKey: SECRET, prices: { AAPL: 200 } });
  cleanups.push(() => paper.close());
  const metricsPort = await freeLoopbackPort();
  const env: NodeJS.ProcessEnv = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !/^(DISCORD_|APCA_|TRADING_|MAX_|ON_|TRADE_POLL|DUPLICATE_SCAN|DATA_DIR|PM2_HOME|METRICS_|GATEWAY_|FOREIGN_|LOG_LEVEL)/.test(name)),
  );
  Object.assign(env, {
    DISCORD_TOKEN: '',
    APCA_API_BASE_URL: paper.url,
    APCA_API_KEY_ID: KEY_ID,
    APCA_API_SECRET_KEY: SECRET,
    PM2_HOME: home.pm2Home,
    DATA_DIR: home.dataDir,
    MAX_TRADES_PER_HOUR: '10000',
    METRICS_ADDR: `127.0.0.1:${metricsPort}`,
    // No trader runs: every fill would be "foreign trading"; that alert is not what is measured here.
    FOREIGN_TRADING: 'off',
  });
  // The controller's own work for a status (the CLI process's start-up left out): its socket, from here.
  const controllerStatus = async (samples: number) => {
    const times: number[] = [];
    for (let i = 0; i < samples; i++) {
      const began = performance.now();
      await requestControl(home.dataDir, 'status', {}, 10_000);
      times.push(performance.now() - began);
    }
    return times;
  };
  const statusOnce = async (on: NodeJS.ProcessEnv) => {
    const began = performance.now();
    const result = await run(process.execPath, ['bin/tradewarden.cjs', 'status', '--json'], on);
    if (result.code !== 0 && result.code !== 1) throw new Error(`tradewarden status exited ${result.code}: ${result.output.slice(-500)}`);
    return performance.now() - began;
  };
  const status = async (samples: number) => {
    const times: number[] = [];
    for (let i = 0; i < samples; i++) times.push(await statusOnce(env));
    return times;
  };
  // Without a controller, beside the same command on an empty DATA_DIR, alternated: the machine's
  // load (other suites, the burst's paper broker) falls on both alike, and the ratio is what history costs.
  const control = makeTempHome('tw-bscale-none-');
  cleanups.push(() => control.cleanup());
  const emptyEnv = { ...env, DATA_DIR: control.dataDir, PM2_HOME: control.pm2Home };
  const statusBeside = async (label: string, samples = 7) => {
    const here: number[] = [];
    const none: number[] = [];
    for (let i = 0; i < samples; i++) {
      here.push(await statusOnce(env));
      none.push(await statusOnce(emptyEnv));
    }
    report(`status without a controller, ${label}`, 'ms', here, 'as on an empty DATA_DIR');
    report('  the same on an empty DATA_DIR, alternated', 'ms', none, '—');
    figure('  ratio of medians', (summarize(here).median / summarize(none).median).toFixed(2), '≈ 1');
  };
  const history = new Store(home.dataDir);
  const writeBegan = performance.now();
  await retain(history, RETAINED);
  console.log(`(${RETAINED} trades written over the 47 hours before the last hour in ${((performance.now() - writeBegan) / 1000).toFixed(1)} s)`);
  report(`record one fill, ${RETAINED} trades retained`, 'ms', await recordOne(history, 200), 'p95 < 5 ms');

  // ---- the controller over that history ----
  await statusBeside(`${RETAINED} kept`);

  const controller = spawn(process.execPath, controllerArgs(controllerKind()), { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  cleanups.push(async () => {
    if (controller.pid) await killPid(controller.pid, 'SIGINT', 10_000);
  });
  controller.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  controller.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await started(controller, /tradewarden controller watching/, 60_000);
  const pid = controller.pid!;
  report('status with the controller, at the start', 'ms', await status(5), 'the same at the end');
  report('  its answer on the control socket', 'ms', await controllerStatus(20), 'the same at the end');

  // ---- the burst ----
  const placed: string[] = [];
  const cpuByMinute: number[] = [];
  let minuteStart = { ticks: readProc(pid).cpuTicks, at: performance.now() };
  const began = performance.now();
  const total = RATE * SECONDS;
  for (let i = 0; i < total; i++) {
    const due = began + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    placed.push(String(paper.placeOrder({ symbol: 'AAPL', side: i % 2 ? 'sell' : 'buy', qty: 1, type: 'market', time_in_force: 'day' }).id));
    if (performance.now() - minuteStart.at >= 60_000 || i === total - 1) {
      const ticks = readProc(pid).cpuTicks;
      const at = performance.now();
      cpuByMinute.push(((ticks - minuteStart.ticks) / TICKS_PER_SECOND / ((at - minuteStart.at) / 1000)) * 100);
      minuteStart = { ticks, at };
    }
  }
  const lastFillAt = performance.now();
  console.log(`(placed ${placed.length} orders in ${((lastFillAt - began) / 1000).toFixed(1)} s, each filled at once)`);

  // ---- caught up? ----
  let counted = NaN;
  while (performance.now() - lastFillAt < 30_000) {
    counted = await tradesLastHour(metricsPort);
    if (counted >= placed.length) break;
    await sleep(25);
  }
  const catchUpMs = performance.now() - lastFillAt;
  figure('controller CPU by minute of the burst', cpuByMinute.map((c) => `${c.toFixed(1)} %`).join(', '), 'the last no more than the first');
  figure('count caught up after the last fill', `${catchUpMs.toFixed(0)} ms (${counted} of ${placed.length})`, '< 1000 ms');
  report('status with the controller, at the end', 'ms', await status(5), 'as at the start');
  report('  its answer on the control socket', 'ms', await controllerStatus(20), 'as at the start');

  // Exactly once: the ledger holds each order placed, once, and nothing else in the last hour.
  const ledger = new Store(home.dataDir).trades(HISTORY_END + HOUR / 2, Infinity);
  const ids = new Set(ledger.map((t) => t.orderId));
  const exact = ledger.length === placed.length && placed.every((id) => ids.has(id));
  figure('every fill recorded exactly once', exact ? `yes (${ledger.length})` : `NO: ${ledger.length} recorded, ${placed.length} placed`, 'yes');

  await killPid(pid, 'SIGINT', 10_000);
  await statusBeside('+ the burst\'s hour');
  const sizeOf = (file: string) => fs.statSync(file).size;
  const ledgerDir = path.join(home.dataDir, FILLS_DIR);
  const ledgerBytes = fs.readdirSync(ledgerDir).reduce((sum, f) => sum + sizeOf(path.join(ledgerDir, f)), 0);
  figure('data file / fills ledger on disk', `${(sizeOf(history.file) / 1024).toFixed(0)} kB / ${(ledgerBytes / 1024 / 1024).toFixed(1)} MB in ${fs.readdirSync(ledgerDir).length} hour files`, '—');
  if (!exact || !(counted >= placed.length)) failed = true;
} catch (error) {
  failed = true;
  console.error(`scale bench failed: ${error instanceof Error ? error.message : String(error)}`);
  if (output) console.error(`controller output:\n${output.trim().split('\n').slice(-30).join('\n')}`);
} finally {
  await cleanUp();
}
process.exit(failed ? 1 : 0);

/** `count` trades spread evenly over the 47 hours before the last hour (retention is 48), written as the watch writes them. */
async function retain(store: Store, count: number): Promise<void> {
  const end = HISTORY_END - 1000;
  const step = (47 * HOUR) / count;
  for (let i = 0; i < count; i += 2000) {
    const batch = Array.from({ length: Math.min(2000, count - i) }, (_, k) => {
      const n = i + k;
      return fill(`history-${n}`, n % 2 ? 'AAPL' : 'BTC/USD', n % 3 ? 'buy' : 'sell', 1, 100, Math.round(end - 47 * HOUR + n * step));
    });
    await store.update((data) => store.recordFills(data, batch));
  }
}

/** The controller's own count of the rolling hour, from its /metrics. */
async function tradesLastHour(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Number(/^tradewarden_trades_last_hour (\d+)/m.exec(text)?.[1] ?? NaN);
}

function whole(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a whole number ≥ 1`);
  return value;
}
