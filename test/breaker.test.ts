// The runaway breaker's own decisions (src/core/breaker.ts), asked directly: when it trips (once),
// what a resume gives back, what the halt reports PID by PID when a step fails, what the trip's alert
// says, and when flatten follows. Real parts where the breaker keeps state: the data file (Store) and
// the outbox with a recording sink, a ManualClock. The halt itself is what the core hands the breaker
// (a stop, an end of duplicates, a flatten) and the supervisor's look: stand-ins here that answer
// what a test needs, every failure included, which real PM2 gives only by chance. The same breaker
// with a real PM2 daemon, real traders and the paper broker: test/watch-pm2.test.ts,
// test/containment.test.ts, test/broker-lock.test.ts, test/loss-limit.test.ts.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ManualClock } from '../src/clock.ts';
import type { Logger } from '../src/log.ts';
import { AlertOutbox } from '../src/alerts/outbox.ts';
import { Store } from '../src/store/store.ts';
import type { SeenTrade, StoredAlert } from '../src/store/schema.ts';
import { RunawayBreaker, type BreakerDeps, type Halt } from '../src/core/breaker.ts';
import type { BrokerLock } from '../src/core/broker-lock.ts';
import type { Actor, StopReport } from '../src/core/operations.ts';
import type { Duplicate, ProcessStatus, StopDuplicatesResult } from '../src/supervisor/types.ts';

const T0 = Date.parse('2026-03-02T14:00:00Z');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-breaker-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

const trade = (orderId: string, at: number): SeenTrade => ({ orderId, symbol: 'BTC/USD', side: 'buy', qty: 1, price: 100, at, activityIds: [`${orderId}-1`] });
/** `n` trades, a minute apart, the last one at `last`. */
const trades = (n: number, last = T0): SeenTrade[] => Array.from({ length: n }, (_, i) => trade(`o${i}`, last - (n - 1 - i) * 60_000));

const stopped = (pid = 4242, extra: Partial<StopReport> = {}): StopReport => ({ pid, wasRunning: true, forceKilled: false, durationMs: 10, ...extra });
const status = (extra: Partial<ProcessStatus> = {}): ProcessStatus => ({ name: 'trading-bot', state: 'stopped', restarts: 0, script: 'bot.js', duplicates: [], ...extra });

interface Scripted {
  onRunaway?: 'alert' | 'stop' | 'flatten';
  onLoss?: 'alert' | 'stop' | 'flatten';
  brokerLock?: 'on' | 'off';
  lock?: { held: true } | { held: false; error: string } | 'none';
  secrets?: string[];
  /** the scan at the trip */
  scan?: () => Promise<Duplicate[]>;
  /** the look after the halt */
  look?: () => Promise<ProcessStatus>;
  stop?: () => Promise<StopReport>;
  stopDuplicates?: (pids: number[]) => Promise<StopDuplicatesResult>;
  flatten?: () => Promise<unknown>;
  /** no core attached */
  detached?: boolean;
}

let made = 0;
function breakerFor(s: Scripted = {}) {
  const clock = new ManualClock(T0);
  const store = new Store(path.join(root, `b-${++made}`));
  const raised: StoredAlert[] = [];
  const errors: string[] = [];
  const logger: Logger = { debug() {}, info() {}, warn() {}, error: (m) => void errors.push(m) };
  const outbox = new AlertOutbox({ store, clock, logger, sinks: [{ name: 'test', deliver: async (a) => void raised.push(a) }] });
  const calls: string[] = [];
  const locks: Array<[string, string]> = [];
  const lock = s.lock ?? { held: true };
  const brokerLock = lock === 'none' ? undefined : ({ holdLocked: async (by: string, reason: string) => (locks.push([by, reason]), lock) } as unknown as BrokerLock);
  const config: BreakerDeps['config'] = {
    onRunaway: s.onRunaway ?? 'stop',
    onLoss: s.onLoss ?? 'stop',
    maxTradesPerHour: 3,
    trading: { processName: 'trading-bot' },
    secrets: s.secrets ?? [],
    brokerLock: s.brokerLock ?? 'off',
  };
  const supervisor: BreakerDeps['supervisor'] = {
    scanDuplicates: s.scan ?? (async () => []),
    status: s.look ?? (async () => status()),
  };
  const breaker = new RunawayBreaker({ config, store, outbox, clock, logger, supervisor, ...(brokerLock ? { brokerLock } : {}) });
  // Every halt step is the controller's, by the name the audit log and flatten's report give it.
  const by = (actor: Actor) => assert.deepEqual(actor, { id: 'controller', name: 'tradewarden', isOperator: true }, 'the controller, named tradewarden');
  const halt: Halt = {
    stop: async (actor) => (by(actor), calls.push('stop'), (s.stop ?? (async () => stopped()))()),
    stopDuplicates: async (actor, pids) => (by(actor), calls.push(`stopDuplicates ${pids.join(',')}`), (s.stopDuplicates ?? (async () => ({ stopped: [], notInLatestScan: [], failed: [] })))(pids)),
    flatten: async (actor) => (by(actor), calls.push('flatten'), (s.flatten ?? (async () => ({ flat: true })))()),
  };
  if (!s.detached) breaker.haltThrough(halt);
  return { breaker, store, clock, calls, locks, raised, errors };
}

test('ON_RUNAWAY=stop trips once, on the first count over the limit: the state, the trader stopped, one alert', async () => {
  const { breaker, store, calls, raised } = breakerFor();
  await breaker.onRunaway(trades(3));
  assert.equal((await store.read()).breaker.tripped, false, 'at the limit: not over it');
  assert.deepEqual(calls, []);
  await breaker.onRunaway(trades(4));
  assert.deepEqual((await store.read()).breaker, { tripped: true, cause: 'trade_rate', reason: '4 trades in the last hour (limit 3)', at: new Date(T0).toISOString(), by: 'controller' });
  assert.deepEqual(calls, ['stop'], 'the trader stopped; no duplicate to end, no flatten');
  await breaker.onRunaway(trades(5));
  assert.deepEqual(calls, ['stop'], 'tripped already: no second halt');
  assert.equal(raised.length, 1, 'one alert');
  const [alert] = raised;
  assert.equal(alert!.kind, 'breaker_tripped');
  assert.equal(alert!.severity, 'critical');
  assert.equal(alert!.title, 'Breaker tripped: trading halted');
  assert.equal(
    alert!.body,
    '4 trades in the last hour (limit 3). Ended PID 4242 (stopped through PM2: PM2 trader trading-bot). No copy of the trader runs here now. Start is refused until an operator runs resume.',
  );
  assert.deepEqual(alert!.facts, { count: 4, limit: 3, action: 'stop', ended: [{ pid: 4242, how: 'stopped through PM2', command: 'PM2 trader trading-bot' }], survivors: [] });
  await assert.rejects(breaker.assertClear(), (e: Error) => {
    assert.equal(e.message, `the breaker is tripped (4 trades in the last hour (limit 3), at ${new Date(T0).toISOString()}); an operator must run resume`);
    assert.equal((e as { kind?: string }).kind, 'refused');
    return true;
  });
});

test('ON_RUNAWAY=alert and ON_LOSS=alert never trip', async () => {
  const { breaker, store, calls, raised } = breakerFor({ onRunaway: 'alert', onLoss: 'alert' });
  await breaker.onRunaway(trades(10));
  await breaker.onLoss('daily loss 5% (limit 3%)', {});
  assert.equal((await store.read()).breaker.tripped, false);
  assert.deepEqual(calls, []);
  assert.equal(raised.length, 0);
  await breaker.assertClear();
});

test('a resume clears it and gives a fresh allowance: only trades since it count (one at its very millisecond too); restore puts back a breaker whose start failed', async () => {
  const { breaker, store, clock, raised } = breakerFor();
  await breaker.onRunaway(trades(4));
  clock.advance(5 * 60_000);
  const resumedAt = clock.now();
  const was = await breaker.clear();
  assert.equal(was.tripped, true, 'clear returns what it was');
  assert.equal(was.reason, '4 trades in the last hour (limit 3)');
  assert.deepEqual((await store.read()).breaker, { tripped: false, resumedAt });
  await breaker.assertClear();

  // restore: only a tripped state, and only over a breaker not tripped since.
  await breaker.restore(was);
  assert.deepEqual((await store.read()).breaker, was, 'the start that followed the resume failed: tripped again, as it was');
  await breaker.clear();
  clock.advance(60_000);
  const second = await breaker.clear();
  assert.deepEqual(second, { tripped: false, resumedAt }, 'clearing a clear breaker returns it as it is');
  assert.deepEqual((await store.read()).breaker, { tripped: false, resumedAt }, 'and keeps the last resume, not this one');
  // Another operator's trip and resume between this clear and its restore: the later resume is kept.
  await store.update((data) => {
    data.breaker = { tripped: false, resumedAt: resumedAt + 60_000 };
  });
  await breaker.restore(second);
  assert.deepEqual((await store.read()).breaker, { tripped: false, resumedAt: resumedAt + 60_000 }, 'restoring a clear state changes nothing');
  await store.update((data) => {
    data.breaker = { tripped: true, reason: 'tripped again meanwhile', resumedAt };
  });
  await breaker.restore(was);
  assert.equal((await store.read()).breaker.reason, 'tripped again meanwhile', 'a trip since the resume is kept');
  await store.update((data) => {
    data.breaker = { tripped: false, resumedAt };
  });

  // Seven trades in the hour, four of them since the resume: three before, one at its millisecond.
  const before = [trade('b1', resumedAt - 3000), trade('b2', resumedAt - 2000), trade('b3', resumedAt - 1)];
  const since = [trade('s1', resumedAt), trade('s2', resumedAt + 1), trade('s3', resumedAt + 2)];
  await breaker.onRunaway([...before, ...since]);
  assert.equal((await store.read()).breaker.tripped, false, 'three since the resume: at the limit');
  await breaker.onRunaway([...before, ...since, trade('s4', resumedAt + 3)]);
  const state = (await store.read()).breaker;
  assert.equal(state.tripped, true, 'four since the resume: over it');
  assert.equal(state.reason, '4 trades in the last hour since the last resume (limit 3)');
  assert.equal(raised.length, 2);
});

test('ON_LOSS=stop trips once with the loss watch\'s reason and facts; assertClear names what it has', async () => {
  const { breaker, store, calls, raised } = breakerFor();
  await breaker.onLoss('equity 9,500 is 5% below the day\'s start (MAX_DAILY_LOSS=3%)', { equity: 9500 });
  assert.deepEqual((await store.read()).breaker, { tripped: true, cause: 'loss_limit', reason: 'equity 9,500 is 5% below the day\'s start (MAX_DAILY_LOSS=3%)', at: new Date(T0).toISOString(), by: 'controller' });
  await breaker.onLoss('again', {});
  await breaker.onRunaway(trades(9));
  assert.deepEqual(calls, ['stop'], 'one halt: tripped already');
  assert.equal(raised.length, 1);
  assert.deepEqual(raised[0]!.facts, { equity: 9500, action: 'stop', ended: [{ pid: 4242, how: 'stopped through PM2', command: 'PM2 trader trading-bot' }], survivors: [] });
  await store.update((data) => {
    data.breaker = { tripped: true };
  });
  await assert.rejects(breaker.assertClear(), /^OperationError: the breaker is tripped \(no reason recorded, at \?\); an operator must run resume$/);
});

test('ON_RUNAWAY=flatten flattens once no copy is left; not while one survives, and says so', async () => {
  const clean = breakerFor({ onRunaway: 'flatten' });
  await clean.breaker.onRunaway(trades(4));
  assert.deepEqual(clean.calls, ['stop', 'flatten'], 'flatten after the halt');
  assert.match(clean.raised[0]!.body, / No copy of the trader runs here now\. Flattening now\. Start is refused/);
  assert.equal(clean.raised[0]!.facts.action, 'flatten');

  const one = breakerFor({ onLoss: 'flatten', look: async () => status({ state: 'online', pid: 4242 }) });
  await one.breaker.onLoss('loss', {});
  assert.deepEqual(one.calls, ['stop'], 'a copy survived: no flatten');
  assert.match(one.raised[0]!.body, /STILL RUNNING: PID 4242 \(PM2 trader trading-bot\) — end by hand\. Flatten NOT run: 1 copy survived and would open new positions; end it, then flatten\./);

  const two = breakerFor({ onRunaway: 'flatten', look: async () => status({ state: 'launching', pid: 4242, duplicates: [{ pid: 77, command: 'node bot.js', foundIn: 'os' }] }) });
  await two.breaker.onRunaway(trades(4));
  assert.deepEqual(two.calls, ['stop']);
  assert.match(two.raised[0]!.body, / Flatten NOT run: 2 copies survived and would open new positions; end them, then flatten\./);
  assert.deepEqual(two.raised[0]!.facts.survivors, [
    { pid: 4242, command: 'PM2 trader trading-bot' },
    { pid: 77, command: 'node bot.js' },
  ]);

  const failing = breakerFor({ onRunaway: 'flatten', flatten: async () => Promise.reject(new Error('broker down')) });
  await failing.breaker.onRunaway(trades(4));
  assert.deepEqual(failing.calls, ['stop', 'flatten']);
  assert.deepEqual(failing.errors, ['flatten after the breaker tripped: broker down'], 'a failed flatten is logged, not thrown');

  const detached = breakerFor({ onRunaway: 'flatten', detached: true });
  await detached.breaker.onRunaway(trades(4));
  assert.match(detached.raised[0]!.body, /Nothing to halt through \(the core was not attached\): stop every copy by hand\./);
  assert.deepEqual(detached.errors, ['breaker: nothing to halt through (the core was not attached)']);
});

test('the halt PID by PID: the trader, duplicates in and outside PM2, one gone with the trader, one that survives; secrets never in the alert', async () => {
  const duplicates: Duplicate[] = [
    { pid: 101, command: 'pm2 copy', foundIn: 'pm2', pm2Name: 'trading-bot-2', pmId: 3 },
    { pid: 102, command: 'node bot.js --key SECRETKEY', foundIn: 'os' },
    { pid: 103, command: 'node bot.js (second entry)', foundIn: 'pm2', pm2Name: 'trading-bot' },
    { pid: 104, command: 'node stubborn.js', foundIn: 'os' },
    { pid: 105, command: 'pm2 nameless', foundIn: 'pm2' },
  ];
  const asked: number[][] = [];
  const { breaker, calls, raised } = breakerFor({
    secrets: ['SECRETKEY'],
    scan: async () => duplicates,
    stop: async () => stopped(4242, { forceKilled: true }),
    stopDuplicates: async (pids) => {
      asked.push(pids);
      return { stopped: [{ pid: 101, signal: 'SIGTERM' }, { pid: 102, signal: 'SIGKILL' }, { pid: 105, signal: 'SIGTERM' }], notInLatestScan: [], failed: [{ pid: 104, reason: 'EPERM' }] };
    },
    look: async () => status({ duplicates: [{ pid: 104, command: 'node stubborn.js', foundIn: 'os' }] }),
  });
  await breaker.onRunaway(trades(4));
  assert.deepEqual(asked, [[101, 102, 103, 104, 105]], 'every duplicate the scan found');
  assert.deepEqual(calls, ['stop', 'stopDuplicates 101,102,103,104,105']);
  const facts = raised[0]!.facts;
  assert.deepEqual(facts.ended, [
    { pid: 4242, how: 'stopped through PM2 (force-killed)', command: 'PM2 trader trading-bot' },
    { pid: 101, how: 'PM2 entry trading-bot-2 deleted', command: 'pm2 copy' },
    { pid: 102, how: 'SIGKILL', command: 'node bot.js --key [redacted]' },
    { pid: 105, how: 'PM2 entry  deleted', command: 'pm2 nameless' },
    { pid: 103, how: 'gone with the trader', command: 'node bot.js (second entry)' },
  ]);
  assert.deepEqual(facts.survivors, [{ pid: 104, command: 'node stubborn.js' }]);
  assert.equal(
    raised[0]!.body,
    '4 trades in the last hour (limit 3). Ended PID 4242 (stopped through PM2 (force-killed): PM2 trader trading-bot), PID 101 (PM2 entry trading-bot-2 deleted: pm2 copy), ' +
      'PID 102 (SIGKILL: node bot.js --key [redacted]), PID 105 (PM2 entry  deleted: pm2 nameless), PID 103 (gone with the trader: node bot.js (second entry)). ' +
      'STILL RUNNING: PID 104 (node stubborn.js) — end by hand. Start is refused until an operator runs resume.',
  );
  assert.ok(!JSON.stringify(raised).includes('SECRETKEY'), 'no secret in the alert');
});

test('a duplicate the halt did not name as ended, and an entry stopDuplicates reports without a scan behind it', async () => {
  const b = breakerFor({
    scan: async () => [{ pid: 201, command: 'node bot.js', foundIn: 'os' }],
    stop: async () => stopped(4242, { wasRunning: false, pid: undefined }),
    stopDuplicates: async () => ({ stopped: [{ pid: 999, signal: 'SIGTERM' }], notInLatestScan: [], failed: [] }),
  });
  await b.breaker.onRunaway(trades(4));
  assert.deepEqual(b.raised[0]!.facts.ended, [
    { pid: 999, how: 'SIGTERM', command: '?' },
    { pid: 201, how: 'gone with the trader', command: 'node bot.js' },
  ]);
  assert.match(b.raised[0]!.body, /^4 trades in the last hour \(limit 3\)\. Ended PID 999 \(SIGTERM: \?\), PID 201 \(gone with the trader: node bot\.js\)\. The PM2 trader was not running\. No copy/);
});

test('a PM2 entry that names a PID whose process was already gone: the trader was not running, no PID is said to be ended', async () => {
  const b = breakerFor({ stop: async () => stopped(4242, { wasRunning: false }) });
  await b.breaker.onRunaway(trades(4));
  assert.deepEqual(b.raised[0]!.facts.ended, []);
  assert.match(b.raised[0]!.body, /^4 trades in the last hour \(limit 3\)\. The PM2 trader was not running\. No copy of the trader runs here now\. /);
});

test('each step of the halt that fails is said in the alert, and the rest still runs', async () => {
  const b = breakerFor({
    scan: async () => Promise.reject(new Error('ps failed')),
    stop: async () => Promise.reject(new Error('PM2 is not answering')),
    look: async () => Promise.reject(new Error('still not answering')),
  });
  await b.breaker.onRunaway(trades(4));
  assert.deepEqual(b.calls, ['stop'], 'no duplicate known: none to end');
  assert.equal(
    b.raised[0]!.body,
    '4 trades in the last hour (limit 3). The duplicate scan FAILED (ps failed): copies outside PM2 may still trade. Stopping the PM2 trader FAILED: PM2 is not answering. Stop it by hand. ' +
      'Could not look again after the halt: check that no copy still runs. No copy of the trader runs here now. Start is refused until an operator runs resume.',
  );
  assert.deepEqual(b.errors, ['breaker: stopping the trader failed: PM2 is not answering']);

  const dupes = breakerFor({
    scan: async () => [{ pid: 301, command: 'node bot.js', foundIn: 'os' }],
    stopDuplicates: async () => Promise.reject(new Error('kill EPERM')),
    look: async () => status({ state: 'stopping', pid: 4242, duplicates: [{ pid: 301, command: 'node bot.js', foundIn: 'os' }] }),
  });
  await dupes.breaker.onRunaway(trades(4));
  assert.equal(
    dupes.raised[0]!.body,
    '4 trades in the last hour (limit 3). Ended PID 4242 (stopped through PM2: PM2 trader trading-bot). Ending the duplicates FAILED: kill EPERM. ' +
      'STILL RUNNING: PID 4242 (PM2 trader trading-bot), PID 301 (node bot.js) — end by hand. Start is refused until an operator runs resume.',
  );
  assert.deepEqual(dupes.raised[0]!.facts.survivors, [
    { pid: 4242, command: 'PM2 trader trading-bot' },
    { pid: 301, command: 'node bot.js' },
  ]);

  const noPid = breakerFor({ look: async () => status({ state: 'online' }) });
  await noPid.breaker.onRunaway(trades(4));
  assert.deepEqual(noPid.raised[0]!.facts.survivors, [], 'online without a PID: nothing to name');
  const errored = breakerFor({ look: async () => status({ state: 'errored', pid: 4242 }) });
  await errored.breaker.onRunaway(trades(4));
  assert.deepEqual(errored.raised[0]!.facts.survivors, [], 'an errored entry does not run');
});

test('the session the stop ended goes on its own line of the alert, and into its facts', async () => {
  const session = { startedAt: T0 - 3600_000, endedAt: T0, trades: 4, pnl: -12.5, openPositions: [], missing: [] };
  const b = breakerFor({ stop: async () => stopped(4242, { session }) });
  await b.breaker.onRunaway(trades(4));
  assert.equal(
    b.raised[0]!.body,
    '4 trades in the last hour (limit 3). Ended PID 4242 (stopped through PM2: PM2 trader trading-bot). No copy of the trader runs here now. Start is refused until an operator runs resume.\n' +
      'Session: 4 trade(s), P/L -$12.50, positions left open: none.',
  );
  assert.deepEqual(b.raised[0]!.facts.session, session);
});

test('BROKER_LOCK=on: the trip locks the account at the broker as the controller, and the alert says whether it holds', async () => {
  const held = breakerFor({ brokerLock: 'on' });
  await held.breaker.onRunaway(trades(4));
  assert.deepEqual(held.locks, [['controller', 'breaker: 4 trades in the last hour (limit 3)']]);
  assert.match(held.raised[0]!.body, / No copy of the trader runs here now\. Account LOCKED at the broker \(suspend_trade\): no new order from any copy anywhere; resume lifts it\. Start is refused/);
  assert.equal(held.raised[0]!.facts.brokerLocked, true);

  const failing = breakerFor({ brokerLock: 'on', lock: { held: false, error: 'broker answered 500' } });
  await failing.breaker.onLoss('loss', {});
  assert.match(failing.raised[0]!.body, / The account is NOT LOCKED at the broker \(broker answered 500\): retrying until it holds; lock it in the broker's dashboard if this persists\. /);
  assert.equal(failing.raised[0]!.facts.brokerLocked, false);

  const noBroker = breakerFor({ brokerLock: 'on', lock: 'none' });
  await noBroker.breaker.onRunaway(trades(4));
  assert.match(noBroker.raised[0]!.body, / The account is NOT locked at the broker: no broker is configured\. /);
  assert.equal(noBroker.raised[0]!.facts.brokerLocked, false);

  const off = breakerFor({ brokerLock: 'off' });
  await off.breaker.onRunaway(trades(4));
  assert.deepEqual(off.locks, [], 'BROKER_LOCK=off: the broker is not asked');
  assert.ok(!('brokerLocked' in off.raised[0]!.facts), 'and the alert does not speak of it');
  assert.doesNotMatch(off.raised[0]!.body, /LOCKED|locked/);
});
