// The order gate's bounds and its one real-time cache (src/gateway/order-gate.ts), apart from
// test/order-gate.test.ts because they take seconds: ten thousand refusals, twenty thousand orders,
// two seconds of a cached PM2 answer. A gate that runs for weeks in front of a runaway must keep its
// memory bounded; a trader PM2 no longer names must not stay trusted.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { ManualClock } from '../src/clock.ts';
import { silentLogger } from '../src/log.ts';
import { AlertOutbox } from '../src/alerts/outbox.ts';
import { Store } from '../src/store/store.ts';
import { OrderGate, type Peer } from '../src/gateway/order-gate.ts';
import { killPid } from '../testkit/pm2-home.ts';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-order-gate-long-'));
let trader: ChildProcess;
before(() => {
  trader = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)'], { stdio: 'ignore' });
});
after(async () => {
  await killPid(trader.pid!, 'SIGKILL');
  fs.rmSync(root, { recursive: true, force: true });
});

let made = 0;
function gateFor(maxTradesPerHour: number, traderPid: () => Promise<number | undefined> = async () => trader.pid) {
  const clock = new ManualClock(Date.parse('2026-03-02T14:00:00Z'));
  const store = new Store(path.join(root, `gate-${++made}`));
  const outbox = new AlertOutbox({ store, clock, logger: silentLogger, sinks: [] });
  const gate = new OrderGate({ store, outbox, clock, logger: silentLogger, maxTradesPerHour, mode: 'enforce', processName: 'trading-bot', traderPid });
  const peer = (): Peer => ({ ends: { localAddress: '127.0.0.1', localPort: 1, remoteAddress: '127.0.0.1', remotePort: 1 }, ownerPid: trader.pid! });
  return { gate, peer };
}

test('a trader hammering a closed gate: status counts the last 10,000 refusals of a reason, the total counts them all', async () => {
  const { gate, peer } = gateFor(1);
  assert.equal((await gate.admit(peer(), {})).forward, true);
  for (let i = 0; i < 10_001; i++) await gate.admit(peer(), {});
  const status = await gate.status();
  assert.equal(status.refusedLastHour.trade_limit, 10_000, 'the times kept are bounded');
  assert.equal(status.refusedTotal.trade_limit, 10_001);
});

test('the orders let through are remembered in memory up to the newest 20,000', async () => {
  const { gate, peer } = gateFor(1_000_000);
  for (let i = 0; i <= 20_000; i++) {
    const admitted = await gate.admit(peer(), {});
    gate.settle(admitted.ticket!, { accepted: true, orderId: `f${i}`, ended: true });
  }
  assert.equal(gate.knows('f0'), false, 'the oldest of 20,001 is dropped');
  assert.equal(gate.knows('f1'), true, 'the 20,000 newest are kept');
  assert.equal(gate.knows('f20000'), true);
});

test("the trader's PID is cached for two seconds: a trader PM2 no longer names is refused after that", async () => {
  let pid: number | undefined = trader.pid;
  const { gate, peer } = gateFor(100, async () => pid);
  assert.equal((await gate.admit(peer(), {})).caller.managed, true);
  pid = undefined; // PM2 lost the trader (its daemon died); the process runs on
  assert.equal((await gate.admit(peer(), {})).caller.managed, true, 'within the two seconds the cached PID still answers');
  await sleep(2100); // the cache is of real time (a PM2 answer), not the injected clock
  const after = await gate.admit(peer(), {});
  assert.equal(after.caller.managed, false, 'the cache expired: PM2 asked again');
  assert.equal(after.caller.why, 'the managed trader "trading-bot" is not running under PM2');
});
