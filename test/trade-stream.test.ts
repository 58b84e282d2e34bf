// The broker's trade stream (Alpaca trade_updates over a WebSocket) against the paper broker's own
// stream: fills reach the trade window without any scheduled poll, a dropped and refused stream is
// reconciled by the poll on reconnect (each fill counted once, one alert), bad credentials are
// a clear error while the poll still counts, and a connection dropped after every subscribe backs
// off more and more and polls the broker at a bounded rate, missing nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfig, ConfigError } from '../src/config.ts';
import { buildApp, type App, type BuildOptions } from '../src/app.ts';
import { ManualClock } from '../src/clock.ts';
import { createLogger } from '../src/log.ts';
import type { AlertSink } from '../src/alerts/outbox.ts';
import type { StoredAlert } from '../src/store/schema.ts';
import { tradeStreamUrl } from '../src/broker/stream.ts';
import { statusText } from '../src/render/text.ts';
import { startPaperBroker, type PaperBroker } from '../testkit/paper-broker.ts';
import { makeTempHome, waitFor, type TempHome } from '../testkit/pm2-home.ts';

const KEY = 'PKSTREAMTEST';
const SECRET = 'SKSTREAMTESTSECRET';
/** Each test's own broker (a fresh account), set by streamApp. */
let paper: PaperBroker;
let home: TempHome;
const apps: App[] = [];
const brokers: PaperBroker[] = [];
const dataDirs: string[] = [];

before(() => {
  // Status reads PM2 (and connecting spawns its daemon): one private home for the file, ended after.
  home = makeTempHome('tw-stream-');
});
after(async () => {
  for (const app of apps) await app.close();
  await home.cleanup();
  for (const broker of brokers) await broker.close();
  for (const dir of dataDirs) fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * A fresh account at a new paper broker and an app as the controller builds it, with no scheduled
 * poll: only the stream (and the poll that follows each connect) can count.
 */
async function streamApp(extra: Record<string, string> = {}, build: Partial<BuildOptions> = {}) {
  // With the app's clock, the broker stamps its fills on the same one.
  paper = await startPaperBroker({ keyId: KEY, secretKey: SECRET, prices: { 'BTC/USD': 50_000 }, clock: build.clock });
  brokers.push(paper);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-stream-'));
  dataDirs.push(dataDir);
  const alerts: StoredAlert[] = [];
  const logLines: string[] = [];
  const sink: AlertSink = { name: 'test', deliver: async (a) => void alerts.push(a) };
  const env = {
    APCA_API_BASE_URL: paper.url,
    APCA_API_KEY_ID: KEY,
    APCA_API_SECRET_KEY: SECRET,
    DATA_DIR: dataDir,
    PM2_HOME: home.pm2Home,
    MAX_TRADES_PER_HOUR: '3',
    TRADE_POLL_SECONDS: '60',
    FOREIGN_TRADING: 'off',
    ...extra,
  };
  const config = parseConfig({ ...env, HOME: home.root });
  const logger = createLogger({ secrets: [], level: 'debug', write: (line) => void logLines.push(line) });
  // The catch-up after a reconnect is rate-limited (5 s by default): short here, so a reconnect reads the gap at once.
  const app = buildApp(config, { logger, deliversAlerts: true, sinks: [sink], streamBackoffMs: 30, streamCatchUpEveryMs: 100, ...build });
  apps.push(app);
  return { app, alerts, logLines };
}

const buy = () => paper.placeOrder({ symbol: 'BTC/USD', side: 'buy', type: 'market', time_in_force: 'gtc', qty: 0.001 });
const kinds = (alerts: StoredAlert[]) => alerts.map((a) => a.kind);
const connected = (app: App) => waitFor(() => app.tradeStream!.state().status === 'connected' && paper.streamListeners > 0, { what: 'the stream connected', intervalMs: 10 });

test('the stream URL comes from APCA_STREAM_URL, else from the REST base URL (wss/ws, /stream)', () => {
  assert.equal(tradeStreamUrl('https://paper-api.alpaca.markets'), 'wss://paper-api.alpaca.markets/stream');
  assert.equal(tradeStreamUrl('https://api.alpaca.markets/v2'), 'wss://api.alpaca.markets/stream');
  assert.equal(tradeStreamUrl('http://127.0.0.1:8080/'), 'ws://127.0.0.1:8080/stream');
  assert.equal(tradeStreamUrl('https://x.test', 'wss://proxy.test/alpaca'), 'wss://proxy.test/alpaca');
  assert.throws(
    () => parseConfig({ APCA_STREAM_URL: 'https://paper-api.alpaca.markets/stream', ON_DUPLICATE: 'kill', FOREIGN_TRADING: 'maybe' }),
    (e) =>
      e instanceof ConfigError &&
      e.problems.some((p) => p.startsWith('APCA_STREAM_URL') && /ws:\/\/ or wss:\/\//.test(p)) &&
      e.problems.some((p) => p.startsWith('ON_DUPLICATE') && /alert, stop/.test(p)) &&
      e.problems.some((p) => p.startsWith('FOREIGN_TRADING') && /alert, off/.test(p)),
  );
});

test('fills arrive through the stream alone (poll at 60 s, none scheduled): the crossing fill alerts', async () => {
  const { app, alerts } = await streamApp();
  const fillReads = () => paper.requestLog.filter((r) => r.path.startsWith('/v2/account/activities')).length;
  app.startStream();
  await connected(app);
  await waitFor(async () => fillReads() >= 1, { what: 'the poll that follows a connect' });
  const readsAfterConnect = fillReads();
  for (let i = 0; i < 4; i++) buy();
  await waitFor(() => alerts.some((a) => a.kind === 'trade_rate_exceeded'), { what: 'the trade-rate alert', intervalMs: 10 });
  const data = await app.store.read();
  assert.equal(data.trades.seen.length, 4);
  assert.deepEqual(kinds(alerts), ['trade_rate_exceeded']);
  assert.equal(fillReads(), readsAfterConnect, 'the fills came by the stream: no fill was read over REST after the connect');
  assert.equal(app.tradeStream!.state().lastMessageAt !== undefined, true);
  const status = await app.core.status();
  assert.equal(status.stream?.status, 'connected');
  assert.match(statusText(status), /trade stream connected since /);
  await app.tradeStream!.stop();
});

test('stream dropped and refused for a while: the fills of the gap are read on reconnect, each counted once, one alert', async () => {
  const { app, alerts } = await streamApp();
  app.startStream();
  await connected(app);
  buy();
  buy();
  await waitFor(async () => (await app.store.read()).trades.seen.length === 2, { what: 'two fills by the stream' });

  paper.refuseStream(true);
  paper.dropStreamConnections();
  await waitFor(() => app.tradeStream!.state().refused, { what: 'the stream refused', intervalMs: 10 });
  const down = app.tradeStream!.state();
  assert.equal(down.status, 'reconnecting');
  buy();
  buy();
  buy();
  // While refused, nothing pushes the gap's fills: the window still holds two.
  assert.equal((await app.store.read()).trades.seen.length, 2);
  assert.match((await app.core.status()).stream?.lastError ?? '', /refused the stream credentials/);

  paper.refuseStream(false);
  await connected(app);
  const seen = await waitFor(async () => {
    const data = await app.store.read();
    return data.trades.seen.length === 5 ? data.trades.seen : undefined;
  }, { what: 'the reconnect poll to read the gap' });
  assert.equal(new Set(seen.map((t) => t.orderId)).size, 5, 'five orders, five trades');
  // The poll re-read the two fills the stream had pushed (overlap): quantities are not doubled.
  assert.deepEqual(seen.map((t) => t.qty), [0.001, 0.001, 0.001, 0.001, 0.001]);
  assert.equal(app.tradeStream!.state().since > down.since, true, 'connected since the reconnect');
  buy(); // after the reconnect, by the stream again; 6 is not double the alerted 5
  await waitFor(async () => (await app.store.read()).trades.seen.length === 6, { what: 'the sixth fill by the stream' });
  await app.tradeWatch!.poll();
  assert.deepEqual(kinds(alerts), ['trade_rate_exceeded'], 'one alert for the episode');
  assert.match(alerts[0].body, /^5 trades in the last hour/);
  await app.tradeStream!.stop();
});

test('bad stream credentials: a clear error naming the variables, keys never logged; the poll still counts', async () => {
  // The stream of another account's broker: the REST keys work, the stream refuses them.
  const other = await startPaperBroker({ keyId: 'PKOTHER', secretKey: 'SKOTHERSECRET' });
  try {
    const { app, logLines } = await streamApp({ APCA_STREAM_URL: `${other.url.replace('http', 'ws')}/stream` });
    app.startStream();
    // The refusal is said when the connection it ended has closed, with the status that follows.
    const state = await waitFor(() => {
      const now = app.tradeStream!.state();
      return now.refused && now.status === 'reconnecting' ? now : undefined;
    }, { what: 'the refusal, reconnecting', intervalMs: 10 });
    assert.match(state.lastError ?? '', /refused the stream credentials — check APCA_API_KEY_ID and APCA_API_SECRET_KEY/);
    await waitFor(() => logLines.some((l) => / error .*refused the stream credentials/.test(l)), { what: 'the error in the log' });
    assert.ok(!logLines.some((l) => l.includes(KEY) || l.includes(SECRET)), 'no key in any log line');
    buy();
    const polled = await app.tradeWatch!.poll();
    assert.equal(polled.newTrades, 1, 'the poll counts what the stream cannot');
    const text = statusText(await app.core.status());
    assert.match(text, /trade stream reconnecting since .* refused the stream credentials/);
    assert.ok(!text.includes(SECRET), 'no secret in the status');
    await app.tradeStream!.stop();
  } finally {
    await other.close();
  }
});

test('text frames and the [{"T":"success"}] authorization reply are understood too', async () => {
  const { app } = await streamApp();
  paper.setStreamFrames('text');
  paper.setStreamAuthReply('success');
  {
    app.startStream();
    await connected(app);
    buy();
    await waitFor(async () => (await app.store.read()).trades.seen.length === 1, { what: 'a fill through text frames' });
    await app.tradeStream!.stop();
    assert.equal(app.tradeStream!.state().status, 'stopped');
  }
});

const fillReads = () => paper.requestLog.filter((r) => r.path.startsWith('/v2/account/activities')).length;
/** Milliseconds between each subscription and the next. */
const subscribeGaps = () => paper.streamSubscriptions.slice(1).map((at, i) => at - paper.streamSubscriptions[i]);

test('a broker that drops the stream right after each subscribe: the back-off keeps growing, the catch-up poll is rate-limited, and a fill made meanwhile is still read', async () => {
  // The clock never moves, so no connection ever "stays up" (30 s) and resets the back-off.
  const clock = new ManualClock(Date.now());
  const { app } = await streamApp({}, { clock, streamCatchUpEveryMs: 1500 });
  paper.flapStream(true);
  app.startStream();
  await waitFor(() => fillReads() >= 1, { what: 'the catch-up after the first subscribe' });
  // A fill while no connection listens (checked in the same tick): only a catch-up poll can read it.
  await waitFor(() => paper.streamListeners === 0, { what: 'a moment with no stream listener', intervalMs: 1 });
  buy();

  await waitFor(() => paper.streamSubscriptions.length >= 7, { what: 'seven subscribes, each dropped', timeoutMs: 15_000 });
  const gaps = subscribeGaps();
  // Back-off 30 ms doubled per drop, jittered between half and all of it: the 6th wait is at least 480 ms.
  assert.ok(gaps[5] >= 470, `the back-off grew while the connection flapped (gaps ${gaps.join(', ')} ms)`);
  assert.ok(app.tradeStream!.state().attempts >= 7, `a subscribe did not reset the back-off (attempts ${app.tradeStream!.state().attempts})`);
  // One catch-up at the first subscribe, then at most one per 1.5 s (and one more starting as we look).
  const flapped = paper.streamSubscriptions.at(-1)! - paper.streamSubscriptions[0];
  const allowed = 2 + Math.floor(flapped / 1500);
  assert.ok(fillReads() <= allowed, `at most one catch-up poll per 1.5 s, not one per subscribe (${fillReads()} polls for ${paper.streamSubscriptions.length} subscribes in ${flapped} ms)`);

  paper.flapStream(false);
  await waitFor(async () => (await app.store.read()).trades.seen.length === 1, { what: 'the held-back catch-up to read the missed fill', timeoutMs: 15_000 });
  await app.tradeStream!.stop();
});

test('a connection that stayed up 30 s (by the clock) starts the back-off over; one dropped sooner does not', async () => {
  const clock = new ManualClock(Date.now());
  const { app } = await streamApp({}, { clock });
  const attempts = () => app.tradeStream!.state().attempts;
  paper.flapStream(true);
  app.startStream();
  await waitFor(() => paper.streamSubscriptions.length >= 4, { what: 'four subscribes, each dropped' });
  paper.flapStream(false);
  await connected(app);
  const streak = attempts();
  assert.ok(streak >= 4, `connected, yet not up long enough to forget the streak (attempts ${streak})`);

  /** Drops the connection and waits for the next one to be subscribed and connected. */
  const dropAndReconnect = async (what: string) => {
    const subscribes = paper.streamSubscriptions.length;
    paper.dropStreamConnections();
    await waitFor(() => paper.streamSubscriptions.length > subscribes && app.tradeStream!.state().status === 'connected', { what, timeoutMs: 15_000 });
  };
  clock.advance(29_000); // up 29 s: not long enough
  await dropAndReconnect('the reconnect after 29 s up');
  assert.equal(attempts(), streak + 1, 'one more attempt in the streak');

  clock.advance(30_000); // up 30 s: stable
  await dropAndReconnect('the reconnect after 30 s up');
  assert.equal(attempts(), 1, 'the back-off started over: this reconnect was the first attempt');
  await app.tradeStream!.stop();
});
