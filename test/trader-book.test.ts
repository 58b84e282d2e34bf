// The order gate's model of the trader's book (src/gateway/trader-book.ts): the pre-trade limits
// MAX_OPEN_ORDERS and MAX_POSITION_NOTIONAL decided from it, without a broker read per order, and
// never walked around because it is stale. Real parts: the paper broker and its trade stream,
// tradewarden's Alpaca client seeding the book, TradeStreamWatch feeding it, the gateway and the gate
// (this process is the managed trader), orders over HTTP. Then the model alone, with reads held open,
// for the races a list read and the events run.
import { test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AlertOutbox } from '../src/alerts/outbox.ts';
import { AlpacaBroker } from '../src/broker/alpaca.ts';
import type { Order, OrderUpdate, Position } from '../src/broker/types.ts';
import { ManualClock, systemClock } from '../src/clock.ts';
import { parseConfig } from '../src/config.ts';
import { startGateway, type Gateway } from '../src/gateway/gateway.ts';
import { OrderGate } from '../src/gateway/order-gate.ts';
import type { BrokerView } from '../src/gateway/pre-trade.ts';
import { TraderBook, type BookBroker } from '../src/gateway/trader-book.ts';
import { silentLogger } from '../src/log.ts';
import { Store } from '../src/store/store.ts';
import type { StoredAlert } from '../src/store/schema.ts';
import { TradeStreamWatch } from '../src/watch/trade-stream.ts';
import { startPaperBroker, type PaperBroker } from '../testkit/paper-broker.ts';
import { waitFor } from '../testkit/pm2-home.ts';

const KEY = 'PKBOOK';
const SECRET = 'SKBOOKSECRET';
const REFUSED = 'tradewarden order gate: new orders are rejected by user request: order refused: ';
let paper: PaperBroker;
let dataDir: string;
const closers: Array<() => Promise<void>> = [];

before(async () => {
  paper = await startPaperBroker({ keyId: KEY, secretKey: SECRET, cash: 1_000_000, prices: { 'BTC/USD': 50_000, 'LINK/USD': 20, 'UNI/USD': 20, 'DOGE/USD': 0.1 } });
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-book-'));
});
// Each test's gate and stream end with it: a stream left connected would seed (and read) again when the next test drops them.
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});
after(async () => {
  await paper?.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});
beforeEach(async () => {
  await broker(KEY, SECRET).cancelAllOrders();
});

const broker = (keyId: string, secretKey: string) => new AlpacaBroker({ baseUrl: paper.url, keyId, secretKey, retries: 0 });
/** A resting buy: far below the price, it never fills here. */
const restingBuy = (limit = 2) => ({ symbol: 'BTC/USD', side: 'buy', type: 'limit', time_in_force: 'gtc', qty: '1', limit_price: String(limit) });
/** The gate's own reads of the trader's book at the broker (tradewarden's seed reads aside: counted apart). */
const reads = (pathname: string) => paper.requestLog.filter((r) => r.method === 'GET' && r.path.split('?')[0] === pathname).length;

/**
 * A gate with the given limits and a book wired as the controller wires it (the trade stream with
 * tradewarden's keys, the book seeded by tradewarden's client), live before it returns: one order
 * has gone through so the book knows which account the trader's keys trade.
 */
async function gateWithBook(env: Record<string, string>) {
  const store = new Store(fs.mkdtempSync(path.join(dataDir, 'gate-')));
  const raised: StoredAlert[] = [];
  const outbox = new AlertOutbox({ store, clock: systemClock, logger: silentLogger, sinks: [{ name: 'test', deliver: async (a) => void raised.push(a) }] });
  const stream = new TradeStreamWatch({
    baseUrl: paper.url,
    keyId: KEY,
    secretKey: SECRET,
    tradeWatch: { ingest: async () => undefined, poll: async () => undefined },
    store,
    clock: systemClock,
    logger: silentLogger,
    initialBackoffMs: 20,
    maxBackoffMs: 50,
  });
  const book = new TraderBook({ broker: broker(KEY, SECRET), logger: silentLogger }).follow(stream);
  const config = parseConfig({ GATEWAY_ADDR: '8790', APCA_API_DATA_URL: paper.url, ...env });
  const gate = new OrderGate({ store, outbox, clock: systemClock, logger: silentLogger, maxTradesPerHour: 10_000, mode: 'enforce', processName: 'trading-bot', traderPid: async () => process.pid, limits: config.gateway, book });
  const server: Gateway = await startGateway({ host: '127.0.0.1', port: 0, upstream: paper.url, dataUrl: paper.url, gate, logger: silentLogger });
  stream.start();
  closers.push(async () => {
    await server.close();
    await stream.stop();
  });
  await waitFor(() => book.live, { what: 'the book seeded from the broker' });
  const send = async (body: Record<string, string> | undefined, method = 'POST', route = '/v2/orders') => {
    const response = await fetch(`${server.url}${route}`, {
      method,
      headers: { 'APCA-API-KEY-ID': KEY, 'APCA-API-SECRET-KEY': SECRET, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: response.status, json: (await response.json().catch(() => ({}))) as Record<string, unknown> };
  };
  // The first order of a set of keys is judged on fresh reads while the book learns their account.
  const first = await send({ symbol: 'DOGE/USD', side: 'buy', type: 'limit', time_in_force: 'gtc', qty: '20', limit_price: '0.05' }); // $2 at the market: within every limit here
  assert.equal(first.status, 200, JSON.stringify(first.json));
  await book.settled();
  await send(undefined, 'DELETE', `/v2/orders/${String(first.json.id)}`);
  await waitFor(() => book.snapshot().orders.length === 0, { what: 'the cancel of the first order in the book' });
  const refused = async (reason: string) => {
    await gate.alertsRaised();
    return raised.filter((a) => a.kind === 'order_refused' && a.facts.reason === reason);
  };
  return { book, gate, send, refused };
}

test('MAX_OPEN_ORDERS from the model: an order counts from the moment the gate sends it, before the broker says anything; at the limit the next is refused; no read of the open orders per order', async () => {
  const { book, send, refused } = await gateWithBook({ MAX_OPEN_ORDERS: '2' });
  const listed = reads('/v2/orders');
  // The first order is held at the broker before it acts: no answer, no `new` event.
  const hold = paper.holdNext({ method: 'POST', path: '/v2/orders' });
  const first = send(restingBuy(2));
  await hold.reached;
  assert.equal((await send(restingBuy(3))).status, 200, 'one in flight: a second passes (just under)');
  const third = await send(restingBuy(4));
  assert.equal(third.status, 403, `one in flight and one open make two (just over): ${JSON.stringify(third.json)}`);
  assert.ok(String(third.json.message).startsWith(`${REFUSED}2 of the trader's orders are open (MAX_OPEN_ORDERS=2, 1 of them sent and not answered yet)`), String(third.json.message));
  assert.equal((await refused('open_orders')).length, 1, 'an order_refused alert');
  hold.release();
  const answered = await first;
  assert.equal(answered.status, 200);
  assert.equal((await send(restingBuy(5))).status, 403, 'both open now: still refused');
  // Canceled at the broker, not through the gate (the dashboard): the stream's event frees the slot.
  await broker(KEY, SECRET).cancelAllOrders();
  await waitFor(() => book.snapshot().orders.length === 0, { what: 'the cancels in the book' });
  assert.equal((await send(restingBuy(6))).status, 200, 'after the cancels one passes again');
  assert.equal(reads('/v2/orders'), listed, 'no order read the broker\'s open orders: the model answered');
});

test('MAX_POSITION_NOTIONAL from the model: orders sent back to back count whether or not their fills are in yet; just under passes, just over is refused; no position read per order', async () => {
  const { book, send } = await gateWithBook({ MAX_POSITION_NOTIONAL: '500' });
  const positionReads = reads('/v2/positions/LINKUSD');
  const buy = (notional: string) => send({ symbol: 'LINK/USD', side: 'buy', type: 'market', time_in_force: 'gtc', notional });
  // Back to back: the second is decided while the first's fill may or may not have reached the book.
  const [a, b] = [await buy('300'), await buy('100')];
  assert.deepEqual([a.status, b.status], [200, 200]);
  const over = await buy('100.01');
  assert.equal(over.status, 403, `$400 held or filling and $100.01 more is over $500: ${JSON.stringify(over.json)}`);
  assert.match(String(over.json.message), /it would take the LINK\/USD position to \$500\.01 .*beyond MAX_POSITION_NOTIONAL=500/);
  assert.equal((await buy('100')).status, 200, 'to exactly $500 passes');
  await waitFor(() => book.snapshot().positions.LINKUSD === 25, { what: 'the position from the fills in the book' });
  assert.equal((await buy('0.01')).status, 403, 'the position at its limit: a cent more is refused');
  // The price doubles: the position ($1,000) is over the limit; selling part of it reduces it and passes.
  paper.setPrice('LINK/USD', 40);
  assert.equal((await send({ symbol: 'LINK/USD', side: 'sell', type: 'market', time_in_force: 'gtc', qty: '5' })).status, 200, 'a reducing order passes while the position is over the limit');
  await waitFor(() => book.snapshot().positions.LINKUSD === 20, { what: 'the sale in the book' });
  assert.equal(reads('/v2/positions/LINKUSD'), positionReads, 'no order read the position at the broker: the model answered');
});

test('reducing orders always pass, but two sent back to back may not sell more than is held: the second is judged as the short it would open', async () => {
  const { book, send, refused } = await gateWithBook({ MAX_ORDER_NOTIONAL: '50', MAX_OPEN_ORDERS: '10' });
  // A long of 10 UNI ($200) bought outside the gate (its events reach the book all the same).
  paper.placeOrder({ symbol: 'UNI/USD', side: 'buy', type: 'market', time_in_force: 'gtc', qty: 10 });
  await waitFor(() => book.snapshot().positions.UNIUSD === 10, { what: 'the long in the book' });
  const sellAll = (limit: string) => ({ symbol: 'UNI/USD', side: 'sell', type: 'limit', time_in_force: 'gtc', qty: '10', limit_price: limit });
  // The first sell is held at the broker: not answered, no `new` event yet.
  const hold = paper.holdNext({ method: 'POST', path: '/v2/orders' });
  const first = send(sellAll('30'));
  await hold.reached;
  const second = await send(sellAll('31'));
  assert.equal(second.status, 403, `the whole long is already being sold: the second sell would open a short, and is over MAX_ORDER_NOTIONAL: ${JSON.stringify(second.json)}`);
  assert.ok(String(second.json.message).startsWith(`${REFUSED}its value $310.00 (qty 10 × limit price $31.00) exceeds MAX_ORDER_NOTIONAL=50.`), String(second.json.message));
  assert.equal((await refused('order_notional')).length, 1);
  hold.release();
  assert.equal((await first).status, 200, 'the first sell of the whole long ($300, over MAX_ORDER_NOTIONAL) reduces: it passes');
  // Canceled, the long is whole again: a sell of half of it ($150 at the limit price) reduces and passes.
  await broker(KEY, SECRET).cancelAllOrders();
  await waitFor(() => book.snapshot().orders.length === 0, { what: 'the cancel in the book' });
  assert.equal((await send({ ...sellAll('30'), qty: '5' })).status, 200, 'a reducing sell over MAX_ORDER_NOTIONAL passes');
  assert.equal((await send({ ...sellAll('30'), qty: '5' })).status, 200, 'and the rest of the long too');
  const beyond = await send({ ...sellAll('30'), qty: '2' });
  assert.equal(beyond.status, 403, `the long is all being sold: a sell of 2 more opens a short, judged like any order: ${JSON.stringify(beyond.json)}`);
  assert.ok(String(beyond.json.message).startsWith(REFUSED), `refused by the gate, not the broker: ${String(beyond.json.message)}`);
});

test('stream down: every decision reads the broker fresh and sees what the stream missed; back up, the book is read whole again and answers', async () => {
  const { book, send } = await gateWithBook({ MAX_OPEN_ORDERS: '2' });
  paper.refuseStream(true);
  paper.dropStreamConnections();
  await waitFor(() => !book.live, { what: 'the book no longer trusted' });
  // Placed while no stream listens: the book never hears of it.
  paper.placeOrder({ symbol: 'BTC/USD', side: 'buy', type: 'limit', time_in_force: 'gtc', qty: 1, limit_price: 7 });
  const listed = reads('/v2/orders');
  assert.equal((await send(restingBuy(8))).status, 200, 'one open (missed by the stream) and this one: two');
  assert.equal((await send(restingBuy(9))).status, 403, 'the order the stream missed counts: the broker was read');
  assert.equal(reads('/v2/orders') - listed, 2, 'each decision read the open orders at the broker');
  paper.refuseStream(false);
  await waitFor(() => book.live, { timeoutMs: 10_000, what: 'the stream back and the book read again' });
  assert.equal(book.snapshot().orders.length, 2, 'the book holds what the broker lists, the missed order included');
  const relisted = reads('/v2/orders');
  assert.equal((await send(restingBuy(10))).status, 403, 'two open: refused from the book');
  assert.equal(reads('/v2/orders'), relisted, 'without a read');
});

// ---- the model alone: a list read while events arrive, another account's keys ----

/** A read the test answers when it wants. */
function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const order = (id: string, fields: Partial<Order> = {}): Order => ({ id, symbol: 'BTC/USD', side: 'buy', type: 'limit', timeInForce: 'gtc', status: 'new', qty: 1, filledQty: 0, limitPrice: 2, ...fields });
const event = (name: string, o: Order, extra: Partial<OrderUpdate> = {}): OrderUpdate => ({ event: name, order: { ...o, status: name === 'fill' ? 'filled' : name === 'new' ? 'new' : name }, ...extra });
const position = (symbol: string, qty: number, price: number): Position => ({ symbol, qty, side: qty < 0 ? 'short' : 'long', marketValue: qty * price, avgEntryPrice: price, unrealizedPnl: 0 });

test('a list read while events arrive does not undo them: an order announced after the read was asked stays, one filled after it stays gone, a position changed after it keeps the change', async () => {
  const lists = deferred<Order[]>();
  const held = deferred<Position[]>();
  const bookBroker: BookBroker = { account: async () => ({ accountNumber: 'PA1' }), openOrders: () => lists.promise, positions: () => held.promise };
  const clock = new ManualClock(Date.parse('2026-03-02T14:00:00Z'));
  const book = new TraderBook({ broker: bookBroker, clock });
  book.streamState('connected'); // the read is asked now
  book.apply(event('new', order('after')));
  book.apply(event('fill', order('filled', { side: 'buy', symbol: 'BTC/USD' }), { positionQty: 3, price: 50_000, qty: 1 }));
  lists.resolve([order('before'), order('filled')]);
  held.resolve([position('BTCUSD', 2, 50_000), position('ETHUSD', 1, 3000)]);
  await book.settled();
  assert.equal(book.live, true, 'seeded and connected');
  assert.deepEqual(book.snapshot().orders.map((o) => o.id).sort(), ['after', 'before'], 'the order announced after the read is kept, the one filled after it is not brought back');
  assert.deepEqual(book.snapshot().positions, { BTCUSD: 3, ETHUSD: 1 }, 'the fill after the read wins over the list');

  // An account read asked before a fill does not undo it; one asked after corrects what was missed.
  const askedBefore = clock.now();
  clock.advance(1000);
  book.apply(event('fill', order('more'), { positionQty: 4, price: 50_000, qty: 1 }));
  book.reconcilePositions([position('BTCUSD', 3, 50_000), position('ETHUSD', 1, 3000)], askedBefore);
  assert.equal(book.snapshot().positions.BTCUSD, 4, 'a read asked before the fill leaves it');
  clock.advance(1000);
  book.reconcilePositions([position('BTCUSD', 4, 50_000), position('SOLUSD', 5, 100)], clock.now());
  assert.deepEqual(book.snapshot().positions, { BTCUSD: 4, SOLUSD: 5 }, 'a read asked after every change replaces what it shows (ETH closed, SOL found)');

  // A stream that stops: not trusted; an event it could not read: read again whole.
  book.streamState('reconnecting');
  assert.equal(book.live, false, 'the stream down: not trusted');
});

test('the book answers only for the account its stream watches: keys that trade another account are read fresh for every order, with the orders in flight', async () => {
  const bookBroker: BookBroker = { account: async () => ({ accountNumber: 'PA1' }), openOrders: async () => [order('ours')], positions: async () => [] };
  const book = new TraderBook({ broker: bookBroker });
  book.streamState('connected');
  await book.settled();
  const freshCalls: string[] = [];
  const fresh = (accountNumber: string): BrokerView => ({
    keys: `keys-of-${accountNumber}`,
    accountNumber: async () => accountNumber,
    position: async () => (freshCalls.push('position'), null),
    openOrders: async () => (freshCalls.push('openOrders'), [order('theirs')]),
    order: async (id) => (freshCalls.push('order'), order(id)),
    latestTradePrice: async () => 1,
  });
  book.sent(1, { symbol: 'BTC/USD', side: 'buy', qty: '1', clientOrderId: 'c-1' });
  // First order of each set of keys: fresh, while the account is learned.
  assert.deepEqual((await book.view(fresh('PA2')).openOrders()).map((o) => o.id), ['theirs', '(in flight #1)'], "another account's list, with the order the gate has in flight");
  await book.settled();
  assert.deepEqual((await book.view(fresh('PA2')).openOrders()).map((o) => o.id), ['theirs', '(in flight #1)'], 'still fresh once its account is known: another account');
  assert.equal(freshCalls.length, 2);
  await book.view(fresh('PA1')).openOrders();
  await book.settled();
  assert.deepEqual((await book.view(fresh('PA1')).openOrders()).map((o) => o.id), ['ours', '(in flight #1)'], 'the same account: the book');
  assert.equal(freshCalls.length, 3, 'the book answered without a read');
  // The gate's order answered: booked under its id; refused: gone.
  book.answered(1, { accepted: true, orderId: 'o-1' });
  book.sent(2, { symbol: 'BTC/USD', side: 'buy', qty: '1' });
  book.answered(2, { accepted: false });
  assert.deepEqual(book.snapshot().orders.map((o) => o.id).sort(), ['o-1', 'ours']);
  // Its `new` event after the answer: one order, not two.
  book.apply(event('new', order('o-1')));
  assert.deepEqual(book.snapshot().orders.map((o) => o.id).sort(), ['o-1', 'ours']);
});

test('the controller wires the book when MAX_OPEN_ORDERS or MAX_POSITION_NOTIONAL is set: seeded from the broker, live while its stream is up, shown in /metrics', async () => {
  const { makeTempHome } = await import('../testkit/pm2-home.ts');
  const { startController } = await import('../src/controller.ts');
  const { freeLoopbackPort } = await import('../testkit/ports.ts');
  const home = makeTempHome('tw-bookc-');
  const env = {
    APCA_API_BASE_URL: paper.url,
    APCA_API_KEY_ID: KEY,
    APCA_API_SECRET_KEY: SECRET,
    PM2_HOME: home.pm2Home,
    DATA_DIR: home.dataDir,
    GATEWAY_ADDR: `127.0.0.1:${await freeLoopbackPort()}`,
    METRICS_ADDR: '127.0.0.1:0',
    MAX_OPEN_ORDERS: '3',
    HOME: home.root,
  };
  const controller = await startController(parseConfig(env), { logger: silentLogger, deliversAlerts: true, sinks: [], env: { ...process.env, ...env } });
  try {
    const book = controller.gateway!.gate.book;
    await waitFor(() => book.live, { what: "the controller's book seeded" });
    const metrics = async () => (await (await fetch(`${controller.exposure.metrics!.url}/metrics`)).text()).match(/^tradewarden_gate_book_live (\d)$/m)?.[1];
    assert.equal(await metrics(), '1', 'the limits read the book');
    paper.refuseStream(true);
    paper.dropStreamConnections();
    await waitFor(() => !book.live, { what: 'the book no longer trusted' });
    assert.equal(await metrics(), '0', 'each order reads the broker, and /metrics says so');
  } finally {
    paper.refuseStream(false);
    await controller.stop();
    await home.cleanup();
  }
});
