// The long-running controller: one per DATA_DIR (invariant 7), it delivers alerts, runs the watch
// jobs and serves Discord when configured. main.ts runs it in the foreground; the demo embeds it.
import { buildApp, type App, type BuildOptions } from './app.ts';
import type { Config } from './config.ts';
import { ControlServer } from './control/socket.ts';
import { OperationError, describeError } from './errors.ts';
import type { Actor } from './core/operations.ts';
import { startGateway, type Gateway } from './gateway/gateway.ts';
import { OrderGate } from './gateway/order-gate.ts';
import { TraderBook } from './gateway/trader-book.ts';
import { STALE_AFTER_INTERVALS } from './health/checks.ts';
import { ControllerLife, reportDowntime } from './health/downtime.ts';
import { exposeHealth, type Exposure } from './health/expose.ts';
import type { ProcessStatus } from './supervisor/types.ts';
import { scheduleJobs, type Job } from './watch/schedule.ts';
import { GateBypassWatch } from './watch/gate-bypass.ts';

export interface Front {
  stop(): Promise<void>;
}

export interface ControllerOptions extends BuildOptions {
  /** Starts a front (Discord) once the app is built; its sink joins the outbox. */
  fronts?: Array<(app: App) => Promise<Front | undefined>>;
  /** Watch cadences default to the config's; the demo and benchmarks may shorten them. */
  alertDeliveryIntervalMs?: number;
  /** How often the heartbeat is written to the data file (default 30 s: each one rewrites the file). */
  heartbeatSeconds?: number;
}

export interface Controller {
  app: App;
  /** the order gate, when GATEWAY_ADDR is set */
  gateway?: { server: Gateway; gate: OrderGate; bypass: GateBypassWatch };
  control: ControlServer;
  exposure: Exposure;
  stop(): Promise<void>;
}

/**
 * What `tradewarden` in a terminal asks a running controller to do rather than doing it itself:
 * `status` (the answer without a PM2 connect of its own), `flatten` (run in the one process that
 * watches the fills, so its closing orders are known as its own the moment the broker names them,
 * and a copy trading meanwhile is judged at once) and `digest` (with the order gate's refusals,
 * which only this process counts). The socket only lets this user in (mode 0600),
 * who could run the same operations from the CLI directly: the terminal's actor is taken as given.
 */
export function serveTerminal(control: ControlServer, app: App): void {
  control.handle('status', () => app.core.status());
  control.handle('flatten', (args) => app.core.flatten(terminalActor(args.actor)));
  control.handle('digest', () => app.core.digest());
}

/** The CLI's actor as the request names it: `cli:<os user>`. */
function terminalActor(value: unknown): Actor {
  const given = value && typeof value === 'object' ? (value as Record<string, unknown>) : {};
  const id = typeof given.id === 'string' ? given.id : '';
  if (!/^cli:[^\s:]{1,64}$/.test(id)) throw new OperationError('usage', 'a terminal request names its actor as {"id": "cli:<user>", "name": "<user>"}');
  return { id, name: typeof given.name === 'string' && given.name ? given.name.slice(0, 64) : id.slice(4), isOperator: true };
}

export async function startController(config: Config, options: ControllerOptions): Promise<Controller> {
  const { logger } = options;
  // Two controllers on one data dir would double every alert and race every breaker. The singleton
  // is a socket the kernel closes when this process dies: a restart right after a crash takes over.
  const control = await ControlServer.listen({ dataDir: config.dataDir, logger });
  const app = buildApp(config, { ...options, deliversAlerts: true });
  const life = new ControllerLife(app.store, app.clock);
  const fronts: Front[] = [];
  let jobs: { stop(): Promise<void> } | undefined;
  let gateway: Controller['gateway'];
  let exposure: Exposure | undefined;
  let firstLook: Promise<{ pollError?: string; scanned: ProcessStatus | { error: string } }> | undefined;
  try {
    const downtime = await life.begin();
    gateway = config.gateway ? await startOrderGate(app) : undefined;
    for (const startFront of options.fronts ?? []) {
      const front = await startFront(app);
      if (front) fronts.push(front);
    }
    app.outbox.start(options.alertDeliveryIntervalMs);
    await app.outbox.deliverDue(); // whatever an earlier run left undelivered goes out now
    const { tradeWatch, accountWatch, processWatch, health } = app;
    let latestScan: ProcessStatus | undefined;
    // Each job reports into the health checks (`tradewarden health`, /healthz, the dead-man's switch).
    const poll: Job | undefined = tradeWatch
      ? health.tracked({ name: 'trade-poll', everySeconds: config.tradePollSeconds, run: () => tradeWatch.poll() }, 'fills from the broker')
      : undefined;
    const scan: Job = health.tracked(
      { name: 'process-scan', everySeconds: config.duplicateScanSeconds, run: async () => (latestScan = await processWatch.scan()) },
      'PM2 and the process scan',
    );
    // A first look now rather than one interval from now: health is fresh from the start, and a
    // restart after a crash can say what happened while nothing watched. Only that report waits
    // for it (a cold PM2 daemon can take seconds to answer); otherwise it runs alongside the start.
    firstLook = (async () => {
      const pollError = poll ? await poll.run().then(() => undefined, (e: unknown) => describeError(e)) : undefined;
      const scanned = await scan.run().then(
        () => latestScan!,
        (e: unknown) => ({ error: describeError(e) }),
      );
      return { pollError, scanned };
    })();
    if (downtime) {
      const { pollError, scanned } = await firstLook;
      await reportDowntime({
        downtime,
        store: app.store,
        clock: app.clock,
        hasBroker: Boolean(app.broker),
        pollError,
        status: scanned,
        limit: config.maxTradesPerHour,
        processName: config.trading.processName,
        raise: (alert) => app.outbox.raise(alert),
      });
      await life.reported();
      logger.warn(`the previous controller (PID ${downtime.previousPid}) did not exit cleanly; last seen ${new Date(downtime.from).toISOString()}`);
    }
    jobs = scheduleJobs(
      [
        ...(poll ? [poll] : []),
        // The figures /bot status shows, so status never waits on the broker.
        ...(accountWatch ? [{ name: 'account-refresh', everySeconds: config.tradePollSeconds, run: () => accountWatch.refresh() }] : []),
        scan,
        // Fills the gate had to wait for an answer on are judged on the poll's cadence.
        ...(gateway ? [{ name: 'gate-bypass', everySeconds: config.tradePollSeconds, run: () => gateway!.bypass.judge() }] : []),
        { name: 'heartbeat', everySeconds: options.heartbeatSeconds ?? 30, run: () => life.heartbeat() },
      ],
      logger,
    );
    // Status has figures from the start, not only after the first tick (the broker lock included:
    // the account read says whether trading is suspended at the broker).
    void accountWatch?.refresh().catch((e: unknown) => logger.debug(`account-refresh: ${describeError(e)}`));
    // A lock the last controller wanted and could not set yet is tried again.
    void app.brokerLock?.resumeRetrying().catch((e: unknown) => logger.warn(`broker lock: ${describeError(e)}`));
    // After the jobs: the stream's first connect runs a poll at once, as every reconnect does.
    app.startStream();
    // A digest due while no controller ran goes out now, marked late; then each at its due time.
    app.digest?.start();
    if (app.tradeStream) watchStreamHealth(app, config.tradePollSeconds);
    exposure = await exposeHealth(app, control, () => latestScan);
    serveTerminal(control, app);
    if (!app.broker) logger.warn('No broker credentials (APCA_API_KEY_ID / APCA_API_SECRET_KEY): trade-rate watching and flatten are off.');
    logger.info(
      `tradewarden controller watching "${config.trading.processName}" (PM2_HOME ${config.pm2Home}, data ${config.dataDir}); ` +
        `trade stream ${app.tradeStream ? app.tradeStream.url : 'off'}, poll ${config.tradePollSeconds}s, scan ${config.duplicateScanSeconds}s, limit ${config.maxTradesPerHour}/h, on runaway: ${config.onRunaway}, on duplicate: ${config.onDuplicate}, foreign trading: ${config.foreignTrading}`,
    );
  } catch (error) {
    await firstLook;
    await gateway?.server.close().catch(() => undefined);
    await jobs?.stop();
    await exposure?.stop();
    await Promise.allSettled(fronts.map((f) => f.stop()));
    await app.close().catch(() => undefined);
    await control.close().catch(() => undefined);
    throw error;
  }

  let stopping: Promise<void> | undefined;
  const exposed = exposure!;
  return {
    app,
    gateway,
    control,
    exposure: exposed,
    stop() {
      stopping ??= (async () => {
        // The gate first: from here on the trader's orders go nowhere (fail closed).
        await gateway?.server.close().catch((e) => logger.warn(`closing the order gate: ${describeError(e)}`));
        await gateway?.gate.alertsRaised(); // its last order_refused is in the outbox before we go
        await firstLook;
        await jobs?.stop();
        // While Discord is still there: the feed's last batch, a digest being posted.
        await app.fillFeed?.stop().catch((e: unknown) => logger.warn(`stopping the fill feed: ${describeError(e)}`));
        await app.digest?.stop();
        await exposed.stop().catch((e) => logger.warn(`stopping health exposure: ${describeError(e)}`));
        for (const front of fronts) await front.stop().catch((e) => logger.warn(`stopping a front: ${describeError(e)}`));
        await app.close().catch((e) => logger.warn(`closing: ${describeError(e)}`));
        // The clean-exit mark: the next start knows nothing was missed.
        await life.end().catch((e) => logger.warn(`recording the clean exit: ${describeError(e)}`));
        await control.close().catch(() => undefined);
      })();
      return stopping;
    },
  };
}

/** The order gate (GATEWAY_ADDR): the trader's broker URL points here (ecosystem.config.js). */
async function startOrderGate(app: App): Promise<NonNullable<Controller['gateway']>> {
  const { config, store, outbox, clock, logger, supervisor } = app;
  const settings = config.gateway!;
  // The limits that read the trader's orders and positions read a model of them, kept by the trade
  // stream (tradewarden's keys: trusted only for the account they trade, see trader-book.ts).
  const readsBook = settings.maxOpenOrders !== undefined || settings.maxPositionNotional !== undefined;
  const book = readsBook && app.tradeStream && app.broker ? new TraderBook({ broker: app.broker, clock, logger }).follow(app.tradeStream, app.accountWatch) : undefined;
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
    limits: settings,
    book,
  });
  const server = await startGateway({ host: settings.host, port: settings.port, upstream: config.broker.baseUrl, dataUrl: config.broker.dataUrl, gate, logger });
  // An order that ends unfilled (IOC, canceled in the dashboard or by flatten, expired, rejected)
  // frees its slot as the stream reports it, not an hour later.
  app.tradeStream?.onOrderEnded((ended) => gate.ended(ended.orderId));
  app.core.useGate(gate);
  await gate.load();
  // A fill of an order that never passed through the gate: the bot (or another) talks to the broker directly.
  const bypass = new GateBypassWatch({ store, outbox, clock, logger, gate, gateUrl: server.url, processName: config.trading.processName, since: clock.now() });
  app.tradeWatch?.observeNewTrades((added) => bypass.note(added));
  return { server, gate, bypass };
}

/**
 * The trade stream in the health checks: down (reconnecting, refused) for longer than three poll
 * intervals is a failing check, as a poll that stopped succeeding would be. The poll still counts
 * meanwhile, so this is a warning that detection is slower, not blind.
 */
function watchStreamHealth(app: App, pollSeconds: number): void {
  const stream = app.tradeStream!;
  const graceMs = STALE_AFTER_INTERVALS * Math.max(30, pollSeconds) * 1000;
  // No stream at all (an exchange without a push) is not a stream down: the metric is left out then.
  app.health.indicator('stream_connected', () => (stream.notOffered() ? undefined : stream.state().status === 'connected'));
  app.health.condition('stream', () => {
    const state = stream.state();
    if (state.status === 'connected' || state.status === 'stopped') return undefined;
    const downMs = app.clock.now() - state.since;
    if (downMs <= graceMs) return undefined;
    return `the trade stream is ${state.refused ? 'refused by the broker' : state.status} since ${new Date(state.since).toISOString()}${state.lastError ? ` (${state.lastError})` : ''}; the poll still counts fills, more slowly`;
  });
}
