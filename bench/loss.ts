// The loss limit halting a bot that loses money under the trade limit, with the real controller
// (startController: the stream, node-cron jobs, outbox, store, PM2).
//
// Each episode: a fresh paper broker and DATA_DIR; an account of $80,000 cash and 100 AAPL at $200
// (equity $100,000, which is also its last close); MAX_DAILY_LOSS=3%, ON_LOSS=stop; the demo trader
// under PM2 placing a small order every 1.5 s, and a copy of it outside PM2. Then AAPL falls to $160
// (a 4% loss on the day). The controller reads the account on its poll (TRADE_POLL_SECONDS=60, so
// not in time) and right after each fill the stream brings: the trader's next order is what makes it
// look. Measured from the account read that shows the crossing (the first GET /v2/account the broker
// answers after the price move, seen in its request log, polled every 2 ms) to every copy gone from
// the OS process table (target ≤ 2000 ms). LOSS_EPISODES (default 10) changes the count.
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { parseConfig } from '../src/config.ts';
import { startController } from '../src/controller.ts';
import { createLogger } from '../src/log.ts';
import type { Actor } from '../src/core/operations.ts';
import type { AlertSink } from '../src/alerts/outbox.ts';
import type { StoredAlert } from '../src/store/schema.ts';
import { startPaperBroker } from '../testkit/paper-broker.ts';
import { copyTrader, isAlive, killPid, makeTempHome, waitFor } from '../testkit/pm2-home.ts';
import { report } from './stats.ts';
import { cleanUp, track } from './cleanup.ts';

const EPISODES = Number(process.env.LOSS_EPISODES ?? 10);
if (!Number.isInteger(EPISODES) || EPISODES < 1) throw new Error('LOSS_EPISODES must be a whole number ≥ 1');
const KEY_ID = 'PKBENCHLOSS';
const SECRET = 'SKBENCHLOSSSECRET';
const EVERY_SECONDS = '1.5';
const operator: Actor = { id: 'bench', name: 'bench', isOperator: true };
const logger = createLogger({ secrets: [KEY_ID, SECRET], level: 'warn', write: (line) => void (/ ALERT \[/.test(line) || process.stderr.write(`${line}\n`)) });

const home = makeTempHome('tw-bloss-');
track(() => home.cleanup());
const trader = copyTrader(path.resolve('examples/demo-trader.js'), path.join(home.root, 'bot'));

let failed = false;
try {
  const toHalt: number[] = [];
  for (let episode = 0; episode < EPISODES; episode++) {
    const paper = await startPaperBroker({ keyId: KEY_ID, secretKey: SECRET, cash: 80_000, prices: { AAPL: 200, 'BTC/USD': 50_000 } });
    const closePaper = track(() => paper.close());
    paper.seedPosition('AAPL', 100, 200);
    paper.setLastEquity(100_000);
    const dataDir = path.join(home.root, `episode-${episode}`);
    fs.mkdirSync(dataDir, { recursive: true });
    const traderEnv = { APCA_API_BASE_URL: paper.url, APCA_API_KEY_ID: KEY_ID, APCA_API_SECRET_KEY: SECRET, DEMO_ORDER_EVERY_SECONDS: EVERY_SECONDS, DEMO_ORDER_NOTIONAL: '5' };
    const env = {
      ...traderEnv,
      PM2_HOME: home.pm2Home,
      DATA_DIR: dataDir,
      HOME: home.root,
      TRADING_SCRIPT: trader,
      TRADING_KILL_TIMEOUT_MS: '1500',
      MAX_TRADES_PER_HOUR: '1000',
      TRADE_POLL_SECONDS: '60',
      DUPLICATE_SCAN_SECONDS: '60',
      MAX_DAILY_LOSS: '3%',
      ON_LOSS: 'stop',
      FOREIGN_TRADING: 'off',
    };
    Object.assign(process.env, env); // PM2 hands the starting client's environment to the trader
    const arrived: StoredAlert[] = [];
    const sink: AlertSink = { name: 'bench', deliver: async (alert) => void arrived.push(alert) };
    const controller = await startController(parseConfig(env), { logger, deliversAlerts: true, sinks: [sink], env: { ...process.env }, alertDeliveryIntervalMs: 1000 });
    const stopController = track(() => controller.stop());
    await waitFor(() => controller.app.tradeStream?.state().status === 'connected', { timeoutMs: 10_000, intervalMs: 10, what: 'the trade stream' });
    const managed = await controller.app.core.start(operator);
    const outside = spawn(process.execPath, [path.basename(trader), '--every', EVERY_SECONDS], { cwd: path.dirname(trader), env: { ...process.env, ...traderEnv }, detached: true, stdio: 'ignore' });
    const outsidePid = outside.pid!;
    track(async () => {
      if (isAlive(outsidePid)) await killPid(outsidePid, 'SIGKILL');
    });
    outside.unref();
    // Both trade a moment; then the market moves against the account.
    await waitFor(() => paper.snapshot().activities.length >= 2, { timeoutMs: 10_000, intervalMs: 10, what: 'both trading' });
    const readsBefore = paper.requestLog.length;
    paper.setPrice('AAPL', 160);
    const readAt = await waitFor(() => (paper.requestLog.slice(readsBefore).some((r) => r.method === 'GET' && r.path === '/v2/account') ? Date.now() : undefined), { timeoutMs: 10_000, intervalMs: 2, what: 'the account read that shows the loss' });
    await waitFor(() => !isAlive(managed.pid) && !isAlive(outsidePid), { timeoutMs: 30_000, intervalMs: 2, what: 'every copy gone' });
    toHalt.push(Date.now() - readAt);
    await waitFor(() => arrived.find((a) => a.kind === 'breaker_tripped'), { timeoutMs: 10_000, intervalMs: 10, what: 'the breaker alert' });
    if (!arrived.some((a) => a.kind === 'loss_limit')) throw new Error(`episode ${episode}: no loss_limit alert`);
    await stopController();
    await closePaper();
  }
  report(`account read showing the loss → every copy gone (${EPISODES})`, 'ms', toHalt, '≤ 2000 ms');
} catch (error) {
  failed = true;
  console.error(`loss bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
} finally {
  await cleanUp();
}
process.exit(failed ? 1 : 0);
