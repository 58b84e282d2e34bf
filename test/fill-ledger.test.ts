// The fills ledger (issue 20): trades kept beside the data file, by the hour, appended and read by
// range. Crash safety (a torn last line), retention, the migration from a data file written by the
// version before it, a second process's appends, and the count's exactness under a burst that the
// stream and the poll both deliver.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Store } from '../src/store/store.ts';
import { FILLS_DIR } from '../src/store/fill-ledger.ts';
import { RETENTION, SCHEMA_VERSION, type SeenTrade } from '../src/store/schema.ts';
import { countedTrades } from '../src/watch/trade-window.ts';
import type { Fill } from '../src/broker/types.ts';
import { fill } from '../testkit/fills.ts';
import { scratchDir } from '../testkit/scratch.ts';
import { startPaperBroker, type PaperBroker } from '../testkit/paper-broker.ts';
import { makeTempHome, waitFor, type TempHome } from '../testkit/pm2-home.ts';
import { streamingApp } from './helpers/stream-app.ts';

const HOUR = 3600_000;
const T0 = Date.parse('2026-12-07T10:00:00Z');

const record = (store: Store, fills: Fill[]) => store.update((data) => store.recordFills(data, fills));
const ledgerFiles = (dir: string) => fs.readdirSync(path.join(dir, FILLS_DIR)).sort();
const ids = (trades: readonly SeenTrade[]) => trades.map((t) => t.orderId);

test('fills are appended to the hour file of their trade; the data file holds no trade', async () => {
  const dir = scratchDir('tw-ledger-');
  const store = new Store(dir);
  await store.update((data) => {
    store.recordFills(data, [fill('a', 'AAPL', 'buy', 1, 200, T0 + 60_000), fill('b', 'AAPL', 'sell', 1, 201, T0 + HOUR + 60_000)]);
    data.trades.cursor = new Date(T0 + HOUR + 60_000).toISOString(); // as the poll does
  });
  assert.deepEqual(ledgerFiles(dir), ['2026-12-07T10.jsonl', '2026-12-07T11.jsonl']);
  const doc = JSON.parse(fs.readFileSync(store.file, 'utf8'));
  assert.equal(doc.trades.seen, undefined, 'no trade in the data file');
  assert.equal(doc.schemaVersion, SCHEMA_VERSION);
  assert.equal(fs.statSync(path.join(dir, FILLS_DIR)).mode & 0o777, 0o700, 'the ledger folder is owner-only');
  assert.equal(fs.statSync(path.join(dir, FILLS_DIR, '2026-12-07T10.jsonl')).mode & 0o777, 0o600, 'its files too');
  assert.deepEqual(ids((await new Store(dir).read()).trades.seen), ['a', 'b'], 'another process reads them back');
});

test('a torn last line (a crash mid-append) is dropped, never the file: readers skip it, the next write cuts it off', async () => {
  const dir = scratchDir('tw-ledger-');
  const store = new Store(dir);
  await record(store, [fill('a', 'AAPL', 'buy', 1, 200, T0), fill('b', 'AAPL', 'buy', 1, 200, T0 + 1000)]);
  const file = path.join(dir, FILLS_DIR, '2026-12-07T10.jsonl');
  fs.appendFileSync(file, '{"orderId":"torn","symbol":"AAPL","si');

  const skipped: string[] = [];
  const reader = new Store(dir);
  reader.onFillsSkipped((f, lines) => skipped.push(`${path.basename(f)}:${lines}`));
  assert.deepEqual(ids((await reader.read()).trades.seen), ['a', 'b'], 'the whole lines are read');
  assert.ok(fs.readFileSync(file, 'utf8').endsWith('"si'), 'a reader changes nothing');

  await record(reader, [fill('c', 'AAPL', 'buy', 1, 200, T0 + 2000)]);
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  assert.equal(lines.at(-1), '', 'the file ends on a whole line');
  assert.deepEqual(lines.slice(0, -1).map((l) => JSON.parse(l).orderId), ['a', 'b', 'c'], 'the fragment is gone, every whole line kept');
  assert.deepEqual(skipped, ['2026-12-07T10.jsonl:1'], 'told once');
  assert.deepEqual(ids((await new Store(dir).read()).trades.seen), ['a', 'b', 'c']);
});

test('a line that is not a trade in the middle of a file is skipped, the rest read', async () => {
  const dir = scratchDir('tw-ledger-');
  const store = new Store(dir);
  await record(store, [fill('a', 'AAPL', 'buy', 1, 200, T0)]);
  fs.appendFileSync(path.join(dir, FILLS_DIR, '2026-12-07T10.jsonl'), 'not json\n{"x":1}\n');
  await record(store, [fill('b', 'AAPL', 'buy', 1, 200, T0 + 1000)]);
  assert.deepEqual(ids((await new Store(dir).read()).trades.seen), ['a', 'b']);
});

test('retention: hour files wholly older than the newest trade minus retention are deleted; ranges stop there too', async () => {
  const dir = scratchDir('tw-ledger-');
  const store = new Store(dir);
  const retentionHours = RETENTION.tradeAgeMs / HOUR;
  await record(store, [fill('old', 'AAPL', 'buy', 1, 200, T0), fill('kept', 'AAPL', 'buy', 1, 200, T0 + 2 * HOUR)]);
  await record(store, [fill('new', 'AAPL', 'buy', 1, 200, T0 + (retentionHours + 1) * HOUR + 60_000)]);
  assert.deepEqual(ledgerFiles(dir), ['2026-12-07T12.jsonl', '2026-12-09T11.jsonl'], 'the 10:00 file is gone, 12:00 is within retention');
  assert.deepEqual(ids(store.trades(0, Infinity)), ['kept', 'new']);
  assert.deepEqual(ids((await store.read()).trades.seen), ['new'], 'in memory: only the hot hours');
  assert.deepEqual(ids(store.latestTrades(5)), ['new', 'kept'], 'the newest first, read back past the hot hours');
});

test('ranges and the hot hours give the same trades as a plain filter over every trade', async () => {
  const dir = scratchDir('tw-ledger-');
  const store = new Store(dir);
  const fills = Array.from({ length: 300 }, (_, i) => fill(`o${i}`, i % 2 ? 'AAPL' : 'BTC/USD', i % 3 ? 'buy' : 'sell', 1, 100, T0 + i * 7 * 60_000));
  for (let i = 0; i < fills.length; i += 50) await record(store, fills.slice(i, i + 50));
  const all = fills.map((f) => f.orderId);
  const at = (id: string) => fills.find((f) => f.orderId === id)!.at;
  for (const [from, to] of [[0, Infinity], [T0 + 3 * HOUR, T0 + 9 * HOUR + 1], [T0 + 30 * HOUR, T0 + 34 * HOUR], [T0 + 34 * HOUR + 59 * 60_000, T0 + 36 * HOUR]]) {
    assert.deepEqual(ids(store.trades(from, to)), all.filter((id) => at(id) > from && at(id) <= to), `range ${from - T0}..${to - T0}`);
  }
  const newest = fills.at(-1)!.at;
  assert.deepEqual(ids((await new Store(dir).read()).trades.seen), all.filter((id) => at(id) >= newest - 2 * HOUR), 'the hot hours, in a fresh process');
});

test('fills recorded out of time order (the poll catching up behind the stream) are counted in their place by the rolling hour', async () => {
  const dir = scratchDir('tw-ledger-');
  const store = new Store(dir);
  const minutes = [50, 10, 30, 55, 5, 61, 20, 1, 45, 59, 31];
  for (const m of minutes) await record(store, [fill(`m${m}`, 'AAPL', 'buy', 1, 200, T0 + m * 60_000)]);
  // A later part of m55 reported with an earlier time: the trade moves to its first fill's time.
  await record(store, [{ id: 'm55-early', orderId: 'm55', symbol: 'AAPL', side: 'buy', qty: 1, price: 200, at: T0 + 2 * 60_000, type: 'partial_fill', cumQty: 2 }]);
  const times = minutes.map((m) => (m === 55 ? 2 : m));
  for (const data of [await store.read(), await new Store(dir).read()]) {
    assert.deepEqual(data.trades.seen.map((t) => t.at), [...data.trades.seen.map((t) => t.at)].sort((a, b) => a - b), 'the view is in time order');
    for (const nowMinute of [30, 45, 60, 62, 75, 95, 120]) {
      const now = T0 + nowMinute * 60_000;
      const expected = times.filter((m) => m > nowMinute - 60 && m <= nowMinute).length;
      assert.equal(countedTrades(data, now).length, expected, `the hour ending at minute ${nowMinute}`);
      // After a resume, from its very millisecond on (a fill at minute 20 came with the new run).
      const resumed = { ...data, breaker: { tripped: false, resumedAt: T0 + 20 * 60_000 } };
      assert.equal(countedTrades(resumed, now).length, times.filter((m) => m >= 20 && m > nowMinute - 60 && m <= nowMinute).length, `since the resume, hour ending ${nowMinute}`);
    }
  }
});

test('partial fills: one trade however the parts arrive; a late part of an order no longer hot joins its trade', async () => {
  const dir = scratchDir('tw-ledger-');
  const store = new Store(dir);
  const part = (id: string, qty: number, cumQty: number, at: number): Fill => ({ id, orderId: 'long-lived', symbol: 'AAPL', side: 'buy', qty, price: 200, at, type: 'partial_fill', cumQty });
  await record(store, [part('p1', 1, 1, T0)]);
  await record(store, [fill('later', 'AAPL', 'buy', 1, 200, T0 + 5 * HOUR)]); // long-lived leaves the hot hours
  assert.deepEqual(ids((await store.read()).trades.seen), ['later']);
  const added: string[] = [];
  await store.update((data) => added.push(...ids(store.recordFills(data, [part('p2', 2, 3, T0 + 5 * HOUR + 1000)]))));
  assert.deepEqual(added, [], 'not a new trade');
  const [trade] = store.trades(T0 - 1, T0 + 1);
  assert.deepEqual([trade?.qty, trade?.at, trade?.activityIds], [3, T0, ['p1', 'p2']], 'the trade keeps its first fill\'s time and has both parts');
  assert.equal(countedTrades(await new Store(dir).read(), T0 + 5 * HOUR + 2000).length, 1, 'the hour counts the one new trade only');
});

test('trades without a cumulative quantity (ccxt\'s): a later trade of an order no longer hot joins its trade; a new order is a new trade', async () => {
  const dir = scratchDir('tw-ledger-');
  const store = new Store(dir);
  const trade = (id: string, orderId: string, qty: number, at: number): Fill => ({ id, orderId, symbol: 'BTC/USD', side: 'buy', qty, price: 50_000, at, type: 'fill' });
  await record(store, [trade('t1', 'resting', 0.1, T0)]);
  await record(store, [trade('t2', 'other', 0.2, T0 + 5 * HOUR)]); // 'resting' leaves the hot hours
  const added: string[] = [];
  await store.update((data) => added.push(...ids(store.recordFills(data, [trade('t3', 'resting', 0.3, T0 + 5 * HOUR + 1000), trade('t4', 'new', 0.4, T0 + 5 * HOUR + 2000)]))));
  assert.deepEqual(added, ['new'], 'the resting order\'s second trade is not a new trade; the new order\'s is');
  const [resting] = store.trades(T0 - 1, T0 + 1);
  assert.deepEqual([resting?.qty, resting?.activityIds], [0.1 + 0.3, ['t1', 't3']]);
  assert.equal(countedTrades(await new Store(dir).read(), T0 + 5 * HOUR + 3000).length, 2, 'the hour counts other and new');
});

test('two processes: what one appends, the other reads on its next look; a fill both record counts once', async () => {
  const dir = scratchDir('tw-ledger-');
  const first = new Store(dir);
  const second = new Store(dir);
  await record(first, [fill('a', 'AAPL', 'buy', 1, 200, T0)]);
  assert.deepEqual(ids((await second.read()).trades.seen), ['a']);
  await record(second, [fill('a', 'AAPL', 'buy', 1, 200, T0), fill('b', 'AAPL', 'buy', 1, 200, T0 + 1)]);
  assert.deepEqual(ids((await first.read()).trades.seen), ['a', 'b'], 'the first sees the second\'s append, the repeated fill once');
  assert.equal(fs.readFileSync(path.join(dir, FILLS_DIR, '2026-12-07T10.jsonl'), 'utf8').split('\n').filter(Boolean).length, 2, 'a fill seen before is not written again');
});

test('trades.seen is the ledger\'s view: replacing it or pushing into it inside update is an error, not a silent loss', async () => {
  const store = new Store(scratchDir('tw-ledger-'));
  await assert.rejects(
    store.update((data) => {
      data.trades.seen = [];
    }),
    /record fills with Store\.recordFills/,
  );
  await assert.rejects(
    store.update((data) => {
      (data.trades.seen as SeenTrade[]).push({ orderId: 'x', symbol: 'AAPL', side: 'buy', qty: 1, price: 1, at: T0, activityIds: ['x'] });
    }),
    /record fills with Store\.recordFills/,
    'a trade pushed into the view',
  );
  assert.deepEqual((await store.read()).trades.seen, [], 'and the view handed out next is the ledger\'s, not the changed one');
});

test('migration: a data file written by the version before the ledgers keeps every trade and every order the gate let through, moved once', async () => {
  const dir = scratchDir('tw-ledger-');
  const fixture = path.resolve('test/fixtures/data-v1/tradewarden.json');
  const before = JSON.parse(fs.readFileSync(fixture, 'utf8'));
  assert.equal(before.schemaVersion, 1);
  // The gate's ledger as version 1 kept it in the data file (the fixture's controller ran no gate).
  before.gate = { forwarded: [{ orderId: 'gated-1', at: T0 }, { orderId: 'gated-2', at: T0 + 1000 }] };
  fs.writeFileSync(path.join(dir, 'tradewarden.json'), JSON.stringify(before, null, 2));
  const original: SeenTrade[] = before.trades.seen;

  const store = new Store(dir);
  const data = await store.read();
  const newest = Math.max(...original.map((t) => t.at));
  assert.deepEqual(ids(data.trades.seen), ids(original.filter((t) => t.at >= newest - 2 * HOUR)), 'the hot hours at once');
  assert.deepEqual(store.trades(0, Infinity), original, 'every trade, as it was (the two-part order with both parts)');
  assert.deepEqual(data.trades.ownOrders, before.trades.ownOrders, 'the rest of the document as it was');
  assert.deepEqual([data.desired, data.audit, data.trades.cursor], [before.desired, before.audit, before.trades.cursor]);

  assert.deepEqual(store.gate.newest(10), ['gated-1', 'gated-2'], 'the gate\'s orders, in their own ledger');
  const after = JSON.parse(fs.readFileSync(store.file, 'utf8'));
  assert.equal(after.trades.seen, undefined, 'the trades left the data file');
  assert.equal(after.gate, undefined, 'and the gate\'s orders');
  assert.equal(after.schemaVersion, SCHEMA_VERSION);
  const lines = () => ledgerFiles(dir).reduce((n, f) => n + fs.readFileSync(path.join(dir, FILLS_DIR, f), 'utf8').split('\n').filter(Boolean).length, 0);
  const written = lines();
  assert.equal(written, original.length, 'one line per trade');
  await new Store(dir).read();
  assert.equal(lines(), written, 'migrated once');
  assert.deepEqual(new Store(dir).gate.newest(10), ['gated-1', 'gated-2'], 'the gate\'s too');
});

test('a full DATA_DIR: recording fails as a whole (the fills and the cursor with them), and the same fills recorded once space is back count once', async (t) => {
  const mount = scratchDir('tw-ledger-full-');
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mount], { encoding: 'utf8' });
  if (mounted.status !== 0) {
    t.skip(`cannot mount a 256 kB tmpfs here (${mounted.error?.message ?? (mounted.stderr?.trim().split('\n')[0] || `exit status ${mounted.status}`)}): needs root`);
    return;
  }
  try {
    const store = new Store(mount);
    const fills = (from: number, n: number) => Array.from({ length: n }, (_, i) => fill(`full-${from + i}`, 'AAPL', 'buy', 1, 200, T0 + (from + i) * 1000));
    const recordWithCursor = (batch: Fill[]) =>
      store.update((data) => {
        store.recordFills(data, batch);
        data.trades.cursor = new Date(batch.at(-1)!.at).toISOString();
      });
    await recordWithCursor(fills(0, 5));
    const filler = path.join(mount, 'filler');
    assert.throws(() => fs.writeFileSync(filler, Buffer.alloc(512 * 1024, 'x')), /ENOSPC/);
    // Fills big enough that their lines cannot fit: the append fails, maybe half-written.
    const next = fills(5, 400);
    await assert.rejects(recordWithCursor(next), /ENOSPC|no space/i, 'the disk is full: the recording fails, loudly');
    assert.equal((await new Store(mount).read()).trades.cursor, new Date(T0 + 4000).toISOString(), 'the cursor did not move: the poll asks for these fills again');

    fs.rmSync(filler);
    await recordWithCursor(next);
    const kept = new Store(mount).trades(0, Infinity);
    assert.equal(kept.length, 405, 'every fill once: none lost, none doubled by the half-written try');
    assert.equal(new Set(kept.map((k) => k.orderId)).size, 405);
    const file = path.join(mount, FILLS_DIR, '2026-12-07T10.jsonl');
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    assert.equal(lines.at(-1), '', 'the file ends on a whole line');
    assert.ok(lines.slice(0, -1).every((l) => { try { return Boolean(JSON.parse(l)); } catch { return false; } }), 'no torn line left in the middle');
  } finally {
    spawnSync('umount', ['-l', mount]);
  }
});

// ---- a burst that the stream and the poll both deliver ----

let home: TempHome;
let paper: PaperBroker;
before(async () => {
  home = makeTempHome('tw-ledger-');
  paper = await startPaperBroker({ keyId: 'PKLEDGER', secretKey: 'SKLEDGER', prices: { AAPL: 200 } });
});
after(async () => {
  await home.cleanup();
  await paper.close();
});

test('a burst of 300 orders in 2 to 3 parts, pushed by the stream and read again by the poll: each trade counted once, with its whole quantity', async () => {
  const dataDir = scratchDir('tw-ledger-burst-');
  const env = { APCA_API_BASE_URL: paper.url, APCA_API_KEY_ID: 'PKLEDGER', APCA_API_SECRET_KEY: 'SKLEDGER', DATA_DIR: dataDir, PM2_HOME: home.pm2Home, MAX_TRADES_PER_HOUR: '10000' };
  const { app } = await streamingApp(paper, env);
  try {
    const newTrades: string[] = [];
    let filledQty = 0;
    app.tradeWatch!.observeNewTrades(async (added) => void newTrades.push(...ids(added)));
    app.tradeWatch!.observeFills((fills) => (filledQty += fills.reduce((sum, f) => sum + f.qty, 0)));
    const orders = Array.from({ length: 300 }, (_, i) => paper.placeOrder({ symbol: 'AAPL', side: i % 2 ? 'sell' : 'buy', qty: 6, type: 'market', time_in_force: 'day' }, { partialFills: 2 + (i % 2) }));
    const polls = [app.tradeWatch!.poll(), app.tradeWatch!.poll()];
    await Promise.all(polls);
    await waitFor(async () => (await app.store.read()).trades.seen.length === 300, { what: '300 trades recorded', intervalMs: 20 });
    await app.tradeWatch!.poll();
    const data = await new Store(dataDir).read();
    assert.equal(countedTrades(data, Date.now()).length, 300, 'the hour counts 300');
    assert.deepEqual(new Set(data.trades.seen.map((t) => t.qty)), new Set([6]), 'each trade has its whole quantity, whichever of the two reported each part');
    assert.deepEqual(ids(data.trades.seen).sort(), orders.map((o) => String(o.id)).sort(), 'the orders placed, each once');
    assert.equal(newTrades.length, 300, 'each told as a new trade once (foreign trading, the gate\'s bypass check)');
    assert.equal(filledQty, 300 * 6, 'each part told to the fill feed once');
  } finally {
    await app.close();
  }
});
