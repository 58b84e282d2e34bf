// BROKER=ccxt wired as the controller wires it, with real parts: a real PM2 daemon (temp home), a
// real trader process trading through ccxt's kraken class at the Kraken stand-in, and the app's own
// ccxt broker reading the same account with its own key. The breaker halts the runaway, fills while
// no copy runs raise foreign_trading, flatten sells what it bought, and lock is refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseConfig } from '../src/config.ts';
import { buildApp, type App } from '../src/app.ts';
import { silentLogger } from '../src/log.ts';
import type { Actor } from '../src/core/operations.ts';
import type { AlertSink } from '../src/alerts/outbox.ts';
import type { StoredAlert } from '../src/store/schema.ts';
import { OperationError } from '../src/errors.ts';
import { startKrakenStandIn, type KrakenStandIn } from '../testkit/kraken-exchange.ts';
import { copyTrader, isAlive, makeTempHome, waitFor, type TempHome } from '../testkit/pm2-home.ts';

const operator: Actor = { id: 'cli:test', name: 'test', isOperator: true };
const KEY = 'tradewarden-read-key-3b9d';
const SECRET = Buffer.from('tradewarden-read-secret-61fa').toString('base64');
const TRADER_KEY = 'bot-own-key-c47e';
const TRADER_SECRET = Buffer.from('bot-own-secret-0d2a').toString('base64');
let home: TempHome;
let kraken: KrakenStandIn;
let app: App;
const alerts: StoredAlert[] = [];

before(async () => {
  home = makeTempHome('tw-cx-');
  kraken = await startKrakenStandIn({ apiKey: KEY, secret: SECRET, moreKeys: { [TRADER_KEY]: TRADER_SECRET }, balances: { USD: 100_000 } });
  const trader = copyTrader(path.resolve('test/fixtures/ccxt-trader.mjs'), path.join(home.root, 'bot'));
  // The ES module entry of the installed ccxt (its package exports only ".").
  const ccxtEntry = path.join(path.dirname(createRequire(import.meta.url).resolve('ccxt')), '..', 'js', 'ccxt.js');
  const env = {
    BROKER: 'ccxt',
    CCXT_EXCHANGE: 'kraken',
    CCXT_API_KEY: KEY,
    CCXT_SECRET: SECRET,
    CCXT_OPTIONS: kraken.ccxtOptions,
    PM2_HOME: home.pm2Home,
    DATA_DIR: home.dataDir,
    TRADING_SCRIPT: trader,
    TRADING_KILL_TIMEOUT_MS: '1500',
    MAX_TRADES_PER_HOUR: '3',
    ON_RUNAWAY: 'stop',
    // read by the trader alone: its own key, and a runaway's pace
    CCXT_TRADER_MODULE: pathToFileURL(ccxtEntry).href,
    CCXT_TRADER_KEY: TRADER_KEY,
    CCXT_TRADER_SECRET: TRADER_SECRET,
    CCXT_TRADER_EVERY_MS: '300',
  };
  // PM2 hands the starting client's environment to the trader.
  Object.assign(process.env, env);
  const recorder: AlertSink = { name: 'test', deliver: async (a) => void alerts.push(a) };
  app = buildApp(parseConfig({ ...env, HOME: home.root }), { logger: silentLogger, deliversAlerts: true, sinks: [recorder], env: { ...process.env }, foreignTradingGraceMs: 0, flattenVerifyTimeoutMs: 2000 });
});

after(async () => {
  await app?.close();
  await home?.cleanup();
  await kraken?.close();
});

const kinds = () => alerts.map((a) => a.kind).filter((k) => k !== 'recovered');

test('ON_RUNAWAY=stop halts a real trader that trades on the exchange through ccxt: the fills come from fetchMyTrades (the push is not started here)', async () => {
  assert.equal(app.tradeStream?.url, 'ccxt kraken watchMyTrades', 'with BROKER=ccxt the stream is the exchange\'s own (test/ccxt-stream.test.ts), not Alpaca\'s');
  assert.equal(app.brokerLock, undefined, 'no broker lock: exchanges have no such switch');
  const started = await app.core.start(operator);
  assert.ok(isAlive(started.pid), 'the trader runs');
  await waitFor(async () => (await app.tradeWatch!.poll()).event === 'exceeded', { timeoutMs: 20_000, intervalMs: 200, what: 'the trade-rate breach' });
  assert.ok(!isAlive(started.pid), 'the trading process is gone from the OS');
  const status = await app.core.status();
  assert.equal(status.process.state, 'stopped');
  assert.equal(status.breaker.tripped, true);
  assert.match(status.breaker.reason!, /trades in the last hour \(limit 3\)/);
  assert.deepEqual(kinds(), ['trade_rate_exceeded', 'breaker_tripped']);
  const halt = alerts.find((a) => a.kind === 'breaker_tripped')!;
  assert.match(halt.body, /Session: \d+ trade\(s\), P\/L .*positions left open: BTC\/USD [\d.]+/, 'the stop report reads the exchange: the BTC bought is a position');
  await assert.rejects(app.core.start(operator), (e) => e instanceof OperationError && e.kind === 'refused' && /breaker is tripped/.test(e.message));
});

test('fills while no copy runs here raise foreign_trading, read from the exchange', async () => {
  assert.equal((await app.core.status()).process.state, 'stopped');
  kraken.placeOrder('ETH/USD', 'buy', 0.01); // someone else, trading the same account
  await waitFor(async () => {
    await app.tradeWatch!.poll();
    return alerts.find((a) => a.kind === 'foreign_trading');
  }, { what: 'foreign_trading', intervalMs: 100 });
  const foreign = alerts.find((a) => a.kind === 'foreign_trading')!;
  assert.match(foreign.body, /ETH\/USD/);
  assert.match(foreign.body, /no copy of trading-bot runs on this host/);
});

test('lock is refused with the reason; flatten sells what the runaway bought and says flat from the exchange\'s own balances', async () => {
  await assert.rejects(app.core.lock(operator), (e) => e instanceof OperationError && e.kind === 'refused' && /kraken has no account switch that blocks new orders .*lock and unlock need BROKER=alpaca/.test(e.message));
  const held = kraken.balances();
  assert.ok((held.BTC ?? 0) > 0, `the runaway bought BTC: ${JSON.stringify(held)}`);
  const report = await app.core.flatten(operator);
  assert.equal(report.flat, true, JSON.stringify(report));
  assert.deepEqual(report.symbols.map((s) => [s.symbol, s.outcome]).sort(), [['BTC/USD', 'closed'], ['ETH/USD', 'closed']]);
  const after = kraken.balances();
  assert.ok(after.BTC === 0 && after.ETH === 0, `nothing but cash is left: ${JSON.stringify(after)}`);
  // The closing orders are the controller's own: no foreign trading, no trade-rate alert for them.
  const poll = await app.tradeWatch!.poll();
  assert.ok(poll.newTrades >= 0, 'the poll reads the closing fills');
  assert.equal(alerts.filter((a) => a.kind === 'foreign_trading').length, 1, 'the flatten\'s own sells are not foreign trading');
});
