// An operator's flatten is never counted as a runaway, whatever reaches the watch first. A real
// broker gives no order between its trade stream and its HTTP answer: here the paper broker streams
// the closing fills at once and answers the close 1.5 s later, so the stream always wins. Real PM2
// (one daemon for the file, ended by its PID), a real trader under it, the real CLI process, the
// paper broker over HTTP and its trade stream. Yet a copy that trades during a flatten is still seen.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { App } from '../src/app.ts';
import { serveTerminal } from '../src/controller.ts';
import { ControlServer } from '../src/control/socket.ts';
import { silentLogger } from '../src/log.ts';
import { cli as runCli, streamingApp } from './helpers/stream-app.ts';
import type { Actor } from '../src/core/operations.ts';
import type { StoredAlert } from '../src/store/schema.ts';
import { countedTrades } from '../src/watch/trade-window.ts';
import { startPaperBroker, type PaperBroker } from '../testkit/paper-broker.ts';
import { copyTrader, makeTempHome, waitFor, type TempHome } from '../testkit/pm2-home.ts';

const operator: Actor = { id: 'cli:test', name: 'test', isOperator: true };
const KEY = 'PKFLATRACE';
const SECRET = 'SKFLATRACESECRET';
/** The close of every position: the request whose answer comes after its fills are streamed. */
const CLOSE_ALL = { method: 'DELETE', path: '/v2/positions' };
const ANSWER_DELAY_MS = 1500;

let home: TempHome;
let trader: string;
/** Each test's own broker (a fresh account), set by brokerFor. */
let paper: PaperBroker;
const apps: App[] = [];
const brokers: PaperBroker[] = [];
const controls: ControlServer[] = [];

before(() => {
  home = makeTempHome('tw-flatrace-');
  trader = copyTrader(path.resolve('examples/heartbeat-trader.js'), path.join(home.root, 'bot'));
});

after(async () => {
  for (const control of controls) await control.close();
  for (const app of apps) await app.close();
  await home?.cleanup();
  for (const broker of brokers) await broker.close();
});

/** A fresh account whose close of all positions is answered ANSWER_DELAY_MS after it is done. */
async function brokerFor(name: string): Promise<Record<string, string>> {
  paper = await startPaperBroker({ keyId: KEY, secretKey: SECRET, cash: 1_000_000, prices: { AAPL: 200, MSFT: 400, TSLA: 250, NVDA: 120, 'BTC/USD': 50_000 } });
  brokers.push(paper);
  paper.setDelay(ANSWER_DELAY_MS, CLOSE_ALL);
  const dataDir = path.join(home.root, name);
  fs.mkdirSync(dataDir, { recursive: true });
  return {
    APCA_API_BASE_URL: paper.url,
    APCA_API_KEY_ID: KEY,
    APCA_API_SECRET_KEY: SECRET,
    PM2_HOME: home.pm2Home,
    DATA_DIR: dataDir,
    TRADING_SCRIPT: trader,
    TRADING_KILL_TIMEOUT_MS: '1500',
    MAX_TRADES_PER_HOUR: '3',
    TRADE_POLL_SECONDS: '60',
    HOME: home.root,
  };
}

/** The app as the controller builds it, its stream connected; no grace after a stop: every fill after it that is not the controller's own is foreign. */
async function controllerApp(env: Record<string, string>) {
  const made = await streamingApp(paper, env, { foreignTradingGraceMs: 0 });
  apps.push(made.app);
  return made;
}

/** Five positions, long and short, stock and crypto. */
function seedFive(): void {
  paper.seedPosition('AAPL', 10, 200);
  paper.seedPosition('MSFT', -5, 400);
  paper.seedPosition('TSLA', 3, 250);
  paper.seedPosition('NVDA', 8, 120);
  paper.seedPosition('BTC/USD', 0.02, 50_000);
}

const cli = (args: string[], env: Record<string, string>) => runCli(args, env, home.root);

/** The closing fills (one trade per closed position) have reached the app's store. */
const closesRecorded = (app: App, n: number) =>
  waitFor(async () => (await app.store.read()).trades.seen.length >= n, { what: `${n} closing fills recorded`, intervalMs: 10, timeoutMs: 10_000 });

/** What must hold after an operator's flatten: nothing of it counted, alerted or tripped; start works. */
async function expectQuietAfterFlatten(app: App, alerts: StoredAlert[], trades: number): Promise<void> {
  await app.tradeWatch!.poll(); // the scheduled poll, after everything is known
  const data = await app.store.read();
  assert.equal(data.trades.seen.length, trades, 'every closing fill was seen');
  assert.equal(countedTrades(data, app.clock.now()).length, 0, 'none counts towards the hour (status, /metrics, the gate)');
  assert.equal((await app.core.trades()).count, 0, 'the trades report counts none');
  const kinds = (await app.core.alerts(50)).map((a) => a.kind);
  for (const kind of ['trade_rate_exceeded', 'breaker_tripped', 'foreign_trading'] as const) {
    assert.ok(!kinds.includes(kind), `no ${kind} (raised: ${kinds.join(', ')})`);
  }
  assert.equal(data.breaker.tripped, false, `the breaker is not tripped (${data.breaker.reason ?? ''})`);
  assert.deepEqual(alerts.filter((a) => a.kind === 'trade_rate_exceeded'), [], 'nothing delivered about the rate');
  const started = await app.core.start(operator);
  assert.ok(started.pid > 0, 'start works right after the flatten');
  await app.core.stop(operator);
}

test('flatten in the controller (as /flatten and the breaker run it): closes streamed before the answer are not the trader\'s', async () => {
  const env = await brokerFor('in-controller');
  const { app, alerts } = await controllerApp({ ...env, ON_RUNAWAY: 'stop' });
  await app.core.start(operator);
  seedFive();
  let answered = false;
  const flatten = app.core.flatten(operator).finally(() => (answered = true));
  await closesRecorded(app, 5);
  assert.equal(answered, false, 'the stream brought the closing fills before the broker answered the close');
  const report = await flatten;
  assert.equal(report.flat, true, JSON.stringify(report));
  assert.equal(report.symbols.length, 5);
  await expectQuietAfterFlatten(app, alerts, 5);
  await app.tradeStream!.stop();
});

/** The controller's control socket, serving the terminal as the real controller does. */
async function serveTerminalFor(app: App): Promise<ControlServer> {
  const control = await ControlServer.listen({ dataDir: app.config.dataDir, logger: silentLogger });
  controls.push(control);
  serveTerminal(control, app);
  return control;
}

test('tradewarden flatten in a terminal while the controller runs: it runs in the controller, which does not count the closes', async () => {
  const env = await brokerFor('terminal-with-controller');
  const { app, alerts } = await controllerApp({ ...env, ON_RUNAWAY: 'stop' });
  await serveTerminalFor(app);
  await app.core.start(operator);
  seedFive();
  const run = await cli(['flatten', '--yes', '--json'], env);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(JSON.parse(run.stdout).flat, true, run.stdout);
  await closesRecorded(app, 5);
  // Delivered by the controller itself as the flatten ended: the flatten ran there, not in the CLI.
  assert.ok(alerts.some((a) => a.kind === 'flatten_result'), 'the controller delivered the flatten result');
  const [audit] = await app.core.audit(1);
  assert.equal(audit?.what, 'flatten');
  assert.match(audit?.who ?? '', /^cli:/, 'audited as the terminal\'s user');
  await expectQuietAfterFlatten(app, alerts, 5);
  await app.tradeStream!.stop();
});

test('tradewarden flatten while the controller runs, a copy trading meanwhile: alerted by the time the terminal reports', async () => {
  const env = await brokerFor('terminal-copy');
  const { app } = await controllerApp({ ...env, ON_RUNAWAY: 'alert' });
  await serveTerminalFor(app);
  seedFive();
  const hold = paper.holdNext(CLOSE_ALL);
  const run = cli(['flatten', '--yes', '--json'], env);
  await hold.reached;
  for (const [symbol, side] of [['AAPL', 'sell'], ['MSFT', 'buy'], ['TSLA', 'sell'], ['NVDA', 'sell']] as const) {
    paper.placeOrder({ symbol, side, type: 'market', time_in_force: 'day', qty: 1 });
  }
  await closesRecorded(app, 4);
  hold.release();
  const done = await run;
  assert.equal(done.code, 0, done.stderr);
  const rate = (await app.store.read()).alerts.filter((a) => a.kind === 'trade_rate_exceeded');
  assert.equal(rate.length, 1, 'judged in the controller as the flatten answered, not at the next poll');
  assert.match(rate[0]!.body, /^4 trades in the last hour/);
  await app.tradeStream!.stop();
});

test('tradewarden flatten with no controller, then a controller started: the closes are not the trader\'s', async () => {
  const env = await brokerFor('terminal-then-controller');
  const start = await cli(['start'], env);
  assert.equal(start.code, 0, start.stderr);
  seedFive();
  const run = await cli(['flatten', '--yes', '--json'], env);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(JSON.parse(run.stdout).flat, true, run.stdout);
  const { app, alerts } = await controllerApp({ ...env, ON_RUNAWAY: 'stop' });
  await closesRecorded(app, 5); // the poll that follows the stream's connect
  await expectQuietAfterFlatten(app, alerts, 5);
  await app.tradeStream!.stop();
});

test('ON_RUNAWAY=flatten after 4 trader fills with 5 positions open: one trade-rate alert, one breaker episode', async () => {
  const env = await brokerFor('breaker-flatten');
  const { app, alerts } = await controllerApp({ ...env, ON_RUNAWAY: 'flatten' });
  await app.core.start(operator);
  seedFive();
  // The trader's 4 trades (while it runs here): the 4th crosses the limit of 3.
  for (let i = 0; i < 4; i++) paper.placeOrder({ symbol: 'ETH/USD', side: 'buy', type: 'market', time_in_force: 'gtc', qty: 0.1 });
  const result = await waitFor(() => alerts.find((a) => a.kind === 'flatten_result'), { timeoutMs: 20_000, intervalMs: 20, what: 'the flatten result' });
  assert.equal(result.facts.flat, true, result.body);
  await closesRecorded(app, 4 + 6); // 4 trades, then 6 closes (the five and the trader's ETH)
  await app.tradeWatch!.poll();
  const kinds = (await app.core.alerts(50)).map((a) => a.kind);
  assert.deepEqual(kinds.filter((k) => k === 'trade_rate_exceeded'), ['trade_rate_exceeded'], `one trade-rate alert (raised: ${kinds.join(', ')})`);
  assert.deepEqual(kinds.filter((k) => k === 'breaker_tripped'), ['breaker_tripped'], 'one breaker episode');
  assert.ok(!kinds.includes('foreign_trading'), `the closes are not foreign (raised: ${kinds.join(', ')})`);
  const data = await app.store.read();
  assert.equal(countedTrades(data, app.clock.now()).length, 4, 'the hour holds the trader\'s 4 trades, not the closes');
  assert.equal(data.watch.tradeRate.lastAlertedCount, 4);
  await app.tradeStream!.stop();
});

test('a copy that trades during a flatten is still seen: alerted and halted by the time the flatten reports', async () => {
  const env = await brokerFor('copy-during-flatten');
  const { app } = await controllerApp({ ...env, ON_RUNAWAY: 'stop' });
  await app.core.start(operator);
  seedFive();
  // The copy trades after the flatten has said what it closes and before the broker closes: its
  // fills reduce the very positions being closed, so only their order ids tell them apart.
  const hold = paper.holdNext(CLOSE_ALL);
  const flatten = app.core.flatten(operator);
  await hold.reached;
  const copy = [
    paper.placeOrder({ symbol: 'AAPL', side: 'sell', type: 'market', time_in_force: 'day', qty: 1 }),
    paper.placeOrder({ symbol: 'MSFT', side: 'buy', type: 'market', time_in_force: 'day', qty: 1 }),
    paper.placeOrder({ symbol: 'TSLA', side: 'sell', type: 'market', time_in_force: 'day', qty: 1 }),
    paper.placeOrder({ symbol: 'NVDA', side: 'sell', type: 'market', time_in_force: 'day', qty: 1 }),
  ];
  await closesRecorded(app, 4);
  hold.release();
  const report = await flatten;
  assert.equal(report.flat, true, JSON.stringify(report));
  const data = await app.store.read();
  const counted = countedTrades(data, app.clock.now()).map((t) => t.orderId).sort();
  assert.deepEqual(counted, copy.map((o) => String(o.id)).sort(), 'the copy\'s 4 trades count, the 5 closes do not');
  const rate = data.alerts.filter((a) => a.kind === 'trade_rate_exceeded');
  assert.equal(rate.length, 1, 'the trade-rate alert is raised by the time the flatten reports');
  assert.match(rate[0]!.body, /^4 trades in the last hour/);
  assert.equal(data.breaker.tripped, true, 'the breaker tripped on the copy');
  await app.tradeStream!.stop();
});
