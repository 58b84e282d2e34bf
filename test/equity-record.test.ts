// The equity record an exchange's account reads leave (BROKER=ccxt has no portfolio history):
// one point a minute at most, read back after a restart, a torn last line skipped, a long history
// thinned to hourly beyond two days when loaded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { EquityRecord } from '../src/store/equity-record.ts';
import { scratchDir } from '../testkit/scratch.ts';

const T0 = Date.parse('2026-03-01T00:00:00Z');

test('one point a minute at most, kept across a restart, a line torn by a crash skipped; the file is the owner\'s alone', () => {
  const dir = scratchDir('tw-equity-');
  const record = EquityRecord.in(dir, 'kraken');
  record.note(T0, 100);
  record.note(T0 + 30_000, 101); // under a minute: not kept
  record.note(T0 + 60_000, 102);
  assert.deepEqual(record.all().map((p) => p.equity), [100, 102]);
  fs.appendFileSync(record.file, '{"at":17');
  const again = EquityRecord.in(dir, 'kraken');
  assert.deepEqual(again.all(), [{ at: T0, equity: 100 }, { at: T0 + 60_000, equity: 102 }]);
  assert.equal(again.firstFrom(T0 + 1)?.equity, 102);
  again.note(T0 + 120_000, 103); // the next point after the crash is not glued to the torn line
  assert.deepEqual(EquityRecord.in(dir, 'kraken').all().map((p) => p.equity), [100, 102, 103]);
  assert.equal(fs.statSync(record.file).mode & 0o777, 0o600);
  assert.equal(path.basename(record.file), 'equity-kraken.jsonl');
});

test('a long record is thinned when loaded: every point of the last two days, one an hour before that, nothing older than 400 days', () => {
  const dir = scratchDir('tw-equity-');
  const file = EquityRecord.in(dir, 'binance').file;
  const minutes = 5 * 24 * 60; // five days, one a minute: 7200 points
  const lines = [JSON.stringify({ at: T0 - 500 * 86_400_000, equity: 1 })];
  for (let i = 0; i < minutes; i++) lines.push(JSON.stringify({ at: T0 + i * 60_000, equity: 1000 + i }));
  fs.writeFileSync(file, lines.join('\n') + '\n' + '\n'.repeat(3000)); // over the 10,000 lines that make it thin
  const points = EquityRecord.in(dir, 'binance').all();
  const newest = T0 + (minutes - 1) * 60_000;
  const recent = points.filter((p) => p.at >= newest - 2 * 86_400_000);
  const older = points.filter((p) => p.at < newest - 2 * 86_400_000);
  assert.equal(recent.length, 2 * 24 * 60 + 1, 'every minute of the last two days');
  assert.ok(older.length >= 71 && older.length <= 73, `about one an hour for the three days before: ${older.length}`);
  assert.ok(points[0]!.at >= T0, 'the point 500 days old is gone');
  assert.equal(fs.readFileSync(file, 'utf8').trim().split('\n').length, points.length, 'the file is rewritten thinned');
});
