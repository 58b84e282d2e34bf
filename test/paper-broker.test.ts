// The local paper broker over real HTTP on 127.0.0.1: Alpaca's shapes, its order rules, consistent
// positions/cash/FILL activities, the 207 answers, activity paging and the fault hooks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { startPaperBroker, PaperBrokerRejection, type PaperBroker, type PaperBrokerOptions } from '../testkit/paper-broker.ts';
import { ManualClock } from '../src/clock.ts';

type Json = Record<string, any>;

async function call(broker: PaperBroker, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(broker.url + path, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
}

async function withBroker(options: PaperBrokerOptions, run: (broker: PaperBroker, clock: ManualClock) => Promise<void>) {
  const clock = new ManualClock(Date.parse('2026-01-05T15:00:00Z'));
  const broker = await startPaperBroker({ clock, ...options });
  try {
    await run(broker, clock);
  } finally {
    await broker.close();
  }
}

const ACTIVITY_ID = /^\d{17}::[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

test('a market order fills at once: position, cash, equity and a FILL activity stay consistent', () =>
  withBroker({ prices: { AAPL: 150 } }, async (broker, clock) => {
    const buy = await call(broker, 'POST', '/v2/orders', { symbol: 'AAPL', qty: '10', side: 'buy', type: 'market', time_in_force: 'day' });
    assert.equal(buy.status, 200);
    assert.equal(buy.body.status, 'filled');
    assert.equal(buy.body.filled_qty, '10');
    assert.equal(buy.body.filled_avg_price, '150');
    assert.equal(buy.body.qty, '10');
    assert.equal(buy.body.notional, null);

    const positions = await call(broker, 'GET', '/v2/positions');
    assert.equal(positions.body.length, 1);
    assert.deepEqual(
      { symbol: positions.body[0].symbol, qty: positions.body[0].qty, avg: positions.body[0].avg_entry_price, side: positions.body[0].side, mv: positions.body[0].market_value },
      { symbol: 'AAPL', qty: '10', avg: '150', side: 'long', mv: '1500' },
    );
    let account = (await call(broker, 'GET', '/v2/account')).body;
    assert.equal(account.cash, '98500');
    assert.equal(account.equity, '100000');

    const fills = (await call(broker, 'GET', '/v2/account/activities/FILL')).body;
    assert.equal(fills.length, 1);
    assert.match(fills[0].id, ACTIVITY_ID);
    assert.ok(fills[0].id.startsWith('20260105150000000::'), fills[0].id);
    assert.deepEqual(
      { ...fills[0], id: undefined },
      {
        id: undefined,
        activity_type: 'FILL',
        transaction_time: '2026-01-05T15:00:00.000Z',
        type: 'fill',
        price: '150',
        qty: '10',
        side: 'buy',
        symbol: 'AAPL',
        leaves_qty: '0',
        order_id: buy.body.id,
        cum_qty: '10',
        order_status: 'filled',
      },
    );

    // A partial sell at a higher price keeps the entry price; cash and equity follow.
    clock.advance(60_000);
    broker.setPrice('AAPL', 160);
    const sell = await call(broker, 'POST', '/v2/orders', { symbol: 'AAPL', qty: '4', side: 'sell', type: 'market', time_in_force: 'day' });
    assert.equal(sell.body.status, 'filled');
    const aapl = (await call(broker, 'GET', '/v2/positions/AAPL')).body;
    assert.equal(aapl.qty, '6');
    assert.equal(aapl.avg_entry_price, '150');
    assert.equal(aapl.unrealized_pl, '60');
    account = (await call(broker, 'GET', '/v2/account')).body;
    assert.equal(account.cash, '99140');
    assert.equal(account.equity, '100100');

    // Closed to zero, the position disappears.
    await call(broker, 'POST', '/v2/orders', { symbol: 'AAPL', qty: '6', side: 'sell', type: 'market', time_in_force: 'day' });
    assert.deepEqual((await call(broker, 'GET', '/v2/positions')).body, []);
    const gone = await call(broker, 'GET', '/v2/positions/AAPL');
    assert.equal(gone.status, 404);
    assert.equal(gone.body.code, 40410000);
    assert.equal((await call(broker, 'GET', '/v2/account/activities/FILL?direction=asc')).body.length, 3);

    // The order rules answer like Alpaca.
    const tooMuch = await call(broker, 'POST', '/v2/orders', { symbol: 'AAPL', qty: '1000', side: 'buy', type: 'market', time_in_force: 'day' });
    assert.equal(tooMuch.status, 403);
    assert.deepEqual(tooMuch.body, { code: 40310000, message: 'insufficient buying power' });
    const both = await call(broker, 'POST', '/v2/orders', { symbol: 'AAPL', qty: '1', notional: '10', side: 'buy', type: 'market', time_in_force: 'day' });
    assert.equal(both.status, 422);
    assert.equal(both.body.code, 42210000);
  }));

test('crypto: only gtc/ioc, at least $1, fills while the equity market is closed, positions named without the slash', () =>
  withBroker({ prices: { 'BTC/USD': 50000 }, marketOpen: false }, async (broker) => {
    const day = await call(broker, 'POST', '/v2/orders', { symbol: 'BTC/USD', notional: '10', side: 'buy', type: 'market', time_in_force: 'day' });
    assert.equal(day.status, 422);
    assert.deepEqual(day.body, { code: 42210000, message: 'invalid crypto time_in_force' });

    const tiny = await call(broker, 'POST', '/v2/orders', { symbol: 'BTC/USD', notional: '0.5', side: 'buy', type: 'market', time_in_force: 'gtc' });
    assert.equal(tiny.status, 422);
    assert.equal(tiny.body.code, 42210000);
    assert.match(tiny.body.message, />= 1/);
    const tinyQty = await call(broker, 'POST', '/v2/orders', { symbol: 'BTC/USD', qty: '0.00001', side: 'buy', type: 'market', time_in_force: 'ioc' });
    assert.equal(tinyQty.status, 422, '0.00001 BTC at 50000 is $0.50');

    const ok = await call(broker, 'POST', '/v2/orders', { symbol: 'BTC/USD', notional: '10', side: 'buy', type: 'market', time_in_force: 'gtc' });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.status, 'filled', 'crypto trades 24/7');
    assert.equal(ok.body.symbol, 'BTC/USD');
    assert.equal(ok.body.asset_class, 'crypto');
    assert.equal(ok.body.notional, '10');
    assert.equal(ok.body.qty, null);
    assert.equal(ok.body.filled_qty, '0.0002');

    const [position] = (await call(broker, 'GET', '/v2/positions')).body;
    assert.equal(position.symbol, 'BTCUSD');
    assert.equal(position.qty, '0.0002');
    assert.equal((await call(broker, 'GET', '/v2/positions/BTC%2FUSD')).body.qty, '0.0002');

    // Crypto cannot be shorted.
    const short = await call(broker, 'POST', '/v2/orders', { symbol: 'ETH/USD', qty: '1', side: 'sell', type: 'market', time_in_force: 'gtc' });
    assert.equal(short.status, 403);
    assert.match(short.body.message, /insufficient balance for ETH/);
  }));

test('market closed: an equity market order is accepted but not filled, and fills when the market opens', () =>
  withBroker({ prices: { AAPL: 100 }, marketOpen: false }, async (broker) => {
    assert.equal((await call(broker, 'GET', '/v2/clock')).body.is_open, false);
    const order = await call(broker, 'POST', '/v2/orders', { symbol: 'AAPL', qty: '5', side: 'buy', type: 'market', time_in_force: 'day' });
    assert.equal(order.status, 200);
    assert.equal(order.body.status, 'accepted');
    assert.equal(order.body.filled_qty, '0');
    assert.deepEqual((await call(broker, 'GET', '/v2/positions')).body, []);
    assert.deepEqual((await call(broker, 'GET', '/v2/account/activities/FILL')).body, []);
    const open = (await call(broker, 'GET', '/v2/orders?status=open')).body;
    assert.deepEqual(open.map((o: Json) => o.id), [order.body.id]);

    broker.setMarketOpen(true);
    assert.equal((await call(broker, 'GET', `/v2/orders/${order.body.id}`)).body.status, 'filled');
    assert.equal((await call(broker, 'GET', '/v2/positions/AAPL')).body.qty, '5');
    assert.deepEqual((await call(broker, 'GET', '/v2/orders?status=open')).body, []);
    assert.equal((await call(broker, 'GET', '/v2/orders?status=closed')).body.length, 1);
  }));

test('DELETE /v2/orders and DELETE /v2/positions answer 207 with one entry per order / symbol', () =>
  withBroker({ prices: { AAPL: 100, MSFT: 400, 'ETH/USD': 3000 } }, async (broker) => {
    const limit = broker.placeOrder({ symbol: 'AAPL', qty: 1, side: 'buy', type: 'limit', limit_price: 90, time_in_force: 'day' });
    assert.equal(limit.status, 'new', 'limit orders rest');
    const cancelled = await call(broker, 'DELETE', '/v2/orders');
    assert.equal(cancelled.status, 207);
    assert.equal(cancelled.body.length, 1);
    assert.equal(cancelled.body[0].id, limit.id);
    assert.equal(cancelled.body[0].status, 200);
    assert.equal(cancelled.body[0].body.status, 'canceled');
    assert.equal((await call(broker, 'DELETE', `/v2/orders/${limit.id}`)).status, 422, 'no longer cancelable');

    broker.seedPosition('AAPL', 10, 100);
    broker.seedPosition('MSFT', -3, 400);
    broker.seedPosition('ETHUSD', 0.5, 3000);
    broker.failNext(500, 1, { symbol: 'MSFT', message: 'could not liquidate MSFT' });
    const closed = await call(broker, 'DELETE', '/v2/positions?cancel_orders=true');
    assert.equal(closed.status, 207);
    const bySymbol = Object.fromEntries(closed.body.map((e: Json) => [e.symbol, e]));
    assert.deepEqual(Object.keys(bySymbol).sort(), ['AAPL', 'ETHUSD', 'MSFT']);
    assert.equal(bySymbol.MSFT.status, 500);
    assert.deepEqual(bySymbol.MSFT.body, { code: 50010000, message: 'could not liquidate MSFT' });
    assert.equal(bySymbol.AAPL.status, 200);
    assert.deepEqual(
      { side: bySymbol.AAPL.body.side, qty: bySymbol.AAPL.body.qty, type: bySymbol.AAPL.body.type, status: bySymbol.AAPL.body.status },
      { side: 'sell', qty: '10', type: 'market', status: 'filled' },
    );
    assert.equal(bySymbol.ETHUSD.body.symbol, 'ETH/USD');
    assert.equal(bySymbol.ETHUSD.body.time_in_force, 'gtc');
    assert.deepEqual((await call(broker, 'GET', '/v2/positions')).body.map((p: Json) => [p.symbol, p.qty]), [['MSFT', '-3']]);

    // The short closes with a buy on the next attempt; the account ends flat.
    const again = await call(broker, 'DELETE', '/v2/positions?cancel_orders=true');
    assert.deepEqual(again.body.map((e: Json) => [e.symbol, e.status, e.body.side]), [['MSFT', 200, 'buy']]);
    assert.deepEqual((await call(broker, 'GET', '/v2/positions')).body, []);
    assert.deepEqual((await call(broker, 'DELETE', '/v2/positions')).body, []);
  }));

test('market closed: closing orders are queued ("accepted"); without cancel_orders the queued close holds the shares', () =>
  withBroker({ marketOpen: false }, async (broker) => {
    broker.seedPosition('AAPL', 10, 100);
    const first = await call(broker, 'DELETE', '/v2/positions?cancel_orders=true');
    assert.equal(first.status, 207);
    assert.equal(first.body[0].status, 200);
    assert.equal(first.body[0].body.status, 'accepted');
    assert.equal((await call(broker, 'GET', '/v2/positions/AAPL')).body.qty_available, '0');

    const held = await call(broker, 'DELETE', '/v2/positions');
    assert.equal(held.body[0].status, 403);
    assert.match(held.body[0].body.message, /insufficient qty available for order \(requested: 10, available: 0\)/);

    // cancel_orders=true cancels the queued close and queues a fresh one.
    const second = await call(broker, 'DELETE', '/v2/positions?cancel_orders=true');
    assert.equal(second.body[0].body.status, 'accepted');
    const orders = (await call(broker, 'GET', '/v2/orders?status=all')).body;
    assert.deepEqual(orders.map((o: Json) => o.status).sort(), ['accepted', 'canceled']);

    broker.setMarketOpen(true);
    assert.deepEqual((await call(broker, 'GET', '/v2/positions')).body, []);
  }));

test('FILL activities page by page_token, in both directions, with after/until and the generic endpoint', () =>
  withBroker({ prices: { AAPL: 100 } }, async (broker, clock) => {
    const start = clock.now();
    for (let i = 0; i < 125; i++) {
      broker.placeOrder({ symbol: 'AAPL', qty: 1, side: i % 2 ? 'sell' : 'buy', type: 'market', time_in_force: 'day' });
      clock.advance(1000);
    }
    const all = broker.snapshot().activities;
    assert.equal(all.length, 125);

    const page1 = (await call(broker, 'GET', '/v2/account/activities/FILL?direction=asc&page_size=100')).body;
    assert.equal(page1.length, 100);
    const page2 = (await call(broker, 'GET', `/v2/account/activities/FILL?direction=asc&page_size=100&page_token=${encodeURIComponent(page1[99].id)}`)).body;
    assert.equal(page2.length, 25);
    assert.deepEqual([...page1, ...page2].map((a: Json) => a.id), all.map((a) => a.id));
    const times = [...page1, ...page2].map((a: Json) => Date.parse(a.transaction_time));
    assert.deepEqual(times, [...times].sort((a, b) => a - b));

    const desc = (await call(broker, 'GET', '/v2/account/activities/FILL?page_size=10')).body;
    assert.deepEqual(desc.map((a: Json) => a.id), all.slice(-10).reverse().map((a) => a.id), 'newest first by default');

    const after = new Date(start + 99_500).toISOString(); // fills at start+0 … start+124 s: 25 are later
    assert.equal((await call(broker, 'GET', `/v2/account/activities/FILL?after=${after}`)).body.length, 25);
    const until = new Date(start + 10_000).toISOString();
    assert.equal((await call(broker, 'GET', `/v2/account/activities/FILL?until=${until}`)).body.length, 10);
    assert.equal((await call(broker, 'GET', '/v2/account/activities?activity_types=FILL&page_size=100')).body.length, 100);
    assert.deepEqual((await call(broker, 'GET', '/v2/account/activities/DIV')).body, []);
    assert.equal((await call(broker, 'GET', '/v2/account/activities/FILL?page_size=500')).status, 422);
    assert.equal((await call(broker, 'GET', '/v2/account/activities/FILL?page_token=nope')).status, 422);
  }));

test('an order can fill in N partial fills at distinct times, or by hand through fillOrder', () =>
  withBroker({ prices: { AAPL: 100 } }, async (broker, clock) => {
    const order = broker.placeOrder({ symbol: 'AAPL', qty: 9, side: 'buy', type: 'market', time_in_force: 'day' }, { partialFills: 3 });
    assert.equal(order.status, 'filled');
    const fills = broker.snapshot().activities;
    assert.deepEqual(fills.map((a) => [a.type, a.qty, a.cum_qty, a.leaves_qty]), [
      ['partial_fill', '3', '3', '6'],
      ['partial_fill', '3', '6', '3'],
      ['fill', '3', '9', '0'],
    ]);
    assert.equal(new Set(fills.map((a) => a.transaction_time)).size, 3);

    const resting = broker.placeOrder({ symbol: 'AAPL', qty: 4, side: 'buy', type: 'limit', limit_price: 99, time_in_force: 'gtc' });
    clock.advance(5000);
    const part = broker.fillOrder(String(resting.id), 1);
    assert.deepEqual([part.type, part.price, part.order_status], ['partial_fill', '99', 'partially_filled']);
    assert.equal((await call(broker, 'GET', `/v2/orders/${resting.id}`)).body.status, 'partially_filled');
    clock.advance(5000);
    assert.equal(broker.fillOrder(String(resting.id)).type, 'fill');
    assert.equal((await call(broker, 'GET', '/v2/positions/AAPL')).body.qty, '13');
    assert.throws(() => broker.fillOrder(String(resting.id)), PaperBrokerRejection);
  }));

test('hooks: failNext with Retry-After, hang-ups, delays, authorization and unknown routes', () =>
  withBroker({ keyId: 'paper-key', secretKey: 'paper-secret' }, async (broker) => {
    const auth = { 'APCA-API-KEY-ID': 'paper-key', 'APCA-API-SECRET-KEY': 'paper-secret' };
    const denied = await call(broker, 'GET', '/v2/account', undefined, { 'APCA-API-KEY-ID': 'paper-key', 'APCA-API-SECRET-KEY': 'wrong' });
    assert.equal(denied.status, 401);
    assert.deepEqual(denied.body, { code: 40110000, message: 'request is not authorized' });
    assert.equal((await call(broker, 'GET', '/v2/account', undefined, auth)).status, 200);

    broker.failNext(429, 2, { path: '/v2/account', retryAfter: 0 });
    const limited = await call(broker, 'GET', '/v2/account', undefined, auth);
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get('retry-after'), '0');
    assert.deepEqual(limited.body, { code: 42910000, message: 'rate limit exceeded' });
    assert.equal((await call(broker, 'GET', '/v2/clock', undefined, auth)).status, 200, 'only the matching path fails');
    assert.equal((await call(broker, 'GET', '/v2/account', undefined, auth)).status, 429);
    assert.equal((await call(broker, 'GET', '/v2/account', undefined, auth)).status, 200, 'count exhausted');

    broker.failNext(503, 1, { method: 'DELETE', path: /^\/v2\/positions/ });
    assert.equal((await call(broker, 'GET', '/v2/positions', undefined, auth)).status, 200);
    const unavailable = await call(broker, 'DELETE', '/v2/positions', undefined, auth);
    assert.equal(unavailable.status, 503);
    assert.equal(unavailable.headers.get('retry-after'), '1');

    broker.failNext('hangup');
    await assert.rejects(call(broker, 'GET', '/v2/clock', undefined, auth));

    broker.setDelay(150);
    const started = Date.now();
    assert.equal((await call(broker, 'GET', '/v2/clock', undefined, auth)).status, 200);
    assert.ok(Date.now() - started >= 140, 'the answer was delayed');
    broker.setDelay(0);

    const unknown = await call(broker, 'GET', '/v2/nowhere', undefined, auth);
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.code, 40410000);
    assert.equal(broker.requests, 11);
    assert.deepEqual(broker.requestLog.at(-1), { method: 'GET', path: '/v2/nowhere', status: 404 });
  }));

test('the CLI prints its URL as one JSON line and stops cleanly on SIGTERM', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'testkit/paper-broker-cli.ts', '--port', '0', '--market-closed'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    const lines = createInterface({ input: child.stdout! });
    const first = await new Promise<string>((resolve, reject) => {
      lines.once('line', resolve);
      child.once('exit', (code) => reject(new Error(`CLI exited early (${code})`)));
    });
    const { url } = JSON.parse(first) as { url: string };
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const clock = (await (await fetch(`${url}/v2/clock`)).json()) as Json;
    assert.equal(clock.is_open, false);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});

test('portfolio history: Alpaca\'s parallel arrays from the recorded equity, timeframe by period, intraday refused over 30 days', () =>
  withBroker({ cash: 100_000 }, async (broker, clock) => {
    broker.seedHistory([{ at: clock.now() - 2 * 86_400_000, equity: 98_000 }]);
    broker.seedPosition('AAPL', 10, 100); // equity 101_000 from now
    clock.advance(3 * 3_600_000);
    broker.setPrice('AAPL', 90); // 100_900

    const week = await call(broker, 'GET', '/v2/account/portfolio/history?period=1W&timeframe=1H');
    assert.equal(week.status, 200);
    const h = week.body as Json;
    assert.deepEqual(Object.keys(h).sort(), ['base_value', 'equity', 'profit_loss', 'profit_loss_pct', 'timeframe', 'timestamp']);
    assert.equal(h.timeframe, '1H');
    assert.equal(h.timestamp.length, h.equity.length);
    assert.equal(h.profit_loss.length, h.equity.length);
    assert.ok(h.timestamp.every((t: number, i: number) => Number.isInteger(t) && t % 3600 === 0 && (i === 0 || t - h.timestamp[i - 1] === 3600)), 'unix seconds, one per hour');
    assert.equal(h.base_value, 98_000, 'the first point of the period');
    assert.equal(h.equity[0], 98_000);
    assert.equal(h.equity.at(-1), 100_900);
    assert.equal(h.profit_loss.at(-1), 2_900);
    assert.equal(h.profit_loss_pct.at(-1), Number((100_900 / 98_000 - 1).toFixed(9)));
    assert.ok(h.equity.includes(101_000), 'the seeded position\'s hour is on the curve');

    const byDefault = await call(broker, 'GET', '/v2/account/portfolio/history?period=1D');
    assert.equal(byDefault.body.timeframe, '1Min', 'under 7 days: 1Min, like Alpaca');
    const month = await call(broker, 'GET', '/v2/account/portfolio/history');
    assert.deepEqual([month.status, month.body.timeframe], [200, '1D'], 'default period 1M in days');
    const refused = await call(broker, 'GET', '/v2/account/portfolio/history?period=1M&timeframe=15Min');
    assert.deepEqual([refused.status, refused.body.code], [422, 42210000]);
    const bad = await call(broker, 'GET', '/v2/account/portfolio/history?period=fortnight');
    assert.equal(bad.status, 422);
  }));

test('account configurations: GET answers the object, PATCH changes only the given fields and answers the whole object', () =>
  withBroker({}, async (broker) => {
    const initial = await call(broker, 'GET', '/v2/account/configurations');
    assert.equal(initial.status, 200);
    assert.deepEqual(initial.body, {
      dtbp_check: 'entry',
      trade_confirm_email: 'all',
      suspend_trade: false,
      no_shorting: false,
      fractional_trading: true,
      max_margin_multiplier: '4',
      pdt_check: 'entry',
    });
    assert.equal((await call(broker, 'GET', '/v2/account')).body.trade_suspended_by_user, false);

    const patched = await call(broker, 'PATCH', '/v2/account/configurations', { suspend_trade: true, some_future_setting: 1 });
    assert.equal(patched.status, 200);
    assert.deepEqual(patched.body, { ...initial.body, suspend_trade: true }, 'only suspend_trade changed; the unknown field is ignored');
    assert.deepEqual((await call(broker, 'GET', '/v2/account/configurations')).body, patched.body);
    assert.equal((await call(broker, 'GET', '/v2/account')).body.trade_suspended_by_user, true);

    const other = await call(broker, 'PATCH', '/v2/account/configurations', { trade_confirm_email: 'none' });
    assert.deepEqual(other.body, { ...initial.body, suspend_trade: true, trade_confirm_email: 'none' }, 'suspend_trade is kept');

    // A bad value is refused in Alpaca's shape and changes nothing, not even the valid fields next to it.
    for (const bad of [{ suspend_trade: 'yes' }, { suspend_trade: null }, { suspend_trade: 0 }, { suspend_trade: false, pdt_check: 'sometimes' }]) {
      const refused = await call(broker, 'PATCH', '/v2/account/configurations', bad);
      assert.equal(refused.status, 422, JSON.stringify(bad));
      assert.equal(refused.body.code, 42210000);
      assert.match(refused.body.message, /^invalid (suspend_trade|pdt_check)/);
    }
    const notAnObject = await call(broker, 'PATCH', '/v2/account/configurations', [true]);
    assert.deepEqual([notAnObject.status, notAnObject.body.code], [422, 42210000]);
    assert.equal((await call(broker, 'GET', '/v2/account/configurations')).body.suspend_trade, true, 'the refused PATCHes changed nothing');

    const wrongMethod = await call(broker, 'POST', '/v2/account/configurations', { suspend_trade: false });
    assert.deepEqual([wrongMethod.status, wrongMethod.body.code], [405, 40510000]);

    // Faults hit the new route like any other: one 500, then the PATCH goes through.
    broker.failNext(500, 1, { method: 'PATCH', path: '/v2/account/configurations' });
    assert.equal((await call(broker, 'GET', '/v2/account/configurations')).status, 200, 'a GET does not match the PATCH fault');
    const failed = await call(broker, 'PATCH', '/v2/account/configurations', { suspend_trade: false });
    assert.deepEqual([failed.status, failed.body], [500, { code: 50010000, message: 'internal server error occurred' }]);
    assert.equal((await call(broker, 'GET', '/v2/account/configurations')).body.suspend_trade, true, 'the faulted PATCH did nothing');
    const lifted = await call(broker, 'PATCH', '/v2/account/configurations', { suspend_trade: false });
    assert.deepEqual([lifted.status, lifted.body.suspend_trade], [200, false]);
  }));

test('suspend_trade: POST /v2/orders, placeOrder() and every close are refused with 403; cancels still work; the positions stay', () =>
  withBroker({ prices: { AAPL: 100, MSFT: 400, SPY: 500 }, marketOpen: false }, async (broker) => {
    broker.seedPosition('AAPL', 10, 100);
    broker.seedPosition('MSFT', -2, 400);
    const resting = broker.placeOrder({ symbol: 'AAPL', qty: 1, side: 'buy', type: 'limit', limit_price: 90, time_in_force: 'gtc' });
    const queued = broker.placeOrder({ symbol: 'AAPL', qty: 2, side: 'buy', type: 'market', time_in_force: 'day' });
    const byId = broker.placeOrder({ symbol: 'MSFT', qty: 1, side: 'buy', type: 'limit', limit_price: 300, time_in_force: 'gtc' });
    const swept = broker.placeOrder({ symbol: 'SPY', qty: 1, side: 'buy', type: 'limit', limit_price: 50, time_in_force: 'gtc' });
    assert.equal(queued.status, 'accepted', 'the market is closed: the market order waits');

    assert.equal((await call(broker, 'PATCH', '/v2/account/configurations', { suspend_trade: true })).status, 200);
    const suspended = { code: 40310000, message: 'new orders are not accepted: trading is suspended on this account (suspend_trade)' };
    assert.equal((await call(broker, 'GET', '/v2/account')).body.trade_suspended_by_user, true);

    const order = await call(broker, 'POST', '/v2/orders', { symbol: 'AAPL', qty: '1', side: 'buy', type: 'market', time_in_force: 'day' });
    assert.deepEqual([order.status, order.body], [403, suspended]);
    assert.throws(
      () => broker.placeOrder({ symbol: 'AAPL', qty: 1, side: 'buy', type: 'market', time_in_force: 'day' }),
      (e: unknown) => e instanceof PaperBrokerRejection && e.status === 403 && e.message === suspended.message,
    );
    const one = await call(broker, 'DELETE', '/v2/positions/AAPL');
    assert.deepEqual([one.status, one.body], [403, suspended]);

    // Cancels still work, by id and in bulk.
    assert.equal((await call(broker, 'DELETE', `/v2/orders/${byId.id}`)).status, 204);
    assert.equal((await call(broker, 'GET', `/v2/orders/${byId.id}`)).body.status, 'canceled');
    const cancelled = await call(broker, 'DELETE', '/v2/orders');
    assert.equal(cancelled.status, 207);
    assert.deepEqual(
      cancelled.body.map((e: Json) => [e.id, e.status, e.body.status]).sort(),
      [resting, queued, swept].map((o) => [o.id, 200, 'canceled']).sort(),
    );

    // Closing everything: every symbol's close is refused and the positions stay.
    const closeAll = await call(broker, 'DELETE', '/v2/positions?cancel_orders=true');
    assert.equal(closeAll.status, 207);
    assert.deepEqual(closeAll.body.map((e: Json) => [e.symbol, e.status, e.body]), [
      ['AAPL', 403, suspended],
      ['MSFT', 403, suspended],
    ]);
    assert.deepEqual((await call(broker, 'GET', '/v2/positions')).body.map((p: Json) => [p.symbol, p.qty]), [['AAPL', '10'], ['MSFT', '-2']]);
    assert.equal(broker.snapshot().orders.length, 4, 'no order was recorded while suspended');
    assert.deepEqual((await call(broker, 'GET', '/v2/orders?status=open')).body, []);
  }));

test('suspend_trade: orders accepted before the switch keep resting and filling; lifting it lets orders and closes in again', () =>
  withBroker({ prices: { AAPL: 100 }, marketOpen: false }, async (broker) => {
    const resting = broker.placeOrder({ symbol: 'AAPL', qty: 1, side: 'buy', type: 'limit', limit_price: 90, time_in_force: 'gtc' });
    const queued = broker.placeOrder({ symbol: 'AAPL', qty: 2, side: 'buy', type: 'market', time_in_force: 'day' });
    broker.setTradingSuspended(true); // as a person would in the dashboard
    assert.equal((await call(broker, 'GET', '/v2/account/configurations')).body.suspend_trade, true);
    assert.equal((await call(broker, 'GET', '/v2/account')).body.trade_suspended_by_user, true);
    assert.deepEqual((await call(broker, 'GET', '/v2/orders?status=open')).body.map((o: Json) => o.id).sort(), [resting.id, queued.id].sort());

    broker.setMarketOpen(true);
    assert.equal((await call(broker, 'GET', `/v2/orders/${queued.id}`)).body.status, 'filled', 'the queued market order filled at the open');
    assert.equal(broker.fillOrder(String(resting.id)).type, 'fill');
    assert.equal((await call(broker, 'GET', '/v2/positions/AAPL')).body.qty, '3');

    // Lifted, orders and closes go in again.
    const lifted = await call(broker, 'PATCH', '/v2/account/configurations', { suspend_trade: false });
    assert.equal(lifted.body.suspend_trade, false);
    assert.equal((await call(broker, 'GET', '/v2/account')).body.trade_suspended_by_user, false);
    const again = await call(broker, 'POST', '/v2/orders', { symbol: 'AAPL', qty: '1', side: 'buy', type: 'market', time_in_force: 'day' });
    assert.deepEqual([again.status, again.body.status], [200, 'filled']);
    assert.equal(broker.placeOrder({ symbol: 'AAPL', qty: 1, side: 'sell', type: 'market', time_in_force: 'day' }).status, 'filled');
    const closed = await call(broker, 'DELETE', '/v2/positions?cancel_orders=true');
    assert.deepEqual(closed.body.map((e: Json) => [e.symbol, e.status, e.body.status]), [['AAPL', 200, 'filled']]);
    assert.deepEqual((await call(broker, 'GET', '/v2/positions')).body, []);
  }));
