// The health registry (fresh within 3× the interval, failing at once), the conditions that need a
// human, the dead-man's switch against a local HTTP server, and the Prometheus endpoint.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { ManualClock } from '../src/clock.ts';
import { ConfigError, parseConfig } from '../src/config.ts';
import { createLogger, silentLogger } from '../src/log.ts';
import { AlertOutbox } from '../src/alerts/outbox.ts';
import { Store } from '../src/store/store.ts';
import { HealthChecks, alertsUndeliverableCondition, traderDownCondition } from '../src/health/checks.ts';
import { DeadMansSwitch, failUrl, publicPart } from '../src/health/deadman.ts';
import { startMetricsServer } from '../src/health/metrics.ts';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-health-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

test('a check is pending, then ok, stale after 3× its interval without success, failing at once on an error', async () => {
  const clock = new ManualClock();
  const health = new HealthChecks(clock);
  const poll = health.register('trade-poll', { everySeconds: 10, what: 'fills from the broker' });
  let report = await health.report();
  assert.equal(report.healthy, true, 'a new check has its grace period');
  assert.equal(report.checks[0].state, 'pending');

  clock.advance(31_000);
  report = await health.report();
  assert.equal(report.healthy, false, 'never succeeded within 3 intervals');
  assert.deepEqual(report.reasons, ['fills from the broker stale: no successful run 31s since start (expected every 10s)']);

  poll.ok();
  assert.equal((await health.report()).healthy, true, 'ok again');
  clock.advance(29_000);
  assert.equal((await health.report()).checks[0].state, 'ok', 'a missed run or two is not an outage');
  clock.advance(2_000);
  assert.deepEqual((await health.report()).reasons, ['fills from the broker stale: last success 31s ago (expected every 10s)']);

  poll.ok();
  poll.fail(new Error('GET /v2/account/activities/FILL failed: 503'));
  report = await health.report();
  assert.equal(report.checks[0].state, 'failing');
  assert.deepEqual(report.reasons, ['fills from the broker failing: GET /v2/account/activities/FILL failed: 503']);
  poll.ok();
  assert.equal((await health.report()).healthy, true, 'a success clears the failure');

  // A tracked job reports its own runs and still throws to its scheduler.
  let fail = true;
  const job = health.tracked({ name: 'process-scan', everySeconds: 5, run: async () => {
    if (fail) throw new Error('PM2 did not answer');
    return 'scanned';
  } }, 'PM2 and the process scan');
  await assert.rejects(job.run(), /PM2 did not answer/);
  assert.deepEqual((await health.report()).reasons, ['PM2 and the process scan failing: PM2 did not answer']);
  fail = false;
  assert.equal(await job.run(), 'scanned');
  assert.equal((await health.report()).healthy, true, 'scan back');
  assert.equal(health.lastOkAt('process-scan'), clock.now());
});

test('conditions: the trader down while wanted, and alerts stuck for more than a minute, each name what is wrong', async () => {
  const dataDir = fs.mkdtempSync(path.join(root, 'cond-'));
  const store = new Store(dataDir);
  const clock = new ManualClock();
  const health = new HealthChecks(clock);
  health.condition('trader', traderDownCondition(store, 'trading-bot'));
  health.condition('alerts', alertsUndeliverableCondition(store, clock));
  assert.equal((await health.report()).healthy, true, 'nothing wrong yet');

  await store.update((data) => void (data.watch.processDown = true));
  assert.deepEqual((await health.report()).reasons, ['trading-bot should be running but is down']);
  await store.update((data) => void (data.watch.processDown = false));

  const outbox = new AlertOutbox({
    store,
    clock,
    logger: silentLogger,
    backoffMs: 1000,
    sinks: [{ name: 'discord', deliver: async () => { throw new Error('Discord is not connected'); } }],
  });
  await outbox.raise({ kind: 'process_down', severity: 'critical', title: 'Trader is down', body: 'x' });
  assert.equal((await health.report()).healthy, true, 'a failed first attempt is not yet an outage');
  clock.advance(90_000);
  assert.deepEqual((await health.report()).reasons, ['1 alert(s) not delivered to discord for 1m 30s (last error: Discord is not connected)']);
});

test('dead-man\'s switch: pings while healthy, POSTs <url>/fail with the reason while not, and never logs the URL', async () => {
  const requests: Array<{ method: string; url: string; body: string }> = [];
  let answer = 200;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      requests.push({ method: req.method!, url: req.url!, body });
      res.writeHead(answer).end('OK');
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const secretPath = '/ping/8f2c1f0e-6c5b-4bd5-9d1a-0a5e2b1c9e77';
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${secretPath}`;
  const config = parseConfig({ HEALTHCHECK_URL: url, HEALTHCHECK_SECONDS: '30', DATA_DIR: root });
  assert.deepEqual(config.healthcheck, { url, everySeconds: 30 });
  assert.ok(config.secrets.includes(url) && config.secrets.includes(secretPath), 'the URL and its path are secrets');

  const lines: string[] = [];
  const logger = createLogger({ secrets: config.secrets, write: (l) => lines.push(l) });
  let reasons: string[] = [];
  const deadman = new DeadMansSwitch({
    url,
    everySeconds: 30,
    logger,
    secrets: config.secrets,
    report: async () => ({ healthy: reasons.length === 0, reasons, checks: [], at: new Date().toISOString(), pid: process.pid }),
  });
  try {
    await deadman.tick();
    assert.deepEqual(requests.at(-1), { method: 'GET', url: secretPath, body: '' });

    reasons = ['fills from the broker failing: 401 with key PKSECRETKEY', 'trading-bot should be running\nbut is down'];
    const redacting = new DeadMansSwitch({ url, everySeconds: 30, logger, secrets: [...config.secrets, 'PKSECRETKEY'], report: async () => ({ healthy: false, reasons, checks: [], at: '', pid: 1 }) });
    await redacting.tick();
    assert.equal(requests.at(-1)!.method, 'POST');
    assert.equal(requests.at(-1)!.url, `${secretPath}/fail`);
    assert.equal(requests.at(-1)!.body, 'fills from the broker failing: 401 with key [redacted]; trading-bot should be running but is down', 'one line, no secret');

    answer = 500;
    await deadman.tick();
    assert.ok(lines.some((l) => /dead-man's switch: http:\/\/127\.0\.0\.1:\d+ did not take the report: HTTP 500/.test(l)), `a failed report is logged: ${lines.join(' | ')}`);
    assert.ok(lines.some((l) => /reporting to http:\/\/127\.0\.0\.1:\d+ every 30s|healthy/.test(l)), 'state changes are logged');
    for (const line of lines) assert.ok(!line.includes('8f2c1f0e'), `the URL's secret path never reaches the log: ${line}`);
  } finally {
    server.close();
  }
  assert.equal(publicPart('https://hc-ping.com/uuid-here?x=1'), 'https://hc-ping.com');
  assert.equal(failUrl('https://push.example/api/push/abc?status=up'), 'https://push.example/api/push/abc/fail?status=up');
});

test('HEALTHCHECK_URL and METRICS_ADDR are validated, the URL never shown in the error', () => {
  assert.throws(() => parseConfig({ HEALTHCHECK_URL: 'ftp://secret-token-here', HEALTHCHECK_SECONDS: '0', METRICS_ADDR: 'localhost:99999' }), (e: unknown) => {
    assert.ok(e instanceof ConfigError, 'a ConfigError');
    assert.match(e.message, /HEALTHCHECK_URL is \(hidden\): expected an http\(s\) URL/);
    assert.match(e.message, /HEALTHCHECK_SECONDS is "0": expected a whole number from 1 to 86400/);
    assert.match(e.message, /METRICS_ADDR is "localhost:99999": expected host:port or :port/);
    assert.doesNotMatch(e.message, /secret-token-here/);
    return true;
  });
  assert.deepEqual(parseConfig({ METRICS_ADDR: '9464' }).metrics, { host: '127.0.0.1', port: 9464 }, 'loopback unless a host is given');
  assert.deepEqual(parseConfig({ METRICS_ADDR: ':9464' }).metrics, { host: '127.0.0.1', port: 9464 });
  assert.deepEqual(parseConfig({ METRICS_ADDR: '0.0.0.0:9464' }).metrics, { host: '0.0.0.0', port: 9464 });
  assert.deepEqual(parseConfig({ METRICS_ADDR: '[::1]:9464' }).metrics, { host: '::1', port: 9464 });
  assert.equal(parseConfig({}).metrics, undefined, 'off by default');
  assert.equal(parseConfig({ HEALTHCHECK_URL: 'https://hc-ping.com/abc-def-ghi' }).healthcheck?.everySeconds, 60, 'default 60 s');
});

test('/metrics exposes every tradewarden metric and the process defaults; /healthz is 200 or 503 with the reasons', async () => {
  let restarts = 2;
  let healthy = true;
  let streamConnected: boolean | undefined; // no stream offered (an exchange without a push)
  const server = await startMetricsServer({
    host: '127.0.0.1',
    port: 0,
    logger: silentLogger,
    health: async () => ({ healthy, reasons: healthy ? [] : ['fills from the broker stale: last success 45s ago (expected every 10s)'], checks: [], at: '', pid: 1 }),
    snapshot: async () => ({
      tradesLastHour: 4,
      tradeLimit: 3,
      traderUp: true,
      traderRestarts: restarts,
      breakerTripped: true,
      brokerLocked: true,
      duplicates: 1,
      alertsPending: 2,
      streamConnected,
      lastFillPollAgeSeconds: 7.5,
      healthy,
      gate: { pending: 2, refusedTotal: { trade_limit: 5, not_managed_trader: 1 }, limits: { maxOrderNotional: 250, maxPositionNotional: 1000.5, maxOpenOrders: 4, allowedSymbols: ['BTC/USD', 'AAPL'] }, bookLive: false },
    }),
  });
  try {
    const get = async (p: string) => {
      const response = await fetch(server.url + p);
      return { status: response.status, text: await response.text() };
    };
    let metrics = await get('/metrics');
    assert.equal(metrics.status, 200);
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics.text)?.[1]);
    assert.equal(value('tradewarden_trades_last_hour'), 4);
    assert.equal(value('tradewarden_trade_limit'), 3);
    assert.equal(value('tradewarden_trader_up'), 1);
    assert.equal(value('tradewarden_trader_restarts_total'), 0, "PM2's history (2) is not this controller's: the counter starts at 0");
    assert.equal(value('tradewarden_breaker_tripped'), 1);
    assert.equal(value('tradewarden_broker_locked'), 1);
    assert.equal(value('tradewarden_duplicates'), 1);
    assert.equal(value('tradewarden_alerts_pending'), 2);
    assert.doesNotMatch(metrics.text, /^tradewarden_stream_connected /m, 'no stream offered: left out, not a 0 that reads as down');
    for (const unset of ['tradewarden_day_pnl', 'tradewarden_max_daily_loss', 'tradewarden_drawdown_ratio', 'tradewarden_max_drawdown_ratio']) {
      assert.doesNotMatch(metrics.text, new RegExp(`^${unset} `, 'm'), `${unset}: no loss limit set, left out (not a limit of 0)`);
    }
    assert.equal(value('tradewarden_fill_poll_age_seconds'), 7.5);
    assert.equal(value('tradewarden_healthy'), 1);
    assert.equal(value('tradewarden_gate_pending_orders'), 2);
    assert.match(metrics.text, /^tradewarden_gate_refusals_total\{reason="trade_limit"\} 5$/m, 'refusals by reason');
    assert.match(metrics.text, /^tradewarden_gate_refusals_total\{reason="not_managed_trader"\} 1$/m);
    assert.equal(value('tradewarden_gate_max_order_notional'), 250, 'MAX_ORDER_NOTIONAL as configured');
    assert.equal(value('tradewarden_gate_max_position_notional'), 1000.5);
    assert.equal(value('tradewarden_gate_max_open_orders'), 4);
    assert.match(metrics.text, /^tradewarden_gate_allowed_symbol\{symbol="BTC\/USD"\} 1$/m, 'one series per allowed symbol');
    assert.match(metrics.text, /^tradewarden_gate_allowed_symbol\{symbol="AAPL"\} 1$/m);
    assert.equal(value('tradewarden_gate_book_live'), 0, 'the limits read the broker for each order');
    assert.match(metrics.text, /^process_cpu_user_seconds_total /m, 'default process metrics');
    assert.match(metrics.text, /^# TYPE tradewarden_trader_restarts_total counter$/m);

    restarts = 5;
    streamConnected = false;
    metrics = await get('/metrics');
    assert.equal(value('tradewarden_trader_restarts_total'), 3, "the counter grows as PM2's does");
    assert.equal(value('tradewarden_stream_connected'), 0, 'a stream that is down: 0');
    streamConnected = true;
    metrics = await get('/metrics');
    assert.equal(value('tradewarden_stream_connected'), 1, 'connected: 1');
    streamConnected = undefined;
    metrics = await get('/metrics');
    assert.doesNotMatch(metrics.text, /^tradewarden_stream_connected /m, 'unknown again: left out again');
    restarts = 1; // a new PM2 entry starts over: the counter still only goes up
    metrics = await get('/metrics');
    assert.equal(value('tradewarden_trader_restarts_total'), 4);

    assert.deepEqual(await get('/healthz'), { status: 200, text: 'ok\n' });
    healthy = false;
    assert.deepEqual(await get('/healthz'), { status: 503, text: 'fills from the broker stale: last success 45s ago (expected every 10s)\n' });
    assert.equal((await get('/nope')).status, 404);
  } finally {
    await server.close();
  }
});

test('tradewarden_trader_restarts_total across controller restarts: starts at 0, counts each restart once, never PM2\'s history again', async () => {
  let restarts = 7; // PM2's count for the trader, kept across controller restarts
  const serve = () =>
    startMetricsServer({
      host: '127.0.0.1',
      port: 0,
      logger: silentLogger,
      health: async () => ({ healthy: true, reasons: [], checks: [], at: '', pid: 1 }),
      snapshot: async () => ({ tradesLastHour: 0, tradeLimit: 3, traderUp: true, traderRestarts: restarts, breakerTripped: false, alertsPending: 0, healthy: true }),
    });
  const counted = async (server: { url: string }) => {
    const text = await (await fetch(server.url + '/metrics')).text();
    return Number(/^tradewarden_trader_restarts_total (\S+)$/m.exec(text)?.[1]);
  };
  const first = await serve();
  try {
    assert.equal(await counted(first), 0, 'a fresh controller: 0, not the 7 restarts PM2 counted before it');
    restarts = 9;
    assert.equal(await counted(first), 2, 'two restarts seen');
  } finally {
    await first.close();
  }
  // The controller restarts (a new process, a new registry); the trader restarts once meanwhile.
  restarts = 10;
  const second = await serve();
  try {
    assert.equal(await counted(second), 0, 'the restarted controller starts over: the 2 already counted are not counted again');
    restarts = 11;
    assert.equal(await counted(second), 1, 'and counts the next restart once');
  } finally {
    await second.close();
  }
});

test('downtime: a clean exit reports nothing; a crash reports from the last heartbeat; a restart that dies before its report carries the gap over', async () => {
  const { ControllerLife } = await import('../src/health/downtime.ts');
  const store = new Store(fs.mkdtempSync(path.join(root, 'life-')));
  const clock = new ManualClock(Date.parse('2026-03-02T10:00:00Z'));
  const life = new ControllerLife(store, clock);
  assert.equal(await life.begin(), undefined, 'first start ever');
  clock.advance(30_000);
  await life.heartbeat();
  clock.advance(10_000);
  await life.end();
  clock.advance(60_000);
  assert.equal(await life.begin(), undefined, 'after a clean exit');

  clock.advance(30_000);
  await life.heartbeat();
  const lastSeen = clock.now();
  clock.advance(45_000); // SIGKILL somewhere in here; nothing is written
  const gap = await life.begin();
  assert.deepEqual(gap, { from: lastSeen, to: clock.now(), previousPid: process.pid });

  clock.advance(5_000); // this restart dies too, before its report was saved
  const carried = await life.begin();
  assert.equal(carried?.from, lastSeen, 'the gap still starts at the first controller\'s last heartbeat');

  // This time the report is saved (its key), but the controller dies before marking it: not carried again.
  await store.update((data) => void data.alerts.push({ id: 'x', kind: 'controller_restarted', severity: 'warning', key: `controller_restarted:${lastSeen}`, title: '', body: '', facts: {}, createdAt: clock.now(), deliveries: {} }));
  const startedAt = clock.now();
  clock.advance(5_000);
  assert.equal((await life.begin())?.from, startedAt, 'a new gap, from the last restart\'s start');
});
