// The long-running controller: one per DATA_DIR (invariant 7), it delivers alerts, runs the watch
// jobs and serves Discord when configured. main.ts runs it in the foreground; the demo embeds it.
import path from 'node:path';
import { buildApp, type App, type BuildOptions } from './app.ts';
import type { Config } from './config.ts';
import { describeError } from './errors.ts';
import { holdFileLock } from './lock.ts';
import { startGateway, type Gateway } from './gateway/gateway.ts';
import { OrderGate } from './gateway/order-gate.ts';
import { scheduleJobs } from './watch/schedule.ts';

export interface Front {
  stop(): Promise<void>;
}

export interface ControllerOptions extends BuildOptions {
  /** Starts a front (Discord) once the app is built; its sink joins the outbox. */
  fronts?: Array<(app: App) => Promise<Front | undefined>>;
  /** Watch cadences default to the config's; the demo and benchmarks may shorten them. */
  alertDeliveryIntervalMs?: number;
}

export interface Controller {
  app: App;
  /** the order gate, when GATEWAY_ADDR is set */
  gateway?: { server: Gateway; gate: OrderGate };
  stop(): Promise<void>;
}

export async function startController(config: Config, options: ControllerOptions): Promise<Controller> {
  const { logger } = options;
  // Two controllers on one data dir would double every alert and race every breaker.
  const releaseSingleton = await holdFileLock(path.join(config.dataDir, 'controller'));
  const app = buildApp(config, { ...options, deliversAlerts: true });
  const fronts: Front[] = [];
  let jobs: { stop(): Promise<void> } | undefined;
  let gateway: Controller['gateway'];
  try {
    gateway = config.gateway ? await startOrderGate(app) : undefined;
    for (const startFront of options.fronts ?? []) {
      const front = await startFront(app);
      if (front) fronts.push(front);
    }
    app.outbox.start(options.alertDeliveryIntervalMs);
    await app.outbox.deliverDue(); // whatever an earlier run left undelivered goes out now
    const { tradeWatch, accountWatch, processWatch } = app;
    jobs = scheduleJobs(
      [
        ...(tradeWatch ? [{ name: 'trade-poll', everySeconds: config.tradePollSeconds, run: () => tradeWatch.poll() }] : []),
        // The figures /bot status shows, so status never waits on the broker.
        ...(accountWatch ? [{ name: 'account-refresh', everySeconds: config.tradePollSeconds, run: () => accountWatch.refresh() }] : []),
        { name: 'process-scan', everySeconds: config.duplicateScanSeconds, run: () => processWatch.scan() },
      ],
      logger,
    );
    // Status has figures from the start, not only after the first tick.
    void accountWatch?.refresh().catch((e: unknown) => logger.debug(`account-refresh: ${describeError(e)}`));
    // After the jobs: the stream's first connect runs a poll at once, as every reconnect does.
    app.startStream();
    if (!app.broker) logger.warn('No broker credentials (APCA_API_KEY_ID / APCA_API_SECRET_KEY): trade-rate watching and flatten are off.');
    logger.info(
      `tradewarden controller watching "${config.trading.processName}" (PM2_HOME ${config.pm2Home}, data ${config.dataDir}); ` +
        `trade stream ${app.tradeStream ? app.tradeStream.url : 'off'}, poll ${config.tradePollSeconds}s, scan ${config.duplicateScanSeconds}s, limit ${config.maxTradesPerHour}/h, on runaway: ${config.onRunaway}, on duplicate: ${config.onDuplicate}, foreign trading: ${config.foreignTrading}`,
    );
  } catch (error) {
    await gateway?.server.close().catch(() => undefined);
    await Promise.allSettled(fronts.map((f) => f.stop()));
    await app.close().catch(() => undefined);
    await releaseSingleton().catch(() => undefined);
    throw error;
  }

  let stopping: Promise<void> | undefined;
  return {
    app,
    gateway,
    stop() {
      stopping ??= (async () => {
        // The gate first: from here on the trader's orders go nowhere (fail closed).
        await gateway?.server.close().catch((e) => logger.warn(`closing the order gate: ${describeError(e)}`));
        await gateway?.gate.alertsRaised(); // its last order_refused is in the outbox before we go
        await jobs?.stop();
        for (const front of fronts) await front.stop().catch((e) => logger.warn(`stopping a front: ${describeError(e)}`));
        await app.close().catch((e) => logger.warn(`closing: ${describeError(e)}`));
        await releaseSingleton().catch(() => undefined);
      })();
      return stopping;
    },
  };
}

/** The order gate (GATEWAY_ADDR): the trader's broker URL points here (ecosystem.config.js). */
async function startOrderGate(app: App): Promise<NonNullable<Controller['gateway']>> {
  const { config, store, outbox, clock, logger, supervisor } = app;
  const settings = config.gateway!;
  const gate = new OrderGate({
    store,
    outbox,
    clock,
    logger,
    maxTradesPerHour: config.maxTradesPerHour,
    mode: settings.mode,
    processName: config.trading.processName,
    traderPid: () => supervisor.traderPid(),
    cancelGraceMs: (config.tradePollSeconds + 5) * 1000,
  });
  const server = await startGateway({ host: settings.host, port: settings.port, upstream: config.broker.baseUrl, gate, logger });
  return { server, gate };
}
