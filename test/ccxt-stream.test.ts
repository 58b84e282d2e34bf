// BROKER=ccxt with the exchange's pushed trades: ccxt pro's real `kraken` class (watchMyTrades over
// Kraken's WebSocket API v2 executions channel) against the Kraken stand-in, wired as the controller
// wires it, with no scheduled poll (TRADE_POLL_SECONDS 60): only the push, and the poll that follows
// each connect, can count. A crossing trade alerts through the push alone; a push dropped and
// refused for a while is reconciled by the poll on reconnect; the pushed and the polled copy of a
// trade (and the snapshot's after a reconnect) count once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfig } from '../src/config.ts';
import { buildApp, type App } from '../src/app.ts';
import { createLogger } from '../src/log.ts';
import type { AlertSink } from '../src/alerts/outbox.ts';
import type { StoredAlert } from '../src/store/schema.ts';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CcxtTradeStream, openCcxtStream } from '../src/broker/ccxt-stream.ts';
import { CcxtBroker } from '../src/broker/ccxt.ts';
import { silentLogger } from '../src/log.ts';
import { TradeStreamWatch } from '../src/watch/trade-stream.ts';
import { Store } from '../src/store/store.ts';
import { streamText } from '../src/render/text.ts';
import { ManualClock } from '../src/clock.ts';
import { startKrakenStandIn, type KrakenStandIn } from '../testkit/kraken-exchange.ts';
import { makeTempHome, waitFor, type TempHome } from '../testkit/pm2-home.ts';

const KEY = 'tradewarden-push-key-5e21';
const SECRET = Buffer.from('tradewarden-push-secret-a9c4').toString('base64');
const cleanups: Array<() => Promise<void>> = [];
let home: TempHome;
before(() => {
  // One PM2 home for the process (PM2 keeps its paths in module state); each test its own account and data.
  home = makeTempHome('tw-cxs-');
});
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await home.cleanup();
});

/** A fresh exchange account and an app as the controller builds it (the stream not started yet). */
async function pushApp(extra: Record<string, string> = {}) {
  const kraken = await startKrakenStandIn({ apiKey: KEY, secret: SECRET, balances: { USD: 100_000 } });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-cxs-data-'));
  const alerts: StoredAlert[] = [];
  const logLines: string[] = [];
  const sink: AlertSink = { name: 'test', deliver: async (a) => void alerts.push(a) };
  const env = {
    BROKER: 'ccxt',
    CCXT_EXCHANGE: 'kraken',
    CCXT_API_KEY: KEY,
    CCXT_SECRET: SECRET,
    CCXT_OPTIONS: kraken.ccxtOptions,
    DATA_DIR: dataDir,
    PM2_HOME: home.pm2Home,
    MAX_TRADES_PER_HOUR: '3',
    TRADE_POLL_SECONDS: '60',
    FOREIGN_TRADING: 'off',
    ...extra,
  };
  const logger = createLogger({ secrets: [KEY, SECRET], level: 'debug', write: (line) => void logLines.push(line) });
  const app = buildApp(parseConfig({ ...env, HOME: home.root }), { logger, deliversAlerts: true, sinks: [sink], streamBackoffMs: 30, streamCatchUpEveryMs: 100 });
  cleanups.push(async () => {
    await app.close();
    await kraken.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });
  return { app, kraken, alerts, logLines };
}

const buy = (kraken: KrakenStandIn) => kraken.placeOrder('BTC/USD', 'buy', 0.001);
const kinds = (alerts: StoredAlert[]) => alerts.map((a) => a.kind);
const tradeCount = async (app: App) => (await app.store.read()).trades.seen.length;
const connected = (app: App, kraken: KrakenStandIn) =>
  waitFor(() => app.tradeStream!.state().status === 'connected' && kraken.pushListeners > 0, { what: 'the push subscribed', intervalMs: 10 });

test('a runaway\'s crossing trade alerts through the push alone (poll at 60 s, none in between)', async () => {
  const { app, kraken, alerts, logLines } = await pushApp();
  app.startStream();
  await connected(app, kraken);
  await waitFor(() => kraken.calls('TradesHistory').length >= 1, { what: 'the poll that follows a connect' });
  const pollsAfterConnect = kraken.calls('TradesHistory').length;
  for (let i = 0; i < 4; i++) buy(kraken);
  await waitFor(() => alerts.some((a) => a.kind === 'trade_rate_exceeded'), { what: 'the trade-rate alert', intervalMs: 10 });
  assert.equal(await tradeCount(app), 4, 'four trades, each counted once');
  assert.deepEqual(kinds(alerts), ['trade_rate_exceeded']);
  assert.equal(kraken.calls('TradesHistory').length, pollsAfterConnect, 'the trades came by the push: no trade was read over REST after the connect');
  assert.ok(kraken.calls('GetWebSocketsToken').length >= 1, 'the WebSocket token was asked over REST');
  const status = await app.core.status();
  assert.equal(status.stream?.status, 'connected');
  assert.ok(logLines.some((l) => /kraken trade stream connected \(ccxt kraken watchMyTrades, ws:\/\/127\.0\.0\.1:\d+\/v2\)/.test(l)), 'the log says the push is connected, and where');
  assert.ok(!logLines.some((l) => l.includes(KEY) || l.includes(SECRET)), 'no key in the log');
  await app.tradeStream!.stop();
  assert.equal(app.tradeStream!.state().status, 'stopped');
  assert.equal(kraken.pushListeners, 0, 'stop closes the WebSocket');
});

test('push dropped and refused for a while: the gap\'s trades are read by the poll on reconnect, each counted once, one alert', async () => {
  // More trades in the gap than Kraken's snapshot holds (its last 50): the oldest only the poll can read.
  const GAP = 55;
  const { app, kraken, alerts } = await pushApp({ MAX_TRADES_PER_HOUR: '60' });
  app.startStream();
  await connected(app, kraken);
  buy(kraken);
  await waitFor(async () => (await tradeCount(app)) === 1, { what: 'the first trade by the push' });

  kraken.refusePush(true);
  kraken.dropPush();
  await waitFor(() => app.tradeStream!.state().status === 'reconnecting' && app.tradeStream!.state().attempts >= 3, { what: 'the push refused, retried with back-off', intervalMs: 10 });
  const down = app.tradeStream!.state();
  assert.match(down.lastError ?? '', /kraken/, 'the state says why the push is down');
  for (let i = 0; i < GAP; i++) buy(kraken);
  // While refused, nothing pushes the gap's trades.
  assert.equal(await tradeCount(app), 1);
  const pollsBefore = kraken.calls('TradesHistory').length;

  kraken.refusePush(false);
  await connected(app, kraken);
  const seen = await waitFor(async () => {
    const data = await app.store.read();
    return data.trades.seen.length === 1 + GAP ? data.trades.seen : undefined;
  }, { what: 'the reconnect poll to read the gap' });
  assert.ok(kraken.calls('TradesHistory').length > pollsBefore, 'the reconnect polled');
  assert.equal(new Set(seen.map((t) => t.orderId)).size, 1 + GAP, 'one trade per order');
  assert.ok(seen.every((t) => t.qty === 0.001 && t.activityIds.length === 1), 'the snapshot and the poll re-read the same trades: none doubled');
  assert.ok(app.tradeStream!.state().since > down.since, 'connected since the reconnect');
  assert.deepEqual(kinds(alerts), [], 'within the limit of 60');
  for (let i = 0; i < 5; i++) buy(kraken); // by the push again: 61, over the limit
  await waitFor(async () => (await tradeCount(app)) === 1 + GAP + 5, { what: 'five more trades by the push' });
  await app.tradeWatch!.poll();
  assert.equal(await tradeCount(app), 1 + GAP + 5);
  assert.deepEqual(kinds(alerts), ['trade_rate_exceeded'], 'one alert for the episode');
  assert.match(alerts[0]!.body, /^61 trades in the last hour/);
  await app.tradeStream!.stop();
});

test('the pushed, the polled and the snapshot\'s copy of the same trades count once', async () => {
  const { app, kraken, alerts } = await pushApp();
  app.startStream();
  await connected(app, kraken);
  const pushedBefore = kraken.pushed;
  buy(kraken);
  buy(kraken);
  await waitFor(async () => (await tradeCount(app)) === 2, { what: 'two trades by the push' });
  const polled = await app.tradeWatch!.poll();
  assert.equal(polled.newTrades, 0, 'the poll finds nothing new: the same trades, keyed alike');
  // A reconnect brings Kraken's snapshot (the last trades) again, and its catch-up poll.
  const pushedAfterUpdates = kraken.pushed;
  kraken.dropPush();
  await waitFor(() => kraken.pushed >= pushedAfterUpdates + 2 && kraken.pushListeners > 0, { what: 'the snapshot after the reconnect' });
  await app.tradeWatch!.poll();
  assert.ok(pushedAfterUpdates - pushedBefore >= 2, 'both trades were pushed as updates');
  const seen = (await app.store.read()).trades.seen;
  assert.equal(seen.length, 2, 'two trades, however many copies');
  assert.deepEqual(seen.map((t) => t.qty), [0.001, 0.001]);
  assert.deepEqual(seen.map((t) => t.activityIds.length), [1, 1], 'one trade id each: the push names a trade as the poll does');
  assert.deepEqual(kinds(alerts), []);
  await app.tradeStream!.stop();
});

test('keys the exchange refuses: the push is refused (its WebSocket token), said naming the variables, never the values, once', async () => {
  const { app, kraken, logLines } = await pushApp({ CCXT_API_KEY: 'key-kraken-does-not-know' });
  app.startStream();
  await waitFor(() => app.tradeStream!.state().refused && app.tradeStream!.state().attempts >= 3, { what: 'the push refused, retried with back-off', intervalMs: 10 });
  const state = app.tradeStream!.state();
  assert.equal(state.status, 'reconnecting');
  assert.match(state.lastError ?? '', /rejected the credentials .*check CCXT_API_KEY and CCXT_SECRET/);
  assert.equal(kraken.pushListeners, 0, 'no WebSocket without a token');
  const said = logLines.filter((l) => /kraken trade stream: .*rejected the credentials/.test(l));
  assert.equal(said.length, 1, 'said once for the streak, not once per retry');
  assert.ok(!logLines.some((l) => l.includes('key-kraken-does-not-know') || l.includes(SECRET)), 'no key in the log');
  await app.tradeStream!.stop();
});

test('stopped while the WebSocket token is being asked for: stop does not wait for the answer, nothing is left unhandled, no WebSocket opens after', { timeout: 15_000 }, async () => {
  const kraken = await startKrakenStandIn({ apiKey: KEY, secret: SECRET });
  // Private calls go to a server that takes them and answers only when told: the token request hangs.
  const held: http.ServerResponse[] = [];
  const hanging = http.createServer((req, res) => void held.push(res));
  await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    hanging.closeAllConnections();
    await new Promise<void>((resolve) => hanging.close(() => resolve()));
    await kraken.close();
  });
  const options = JSON.parse(kraken.ccxtOptions) as { urls: { api: Record<string, unknown> } };
  options.urls.api.private = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`;
  const config = parseConfig({ BROKER: 'ccxt', CCXT_EXCHANGE: 'kraken', CCXT_API_KEY: KEY, CCXT_SECRET: SECRET, CCXT_OPTIONS: JSON.stringify(options) }).ccxt!;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-cxs-stop-'));
  cleanups.push(async () => fs.rmSync(dataDir, { recursive: true, force: true }));
  // The request's own time-out is far beyond the test's: a stop that waited for it would time the test out.
  const broker = await CcxtBroker.open({ config, dataDir, push: true, timeoutMs: 60_000 });
  const stream = new CcxtTradeStream(broker, 'kraken', { logger: silentLogger, clock: new ManualClock(0), onFill: async () => assert.fail('nothing pushed'), onListening: async () => undefined, onStateChange: () => undefined });
  stream.start();
  await waitFor(() => held.length > 0, { what: 'the token request', intervalMs: 5 });
  await stream.stop();
  assert.equal(stream.state().status, 'stopped');
  // The answer comes after the stop: the loop ends there, and opens nothing.
  for (const res of held) res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ error: [], result: { token: 'late-token', expires: 900 } }));
  await stream.finished;
  assert.equal(kraken.pushConnections, 0, 'no WebSocket after the stop');
});

test('an exchange whose ccxt class has no watchMyTrades: said once at start, and the poll alone counts', async () => {
  const lines: string[] = [];
  const logger = createLogger({ secrets: [], level: 'debug', write: (line) => void lines.push(line) });
  const noPush = {
    pushesTrades: false,
    ccxtVersion: '4.x',
    onPushConnected: () => assert.fail('not subscribed'),
    preparePush: async () => assert.fail('not prepared'),
    nextPushedFills: async () => assert.fail('not watched'),
    refusedKeys: () => false,
    closePush: async () => undefined,
  };
  const stream = await openCcxtStream(Promise.resolve(noPush), 'coinex', {
    logger,
    clock: new ManualClock(0),
    onFill: async () => undefined,
    onListening: async () => undefined,
    onStateChange: () => undefined,
  });
  assert.equal(stream, undefined, 'no stream where the exchange pushes nothing');
  assert.equal(lines.filter((l) => /coinex: ccxt 4\.x offers no watchMyTrades .*the trade poll alone/.test(l)).length, 1, 'said once');
  // As the controller holds it: status says why there is no stream.
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-cxs-none-'));
  cleanups.push(async () => fs.rmSync(dataDir, { recursive: true, force: true }));
  const watch = new TradeStreamWatch({
    name: 'ccxt coinex watchMyTrades',
    open: (handlers) => openCcxtStream(Promise.resolve(noPush), 'coinex', handlers),
    tradeWatch: { ingest: async () => assert.fail('nothing pushed'), poll: async () => undefined },
    store: new Store(dataDir),
    clock: new ManualClock(0),
    logger,
  });
  watch.start();
  await waitFor(() => watch.state().lastError, { what: 'the stream known to be absent', intervalMs: 5 });
  assert.equal(streamText({ ...watch.state(), recorded: false }), 'stopped since 1970-01-01 00:00:00Z — ccxt coinex watchMyTrades is not offered: the trade poll alone counts');
  await watch.stop();
});
