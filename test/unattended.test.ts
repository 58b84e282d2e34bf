// Positions nobody manages (issue 19, part 3): with a real PM2 daemon (temp home), a real trader and
// the paper broker, positions left at the broker after a stop raise positions_unattended once after
// UNATTENDED_SECONDS, then hourly, never before; a copy running again or the account flat ends it.
// Time is a ManualClock: the watch is fed as the controller feeds it (a process scan, an account
// read), with no job scheduled, so nothing here sleeps for the clock. Its Flatten button on Discord:
// test/discord-unattended.test.ts (one PM2_HOME per process).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ManualClock } from '../src/clock.ts';
import { ConfigError, parseConfig } from '../src/config.ts';
import { buildApp, type App } from '../src/app.ts';
import { silentLogger } from '../src/log.ts';
import { sessionSummary, type Actor } from '../src/core/operations.ts';
import { TEXT } from '../src/render/text.ts';
import type { StoredAlert } from '../src/store/schema.ts';
import { startPaperBroker, type PaperBroker } from '../testkit/paper-broker.ts';
import { copyTrader, makeTempHome, type TempHome } from '../testkit/pm2-home.ts';

const operatorActor: Actor = { id: 'cli:test', name: 'test', isOperator: true };
const KEY = 'PKUNATTENDED';
const SECRET = 'SKUNATTENDEDSECRET';
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
let home: TempHome;
const apps: App[] = [];
const brokers: PaperBroker[] = [];

before(() => {
  home = makeTempHome('tw-unatt-');
});

after(async () => {
  for (const app of apps) await app.close().catch(() => undefined);
  await home?.cleanup();
  for (const broker of brokers) await broker.close();
});

interface Setup {
  app: App;
  paper: PaperBroker;
  clock: ManualClock;
  /** another controller on the same DATA_DIR, clock and broker (a restart); the previous one is closed first */
  restart(): Promise<App>;
}

/** A fresh account and DATA_DIR, the app as the controller builds it, on a ManualClock. */
async function setup(name: string, extra: Record<string, string> = {}): Promise<Setup> {
  const clock = new ManualClock(Date.parse('2026-03-02T15:00:00Z'));
  const paper = await startPaperBroker({ keyId: KEY, secretKey: SECRET, cash: 1_000_000, prices: { AAPL: 200, MSFT: 400 }, clock });
  brokers.push(paper);
  const dataDir = path.join(home.root, name);
  fs.mkdirSync(dataDir, { recursive: true });
  // Each test its own copy of the trader: a copy another test left running is not a duplicate of this one.
  const trader = copyTrader(path.resolve('examples/heartbeat-trader.js'), path.join(home.root, `bot-${name}`));
  const env = {
    APCA_API_BASE_URL: paper.url,
    APCA_API_KEY_ID: KEY,
    APCA_API_SECRET_KEY: SECRET,
    PM2_HOME: home.pm2Home,
    DATA_DIR: dataDir,
    TRADING_SCRIPT: trader,
    TRADING_PROCESS_NAME: `unattended-${name}`,
    TRADING_KILL_TIMEOUT_MS: '1500',
    FOREIGN_TRADING: 'off',
    ...extra,
  };
  const make = () => {
    const app = buildApp(parseConfig({ ...env, HOME: home.root }), { logger: silentLogger, deliversAlerts: true, clock, env: { ...process.env, ...env } });
    apps.push(app);
    return app;
  };
  const app = make();
  let current = app;
  return {
    app,
    paper,
    clock,
    async restart() {
      await current.close();
      current = make();
      return current;
    },
  };
}

/** What the controller does on its cadences: a process scan, then an account read. */
async function look(app: App): Promise<void> {
  await app.processWatch.scan();
  await app.accountWatch!.refresh();
}

async function unattendedAlerts(app: App): Promise<StoredAlert[]> {
  return (await app.store.read()).alerts.filter((a) => a.kind === 'positions_unattended');
}

test('positions left after a stop: positions_unattended once after UNATTENDED_SECONDS, then hourly, never before; a restart neither forgets nor repeats early', async () => {
  const { app, paper, clock, restart } = await setup('stop');
  await app.core.start(operatorActor);
  paper.seedPosition('AAPL', 10, 200);
  paper.seedPosition('MSFT', -5, 400);
  // Ten more: an alert read on a phone names ten positions and counts the rest.
  for (let i = 0; i < 10; i++) paper.seedPosition(`SYM${i}`, 1, 100);
  paper.setPrice('AAPL', 210);
  await look(app);
  clock.advance(HOUR);
  await look(app);
  assert.deepEqual(await unattendedAlerts(app), [], 'not raised while the trader runs, however long the positions are held');

  const stopped = await app.core.stop(operatorActor);
  assert.equal(stopped.session?.unattendedAlertInMs, 15 * MINUTE, 'the stop report knows when the warning comes');
  assert.match(TEXT.stop(stopped, {}), /positions left open: .*AAPL 10.* — positions_unattended in 15 min if no trader runs/, 'the stop report says when the warning comes');
  assert.match(sessionSummary(stopped.session!), /positions left open: .*AAPL 10.* \(positions_unattended in 15 min if no trader runs\)\./, 'and so does the summary a breaker alert carries');

  await look(app);
  clock.advance(15 * MINUTE - 1000);
  await look(app);
  assert.deepEqual(await unattendedAlerts(app), [], 'not before UNATTENDED_SECONDS');

  clock.advance(1000);
  await look(app);
  await look(app); // a second read at the same moment is the same warning
  const [first, ...others] = await unattendedAlerts(app);
  assert.ok(first, 'raised once UNATTENDED_SECONDS have passed');
  assert.equal(others.length, 0, 'raised once');
  assert.equal(first.severity, 'warning');
  assert.equal(first.title, 'Positions held while no trader runs');
  assert.match(first.body, /^12 position\(s\) held for 15m 0s while no copy of unattended-stop runs on this host \(stopped by cli:test\)/);
  assert.match(first.body, /\nAAPL 10 · value \$2,100\.00 · P\/L \+\$100\.00\n/, 'each position with its value and unrealized P/L');
  assert.match(first.body, /\nMSFT -5 · value -\$2,000\.00 · P\/L \$0\.00\n/);
  assert.equal(first.body.match(/ · value /g)?.length, 10, 'ten positions named');
  assert.match(first.body, /…and 2 more: \/account/, 'the rest counted');
  assert.equal((first.facts.positions as unknown[]).length, 12, 'every position in the facts');

  clock.advance(HOUR - 1000);
  await look(app);
  assert.equal((await unattendedAlerts(app)).length, 1, 'no reminder before the hour');

  // A controller restart: the episode and its last warning are in the data file.
  const second = await restart();
  await look(second);
  assert.equal((await unattendedAlerts(second)).length, 1, 'a restart does not repeat the warning early');
  clock.advance(1000);
  await look(second);
  const alerts = await unattendedAlerts(second);
  assert.equal(alerts.length, 2, 'the hourly reminder');
  assert.equal(alerts[1].title, 'Positions still held while no trader runs');
  assert.match(alerts[1].body, /^12 position\(s\) held for 1h 15m /, 'counted from the start of the episode, across the restart');
});

test('the trader running again ends it: no further reminder; a later stop starts a new wait', async () => {
  const { app, paper, clock } = await setup('restart');
  paper.seedPosition('AAPL', 10, 200);
  await look(app); // never started: nothing runs
  clock.advance(15 * MINUTE);
  await look(app);
  assert.equal((await unattendedAlerts(app)).length, 1, 'raised for positions held while the trader never ran');

  await app.core.start(operatorActor);
  await look(app);
  assert.equal((await app.store.read()).watch.unattended, undefined, 'a copy running ends the episode');
  clock.advance(2 * HOUR);
  await look(app);
  assert.equal((await unattendedAlerts(app)).length, 1, 'no reminder while the trader runs');

  await app.core.stop(operatorActor);
  await look(app);
  clock.advance(15 * MINUTE - 1000);
  await look(app);
  assert.equal((await unattendedAlerts(app)).length, 1, 'a new episode waits UNATTENDED_SECONDS again');
  clock.advance(1000);
  await look(app);
  const alerts = await unattendedAlerts(app);
  assert.equal(alerts.length, 2, 'the new episode warns after its own wait');
  assert.equal(alerts[1].title, 'Positions held while no trader runs', 'a new episode, not a reminder');
});

test('the account flat ends it: no further reminder', async () => {
  const { app, paper, clock } = await setup('flat');
  paper.seedPosition('AAPL', 10, 200);
  await look(app);
  clock.advance(15 * MINUTE);
  await look(app);
  assert.equal((await unattendedAlerts(app)).length, 1, 'raised');

  paper.placeOrder({ symbol: 'AAPL', side: 'sell', type: 'market', time_in_force: 'day', qty: 10 });
  await look(app);
  assert.equal((await app.store.read()).watch.unattended, undefined, 'a flat account ends the episode');
  paper.seedPosition('MSFT', 1, 400); // held again later: a new wait, not the old one's reminder
  clock.advance(2 * HOUR);
  await look(app);
  clock.advance(15 * MINUTE - 1000);
  await look(app);
  assert.equal((await unattendedAlerts(app)).length, 1, 'no reminder after the account was flat, and the new wait is not over');
});

test('UNATTENDED_SECONDS: 900 by default, whole seconds or off; anything else named at start', () => {
  assert.equal(parseConfig({}).unattendedSeconds, 900);
  assert.equal(parseConfig({ UNATTENDED_SECONDS: '60' }).unattendedSeconds, 60);
  assert.equal(parseConfig({ UNATTENDED_SECONDS: 'off' }).unattendedSeconds, undefined);
  for (const bad of ['15m', '1e3', '-5', '0', '604801', '9 00']) {
    assert.throws(
      () => parseConfig({ UNATTENDED_SECONDS: bad }),
      (error: unknown) => error instanceof ConfigError && error.problems.some((p) => p.startsWith(`UNATTENDED_SECONDS is ${JSON.stringify(bad)}: expected a whole number of seconds`)),
      `UNATTENDED_SECONDS=${bad} is refused, naming the variable and what it expects`,
    );
  }
});
