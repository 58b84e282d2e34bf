// The order gate's decisions (src/gateway/order-gate.ts) asked directly, without HTTP: who is asking,
// the hour's count of orders let through, the breaker and the broker lock, what frees a slot, and the
// order_refused alert once per episode. Real parts: a data file (Store), the outbox with a recording
// sink, a real trader process whose PID the gate is told (the connection's owner is handed in as the
// gateway hands it after its look-up, which test/gateway.test.ts exercises with real sockets), and a
// ManualClock for the hour. test/gateway.test.ts drives the same gate through the HTTP proxy, PM2 and
// the paper broker; this file pins each rule at its edge in under a second (mutation testing runs it first).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { ManualClock } from '../src/clock.ts';
import { silentLogger, type Logger } from '../src/log.ts';
import { AlertOutbox } from '../src/alerts/outbox.ts';
import { Store } from '../src/store/store.ts';
import type { StoredAlert } from '../src/store/schema.ts';
import { LIMIT_CODE, OrderGate, REFUSED_CODE, type OrderIntent, type Peer } from '../src/gateway/order-gate.ts';
import type { BrokerView, PreTradeLimits } from '../src/gateway/pre-trade.ts';
import { TraderBook } from '../src/gateway/trader-book.ts';
import { killPid, waitFor } from '../testkit/pm2-home.ts';

const HOUR = 3600_000;
const T0 = Date.parse('2026-03-02T14:00:00Z');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-order-gate-'));
/** The managed trader, and a child process it started (a worker: its orders are the trader's). */
let trader: ChildProcess;
let traderChild: number;

before(async () => {
  trader = spawn(process.execPath, ['-e', "require('node:child_process').spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)'], { stdio: 'ignore' }); setInterval(() => {}, 1 << 30)"], { stdio: 'ignore' });
  traderChild = await waitFor(() => {
    const children = fs.readFileSync(`/proc/${trader.pid}/task/${trader.pid}/children`, 'utf8').trim();
    return children ? Number(children.split(' ')[0]) : undefined;
  }, { what: "the trader's child process" });
});

after(async () => {
  await killPid(traderChild, 'SIGKILL');
  await killPid(trader.pid!, 'SIGKILL');
  fs.rmSync(root, { recursive: true, force: true });
});

const BUY: OrderIntent = { symbol: 'BTC/USD', side: 'buy', qty: '1', type: 'market' };
/** A connection whose owner the gateway already found (it looks a connection up once). */
const from = (pid: number): Peer => ({ ends: { localAddress: '127.0.0.1', localPort: 1, remoteAddress: '127.0.0.1', remotePort: 1 }, ownerPid: pid });

let made = 0;
function gateFor(options: { mode?: 'enforce' | 'observe'; maxTradesPerHour?: number; traderPid?: () => Promise<number | undefined>; store?: Store; cancelGraceMs?: number; limits?: PreTradeLimits } = {}) {
  const clock = new ManualClock(T0);
  const store = options.store ?? new Store(path.join(root, `gate-${++made}`));
  const raised: StoredAlert[] = [];
  const logged: Array<[string, string]> = [];
  const logger: Logger = {
    debug: (m) => void logged.push(['debug', m]),
    info: (m) => void logged.push(['info', m]),
    warn: (m) => void logged.push(['warn', m]),
    error: (m) => void logged.push(['error', m]),
  };
  const outbox = new AlertOutbox({ store, clock, logger, sinks: [{ name: 'test', deliver: async (a) => void raised.push(a) }] });
  const traderPid = options.traderPid ?? (async () => trader.pid);
  const gate = new OrderGate({
    store,
    outbox,
    clock,
    logger,
    maxTradesPerHour: options.maxTradesPerHour ?? 3,
    mode: options.mode ?? 'enforce',
    processName: 'trading-bot',
    traderPid,
    ...(options.cancelGraceMs !== undefined ? { cancelGraceMs: options.cancelGraceMs } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
  });
  const order = (intent: OrderIntent = BUY, pid = trader.pid!) => gate.admit(from(pid), intent);
  const alerts = async () => {
    await gate.alertsRaised();
    return raised;
  };
  return { gate, store, clock, order, alerts, logged };
}

test('the managed trader and its child processes may order; the count holds it to MAX_TRADES_PER_HOUR, refused with 429, Retry-After and the next time', async () => {
  const { gate, clock, order, alerts } = gateFor();
  const first = await order();
  assert.equal(first.forward, true, 'the first order is forwarded');
  assert.equal(first.refusal, undefined);
  assert.equal(first.caller.managed, true);
  assert.equal(first.caller.pid, trader.pid);
  assert.match(first.caller.command!, /setInterval/, "the caller's command line read from /proc");
  clock.advance(10 * 60_000);
  const second = await order(BUY, traderChild);
  assert.equal(second.forward, true, "the trader's child process is the trader");
  assert.notEqual(second.ticket, first.ticket, 'each forwarded order its own ticket');
  assert.equal((await order()).forward, true, 'the third of three');
  assert.equal(await gate.pendingCount(), 3);

  const fourth = await order();
  assert.equal(fourth.forward, false, 'one more would exceed the limit');
  assert.equal(fourth.ticket, undefined, 'a refused order gets no ticket');
  assert.deepEqual({ reason: fourth.refusal?.reason, status: fourth.refusal?.status, code: fourth.refusal?.code }, { reason: 'trade_limit', status: 429, code: LIMIT_CODE });
  assert.equal(fourth.refusal?.retryAfterSeconds, 50 * 60, 'the oldest order leaves the hour 50 minutes from now');
  assert.equal(
    fourth.refusal?.message,
    'tradewarden order gate: order refused: 0 trade(s) in the last hour and 3 order(s) accepted and not yet filled; one more would exceed MAX_TRADES_PER_HOUR=3. ' +
      `The next order is possible after ${new Date(T0 + HOUR).toISOString()}, when the oldest leaves the rolling hour (or an operator raises the limit). Cancels, position closes and reads still pass.`,
  );
  const [alert, ...more] = await alerts();
  assert.equal(more.length, 0, 'one alert');
  assert.equal(alert?.kind, 'order_refused');
  assert.equal(alert?.severity, 'warning', 'a limit that lifts by itself warns');
  assert.equal(alert?.title, 'Order refused: trade limit reached');
  assert.deepEqual(alert?.facts, { reason: 'trade_limit', mode: 'enforce', pid: trader.pid, command: first.caller.command, managed: true, symbol: 'BTC/USD', side: 'buy', qty: '1', limit: 3, limitName: 'MAX_TRADES_PER_HOUR' });

  // An hour after it was accepted, an order no longer counts (at the very millisecond).
  clock.set(T0 + HOUR - 1);
  assert.equal((await order()).forward, false, 'a millisecond before the hour the first order still counts');
  clock.set(T0 + HOUR);
  assert.equal((await order()).forward, true, 'at the hour it leaves the count');
});

test('what frees a slot: no answer from the broker frees it, an order that ended unfilled frees it, a lost answer keeps it', async () => {
  const { gate, store, order } = gateFor({ maxTradesPerHour: 2 });
  const refusedAt = async () => (await order()).refusal?.reason;
  const a = await order();
  const b = await order();
  assert.equal(await refusedAt(), 'trade_limit', 'two in flight fill the two slots');
  gate.settle(a.ticket!, { accepted: false });
  assert.equal(await gate.pendingCount(), 1, 'refused by the broker, or never sent: not counted');
  const c = await order();
  assert.equal(c.forward, true, 'the freed slot is taken');
  gate.settle(c.ticket!, { accepted: true, orderId: 'c', ended: true });
  assert.equal(await gate.pendingCount(), 1, 'answered as already over and unfilled (an IOC): not counted');
  const d = await order();
  gate.settle(d.ticket!, { accepted: 'unknown' });
  gate.settle(b.ticket!, { accepted: true, orderId: 'b' });
  assert.equal(await refusedAt(), 'trade_limit', 'accepted, and an answer lost: both count');
  gate.settle(999, { accepted: false }); // a ticket the gate never gave: nothing happens
  assert.equal(await gate.pendingCount(), 2);

  gate.ended('b');
  assert.equal(await gate.pendingCount(), 1, 'the stream said b will trade no more');
  assert.equal(gate.knows('b'), true, 'b was let through');
  assert.equal(gate.knows('c'), true, 'c too, though it ended at once');
  assert.equal(gate.knows('x'), false);

  // An answer accepted without an order id: nothing to remember, nothing written to the ledger.
  const unnamed = await order();
  gate.settle(unnamed.ticket!, { accepted: true });
  assert.deepEqual(store.gate.newest(10), ['c', 'b'], 'only the orders the broker named, as it named them');
  gate.settle(unnamed.ticket!, { accepted: false });

  // The stream's event can come before the broker's answer names the order.
  const e = await order();
  gate.ended('e');
  gate.settle(e.ticket!, { accepted: true, orderId: 'e' });
  assert.equal(await gate.pendingCount(), 1, 'an order the stream already said ended does not count');
});

test('a canceled order counts through a grace period (a fill just before the cancel is polled first); a cancel-all spares orders still in flight', async () => {
  const { gate, clock, order } = gateFor({ cancelGraceMs: 30_000 });
  const a = await order();
  const b = await order();
  const inFlight = await order();
  gate.settle(a.ticket!, { accepted: true, orderId: 'a' });
  gate.settle(b.ticket!, { accepted: true, orderId: 'b' });
  gate.canceled('a');
  clock.advance(29_999);
  assert.equal(await gate.pendingCount(), 3, 'within the grace the canceled order still counts');
  clock.advance(1);
  assert.equal(await gate.pendingCount(), 2, 'at the grace it leaves');
  gate.canceled('all');
  clock.advance(10_000);
  gate.canceled('all'); // a second cancel does not restart the grace
  clock.advance(20_000);
  assert.equal(await gate.pendingCount(), 1, 'b left 30 s after the first cancel-all; the order in flight keeps counting');
  gate.settle(inFlight.ticket!, { accepted: true, orderId: 'late' });
  clock.advance(HOUR - 60_001);
  assert.equal(await gate.pendingCount(), 1, 'accepted after the cancel-all: it counts until its hour is over');
  gate.ended('late');
  assert.equal(await gate.pendingCount(), 0, 'the one still counting was the order in flight, not b');
});

test('the default grace for a canceled order is a minute', async () => {
  const { gate, clock, order } = gateFor();
  const a = await order();
  gate.settle(a.ticket!, { accepted: true, orderId: 'a' });
  gate.canceled('a');
  clock.advance(59_999);
  assert.equal(await gate.pendingCount(), 1, 'a millisecond before a minute');
  clock.advance(1);
  assert.equal(await gate.pendingCount(), 0, 'at a minute');
});

test('a replacement takes the place of the order it replaces: allowed at the limit, and the old order stops counting once replaced', async () => {
  const { gate, order } = gateFor({ maxTradesPerHour: 2 });
  const a = await order();
  const b = await order();
  gate.settle(a.ticket!, { accepted: true, orderId: 'a' });
  gate.settle(b.ticket!, { accepted: true, orderId: 'b' });
  assert.equal((await order({ ...BUY, replaces: 'x' })).refusal?.reason, 'trade_limit', 'replacing an order the gate does not count is a new order');
  const replacement = await order({ ...BUY, replaces: 'a' });
  assert.equal(replacement.forward, true, 'replacing a counted order at the limit');
  gate.settle(replacement.ticket!, { accepted: true, orderId: 'a2' });
  gate.replaced('a');
  assert.equal(await gate.pendingCount(), 2, 'a2 and b: a left');
});

test('with the breaker tripped, or the account locked at the broker, the trader is refused with 403 and the reason', async () => {
  const { store, order, alerts } = gateFor();
  await store.update((data) => {
    data.breaker = { tripped: true, cause: 'trade_rate', reason: '4 trades in the last hour (limit 3)' };
  });
  const tripped = await order();
  assert.equal(tripped.forward, false);
  assert.deepEqual({ reason: tripped.refusal?.reason, status: tripped.refusal?.status, code: tripped.refusal?.code }, { reason: 'breaker_tripped', status: 403, code: REFUSED_CODE });
  assert.equal(
    tripped.refusal?.message,
    'tradewarden order gate: new orders are rejected by user request: order refused because the breaker is tripped (4 trades in the last hour (limit 3)). ' +
      'Trading is halted until an operator runs resume (/bot resume, or tradewarden resume). Cancels, position closes and reads still pass.',
  );
  await store.update((data) => {
    data.breaker = { tripped: true };
  });
  assert.match((await order()).refusal!.message, /breaker is tripped \(no reason recorded\)/);

  await store.update((data) => {
    data.breaker = { tripped: false };
    data.brokerLock = { locked: true, ours: true, by: 'discord:42' };
  });
  const locked = await order();
  assert.deepEqual({ reason: locked.refusal?.reason, status: locked.refusal?.status, code: locked.refusal?.code }, { reason: 'broker_locked', status: 403, code: REFUSED_CODE });
  assert.equal(
    locked.refusal?.message,
    'tradewarden order gate: new orders are rejected by user request: order refused because the account is locked at the broker (suspend_trade, set by discord:42). ' +
      'An operator lifts it with unlock (or resume, for a lock tradewarden set). Cancels and reads still pass.',
  );
  await store.update((data) => {
    data.brokerLock = { locked: true, ours: true };
  });
  assert.match((await order()).refusal!.message, /\(suspend_trade, set by tradewarden\)/);
  await store.update((data) => {
    data.brokerLock = { locked: true, ours: false };
  });
  assert.match((await order()).refusal!.message, /\(suspend_trade, set outside tradewarden\)/);
  await store.update((data) => {
    data.brokerLock = { locked: false, ours: false };
  });
  assert.equal((await order()).forward, true, 'unlocked: the order passes');

  const raised = await alerts();
  assert.deepEqual(raised.map((a) => [a.facts.reason, a.severity, a.title]), [
    ['breaker_tripped', 'critical', 'Order refused: breaker tripped'],
    ['broker_locked', 'critical', 'Order refused: account locked at the broker'],
  ]);
});

test('a copy that is not the managed trader is refused, each copy alerted once while it keeps trying; the trader\'s episode ends when its order passes, a copy\'s goes on', async () => {
  const { clock, order, alerts, logged } = gateFor({ maxTradesPerHour: 1 });
  const copy = process.pid; // this test's own process: not in the trader's process tree
  const refused = await order({ ...BUY, notional: '5', qty: undefined }, copy);
  assert.equal(refused.forward, false);
  assert.equal(refused.caller.managed, false);
  assert.equal(refused.caller.why, `PID ${copy} is not the managed trader (PM2 PID ${trader.pid}) nor one of its child processes`);
  assert.deepEqual({ reason: refused.refusal?.reason, status: refused.refusal?.status, code: refused.refusal?.code }, { reason: 'not_managed_trader', status: 403, code: REFUSED_CODE });
  assert.equal(
    refused.refusal?.message,
    'tradewarden order gate: new orders are rejected by user request: order refused: only the managed trader "trading-bot" (started under PM2 by tradewarden) may place orders, ' +
      `and this request came from PID ${copy}. Stop this copy; start the trader with /bot start (or tradewarden start). Cancels, position closes and reads still pass.`,
  );
  const command = refused.caller.command!;
  assert.equal(command, fs.readFileSync(`/proc/${copy}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' '));
  clock.advance(1000);
  assert.equal((await order(BUY, copy)).forward, false, 'refused again');
  const passed = await order();
  assert.equal(passed.forward, true, "the trader's order passes meanwhile");
  const limited = await order();
  assert.equal(limited.refusal?.reason, 'trade_limit');
  clock.advance(1000);
  assert.equal((await order()).refusal?.reason, 'trade_limit', 'the limit again: same episode');
  assert.equal((await order(BUY, copy)).forward, false, 'the copy again, after an order of the trader passed');

  const raised = await alerts();
  assert.equal(raised.length, 2, `one alert for the copy, one for the trader's limit: ${raised.map((a) => a.title).join('; ')}`);
  const [copyAlert, limitAlert] = raised;
  assert.equal(copyAlert!.severity, 'critical');
  assert.equal(copyAlert!.title, 'Order refused: not from the managed trader');
  assert.equal(
    copyAlert!.body,
    `Who: PID ${copy} (${command}). What: buy $5 BTC/USD market. Why: PID ${copy} is not the managed trader (PM2 PID ${trader.pid}) nor one of its child processes. ` +
      'Further refusals of this process are only logged while it keeps trying.',
  );
  assert.equal(copyAlert!.key, `order_refused:not_managed_trader:${copy}:${T0}`);
  assert.equal(
    limitAlert!.body,
    `Who: PID ${trader.pid} (${passed.caller.command}), the managed trader. What: buy 1 BTC/USD market. ` +
      `Why: ${limited.refusal!.message.replace(/\.$/, '')}. Further refusals of this kind are not alerted until an order passes again.`,
  );
  assert.equal(limitAlert!.key, `order_refused:trade_limit:${T0 + 1000}`);
  const lines = logged.filter(([, m]) => m.startsWith('order gate refused'));
  assert.deepEqual(lines.map(([level]) => level), ['info', 'debug', 'info', 'debug', 'debug'], 'the first of an episode at info, the rest at debug');
  assert.match(lines[1]![1], /: not_managed_trader \(2 in this episode\)$/);
  assert.match(lines[3]![1], /: trade_limit \(2 in this episode\)$/);
  assert.match(lines[4]![1], /: not_managed_trader \(3 in this episode\)$/);
  assert.equal(lines[0]![1], `order gate refused buy $5 BTC/USD market from PID ${copy} (${command}): ${refused.refusal!.message}`);
});

test("the trader's refusals are news again once one of its orders passes", async () => {
  const { gate, clock, order, alerts } = gateFor({ maxTradesPerHour: 1 });
  const first = await order();
  assert.equal((await order()).refusal?.reason, 'trade_limit');
  assert.equal((await order()).refusal?.reason, 'trade_limit');
  assert.equal((await alerts()).length, 1, 'one alert for the episode');
  gate.settle(first.ticket!, { accepted: false });
  clock.advance(1000);
  assert.equal((await order()).forward, true, 'the slot freed: an order passes');
  assert.equal((await order()).refusal?.reason, 'trade_limit');
  const raised = await alerts();
  assert.equal(raised.length, 2, 'the limit reached again after an order passed: a new episode, alerted');
  assert.equal(raised[1]!.key, `order_refused:trade_limit:${T0 + 1000}`);
});

test('the stream\'s word that an order ended is kept for the last 1000 orders', async () => {
  const { gate, order } = gateFor({ maxTradesPerHour: 10 });
  for (let i = 0; i <= 1000; i++) gate.ended(`e${i}`);
  const oldest = await order();
  gate.settle(oldest.ticket!, { accepted: true, orderId: 'e0' });
  assert.equal(await gate.pendingCount(), 1, 'e0 was forgotten (1001 ended since): its answer keeps the slot');
  const newest = await order();
  gate.settle(newest.ticket!, { accepted: true, orderId: 'e1' });
  assert.equal(await gate.pendingCount(), 1, 'e1 is among the last 1000: its answer frees the slot at once');
});

test('a caller whose process is gone by the time its command line is read', async () => {
  const gone = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((resolve) => gone.once('exit', resolve));
  const { order, alerts } = gateFor();
  const answer = await order(BUY, gone.pid!);
  assert.equal(answer.caller.managed, false);
  assert.equal(answer.caller.command, '');
  const [alert] = await alerts();
  assert.match(alert!.body, new RegExp(`^Who: PID ${gone.pid} \\(command line unknown\\)\\. `));
});

test('an order_refused alert that cannot be raised is logged; the refusal stands', async () => {
  const { store, order, alerts, logged } = gateFor();
  store.update = () => Promise.reject(new Error('disk full'));
  assert.equal((await order(BUY, process.pid)).forward, false);
  assert.deepEqual(await alerts(), []);
  assert.deepEqual(
    logged.filter(([level]) => level === 'error').map(([, m]) => m),
    ['could not raise order_refused: disk full'],
  );
});

test('the pre-trade limits: each refusal titled and graded in its alert; without a view of the broker, a limit that must read refuses', async () => {
  const held: BrokerView = {
    keys: 'k',
    accountNumber: async () => 'A1',
    position: async () => null,
    latestTradePrice: async () => 100,
    openOrders: async () => [{ id: 'x1', symbol: 'AAPL', side: 'buy', qty: 1, filledQty: 0 }],
    order: async (id) => ({ id, symbol: 'AAPL', side: 'buy', qty: 1, filledQty: 0 }),
  };
  // Without a view every read fails, and the refusal says which and why.
  const noRead = (what: string) => new RegExp(`${what.replace(/[()/]/g, '\\$&')}.?no broker to read`);
  const cases: Array<{ limits: PreTradeLimits; intent: OrderIntent; view?: BrokerView; reason: string; title: string; severity: string; says?: RegExp[] }> = [
    { limits: { allowedSymbols: ['AAPL'] }, intent: BUY, view: held, reason: 'symbol_not_allowed', title: 'symbol not in ALLOWED_SYMBOLS', severity: 'critical' },
    { limits: { maxOpenOrders: 1 }, intent: BUY, view: held, reason: 'open_orders', title: 'too many open orders', severity: 'warning' },
    { limits: { maxOrderNotional: 100 }, intent: { ...BUY, qty: undefined, notional: '500' }, view: held, reason: 'order_notional', title: 'order larger than MAX_ORDER_NOTIONAL', severity: 'critical' },
    { limits: { maxPositionNotional: 100 }, intent: { ...BUY, symbol: 'AAPL', qty: '2' }, view: held, reason: 'position_notional', title: 'position would exceed MAX_POSITION_NOTIONAL', severity: 'critical' },
    { limits: { maxOpenOrders: 1 }, intent: BUY, reason: 'open_orders_unknown', title: 'open orders could not be read', severity: 'critical', says: [noRead("the trader's open orders could not be read from the broker ("), noRead('the position in BTC/USD could not be read:')] },
    { limits: { maxOrderNotional: 100 }, intent: BUY, reason: 'value_unknown', title: "the order's value could not be known", severity: 'critical', says: [noRead('the latest price of BTC/USD could not be read:')] },
    { limits: { maxOrderNotional: 100 }, intent: { ...BUY, replaces: 'o-1' }, reason: 'value_unknown', title: "the order's value could not be known", severity: 'critical', says: [noRead('the order it replaces (o-1) could not be read from the broker (')] },
  ];
  for (const c of cases) {
    const { gate, alerts } = gateFor({ limits: c.limits });
    const answer = await gate.admit(from(trader.pid!), c.intent, ...(c.view ? [c.view] : []));
    const what = `${c.reason} (${JSON.stringify(c.limits)})`;
    assert.equal(answer.refusal?.reason, c.reason, what);
    assert.equal(answer.refusal?.status, 403, what);
    assert.equal(answer.forward, false, what);
    const [alert] = await alerts();
    assert.equal(alert?.title, `Order refused: ${c.title}`, what);
    assert.equal(alert?.severity, c.severity, what);
    for (const said of c.says ?? []) assert.match(answer.refusal!.message, said, what);
  }
});

test('an episode ends after an hour without a refusal: the next one is alerted again', async () => {
  const { clock, order, alerts } = gateFor();
  const copy = process.pid;
  await order(BUY, copy);
  clock.advance(HOUR - 1);
  await order(BUY, copy);
  assert.equal((await alerts()).length, 1, 'a refusal within the hour is the same episode');
  clock.advance(HOUR - 1);
  await order(BUY, copy);
  assert.equal((await alerts()).length, 1, 'counted from the last refusal, not the first');
  clock.advance(HOUR);
  await order(BUY, copy);
  assert.equal((await alerts()).length, 2, 'an hour of quiet: a new episode');
});

test('GATE_MODE=observe forwards the order it would refuse, and alerts that it would have', async () => {
  const { order, alerts, logged } = gateFor({ mode: 'observe', maxTradesPerHour: 1 });
  const copy = await order({ symbol: 'ETH/USD' }, process.pid);
  assert.equal(copy.forward, true, 'forwarded');
  assert.ok(copy.ticket !== undefined, 'with a ticket to settle');
  assert.equal(copy.refusal?.reason, 'not_managed_trader', 'what enforce mode would have said');
  const [alert] = await alerts();
  assert.equal(alert?.title, 'Order would have been refused (not from the managed trader; observe mode)');
  assert.match(alert!.body, /^GATE_MODE=observe let it through\. Who: PID \d+ .*What: order size unknown ETH\/USD\. /);
  assert.equal(alert?.facts.mode, 'observe');
  assert.ok(logged.some(([level, m]) => level === 'info' && m.startsWith('order gate would refuse (observe mode: forwarded) order size unknown ETH/USD from PID')), 'logged as what it would have done');
});

test('who is asking: a trader PM2 does not run, a PID PM2 cannot give, a connection whose process is gone; a restarted trader is recognised at once', async () => {
  let pid: number | undefined;
  let failing = false;
  let asked = 0;
  const { order } = gateFor({
    traderPid: async () => {
      asked += 1;
      if (failing) throw new Error('PM2 is not answering');
      return pid;
    },
  });
  const notRunning = await order();
  assert.equal(notRunning.caller.managed, false);
  assert.equal(notRunning.caller.why, 'the managed trader "trading-bot" is not running under PM2');
  assert.equal(notRunning.refusal?.reason, 'not_managed_trader');

  // The trader (re)started: a refusal is never decided on the cached PID alone.
  pid = trader.pid;
  asked = 0;
  assert.equal((await order()).caller.managed, true, 'the fresh listing names the trader');
  assert.equal(asked, 1, 'the cached answer (no trader) is not believed for a refusal: PM2 asked afresh');
  asked = 0;
  assert.equal((await order(BUY, traderChild)).caller.managed, true);
  assert.equal(asked, 0, 'within two seconds the cached PID answers for the trader');

  const outsider = await order(BUY, process.pid);
  assert.equal(outsider.caller.managed, false);
  assert.equal(asked, 1, 'a caller outside the cached tree: PM2 asked again before the refusal');

  failing = true;
  const noPm2 = await order(BUY, process.pid);
  assert.equal(noPm2.caller.managed, false);
  assert.equal(noPm2.caller.pid, process.pid);
  assert.equal(noPm2.caller.why, "the managed trader's PID could not be read from PM2 (PM2 is not answering)");
  assert.match(noPm2.refusal!.message, new RegExp(`this request came from PID ${process.pid}\\.`));

  // A connection no process holds (closed before the look-up): not found, so not the trader.
  failing = false;
  const { gate } = gateFor({ traderPid: async () => trader.pid });
  const gone = await gate.admit({ ends: { localAddress: '127.0.0.1', localPort: 1, remoteAddress: '127.0.0.1', remotePort: 1 } }, BUY);
  assert.equal(gone.caller.managed, false);
  assert.equal(gone.caller.pid, undefined);
  assert.match(gone.caller.why!, /^the process behind the connection could not be found: /);
  assert.match(gone.refusal!.message, /the process behind this request could not be identified\./);
});

test('a trader PID that PM2 cannot give at all: refused before anything else is looked at', async () => {
  const { gate, alerts } = gateFor({ traderPid: async () => Promise.reject(new Error('no daemon')) });
  const answer = await gate.admit(from(trader.pid!), BUY);
  assert.equal(answer.caller.managed, false);
  assert.equal(answer.caller.pid, undefined, 'no PID could be judged');
  assert.equal(answer.caller.why, "the managed trader's PID could not be read from PM2 (no daemon)");
  const [alert] = await alerts();
  assert.match(alert!.body, /^Who: an unidentified process\. What: buy 1 BTC\/USD market\. Why: the managed trader's PID could not be read from PM2 \(no daemon\)\. /);
  assert.equal(alert!.key, `order_refused:not_managed_trader:unknown:${T0}`);
});

test('what an alert says of the order: a replacement, a missing size or symbol', async () => {
  const { order, alerts, clock } = gateFor();
  const copy = process.pid;
  await order({ side: 'sell', qty: '2', symbol: 'AAPL', type: 'limit', replaces: 'o-9' }, copy);
  clock.advance(2 * HOUR);
  await order({}, copy);
  const [replacement, bare] = await alerts();
  assert.match(replacement!.body, /What: replacement of order o-9 \(sell 2 AAPL limit\)\./);
  assert.match(bare!.body, /What: order size unknown \(symbol unknown\)\./);
});

test('status: pending orders, refusals in the last hour and since start, by reason', async () => {
  const { gate, clock, order } = gateFor({ maxTradesPerHour: 1 });
  assert.deepEqual(await gate.status(), { mode: 'enforce', pending: 0, refusedLastHour: {}, refusedTotal: {} });
  await order();
  await order();
  await order(BUY, process.pid);
  clock.advance(HOUR - 1);
  await order(BUY, process.pid);
  assert.deepEqual(await gate.status(), { mode: 'enforce', pending: 1, refusedLastHour: { trade_limit: 1, not_managed_trader: 2 }, refusedTotal: { trade_limit: 1, not_managed_trader: 2 } });
  clock.advance(1);
  assert.deepEqual(await gate.status(), { mode: 'enforce', pending: 0, refusedLastHour: { not_managed_trader: 1 }, refusedTotal: { trade_limit: 1, not_managed_trader: 2 } }, 'an hour on: the first refusals left the hour');
  assert.equal(gate.mode, 'enforce');

  // With a model of the trader's book handed in, status says whether the limits read it now.
  const store = new Store(path.join(root, `gate-${++made}`));
  const outbox = new AlertOutbox({ store, clock, logger: silentLogger });
  const withBook = new OrderGate({ store, outbox, clock, logger: silentLogger, maxTradesPerHour: 1, mode: 'observe', processName: 'trading-bot', traderPid: async () => trader.pid, book: new TraderBook() });
  assert.deepEqual(await withBook.status(), { mode: 'observe', pending: 0, refusedLastHour: {}, refusedTotal: {}, bookLive: false }, 'a book not yet followed by the trade stream is not live');
});

test('the oldest order still waiting for its answer, for the bypass watch: answered or older than a minute no longer waits', async () => {
  const { gate, clock, order } = gateFor();
  assert.equal(gate.inFlightSince(), undefined, 'nothing sent');
  const a = await order();
  clock.advance(1000);
  const b = await order();
  assert.equal(gate.inFlightSince(), T0);
  gate.settle(a.ticket!, { accepted: true, orderId: 'a' });
  assert.equal(gate.inFlightSince(), T0 + 1000, 'a answered: b is the oldest waiting');
  clock.set(T0 + 1000 + 60_000);
  assert.equal(gate.inFlightSince(), T0 + 1000, 'sent a minute ago: still waiting');
  clock.advance(1);
  assert.equal(gate.inFlightSince(), undefined, 'longer than any answer can take');
  gate.settle(b.ticket!, { accepted: false });
});

test('the ledger of orders let through: known at once, one line each beside the data file the moment the broker names it, known to a restarted gate', async () => {
  const first = gateFor();
  for (const id of ['a', 'b']) {
    const admitted = await first.order();
    first.gate.settle(admitted.ticket!, { accepted: true, orderId: id });
  }
  const again = await first.order();
  first.gate.settle(again.ticket!, { accepted: true, orderId: 'a' }); // the same id answered twice: recorded once
  assert.equal(first.gate.knows('a'), true, 'known in memory');
  assert.deepEqual(first.store.gate.newest(10), ['a', 'b'], 'recorded at once (a crash right after loses none), each once');
  assert.equal((await first.store.read()).gate, undefined, 'not in the data file: it does not grow with every order');

  const restarted = gateFor({ store: first.store });
  assert.equal(restarted.gate.knows('a'), false, 'not before the ledger is read');
  await restarted.gate.load();
  assert.equal(restarted.gate.knows('a'), true);
  assert.equal(restarted.gate.knows('b'), true);
  const c = await restarted.order();
  restarted.gate.settle(c.ticket!, { accepted: true, orderId: 'c' });
  assert.deepEqual(restarted.store.gate.newest(10), ['a', 'b', 'c']);
  assert.deepEqual(restarted.store.gate.newest(2), ['b', 'c'], 'the newest, when a restarted gate keeps only so many');
});

test('a ledger that cannot be written is logged with what it costs, not thrown', async () => {
  const { gate, store, order, logged } = gateFor();
  store.gate.record = () => {
    throw new Error('no space left on device');
  };
  const admitted = await order();
  gate.settle(admitted.ticket!, { accepted: true, orderId: 'a' });
  assert.equal(gate.knows('a'), true, 'still known to this gate');
  const warned = logged.filter(([level]) => level === 'warn').map(([, m]) => m);
  assert.deepEqual(warned, ['order gate: could not record order a in its ledger (a restarted gate would take its fills for a bypass): no space left on device']);
});
