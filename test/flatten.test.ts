// Flatten against the real paper broker over HTTP (the trader-stop step is covered with real PM2
// in test/containment.test.ts, "ON_RUNAWAY=flatten"; here the trader is already stopped, which
// flatten must also handle).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { AlpacaBroker } from '../src/broker/alpaca.ts';
import { flattenAccount } from '../src/core/flatten.ts';
import { flattenText } from '../src/render/text.ts';
import { startPaperBroker, type PaperBroker } from '../testkit/paper-broker.ts';

let paper: PaperBroker;
let broker: AlpacaBroker;
const alreadyStopped = async () => ({ wasRunning: false, forceKilled: false, durationMs: 0 });

before(async () => {
  paper = await startPaperBroker({ keyId: 'PKFLAT', secretKey: 'SKFLAT', cash: 1_000_000, prices: { AAPL: 200, MSFT: 400, TSLA: 250, 'BTC/USD': 60_000 } });
  broker = new AlpacaBroker({ baseUrl: paper.url, keyId: 'PKFLAT', secretKey: 'SKFLAT', sleep: async () => {} });
});
after(() => paper.close());

async function reset() {
  paper.setMarketOpen(true);
  await broker.closeAllPositions();
  await broker.cancelAllOrders();
}

test('closes every position and cancels open orders; says flat only when the broker shows it', async () => {
  await reset();
  paper.seedPosition('AAPL', 10, 200);
  paper.seedPosition('MSFT', -5, 400);
  paper.seedPosition('BTC/USD', 0.01, 60_000);
  paper.placeOrder({ symbol: 'TSLA', side: 'buy', qty: 1, type: 'limit', limit_price: 1, time_in_force: 'day' });
  const closing: string[][] = [];
  const closingOrders: string[][] = [];
  const report = await flattenAccount({
    broker,
    stopTrader: alreadyStopped,
    onClosing: async (positions) => void closing.push(positions.map((p) => p.symbol).sort()),
    onClosingOrders: async (ids) => void closingOrders.push([...ids].sort()),
  });
  assert.equal(report.flat, true, flattenText(report));
  assert.ok(report.durationMs < 5000, `no waiting once the broker shows no open order (${report.durationMs} ms; the default verify time-out is 10 s)`);
  assert.deepEqual(closing, [['AAPL', 'BTCUSD', 'MSFT']], 'told which positions it closes, once, before the close');
  assert.deepEqual(closingOrders, [report.symbols.map((s) => s.closingOrderId!).sort()], 'told the closing orders\' ids, once');
  assert.equal(report.ordersCanceled, 1);
  assert.deepEqual(report.symbols.map((s) => [s.symbol, s.qtyBefore, s.outcome]).sort(), [
    ['AAPL', 10, 'closed'],
    ['BTCUSD', 0.01, 'closed'],
    ['MSFT', -5, 'closed'],
  ]);
  assert.ok(report.symbols.every((s) => s.closingOrderId), 'report.symbols.every((s) => s.closingOrderId)');
  assert.deepEqual(await broker.positions(), []);
  assert.deepEqual(await broker.openOrders(), []);

  // Every position closed, but the broker refused to cancel one order (both of flatten's cancels:
  // DELETE /v2/orders, and the close's cancel_orders=true): that order can still fill, so not flat.
  paper.seedPosition('AAPL', 10, 200);
  paper.seedPosition('MSFT', -5, 400);
  const resting = paper.placeOrder({ symbol: 'TSLA', side: 'buy', qty: 1, type: 'limit', limit_price: 1, time_in_force: 'day' });
  paper.failNext(500, 2, { symbol: 'TSLA', method: 'DELETE', message: 'order is not cancelable' });
  const refused = await flattenAccount({ broker, stopTrader: alreadyStopped, verifyTimeoutMs: 500, verifyIntervalMs: 50 });
  assert.deepEqual(
    refused.symbols.map((s) => [s.symbol, s.outcome]).sort(),
    [['AAPL', 'closed'], ['MSFT', 'closed']],
    `every position closed: ${flattenText(refused)}`,
  );
  assert.deepEqual(refused.remainingPositions, [], 'no position left');
  assert.deepEqual((await broker.openOrders()).map((o) => o.id), [resting.id], 'the order whose cancel was refused is still open at the broker');
  assert.equal(refused.remainingOpenOrders, 1, 'the report counts the open order');
  assert.equal(refused.ordersCanceled, 0, 'the refused cancel is not counted as canceled');
  assert.ok(refused.durationMs >= 500 && refused.durationMs < 5000, `waited out its verify time-out (500 ms) for the open order: ${refused.durationMs} ms`);
  assert.equal(refused.flat, false, `not flat while an order is open: ${flattenText(refused)}`);
  assert.match(flattenText(refused), /NOT FLAT/, 'the text says so');
  await broker.cancelAllOrders();
  assert.deepEqual(await broker.openOrders(), [], 'the order cancels once the broker takes it');
});

test('a 500 while closing one symbol → the report names it with the reason and does not say flat', async () => {
  await reset();
  paper.seedPosition('AAPL', 3, 200);
  paper.seedPosition('TSLA', 2, 250);
  paper.failNext(500, 1, { symbol: 'TSLA', message: 'internal error closing TSLA' });
  const told: string[][] = [];
  const report = await flattenAccount({ broker, stopTrader: alreadyStopped, onClosingOrders: async (ids) => void told.push([...ids]) });
  assert.deepEqual(told, [[report.symbols.find((s) => s.symbol === 'AAPL')!.closingOrderId!]], 'told the one closing order there is');
  assert.equal(report.flat, false);
  const tsla = report.symbols.find((s) => s.symbol === 'TSLA')!;
  assert.equal(tsla.outcome, 'failed');
  assert.match(tsla.reason!, /internal error closing TSLA/);
  assert.equal(report.symbols.find((s) => s.symbol === 'AAPL')!.outcome, 'closed');
  assert.deepEqual(report.remainingPositions, [{ symbol: 'TSLA', qty: 2 }]);
  assert.match(flattenText(report), /NOT FLAT/);
});

test('market closed → closing orders are queued, reported as such, and not called flat', async () => {
  await reset();
  paper.seedPosition('AAPL', 4, 200);
  paper.setMarketOpen(false);
  const report = await flattenAccount({ broker, stopTrader: alreadyStopped, verifyTimeoutMs: 5_000 });
  assert.equal(report.flat, false);
  assert.equal(report.marketOpen, false);
  const aapl = report.symbols[0];
  assert.equal(aapl.outcome, 'queued');
  assert.equal(aapl.closingOrderStatus, 'accepted');
  assert.match(aapl.reason!, /market closed/);
  assert.equal(report.remainingOpenOrders, 1);
  assert.ok(report.durationMs < 4_000, 'does not wait out the verify time-out when nothing can fill');
});

test('nothing held: nothing to close, nothing told, flat', async () => {
  await reset();
  const requestsBefore = paper.requestLog.length;
  let told = 0;
  const report = await flattenAccount({ broker, stopTrader: alreadyStopped, onClosing: async () => void told++, onClosingOrders: async () => void told++ });
  assert.equal(report.flat, true, flattenText(report));
  assert.equal(told, 0, 'neither hook called');
  assert.ok(!paper.requestLog.slice(requestsBefore).some((r) => r.method === 'DELETE' && r.path === '/v2/positions'), 'no close sent');
});

test('the trader stop failing does not hold up the close; the report says why', async () => {
  await reset();
  paper.seedPosition('AAPL', 2, 200);
  const report = await flattenAccount({ broker, stopTrader: async () => Promise.reject(new Error('PM2 daemon not answering')) });
  assert.deepEqual(report.trader, { stopped: false, error: 'PM2 daemon not answering' });
  assert.equal(report.flat, true, flattenText(report));
  assert.deepEqual(await broker.positions(), [], 'closed all the same');
});

test('the close itself refused: every held symbol failed for want of a close, the closing orders told as none; not flat', async () => {
  await reset();
  paper.seedPosition('AAPL', 2, 200);
  paper.failNext(500, 1, { path: '/v2/positions', method: 'DELETE', message: 'liquidation unavailable' });
  const told: string[][] = [];
  const report = await flattenAccount({ broker, stopTrader: alreadyStopped, onClosingOrders: async (ids) => void told.push([...ids]) });
  assert.match(report.error!, /^close all positions failed: .*liquidation unavailable/);
  assert.deepEqual(told, [[]], 'told: no closing order');
  assert.deepEqual(report.symbols, [
    { symbol: 'AAPL', qtyBefore: 2, closingOrderId: undefined, closingOrderStatus: undefined, outcome: 'failed', reason: 'the broker returned no close for this symbol' },
  ]);
  assert.deepEqual([report.flat, report.remainingPositions], [false, [{ symbol: 'AAPL', qty: 2 }]]);
});

test('the verify read failing: the closes are reported unconfirmed, with the error; not flat', async () => {
  await reset();
  paper.seedPosition('AAPL', 2, 200);
  paper.failNext(500, 4, { path: '/v2/orders', method: 'GET' }); // the first try and the broker client's 3 retries
  const report = await flattenAccount({ broker, stopTrader: alreadyStopped });
  assert.match(report.error!, /^could not verify at the broker: /);
  assert.equal(report.flat, false);
  assert.deepEqual(report.symbols.map((s) => [s.symbol, s.outcome, s.reason]), [['AAPL', 'queued', 'closing order not filled yet']], 'closed at the broker, but not seen so');
  assert.deepEqual([report.remainingPositions, report.remainingOpenOrders], [[{ symbol: 'AAPL', qty: 2 }], 0], 'the positions as last seen; no order count claimed');
  assert.deepEqual(await broker.positions(), [], 'the broker did close it');
});

test('an unreachable broker is reported, never called flat, and the trader stop still happened', async () => {
  await reset();
  paper.seedPosition('AAPL', 1, 200);
  let stopped = 0;
  paper.failNext(500, 10, { path: '/v2/positions', method: 'GET' });
  const report = await flattenAccount({ broker, stopTrader: async () => (stopped++, { wasRunning: true, pid: 4242, forceKilled: false, durationMs: 5 }) });
  assert.equal(stopped, 1);
  assert.equal(report.trader.stopped, true);
  assert.equal(report.flat, false);
  assert.match(report.error!, /500/);
  assert.deepEqual([report.symbols, report.remainingPositions, report.remainingOpenOrders], [[], [], 0], 'nothing claimed about what it could not read');
  paper.failNext(500, 0);
});
