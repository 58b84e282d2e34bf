// The rolling-hour trade count and its alerts, against the real paper broker over HTTP, with one
// injected clock driving both the broker's transaction times and the window.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../src/clock.ts';
import { silentLogger } from '../src/log.ts';
import { Store } from '../src/store/store.ts';
import { AlertOutbox, type AlertSink } from '../src/alerts/outbox.ts';
import { AlpacaBroker } from '../src/broker/alpaca.ts';
import { TradeWatch } from '../src/watch/watchdog.ts';
import { countedTrades, hourBuckets } from '../src/watch/trade-window.ts';
import type { StoredAlert } from '../src/store/schema.ts';
import { startPaperBroker, type PaperBroker } from '../testkit/paper-broker.ts';
import { scratchDir } from '../testkit/scratch.ts';

const clock = new ManualClock(Date.parse('2026-03-02T14:00:00Z'));
let paper: PaperBroker;

before(async () => {
  paper = await startPaperBroker({ clock, keyId: 'PKTEST', secretKey: 'SKTEST', prices: { 'BTC/USD': 50_000, AAPL: 200 } });
});
after(() => paper.close());

function harness(dataDir = scratchDir('tw-rate-'), limit = 3) {
  const alerts: StoredAlert[] = [];
  const sink: AlertSink = { name: 'log', deliver: async (a) => void alerts.push(a) };
  const store = new Store(dataDir);
  const outbox = new AlertOutbox({ store, clock, logger: silentLogger, sinks: [sink] });
  const runaways: number[] = [];
  const broker = new AlpacaBroker({ baseUrl: paper.url, keyId: 'PKTEST', secretKey: 'SKTEST', sleep: async () => {} });
  const watch = new TradeWatch({
    store,
    broker,
    outbox,
    clock,
    processName: 'trading-bot',
    maxTradesPerHour: limit,
    onRunaway: async (trades) => void runaways.push(trades.length),
  });
  return { watch, alerts, runaways, store, dataDir };
}

const buy = (options?: { partialFills?: number }) => {
  clock.advance(60_000);
  return paper.placeOrder({ symbol: 'AAPL', side: 'buy', qty: 1, type: 'market', time_in_force: 'day' }, options);
};
const kinds = (alerts: StoredAlert[]) => alerts.map((a) => a.kind);

test('four fills in an hour → exactly one alert, on the fourth; the breaker hook sees every poll over the limit', async () => {
  clock.advance(3 * 3600_000); // a fresh hour, whatever ran before
  const { watch, alerts, runaways } = harness();
  for (let i = 1; i <= 3; i++) {
    buy();
    assert.equal((await watch.poll()).count, i);
  }
  assert.equal(alerts.length, 0);
  buy();
  const fourth = await watch.poll();
  assert.equal(fourth.count, 4);
  assert.equal(fourth.event, 'exceeded');
  assert.deepEqual(kinds(alerts), ['trade_rate_exceeded']);
  assert.match(alerts[0].body, /4 trades in the last hour \(limit 3\)/);
  assert.deepEqual(runaways, [4]);
  // Polls that see nothing new raise nothing more (the breaker itself trips once: see watch-pm2).
  await watch.poll();
  await watch.poll();
  buy(); // 5th: not yet double the 4 alerted
  await watch.poll();
  assert.deepEqual(kinds(alerts), ['trade_rate_exceeded']);
  assert.deepEqual(runaways, [4, 4, 4, 5]);
});

test('partial fills of one order count once', async () => {
  clock.advance(3 * 3600_000);
  const { watch } = harness();
  buy({ partialFills: 3 });
  const result = await watch.poll();
  assert.equal(result.count, 1);
  assert.equal(result.newTrades, 1);
});

test('overlapping polls and a controller restart do not double count', async () => {
  clock.advance(3 * 3600_000);
  const first = harness();
  buy();
  buy();
  const [a, b] = await Promise.all([first.watch.poll(), first.watch.poll()]);
  assert.equal(Math.max(a.count, b.count), 2);
  // The controller restarts on the same data dir: the same fills are read again (overlap window).
  const second = harness(first.dataDir);
  buy();
  const afterRestart = await second.watch.poll();
  assert.equal(afterRestart.count, 3);
  assert.equal(afterRestart.newTrades, 1);
  assert.equal((await second.store.read()).trades.seen.length, 3);
});

test('re-alert when the count doubles, recovery notice when it falls back to the limit', async () => {
  clock.advance(3 * 3600_000);
  const { watch, alerts } = harness();
  for (let i = 0; i < 4; i++) buy();
  await watch.poll();
  for (let i = 0; i < 4; i++) buy();
  const doubled = await watch.poll();
  assert.equal(doubled.count, 8);
  assert.equal(doubled.event, 'grew');
  assert.deepEqual(kinds(alerts), ['trade_rate_exceeded', 'trade_rate_exceeded']);
  assert.match(alerts[1].title, /still climbing/);
  // An hour after the first fills the count decays by broker time, with no new fill.
  // Fills at +1…+8 min; now +8. At +60 all eight are inside the hour; at +65 only +6…+8 are.
  clock.advance(52 * 60_000);
  assert.equal((await watch.poll()).count, 8, 'all eight are still inside the hour');
  clock.advance(5 * 60_000);
  const recovered = await watch.poll();
  assert.equal(recovered.count, 3);
  assert.equal(recovered.event, 'normal');
  assert.deepEqual(kinds(alerts), ['trade_rate_exceeded', 'trade_rate_exceeded', 'trade_rate_normal']);
});

test('fills are placed by transaction time, not by when they were polled', async () => {
  clock.advance(3 * 3600_000);
  const { watch } = harness();
  buy();
  buy();
  clock.advance(59 * 60_000); // polled late: the first fill is now 60 min old, outside the window
  const late = await watch.poll();
  assert.equal(late.count, 1);
  // A first poll asks the broker for the last hour only: the older fill is not even fetched.
  assert.equal(late.newTrades, 1);
});

test('a failing broker raises broker_unreachable once, and a recovery notice when it answers', async () => {
  clock.advance(3 * 3600_000);
  const { watch, alerts } = harness();
  paper.failNext(500, 20, { path: /activities/ });
  await assert.rejects(watch.poll(), /500/);
  await assert.rejects(watch.poll(), /500/);
  assert.deepEqual(kinds(alerts), ['broker_unreachable']);
  paper.failNext(500, 0);
  // Drain the remaining injected failures, then it answers.
  let result;
  for (let i = 0; i < 20 && !result; i++) result = await watch.poll().catch(() => undefined);
  assert.ok(result, 'result');
  assert.deepEqual(kinds(alerts), ['broker_unreachable', 'recovered']);
});

test('hour buckets put trades in their 10-minute slot, oldest first', () => {
  const now = Date.parse('2026-03-02T15:00:00Z');
  const at = (minutesAgo: number) => ({ orderId: String(minutesAgo), symbol: 'X', side: 'buy', qty: 1, price: 1, at: now - minutesAgo * 60_000, activityIds: [] });
  assert.deepEqual(hourBuckets([at(1), at(2), at(15), at(59), at(61)], now), [1, 0, 0, 0, 1, 2]);
});

test('after a resume, the hour counts only the trades since it: one count for status, /metrics, the breaker and the gate', () => {
  const now = Date.parse('2026-03-02T15:00:00Z');
  const trade = (minutesAgo: number, orderId: string) => ({ orderId, symbol: 'BTC/USD', side: 'buy', qty: 1, price: 1, at: now - minutesAgo * 60_000, activityIds: [orderId] });
  const data = { trades: { seen: [trade(50, 'a'), trade(40, 'b'), trade(30, 'c'), trade(20, 'd'), trade(5, 'e')] }, breaker: { tripped: false, resumedAt: now - 25 * 60_000 } };
  assert.deepEqual(countedTrades(data, now).map((t) => t.orderId), ['d', 'e'], 'the four before the resume no longer count');
  assert.equal(countedTrades({ ...data, breaker: { tripped: false } }, now).length, 5, 'without a resume, the whole hour');
});
