// `tradewarden doctor` with BROKER=ccxt: its Broker lines read the exchange through ccxt's real
// kraken class at the Kraken stand-in — the keys, the markets, the clock — and name variables, never values.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runDoctor } from '../src/doctor/run.ts';
import { doctorText, type DoctorReport } from '../src/doctor/report.ts';
import { startKrakenStandIn, type KrakenStandIn } from '../testkit/kraken-exchange.ts';
import { makeTempHome, waitFor, type TempHome } from '../testkit/pm2-home.ts';

const KEY = 'doctor-kraken-key-a81f';
const SECRET = Buffer.from('doctor-kraken-secret-4e07').toString('base64');
let kraken: KrakenStandIn;
let home: TempHome;

before(async () => {
  home = makeTempHome('tw-dx-');
  kraken = await startKrakenStandIn({ apiKey: KEY, secret: SECRET, balances: { USD: 5000, BTC: 0.1 } });
});
after(async () => {
  await kraken.close();
  await home.cleanup();
});

const env = (more: Record<string, string> = {}) => ({
  BROKER: 'ccxt',
  CCXT_EXCHANGE: 'kraken',
  CCXT_API_KEY: KEY,
  CCXT_SECRET: SECRET,
  CCXT_OPTIONS: kraken.ccxtOptions,
  PM2_HOME: home.pm2Home,
  DATA_DIR: home.dataDir,
  HOME: home.root,
  ...more,
});

const brokerLines = (report: DoctorReport) => Object.fromEntries(report.checks.filter((c) => c.area === 'Broker').map((c) => [c.name, c]));

test('doctor with BROKER=ccxt: the exchange, the keys (equity in CCXT_QUOTE), the markets and the clock, all green; no equity recorded', async () => {
  const report = await runDoctor({ env: env(), dotenvPath: false });
  const lines = brokerLines(report);
  assert.deepEqual(Object.keys(lines).sort(), ['clock', 'exchange', 'keys', 'markets', 'trade stream'], doctorText(report));
  for (const line of Object.values(lines)) assert.equal(line.status, 'ok', `${line.name}: ${line.detail}`);
  assert.match(lines.exchange!.detail, /^Kraken through ccxt 4\.[\d.]+, at the URLs CCXT_OPTIONS gives \(a proxy or a stand-in\)$/);
  assert.match(lines.keys!.detail, /accepted: equity 10000\.00 USD, cash 5000\.00 USD/);
  assert.match(lines.markets!.detail, /4 markets, 4 against USD; trades read for the whole account at once/);
  assert.match(lines.clock!.detail, /within \d\.\d s of kraken's/);
  assert.match(lines['trade stream']!.detail, /^kraken pushes the account's trades \(ccxt watchMyTrades\): its WebSocket ws:\/\/127\.0\.0\.1:\d+\/v2 opens$/);
  await waitFor(() => kraken.pushConnections === 0, { what: 'doctor to close the WebSocket it opened', intervalMs: 10 });
  assert.deepEqual(fs.readdirSync(home.dataDir).filter((f) => f.startsWith('equity-')), [], 'doctor only looks: no equity record written');
});

test('doctor with BROKER=ccxt: keys the exchange refuses are ✗ naming the variables, never the values; an unknown CCXT_SYMBOLS market is ✗', async () => {
  const wrong = 'wrong-doctor-key-99e1';
  const refused = await runDoctor({ env: env({ CCXT_API_KEY: wrong }), dotenvPath: false });
  const keys = brokerLines(refused).keys!;
  assert.equal(keys.status, 'fail');
  assert.match(keys.detail, /exchange kraken rejected the credentials .*check CCXT_API_KEY and CCXT_SECRET/);
  assert.match(keys.fix ?? '', /put it in CCXT_API_KEY and CCXT_SECRET/);
  assert.equal(brokerLines(refused).clock?.status, 'ok', 'the exchange\'s time is public: read with refused keys too');
  const everything = JSON.stringify(refused) + doctorText(refused);
  for (const secret of [wrong, KEY, SECRET]) assert.ok(!everything.includes(secret), `no key or secret in the report (${secret.slice(0, 6)}…)`);
  assert.equal(refused.ok, false);

  const symbols = await runDoctor({ env: env({ CCXT_SYMBOLS: 'BTC/USD,PEPE/USD' }), dotenvPath: false });
  const markets = brokerLines(symbols).markets!;
  assert.equal(markets.status, 'fail');
  assert.match(markets.detail, /CCXT_SYMBOLS has PEPE\/USD: not a market kraken lists/);
});

test('doctor with BROKER=ccxt: an exchange WebSocket that refuses connections is ✗ on the trade stream line, saying the poll still counts', async () => {
  kraken.refusePush(true);
  try {
    const report = await runDoctor({ env: env(), dotenvPath: false });
    const line = brokerLines(report)['trade stream']!;
    assert.equal(line.status, 'fail', doctorText(report));
    assert.match(line.detail, /^kraken's WebSocket \(watchMyTrades\): .*503.*; the poll still counts/);
    assert.match(line.fix ?? '', /network to the exchange's WebSocket host and the ws URLs in CCXT_OPTIONS/);
    assert.equal(brokerLines(report).keys?.status, 'ok');
  } finally {
    kraken.refusePush(false);
  }
});

test('doctor with BROKER=ccxt and CCXT_SANDBOX=on where ccxt knows no test network: ✗ on the exchange line with the way out', async () => {
  const report = await runDoctor({ env: env({ CCXT_SANDBOX: 'on' }), dotenvPath: false });
  const exchange = brokerLines(report).exchange!;
  assert.equal(exchange.status, 'fail');
  assert.match(exchange.detail, /CCXT_SANDBOX=on: ccxt knows no test network for kraken/);
  assert.ok(path.isAbsolute(home.dataDir), 'a temp DATA_DIR');
});
