// The fault suite: each fault inflicted on real processes (a real PM2 daemon in a temp home, the
// controller as its own process, the paper broker over HTTP), asserting that nothing is lost or
// repeated and that the outside world hears about it. Faults already covered elsewhere are not
// repeated here (see README "Reliability" for the map).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { AlertOutbox } from '../src/alerts/outbox.ts';
import { buildApp } from '../src/app.ts';
import { AlpacaBroker } from '../src/broker/alpaca.ts';
import { ManualClock } from '../src/clock.ts';
import { parseConfig } from '../src/config.ts';
import { ControlUnavailable, requestControl } from '../src/control/socket.ts';
import { OperationError } from '../src/errors.ts';
import { HealthChecks, alertsUndeliverableCondition } from '../src/health/checks.ts';
import { DeadMansSwitch } from '../src/health/deadman.ts';
import { silentLogger } from '../src/log.ts';
import { TradeWatch } from '../src/watch/watchdog.ts';
import { startDiscordStandIn, type DiscordStandIn } from '../testkit/discord/discord.ts';
import { Store } from '../src/store/store.ts';
import type { StoredAlert } from '../src/store/schema.ts';
import { startPaperBroker, type PaperBroker } from '../testkit/paper-broker.ts';
import { isAlive, makeTempHome, waitFor } from '../testkit/pm2-home.ts';

const home = makeTempHome('tw-faults-');
const children: ChildProcess[] = [];
const closers: Array<() => Promise<unknown> | unknown> = [];
after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const close of closers.reverse()) await close();
  await home.cleanup();
});
const baseEnv = { PATH: process.env.PATH!, HOME: home.root, PM2_HOME: home.pm2Home, LOG_LEVEL: 'info' };
const pm2Bin = path.resolve('node_modules/pm2/bin/pm2');
const alertsOf = async (dataDir: string, kind: StoredAlert['kind']) => (await new Store(dataDir).read()).alerts.filter((a) => a.kind === kind);

/** The controller's PID as its control socket says, or undefined while none answers. */
async function controllerPid(dataDir: string): Promise<number | undefined> {
  try {
    return ((await requestControl(dataDir, 'hello', {}, 2000)) as { pid: number }).pid;
  } catch (error) {
    if (error instanceof ControlUnavailable) return undefined;
    throw error;
  }
}

function pm2(args: string[], env: Record<string, string>) {
  const result = spawnSync(process.execPath, [pm2Bin, ...args], { env, encoding: 'utf8', timeout: 60_000 });
  assert.equal(result.status, 0, `pm2 ${args.join(' ')}: ${result.stderr}${result.stdout}`);
  return result.stdout;
}

test('the controller under PM2 as the README runs it, SIGKILLed three times: back at once each time, never errored, never two, each gap reported', async () => {
  const dataDir = path.join(home.root, 'pm2-run');
  const env = { ...baseEnv, DATA_DIR: dataDir, DUPLICATE_SCAN_SECONDS: '1' };
  pm2(['start', 'ecosystem.config.js', '--only', 'tradewarden'], env);
  closers.push(() => spawnSync(process.execPath, [pm2Bin, 'delete', 'tradewarden'], { env, timeout: 30_000 }));
  let pid = await waitFor(() => controllerPid(dataDir), { timeoutMs: 30_000, intervalMs: 100, what: 'the controller under PM2 to take its socket' });
  await waitFor(async () => (await new Store(dataDir).read()).controller?.pid === pid, { timeoutMs: 30_000, what: 'its first heartbeat record' });

  for (let kill = 1; kill <= 3; kill++) {
    process.kill(pid, 'SIGKILL'); // what the OOM killer does
    const next = await waitFor(async () => {
      const answering = await controllerPid(dataDir);
      return answering !== undefined && answering !== pid ? answering : undefined;
    }, { timeoutMs: 30_000, intervalMs: 50, what: `a new controller after kill #${kill}` });
    assert.ok(!isAlive(pid), `the killed controller ${pid} is gone`);
    pid = next;
    // Each restart reports the gap it found before the next kill.
    await waitFor(async () => (await alertsOf(dataDir, 'controller_restarted')).length === kill, { timeoutMs: 30_000, what: `controller_restarted #${kill}` }).catch((e) => {
      console.log(fs.readFileSync(path.join(dataDir, 'logs', 'tradewarden.out.log'), 'utf8'), fs.readFileSync(path.join(dataDir, 'logs', 'tradewarden.err.log'), 'utf8'));
      throw e;
    });
  }
  const restarted = await alertsOf(dataDir, 'controller_restarted');
  assert.equal(restarted.length, 3, 'one report per crash');
  for (const alert of restarted) assert.match(alert.body, /^Nothing watched trading-bot from \S+ \(last heartbeat of PID \d+\) to \S+\.\nFills: not watched/);

  const [entry] = (JSON.parse(pm2(['jlist'], env)) as Array<{ name: string; pid: number; pm2_env: { status: string; restart_time: number } }>).filter((p) => p.name === 'tradewarden');
  assert.equal(entry.pm2_env.status, 'online', 'PM2 kept it, not errored');
  assert.equal(entry.pm2_env.restart_time, 3);
  assert.equal(entry.pid, pid, 'the one PM2 runs is the one holding the socket');

  const health = await cli(['health', '--json'], env);
  const report = JSON.parse(health.stdout) as { healthy: boolean; pid: number; reasons: string[] };
  assert.equal(health.status, 0, `healthy: ${report.reasons?.join('; ')}`);
  assert.equal(report.pid, pid);
});

/**
 * `tradewarden <args>` as its own process, without blocking this one: the paper broker and the
 * ping server live in this process and must keep answering the controller meanwhile.
 */
async function cli(args: string[], env: Record<string, string>): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c) => (stdout += c));
  child.stderr!.on('data', (c) => (stderr += c));
  const [status] = (await once(child, 'exit')) as [number | null];
  return { status, stdout, stderr };
}

/** The controller as its own process (npm start); its output collected. */
function controller(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const output = { text: '' };
  child.stdout!.on('data', (c) => (output.text += c));
  child.stderr!.on('data', (c) => (output.text += c));
  return { child, output };
}

async function startPingServer() {
  const requests: Array<{ method: string; url: string; body: string }> = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      requests.push({ method: req.method!, url: req.url!, body });
      res.writeHead(200).end('OK');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise((resolve) => server.close(resolve)));
  return { requests, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

test('SIGKILL, fills made while nothing watched: the restart counts them once, raises one trade-rate alert and says what it missed; pings, /metrics and health follow', async () => {
  const paper: PaperBroker = await startPaperBroker({ keyId: 'PKFAULTS0123456789AB', secretKey: 'SKfaultsSecretKey0123456789abcdefghijklm', prices: { AAPL: 200 } });
  closers.push(() => paper.close());
  const ping = await startPingServer();
  const checkPath = '/ping/5b3e2a1c-0d4f-4e6a-9b8c-7d6e5f4a3b2c';
  const dataDir = path.join(home.root, 'gap');
  const env = {
    ...baseEnv,
    DATA_DIR: dataDir,
    APCA_API_KEY_ID: 'PKFAULTS0123456789AB',
    APCA_API_SECRET_KEY: 'SKfaultsSecretKey0123456789abcdefghijklm',
    APCA_API_BASE_URL: paper.url,
    MAX_TRADES_PER_HOUR: '3',
    // Not 1 s: on a loaded machine a poll can outlast a second, and 3 missed ones read as stale.
    TRADE_POLL_SECONDS: '3',
    DUPLICATE_SCAN_SECONDS: '3',
    HEALTHCHECK_URL: ping.url + checkPath,
    HEALTHCHECK_SECONDS: '1',
    METRICS_ADDR: '127.0.0.1:0',
  };
  const buy = () => paper.placeOrder({ symbol: 'AAPL', side: 'buy', qty: 1, type: 'market', time_in_force: 'day' });
  buy();

  const first = controller(env);
  await waitFor(() => first.output.text.includes('controller watching'), { timeoutMs: 60_000, what: 'the controller to start' });
  await waitFor(() => ping.requests.some((r) => r.method === 'GET' && r.url === checkPath), { timeoutMs: 10_000, what: 'a healthy ping' });
  const metricsUrl = /metrics: (http:\/\/\S+)\/metrics/.exec(first.output.text)![1];
  const metric = async (url: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(await (await fetch(`${url}/metrics`)).text())?.[1]);
  await waitFor(async () => (await metric(metricsUrl, 'tradewarden_trades_last_hour')) === 1, { timeoutMs: 20_000, what: 'the first poll to count the fill' });
  assert.equal((await fetch(`${metricsUrl}/healthz`)).status, 200);

  first.child.kill('SIGKILL');
  await once(first.child, 'exit');
  for (let i = 0; i < 4; i++) buy(); // 5 in the hour: over the limit of 3, while nobody watched

  const second = controller(env);
  await waitFor(() => second.output.text.includes('controller watching'), { timeoutMs: 60_000, what: 'the restarted controller' });
  const [restarted] = await alertsOf(dataDir, 'controller_restarted');
  assert.ok(restarted, 'controller_restarted raised');
  assert.equal(restarted.severity, 'critical', 'over the limit while down');
  assert.match(restarted.body, /Fills in the gap: 4 \(buy 1 AAPL, buy 1 AAPL, buy 1 AAPL, buy 1 AAPL\); 5 in the last hour \(limit 3\) — OVER THE LIMIT\./);
  assert.match(restarted.body, /Duplicates: none\.\nTrader: not found, wanted not set\./);
  assert.equal(restarted.facts.fillsInGap, 4);
  assert.match(second.output.text, /ALERT \[CRITICAL\] Controller restarted after a crash: Nothing watched trading-bot from/);

  // Polls keep running: still one trade-rate alert, five trades, each once.
  const metricsUrl2 = await waitFor(() => /metrics: (http:\/\/\S+)\/metrics/.exec(second.output.text)?.[1], { what: 'the new metrics address' });
  await waitFor(async () => (await metric(metricsUrl2, 'tradewarden_fill_poll_age_seconds')) < 9, { timeoutMs: 10_000, what: 'fresh polls' });
  const data = await new Store(dataDir).read();
  assert.equal(data.trades.seen.length, 5, 'every fill counted once');
  assert.equal((await alertsOf(dataDir, 'trade_rate_exceeded')).length, 1, 'one trade-rate alert for the episode');
  assert.equal(await metric(metricsUrl2, 'tradewarden_trades_last_hour'), 5);
  assert.equal(await metric(metricsUrl2, 'tradewarden_trade_limit'), 3);

  const healthy = await cli(['health'], env);
  assert.equal(healthy.status, 0, `health passes: ${healthy.stdout}${healthy.stderr}`);
  assert.match(healthy.stdout, new RegExp(`^healthy: controller PID ${second.child.pid} serves ${dataDir}`));

  // A clean stop leaves the mark: nothing to report next time.
  second.child.kill('SIGINT');
  assert.equal((await once(second.child, 'exit'))[0], 0);
  assert.ok((await new Store(dataDir).read()).controller?.cleanExitAt, 'clean exit recorded');
  const down = await cli(['health'], env);
  assert.equal(down.status, 1, 'no controller: health fails');
  assert.match(down.stdout, /UNHEALTHY:\n {2}- no tradewarden controller serves .*: nothing is watching the trader/);
  for (const text of [first.output.text, second.output.text]) assert.ok(!text.includes('5b3e2a1c'), 'the check URL never reaches the log');
});

test('SIGKILL mid-delivery: Discord got the alert, the controller died before hearing back; the restart delivers it again and it shows once', async () => {
  const applicationId = '1100000000000000009';
  const guildId = '1200000000000000009';
  const alertChannelId = '1300000000000000009';
  const discord = await startDiscordStandIn({
    applicationId,
    guilds: [{ id: guildId, name: 'Desk', channels: [{ id: alertChannelId, name: 'alerts' }], roles: [] }],
    heartbeatIntervalMs: 500,
    waitTimeoutMs: 15_000,
  });
  closers.push(() => discord.close());
  const dataDir = path.join(home.root, 'mid-delivery');
  const env = {
    ...baseEnv,
    DATA_DIR: dataDir,
    DUPLICATE_SCAN_SECONDS: '5',
    DISCORD_TOKEN: discord.token,
    DISCORD_API_URL: discord.apiUrl,
    DISCORD_CLIENT_ID: applicationId,
    DISCORD_GUILD_ID: guildId,
    DISCORD_ALERT_CHANNEL_ID: alertChannelId,
  };
  const first = controller(env);
  await waitFor(() => first.output.text.includes('controller watching'), { timeoutMs: 60_000, what: 'the controller with Discord' });

  // Discord will take the next alert post and never answer it.
  const arrived = discordPost(discord, alertChannelId);
  // Raised by another process (as the CLI does): the controller delivers it on its next round.
  const raised = await new AlertOutbox({ store: new Store(dataDir), clock: { now: () => Date.now() }, logger: silentLogger, addressTo: ['log', 'discord'] }).raise({
    kind: 'duplicate_instance',
    severity: 'critical',
    title: 'Mid-delivery alert',
    body: 'posted while the controller died',
  });
  assert.ok(raised, 'saved in the outbox');
  await arrived;
  first.child.kill('SIGKILL'); // Discord has the message; the controller never learns it
  await once(first.child, 'exit');
  const stored = (await new Store(dataDir).read()).alerts.find((a) => a.id === raised.id)!;
  assert.equal(stored.deliveries.discord.deliveredAt, undefined, 'not recorded as delivered');

  const second = controller(env);
  await waitFor(async () => (await new Store(dataDir).read()).alerts.find((a) => a.id === raised.id)?.deliveries.discord.deliveredAt, {
    timeoutMs: 30_000,
    what: 'the restarted controller to deliver it',
  });
  const posts = discord.requests.filter((r) => r.method === 'POST' && r.path === `/channels/${alertChannelId}/messages` && JSON.stringify(r.body).includes('Mid-delivery alert'));
  assert.equal(posts.length, 2, 'sent twice: before the crash and after');
  const shown = discord.channelMessages(alertChannelId).filter((m) => JSON.stringify(m.embeds).includes('Mid-delivery alert'));
  assert.equal(shown.length, 1, 'but in the channel once (the same nonce)');
  await waitFor(() => second.output.text.includes('controller watching'), { timeoutMs: 30_000, what: 'the restart to finish starting' });
  second.child.kill('SIGINT');
  assert.equal((await once(second.child, 'exit'))[0], 0);
});

function discordPost(discord: DiscordStandIn, channelId: string) {
  return discord.withholdAnswerTo('POST', new RegExp(`^/channels/${channelId}/messages$`));
}

test('broker 429 storm with Retry-After, malformed JSON, time-outs: each waited out or reported once, health says why, no fill missed or doubled', async () => {
  const clock = new ManualClock(Date.parse('2026-03-02T14:00:00Z'));
  const paper = await startPaperBroker({ clock, keyId: 'PKSTORM', secretKey: 'SKSTORM', prices: { AAPL: 200 } });
  closers.push(() => paper.close());
  // Between the client and the broker: passes everything through, or answers garbage when told.
  let garbage = false;
  const proxy = http.createServer((req, res) => {
    if (garbage) return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"truncated": [');
    const upstream = http.request(paper.url + req.url, { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise((resolve) => proxy.close(resolve)));

  const store = new Store(fs.mkdtempSync(path.join(home.root, 'storm-')));
  const delivered: StoredAlert[] = [];
  const outbox = new AlertOutbox({ store, clock, logger: silentLogger, sinks: [{ name: 'log', deliver: async (a) => void delivered.push(a) }] });
  const sleeps: number[] = [];
  const broker = new AlpacaBroker({
    baseUrl: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    keyId: 'PKSTORM',
    secretKey: 'SKSTORM',
    timeoutMs: 300,
    sleep: async (ms) => void sleeps.push(ms),
  });
  const watch = new TradeWatch({ store, broker, outbox, clock, processName: 'trading-bot', maxTradesPerHour: 100 });
  const health = new HealthChecks(clock);
  const poll = health.tracked({ name: 'trade-poll', everySeconds: 10, run: () => watch.poll() }, 'fills from the broker');
  let placed = 0;
  const buy = () => {
    clock.advance(10_000);
    placed += 1;
    paper.placeOrder({ symbol: 'AAPL', side: 'buy', qty: 1, type: 'market', time_in_force: 'day' });
  };
  const kinds = () => delivered.map((a) => a.kind);

  // A storm the retries ride out: every Retry-After honoured.
  buy();
  paper.failNext(429, 3, { path: /activities/, retryAfter: 2 });
  await poll.run();
  assert.deepEqual(sleeps, [2000, 2000, 2000], 'Retry-After waited out each time');
  assert.equal((await health.report()).healthy, true, 'the storm was absorbed');

  // A storm longer than the retries: one broker_unreachable, health failing with the reason.
  buy();
  paper.failNext(429, 12, { path: /activities/, retryAfter: 1 });
  for (let i = 0; i < 3; i++) {
    buy();
    await assert.rejects(poll.run(), /429/);
  }
  assert.deepEqual(kinds(), ['broker_unreachable'], 'once, not once per poll');
  assert.match((await health.report()).reasons.join(), /fills from the broker failing: .*429/);
  await poll.run();
  assert.deepEqual(kinds(), ['broker_unreachable', 'recovered']);

  // Malformed JSON, then time-outs.
  buy();
  garbage = true;
  await assert.rejects(poll.run(), /not JSON|malformed/);
  assert.match((await health.report()).reasons.join(), /fills from the broker failing: broker GET \/v2\/account\/activities\/FILL/);
  garbage = false;
  paper.setDelay(1000);
  buy();
  await assert.rejects(poll.run(), /timed out after 300 ms/);
  paper.setDelay(0);
  buy();
  await poll.run();
  assert.deepEqual(kinds(), ['broker_unreachable', 'recovered', 'broker_unreachable', 'recovered'], 'one alert and one recovery per outage');
  assert.equal((await health.report()).healthy, true, 'healthy again');
  assert.equal((await store.read()).trades.seen.length, placed, `every one of the ${placed} fills counted once`);
});

test('Discord REST down for minutes (driven clock): alerts wait, health and the dead-man\'s switch say so after a minute, each alert delivered once when it is back — across a restart', async () => {
  const clock = new ManualClock();
  const store = new Store(fs.mkdtempSync(path.join(home.root, 'discord-down-')));
  let down = true;
  const posted: string[] = [];
  const discordSink = { name: 'discord', deliver: async (alert: StoredAlert) => {
    if (down) throw new Error('Discord 503: Service Unavailable');
    posted.push(alert.id);
  } };
  const outboxFor = () => new AlertOutbox({ store, clock, logger: silentLogger, sinks: [discordSink] });
  let outbox = outboxFor();
  const health = new HealthChecks(clock);
  health.condition('alerts', alertsUndeliverableCondition(store, clock));
  const ping = await startPingServer();
  const deadman = new DeadMansSwitch({ url: `${ping.url}/ping/abc123def456`, everySeconds: 60, report: () => health.report(), logger: silentLogger, secrets: [] });

  for (const title of ['one', 'two', 'three']) await outbox.raise({ kind: 'process_down', severity: 'critical', title, body: title });
  await deadman.tick();
  assert.equal(ping.requests.at(-1)!.method, 'GET', 'a fresh failure is not yet an outage');
  for (let minute = 1; minute <= 5; minute++) {
    clock.advance(60_000);
    await outbox.deliverDue();
    if (minute === 3) outbox = outboxFor(); // the controller restarts meanwhile
  }
  const report = await health.report();
  assert.deepEqual(report.reasons, ['3 alert(s) not delivered to discord for 5m 0s (last error: Discord 503: Service Unavailable)']);
  await deadman.tick();
  assert.deepEqual(ping.requests.at(-1), { method: 'POST', url: '/ping/abc123def456/fail', body: report.reasons[0] });

  down = false;
  clock.advance(5 * 60_000); // past the longest back-off
  await outbox.deliverDue();
  await outbox.deliverDue();
  assert.equal(posted.length, 3, 'each alert posted');
  assert.equal(new Set(posted).size, 3, 'once');
  assert.equal((await health.report()).healthy, true, 'nothing stuck any more');
  await deadman.tick();
  assert.equal(ping.requests.at(-1)!.method, 'GET', 'the switch is green again');
});

test('100 unauthorized attempts at every change: all refused, all audited, nothing changed', async () => {
  const dataDir = fs.mkdtempSync(path.join(home.root, 'unauth-'));
  const trader = path.join(home.root, 'unauth-bot', 'bot.js');
  fs.mkdirSync(path.dirname(trader), { recursive: true });
  fs.writeFileSync(trader, 'setInterval(() => {}, 1000);\n');
  const env = { PM2_HOME: home.pm2Home, DATA_DIR: dataDir, TRADING_SCRIPT: trader, TRADING_PROCESS_NAME: 'unauth-bot', HOME: home.root, ON_RUNAWAY: 'stop' };
  const app = buildApp(parseConfig(env), { logger: silentLogger, deliversAlerts: false, env: { ...process.env, ...env } });
  closers.push(() => app.close());
  await app.store.update((data) => void (data.breaker = { tripped: true, reason: 'test', at: new Date().toISOString(), by: 'controller' }));
  const intruder = { id: 'discord:1500000000000000666', name: 'intruder', isOperator: false };
  const attempts: Array<() => Promise<unknown>> = [
    () => app.core.start(intruder),
    () => app.core.stop(intruder),
    () => app.core.restart(intruder),
    () => app.core.resume(intruder),
    () => app.core.flatten(intruder),
    () => app.core.stopDuplicates(intruder, [process.pid]),
  ];
  const before = await app.store.read();
  for (let i = 0; i < 100; i++) {
    await assert.rejects(attempts[i % attempts.length](), (e: unknown) => e instanceof OperationError && e.kind === 'refused' && /needs an operator; intruder is not one/.test(e.message));
  }
  const after = await app.store.read();
  const audited = after.audit.filter((e) => e.who === intruder.id);
  assert.equal(audited.length, 100, 'every attempt audited');
  assert.ok(audited.every((e) => e.outcome === 'refused'), 'every one refused');
  assert.deepEqual(new Set(audited.map((e) => e.what)), new Set(['start', 'stop', 'restart', 'resume', 'flatten', 'stop-duplicates']));
  assert.deepEqual(after.breaker, before.breaker, 'the breaker still holds');
  assert.deepEqual(after.desired, before.desired, 'nothing wanted changed');
  assert.equal((await app.supervisor.status()).state, 'not_found', 'no trader was started');
  assert.ok(isAlive(process.pid), 'and nothing was killed');
});
