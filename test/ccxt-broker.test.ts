// BROKER=ccxt with real parts: ccxt's own `kraken` class, pointed by CCXT_OPTIONS at the Kraken
// stand-in (testkit/kraken-exchange.ts) over HTTP, signing every private call as it signs them for
// Kraken. One injected clock drives the stand-in's trade times and the watch's window.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import ccxt from 'ccxt';
import { ManualClock } from '../src/clock.ts';
import { parseConfig, type CcxtConfig } from '../src/config.ts';
import { silentLogger, type Logger } from '../src/log.ts';
import { Store } from '../src/store/store.ts';
import { AlertOutbox, type AlertSink } from '../src/alerts/outbox.ts';
import { CcxtBroker, loadCcxt, type CcxtLibrary } from '../src/broker/ccxt.ts';
import { TradeWatch } from '../src/watch/watchdog.ts';
import { LossWatch } from '../src/watch/loss-watch.ts';
import { flattenAccount } from '../src/core/flatten.ts';
import { buildPnlReport } from '../src/core/review.ts';
import { flattenText, pnlLines } from '../src/render/text.ts';
import type { StoredAlert } from '../src/store/schema.ts';
import { startKrakenStandIn, type KrakenStandIn } from '../testkit/kraken-exchange.ts';
import { scratchDir } from '../testkit/scratch.ts';

const clock = new ManualClock(Date.parse('2026-03-02T14:00:00Z'));
const API_KEY = 'kraken-stand-in-key-7f3a';
const SECRET = Buffer.from('kraken-stand-in-secret-9c1e').toString('base64');
let kraken: KrakenStandIn;
let config: CcxtConfig;
let library: CcxtLibrary;

before(async () => {
  kraken = await startKrakenStandIn({ apiKey: API_KEY, secret: SECRET, clock, balances: { USD: 100_000 } });
  library = await loadCcxt('kraken');
  config = parseConfig({ BROKER: 'ccxt', CCXT_EXCHANGE: 'kraken', CCXT_API_KEY: API_KEY, CCXT_SECRET: SECRET, CCXT_OPTIONS: kraken.ccxtOptions }).ccxt!;
});
after(() => kraken.close());

function broker(options: { dataDir?: string; config?: Partial<CcxtConfig>; sleeps?: number[]; logger?: Logger; exchange?: ConstructorParameters<typeof CcxtBroker>[0]['exchange'] } = {}) {
  const sleeps = options.sleeps;
  return new CcxtBroker({
    config: { ...config, ...options.config },
    library,
    dataDir: options.dataDir ?? scratchDir('tw-ccxt-'),
    clock,
    logger: options.logger,
    exchange: options.exchange,
    sleep: async (ms) => void sleeps?.push(ms),
  });
}

function harness(ccxtBroker = broker(), limit = 3) {
  const alerts: StoredAlert[] = [];
  const sink: AlertSink = { name: 'log', deliver: async (a) => void alerts.push(a) };
  const store = new Store(scratchDir('tw-ccxt-store-'));
  const outbox = new AlertOutbox({ store, clock, logger: silentLogger, sinks: [sink], secrets: [API_KEY, SECRET] });
  const watch = new TradeWatch({ store, broker: ccxtBroker, outbox, clock, processName: 'trading-bot', maxTradesPerHour: limit });
  return { watch, alerts, store };
}

/** Resets the account to cash only, and moves to a fresh hour. */
function freshAccount(balances: Record<string, number> = { USD: 100_000 }): void {
  clock.advance(3 * 3600_000);
  for (const asset of ['USD', 'BTC', 'ETH', 'DOGE', 'SOL']) kraken.setBalance(asset, balances[asset] ?? 0);
}

const buy = (symbol = 'BTC/USD', volume = 0.001) => {
  clock.advance(60_000);
  return kraken.placeOrder(symbol, 'buy', volume);
};

test('the trade-rate alert from an exchange\'s fills: four trades in an hour → one alert, on the fourth; polls again and a restart count each trade once', async () => {
  freshAccount();
  const { watch, alerts, store } = harness();
  for (let i = 1; i <= 3; i++) {
    buy();
    assert.equal((await watch.poll()).count, i, `trade ${i} counted`);
  }
  assert.deepEqual(alerts.map((a) => a.kind), [], 'three trades: within the limit');
  buy();
  const fourth = await watch.poll();
  assert.equal(fourth.event, 'exceeded');
  assert.deepEqual(alerts.map((a) => a.kind), ['trade_rate_exceeded']);
  assert.match(alerts[0]!.body, /4 trades in the last hour \(limit 3\)/);
  // The same trades again (the poll's overlap) and a second watch on the same data file: one count each.
  await watch.poll();
  const again = new TradeWatch({ store, broker: broker(), outbox: new AlertOutbox({ store, clock, logger: silentLogger, sinks: [] }), clock, processName: 'trading-bot', maxTradesPerHour: 3 });
  const afterRestart = await again.poll();
  assert.equal(afterRestart.count, 4, 'the restarted watch reads the same four trades, keyed by Kraken\'s trade ids');
  assert.equal(afterRestart.newTrades, 0);
});

test('a burst beyond a page: 120 trades within one second are all counted (Kraken pages 50 a time, newest first)', async () => {
  freshAccount();
  clock.advance(60_000);
  for (let i = 0; i < 120; i++) kraken.placeOrder('ETH/USD', i % 2 ? 'sell' : 'buy', 0.01);
  const fills = await broker().fills(new Date(clock.now() - 3600_000).toISOString());
  assert.equal(fills.length, 120, 'every trade of the burst, once');
  assert.equal(new Set(fills.map((f) => f.id)).size, 120, 'keyed by the trade id');
  assert.ok(fills.every((f) => /^T[A-Z2-7]{5}-[A-Z2-7]{5}-[A-Z2-7]{6}$/.test(f.id) && /^O/.test(f.orderId) && f.symbol === 'ETH/USD'), `Kraken's trade and order ids, ccxt's symbol: ${JSON.stringify(fills[0])}`);
  const { watch } = harness(broker(), 1000);
  assert.equal((await watch.poll()).count, 120, 'the watch counts the 120 orders');
});

test('account: balances valued in CCXT_QUOTE through tickers; a holding under the market minimum is dust, not a position; the day reference is the first equity recorded today', async () => {
  freshAccount({ USD: 10_000, BTC: 0.5, DOGE: 10 });
  clock.set(Date.parse('2026-03-03T00:30:00Z'));
  const ccxtBroker = broker();
  const account = await ccxtBroker.account();
  assert.equal(account.currency, 'USD');
  assert.equal(account.equity, 10_000 + 0.5 * 50_000 + 10 * 0.1, 'USD + BTC at 50000 + DOGE at 0.1');
  assert.equal(account.cash, 10_000);
  assert.equal(account.dayPnl, 0, 'the first read of the day is its own reference');
  const positions = await ccxtBroker.positions();
  assert.deepEqual(positions.map((p) => [p.symbol, p.qty, p.side, p.marketValue]), [['BTC/USD', 0.5, 'long', 25_000]], '10 DOGE is under DOGE/USD\'s minimum of 50: dust');
  // Later the same day the price moves: the day's P/L is measured from the first record.
  clock.advance(3600_000);
  kraken.setPrice('BTC/USD', 52_000);
  const later = await ccxtBroker.account();
  assert.equal(later.lastEquity, account.equity);
  assert.equal(later.dayPnl, 1000, 'half a bitcoin up 2000');
  kraken.setPrice('BTC/USD', 50_000);
  // Exchanges keep no history: /pnl is drawn from the record and says since when.
  const pnl = await buildPnlReport(ccxtBroker, 'day', clock.now());
  assert.deepEqual(pnl.points.map((p) => p.equity).slice(0, 2), [35_001, 36_001]);
  assert.ok(pnlLines(pnl).some((l) => /Curve recorded by tradewarden since 2026-03-03 00:30:00Z \(the exchange keeps no history\)/.test(l)), pnlLines(pnl).join('\n'));
});

test('the loss limit on an exchange: the day\'s loss measured from the first equity recorded since 00:00 UTC, and the alert says so', async () => {
  freshAccount({ USD: 10_000, BTC: 1 });
  clock.set(Date.parse('2026-03-05T00:05:00Z'));
  const ccxtBroker = broker();
  const { store, alerts } = harness(ccxtBroker);
  const outbox = new AlertOutbox({ store, clock, logger: silentLogger, sinks: [{ name: 'log', deliver: async (a) => void alerts.push(a) }] });
  const halts: string[] = [];
  const watch = new LossWatch({ config: { maxDailyLoss: { percent: 2 }, onLoss: 'alert', ccxt: config }, store, outbox, clock, logger: silentLogger, onLoss: async (reason) => void halts.push(reason) });
  await watch.check(await ccxtBroker.account(), clock.now()); // 60,000: the day's first record
  clock.advance(3600_000);
  kraken.setPrice('BTC/USD', 48_000); // 58,000: 3.33 % down
  await watch.check(await ccxtBroker.account(), clock.now());
  kraken.setPrice('BTC/USD', 50_000);
  assert.deepEqual(alerts.map((a) => a.kind), ['loss_limit']);
  assert.match(alerts[0]!.body, /the day's loss \$2,000\.00 \(3\.33% of \$60,000\.00, the first equity recorded since 00:00 UTC\) is past MAX_DAILY_LOSS \$1,200\.00/);
  assert.equal(halts.length, 1, 'the breaker is told');
});

test('flatten: open orders cancelled, holdings sold at market, dust reported as dust, a refused market named as failed; flat only when the exchange says so', async () => {
  freshAccount({ USD: 1000, BTC: 0.5, ETH: 2, DOGE: 10 });
  kraken.placeOrder('SOL/USD', 'buy', 1, { ordertype: 'limit', price: 100 });
  kraken.refuseOrders('ETH/USD', 'EService:Market in cancel_only mode');
  const ccxtBroker = broker();
  const flatten = () => flattenAccount({ broker: ccxtBroker, stopTrader: async () => ({ stopped: true }) as never, verifyTimeoutMs: 0 });
  const first = await flatten();
  assert.equal(first.ordersCanceled, 1);
  assert.equal(kraken.openOrderCount(), 0, 'the resting order is gone');
  assert.equal(first.flat, false, 'ETH is still held');
  const outcome = Object.fromEntries(first.symbols.map((s) => [s.symbol, s]));
  assert.equal(outcome['BTC/USD']?.outcome, 'closed');
  assert.ok(outcome['BTC/USD']?.closingOrderId?.startsWith('O'), 'the closing order is named');
  assert.equal(outcome['ETH/USD']?.outcome, 'failed');
  assert.match(outcome['ETH/USD']?.reason ?? '', /exchange kraken createOrder ETH\/USD: .*EService:Market in cancel_only mode/);
  assert.deepEqual(first.dust?.map((d) => d.symbol), ['DOGE/USD'], 'DOGE is dust, not a failure');
  assert.equal(outcome['DOGE/USD'], undefined, 'dust is not a position to close');
  assert.match(flattenText(first), /Dust left, not sellable \(not a position\): DOGE\/USD — 10 DOGE is under DOGE\/USD's minimum order of 50/);
  assert.deepEqual(first.remainingPositions, [{ symbol: 'ETH/USD', qty: 2 }]);
  // The market takes orders again: flat, with the dust still there and said.
  kraken.refuseOrders('ETH/USD', undefined);
  const second = await flatten();
  assert.equal(second.flat, true, flattenText(second));
  assert.deepEqual(second.dust?.map((d) => d.symbol), ['DOGE/USD']);
  assert.deepEqual(kraken.balances(), { USD: 1000 + 25_000 + 6000, BTC: 0, ETH: 0, DOGE: 10, SOL: 0 });
});

test('bad keys: the message names the variables, never the values — a key Kraken does not know, and a wrong secret (its signature refused)', async () => {
  freshAccount();
  const wrongKey = 'wrong-key-value-5d2b';
  const wrongSecret = Buffer.from('wrong-secret-value-8e4c').toString('base64');
  for (const [bad, value] of [[{ apiKey: wrongKey }, wrongKey], [{ secret: wrongSecret }, wrongSecret]] as const) {
    const { watch, alerts } = harness(broker({ config: bad }));
    const error = await watch.poll().then(() => undefined, (e: unknown) => e as Error);
    assert.ok(error, 'the poll fails');
    assert.match(error.message, /exchange kraken rejected the credentials \(fetchMyTrades: .*EAPI:Invalid (key|signature).*\) — check CCXT_API_KEY and CCXT_SECRET/);
    assert.ok(error.cause instanceof ccxt.AuthenticationError || error.cause instanceof ccxt.ExchangeError, 'the cause keeps ccxt\'s class for the log');
    assert.deepEqual(alerts.map((a) => a.kind), ['broker_unreachable']);
    const everything = JSON.stringify([error.message, alerts]);
    for (const secret of [value, API_KEY, SECRET]) assert.ok(!everything.includes(secret), `no key or secret in the error or the alert (${secret.slice(0, 4)}…)`);
  }
  // A credential the exchange's class requires and was not given (ccxt says so before any request).
  await assert.rejects(broker({ config: { secret: '' } }).fills(new Date(clock.now()).toISOString()), /exchange kraken needs CCXT_SECRET: set it/);
});

test('a rate-limit storm: the calls back off (2 s doubling, one pause for every call), then go through; a storm longer than the back-off fails the poll as unreachable, and it recovers', async () => {
  freshAccount();
  buy();
  const sleeps: number[] = [];
  const warnings: string[] = [];
  const logger: Logger = { ...silentLogger, warn: (m: string) => void warnings.push(m) };
  const { watch, alerts } = harness(broker({ sleeps, logger }));
  kraken.failNext('EAPI:Rate limit exceeded', 3, { method: 'TradesHistory' });
  const before = kraken.calls('TradesHistory').length;
  const result = await watch.poll();
  assert.equal(result.count, 1, 'the fill is read once the exchange lets the call through');
  assert.deepEqual(sleeps, [2000, 4000, 8000], 'backed off, doubling');
  assert.equal(kraken.calls('TradesHistory').length - before, 4, 'three refused, one answered: no hammering');
  assert.match(warnings[0] ?? '', /exchange kraken fetchMyTrades: rate limited \(.*EAPI:Rate limit exceeded.*\); every call pauses 2000 ms/);
  assert.deepEqual(alerts.map((a) => a.kind), []);
  // A storm that outlasts five pauses: the poll fails (the controller's job logs it and goes on), the alert says so.
  sleeps.length = 0;
  kraken.failNext('EAPI:Rate limit exceeded', 6, { method: 'TradesHistory' });
  await assert.rejects(watch.poll(), /exchange kraken fetchMyTrades: still rate limited after backing off 5 times/);
  assert.deepEqual(sleeps, [2000, 4000, 8000, 16_000, 32_000], 'the pauses grow to half a minute');
  assert.deepEqual(alerts.map((a) => a.kind), ['broker_unreachable']);
  assert.equal((await watch.poll()).count, 1);
  assert.deepEqual(alerts.map((a) => a.kind), ['broker_unreachable', 'recovered']);
});

test('an exchange that lists trades only per market (ccxt: ArgumentsRequired): the markets held and traded are asked, with a warning naming them; CCXT_SYMBOLS names the rest', async () => {
  freshAccount({ USD: 10_000, BTC: 0.2 });
  // ccxt's kraken, made to insist on a symbol as Binance's class does.
  class PerMarketKraken extends ccxt.kraken {
    override async fetchMyTrades(symbol?: string, since?: number, limit?: number, params = {}) {
      if (symbol === undefined) throw new ccxt.ArgumentsRequired(`${this.id} fetchMyTrades() requires a symbol argument`);
      return super.fetchMyTrades(symbol, since, limit, params);
    }
  }
  const exchange = () => new PerMarketKraken({ apiKey: API_KEY, secret: SECRET, ...(JSON.parse(kraken.ccxtOptions) as object) });
  const warnings: string[] = [];
  const logger: Logger = { ...silentLogger, warn: (m: string) => void warnings.push(m) };
  buy('BTC/USD');
  buy('SOL/USD', 1); // SOL is held now too
  kraken.placeOrder('ETH/USD', 'buy', 0.01);
  kraken.placeOrder('ETH/USD', 'sell', 0.01); // bought and sold back to nothing: not held
  const since = new Date(clock.now() - 3600_000).toISOString();
  const fills = await broker({ exchange: exchange(), logger }).fills(since);
  assert.deepEqual([...new Set(fills.map((f) => f.symbol))].sort(), ['BTC/USD', 'SOL/USD'], 'the markets held');
  assert.match(warnings.join('\n'), /kraken lists trades only per market: watching BTC\/USD, SOL\/USD\. Fills in any other market are not seen .*name the markets in CCXT_SYMBOLS/);
  const named = await broker({ exchange: exchange(), config: { symbols: ['ETH/USD'] } }).fills(since);
  assert.deepEqual([...new Set(named.map((f) => f.symbol))], ['ETH/USD'], 'CCXT_SYMBOLS: exactly those');
  assert.equal(named.length, 2);
});

test('lock and unlock: an exchange has no such switch, so the broker refuses with the reason and never claims a lock', async () => {
  const ccxtBroker = broker();
  assert.equal(await ccxtBroker.tradingSuspended(), false);
  await assert.rejects(ccxtBroker.setTradingSuspended(true), (e: Error & { kind?: string }) => e.kind === 'refused' && /kraken has no account switch that blocks new orders \(Alpaca's suspend_trade\): lock and unlock need BROKER=alpaca/.test(e.message));
});

test('CCXT_SANDBOX=on where ccxt knows no test network for the exchange: refused at the first call with the way out', async () => {
  assert.throws(() => broker({ config: { sandbox: true } }), /CCXT_SANDBOX=on: ccxt knows no test network for kraken; set CCXT_SANDBOX=off, or point CCXT_OPTIONS "urls" at the test endpoint/);
});
