// The safety core with real parts: a real PM2 daemon (temp home), real traders placing orders at
// the real paper broker over HTTP, and the app wired exactly as the controller wires it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { parseConfig } from '../src/config.ts';
import { buildApp, type App } from '../src/app.ts';
import { silentLogger } from '../src/log.ts';
import type { Actor } from '../src/core/operations.ts';
import type { AlertSink } from '../src/alerts/outbox.ts';
import type { StoredAlert } from '../src/store/schema.ts';
import { OperationError } from '../src/errors.ts';
import { startPaperBroker, type PaperBroker } from '../testkit/paper-broker.ts';
import { copyTrader, isAlive, killPid, makeTempHome, waitFor, type TempHome } from '../testkit/pm2-home.ts';

const operator: Actor = { id: 'cli:test', name: 'test', isOperator: true };
let home: TempHome;
let paper: PaperBroker;
let app: App;
let trader: string;
const alerts: StoredAlert[] = [];
const rogues: ChildProcess[] = [];

before(async () => {
  home = makeTempHome('tw-wp-');
  paper = await startPaperBroker({ keyId: 'PKWATCH', secretKey: 'SKWATCH', prices: { 'BTC/USD': 50_000 } });
  trader = copyTrader(path.resolve('examples/demo-trader.js'), path.join(home.root, 'bot'));
  const env = {
    APCA_API_BASE_URL: paper.url,
    APCA_API_KEY_ID: 'PKWATCH',
    APCA_API_SECRET_KEY: 'SKWATCH',
    PM2_HOME: home.pm2Home,
    DATA_DIR: home.dataDir,
    TRADING_SCRIPT: trader,
    TRADING_KILL_TIMEOUT_MS: '1500',
    MAX_TRADES_PER_HOUR: '3',
    ON_RUNAWAY: 'stop',
    DEMO_ORDER_EVERY_SECONDS: '0.3', // a runaway: an order every 300 ms
    DEMO_ORDER_NOTIONAL: '5',
  };
  // PM2 hands the starting client's environment to the trader: its broker comes from here.
  Object.assign(process.env, env);
  const recorder: AlertSink = { name: 'test', deliver: async (a) => void alerts.push(a) };
  app = buildApp(parseConfig({ ...env, HOME: home.root }), { logger: silentLogger, deliversAlerts: true, sinks: [recorder], env: { ...process.env } });
});

after(async () => {
  for (const rogue of rogues) if (rogue.pid) await killPid(rogue.pid, 'SIGKILL');
  await app?.close();
  await home?.cleanup();
  await paper?.close();
});

const kinds = () => alerts.map((a) => a.kind);

/**
 * Every start of the demo trader places an order at once, and a stop's report polls the fills: the
 * trades earlier tests made (one per start) must not trip the breaker in a test about something
 * else. A fresh allowance, as a resume gives one: only trades from now on count against the limit.
 */
async function freshAllowance(): Promise<void> {
  await app.store.update((data) => {
    if (!data.breaker.tripped) data.breaker = { tripped: false, resumedAt: Date.now() };
  });
}

test('ON_RUNAWAY=stop halts a real trader that keeps trading; start is refused until resume', async () => {
  const started = await app.core.start(operator);
  assert.ok(isAlive(started.pid), 'isAlive(started.pid)');
  // Poll as the controller's job does, until the breach is seen (the trader trades every 300 ms).
  await waitFor(async () => (await app.tradeWatch!.poll()).event === 'exceeded', { timeoutMs: 15_000, intervalMs: 200, what: 'the trade-rate breach' });
  assert.ok(!isAlive(started.pid), 'the trading process is gone from the OS');
  const status = await app.core.status();
  assert.equal(status.process.state, 'stopped');
  assert.equal(status.breaker.tripped, true);
  assert.match(status.breaker.reason!, /trades in the last hour \(limit 3\)/);
  assert.deepEqual(kinds().filter((k) => k !== 'recovered'), ['trade_rate_exceeded', 'breaker_tripped']);
  // The halt reports the session it ended (the "before stopping" checklist): prices never moved.
  const halt = alerts.find((a) => a.kind === 'breaker_tripped')!;
  const session = /\nSession: (\d+) trade\(s\), P\/L \+\$0\.00, positions left open: (.+?)( \(positions_unattended in 15 min if no trader runs\))?\.$/.exec(halt.body);
  assert.ok(session, `the breaker's alert carries the session report: ${halt.body}`);
  // The demo trader alternates buy and sell: whether a BTCUSD position is left depends on how many
  // orders got in before the halt ended it (the halt scans for every copy first), so the report
  // must say exactly what the broker holds after the halt.
  const held = paper.snapshot().positions.map((p) => `${String(p.symbol)} ${Number(p.qty)}`);
  assert.equal(session[2], held.length ? held.join(', ') : 'none', 'the positions left open are the broker\'s');
  assert.equal(Boolean(session[3]), held.length > 0, 'positions left open say when positions_unattended will come; none, nothing');
  assert.ok(Number(session[1]) >= 4, `the session's trades include the breach (${session[1]})`);
  assert.equal((halt.facts.session as { trades: number }).trades, Number(session[1]), 'the report is in the facts too');

  // PM2's auto-restart must not bring it back, and neither may an operator's start.
  const fills = paper.snapshot().activities.length;
  await assert.rejects(app.core.start(operator), (e) => e instanceof OperationError && e.kind === 'refused' && /breaker is tripped/.test(e.message));
  assert.equal((await app.core.status()).process.state, 'stopped');
  assert.equal(paper.snapshot().activities.length, fills, 'no trade after the halt');

  const resumed = await app.core.resume(operator);
  assert.equal(resumed.breakerWas.tripped, true);
  assert.ok(isAlive(resumed.pid), 'isAlive(resumed.pid)');
  assert.equal((await app.core.status()).breaker.tripped, false);

  // Still a runaway after the resume: trips again once it exceeds the limit *since the resume*,
  // although the hour was over the limit all along.
  await waitFor(async () => (await app.tradeWatch!.poll(), (await app.store.read()).breaker.tripped), {
    timeoutMs: 15_000,
    intervalMs: 200,
    what: 'the breaker to trip again',
  });
  assert.ok(!isAlive(resumed.pid), '!isAlive(resumed.pid)');
  assert.match((await app.store.read()).breaker.reason!, /since the last resume \(limit 3\)/);
  assert.equal(alerts.filter((a) => a.kind === 'breaker_tripped').length, 2);

  process.env.DEMO_ORDER_EVERY_SECONDS = '3600'; // fixed: a calm trader from now on
  const calm = await app.core.resume(operator);
  await app.tradeWatch!.poll();
  assert.equal((await app.store.read()).breaker.tripped, false, 'a calm trader is left running');
  assert.ok(isAlive(calm.pid), 'isAlive(calm.pid)');
  await app.core.stop(operator);
  const audit = (await app.store.read()).audit.map((e) => `${e.who} ${e.what} ${e.outcome}`);
  assert.ok(audit.includes('controller stop ok'), 'the automatic halt is audited');
  assert.ok(audit.includes('cli:test start refused'), 'audit.includes(\'cli:test start refused\')');
  assert.ok(audit.includes('cli:test resume ok'), 'audit.includes(\'cli:test resume ok\')');
});

test('a rogue copy outside PM2 → one duplicate alert naming its PID, once per distinct set', async () => {
  alerts.length = 0;
  // As `nohup node demo-trader.js &` from the bot's folder, with a relative path.
  const rogue = spawn(process.execPath, [path.basename(trader), '--every', '3600'], { cwd: path.dirname(trader), detached: true, stdio: 'ignore' });
  rogues.push(rogue);
  await waitFor(async () => (await app.processWatch.scan()).duplicates.some((d) => d.pid === rogue.pid), { what: 'the rogue in a scan' });
  await app.processWatch.scan();
  await app.processWatch.scan();
  const duplicateAlerts = alerts.filter((a) => a.kind === 'duplicate_instance');
  assert.equal(duplicateAlerts.length, 1);
  assert.deepEqual(duplicateAlerts[0].facts.pids, [rogue.pid]);
  assert.match(duplicateAlerts[0].body, new RegExp(`PID ${rogue.pid} \\(outside PM2\\): .*demo-trader\\.js`));
  assert.ok(isAlive(rogue.pid!), 'nothing is killed unless an operator asks');
  const result = await app.core.stopDuplicates(operator, [rogue.pid!]);
  assert.deepEqual(result.stopped.map((s) => s.pid), [rogue.pid]);
});

test('the trader stopped behind our back → process_down once, and a notice when it is back', async () => {
  await freshAllowance();
  alerts.length = 0;
  const { pid } = await app.core.start(operator);
  await app.processWatch.scan();
  // Someone runs `pm2 stop` with the PM2 CLI on the same home: wanted running, but stopped.
  await pm2Cli(['stop', 'trading-bot']);
  assert.ok(!isAlive(pid), '!isAlive(pid)');
  await app.processWatch.scan();
  await app.processWatch.scan();
  assert.deepEqual(kinds(), ['process_down']);
  assert.match(alerts[0].body, /should be running but is stopped/);
  await pm2Cli(['restart', 'trading-bot']);
  await waitFor(async () => (await app.core.status()).process.state === 'online', { what: 'the trader back online' });
  await app.processWatch.scan();
  assert.deepEqual(kinds(), ['process_down', 'recovered']);
  await app.core.stop(operator);
});

function pm2Cli(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.resolve('node_modules/pm2/bin/pm2'), ...args], { env: { ...process.env, PM2_HOME: home.pm2Home }, stdio: 'ignore' });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`pm2 ${args.join(' ')} exited ${code}`))));
  });
}

test('resume refused (the trader still runs: the halt failed) → the breaker still holds', async () => {
  await freshAllowance();
  const { pid } = await app.core.start(operator);
  await app.store.update((data) => {
    data.breaker = { tripped: true, reason: 'test: a halt that failed', at: new Date().toISOString(), by: 'controller' };
  });
  await assert.rejects(app.core.resume(operator), (e) => e instanceof OperationError && e.kind === 'refused' && /already running/.test(e.message));
  const breaker = (await app.store.read()).breaker;
  assert.equal(breaker.tripped, true);
  assert.equal(breaker.reason, 'test: a halt that failed');
  assert.ok(isAlive(pid), 'the running trader is untouched');
  await app.core.stop(operator);
  await app.store.update((data) => {
    data.breaker = { tripped: false };
  });
});
