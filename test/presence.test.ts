// The presence line, state by state: what the data file says → what the bot shows. (Sending it on
// change only, rate-limited, is tested through discord.js in discord-review.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { traderPresence } from '../src/discord/presence.ts';
import { emptyStore, type StoreData } from '../src/store/schema.ts';

const NOW = Date.parse('2026-01-05T15:00:00Z');
const trade = (minutesAgo: number, id: string) => ({ orderId: id, symbol: 'AAPL', side: 'buy', qty: 1, price: 1, at: NOW - minutesAgo * 60_000, activityIds: [id] });
const store = (change: (d: StoreData) => void): StoreData => {
  const data = emptyStore();
  change(data);
  return data;
};
const show = (data: StoreData) => {
  const p = traderPresence(data, NOW, 'trading-bot', 3);
  return `${p.status} ${p.text}`;
};

test('presence: running, over the limit, stopped, unmanaged', () => {
  const running = store((d) => {
    d.desired = { state: 'running', at: '', by: 'x' };
    d.trades.seen = [trade(5, 'a'), trade(30, 'b'), trade(70, 'old')];
  });
  assert.equal(show(running), 'online trading-bot online · 2/3 trades this hour');
  running.trades.seen = [...running.trades.seen, trade(1, 'c'), trade(2, 'd')];
  assert.equal(show(running), 'dnd trading-bot online · 4/3 trades this hour OVER LIMIT');
  assert.equal(show(store((d) => (d.desired = { state: 'stopped', at: '', by: 'x' }))), 'idle trading-bot stopped · 0/3 trades this hour');
  assert.equal(show(emptyStore()), 'online trading-bot · 0/3 trades this hour', 'started outside tradewarden: no claim about its state');
});

test('presence: a halt, duplicates and a down trader outrank the trade count', () => {
  const troubled = store((d) => {
    d.desired = { state: 'running', at: '', by: 'x' };
    d.watch.processDown = true;
  });
  assert.equal(show(troubled), 'dnd trading-bot DOWN');
  troubled.watch.duplicates.lastPidSet = '4242';
  assert.equal(show(troubled), 'dnd trading-bot: DUPLICATES running');
  troubled.breaker = { tripped: true, reason: '4 trades' };
  assert.equal(show(troubled), 'dnd HALTED: breaker');
});
