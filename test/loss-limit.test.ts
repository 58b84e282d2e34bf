// The loss limit (MAX_DAILY_LOSS, MAX_DRAWDOWN, ON_LOSS): a breaker on money, with real parts — a
// real PM2 daemon (one for the file, ended by its PID), a real trader, the paper broker over HTTP with
// its trade stream. A price move at the broker crosses the limit; the account read that shows it
// raises the alert, and with ON_LOSS=stop the trader is halted and start refused until resume.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, parseConfig } from '../src/config.ts';
import type { App } from '../src/app.ts';
import { streamingApp } from './helpers/stream-app.ts';
import type { Actor } from '../src/core/operations.ts';
import { statusText } from '../src/render/text.ts';
import { startPaperBroker, type PaperBroker } from '../testkit/paper-broker.ts';
import { copyTrader, isAlive, makeTempHome, waitFor, type TempHome } from '../testkit/pm2-home.ts';

const operator: Actor = { id: 'cli:test', name: 'test', isOperator: true };
const KEY = 'PKLOSSTEST';
const SECRET = 'SKLOSSTESTSECRET';
let home: TempHome;
let trader: string;
let paper: PaperBroker;
const apps: App[] = [];
const brokers: PaperBroker[] = [];

before(() => {
  home = makeTempHome('tw-loss-');
  trader = copyTrader(path.resolve('examples/heartbeat-trader.js'), path.join(home.root, 'bot'));
});

after(async () => {
  for (const app of apps) await app.close();
  await home?.cleanup();
  for (const broker of brokers) await broker.close();
});

/** A fresh account holding 100 AAPL at $200 beside $80,000 cash: equity $100,000, which is also its last close. */
async function controllerApp(name: string, extra: Record<string, string>) {
  paper = await startPaperBroker({ keyId: KEY, secretKey: SECRET, cash: 80_000, prices: { AAPL: 200, 'BTC/USD': 50_000 } });
  brokers.push(paper);
  paper.seedPosition('AAPL', 100, 200);
  paper.setLastEquity(100_000);
  const dataDir = path.join(home.root, name);
  fs.mkdirSync(dataDir, { recursive: true });
  const env = {
    APCA_API_BASE_URL: paper.url,
    APCA_API_KEY_ID: KEY,
    APCA_API_SECRET_KEY: SECRET,
    PM2_HOME: home.pm2Home,
    DATA_DIR: dataDir,
    TRADING_SCRIPT: trader,
    TRADING_KILL_TIMEOUT_MS: '1500',
    TRADE_POLL_SECONDS: '60',
    FOREIGN_TRADING: 'off',
    HOME: home.root,
    ...extra,
  };
  const made = await streamingApp(paper, env);
  apps.push(made.app);
  return made;
}

test('the loss limit\'s variables are checked at start, each problem named', () => {
  for (const [name, value] of [['MAX_DAILY_LOSS', '3 %'], ['MAX_DAILY_LOSS', '-5'], ['MAX_DAILY_LOSS', '1e3'], ['MAX_DAILY_LOSS', '100%'], ['MAX_DRAWDOWN', '10'], ['ON_LOSS', 'halt']] as const) {
    assert.throws(() => parseConfig({ [name]: value }), (e) => e instanceof ConfigError && e.message.includes(`${name} is "${value}"`), `${name}=${value} is refused, named`);
  }
  const config = parseConfig({ MAX_DAILY_LOSS: '250.50', MAX_DRAWDOWN: '7.5%', ON_LOSS: 'flatten' });
  assert.deepEqual([config.maxDailyLoss, config.maxDrawdown, config.onLoss], [{ amount: 250.5 }, { percent: 7.5 }, 'flatten']);
  assert.deepEqual(parseConfig({ MAX_DAILY_LOSS: '3%' }).maxDailyLoss, { percent: 3 });
});

test('MAX_DAILY_LOSS=3%, ON_LOSS=stop: a price move past it halts the trader, trips the breaker (cause: loss), once per episode', async () => {
  const { app, alerts } = await controllerApp('daily', { MAX_DAILY_LOSS: '3%', ON_LOSS: 'stop' });
  const managed = await app.core.start(operator);
  await app.accountWatch!.refresh();
  assert.deepEqual(alerts.filter((a) => a.kind === 'loss_limit'), [], 'no loss, no alert');

  paper.setPrice('AAPL', 170); // -$3,000 on the day: 3%, not past it
  await app.accountWatch!.refresh();
  assert.deepEqual(alerts.filter((a) => a.kind === 'loss_limit'), [], 'exactly at the limit is not past it');

  paper.setPrice('AAPL', 160); // -$4,000: 4% of the $100,000 reference
  await app.accountWatch!.refresh();
  const [alert] = alerts.filter((a) => a.kind === 'loss_limit');
  assert.ok(alert, 'the account read that shows the crossing raises loss_limit');
  assert.equal(alert.severity, 'critical');
  assert.match(alert.body, /Equity \$96,000\.00: the day's loss \$4,000\.00 \(4\.00% of \$100,000\.00, the broker's equity at its last close\) is past MAX_DAILY_LOSS \$3,000\.00/);
  const trip = await waitFor(() => alerts.find((a) => a.kind === 'breaker_tripped'), { what: 'the breaker' });
  assert.match(trip.body, /^loss limit: the day's loss/);
  assert.ok(!isAlive(managed.pid), 'the trader is halted');
  const data = await app.store.read();
  assert.deepEqual([data.breaker.tripped, data.breaker.cause], [true, 'loss_limit']);
  await assert.rejects(app.core.start(operator), /breaker is tripped \(loss limit/, 'start is refused until resume');

  await app.accountWatch!.refresh();
  assert.equal(alerts.filter((a) => a.kind === 'loss_limit').length, 1, 'once per episode');
  const status = statusText(await app.core.status());
  assert.match(status, /breaker TRIPPED by the loss limit/);
  assert.match(status, /loss limit day -\$4,000\.00 of -\$3,000\.00 allowed — PAST THE LIMIT/);
  await app.tradeStream!.stop();
});

test('MAX_DRAWDOWN=5%: measured from the peak since the start, judged right after a fill without waiting for the poll', async () => {
  const { app, alerts } = await controllerApp('drawdown', { MAX_DRAWDOWN: '5%', ON_LOSS: 'alert' });
  await app.core.start(operator);
  paper.setPrice('AAPL', 300); // the peak: $110,000
  await app.accountWatch!.refresh();
  paper.setPrice('AAPL', 240); // $104,000: up on the day, yet 5.45% below the peak
  // A fill is what the watch hears; it reads the account right after, by itself.
  paper.placeOrder({ symbol: 'BTC/USD', side: 'buy', type: 'market', time_in_force: 'gtc', qty: 0.001 });
  const alert = await waitFor(() => alerts.find((a) => a.kind === 'loss_limit'), { what: 'loss_limit after the fill' });
  assert.match(alert.body, /the drawdown 5\.45% from the peak \$110,000\.00 is past MAX_DRAWDOWN 5\.00%/);
  assert.match(alert.body, /ON_LOSS=alert: nothing was halted/);
  assert.match(alert.body, /buy 0\.001 BTC\/USD/, "the day's trades are listed");
  assert.equal((await app.store.read()).breaker.tripped, false, 'ON_LOSS=alert trips nothing');

  // A restart of the trader measures from its new start: the drawdown is gone.
  await app.core.restart(operator);
  await app.accountWatch!.refresh();
  const { loss } = await app.core.status();
  assert.deepEqual([loss?.peak, loss?.drawdownRatio], [104_000, 0], 'the peak starts over at the restart');
  await app.core.stop(operator);
  await app.tradeStream!.stop();
});
