// Prometheus exposition (METRICS_ADDR): /metrics for scraping and /healthz for probes (200 healthy,
// 503 with the reasons). The only module that imports prom-client. Values are read when scraped
// (the data file and the latest process scan), so a scrape never asks PM2 or the broker anything.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { HealthReport } from './checks.ts';

export interface MetricsSnapshot {
  tradesLastHour: number;
  tradeLimit: number;
  /** undefined until the first process scan */
  traderUp?: boolean;
  /** PM2's restart counter for the trader (resets when its PM2 entry is recreated) */
  traderRestarts?: number;
  breakerTripped: boolean;
  /** the account's trading switch at the broker, as last set or read; undefined while unknown */
  brokerLocked?: boolean;
  duplicates?: number;
  alertsPending: number;
  streamConnected?: boolean;
  /** seconds since the last successful fill poll; undefined before the first (or without a broker) */
  lastFillPollAgeSeconds?: number;
  healthy: boolean;
  /** which guard tripped the breaker (trade_rate, loss_limit), while it is tripped */
  breakerCause?: string;
  /** the loss limit's figures, when one is set and the account has been read */
  loss?: { dayPnl: number; dailyLimit?: number; drawdownRatio?: number; drawdownLimit?: number };
  /** the order gate, when this controller runs one: pending orders, refusals since start by reason */
  gate?: {
    pending: number;
    refusedTotal: Partial<Record<string, number>>;
    /** the pre-trade limits as configured, each absent when unset */
    limits?: { maxOrderNotional?: number; maxPositionNotional?: number; maxOpenOrders?: number; allowedSymbols?: readonly string[] };
    /** whether MAX_OPEN_ORDERS / MAX_POSITION_NOTIONAL are decided from the model of the trader's book now (false: read at the broker); absent without one */
    bookLive?: boolean;
  };
}

export interface MetricsServerOptions {
  host: string;
  port: number;
  snapshot: () => Promise<MetricsSnapshot>;
  health: () => Promise<HealthReport>;
  logger: Logger;
}

export interface MetricsServer {
  /** the address actually bound (port 0 = a free one) */
  url: string;
  close(): Promise<void>;
}

export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const gauge = (name: string, help: string) => new Gauge({ name, help, registers: [registry] });
  /** A gauge left out of /metrics while its value is unknown or unset (prom-client's reset() shows a 0, which reads as a value). */
  const optionalGauge = (name: string, help: string) => {
    const metric = new Gauge({ name, help, registers: [] });
    return (value: number | undefined): void => {
      const shown = registry.getSingleMetric(name) !== undefined;
      if (value === undefined) {
        if (shown) registry.removeSingleMetric(name);
        return;
      }
      if (!shown) registry.registerMetric(metric);
      metric.set(value);
    };
  };
  const tradesLastHour = gauge('tradewarden_trades_last_hour', 'Broker fills (orders with a fill) in the rolling last hour');
  const tradeLimit = gauge('tradewarden_trade_limit', 'MAX_TRADES_PER_HOUR: the rolling-hour count that raises an alert when exceeded');
  const traderUp = gauge('tradewarden_trader_up', '1 when the managed trader is online in PM2, 0 otherwise (latest process scan)');
  const restarts = new Counter({
    name: 'tradewarden_trader_restarts_total',
    help: "Restarts of the managed trader seen by this controller (what PM2's restart counter grew by since the controller started)",
    registers: [registry],
  });
  const breaker = gauge('tradewarden_breaker_tripped', '1 while the runaway breaker is tripped (starts refused until resume)');
  const brokerLocked = optionalGauge('tradewarden_broker_locked', '1 while the account is locked at the broker (suspend_trade: no new order from any copy); absent while unknown');
  const duplicates = gauge('tradewarden_duplicates', 'Extra copies of the trader (PM2 entries and processes outside PM2) in the latest scan');
  const alertsPending = gauge('tradewarden_alerts_pending', 'Alerts not yet delivered to every sink');
  const streamConnected = optionalGauge('tradewarden_stream_connected', '1 while the broker trade stream is connected (absent when the broker offers none)');
  const fillPollAge = optionalGauge('tradewarden_fill_poll_age_seconds', 'Seconds since the last successful poll of broker fills');
  const healthy = gauge('tradewarden_healthy', '1 when tradewarden health would pass (checks fresh, nothing needing a human)');
  /** PM2's count at the last look; undefined until the first (see refresh). */
  let restartsSeen: number | undefined;
  const breakerCause = new Gauge({ name: 'tradewarden_breaker_tripped_cause', help: '1 for the guard that tripped the breaker (cause: trade_rate, loss_limit) while it is tripped', labelNames: ['cause'] as const, registers: [registry] });
  const dayPnl = optionalGauge('tradewarden_day_pnl', "The account's P/L since the broker's last close (equity − last_equity), with a loss limit set");
  const dailyLimit = optionalGauge('tradewarden_max_daily_loss', 'MAX_DAILY_LOSS in money for the current day (a percent is of the broker\'s last_equity)');
  const drawdown = optionalGauge('tradewarden_drawdown_ratio', 'Drawdown from the highest equity since the trader was last started or resumed (0.05 = 5%)');
  const drawdownLimit = optionalGauge('tradewarden_max_drawdown_ratio', 'MAX_DRAWDOWN as a ratio');
  const gatePending = gauge('tradewarden_gate_pending_orders', 'Orders the order gate let through that are not yet among the trades (they count towards the hour)');
  const gateRefusals = new Counter({ name: 'tradewarden_gate_refusals_total', help: 'Orders the order gate refused, by reason', labelNames: ['reason'] as const, registers: [registry] });
  const gateRefusalsSeen = new Map<string, number>();
  const gateMaxOrder = optionalGauge('tradewarden_gate_max_order_notional', "MAX_ORDER_NOTIONAL: the gate refuses an order worth more (the account's currency)");
  const gateMaxPosition = optionalGauge('tradewarden_gate_max_position_notional', "MAX_POSITION_NOTIONAL: the gate refuses an order that would take a symbol's position beyond it");
  const gateMaxOpen = optionalGauge('tradewarden_gate_max_open_orders', "MAX_OPEN_ORDERS: the gate refuses a new order while that many of the trader's orders are open");
  const gateAllowed = new Gauge({ name: 'tradewarden_gate_allowed_symbol', help: 'ALLOWED_SYMBOLS: 1 for each symbol the gate lets the trader open positions in', labelNames: ['symbol'] as const, registers: [registry] });
  const gateBookLive = optionalGauge('tradewarden_gate_book_live', "1 while MAX_OPEN_ORDERS / MAX_POSITION_NOTIONAL are decided from the gate's model of the trader's book, 0 while each order reads the broker (stream down, not read yet)");

  const refresh = async () => {
    const s = await options.snapshot();
    tradesLastHour.set(s.tradesLastHour);
    tradeLimit.set(s.tradeLimit);
    breaker.set(s.breakerTripped ? 1 : 0);
    brokerLocked(s.brokerLocked === undefined ? undefined : Number(s.brokerLocked));
    alertsPending.set(s.alertsPending);
    streamConnected(s.streamConnected === undefined ? undefined : Number(s.streamConnected));
    healthy.set(s.healthy ? 1 : 0);
    if (s.traderUp !== undefined) traderUp.set(s.traderUp ? 1 : 0);
    if (s.duplicates !== undefined) duplicates.set(s.duplicates);
    fillPollAge(s.lastFillPollAgeSeconds);
    breakerCause.reset();
    if (s.breakerTripped && s.breakerCause) breakerCause.set({ cause: s.breakerCause }, 1);
    dayPnl(s.loss?.dayPnl);
    dailyLimit(s.loss?.dailyLimit);
    drawdown(s.loss?.drawdownRatio);
    drawdownLimit(s.loss?.drawdownLimit);
    const limits = s.gate?.limits;
    gateMaxOrder(limits?.maxOrderNotional);
    gateMaxPosition(limits?.maxPositionNotional);
    gateMaxOpen(limits?.maxOpenOrders);
    gateBookLive(s.gate?.bookLive === undefined ? undefined : Number(s.gate.bookLive));
    gateAllowed.reset();
    for (const symbol of limits?.allowedSymbols ?? []) gateAllowed.set({ symbol }, 1);
    if (s.gate) {
      gatePending.set(s.gate.pending);
      // The gate's totals are this process's: a counter grows by what they grew by.
      for (const [reason, total] of Object.entries(s.gate.refusedTotal)) {
        const grew = (total ?? 0) - (gateRefusalsSeen.get(reason) ?? 0);
        if (grew > 0) gateRefusals.inc({ reason }, grew);
        gateRefusalsSeen.set(reason, total ?? 0);
      }
    }
    if (s.traderRestarts !== undefined) {
      // PM2's count is the entry's whole history; this counter starts at 0 with the controller (a reset
      // Prometheus expects of a counter) and adds only what PM2's count grows by after the first look,
      // so a controller restart neither counts a restart twice nor jumps by the history. A smaller
      // value means a new PM2 entry: its count is all new.
      if (restartsSeen !== undefined) restarts.inc(s.traderRestarts >= restartsSeen ? s.traderRestarts - restartsSeen : s.traderRestarts);
      restartsSeen = s.traderRestarts;
    }
  };

  const server = http.createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    const reply = (status: number, type: string, body: string) => {
      response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      response.end(body);
    };
    if (request.method !== 'GET' && request.method !== 'HEAD') return reply(405, 'text/plain', 'GET only\n');
    if (path === '/metrics') {
      refresh()
        .then(() => registry.metrics())
        .then((text) => reply(200, registry.contentType, text))
        .catch((error: unknown) => {
          options.logger.warn(`metrics: ${describeError(error)}`);
          reply(500, 'text/plain', `metrics unavailable: ${describeError(error)}\n`);
        });
    } else if (path === '/healthz') {
      options
        .health()
        .then((report) => reply(report.healthy ? 200 : 503, 'text/plain; charset=utf-8', report.healthy ? 'ok\n' : `${report.reasons.join('\n')}\n`))
        .catch((error: unknown) => reply(503, 'text/plain', `health could not be evaluated: ${describeError(error)}\n`));
    } else reply(404, 'text/plain', 'not found: try /metrics or /healthz\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => reject(new Error(`METRICS_ADDR ${options.host}:${options.port}: cannot listen (${describeError(error)})`, { cause: error })));
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  options.logger.info(`metrics: ${url}/metrics and ${url}/healthz`);
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
