// The order gate (GATEWAY_ADDR) with real parts: the controller as it runs (startController), a real
// PM2 daemon on a temp home, the unmodified demo trader started by it (its APCA_API_BASE_URL comes
// from ecosystem.config.js and points at the gate), a copy started by hand outside PM2, and the
// paper broker behind the gate. One injected clock drives the broker's fill times and the rolling hour.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { freeLoopbackPort } from '../testkit/ports.ts';
import http from 'node:http';
import { pathToFileURL } from 'node:url';
import { spawn, type ChildProcess } from 'node:child_process';
import { ManualClock } from '../src/clock.ts';
import { parseConfig, type GatewayConfig } from '../src/config.ts';
import { startController, type Controller } from '../src/controller.ts';
import { silentLogger } from '../src/log.ts';
import type { Actor } from '../src/core/operations.ts';
import type { AlertSink } from '../src/alerts/outbox.ts';
import type { StoredAlert } from '../src/store/schema.ts';
import { Store } from '../src/store/store.ts';
import { LIMIT_CODE, REFUSED_CODE } from '../src/gateway/order-gate.ts';
import { startPaperBroker, type PaperBroker } from '../testkit/paper-broker.ts';
import { killPid, makeTempHome, waitFor, type TempHome } from '../testkit/pm2-home.ts';

const KEY = 'PKGATE';
const SECRET = 'SKGATE';
const operator: Actor = { id: 'cli:test', name: 'test', isOperator: true };
const clock = new ManualClock(Date.parse('2026-03-02T14:00:00Z'));
let home: TempHome;
let paper: PaperBroker;
let controller: Controller;
let gateUrl: string;
let trader: string;
let traderLog: string;
const alerts: StoredAlert[] = [];
const copies: ChildProcess[] = [];

before(async () => {
  home = makeTempHome('tw-gw-');
  paper = await startPaperBroker({ clock, keyId: KEY, secretKey: SECRET, prices: { 'BTC/USD': 50_000, 'ETH/USD': 3_000 } });
  // The trader under PM2: the unmodified demo trader, or (TEST_TRADER=sdk, read at each start from the
  // environment PM2 hands over) a trader written against the official Alpaca SDK.
  trader = path.join(home.root, 'bot', 'trader.mjs');
  fs.mkdirSync(path.dirname(trader), { recursive: true });
  const demo = pathToFileURL(path.resolve('examples/demo-trader.js')).href;
  const sdk = pathToFileURL(path.resolve('test/fixtures/sdk-trader.mjs')).href;
  fs.writeFileSync(trader, `await import(process.env.TEST_TRADER === 'sdk' ? ${JSON.stringify(sdk)} : ${JSON.stringify(demo)});\n`);
  traderLog = path.join(home.dataDir, 'logs', 'trading-bot.out.log');
  const port = await freeLoopbackPort();
  const env = {
    APCA_API_BASE_URL: paper.url,
    APCA_API_KEY_ID: KEY,
    APCA_API_SECRET_KEY: SECRET,
    PM2_HOME: home.pm2Home,
    DATA_DIR: home.dataDir,
    TRADING_SCRIPT: trader,
    TRADING_KILL_TIMEOUT_MS: '1500',
    MAX_TRADES_PER_HOUR: '3',
    ON_RUNAWAY: 'alert', // the gate alone holds the limit here
    TRADE_POLL_SECONDS: '1',
    DUPLICATE_SCAN_SECONDS: '3600',
    GATEWAY_ADDR: `127.0.0.1:${port}`,
    DEMO_ORDER_EVERY_SECONDS: '0.3', // a runaway: an order every 300 ms
    DEMO_ORDER_NOTIONAL: '5',
  };
  // PM2 hands the starting client's environment to the trader; ecosystem.config.js then points its
  // APCA_API_BASE_URL at the gate.
  Object.assign(process.env, env);
  const recorder: AlertSink = { name: 'test', deliver: async (a) => void alerts.push(a) };
  controller = await startController(parseConfig({ ...env, HOME: home.root }), { logger: silentLogger, deliversAlerts: true, sinks: [recorder], env: { ...process.env }, clock });
  gateUrl = controller.gateway!.server.url;
});

after(async () => {
  for (const copy of copies) if (copy.pid) await killPid(copy.pid, 'SIGKILL');
  await controller?.stop();
  await home?.cleanup();
  await paper?.close();
});

// A test that fails half-way must not leave the next one a running trader or a tripped breaker.
afterEach(async () => {
  delete process.env.TEST_TRADER;
  if (!controller) return;
  const status = await controller.app.core.status();
  if (status.process.state !== 'stopped' && status.process.state !== 'not_found') await controller.app.core.stop(operator);
  await controller.app.store.update((data) => {
    if (data.breaker.tripped) data.breaker = { tripped: false };
  });
});


const ordersFor = (symbol: string) => paper.snapshot().orders.filter((o) => o.symbol === symbol);
const refusals = (reason: string) => alerts.filter((a) => a.kind === 'order_refused' && a.facts.reason === reason);
const logLines = (pattern: RegExp) => (fs.existsSync(traderLog) ? fs.readFileSync(traderLog, 'utf8').split('\n').filter((l) => pattern.test(l)) : []);

/** A new hour: everything traded so far has left the rolling window. */
function nextHour(): void {
  clock.advance(2 * 3600_000);
}

function gate(method: string, route: string, body?: unknown, keys = { id: KEY, secret: SECRET }): Promise<Response> {
  return fetch(`${gateUrl}${route}`, {
    method,
    headers: { 'APCA-API-KEY-ID': keys.id, 'APCA-API-SECRET-KEY': keys.secret, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
}

test('a runaway trader through the gate makes exactly the limit of trades; later orders get an Alpaca-shaped 429 with Retry-After, alerted once', async () => {
  const before = ordersFor('BTC/USD').length;
  const started = await controller.app.core.start(operator);
  // The trader keeps trying every 300 ms; wait for several refusals, not just the first.
  await waitFor(() => logLines(/REJECTED 429/).length >= 4, { timeoutMs: 15_000, what: 'four refused orders in the trader log' });
  assert.equal(ordersFor('BTC/USD').length - before, 3, 'the broker saw exactly MAX_TRADES_PER_HOUR orders');
  const rejected = logLines(/REJECTED 429/);
  assert.match(rejected[0]!, /order refused: \d trade\(s\) in the last hour and \d order\(s\) accepted and not yet filled; one more would exceed MAX_TRADES_PER_HOUR=3/);
  await controller.gateway!.gate.alertsRaised();
  await waitFor(() => refusals('trade_limit').length === 1, { what: 'the order_refused alert' });
  const [alert] = refusals('trade_limit');
  assert.equal(alert!.facts.pid, started.pid, 'the alert names the trader PID');
  assert.match(String(alert!.facts.command), /trader\.mjs/);
  assert.equal(alert!.facts.symbol, 'BTC/USD');
  assert.match(alert!.body, /Who: PID \d+ .*the managed trader\. What: (buy|sell) .*BTC\/USD/);
  assert.equal(refusals('trade_limit').length, 1, 'one alert for the episode, not one per order');
  // A trader the gate locks out is visible without reading logs: in status (and /metrics).
  const { gate: shown } = await controller.app.core.status();
  assert.ok((shown?.refusedLastHour.trade_limit ?? 0) >= 1, `status shows the hour's refusals: ${JSON.stringify(shown)}`);
  assert.equal(shown?.mode, 'enforce');

  // An hour later the oldest trades have left the window: orders pass again (and a new episode starts).
  const atLimit = ordersFor('BTC/USD').length;
  clock.advance(3600_000 + 1000);
  await waitFor(() => ordersFor('BTC/USD').length > atLimit, { timeoutMs: 10_000, what: 'an order through after the hour' });
  await controller.app.core.stop(operator);
  assert.ok(ordersFor('BTC/USD').length - atLimit <= 3, 'the new hour holds the limit too');
});

test('a copy started by hand gets no order through the gate, while the managed trader\'s orders pass', async () => {
  nextHour();
  alerts.length = 0;
  process.env.DEMO_ORDER_EVERY_SECONDS = '3600'; // the managed trader: one order at start
  const btcBefore = ordersFor('BTC/USD').length;
  const started = await controller.app.core.start(operator);
  await waitFor(() => ordersFor('BTC/USD').length === btcBefore + 1, { what: "the managed trader's first order at the broker" });

  // As `APCA_API_BASE_URL=<gate> nohup node demo-trader.js &` from another shell: the same gate, the same keys.
  let out = '';
  const copy = spawn(process.execPath, [trader, '--every', '0.2'], {
    cwd: path.dirname(trader),
    env: { ...process.env, APCA_API_BASE_URL: gateUrl, DEMO_SYMBOL: 'ETH/USD' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  copies.push(copy);
  copy.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  await waitFor(() => (out.match(/REJECTED 403/g) ?? []).length >= 3, { timeoutMs: 10_000, what: 'three refused orders from the copy' });
  assert.equal(ordersFor('ETH/USD').length, 0, 'no order of the copy reached the broker');
  assert.match(out, /only the managed trader "trading-bot" .* may place orders, and this request came from PID \d+/);
  await killPid(copy.pid!, 'SIGTERM');
  await controller.gateway!.gate.alertsRaised();
  const alerted = refusals('not_managed_trader');
  assert.equal(alerted.length, 1, `one alert for the copy, not one per order: ${JSON.stringify(alerted.map((a) => a.facts))}`);
  assert.equal(alerted[0]!.facts.pid, copy.pid);
  assert.match(String(alerted[0]!.facts.command), /trader\.mjs --every 0\.2/);
  assert.equal(alerted[0]!.severity, 'critical');

  // The managed trader still trades through the gate (its next order: a restart makes one at once).
  const btc = ordersFor('BTC/USD').length;
  const restarted = await controller.app.core.restart(operator);
  await waitFor(() => ordersFor('BTC/USD').length === btc + 1, { what: "the managed trader's order after the copy's refusals" });
  assert.notEqual(restarted.pid, started.pid, 'a new trader process after the restart');
  assert.equal(refusals('not_managed_trader').length, 1, "the restarted trader's orders are not refused as a copy's");
  await controller.app.core.stop(operator);
});

test('cancels, position closes and reads pass while orders are refused; the broker\'s own answers come back unchanged', async () => {
  nextHour();
  paper.placeOrder({ symbol: 'BTC/USD', side: 'buy', type: 'market', time_in_force: 'gtc', notional: 100 });
  const resting = paper.placeOrder({ symbol: 'BTC/USD', side: 'buy', type: 'limit', limit_price: 10_000, qty: 0.001, time_in_force: 'gtc' });

  // This test process is not the managed trader: its order is refused, in Alpaca's shape.
  const order = await gate('POST', '/v2/orders', { symbol: 'BTC/USD', side: 'buy', type: 'market', time_in_force: 'gtc', notional: '5' });
  assert.equal(order.status, 403);
  assert.match(order.headers.get('content-type') ?? '', /application\/json/);
  const refusal = (await order.json()) as { code: number; message: string };
  assert.equal(refusal.code, REFUSED_CODE);
  assert.match(refusal.message, /only the managed trader .* Cancels, position closes and reads still pass/);
  const replace = await gate('PATCH', `/v2/orders/${String(resting.id)}`, { qty: '0.002' });
  assert.equal(replace.status, 403, 'an order replacement is a new order');

  const account = await gate('GET', '/v2/account');
  assert.equal(account.status, 200);
  assert.equal(((await account.json()) as { status: string }).status, 'ACTIVE');
  const cancel = await gate('DELETE', `/v2/orders/${String(resting.id)}`);
  assert.equal(cancel.status, 204);
  assert.equal(paper.snapshot().orders.find((o) => o.id === resting.id)?.status, 'canceled');
  const close = await gate('DELETE', `/v2/positions/${encodeURIComponent('BTC/USD')}`);
  assert.equal(close.status, 200);
  assert.equal(paper.snapshot().positions.filter((p) => String(p.symbol).startsWith('BTC')).length, 0, 'the position is closed');
  const cancelAll = await gate('DELETE', '/v2/orders');
  assert.equal(cancelAll.status, 207);
  // Wrong keys: the broker's 401 and body pass through as they are.
  const wrong = await gate('GET', '/v2/account', undefined, { id: 'PKWRONG', secret: 'nope' });
  assert.equal(wrong.status, 401);
  assert.equal(((await wrong.json()) as { code: number }).code, 40110000);
});

test('with the breaker tripped, the managed trader\'s orders are refused before the broker', async () => {
  nextHour();
  alerts.length = 0;
  process.env.DEMO_ORDER_EVERY_SECONDS = '0.3';
  const btcBefore = ordersFor('BTC/USD').length;
  await controller.app.core.start(operator);
  await waitFor(() => ordersFor('BTC/USD').length > btcBefore, { what: 'a first order through the gate' });
  await controller.app.store.update((data) => {
    data.breaker = { tripped: true, reason: 'tripped by the test', at: new Date(clock.now()).toISOString(), by: 'test' };
  });
  await waitFor(() => logLines(/REJECTED 403: .*breaker is tripped \(tripped by the test\)/).length >= 2, { timeoutMs: 10_000, what: 'orders refused for the breaker' });
  const atTrip = ordersFor('BTC/USD').length;
  await waitFor(() => logLines(/breaker is tripped/).length >= 4, { timeoutMs: 10_000, what: 'more refusals' });
  assert.equal(ordersFor('BTC/USD').length, atTrip, 'no order reached the broker while the breaker was tripped');
  await controller.gateway!.gate.alertsRaised();
  assert.equal(refusals('breaker_tripped').length, 1);
  await controller.app.store.update((data) => {
    data.breaker = { tripped: false };
  });
  await controller.app.core.stop(operator);
});

test('while the account is locked at the broker, the managed trader\'s orders are refused by the gate with that reason', async () => {
  nextHour();
  alerts.length = 0;
  process.env.DEMO_ORDER_EVERY_SECONDS = '0.3';
  const btcBefore = ordersFor('BTC/USD').length;
  await controller.app.core.start(operator);
  await waitFor(() => ordersFor('BTC/USD').length > btcBefore, { what: 'a first order through the gate' });
  await controller.app.core.lock(operator);
  await waitFor(() => logLines(/REJECTED 403: .*account is locked at the broker \(suspend_trade, set by cli:test\)/).length >= 2, { timeoutMs: 10_000, what: 'orders refused for the lock' });
  const atLock = ordersFor('BTC/USD').length;
  await waitFor(() => logLines(/account is locked at the broker/).length >= 4, { timeoutMs: 10_000, what: 'more refusals' });
  assert.equal(ordersFor('BTC/USD').length, atLock, 'no order reached the broker while the account was locked');
  await controller.gateway!.gate.alertsRaised();
  assert.equal(refusals('broker_locked').length, 1, 'one alert for the episode');
  await controller.app.core.unlock(operator);
  await controller.app.core.stop(operator);
});

/** One raw HTTP/1.1 exchange: the request line and headers exactly as given (fetch would normalise the path). */
function raw(request: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(new URL(gateUrl).port ? Number(new URL(gateUrl).port) : 80, '127.0.0.1');
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(received)?.[1]);
      resolve({ status, body: received.slice(received.indexOf('\r\n\r\n') + 4) });
    });
    socket.write(request);
  });
}

function orderRequest(target: string, extraHeaders = ''): string {
  const body = JSON.stringify({ symbol: 'ETH/USD', side: 'buy', type: 'market', time_in_force: 'gtc', notional: '5' });
  return (
    `POST ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAPCA-API-KEY-ID: ${KEY}\r\nAPCA-API-SECRET-KEY: ${SECRET}\r\n` +
    `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extraHeaders}connection: close\r\n\r\n${body}`
  );
}

test('an order spelled any way the broker would read as POST /v2/orders is decided on: a copy gets none through', async () => {
  const port = new URL(gateUrl).port;
  const spellings = ['/v2/./orders', '/v2/orders/.', '/./v2/orders', '/v2/../v2/orders', `http://127.0.0.1:${port}/v2/orders`, '/v2/%6Frders', '//v2//orders', '/v2\\orders', '/v2/orders/'];
  for (const target of spellings) {
    const answer = await raw(orderRequest(target));
    assert.equal(answer.status, 403, `${target}: ${answer.body}`);
    assert.match(answer.body, /only the managed trader \\"trading-bot\\"/, `${target} is judged as an order from a process that is not the trader`);
  }
  assert.equal(ordersFor('ETH/USD').length, 0, 'no spelling reached the broker');
});

test('deny by default: a write the gate does not recognise is refused, an upgrade of anything but the stream too; reads pass', async () => {
  for (const [method, target] of [['POST', '/v2/orderz'], ['PUT', '/v2/orders'], ['PATCH', '/v2/account/configurations'], ['POST', '/v2/%2Forders'], ['POST', '/V2/ORDERS']] as const) {
    const answer = await raw(orderRequest(target).replace(/^POST/, method));
    assert.equal(answer.status, 403, `${method} ${target}: ${answer.body}`);
    assert.match(answer.body, /not a request the order gate recognises as one of Alpaca's/, `${method} ${target}`);
  }
  const upgraded = await raw(orderRequest('/v2/orders', 'Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n').replace('connection: close', 'connection: Upgrade'));
  assert.equal(upgraded.status, 403, upgraded.body);
  assert.match(upgraded.body, /only the trading stream \(GET \/stream\) may be upgraded/);
  assert.equal(ordersFor('ETH/USD').length, 0, 'nothing reached the broker');
  const read = await gate('GET', '/v2/nothing-here');
  assert.equal(read.status, 404, 'a read of an unknown path passes to the broker, which answers it');
  assert.equal(((await read.json()) as { code: number }).code, 40410000);
});

test('the broker unreachable: the gate answers 502 in Alpaca\'s shape', async () => {
  const { startGateway } = await import('../src/gateway/gateway.ts');
  const closed = await freeLoopbackPort(); // nothing listens there
  const server = await startGateway({ host: '127.0.0.1', port: await freeLoopbackPort(), upstream: `http://127.0.0.1:${closed}`, gate: controller.gateway!.gate, logger: silentLogger });
  try {
    const response = await fetch(`${server.url}/v2/account`);
    assert.equal(response.status, 502);
    const body = (await response.json()) as { code: number; message: string };
    assert.equal(body.code, 50210000);
    assert.match(body.message, /could not be reached/);
  } finally {
    await server.close();
  }
});

/**
 * A gate of the test's own in front of the paper broker, for which this test process is the managed
 * trader (its orders are decided on, not refused as a copy's), wired to the controller's stream.
 */
async function ownGate(options: { upstream?: string; upstreamTimeoutMs?: number } = {}) {
  const { orderGate: own, server } = await standaloneGate({ mode: 'enforce', traderPid: async () => process.pid, store: controller.app.store, ...options });
  controller.app.tradeStream?.onOrderEnded((ended) => own.ended(ended.orderId));
  const send = async (method: string, route: string, body?: unknown, headers: Record<string, string> = {}) => {
    const response = await fetch(`${server.url}${route}`, {
      method,
      headers: { 'APCA-API-KEY-ID': KEY, 'APCA-API-SECRET-KEY': SECRET, ...(body ? { 'content-type': 'application/json' } : {}), ...headers },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: response.status, json: (await response.json().catch(() => ({}))) as Record<string, unknown> };
  };
  return { gate: own, server, send };
}

const restingBuy = (limit = 2) => ({ symbol: 'BTC/USD', side: 'buy', type: 'limit', time_in_force: 'gtc', qty: '1', limit_price: String(limit) }); // $2 and up: above crypto's $1 minimum, far below the price

test('an order that never reached the broker, or that it ended unfilled, frees its slot: no lockout', async () => {
  nextHour();
  // Not sent: no connection to the broker. Four of them do not use up the hour's three slots.
  const nowhere = await ownGate({ upstream: `http://127.0.0.1:${await freeLoopbackPort()}` });
  try {
    for (let i = 0; i < 4; i++) {
      const answer = await nowhere.send('POST', '/v2/orders', restingBuy());
      assert.equal(answer.status, 502, JSON.stringify(answer.json));
      assert.match(String(answer.json.message), /The order was NOT sent \(no connection was made\): it is safe to send it again/);
    }
    assert.equal(await nowhere.gate.pendingCount(), 0, 'orders not sent hold no slot');
  } finally {
    await nowhere.server.close();
  }

  const { gate: own, server, send } = await ownGate({ upstreamTimeoutMs: 500 });
  try {
    // Sent, the answer lost, and the broker has no such order (it hung up before acting).
    paper.failNext('hangup', 1, { method: 'POST', path: '/v2/orders' });
    const hungUp = await send('POST', '/v2/orders', restingBuy());
    assert.equal(hungUp.status, 502);
    assert.match(String(hungUp.json.message), /The broker has no such order \(looked up by its client_order_id\): it was not accepted/);
    assert.equal(await own.pendingCount(), 0, 'an order the broker does not have holds no slot');

    // Sent, acted on, and its answer too late: looked up, it counts (with its id) until it ends.
    paper.setDelay(1500, { method: 'POST', path: '/v2/orders' });
    const late = await send('POST', '/v2/orders', restingBuy());
    paper.setDelay(0, { method: 'POST', path: '/v2/orders' });
    assert.equal(late.status, 503);
    const lateId = /The order DID reach it \(order ([0-9a-f-]+), client_order_id twg-/.exec(String(late.json.message))?.[1];
    assert.ok(lateId, `the answer names the order that reached the broker: ${String(late.json.message)}`);
    assert.equal(await own.pendingCount(), 1, 'the order that reached the broker counts');
    assert.equal((await send('DELETE', `/v2/orders/${lateId}`)).status, 204);
    await waitFor(async () => (await own.pendingCount()) === 0, { what: 'the cancel, reported by the stream, to free the slot' });

    // IOC limits that cannot fill end canceled at once: four of them leave the hour's slots free.
    for (let i = 0; i < 4; i++) {
      const ioc = await send('POST', '/v2/orders', { ...restingBuy(), time_in_force: 'ioc' });
      assert.equal(ioc.status, 200, JSON.stringify(ioc.json));
      assert.equal(ioc.json.status, 'canceled');
      await waitFor(async () => (await own.pendingCount()) === 0, { what: `IOC order ${i + 1} freed by its canceled event` });
    }

    // Three resting orders fill the hour; replacing one takes its place, it does not add a fourth.
    const resting: string[] = [];
    for (let i = 0; i < 3; i++) resting.push(String((await send('POST', '/v2/orders', restingBuy(1 + i))).json.id));
    assert.equal(await own.pendingCount(), 3);
    const replaced = await send('PATCH', `/v2/orders/${resting[0]}`, { limit_price: '5' });
    assert.equal(replaced.status, 200, JSON.stringify(replaced.json));
    assert.equal(replaced.json.replaces, resting[0]);
    assert.equal(await own.pendingCount(), 3, 'the replacement took the old order\'s place');
    const fourth = await send('POST', '/v2/orders', restingBuy(7));
    assert.equal(fourth.status, 429, 'a fourth new order is still refused');
    for (const id of [String(replaced.json.id), resting[1], resting[2]]) await send('DELETE', `/v2/orders/${id}`);
    await waitFor(async () => (await own.pendingCount()) === 0, { what: 'the cancels to free the slots' });

    // A gzip-compressed answer (what Alpaca's Go and JS SDKs ask for): the order id is still read,
    // so the filled order counts once, as a trade, not also as an order pending for an hour.
    const zipped = await fetch(`${server.url}/v2/orders`, {
      method: 'POST',
      headers: { 'APCA-API-KEY-ID': KEY, 'APCA-API-SECRET-KEY': SECRET, 'content-type': 'application/json', 'accept-encoding': 'gzip' },
      body: JSON.stringify({ symbol: 'BTC/USD', side: 'buy', type: 'market', time_in_force: 'gtc', qty: '0.001' }),
    });
    const filled = (await zipped.json()) as { id: string; status: string };
    assert.equal(filled.status, 'filled');
    await waitFor(async () => (await controller.app.store.read()).trades.seen.some((t) => t.orderId === filled.id), { what: 'the fill recorded' });
    assert.equal(await own.pendingCount(), 0, 'the filled order counts as its trade only');
    // The controller's own gate never saw that order: to it, this was trading around it.
    await waitFor(() => alerts.find((a) => a.kind === 'gate_bypassed' && a.body.includes(filled.id)), { what: "the controller's gate reporting the other gate's fill as a bypass" });
  } finally {
    await server.close();
  }
});

test('a fill of an order that never passed through the gate raises gate_bypassed once per episode; the trader\'s own orders never do', async () => {
  nextHour();
  alerts.length = 0;
  const bypassed = () => alerts.filter((a) => a.kind === 'gate_bypassed');
  // The trader's orders through the gate, answered 400 ms after their fills are streamed: the watch
  // must wait for the gate to learn each order's id, not call it a bypass.
  paper.setDelay(400, { method: 'POST', path: '/v2/orders' });
  process.env.DEMO_ORDER_EVERY_SECONDS = '0.3';
  const startedAt = clock.now();
  try {
    await controller.app.core.start(operator);
    await waitFor(async () => controller.app.store.trades(startedAt - 1, Infinity).length >= 2, { timeoutMs: 10_000, what: "two of the trader's fills recorded" });
    await controller.app.core.stop(operator);
  } finally {
    paper.setDelay(0, { method: 'POST', path: '/v2/orders' });
  }
  await waitFor(() => controller.gateway!.gate.inFlightSince() === undefined, { what: 'every answer in' });
  await controller.gateway!.bypass.judge();
  await controller.app.outbox.deliverDue();
  assert.deepEqual(bypassed(), [], 'the trader\'s orders through the gate are not a bypass');

  // Orders straight at the broker (a bot with the broker's URL hard-coded): alerted once, by name.
  const first = paper.placeOrder({ symbol: 'ETH/USD', side: 'buy', type: 'market', time_in_force: 'gtc', notional: 5 });
  const alert = await waitFor(() => bypassed()[0], { what: 'the gate_bypassed alert' });
  assert.equal(alert.severity, 'critical');
  assert.match(alert.body, new RegExp(`order ${first.id}`));
  assert.match(alert.body, new RegExp(`APCA_API_BASE_URL=${gateUrl.replace(/[.]/g, '\\.')}`));
  paper.placeOrder({ symbol: 'ETH/USD', side: 'buy', type: 'market', time_in_force: 'gtc', notional: 5 });
  await waitFor(async () => (await controller.app.store.read()).watch.gateBypass?.orderIds?.length === 2, { what: 'the second bypass in the same episode' });
  assert.equal(bypassed().length, 1, 'one alert per episode');
});

test('the official Alpaca SDK trades through the gate unchanged: reads, orders up to the limit, the refusal as its typed rate-limit error', async () => {
  nextHour();
  process.env.TEST_TRADER = 'sdk';
  process.env.SDK_ORDERS = '5';
  const aaplBefore = ordersFor('AAPL').length;
  const started = await controller.app.core.start(operator);
  try {
    await waitFor(() => logLines(/"done":true/).length > 0, { timeoutMs: 15_000, what: 'the SDK trader to finish its orders' });
    const lines = logLines(/"sdkTrader"/).map((l) => JSON.parse(l.slice(l.indexOf('{'))) as Record<string, unknown>);
    assert.equal(lines.find((l) => 'account' in l)?.account, 'ACTIVE', 'the SDK read the account through the gate');
    const placed = lines.filter((l) => 'order' in l);
    assert.deepEqual(placed.map((l) => (l.id ? 'ok' : l.httpStatus)), ['ok', 'ok', 'ok', 429, 429]);
    assert.equal(ordersFor('AAPL').length - aaplBefore, 3, 'the broker saw the first three');
    const refused = placed[3]!;
    assert.equal(refused.error, 'RateLimitError', "the SDK's own typed error for a 429: not allowed now, not the broker down");
    assert.equal(refused.code, LIMIT_CODE);
    assert.match(String(refused.message), /MAX_TRADES_PER_HOUR=3/);
    assert.deepEqual([...new Set(lines.map((l) => l.sdkTrader))], [started.pid], 'every SDK line came from the managed trader PM2 started');
  } finally {
    delete process.env.TEST_TRADER;
    await controller.app.core.stop(operator);
  }
});

test('the trading stream (/stream) goes through the gate: the SDK authenticates, listens and gets trade updates', async () => {
  // The paper broker has no stream here: a minimal Alpaca-shaped trade_updates upstream.
  const { WebSocketServer } = await import('ws');
  const upstream = http.createServer();
  const wss = new WebSocketServer({ server: upstream, path: '/stream' });
  const seen: { host?: string; auth?: unknown } = {};
  wss.on('connection', (socket, request) => {
    seen.host = request.headers.host;
    socket.on('message', (raw) => {
      const message = JSON.parse(String(raw)) as { action: string; data: Record<string, unknown> };
      if (message.action === 'authenticate') {
        seen.auth = message.data;
        socket.send(JSON.stringify({ stream: 'authorization', data: { status: 'authorized', action: 'authenticate' } }));
      } else if (message.action === 'listen') {
        socket.send(JSON.stringify({ stream: 'listening', data: { streams: ['trade_updates'] } }));
        socket.send(JSON.stringify({ stream: 'trade_updates', data: { event: 'fill', timestamp: new Date(clock.now()).toISOString(), order: { id: 'order-1', symbol: 'AAPL', side: 'buy', qty: '1', filled_qty: '1' }, price: '200', qty: '1', position_qty: '1' } }));
      }
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const upstreamPort = (upstream.address() as net.AddressInfo).port;
  const { startGateway } = await import('../src/gateway/gateway.ts');
  const server = await startGateway({ host: '127.0.0.1', port: 0, upstream: `http://127.0.0.1:${upstreamPort}`, gate: controller.gateway!.gate, logger: silentLogger });
  const { streaming } = await import('@alpacahq/alpaca-trade-api');
  const stream = new streaming.TradingStream({ url: `${server.url.replace(/^http/, 'ws')}/stream`, credentials: { keyId: KEY, secret: SECRET }, reconnect: false });
  try {
    const update = new Promise<{ event: string; order: { id?: string; symbol?: string } }>((resolve) => stream.onTradeUpdate((u) => resolve(u as never)));
    stream.onConnect(() => stream.subscribeTradeUpdates());
    stream.connect();
    const got = await Promise.race([update, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no trade update through the gate within 5 s')), 5000).unref())]);
    assert.equal(got.event, 'fill');
    assert.equal(got.order.symbol, 'AAPL');
    assert.deepEqual(seen.auth, { key_id: KEY, secret_key: SECRET }, "the trader's own keys reach the broker");
    assert.equal(seen.host, `127.0.0.1:${upstreamPort}`, "Host names the broker, not the gate");
  } finally {
    stream.disconnect();
    await server.close();
    wss.close();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  }
});

/**
 * A gate of its own (own data dir unless a store is given, own limit) in front of the paper broker
 * (or `upstream`), for the gate's rules alone. `settings`: a GATEWAY_ADDR's configuration with its
 * pre-trade limits, as parseConfig reads them; market data from the paper broker.
 */
async function standaloneGate(options: {
  mode: 'enforce' | 'observe';
  traderPid: () => Promise<number | undefined>;
  store?: Store;
  upstream?: string;
  upstreamTimeoutMs?: number;
  settings?: GatewayConfig;
  maxTradesPerHour?: number;
}) {
  const { AlertOutbox } = await import('../src/alerts/outbox.ts');
  const { OrderGate } = await import('../src/gateway/order-gate.ts');
  const { startGateway } = await import('../src/gateway/gateway.ts');
  const raised: StoredAlert[] = [];
  const store = options.store ?? new Store(fs.mkdtempSync(path.join(home.root, 'gate-')));
  const outbox = new AlertOutbox({ store, clock, logger: silentLogger, sinks: [{ name: 'test', deliver: async (a) => void raised.push(a) }] });
  const orderGate = new OrderGate({ store, outbox, clock, logger: silentLogger, maxTradesPerHour: options.maxTradesPerHour ?? 3, processName: 'trading-bot', mode: options.mode, traderPid: options.traderPid, limits: options.settings });
  const server = await startGateway({ host: '127.0.0.1', port: 0, upstream: options.upstream ?? paper.url, dataUrl: paper.url, gate: orderGate, logger: silentLogger, upstreamTimeoutMs: options.upstreamTimeoutMs });
  const headers = { 'APCA-API-KEY-ID': KEY, 'APCA-API-SECRET-KEY': SECRET, 'content-type': 'application/json' };
  const post = (symbol: string, extra: Record<string, string> = {}) =>
    fetch(`${server.url}/v2/orders`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ symbol, side: 'buy', type: 'market', time_in_force: 'day', qty: '1', ...extra }),
    });
  const cancel = (orderId: string) => fetch(`${server.url}/v2/orders/${orderId}`, { method: 'DELETE', headers });
  return { orderGate, server, raised, post, cancel };
}

test('ccxt\'s Alpaca class as the trader: the limit reads as RateLimitExceeded, the breaker as PermissionDenied, never as the exchange down', async () => {
  nextHour();
  const ccxt = (await import('ccxt')).default;
  const store = new Store(fs.mkdtempSync(path.join(home.root, 'ccxt-')));
  const { server } = await standaloneGate({ mode: 'enforce', traderPid: async () => process.pid, store });
  try {
    // As a bot would set it up: ccxt's alpaca with its trading URL pointed at the gate.
    const exchange = new ccxt.alpaca({ apiKey: KEY, secret: SECRET, enableRateLimit: false });
    exchange.urls.api.trader = server.url;
    // The markets by hand: the paper broker serves no asset list.
    exchange.setMarkets([{ id: 'BTC/USD', symbol: 'BTC/USD', base: 'BTC', quote: 'USD', baseId: 'BTC', quoteId: 'USD', type: 'spot', spot: true, active: true, precision: { amount: 1e-9, price: 1 }, limits: { amount: { min: 1e-6 } }, info: {} }] as never);
    for (let i = 0; i < 3; i++) assert.ok((await exchange.createOrder('BTC/USD', 'market', 'buy', 0.001)).id, `order ${i + 1} placed through the gate`);
    const limited = await exchange.createOrder('BTC/USD', 'market', 'buy', 0.001).then(() => undefined, (e: unknown) => e);
    assert.ok(limited instanceof ccxt.RateLimitExceeded, `the hourly limit is ccxt's RateLimitExceeded: ${String(limited)}`);
    await store.update((data) => {
      data.breaker = { tripped: true, reason: 'tripped by the test', at: new Date(clock.now()).toISOString(), by: 'test' };
    });
    const halted = await exchange.createOrder('BTC/USD', 'market', 'buy', 0.001).then(() => undefined, (e: unknown) => e);
    assert.ok(halted instanceof ccxt.PermissionDenied, `the breaker is ccxt's PermissionDenied: ${String(halted)}`);
    assert.ok(!(halted instanceof ccxt.NetworkError), 'not a network error a framework would retry');
  } finally {
    await server.close();
  }
});

test('orders racing for the last slots: exactly the limit get through, whatever the interleaving', async () => {
  nextHour();
  // This test process plays the managed trader.
  const { orderGate, server, post } = await standaloneGate({ mode: 'enforce', traderPid: async () => process.pid });
  try {
    const before = ordersFor('MSFT').length;
    const statuses = (await Promise.all(Array.from({ length: 10 }, () => post('MSFT')))).map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 200).length, 3, `statuses: ${statuses.join(' ')}`);
    assert.equal(statuses.filter((s) => s === 429).length, 7, `statuses: ${statuses.join(' ')}`);
    assert.equal(ordersFor('MSFT').length - before, 3, 'the broker saw three');
    assert.equal(await orderGate.pendingCount(), 3, 'accepted and not yet seen as trades by a poll: still counted');
  } finally {
    await server.close();
  }
});

test('GATE_MODE=observe forwards the order it would refuse, and alerts that it would have', async () => {
  nextHour();
  // No managed trader runs: every order would be refused as not the trader's.
  const { orderGate, server, raised, post } = await standaloneGate({ mode: 'observe', traderPid: async () => undefined });
  try {
    const before = ordersFor('MSFT').length;
    const responses = await Promise.all([post('MSFT'), post('MSFT')]);
    assert.deepEqual(responses.map((r) => r.status), [200, 200], 'observe mode refuses nothing');
    assert.equal(ordersFor('MSFT').length - before, 2);
    await orderGate.alertsRaised();
    assert.equal(raised.length, 1, 'one alert for the episode');
    assert.equal(raised[0]!.kind, 'order_refused');
    assert.match(raised[0]!.title, /would have been refused .*observe mode/);
    assert.equal(raised[0]!.facts.pid, process.pid);
  } finally {
    await server.close();
  }
});

test('an accepted order that has not filled counts until it fills, is canceled (after a grace for a late fill) or an hour passes', async () => {
  nextHour();
  const { orderGate, server, post, cancel } = await standaloneGate({ mode: 'enforce', traderPid: async () => process.pid });
  try {
    // Three resting limit orders: nothing has traded, yet the hour's allowance is taken.
    const resting: string[] = [];
    for (let i = 0; i < 3; i++) {
      const response = await post('MSFT', { type: 'limit', limit_price: '1' });
      assert.equal(response.status, 200);
      resting.push(((await response.json()) as { id: string }).id);
    }
    const fourth = await post('MSFT');
    assert.equal(fourth.status, 429, 'three open orders may all fill: a fourth would exceed the limit');
    const retryAfter = Number(fourth.headers.get('retry-after'));
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 3600, `Retry-After says when a slot frees, in seconds (${fourth.headers.get('retry-after')})`);
    assert.equal((await cancel(resting[0]!)).status, 204);
    assert.equal((await post('MSFT')).status, 429, 'a canceled order still counts for the grace period (a fill may be on its way)');
    clock.advance(61_000);
    assert.equal(await orderGate.pendingCount(), 2);
    assert.equal((await post('MSFT')).status, 200, 'after the grace, the canceled order no longer counts');
    clock.advance(3600_000);
    assert.equal(await orderGate.pendingCount(), 0, 'an hour later nothing counts');
  } finally {
    await server.close();
  }
});

// ---- the pre-trade limits (issue 19): each with an order just under and just over it ----

/**
 * A gate with pre-trade limits, configured as an operator would (the variables through parseConfig,
 * APCA_API_DATA_URL at the paper broker), for which this test process is the managed trader. Its own
 * data dir and a high hourly limit, so only the pre-trade limits refuse.
 */
async function limitedGate(env: Record<string, string>) {
  const config = parseConfig({ GATEWAY_ADDR: '8790', APCA_API_DATA_URL: paper.url, ...env });
  assert.equal(config.broker.dataUrl, paper.url, 'APCA_API_DATA_URL is read');
  const { orderGate, server, raised } = await standaloneGate({ mode: 'enforce', traderPid: async () => process.pid, settings: config.gateway, maxTradesPerHour: 10_000 });
  const send = async (body: Record<string, string> | undefined, method = 'POST', route = '/v2/orders') => {
    const response = await fetch(`${server.url}${route}`, {
      method,
      headers: { 'APCA-API-KEY-ID': KEY, 'APCA-API-SECRET-KEY': SECRET, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: response.status, json: (await response.json().catch(() => ({}))) as Record<string, unknown> };
  };
  const refused = async (reason: string) => {
    await orderGate.alertsRaised();
    return raised.filter((a) => a.kind === 'order_refused' && a.facts.reason === reason);
  };
  return { gate: orderGate, server, send, refused };
}

const buy = (symbol: string, size: Record<string, string>) => ({ symbol, side: 'buy', type: 'market', time_in_force: cryptoLike(symbol) ? 'gtc' : 'day', ...size });
const sell = (symbol: string, size: Record<string, string>) => ({ ...buy(symbol, size), side: 'sell' });
const cryptoLike = (symbol: string) => symbol.includes('/') || /^[A-Z]{3,}USD$/i.test(symbol); // crypto trades gtc, equities day
/** The gate's 403 refusals all open alike: ccxt reads the wording as PermissionDenied. */
const REFUSED = 'tradewarden order gate: new orders are rejected by user request: order refused: ';
const dataReads = (path: string) => paper.requestLog.filter((r) => r.path.startsWith(path)).length;

test('MAX_ORDER_NOTIONAL: at the limit passes, a cent over is refused, valued by the notional, the limit price, qty × the latest trade or the position\'s price; a replacement as what it becomes; a reducing order passes', async () => {
  nextHour();
  paper.setPrice('AVAX/USD', 40);
  paper.setPrice('NVDA', 125);
  const { server, send, refused } = await limitedGate({ MAX_ORDER_NOTIONAL: '1000' });
  try {
    // By its notional.
    assert.equal((await send(buy('SOL/USD', { notional: '1000' }))).status, 200, 'an order of exactly MAX_ORDER_NOTIONAL passes');
    const over = await send(buy('SOL/USD', { notional: '1000.01' }));
    assert.equal(over.status, 403, JSON.stringify(over.json));
    assert.equal(over.json.code, REFUSED_CODE);
    assert.ok(String(over.json.message).startsWith(`${REFUSED}its value $1000.01 (its notional) exceeds MAX_ORDER_NOTIONAL=1000.`), `the refusal says why, in the trader's log: ${String(over.json.message)}`);
    const [alert] = await refused('order_notional');
    assert.ok(alert, 'an order_refused alert for the order over the limit');
    assert.deepEqual([alert.severity, alert.facts.limitName, alert.facts.limit, alert.facts.value], ['critical', 'MAX_ORDER_NOTIONAL', 1000, 1000.01]);
    assert.equal((await send(buy('SOL/USD', { notional: '2000' }))).status, 403);
    assert.equal((await refused('order_notional')).length, 1, 'one alert per episode, not one per refused order');

    // By its limit price: 0.02 × 50,000 = 1,000 (rests: far from filling) and 0.02 × 50,000.50.
    const resting = await send({ symbol: 'BTC/USD', side: 'buy', type: 'limit', time_in_force: 'gtc', qty: '0.02', limit_price: '50000' });
    assert.equal(resting.status, 200, JSON.stringify(resting.json));
    const overLimit = await send({ symbol: 'BTC/USD', side: 'buy', type: 'limit', time_in_force: 'gtc', qty: '0.02', limit_price: '50000.5' });
    assert.equal(overLimit.status, 403);
    assert.match(String(overLimit.json.message), /its value \$1000\.01 \(qty 0\.02 × limit price \$50000\.50\) exceeds MAX_ORDER_NOTIONAL=1000/);
    // A replacement is the order it would become: the resting order's limit price with the new qty.
    const bigger = await send({ qty: '0.03' }, 'PATCH', `/v2/orders/${String(resting.json.id)}`);
    assert.equal(bigger.status, 403, `a replacement past the limit is refused: ${JSON.stringify(bigger.json)}`);
    assert.match(String(bigger.json.message), /its value \$1500\.00 \(qty 0\.03 × limit price \$50000\.00\) exceeds MAX_ORDER_NOTIONAL=1000/);
    assert.equal((await send({ limit_price: '40000' }, 'PATCH', `/v2/orders/${String(resting.json.id)}`)).status, 200, 'a replacement within the limit passes');

    // By qty × the latest trade (no position yet), read once for orders seconds apart: an equity, a crypto pair.
    const nvdaReads = dataReads('/v2/stocks/NVDA/trades/latest');
    const overTrade = await send(buy('NVDA', { qty: '8.0001' }));
    assert.equal(overTrade.status, 403);
    assert.match(String(overTrade.json.message), /its value \$1000\.01 \(qty 8\.0001 × \$125\.00, the latest NVDA trade\) exceeds MAX_ORDER_NOTIONAL=1000/);
    assert.equal((await send(buy('NVDA', { qty: '8' }))).status, 200, 'qty × the latest trade at the limit passes');
    assert.equal(dataReads('/v2/stocks/NVDA/trades/latest') - nvdaReads, 1, 'the latest trade read once for both orders');
    const avaxOver = await send(buy('AVAX/USD', { qty: '25.001' }));
    assert.equal(avaxOver.status, 403);
    assert.match(String(avaxOver.json.message), /\(qty 25\.001 × \$40\.00, the latest AVAX\/USD trade\)/);
    assert.equal((await send(buy('AVAX/USD', { qty: '25' }))).status, 200);

    // A position held: priced at its current price (a new gate: nothing cached).
    const { server: fresh, send: sendFresh } = await limitedGate({ MAX_ORDER_NOTIONAL: '1000' });
    try {
      paper.setPrice('NVDA', 200);
      const overPosition = await sendFresh(buy('NVDA', { qty: '5.0001' }));
      assert.equal(overPosition.status, 403);
      assert.match(String(overPosition.json.message), /\(qty 5\.0001 × \$200\.00, the NVDA position's current price\)/);
      // Getting out is never refused: a sell of 8 NVDA at $200 is $1,600, over the limit, and reduces the long of 8.
      const out = await sendFresh(sell('NVDA', { qty: '8' }));
      assert.equal(out.status, 200, `a reducing order over MAX_ORDER_NOTIONAL passes: ${JSON.stringify(out.json)}`);
      assert.equal(paper.snapshot().positions.some((p) => p.symbol === 'NVDA'), false, 'the position is closed');
      // Larger than the position is not reducing: a sell limit of 26 AVAX (long 25) at $100 is judged like any order.
      const flip = await sendFresh({ symbol: 'AVAX/USD', side: 'sell', type: 'limit', time_in_force: 'gtc', qty: '26', limit_price: '100' });
      assert.equal(flip.status, 403, JSON.stringify(flip.json));
      assert.match(String(flip.json.message), /exceeds MAX_ORDER_NOTIONAL=1000/);
      assert.equal((await sendFresh({ symbol: 'AVAX/USD', side: 'sell', type: 'limit', time_in_force: 'gtc', qty: '25', limit_price: '100' })).status, 200, 'a sell of the whole long at $2,500 passes');
    } finally {
      await fresh.close();
    }
  } finally {
    await server.close();
  }
});

test('MAX_POSITION_NOTIONAL: the position, the open orders on its side and the order, at the market price; just under passes, just over is refused; a reducing order passes', async () => {
  nextHour();
  paper.setPrice('LINK/USD', 20);
  const { server, send, refused } = await limitedGate({ MAX_POSITION_NOTIONAL: '500' });
  try {
    assert.equal((await send(buy('LINK/USD', { notional: '400' }))).status, 200);
    // A resting buy of 4 LINK may fill: $80 at the market, so $480 is taken.
    assert.equal((await send({ symbol: 'LINK/USD', side: 'buy', type: 'limit', time_in_force: 'gtc', qty: '4', limit_price: '10' })).status, 200);
    const over = await send(buy('LINK/USD', { notional: '20.01' }));
    assert.equal(over.status, 403, JSON.stringify(over.json));
    assert.ok(
      String(over.json.message).startsWith(`${REFUSED}it would take the LINK/USD position to $500.01 (held $400.00, open buy orders $80.00, this order $20.01, at $20.00), beyond MAX_POSITION_NOTIONAL=500.`),
      String(over.json.message),
    );
    assert.equal((await send(buy('LINK/USD', { notional: '20' }))).status, 200, 'to exactly MAX_POSITION_NOTIONAL passes');
    const [alert] = await refused('position_notional');
    assert.deepEqual([alert?.facts.limitName, alert?.facts.value], ['MAX_POSITION_NOTIONAL', 500.01]);

    // The price rises: 21 LINK at $30 is $630, over the limit. Buying more is refused; selling some reduces it and passes.
    paper.setPrice('LINK/USD', 30);
    assert.equal((await send(buy('LINK/USD', { qty: '0.1' }))).status, 403);
    const out = await send(sell('LINK/USD', { qty: '1' }));
    assert.equal(out.status, 200, `a reducing order passes while the position is over the limit: ${JSON.stringify(out.json)}`);
  } finally {
    await server.close();
  }
});

test('ALLOWED_SYMBOLS: BTC/USD and BTCUSD are one symbol; an order in another is refused, unless it reduces a position held in it', async () => {
  nextHour();
  const { server, send, refused } = await limitedGate({ ALLOWED_SYMBOLS: 'BTCUSD, aapl' });
  try {
    assert.equal((await send(buy('BTC/USD', { notional: '5' }))).status, 200, 'BTC/USD is BTCUSD');
    assert.equal((await send(buy('BTCUSD', { notional: '5' }))).status, 200, 'BTCUSD as listed');
    const other = await send(buy('ETH/USD', { notional: '5' }));
    assert.equal(other.status, 403);
    assert.ok(String(other.json.message).startsWith(`${REFUSED}ETH/USD is not in ALLOWED_SYMBOLS=BTCUSD,AAPL.`), String(other.json.message));
    assert.equal((await refused('symbol_not_allowed')).length, 1);
    // A position held in a symbol no longer allowed: the bot can still get out of it.
    paper.seedPosition('DOGE/USD', 1000, 0.1);
    assert.equal((await send(buy('DOGE/USD', { qty: '10' }))).status, 403);
    assert.equal((await send(sell('DOGE/USD', { qty: '500' }))).status, 200, 'a reducing order in a symbol not allowed passes');
  } finally {
    await server.close();
  }
  const { server: slashed, send: sendSlashed } = await limitedGate({ ALLOWED_SYMBOLS: 'BTC/USD' });
  try {
    assert.equal((await sendSlashed(buy('BTCUSD', { notional: '5' }))).status, 200, 'BTCUSD is BTC/USD');
    assert.equal((await sendSlashed(buy('btc/usd', { notional: '5' }))).status, 200, 'in any case');
    assert.equal((await sendSlashed(buy('AAPL', { qty: '1' }))).status, 403);
  } finally {
    await slashed.close();
  }
});

test('MAX_OPEN_ORDERS: the broker\'s open orders and those still in flight; at the limit a new order is refused, a reducing one passes', async () => {
  nextHour();
  await fetch(`${paper.url}/v2/orders`, { method: 'DELETE', headers: { 'APCA-API-KEY-ID': KEY, 'APCA-API-SECRET-KEY': SECRET } });
  paper.seedPosition('BTC/USD', 0.01, 50_000);
  const { server, send, refused } = await limitedGate({ MAX_OPEN_ORDERS: '2' });
  try {
    const first = await send(restingBuy());
    assert.equal(first.status, 200);
    assert.equal((await send(restingBuy(3))).status, 200, 'one open: a second passes');
    const third = await send(restingBuy(4));
    assert.equal(third.status, 403, JSON.stringify(third.json));
    assert.ok(String(third.json.message).startsWith(`${REFUSED}2 of the trader's orders are open (MAX_OPEN_ORDERS=2); a new one waits`), String(third.json.message));
    const [alert] = await refused('open_orders');
    assert.equal(alert?.severity, 'warning', 'a limit that lifts by itself warns');
    assert.equal((await send(sell('BTC/USD', { qty: '0.001' }))).status, 200, 'a reducing order passes at MAX_OPEN_ORDERS');
    assert.equal((await send(undefined, 'DELETE', `/v2/orders/${String(first.json.id)}`)).status, 204);
    assert.equal((await send(restingBuy(5))).status, 200, 'after a cancel, one passes again');

    // An order sent and not answered yet is not in the broker's list: it counts all the same.
    await fetch(`${paper.url}/v2/orders`, { method: 'DELETE', headers: { 'APCA-API-KEY-ID': KEY, 'APCA-API-SECRET-KEY': SECRET } });
    const hold = paper.holdNext({ method: 'POST', path: '/v2/orders' });
    const inFlight = send(restingBuy(6));
    await hold.reached;
    assert.equal((await send(restingBuy(7))).status, 200, 'one in flight: a second passes');
    const overInFlight = await send(restingBuy(8));
    assert.equal(overInFlight.status, 403, `one open and one in flight make two: ${JSON.stringify(overInFlight.json)}`);
    assert.match(String(overInFlight.json.message), /2 of the trader's orders are open \(MAX_OPEN_ORDERS=2, 1 of them sent and not answered yet\)/);
    hold.release();
    assert.equal((await inFlight).status, 200);
  } finally {
    await fetch(`${paper.url}/v2/orders`, { method: 'DELETE', headers: { 'APCA-API-KEY-ID': KEY, 'APCA-API-SECRET-KEY': SECRET } });
    await server.close();
  }
});

test('an order whose value cannot be known (market data down, no position to price it) is refused with that reason; it passes once the price can be read', async () => {
  nextHour();
  paper.setPrice('XRP/USD', 2);
  const { server, send, refused } = await limitedGate({ MAX_ORDER_NOTIONAL: '1000' });
  try {
    paper.failNext(503, 1, { path: '/v1beta3/crypto/us/latest/trades' });
    const unknown = await send(buy('XRP/USD', { qty: '10' }));
    assert.equal(unknown.status, 403, JSON.stringify(unknown.json));
    assert.match(
      String(unknown.json.message),
      /^tradewarden order gate: new orders are rejected by user request: order refused: its value is unknown \(the latest price of XRP\/USD could not be read: GET 127\.0\.0\.1:\d+\/v1beta3\/crypto\/us\/latest\/trades answered 503.*\), and MAX_ORDER_NOTIONAL=1000 is checked before the broker/,
    );
    const [alert] = await refused('value_unknown');
    assert.ok(alert, 'an order_refused alert with reason value_unknown');
    assert.match(alert.title, /the order's value could not be known/);
    assert.equal((await send(buy('XRP/USD', { qty: '10' }))).status, 200, 'the same order passes once the latest trade is read');
  } finally {
    await server.close();
  }
});
