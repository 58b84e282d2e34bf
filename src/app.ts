// Builds the parts from a Config and wires them (the composition shared by the controller, the CLI
// and the demo). Nothing here has behaviour of its own: it is the one place that knows every part.
import { AlpacaBroker } from './broker/alpaca.ts';
import type { Broker } from './broker/types.ts';
import { systemClock, type Clock } from './clock.ts';
import type { Config } from './config.ts';
import { Core } from './core/operations.ts';
import { HealthChecks } from './health/checks.ts';
import type { Logger } from './log.ts';
import { AlertOutbox, logSink, type AlertSink } from './alerts/outbox.ts';
import { Store } from './store/store.ts';
import { Supervisor } from './supervisor/supervisor.ts';
import type { Supervision } from './supervisor/types.ts';
import { ProcessWatch, TradeWatch } from './watch/watchdog.ts';

export interface App {
  config: Config;
  store: Store;
  outbox: AlertOutbox;
  broker?: Broker;
  supervisor: Supervision;
  core: Core;
  /** Absent without broker credentials: there are no fills to count. */
  tradeWatch?: TradeWatch;
  processWatch: ProcessWatch;
  /** The controller's checks: watch jobs report into it; health, /healthz and the dead-man's switch read it. */
  health: HealthChecks;
  clock: Clock;
  logger: Logger;
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

  const broker =
    config.broker.keyId && config.broker.secretKey
      ? new AlpacaBroker({ baseUrl: config.broker.baseUrl, keyId: config.broker.keyId, secretKey: config.broker.secretKey, logger })
      : undefined;

  // The supervisor asks the core whether the breaker allows a start, inside its exactly-one guard.
  let core: Core | undefined;
  const supervisor = new Supervisor({
    pm2Home: config.pm2Home,
    dataDir: config.dataDir,
    processName: config.trading.processName,
    env: options.env,
    logger,
    beforeStart: () => core!.assertBreakerClear(),
  });
  const tradeWatch = broker
    ? new TradeWatch({
        store,
        broker,
        outbox,
        clock,
        processName: config.trading.processName,
        maxTradesPerHour: config.maxTradesPerHour,
        onRunaway: (trades) => core!.onRunaway(trades),
      })
    : undefined;
  core = new Core({
    config,
    supervisor,
    broker,
    store,
    outbox,
    clock,
    logger,
    flattenVerifyTimeoutMs: options.flattenVerifyTimeoutMs,
    refreshTrades: tradeWatch ? () => tradeWatch.poll() : undefined,
  });
  const processWatch = new ProcessWatch({ store, supervisor, outbox, clock, processName: config.trading.processName });

  return {
    config,
    store,
    outbox,
    broker,
    supervisor,
    core,
    tradeWatch,
    processWatch,
    health: new HealthChecks(clock),
    clock,
    logger,
    async close() {
      outbox.stop();
      await supervisor.close();
    },
  };
}
