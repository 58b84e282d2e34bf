// The breaker reaches the broker (BROKER_LOCK): the account's own switch (Alpaca's suspend_trade)
// stops copies no scan can see. Real PM2 (one daemon for the file, ended by its PID), a real trader,
// a real copy "on another host" (the demo trader from another folder, trading straight at the paper
// broker with the same keys: not the trader's script, so no duplicate scan finds it), the real CLI,
// and the paper broker over HTTP with its trade stream.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import type { App } from '../src/app.ts';
import { cli as runCli, streamingApp } from './helpers/stream-app.ts';
import type { Actor } from '../src/core/operations.ts';
import { startPaperBroker, type PaperBroker } from '../testkit/paper-broker.ts';
import { copyTrader, isAlive, killPid, makeTempHome, waitFor, type TempHome } from '../testkit/pm2-home.ts';

const operator: Actor = { id: 'cli:test', name: 'test', isOperator: true };
const KEY = 'PKLOCKTEST';
const SECRET = 'SKLOCKTESTSECRET';
const CONFIGURATIONS = '/v2/account/configurations';

let home: TempHome;
let trader: string;
let farCopy: string;
let paper: PaperBroker;
const apps: App[] = [];
const brokers: PaperBroker[] = [];
const children: ChildProcess[] = [];

before(() => {
  home = makeTempHome('tw-lock-');
  trader = copyTrader(path.resolve('examples/heartbeat-trader.js'), path.join(home.root, 'bot'));
  farCopy = copyTrader(path.resolve('examples/demo-trader.js'), path.join(home.root, 'other-host'));
});

after(async () => {
  for (const child of children) if (child.pid && isAlive(child.pid)) await killPid(child.pid, 'SIGKILL');
  for (const app of apps) await app.close();
  await home?.cleanup();
  for (const broker of brokers) await broker.close();
});

async function brokerFor(name: string): Promise<Record<string, string>> {
  paper = await startPaperBroker({ keyId: KEY, secretKey: SECRET, cash: 1_000_000, prices: { 'BTC/USD': 50_000, AAPL: 200 } });
  brokers.push(paper);
  const dataDir = path.join(home.root, name);
  fs.mkdirSync(dataDir, { recursive: true });
  return {
    APCA_API_BASE_URL: paper.url,
    APCA_API_KEY_ID: KEY,
    APCA_API_SECRET_KEY: SECRET,
    PM2_HOME: home.pm2Home,
    DATA_DIR: dataDir,
    TRADING_SCRIPT: trader,
    TRADING_KILL_TIMEOUT_MS: '1500',
    MAX_TRADES_PER_HOUR: '3',
    TRADE_POLL_SECONDS: '60',
    FOREIGN_TRADING: 'off',
    HOME: home.root,
  };
}

async function controllerApp(env: Record<string, string>) {
  const made = await streamingApp(paper, env);
  apps.push(made.app);
  return made;
}

/** The same bot on "another host": trading straight at the broker, with the same keys, every 0.3 s. */
function startFarCopy(env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, [farCopy, '--every', '0.3'], {
    cwd: path.dirname(farCopy),
    env: { PATH: process.env.PATH!, APCA_API_BASE_URL: env.APCA_API_BASE_URL!, APCA_API_KEY_ID: KEY, APCA_API_SECRET_KEY: SECRET, DEMO_ORDER_NOTIONAL: '5' },
    stdio: 'ignore',
  });
  children.push(child);
  return child;
}

const ordersRefused = () => paper.requestLog.filter((r) => r.method === 'POST' && r.path === '/v2/orders' && r.status === 403).length;

const cli = (args: string[], env: Record<string, string>) => runCli(args, env, home.root);

test('BROKER_LOCK=on: the trip locks the account, a copy on another host gets no order in; flatten under the lock ends flat and leaves it on; resume lifts it', async () => {
  const env = await brokerFor('runaway');
  const { app, alerts } = await controllerApp({ ...env, ON_RUNAWAY: 'stop', BROKER_LOCK: 'on' });
  const managed = await app.core.start(operator);
  const far = startFarCopy(env);
  const trip = await waitFor(() => alerts.find((a) => a.kind === 'breaker_tripped'), { timeoutMs: 20_000, intervalMs: 20, what: 'the breaker' });
  assert.match(trip.body, /Account LOCKED at the broker \(suspend_trade\)/);
  assert.equal(trip.facts.brokerLocked, true);
  assert.equal(await app.broker!.tradingSuspended(), true, 'the broker says trading is suspended');
  assert.ok(!isAlive(managed.pid), 'the trader here is halted');
  assert.ok(far.pid && isAlive(far.pid), 'the copy on the other host is out of reach: it still runs');

  // The far copy keeps trying; the broker refuses every order. Nothing fills after the lock.
  const filledAtLock = paper.snapshot().activities.length;
  const refusedAtLock = ordersRefused();
  await waitFor(() => ordersRefused() >= refusedAtLock + 3, { timeoutMs: 10_000, what: 'the far copy refused at the broker, again and again' });
  assert.equal(paper.snapshot().activities.length, filledAtLock, 'no order of the far copy filled after the lock');
  const status = await app.core.status();
  assert.equal(status.brokerLock?.locked, true);
  assert.equal(status.brokerLock?.ours, true);
  assert.equal(status.brokerLock?.by, 'controller');

  // Flatten under the lock: lifted for the closes only, set back after.
  await killPid(far.pid!, 'SIGKILL');
  paper.seedPosition('AAPL', 10, 200);
  const report = await app.core.flatten(operator);
  assert.equal(report.flat, true, JSON.stringify(report));
  assert.equal(report.brokerLock?.relocked, true, 'the lock is set back after the closes');
  assert.ok((report.brokerLock?.openMs ?? -1) >= 0, 'the report says how long the account was open');
  assert.equal(await app.broker!.tradingSuspended(), true, 'locked again after the flatten');

  const resumed = await app.core.resume(operator);
  assert.ok(resumed.brokerLock && 'lifted' in resumed.brokerLock, 'resume lifts the lock tradewarden set');
  assert.equal(await app.broker!.tradingSuspended(), false, 'the broker accepts orders again');
  assert.equal((await app.core.status()).brokerLock?.locked, false);
  await app.core.stop(operator);
  await app.tradeStream!.stop();
});

test('a broker 500 on the lock is retried until it holds: the trip says NOT locked, a later alert says locked', async () => {
  const env = await brokerFor('retry');
  const { app, alerts } = await controllerApp({ ...env, ON_RUNAWAY: 'stop', BROKER_LOCK: 'on' });
  // More 500s than the adapter's own retries (4 attempts): the first lock fails, a later one holds.
  paper.failNext(500, 5, { method: 'PATCH', path: CONFIGURATIONS });
  for (let i = 0; i < 4; i++) paper.placeOrder({ symbol: 'BTC/USD', side: 'buy', type: 'market', time_in_force: 'gtc', qty: 0.001 });
  const trip = await waitFor(() => alerts.find((a) => a.kind === 'breaker_tripped'), { timeoutMs: 20_000, intervalMs: 20, what: 'the breaker' });
  assert.match(trip.body, /NOT LOCKED at the broker .*500.*retrying until it holds/);
  assert.equal(trip.facts.brokerLocked, false);
  assert.ok((await app.core.status()).brokerLock?.failing, 'status shows the lock wanted and not holding');
  const locked = await waitFor(() => alerts.find((a) => a.kind === 'broker_locked'), { timeoutMs: 20_000, intervalMs: 20, what: 'the lock holding at last' });
  assert.match(locked.body, /suspended at the broker \(after \d+ attempts\)/);
  assert.equal(await app.broker!.tradingSuspended(), true);
  const status = await app.core.status();
  assert.deepEqual([status.brokerLock?.locked, status.brokerLock?.failing], [true, undefined]);
  await app.tradeStream!.stop();
});

test('a suspension set outside tradewarden: shown in status, left on by resume, lifted by unlock', async () => {
  const env = await brokerFor('outside');
  const { app } = await controllerApp({ ...env, BROKER_LOCK: 'on' });
  paper.setTradingSuspended(true); // by hand, in the broker's dashboard
  await app.accountWatch!.refresh();
  const status = await app.core.status();
  assert.deepEqual([status.brokerLock?.locked, status.brokerLock?.ours, status.brokerLock?.by], [true, false, 'outside tradewarden']);
  const resumed = await app.core.resume(operator);
  assert.ok(resumed.brokerLock && 'leftAlone' in resumed.brokerLock, 'resume says it left the lock alone');
  assert.equal(await app.broker!.tradingSuspended(), true, 'resume did not lift a lock it did not set');
  await app.core.stop(operator);
  await app.core.unlock(operator);
  assert.equal(await app.broker!.tradingSuspended(), false, 'unlock lifts it');
  const [audit] = await app.core.audit(1);
  assert.deepEqual([audit?.what, audit?.who, audit?.outcome], ['unlock', operator.id, 'ok']);
  await app.tradeStream!.stop();
});

test('tradewarden lock and unlock in a terminal: the broker is locked and unlocked, status shows it, audited', async () => {
  const env = await brokerFor('terminal');
  const locked = await cli(['lock'], env);
  assert.equal(locked.code, 0, locked.stderr);
  assert.match(locked.stdout, /Account LOCKED at the broker/);
  assert.equal(paper.requestLog.filter((r) => r.method === 'PATCH' && r.path === CONFIGURATIONS && r.status === 200).length, 1);
  const status = await cli(['status', '--json'], env);
  const report = JSON.parse(status.stdout) as { brokerLock?: { locked: boolean; ours: boolean; by: string } };
  assert.deepEqual([report.brokerLock?.locked, report.brokerLock?.ours, report.brokerLock?.by?.startsWith('cli:')], [true, true, true]);
  assert.throws(() => paper.placeOrder({ symbol: 'AAPL', side: 'buy', type: 'market', time_in_force: 'day', qty: 1 }), /suspend/, 'the broker refuses new orders');
  const unlocked = await cli(['unlock'], env);
  assert.equal(unlocked.code, 0, unlocked.stderr);
  assert.match(unlocked.stdout, /Account unlocked at the broker/);
  paper.placeOrder({ symbol: 'AAPL', side: 'buy', type: 'market', time_in_force: 'day', qty: 1 });
  const audit = await cli(['audit', '--json'], env);
  const whats = (JSON.parse(audit.stdout) as Array<{ what: string; outcome: string }>).map((e) => `${e.what}:${e.outcome}`);
  assert.ok(whats.includes('lock:ok') && whats.includes('unlock:ok'), `audited (${whats.join(', ')})`);
});

test('an account read asked before the last change, or at its very instant, does not undo it; a later one does', async () => {
  const env = await brokerFor('stale-read');
  const { app } = await controllerApp({ ...env, BROKER_LOCK: 'on' });
  await app.core.lock(operator);
  const { checkedAt } = (await app.brokerLock!.state())!;
  assert.ok(checkedAt !== undefined, 'the lock records when the broker confirmed it');
  // Reads that showed the account before the lock (unsuspended) come back late.
  await app.brokerLock!.observe(false, checkedAt! - 1);
  await app.brokerLock!.observe(false, checkedAt!);
  assert.equal((await app.brokerLock!.state())?.locked, true, 'a read as old as the change does not undo it');
  // A read asked after it says what the broker says now: lifted elsewhere.
  await app.brokerLock!.observe(false, checkedAt! + 1);
  assert.deepEqual([(await app.brokerLock!.state())?.locked, (await app.brokerLock!.state())?.by], [false, 'outside tradewarden']);
  await app.tradeStream!.stop();
});
