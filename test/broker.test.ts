// AlpacaBroker (real axios) against the local paper broker over real HTTP on 127.0.0.1: parsing,
// paging, the retry policy per call, time-outs, credentials, 207 results — and that no key ever
// reaches an error, its cause chain or a log line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { inspect } from 'node:util';
import type { AddressInfo } from 'node:net';
import { AlpacaBroker, BrokerRequestError, type AlpacaBrokerOptions } from '../src/broker/alpaca.ts';
import { OperationError } from '../src/errors.ts';
import type { Logger } from '../src/log.ts';
import { ManualClock } from '../src/clock.ts';
import { startPaperBroker, type PaperBroker, type PaperBrokerOptions } from '../testkit/paper-broker.ts';

const KEY_ID = 'PKTESTKEYID7Q2W9E4R';
const SECRET = 'sk-Secret-9f8e7d6c5b4a-DoNotLeak';

interface Harness {
  paper: PaperBroker;
  broker: AlpacaBroker;
  clock: ManualClock;
  sleeps: number[];
  logLines: string[];
}

async function withHarness(
  options: { paper?: PaperBrokerOptions; client?: Partial<AlpacaBrokerOptions> },
  run: (h: Harness) => Promise<void>,
) {
  const clock = new ManualClock(Date.parse('2026-01-05T15:00:00Z'));
  const paper = await startPaperBroker({ clock, keyId: KEY_ID, secretKey: SECRET, ...options.paper });
  const sleeps: number[] = [];
  const logLines: string[] = [];
  const logger: Logger = {
    debug: (m) => logLines.push(m),
    info: (m) => logLines.push(m),
    warn: (m) => logLines.push(m),
    error: (m) => logLines.push(m),
  };
  const broker = new AlpacaBroker({
    baseUrl: paper.url,
    keyId: KEY_ID,
    secretKey: SECRET,
    logger,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    ...options.client,
  });
  try {
    await run({ paper, broker, clock, sleeps, logLines });
  } finally {
    await paper.close();
  }
}

async function failure(work: Promise<unknown>): Promise<OperationError> {
  try {
    await work;
  } catch (error) {
    assert.ok(error instanceof OperationError, `expected an OperationError, got ${inspect(error)}`);
    return error;
  }
  assert.fail('expected the call to fail');
}

/** Everything a front or a log could print of an error: message, String, JSON and inspect of each cause. */
function assertNoKeys(error: unknown, logLines: string[] = []) {
  const views: string[] = [inspect(error, { depth: Infinity, showHidden: true }), ...logLines];
  for (let e: unknown = error; e !== undefined && e !== null; e = (e as { cause?: unknown }).cause) {
    views.push(String(e), JSON.stringify(e) ?? '', e instanceof Error ? e.message + (e.stack ?? '') : '');
  }
  for (const view of views) {
    assert.ok(!view.includes(KEY_ID), `key id leaked: ${view}`);
    assert.ok(!view.includes(SECRET), `secret key leaked: ${view}`);
  }
}

const activityRequests = (paper: PaperBroker) => paper.requestLog.filter((r) => r.path.startsWith('/v2/account/activities/FILL'));

test('account, clock, positions and open orders are parsed from Alpaca strings into numbers', () =>
  withHarness({ paper: { prices: { AAPL: 150, 'BTC/USD': 50000 } } }, async ({ paper, broker }) => {
    paper.setLastEquity(99_000);
    paper.placeOrder({ symbol: 'AAPL', qty: 10, side: 'buy', type: 'market', time_in_force: 'day' });
    paper.placeOrder({ symbol: 'BTC/USD', notional: 100, side: 'buy', type: 'market', time_in_force: 'gtc' });
    paper.seedPosition('TSLA', -2, 250);
    paper.setPrice('AAPL', 155);
    const limit = paper.placeOrder({ symbol: 'AAPL', qty: 1, side: 'buy', type: 'limit', limit_price: 140, time_in_force: 'gtc' });

    const account = await broker.account();
    // cash 100000 - 1500 - 100 = 98400; positions 10×155 + 0.002×50000 - 2×250 = 1150
    assert.deepEqual(account, {
      accountNumber: 'PA0000PAPER1',
      status: 'ACTIVE',
      currency: 'USD',
      equity: 99_550,
      lastEquity: 99_000,
      cash: 98_400,
      buyingPower: 98_400,
      dayPnl: 550,
      tradeSuspendedByUser: false,
      tradingBlocked: false,
      accountBlocked: false,
    });

    const positions = Object.fromEntries((await broker.positions()).map((p) => [p.symbol, p]));
    assert.deepEqual(positions.AAPL, { symbol: 'AAPL', qty: 10, side: 'long', marketValue: 1550, avgEntryPrice: 150, unrealizedPnl: 50, assetClass: 'us_equity' });
    assert.equal(positions.BTCUSD.qty, 0.002);
    assert.equal(positions.BTCUSD.assetClass, 'crypto');
    assert.equal(positions.TSLA.qty, -2);
    assert.equal(positions.TSLA.side, 'short');

    assert.deepEqual(await broker.clock(), { timestamp: '2026-01-05T15:00:00.000Z', isOpen: true, nextOpen: '2026-01-06T15:00:00.000Z', nextClose: '2026-01-05T16:00:00.000Z' });
    const open = await broker.openOrders();
    assert.deepEqual(open.map((o) => [o.id, o.symbol, o.side, o.qty, o.type, o.timeInForce, o.status, o.filledQty]), [
      [limit.id, 'AAPL', 'buy', 1, 'limit', 'gtc', 'new', 0],
    ]);
    assert.ok(paper.requestLog.some((r) => r.path === '/v2/orders?status=open&limit=500'), 'paper.requestLog.some((r) => r.path === \'/v2/orders?status=open&limit=500\')');
  }));

test('fills: more than 100 fills come back complete and oldest first, paged by page_token', () =>
  withHarness({ paper: { prices: { AAPL: 100 } } }, async ({ paper, broker, clock }) => {
    const start = clock.now();
    for (let i = 0; i < 230; i++) {
      paper.placeOrder({ symbol: 'AAPL', qty: 1, side: i % 2 ? 'sell' : 'buy', type: 'market', time_in_force: 'day' }, { partialFills: i === 7 ? 2 : 1 });
      clock.advance(1000);
    }
    const expected = paper.snapshot().activities;
    assert.equal(expected.length, 231);

    const fills = await broker.fills(new Date(start - 1).toISOString());
    assert.equal(fills.length, 231);
    assert.deepEqual(fills.map((f) => f.id), expected.map((a) => a.id));
    assert.equal(new Set(fills.map((f) => f.id)).size, 231);
    for (let i = 1; i < fills.length; i++) assert.ok(fills[i - 1].at <= fills[i].at, 'oldest first');
    assert.deepEqual(fills[0], {
      id: expected[0].id,
      orderId: expected[0].order_id,
      symbol: 'AAPL',
      side: 'buy',
      qty: 1,
      price: 100,
      at: start,
      type: 'fill',
      cumQty: 1,
    });
    assert.deepEqual(fills.slice(7, 9).map((f) => [f.type, f.qty]), [['partial_fill', 0.5], ['fill', 0.5]]);

    const pages = activityRequests(paper);
    assert.equal(pages.length, 3, '100 + 100 + 31');
    assert.ok(pages.every((r) => r.path.includes('direction=asc') && r.path.includes('page_size=100')), 'pages.every((r) => r.path.includes(\'direction=asc\') && r.path.includes(\'page_size=100\'))');
    assert.ok(!pages[0].path.includes('page_token'), '!pages[0].path.includes(\'page_token\')');
    const token = (path: string) => new URL(path, 'http://x').searchParams.get('page_token');
    assert.deepEqual(pages.map((r) => token(r.path)), [null, fills[99].id, fills[199].id]);

    // `after` is exclusive: the fills of the last 30 seconds only.
    const recent = await broker.fills(new Date(start + 199_500).toISOString());
    assert.deepEqual(recent.map((f) => f.id), expected.slice(-30).map((a) => a.id));
  }));

test('fills: exactly a full last page ends on the following empty page', () =>
  withHarness({}, async ({ paper, broker, clock }) => {
    for (let i = 0; i < 200; i++) {
      paper.placeOrder({ symbol: 'AAPL', qty: 1, side: i % 2 ? 'sell' : 'buy', type: 'market', time_in_force: 'day' });
      clock.advance(10);
    }
    assert.equal((await broker.fills('2026-01-01T00:00:00Z')).length, 200);
    assert.equal(activityRequests(paper).length, 3);
    await assert.rejects(broker.fills('yesterday'), (e: unknown) => e instanceof OperationError && e.kind === 'usage');
  }));

test('429 then success: Retry-After is honoured through the injected sleep', () =>
  withHarness({}, async ({ paper, broker, sleeps, logLines }) => {
    paper.failNext(429, 1, { path: '/v2/account', retryAfter: 2 });
    assert.equal((await broker.account()).status, 'ACTIVE');
    assert.deepEqual(sleeps, [2000]);
    assert.deepEqual(paper.requestLog.map((r) => r.status), [429, 200]);
    assert.match(logLines.join('\n'), /GET \/v2\/account answered 429: rate limit exceeded; retrying in 2000 ms \(attempt 2 of 4\)/);

    // A Retry-After beyond what we are willing to wait fails at once, saying so.
    paper.failNext(429, 1, { path: '/v2/account', retryAfter: 60 });
    const error = await failure(broker.account());
    assert.match(error.message, /answered 429: rate limit exceeded; the broker asks to wait 60 s/);
    assert.deepEqual(sleeps, [2000]);
  }));

test('500 twice then success on a GET, with exponential back-off', () =>
  withHarness({}, async ({ paper, broker, sleeps }) => {
    paper.failNext(500, 2, { path: '/v2/positions' });
    assert.deepEqual(await broker.positions(), []);
    assert.deepEqual(sleeps, [250, 500]);
    assert.deepEqual(paper.requestLog.map((r) => r.status), [500, 500, 200]);
  }));

test('a persistent 500 ends in a clear error naming method, path, status and the broker message', () =>
  withHarness({}, async ({ paper, broker, sleeps }) => {
    paper.failNext(500, 10, { path: '/v2/account' });
    const error = await failure(broker.account());
    assert.equal(error.kind, 'failed');
    assert.equal(error.message, 'broker GET /v2/account answered 500: internal server error occurred (after 4 attempts)');
    assert.ok(error.cause instanceof BrokerRequestError, 'error.cause instanceof BrokerRequestError');
    assert.deepEqual({ ...error.cause.details, requestId: undefined }, {
      method: 'GET',
      path: '/v2/account',
      attempts: 4,
      status: 500,
      code: 50010000,
      brokerMessage: 'internal server error occurred',
      requestId: undefined,
    });
    assert.deepEqual(sleeps, [250, 500, 1000]);
    assert.equal(paper.requests, 4);
    assertNoKeys(error);
  }));

test('401: "credentials rejected", not retried, and no key in the error, its causes or the log', async () => {
  const paper = await startPaperBroker({ keyId: 'the-real-key', secretKey: 'the-real-secret' });
  const logLines: string[] = [];
  const logger: Logger = { debug: (m) => logLines.push(m), info: (m) => logLines.push(m), warn: (m) => logLines.push(m), error: (m) => logLines.push(m) };
  try {
    const broker = new AlpacaBroker({ baseUrl: paper.url, keyId: KEY_ID, secretKey: SECRET, logger, sleep: async () => {} });
    const error = await failure(broker.account());
    assert.equal(error.kind, 'failed');
    assert.equal(error.message, 'broker credentials rejected (401) — check APCA_API_KEY_ID and APCA_API_SECRET_KEY');
    assert.equal(paper.requests, 1);
    assertNoKeys(error, logLines);

    // Alpaca's bare 403 "forbidden." (e.g. paper keys on the live URL) is a credentials problem too …
    paper.failNext(403, 1, { message: 'forbidden.' });
    assert.match((await failure(broker.clock())).message, /^broker credentials rejected \(403\)/);
  } finally {
    await paper.close();
  }
});

test('a 403 business refusal is reported as the broker said it, not as bad credentials', () =>
  withHarness({ paper: { cash: 100 } }, async ({ broker }) => {
    const error = await failure(broker.placeOrder({ symbol: 'AAPL', side: 'buy', qty: 5, type: 'market', time_in_force: 'day' }));
    assert.equal(error.message, 'broker POST /v2/orders answered 403: insufficient buying power');
    const crypto = await failure(broker.placeOrder({ symbol: 'BTC/USD', side: 'buy', notional: 10, type: 'market', time_in_force: 'day' }));
    assert.equal(crypto.message, 'broker POST /v2/orders answered 422: invalid crypto time_in_force');
    const order = await broker.placeOrder({ symbol: 'AAPL', side: 'buy', notional: 50, type: 'market', time_in_force: 'day' });
    assert.deepEqual([order.symbol, order.notional, order.qty, order.status, order.filledQty], ['AAPL', 50, undefined, 'filled', 0.5]);
    assert.match(order.clientOrderId ?? '', /^tw-/);
    await assert.rejects(broker.placeOrder({ symbol: 'AAPL', side: 'buy', type: 'market', time_in_force: 'day' }), /exactly one of qty or notional/);
  }));

test('time-out: a slow broker gives a clear time-out error; a GET is retried, a DELETE is not', () =>
  withHarness({ client: { timeoutMs: 400, retries: 1 } }, async ({ paper, broker, logLines }) => {
    paper.seedPosition('AAPL', 1, 100);
    // Generous margins: under a loaded machine a 100 ms time-out could fire before the request
    // even reached the broker, and then there would be no late close to hide.
    paper.setDelay(1500);
    const started = Date.now();
    const getError = await failure(broker.account());
    assert.equal(getError.message, 'broker GET /v2/account timed out after 400 ms (2 attempts)');
    assert.ok(Date.now() - started < 2900, 'bounded by the time-out (2 × 400 ms), not by the broker (2 × 1500 ms)');
    assert.equal(paper.requestLog.filter((r) => r.path === '/v2/account').length, 2);
    assertNoKeys(getError, logLines);

    // The close was done but answered late: repeating it blindly could act twice.
    const deleteError = await failure(broker.closeAllPositions());
    assert.match(deleteError.message, /^broker DELETE \/v2\/positions timed out after 400 ms; not repeated because the broker may have acted on it/);
    assert.equal(paper.requestLog.filter((r) => r.path.startsWith('/v2/positions')).length, 1);
    assertNoKeys(deleteError, logLines);
    paper.setDelay(0);
    assert.deepEqual(await broker.positions(), [], 'the late answer hid a close that happened');
  }));

test('bulk DELETEs retry only when the broker certainly did nothing: 429/503 yes, 500 no', () =>
  withHarness({}, async ({ paper, broker, sleeps }) => {
    paper.seedPosition('AAPL', 3, 100);
    paper.failNext(500, 1, { method: 'DELETE', path: '/v2/positions' });
    const error = await failure(broker.closeAllPositions());
    assert.equal(error.message, 'broker DELETE /v2/positions answered 500: internal server error occurred');
    assert.deepEqual(sleeps, []);

    paper.failNext(503, 1, { method: 'DELETE', path: '/v2/positions', retryAfter: 0 });
    paper.failNext(429, 1, { method: 'DELETE', path: '/v2/positions', retryAfter: 0 });
    const results = await broker.closeAllPositions();
    assert.deepEqual(results.map((r) => [r.symbol, r.status, r.order?.status]), [['AAPL', 200, 'filled']]);
    assert.deepEqual(sleeps, [0, 0]);
    assert.deepEqual(
      paper.requestLog.filter((r) => r.method === 'DELETE').map((r) => r.status),
      [500, 503, 429, 207],
    );
    assert.ok(paper.requestLog.every((r) => r.method !== 'DELETE' || r.path === '/v2/positions?cancel_orders=true'), 'paper.requestLog.every((r) => r.method !== \'DELETE\' || r.path === \'/v2/positions?cancel_orders=true\')');
  }));

test('connection refused: retried (nothing was sent), then a clear error without keys', async () => {
  const closed = await startPaperBroker();
  const url = closed.url;
  await closed.close();
  const sleeps: number[] = [];
  const broker = new AlpacaBroker({ baseUrl: url, keyId: KEY_ID, secretKey: SECRET, retries: 2, sleep: async (ms) => void sleeps.push(ms) });
  const error = await failure(broker.cancelAllOrders());
  assert.equal(error.message, 'broker DELETE /v2/orders failed: connection refused (ECONNREFUSED) — is APCA_API_BASE_URL right? (after 3 attempts)');
  assert.deepEqual(sleeps, [250, 500]);
  assertNoKeys(error);
});

test('closeAllPositions: one symbol failing inside the 207 keeps its status and reason; the others close', () =>
  withHarness({}, async ({ paper, broker }) => {
    paper.seedPosition('AAPL', 10, 190);
    paper.seedPosition('MSFT', 5, 420);
    paper.seedPosition('BTC/USD', 0.01, 60000);
    paper.failNext(500, 1, { symbol: 'MSFT', message: 'liquidation failed for MSFT' });
    const results = Object.fromEntries((await broker.closeAllPositions()).map((r) => [r.symbol, r]));
    assert.deepEqual(Object.keys(results).sort(), ['AAPL', 'BTCUSD', 'MSFT']);
    assert.deepEqual(results.MSFT, { symbol: 'MSFT', status: 500, error: 'liquidation failed for MSFT' });
    assert.equal(results.AAPL.status, 200);
    assert.deepEqual(
      [results.AAPL.order?.side, results.AAPL.order?.qty, results.AAPL.order?.type, results.AAPL.order?.status],
      ['sell', 10, 'market', 'filled'],
    );
    assert.equal(results.BTCUSD.order?.symbol, 'BTC/USD');
    assert.equal(results.AAPL.error, undefined);
    assert.deepEqual((await broker.positions()).map((p) => p.symbol), ['MSFT']);
  }));

test('market closed: the closing order comes back "accepted" (queued), the position is still there', () =>
  withHarness({ paper: { marketOpen: false } }, async ({ paper, broker }) => {
    paper.seedPosition('AAPL', 10, 190);
    const limit = paper.placeOrder({ symbol: 'SPY', qty: 1, side: 'buy', type: 'limit', limit_price: 1, time_in_force: 'gtc' });
    assert.equal((await broker.clock()).isOpen, false);
    const [result] = await broker.closeAllPositions();
    assert.equal(result.status, 200);
    assert.equal(result.order?.status, 'accepted');
    assert.equal(result.order?.filledQty, 0);
    assert.deepEqual((await broker.positions()).map((p) => [p.symbol, p.qty]), [['AAPL', 10]]);
    // cancel_orders=true cancelled the resting limit first; the queued close is the only open order.
    const open = await broker.openOrders();
    assert.deepEqual(open.map((o) => o.id), [result.order?.id]);
    assert.ok(!open.some((o) => o.id === limit.id), '!open.some((o) => o.id === limit.id)');
    assert.deepEqual(await broker.cancelAllOrders(), [{ id: result.order?.id, status: 200 }]);
  }));

test('malformed answers are refused with a message naming the call and the field', async () => {
  const answers: Record<string, string> = {
    '/v2/account': JSON.stringify({ status: 'ACTIVE', currency: 'USD', equity: 'lots', last_equity: '1', cash: '1', buying_power: '1' }),
    '/v2/positions': JSON.stringify({ not: 'a list' }),
    '/v2/clock': '<html>maintenance</html>',
    '/v2/account/activities/FILL': JSON.stringify([{ id: 'a1', activity_type: 'FILL', type: 'fill', transaction_time: 'soon', order_id: 'o', symbol: 'X', side: 'buy', qty: '1', price: '1' }]),
  };
  const server = http.createServer((req, res) => {
    const body = answers[new URL(req.url ?? '/', 'http://x').pathname] ?? '{}';
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const broker = new AlpacaBroker({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/`, keyId: KEY_ID, secretKey: SECRET });
    assert.equal((await failure(broker.account())).message, 'broker GET /v2/account answered malformed data: "equity" is "lots", expected a number');
    assert.equal((await failure(broker.positions())).message, 'broker GET /v2/positions answered malformed data: expected an array, got {"not":"a list"}');
    assert.equal((await failure(broker.clock())).message, 'broker GET /v2/clock answered 200 with a body that is not JSON');
    assert.equal(
      (await failure(broker.fills())).message,
      'broker GET /v2/account/activities/FILL [0] answered malformed data: "transaction_time" is "soon", expected a timestamp',
    );
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

const CONFIGURATIONS = '/v2/account/configurations';

test('tradingSuspended / setTradingSuspended: a round trip through the account configuration, seen in account() and by new orders', () =>
  withHarness({}, async ({ paper, broker }) => {
    paper.seedPosition('AAPL', 5, 100);
    assert.equal(await broker.tradingSuspended(), false);
    assert.equal((await broker.account()).tradeSuspendedByUser, false);

    await broker.setTradingSuspended(true);
    assert.equal(await broker.tradingSuspended(), true);
    assert.equal((await broker.account()).tradeSuspendedByUser, true);
    // A partial PATCH: the account's other settings are untouched.
    const config = (await (await fetch(paper.url + CONFIGURATIONS, { headers: { 'APCA-API-KEY-ID': KEY_ID, 'APCA-API-SECRET-KEY': SECRET } })).json()) as Record<string, unknown>;
    assert.deepEqual(config, {
      dtbp_check: 'entry',
      trade_confirm_email: 'all',
      suspend_trade: true,
      no_shorting: false,
      fractional_trading: true,
      max_margin_multiplier: '4',
      pdt_check: 'entry',
    });

    // The broker's refusal is a business 403, reported as it said it — not as bad credentials.
    const refused = await failure(broker.placeOrder({ symbol: 'AAPL', side: 'buy', qty: 1, type: 'market', time_in_force: 'day' }));
    assert.equal(refused.message, 'broker POST /v2/orders answered 403: new orders are not accepted: trading is suspended on this account (suspend_trade)');
    assert.deepEqual(await broker.closeAllPositions(), [
      { symbol: 'AAPL', status: 403, error: 'new orders are not accepted: trading is suspended on this account (suspend_trade)' },
    ]);
    assert.deepEqual((await broker.positions()).map((p) => [p.symbol, p.qty]), [['AAPL', 5]]);

    await broker.setTradingSuspended(true); // already on: the same answer, no error
    await broker.setTradingSuspended(false);
    assert.equal(await broker.tradingSuspended(), false);
    assert.equal((await broker.account()).tradeSuspendedByUser, false);
    assert.equal((await broker.closeAllPositions())[0].status, 200);
    assert.deepEqual(
      paper.requestLog.filter((r) => r.path === CONFIGURATIONS).map((r) => `${r.method} ${r.status}`),
      ['GET 200', 'PATCH 200', 'GET 200', 'GET 200', 'PATCH 200', 'PATCH 200', 'GET 200'],
    );
  }));

test('setTradingSuspended: a 500 on the PATCH is retried (setting a value is safe to repeat), then the switch holds', () =>
  withHarness({}, async ({ paper, broker, sleeps, logLines }) => {
    paper.failNext(500, 2, { method: 'PATCH', path: CONFIGURATIONS });
    await broker.setTradingSuspended(true);
    assert.deepEqual(sleeps, [250, 500]);
    assert.deepEqual(paper.requestLog.map((r) => `${r.method} ${r.status}`), ['PATCH 500', 'PATCH 500', 'PATCH 200']);
    assert.match(logLines.join('\n'), /PATCH \/v2\/account\/configurations answered 500: internal server error occurred; retrying in 250 ms \(attempt 2 of 4\)/);
    assert.equal(await broker.tradingSuspended(), true);
    assert.equal((await broker.account()).tradeSuspendedByUser, true);

    // A GET of the configuration is retried the same way.
    paper.failNext(503, 1, { method: 'GET', path: CONFIGURATIONS, retryAfter: 0 });
    assert.equal(await broker.tradingSuspended(), true);

    // A persistent failure ends in a clear error, without keys.
    paper.failNext(500, 10, { method: 'PATCH', path: CONFIGURATIONS });
    const error = await failure(broker.setTradingSuspended(false));
    assert.equal(error.kind, 'failed');
    assert.equal(error.message, 'broker PATCH /v2/account/configurations answered 500: internal server error occurred (after 4 attempts)');
    assert.ok(error.cause instanceof BrokerRequestError, 'the cause is the sanitized BrokerRequestError');
    assert.deepEqual([error.cause.details.method, error.cause.details.path, error.cause.details.attempts], ['PATCH', CONFIGURATIONS, 4]);
    assertNoKeys(error, logLines);
    assert.equal(await broker.tradingSuspended(), true, 'the failed PATCHes changed nothing');
  }));

test('malformed configuration answers, a PATCH that did not take, and a bad trade_suspended_by_user are clear errors', async () => {
  let configAnswer: unknown = { suspend_trade: 'no' };
  let accountAnswer: Record<string, unknown> = { status: 'ACTIVE', currency: 'USD', equity: '1', last_equity: '1', cash: '1', buying_power: '1' };
  const patches: unknown[] = [];
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
    if (req.method === 'PATCH') patches.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const body = path === '/v2/account' ? accountAnswer : configAnswer;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const broker = new AlpacaBroker({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, keyId: KEY_ID, secretKey: SECRET });
    const notBoolean = await failure(broker.tradingSuspended());
    assert.equal(notBoolean.message, 'broker GET /v2/account/configurations answered malformed data: "suspend_trade" is "no", expected true or false');
    configAnswer = ['suspend_trade', true];
    assert.equal(
      (await failure(broker.tradingSuspended())).message,
      'broker GET /v2/account/configurations answered malformed data: expected an object, got ["suspend_trade",true]',
    );
    configAnswer = { dtbp_check: 'entry' };
    assert.equal(
      (await failure(broker.setTradingSuspended(true))).message,
      'broker PATCH /v2/account/configurations answered malformed data: "suspend_trade" is missing, expected true or false',
    );

    // The broker answered, but its configuration does not show the asked value.
    configAnswer = { suspend_trade: false, dtbp_check: 'entry' };
    const notTaken = await failure(broker.setTradingSuspended(true));
    assert.equal(notTaken.kind, 'failed');
    assert.equal(notTaken.message, 'broker PATCH /v2/account/configurations: asked for suspend_trade true, the answer still shows false');
    assertNoKeys(notTaken);
    assert.deepEqual(patches.at(-1), { suspend_trade: true }, 'the PATCH body carries only the switch');
    await broker.setTradingSuspended(false);

    // trade_suspended_by_user: absent is unknown, a boolean is read, anything else is refused.
    assert.equal((await broker.account()).tradeSuspendedByUser, undefined);
    accountAnswer = { ...accountAnswer, trade_suspended_by_user: true };
    assert.equal((await broker.account()).tradeSuspendedByUser, true);
    accountAnswer = { ...accountAnswer, trade_suspended_by_user: 'false' };
    assert.equal(
      (await failure(broker.account())).message,
      'broker GET /v2/account answered malformed data: "trade_suspended_by_user" is "false", expected true or false',
    );
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
