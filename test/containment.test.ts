// Containing the incident with real parts: a real PM2 daemon (temp home), real traders (one under
// PM2, one started outside it as `nohup node bot.js &` would) trading at the paper broker, whose
// trade stream feeds the controller's window. The breaker ends every copy; ON_DUPLICATE=stop ends a
// duplicate on sight and keeps the managed trader; fills while no copy runs here raise foreign_trading.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { parseConfig } from '../src/config.ts';
import { buildApp, type App } from '../src/app.ts';
import { silentLogger } from '../src/log.ts';
import type { Actor } from '../src/core/operations.ts';
import type { AlertSink } from '../src/alerts/outbox.ts';
import type { StoredAlert } from '../src/store/schema.ts';
import { startPaperBroker, type PaperBroker } from '../testkit/paper-broker.ts';
import { copyTrader, isAlive, killPid, makeTempHome, waitFor, type TempHome } from '../testkit/pm2-home.ts';

const operator: Actor = { id: 'cli:test', name: 'test', isOperator: true };
const KEY = 'PKCONTAIN';
const SECRET = 'SKCONTAINSECRET';
let home: TempHome;
/** Each test's own broker (a fresh account, so no test sees another's fills), set by controllerApp. */
let paper: PaperBroker;
let trader: string;
const apps: App[] = [];
const brokers: PaperBroker[] = [];
const outsiders: ChildProcess[] = [];

before(async () => {
  home = makeTempHome('tw-contain-');
  trader = copyTrader(path.resolve('examples/demo-trader.js'), path.join(home.root, 'bot'));
});

after(async () => {
  for (const child of outsiders) if (child.pid && isAlive(child.pid)) await killPid(child.pid, 'SIGKILL');
  for (const app of apps) await app.close();
  await home?.cleanup();
  for (const broker of brokers) await broker.close();
});

function traderEnv(everySeconds: string): Record<string, string> {
  return {
    APCA_API_BASE_URL: paper.url,
    APCA_API_KEY_ID: KEY,
    APCA_API_SECRET_KEY: SECRET,
    DEMO_ORDER_EVERY_SECONDS: everySeconds,
    DEMO_ORDER_NOTIONAL: '5',
  };
}

/** The app as the controller builds it, in its own DATA_DIR, the stream connected; no scheduled job. */
async function controllerApp(name: string, extra: Record<string, string>) {
  paper = await startPaperBroker({ keyId: KEY, secretKey: SECRET, prices: { 'BTC/USD': 50_000 } });
  brokers.push(paper);
  const dataDir = path.join(home.root, name);
  fs.mkdirSync(dataDir, { recursive: true });
  const alerts: StoredAlert[] = [];
  const sink: AlertSink = { name: 'test', deliver: async (a) => void alerts.push(a) };
  const env = {
    ...traderEnv(extra.DEMO_ORDER_EVERY_SECONDS ?? '3600'),
    PM2_HOME: home.pm2Home,
    DATA_DIR: dataDir,
    TRADING_SCRIPT: trader,
    TRADING_KILL_TIMEOUT_MS: '1500',
    MAX_TRADES_PER_HOUR: '3',
    TRADE_POLL_SECONDS: '60',
    ...extra,
  };
  // PM2 hands the starting client's environment to the trader: its broker comes from here.
  Object.assign(process.env, env);
  const app = buildApp(parseConfig({ ...env, HOME: home.root }), {
    logger: silentLogger,
    deliversAlerts: true,
    sinks: [sink],
    env: { ...process.env },
    foreignTradingGraceMs: 300,
    streamBackoffMs: 50,
  });
  apps.push(app);
  app.startStream();
  await waitFor(() => app.tradeStream!.state().status === 'connected', { what: 'the trade stream', intervalMs: 10 });
  return { app, alerts };
}

/** As `nohup node bot.js &` from the bot's folder: outside PM2, a relative script path. */
function startOutside(everySeconds: string): ChildProcess {
  const child = spawn(process.execPath, [path.basename(trader), '--every', everySeconds], {
    cwd: path.dirname(trader),
    env: { ...process.env, ...traderEnv(everySeconds) },
    detached: true,
    stdio: 'ignore',
  });
  outsiders.push(child);
  return child;
}

test('two copies trading (PM2 + outside), ON_RUNAWAY=stop: the breaker ends both, lists each PID and how', async () => {
  const { app, alerts } = await controllerApp('halt', { ON_RUNAWAY: 'stop', DEMO_ORDER_EVERY_SECONDS: '0.4' });
  const managed = await app.core.start(operator);
  const outside = startOutside('0.4');
  // No poll and no scan is scheduled: the stream's fills trip the breaker, which scans on its own.
  const breaker = await waitFor(() => alerts.find((a) => a.kind === 'breaker_tripped'), { timeoutMs: 20_000, intervalMs: 20, what: 'the breaker' });
  assert.ok(!isAlive(managed.pid), 'the PM2 trader is gone');
  assert.ok(!isAlive(outside.pid!), 'the copy outside PM2 is gone');
  assert.match(breaker.body, new RegExp(`PID ${managed.pid} \\(stopped through PM2`));
  assert.match(breaker.body, new RegExp(`PID ${outside.pid} \\((SIGTERM|SIGKILL): .*demo-trader\\.js`));
  assert.match(breaker.body, /No copy of the trader runs here now/);
  assert.deepEqual(
    (breaker.facts.ended as Array<{ pid: number }>).map((e) => e.pid).sort(),
    [managed.pid, outside.pid].sort(),
  );
  // Orders the copies sent before they died may still fill; once the broker has answered them all,
  // nothing trades any more (no process is left to send another).
  await waitFor(() => paper.inFlight === 0, { what: 'the broker to answer what the copies sent', intervalMs: 10 });
  const fills = paper.snapshot().activities.length;
  await new Promise((resolve) => setTimeout(resolve, 1200));
  assert.equal(paper.snapshot().activities.length, fills, 'no fill after every copy is gone');
  const audit = (await app.store.read()).audit.map((e) => `${e.who} ${e.what} ${e.outcome}`);
  assert.ok(audit.includes('controller stop ok'), 'the halt of the PM2 trader is audited');
  assert.ok(audit.includes('controller stop-duplicates ok'), 'ending the outside copy is audited');
  await app.tradeStream!.stop();
});

test('ON_RUNAWAY=flatten: flatten runs once no copy is left, and the account ends flat', async () => {
  const { app, alerts } = await controllerApp('flatten', { ON_RUNAWAY: 'flatten', DEMO_ORDER_EVERY_SECONDS: '0.4', FOREIGN_TRADING: 'off' });
  const managed = await app.core.start(operator);
  const outside = startOutside('0.4');
  const result = await waitFor(() => alerts.find((a) => a.kind === 'flatten_result'), { timeoutMs: 30_000, intervalMs: 20, what: 'the flatten result' });
  const order = alerts.map((a) => a.kind).filter((k) => k === 'breaker_tripped' || k === 'flatten_result');
  assert.deepEqual(order, ['breaker_tripped', 'flatten_result'], 'the halt is reported before the flatten');
  const breaker = alerts.find((a) => a.kind === 'breaker_tripped')!;
  assert.match(breaker.body, /No copy of the trader runs here now\. Flattening now\./);
  assert.ok(!isAlive(managed.pid) && !isAlive(outside.pid!), 'both copies gone');
  assert.equal(result.facts.flat, true, result.body);
  assert.deepEqual(paper.snapshot().positions, []);
  await app.tradeStream!.stop();
});

test('ON_DUPLICATE=stop: a duplicate is ended on sight, the managed trader kept, audited as the policy', async () => {
  const { app, alerts } = await controllerApp('dupstop', { ON_DUPLICATE: 'stop', FOREIGN_TRADING: 'off' });
  const managed = await app.core.start(operator);
  const outside = startOutside('3600');
  await waitFor(() => fs.existsSync(`/proc/${outside.pid}`), { what: 'the outside copy' });
  await waitFor(async () => {
    await app.processWatch.scan();
    return alerts.find((a) => a.kind === 'duplicate_instance' && /ended/.test(a.title));
  }, { what: 'the duplicate ended by policy', timeoutMs: 10_000, intervalMs: 100 });
  assert.ok(!isAlive(outside.pid!), 'the duplicate is gone');
  assert.ok(isAlive(managed.pid), 'the managed trader is kept');
  const alert = alerts.find((a) => a.kind === 'duplicate_instance' && /ended/.test(a.title))!;
  assert.match(alert.body, new RegExp(`Ended PID ${outside.pid} \\(SIGTERM\\): .*demo-trader\\.js --every 3600`));
  const audit = (await app.store.read()).audit.find((e) => e.what === 'stop-duplicates');
  assert.equal(audit?.who, 'policy:ON_DUPLICATE');
  assert.equal(audit?.outcome, 'ok');
  assert.deepEqual(audit?.args, { pids: [outside.pid] });
  await app.core.stop(operator);
  await app.tradeStream!.stop();
});

test('foreign_trading: raised for fills while no copy runs here (once per episode), not while the trader runs', async () => {
  const { app, alerts } = await controllerApp('foreign', {});
  const buyElsewhere = () => paper.placeOrder({ symbol: 'BTC/USD', side: 'buy', type: 'market', time_in_force: 'gtc', qty: 0.001 });
  const settle = (n: number) => waitFor(async () => (await app.store.read()).trades.seen.length >= n, { what: `${n} trades recorded`, intervalMs: 10 });
  const before = (await app.store.read()).trades.seen.length;

  await app.core.start(operator);
  buyElsewhere();
  await settle(before + 1);
  await app.processWatch.scan();
  assert.deepEqual(alerts.filter((a) => a.kind === 'foreign_trading'), [], 'not raised while the trader runs here');

  await app.core.stop(operator);
  await new Promise((resolve) => setTimeout(resolve, 400)); // past the grace for orders in flight
  const first = buyElsewhere();
  await waitFor(() => alerts.find((a) => a.kind === 'foreign_trading'), { what: 'foreign_trading', intervalMs: 10 });
  buyElsewhere(); // same episode: no second alert
  await settle(before + 3);
  const foreign = alerts.filter((a) => a.kind === 'foreign_trading');
  assert.equal(foreign.length, 1);
  assert.equal(foreign[0].severity, 'critical');
  assert.match(foreign[0].body, new RegExp(`order ${first.id}`));
  assert.match(foreign[0].body, /no copy of trading-bot runs on this host \(stopped by cli:test\)/);

  // A copy running here again ends the episode.
  await app.core.start(operator);
  await app.processWatch.scan();
  assert.equal((await app.store.read()).watch.foreignTrading.inEpisode, false);
  await app.core.stop(operator);
  await app.tradeStream!.stop();
});
