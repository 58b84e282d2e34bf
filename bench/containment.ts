// Containing the incident through the trade stream, with the real controller (startController: the
// stream, node-cron jobs, outbox, store, PM2). The poll is at 60 s, so only the stream can be the
// cause of a sub-second alert.
//
// Each episode: a fresh paper broker and DATA_DIR, a controller with ON_RUNAWAY=stop and
// MAX_TRADES_PER_HOUR=3, and two copies of the demo trader each placing an order every 1.5 s — one
// under PM2 (started with core.start) and one outside it (`nohup node bot.js &`). Measured from the
// broker's transaction time of the fill that crosses the limit (the 4th order):
//   - to the trade_rate_exceeded alert reaching a sink       (target ≤ 1000 ms)
//   - to every copy gone from the OS process table            (target ≤ 2000 ms)
//   - to the account locked at the broker (BROKER_LOCK=on: the broker handling the PATCH of
//     suspend_trade, polled in its request log every 2 ms)    (target ≤ 1000 ms)
// Both copies are polled for life every 2 ms from the crossing; the alert's arrival is stamped with
// Date.now() in the sink (the broker's clock is the same Date.now in this process).
// CONTAINMENT_EPISODES (default 20) changes the count. The last episode's summary is printed as the
// demo prints it.
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { parseConfig } from '../src/config.ts';
import { startController } from '../src/controller.ts';
import { createLogger } from '../src/log.ts';
import type { Actor } from '../src/core/operations.ts';
import type { AlertSink } from '../src/alerts/outbox.ts';
import type { AlertKind, StoredAlert } from '../src/store/schema.ts';
import { incidentText, summarizeIncident, type IncidentSummary } from '../src/demo/incident.ts';
import { startPaperBroker } from '../testkit/paper-broker.ts';
import { copyTrader, isAlive, killPid, makeTempHome, waitFor } from '../testkit/pm2-home.ts';
import { report } from './stats.ts';
import { cleanUp, track } from './cleanup.ts';

const EPISODES = Number(process.env.CONTAINMENT_EPISODES ?? 20);
if (!Number.isInteger(EPISODES) || EPISODES < 1) throw new Error('CONTAINMENT_EPISODES must be a whole number ≥ 1');
const KEY_ID = 'PKBENCHCONTAIN';
const SECRET = 'SKBENCHCONTAINSECRET';
const EVERY_SECONDS = '1.5';
const operator: Actor = { id: 'bench', name: 'bench', isOperator: true };
const logger = createLogger({
  secrets: [KEY_ID, SECRET],
  level: 'warn',
  write: (line) => void (/ ALERT \[/.test(line) || process.stderr.write(`${line}\n`)),
});

class StampingSink implements AlertSink {
  readonly name = 'bench';
  readonly arrived = new Map<AlertKind, number>();
  async deliver(alert: StoredAlert): Promise<void> {
    if (!this.arrived.has(alert.kind)) this.arrived.set(alert.kind, Date.now());
  }
}

const home = makeTempHome('tw-bcon-');
track(() => home.cleanup());
const trader = copyTrader(path.resolve('examples/demo-trader.js'), path.join(home.root, 'bot'));

let failed = false;
try {
  const toAlert: number[] = [];
  const toHalt: number[] = [];
  const toLock: number[] = [];
  const trades: number[] = [];
  let last: IncidentSummary | undefined;
  for (let episode = 0; episode < EPISODES; episode++) {
    const paper = await startPaperBroker({ keyId: KEY_ID, secretKey: SECRET, prices: { 'BTC/USD': 50_000 } });
    const closePaper = track(() => paper.close());
    const dataDir = path.join(home.root, `episode-${episode}`);
    fs.mkdirSync(dataDir, { recursive: true });
    const traderEnv = {
      APCA_API_BASE_URL: paper.url,
      APCA_API_KEY_ID: KEY_ID,
      APCA_API_SECRET_KEY: SECRET,
      DEMO_ORDER_EVERY_SECONDS: EVERY_SECONDS,
      DEMO_ORDER_NOTIONAL: '5',
    };
    const env = {
      ...traderEnv,
      PM2_HOME: home.pm2Home,
      DATA_DIR: dataDir,
      HOME: home.root,
      TRADING_SCRIPT: trader,
      TRADING_KILL_TIMEOUT_MS: '1500',
      MAX_TRADES_PER_HOUR: '3',
      TRADE_POLL_SECONDS: '60',
      DUPLICATE_SCAN_SECONDS: '60',
      ON_RUNAWAY: 'stop',
      BROKER_LOCK: 'on',
      FOREIGN_TRADING: 'off',
    };
    // PM2 hands the starting client's environment to the trader.
    Object.assign(process.env, env);
    const sink = new StampingSink();
    const controller = await startController(parseConfig(env), { logger, deliversAlerts: true, sinks: [sink], env: { ...process.env }, alertDeliveryIntervalMs: 1000 });
    const stopController = track(() => controller.stop());
    await waitFor(() => controller.app.tradeStream?.state().status === 'connected', { timeoutMs: 10_000, intervalMs: 10, what: 'the trade stream' });

    const managed = await controller.app.core.start(operator);
    const outside = spawn(process.execPath, [path.basename(trader), '--every', EVERY_SECONDS], {
      cwd: path.dirname(trader),
      env: { ...process.env, ...traderEnv },
      detached: true,
      stdio: 'ignore',
    });
    const outsidePid = outside.pid!;
    track(async () => {
      if (isAlive(outsidePid)) await killPid(outsidePid, 'SIGKILL');
    });
    outside.unref();

    // The crossing fill is the 4th order at the broker; wait for it, then for both copies to be gone.
    const crossingAt = await waitFor(
      () => {
        const firstFill = new Map<string, number>();
        for (const a of paper.snapshot().activities) {
          const at = Date.parse(String(a.transaction_time));
          firstFill.set(String(a.order_id), Math.min(at, firstFill.get(String(a.order_id)) ?? Infinity));
        }
        return [...firstFill.values()].sort((a, b) => a - b)[3];
      },
      { timeoutMs: 30_000, intervalMs: 2, what: 'the crossing fill' },
    );
    const lockedAt = waitFor(
      () => (paper.requestLog.some((r) => r.method === 'PATCH' && r.path === '/v2/account/configurations' && r.status === 200) ? Date.now() : undefined),
      { timeoutMs: 30_000, intervalMs: 2, what: 'the account locked at the broker' },
    );
    await waitFor(() => !isAlive(managed.pid) && !isAlive(outsidePid), { timeoutMs: 30_000, intervalMs: 2, what: 'every copy gone' });
    const goneAt = Date.now();
    toLock.push((await lockedAt) - crossingAt);
    await waitFor(() => sink.arrived.get('breaker_tripped'), { timeoutMs: 10_000, intervalMs: 10, what: 'the breaker alert' });
    toAlert.push(sink.arrived.get('trade_rate_exceeded')! - crossingAt);
    toHalt.push(goneAt - crossingAt);
    const fills = paper.snapshot().activities.map((a) => ({ orderId: String(a.order_id), at: Date.parse(String(a.transaction_time)) }));
    last = summarizeIncident(await controller.app.store.read(), fills, 3);
    trades.push(last.trades);
    if (last.ended.length !== 2 || last.survivors) throw new Error(`episode ${episode}: the breaker ended ${last.ended.length} copies, ${last.survivors} survived`);

    await stopController();
    await closePaper();
  }
  report(`crossing fill → alert, stream, poll 60 s (${EPISODES})`, 'ms', toAlert, '≤ 1000 ms');
  report(`crossing fill → every copy gone (${EPISODES})`, 'ms', toHalt, '≤ 2000 ms');
  report(`crossing fill → account locked at the broker, BROKER_LOCK=on (${EPISODES})`, 'ms', toLock, '≤ 1000 ms');
  report(`trades made per episode, 2 copies every ${EVERY_SECONDS} s`, '', trades, '—');
  if (last) console.log(`\nLast episode (two copies, each an order every ${EVERY_SECONDS} s):\n${incidentText(last)}`);
} catch (error) {
  failed = true;
  console.error(`containment bench failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
} finally {
  await cleanUp();
}
process.exit(failed ? 1 : 0);
