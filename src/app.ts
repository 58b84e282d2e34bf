// Builds the parts from a Config and wires them (the composition shared by the controller, the CLI
// and the demo). Nothing here has behaviour of its own: it is the one place that knows every part.
import { OnDemandBroker } from './broker/on-demand.ts';
import type { Broker } from './broker/types.ts';
import type { CcxtBroker } from './broker/ccxt.ts';
import { systemClock, type Clock } from './clock.ts';
import type { Config } from './config.ts';
import { RunawayBreaker } from './core/breaker.ts';
import { BrokerLock } from './core/broker-lock.ts';
import { Core } from './core/operations.ts';
import { HealthChecks } from './health/checks.ts';
import type { Logger } from './log.ts';
import { AlertOutbox, logSink, type AlertSink } from './alerts/outbox.ts';
import { Store } from './store/store.ts';
import { Supervisor } from './supervisor/supervisor.ts';
import type { Supervision } from './supervisor/types.ts';
import { ProcessWatch, TradeWatch } from './watch/watchdog.ts';
import { ForeignTradingWatch } from './watch/foreign-trading.ts';
import { TradeStreamWatch } from './watch/trade-stream.ts';
import { AccountWatch } from './watch/account-watch.ts';
import { UnattendedWatch } from './watch/unattended.ts';
import { LossWatch } from './watch/loss-watch.ts';
import { CronCalendar } from './watch/cron-calendar.ts';
import { DigestSchedule, logDigestSink } from './watch/digest-schedule.ts';
import { FillFeed } from './watch/fill-feed.ts';
import { digestText } from './render/digest-text.ts';

export interface App {
  config: Config;
  store: Store;
  outbox: AlertOutbox;
  broker?: Broker;
  supervisor: Supervision;
  core: Core;
  breaker: RunawayBreaker;
  /** Absent without broker credentials: there are no fills to count. */
  tradeWatch?: TradeWatch;
  /** The broker's trade stream feeding tradeWatch; built here, started only by the controller. */
  tradeStream?: TradeStreamWatch;
  /** Absent with FOREIGN_TRADING=off or without a broker. */
  foreignTrading?: ForeignTradingWatch;
  /** Keeps the account figures status shows; absent without broker credentials. */
  accountWatch?: AccountWatch;
  /** The broker's own trading switch (BROKER_LOCK, lock/unlock); absent without broker credentials. */
  brokerLock?: BrokerLock;
  processWatch: ProcessWatch;
  /** DIGEST_CRON's schedule, in the process that delivers (the controller starts it); absent when off. */
  digest?: DigestSchedule;
  /** FILL_FEED=on, in the process that delivers, with a broker; the Discord front gives it its channel. */
  fillFeed?: FillFeed;
  /** The controller's checks: watch jobs report into it; health, /healthz and the dead-man's switch read it. */
  health: HealthChecks;
  clock: Clock;
  logger: Logger;
  /** Connects the trade stream (the controller does; a CLI process only reads the data file). */
  startStream(): void;
  close(): Promise<void>;
}

export interface BuildOptions {
  logger: Logger;
  clock?: Clock;
  /** The controller delivers alerts; a CLI process only records them for the controller to deliver. */
  deliversAlerts: boolean;
  /** Extra sinks this process delivers through (the demo console). */
  sinks?: AlertSink[];
  /** Overrides for tests: the environment ecosystem.config.js is evaluated with. */
  env?: NodeJS.ProcessEnv;
  flattenVerifyTimeoutMs?: number;
  /** Grace after a stop before a fill counts as foreign (default FOREIGN_TRADING_GRACE_MS). */
  foreignTradingGraceMs?: number;
  /** A short-lived process (the CLI): PM2 is read without loading its client until a change needs it. */
  lightPm2Reads?: boolean;
  /** The trade stream's first reconnect back-off (tests and the demo shorten it). */
  streamBackoffMs?: number;
  /** The shortest time between two of the stream's reconnect catch-up polls (default 5 s; tests shorten it). */
  streamCatchUpEveryMs?: number;
  /** false: the fill feed posts only when told (tests move a ManualClock and call flushDue). */
  fillFeedAutoFlush?: boolean;
}

/** Names of the sinks every alert is addressed to, whichever process raises it. */
export function alertSinkNames(config: Config): string[] {
  return ['log', ...(config.discord.token && config.discord.alertChannelId ? ['discord'] : [])];
}

export function buildApp(config: Config, options: BuildOptions): App {
  const { logger } = options;
  const clock = options.clock ?? systemClock;
  const store = new Store(config.dataDir);
  const outbox = new AlertOutbox({
    store,
    clock,
    logger,
    sinks: options.deliversAlerts ? [logSink(logger), ...(options.sinks ?? [])] : options.sinks ?? [],
    addressTo: [...alertSinkNames(config), ...(options.sinks ?? []).map((s) => s.name)],
    secrets: config.secrets,
  });
  store.onKeptAside((keptAs, reason) => {
    logger.error(`DATA FILE KEPT ASIDE: ${store.file} was ${reason}; it is kept as ${keptAs} and tradewarden starts with an empty store.`);
    // Raised after the current store operation: the listener runs inside it.
    queueMicrotask(() => {
      void outbox
        .raise({
          kind: 'data_file_kept_aside',
          severity: 'warning',
          key: `kept_aside:${keptAs}`,
          title: 'Data file was corrupt and was kept aside',
          body: `${store.file} was ${reason}. It was renamed to ${keptAs}; audit log, breaker and alert history start empty.`,
          facts: { keptAs, reason },
        })
        .catch((error) => logger.error(`could not raise data_file_kept_aside: ${String(error)}`));
    });
  });
  store.onFillsSkipped((file, lines) => {
    logger.warn(`fills ledger: ${lines} line(s) of ${file} could not be read (a write cut short by a crash is dropped; the lines before it are kept)`);
  });

  const broker = config.ccxt
    ? OnDemandBroker.ccxt({ config: config.ccxt, dataDir: config.dataDir, logger, clock })
    : config.broker.keyId && config.broker.secretKey
      ? OnDemandBroker.alpaca({ baseUrl: config.broker.baseUrl, keyId: config.broker.keyId, secretKey: config.broker.secretKey, logger })
      : undefined;

  const supervisor = new Supervisor({
    pm2Home: config.pm2Home,
    dataDir: config.dataDir,
    processName: config.trading.processName,
    env: options.env,
    logger,
    lightPm2Reads: options.lightPm2Reads,
    // Every start (inside the supervisor's exactly-one guard) asks the breaker first.
    beforeStart: () => breaker.assertClear(),
  });
  // Exchanges have no account switch to lock (config refuses BROKER_LOCK=on with ccxt).
  const brokerLock = broker && !config.ccxt ? new BrokerLock({ broker, store, clock, logger, outbox }) : undefined;
  // It scans and looks through the supervisor; it changes nothing but through the core (haltThrough).
  const breaker = new RunawayBreaker({ config, supervisor, store, outbox, clock, logger, brokerLock });
  const foreignTrading =
    broker && config.foreignTrading === 'alert'
      ? new ForeignTradingWatch({
          store,
          outbox,
          clock,
          processName: config.trading.processName,
          processStatus: () => supervisor.status(),
          graceMs: options.foreignTradingGraceMs,
        })
      : undefined;
  const tradeWatch = broker
    ? new TradeWatch({
        store,
        broker,
        outbox,
        clock,
        processName: config.trading.processName,
        maxTradesPerHour: config.maxTradesPerHour,
        onRunaway: (trades) => breaker.onRunaway(trades),
        onNewTrades: foreignTrading ? (added) => foreignTrading.check(added) : undefined,
      })
    : undefined;
  const ccxt = config.ccxt;
  const streamParts = tradeWatch && { tradeWatch, store, clock, logger, initialBackoffMs: options.streamBackoffMs, catchUpEveryMs: options.streamCatchUpEveryMs };
  const tradeStream =
    streamParts && ccxt && broker
      ? // The exchange's pushed trades where ccxt offers watchMyTrades (else it says so, and the poll alone counts).
        new TradeStreamWatch({
          name: `ccxt ${ccxt.exchange} watchMyTrades`,
          open: async (handlers) => (await import('./broker/ccxt-stream.ts')).openCcxtStream(broker.loaded() as Promise<CcxtBroker>, ccxt.exchange, handlers),
          ...streamParts,
        })
      : streamParts && !ccxt && config.broker.keyId && config.broker.secretKey
        ? new TradeStreamWatch({
            baseUrl: config.broker.baseUrl,
            streamUrl: config.broker.streamUrl,
            keyId: config.broker.keyId,
            secretKey: config.broker.secretKey,
            ...streamParts,
          })
        : undefined;
  // Positions while no copy runs: judged from the scans and the account reads, no cadence of its own.
  const unattended =
    broker && config.unattendedSeconds !== undefined
      ? new UnattendedWatch({ store, outbox, clock, processName: config.trading.processName, afterMs: config.unattendedSeconds * 1000 })
      : undefined;
  // Only the process that started the stream may speak for it (and record it stopped on close).
  let streamStarted = false;
  const lossWatch = broker ? new LossWatch({ config, store, outbox, clock, logger, onLoss: (reason, facts) => breaker.onLoss(reason, facts) }) : undefined;
  // Every account read also says whether the broker's trading switch is on (set here or elsewhere),
  // and is judged against the loss limit.
  const accountWatch = broker
    ? new AccountWatch({
        store,
        broker,
        clock,
        onAccount: async (account, askedAt) => {
          if (account.tradeSuspendedByUser !== undefined) await brokerLock?.observe(account.tradeSuspendedByUser, askedAt);
          await lossWatch?.check(account, askedAt);
        },
        onPositions: unattended ? (positions) => unattended.noteAccount(positions) : undefined,
      })
    : undefined;
  // The loss limit is judged right after each fill too, not only on the poll's cadence.
  if (lossWatch?.enabled && accountWatch) tradeWatch?.observeNewTrades(async () => void accountWatch.refreshSoon());
  const core = new Core({
    config,
    supervisor,
    broker,
    store,
    outbox,
    breaker,
    clock,
    logger,
    flattenVerifyTimeoutMs: options.flattenVerifyTimeoutMs,
    refreshTrades: tradeWatch ? () => tradeWatch.poll() : undefined,
    streamState: () => (streamStarted ? tradeStream?.state() : undefined),
    refreshAccount: accountWatch ? () => accountWatch.refresh() : undefined,
    judgeTrades: tradeWatch ? () => tradeWatch.judge() : undefined,
    brokerLock,
    onTraderStarted: lossWatch ? () => lossWatch.resetPeak() : undefined,
  });
  // The breaker halts through the core's audited stop, duplicate ending and flatten.
  breaker.haltThrough(core);
  // The reports people read without asking go out from the process that delivers alerts.
  const digest =
    options.deliversAlerts && config.digest.cron
      ? new DigestSchedule({ calendar: CronCalendar.of(config.digest.cron, config.digest.timeZone), store, clock, logger, build: (period) => core.digest(period), sinks: [logDigestSink(logger, digestText)] })
      : undefined;
  const fillFeed = options.deliversAlerts && config.fillFeed && tradeWatch ? new FillFeed({ store, clock, logger, autoFlush: options.fillFeedAutoFlush }) : undefined;
  if (fillFeed) tradeWatch?.observeFills((fills) => fillFeed.note(fills));
  const processWatch = new ProcessWatch({
    store,
    supervisor,
    outbox,
    clock,
    processName: config.trading.processName,
    endDuplicates: config.onDuplicate === 'stop' ? (duplicates) => core.endDuplicatesByPolicy(duplicates) : undefined,
    onScan: async (status) => {
      await foreignTrading?.noteScan(status);
      await unattended?.noteScan(status);
    },
  });

  return {
    config,
    store,
    outbox,
    broker,
    supervisor,
    core,
    breaker,
    tradeWatch,
    tradeStream,
    foreignTrading,
    accountWatch,
    brokerLock,
    processWatch,
    digest,
    fillFeed,
    health: new HealthChecks(clock),
    clock,
    logger,
    startStream() {
      if (!tradeStream) return;
      streamStarted = true;
      tradeStream.start();
    },
    async close() {
      await digest?.stop();
      await fillFeed?.stop();
      brokerLock?.stop();
      if (streamStarted) await tradeStream?.stop();
      outbox.stop();
      await supervisor.close();
    },
  };
}
