// How the world outside the controller learns it is alive and well: the control socket's "health"
// request (`tradewarden health`), the dead-man's switch (HEALTHCHECK_URL) and the metrics endpoint
// (METRICS_ADDR). All three read one HealthChecks report.
import type { App } from '../app.ts';
import type { ControlServer } from '../control/socket.ts';
import type { ProcessStatus } from '../supervisor/types.ts';
import { countedTrades } from '../watch/trade-window.ts';
import { lossFigures } from '../watch/loss-watch.ts';
import { alertsUndeliverableCondition, traderDownCondition } from './checks.ts';
import { DeadMansSwitch } from './deadman.ts';
import { startMetricsServer, type MetricsServer, type MetricsSnapshot } from './metrics.ts';

export interface Exposure {
  metrics?: MetricsServer;
  deadman?: DeadMansSwitch;
  stop(): Promise<void>;
}

export async function exposeHealth(app: App, control: ControlServer, latestScan: () => ProcessStatus | undefined): Promise<Exposure> {
  const { config, health, store, clock, logger } = app;
  health.condition('trader', traderDownCondition(store, config.trading.processName));
  health.condition('alerts', alertsUndeliverableCondition(store, clock));
  control.handle('health', () => health.report());

  const deadman = config.healthcheck
    ? new DeadMansSwitch({ url: config.healthcheck.url, everySeconds: config.healthcheck.everySeconds, report: () => health.report(), logger, secrets: config.secrets })
    : undefined;
  deadman?.start();

  let metrics: MetricsServer | undefined;
  try {
    metrics = config.metrics
      ? await startMetricsServer({
          ...config.metrics,
          logger,
          health: () => health.report(),
          snapshot: async (): Promise<MetricsSnapshot> => {
            const [data, report, gate] = await Promise.all([store.read(), health.report(), app.core.gateStatus()]);
            const now = clock.now();
            const status = latestScan();
            const lastPoll = health.lastOkAt('trade-poll');
            return {
              tradesLastHour: countedTrades(data, now).length,
              tradeLimit: config.maxTradesPerHour,
              traderUp: status ? status.state === 'online' : undefined,
              traderRestarts: status?.restarts,
              breakerTripped: data.breaker.tripped,
              brokerLocked: data.brokerLock ? data.brokerLock.locked : undefined,
              ...(data.breaker.tripped && data.breaker.cause ? { breakerCause: data.breaker.cause } : {}),
              ...((config.maxDailyLoss || config.maxDrawdown) && data.account ? { loss: lossFigures(config, data.account, data.loss?.peak?.equity) } : {}),
              duplicates: status?.duplicates.length,
              alertsPending: data.alerts.filter((a) => Object.values(a.deliveries).some((d) => d.deliveredAt === undefined)).length,
              streamConnected: health.readIndicator('stream_connected'),
              lastFillPollAgeSeconds: lastPoll === undefined ? undefined : Math.max(0, (now - lastPoll) / 1000),
              healthy: report.healthy,
              ...(gate ? { gate: { pending: gate.pending, refusedTotal: gate.refusedTotal, limits: config.gateway, bookLive: gate.bookLive } } : {}),
            };
          },
        })
      : undefined;
  } catch (error) {
    deadman?.stop();
    throw error;
  }

  return {
    metrics,
    deadman,
    async stop() {
      deadman?.stop();
      await metrics?.close();
    },
  };
}
