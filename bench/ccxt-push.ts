// BROKER=ccxt: the crossing trade → alert latency through the exchange's push (ccxt pro's
// watchMyTrades over Kraken's WebSocket v2 executions channel, TRADE_POLL_SECONDS=60 so only the push
// can be the cause) against the poll alone (the push refused by the stand-in, TRADE_POLL_SECONDS=10,
// the default), with the real controller (startController: node-cron jobs, outbox, store, PM2) and
// ccxt's real kraken class at the Kraken stand-in (testkit/kraken-exchange.ts).
//
// Each episode: a fresh stand-in and DATA_DIR, a controller with MAX_TRADES_PER_HOUR=3; three trades,
// then, after a random wait (within one poll period, so the crossing falls anywhere in the poll's
// cycle), the 4th: the crossing trade. Measured from placing it (the stand-in books it at once, in
// this process: the same Date.now) to the trade_rate_exceeded alert reaching a sink.
// CCXT_PUSH_EPISODES (default 10) and CCXT_POLL_EPISODES (default 6) change the counts.
import fs from 'node:fs';
import path from 'node:path';
import { parseConfig } from '../src/config.ts';
import { startController } from '../src/controller.ts';
import { createLogger } from '../src/log.ts';
import type { AlertSink } from '../src/alerts/outbox.ts';
import type { StoredAlert } from '../src/store/schema.ts';
import { startKrakenStandIn } from '../testkit/kraken-exchange.ts';
import { copyTrader, makeTempHome, waitFor } from '../testkit/pm2-home.ts';
import { report } from './stats.ts';
import { cleanUp, track } from './cleanup.ts';

const count = (name: string, fallback: number) => {
  const n = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number ≥ 0`);
  return n;
};
const EPISODES = { push: count('CCXT_PUSH_EPISODES', 10), poll: count('CCXT_POLL_EPISODES', 6) };
const KEY = 'bench-push-key-1d7e';
const SECRET = Buffer.from('bench-push-secret-88b2').toString('base64');
const logger = createLogger({ secrets: [KEY, SECRET], level: 'warn', write: (line) => void (/ ALERT \[/.test(line) || process.stderr.write(`${line}\n`)) });

class StampingSink implements AlertSink {
  readonly name = 'bench';
  alertedAt?: number;
  async deliver(alert: StoredAlert): Promise<void> {
    if (alert.kind === 'trade_rate_exceeded') this.alertedAt ??= Date.now();
  }
}

const home = makeTempHome('tw-bpush-');
track(() => home.cleanup());
const trader = copyTrader(path.resolve('examples/demo-trader.js'), path.join(home.root, 'bot'));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function episode(mode: 'push' | 'poll', index: number): Promise<number> {
  const pollSeconds = mode === 'push' ? 60 : 10;
  const kraken = await startKrakenStandIn({ apiKey: KEY, secret: SECRET, balances: { USD: 100_000 } });
  const closeKraken = track(() => kraken.close());
  if (mode === 'poll') kraken.refusePush(true);
  const dataDir = path.join(home.root, `${mode}-${index}`);
  fs.mkdirSync(dataDir, { recursive: true });
  const env = {
    BROKER: 'ccxt', CCXT_EXCHANGE: 'kraken', CCXT_API_KEY: KEY, CCXT_SECRET: SECRET, CCXT_OPTIONS: kraken.ccxtOptions,
    PM2_HOME: home.pm2Home, DATA_DIR: dataDir, HOME: home.root, TRADING_SCRIPT: trader,
    MAX_TRADES_PER_HOUR: '3', TRADE_POLL_SECONDS: String(pollSeconds), DUPLICATE_SCAN_SECONDS: '60', FOREIGN_TRADING: 'off',
  };
  const sink = new StampingSink();
  const controller = await startController(parseConfig(env), { logger, deliversAlerts: true, sinks: [sink], env: { ...process.env, ...env }, alertDeliveryIntervalMs: 1000 });
  const stopController = track(() => controller.stop());
  if (mode === 'push') await waitFor(() => controller.app.tradeStream?.state().status === 'connected' && kraken.pushListeners > 0, { timeoutMs: 10_000, intervalMs: 10, what: 'the push' });
  else await waitFor(() => kraken.calls('TradesHistory').length > 0, { timeoutMs: 10_000, intervalMs: 10, what: 'the first poll' });
  for (let i = 0; i < 3; i++) kraken.placeOrder('BTC/USD', 'buy', 0.001);
  await sleep(Math.random() * (mode === 'push' ? 1000 : pollSeconds * 1000));
  const crossingAt = Date.now();
  kraken.placeOrder('BTC/USD', 'buy', 0.001);
  await waitFor(() => sink.alertedAt, { timeoutMs: pollSeconds * 1000 + 10_000, intervalMs: 2, what: 'the trade-rate alert' });
  await stopController();
  await closeKraken();
  return sink.alertedAt! - crossingAt;
}

let failed = false;
try {
  const figures = { push: [] as number[], poll: [] as number[] };
  for (const mode of ['push', 'poll'] as const) {
    for (let i = 0; i < EPISODES[mode]; i++) figures[mode].push(await episode(mode, i));
  }
  if (figures.push.length) report(`crossing trade → alert, push, poll 60 s (${figures.push.length})`, 'ms', figures.push, '≤ 1000 ms');
  if (figures.poll.length) report(`crossing trade → alert, poll 10 s alone (${figures.poll.length})`, 'ms', figures.poll, '≤ 1 poll + 1 s');
} catch (error) {
  failed = true;
  console.error(`ccxt push bench failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
} finally {
  await cleanUp();
}
process.exit(failed ? 1 : 0);
