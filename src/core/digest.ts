// The digest: how the trading went over a period, for people who read it without asking — the
// scheduled post (DIGEST_CRON, watch/digest-schedule.ts), /digest and `tradewarden digest`. The
// period runs from the end of the last scheduled digest to now (the last 24 h before there is one).
//
// It gives what it can: each read that fails (the broker's account, its history, its fills, its
// positions; PM2; the gate's counts, which live in the running controller) is named in `missing`,
// and the rest is still reported — a digest is never lost to one broken read.
//
// Trades are the broker's fills in the period, grouped by order. Alpaca tells no profit or loss
// per trade, so a trade's P/L is worked out from the broker's own fill prices: each symbol's fills
// are matched first in, first out, from a week before the period on; what the account held before
// that week is derived from its positions now, at an unknown price. A close matched against such
// a holding has no known P/L and is not ranked as best or worst, only counted.
import type { Broker, Fill, HistoryPeriod, HistoryTimeframe, Position } from '../broker/types.ts';
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import { describeError, withTimeout } from '../errors.ts';
import { redactDeep } from '../log.ts';
import type { AlertKind, DigestCounters, StoreData } from '../store/schema.ts';
import type { Store } from '../store/store.ts';
import type { ProcessState, ProcessStatus, Supervision } from '../supervisor/types.ts';
import { scheduleKey } from '../watch/cron-calendar.ts';
import { ownOrderIds } from '../watch/trade-window.ts';
import type { GateStatus } from './operations.ts';
import type { EquityPoint } from './review.ts';

const DAY_MS = 86_400_000;
/** How far before the period fills are read to find the entries of the trades closed in it. */
export const ENTRY_LOOKBACK_MS = 7 * DAY_MS;
const EPSILON = 1e-9;

/** A trade that closed (part of) a position in the period, with its P/L from the matched entries. */
export interface ClosedTrade {
  orderId: string;
  symbol: string;
  side: string;
  /** the quantity that closed a position (an order may also open the other way) */
  qty: number;
  /** average price of its fills in the period */
  price: number;
  at: number;
  pnl: number;
}

export interface DigestReport {
  /** the period, ms since epoch */
  from: number;
  to: number;
  /** DIGEST_TZ: how the times read in text */
  timeZone: string;
  /** no digest before this one: the period is the last 24 h */
  firstPeriod: boolean;
  /** set on a scheduled digest: its due time, and how late it went out when the controller was down then */
  due?: { at: number; lateByMs?: number; missedBefore?: number };
  equity?: number;
  equityAtStart?: number;
  change?: number;
  changePct?: number;
  /** the equity curve over the period, oldest first (the start, the broker's steps, now) */
  points: EquityPoint[];
  /** the broker's resolution of the curve, e.g. "15Min" */
  timeframe?: string;
  trades?: {
    /** orders with a fill in the period */
    count: number;
    bySymbol: Array<{ symbol: string; buys: number; sells: number }>;
    /** of them, tradewarden's own (flatten's closing orders) */
    flattenCloses: number;
    /** 'broker': its fills; 'recorded': what the watch recorded, when the broker's fills could not be read */
    source: 'broker' | 'recorded';
  };
  /** the trades that closed positions with a known P/L, best and worst (absent when none or unknown) */
  best?: ClosedTrade;
  worst?: ClosedTrade;
  closedTrades?: number;
  /** closes whose entry is older than the fills read: no P/L known */
  unranked?: number;
  trader?: { state: ProcessState; uptimeMs?: number; restarts?: number; restartsTotal: number };
  alerts: Partial<Record<AlertKind, number>>;
  breakerTrips: number;
  /** PIDs the stop-duplicates operations of the period were asked to end (by operators, ON_DUPLICATE=stop, the breaker) */
  duplicatesEnded: number;
  /** with the order gate: refusals in the period by reason; `since` when counted only from a later controller start */
  gateRefusals?: { byReason: Partial<Record<string, number>>; since?: number };
  /** counters at `to`, the next digest's starting point */
  counters: DigestCounters;
  /** what could not be read, in words */
  missing: string[];
}

/** The period asked for; without one, from the end of the last scheduled digest (or 24 h ago) to now. */
export interface DigestPeriod {
  from: number;
  to: number;
  firstPeriod: boolean;
  due?: DigestReport['due'];
  /** the last digest's counters (restarts, refusals): this one counts from them */
  previous?: DigestCounters;
}

export interface DigestSources {
  config: Pick<Config, 'digest' | 'gateway' | 'secrets'>;
  broker?: Broker;
  store: Store;
  supervisor: Pick<Supervision, 'status'>;
  clock: Clock;
  gate: () => Promise<GateStatus | undefined>;
  timeoutMs?: number;
}

/** The on-demand period: what the next scheduled digest would cover, up to now. */
export function periodNow(config: Pick<Config, 'digest'>, data: StoreData, now: number): DigestPeriod {
  const { cron, timeZone } = config.digest;
  const last = cron && data.digest?.schedule === scheduleKey(cron, timeZone) ? data.digest : undefined;
  if (last?.lastTo !== undefined && last.lastTo < now) return { from: last.lastTo, to: now, firstPeriod: false, previous: last.counters };
  return { from: now - DAY_MS, to: now, firstPeriod: true };
}

export async function buildDigest(sources: DigestSources, period?: DigestPeriod): Promise<DigestReport> {
  const { config, broker, store, supervisor, clock } = sources;
  const timeoutMs = sources.timeoutMs ?? 10_000;
  const data = await store.read();
  const { from, to, firstPeriod, due, previous } = period ?? periodNow(config, data, clock.now());
  const missing: string[] = [];
  const noBroker = Promise.reject(new Error('the broker is not configured (APCA_API_KEY_ID, APCA_API_SECRET_KEY)'));
  noBroker.catch(() => undefined);
  const [account, history, fills, positions, status, gate] = await Promise.allSettled([
    broker ? withTimeout(broker.account(), timeoutMs, 'broker account') : noBroker,
    broker ? withTimeout(historyFor(broker, from, to), timeoutMs, 'broker portfolio history') : noBroker,
    broker ? withTimeout(broker.fills(new Date(from - ENTRY_LOOKBACK_MS).toISOString()), timeoutMs * 2, 'broker fills') : noBroker,
    broker ? withTimeout(broker.positions(), timeoutMs, 'broker positions') : noBroker,
    withTimeout(supervisor.status(), timeoutMs, 'PM2 status of the trader'),
    sources.gate(),
  ]);

  const report: DigestReport = {
    from,
    to,
    timeZone: config.digest.timeZone,
    firstPeriod,
    ...(due ? { due } : {}),
    points: [],
    alerts: alertsByKind(data, from, to),
    breakerTrips: data.alerts.filter((a) => a.kind === 'breaker_tripped' && a.createdAt > from && a.createdAt <= to).length,
    duplicatesEnded: duplicatesEnded(data, from, to),
    counters: {},
    missing,
  };

  // Equity: now, at the start, and the curve between.
  if (account.status === 'fulfilled') report.equity = account.value.equity;
  else missing.push(`equity now: ${describeError(account.reason)}`);
  if (history.status === 'fulfilled') {
    const { points, stepMs, timeframe } = history.value;
    report.timeframe = timeframe;
    // A point is the equity at the end of its step (the broker's bar): the start is the last one that ends by `from`.
    const start = points.filter((p) => p.at + stepMs <= from).at(-1);
    const inside = points.filter((p) => p.at + stepMs > from && p.at + stepMs <= to).map((p) => ({ at: p.at + stepMs, equity: p.equity }));
    if (start) report.equityAtStart = start.equity;
    else if (inside.length) {
      report.equityAtStart = inside[0].equity;
      missing.push("equity at the start: the broker's history begins inside the period; the change is measured from its first point");
    } else missing.push('equity at the start: the broker has no history for the period (a new or unfunded account)');
    report.points = [...(report.equityAtStart !== undefined ? [{ at: from, equity: report.equityAtStart }] : []), ...inside];
  } else missing.push(`equity history (the change over the period, the chart): ${describeError(history.reason)}`);
  if (report.equity !== undefined && report.points.length) report.points.push({ at: to, equity: report.equity });
  if (report.equity !== undefined && report.equityAtStart !== undefined) {
    report.change = report.equity - report.equityAtStart;
    if (report.equityAtStart > 0) report.changePct = (report.change / report.equityAtStart) * 100;
  }

  // Trades, and the P/L of the ones that closed positions.
  const own = ownOrderIds(data);
  if (fills.status === 'fulfilled') {
    const inPeriod = fills.value.filter((f) => f.at > from && f.at <= to);
    report.trades = tradeCounts(inPeriod, own, 'broker');
    if (positions.status === 'fulfilled') Object.assign(report, closedTrades(fills.value, positions.value, from, to));
    else missing.push(`the P/L of each trade (best and worst): open positions: ${describeError(positions.reason)}`);
  } else {
    const recorded = store.trades(from, to);
    report.trades = tradeCounts(recorded, own, 'recorded');
    missing.push(`the broker's fills (trades counted from what the watch recorded; best and worst unknown): ${describeError(fills.reason)}`);
  }

  // The trader, and what its counters grew by since the last digest.
  if (status.status === 'fulfilled') {
    const s: ProcessStatus = status.value;
    const before = previous?.traderRestarts;
    report.trader = {
      state: s.state,
      ...(s.uptimeMs !== undefined && s.state === 'online' ? { uptimeMs: s.uptimeMs } : {}),
      // PM2's counter starts over when its entry is made again: then all of it is new.
      ...(before !== undefined ? { restarts: s.restarts >= before ? s.restarts - before : s.restarts } : {}),
      restartsTotal: s.restarts,
    };
    report.counters.traderRestarts = s.restarts;
  } else missing.push(`the trader's uptime and restarts: ${describeError(status.reason)}`);

  if (config.gateway) {
    const gateStatus = gate.status === 'fulfilled' ? gate.value : undefined;
    if (gateStatus) {
      const controllerStartedAt = data.controller?.startedAt;
      const sameRun = previous?.gateRefusals !== undefined && previous.controllerStartedAt === controllerStartedAt;
      const byReason: Partial<Record<string, number>> = {};
      for (const [reason, total] of Object.entries(gateStatus.refusedTotal)) {
        const n = (total ?? 0) - (sameRun ? (previous!.gateRefusals![reason] ?? 0) : 0);
        if (n > 0) byReason[reason] = n;
      }
      // The gate counts since its controller started: a start inside the period counts from there.
      const since = !sameRun && controllerStartedAt !== undefined && controllerStartedAt > from ? controllerStartedAt : undefined;
      report.gateRefusals = { byReason, ...(since !== undefined ? { since } : {}) };
      report.counters.gateRefusals = { ...gateStatus.refusedTotal };
      if (controllerStartedAt !== undefined) report.counters.controllerStartedAt = controllerStartedAt;
    } else {
      missing.push(`the order gate's refusals: ${gate.status === 'rejected' ? describeError(gate.reason) : 'the gate counts them in the running controller, and none answered here'}`);
    }
  }
  return redactDeep(report, config.secrets);
}

/**
 * The broker's curve at a resolution that covers the period: 15-minute steps up to a week (a
 * rolling 24 h crosses the broker's "1D", which is one trading day), days beyond.
 */
async function historyFor(broker: Broker, from: number, to: number): Promise<{ points: EquityPoint[]; stepMs: number; timeframe: string }> {
  const length = to - from;
  const [period, timeframe, stepMs]: [HistoryPeriod, HistoryTimeframe, number] =
    length <= 7 * DAY_MS ? ['1W', '15Min', 900_000] : length < 30 * DAY_MS ? ['1M', '1D', DAY_MS] : ['1A', '1D', DAY_MS];
  const history = await broker.portfolioHistory(period, timeframe);
  return { points: history.points.map((p) => ({ at: p.at, equity: p.equity })), stepMs, timeframe: history.timeframe };
}

function alertsByKind(data: StoreData, from: number, to: number): Partial<Record<AlertKind, number>> {
  const counts: Partial<Record<AlertKind, number>> = {};
  for (const alert of data.alerts) if (alert.createdAt > from && alert.createdAt <= to) counts[alert.kind] = (counts[alert.kind] ?? 0) + 1;
  return counts;
}

/** The PIDs stop-duplicates was asked to end in the period, by anyone, in operations that did not fail (the audit log). */
function duplicatesEnded(data: StoreData, from: number, to: number): number {
  let n = 0;
  for (const entry of data.audit) {
    const at = Date.parse(entry.at);
    if (entry.what !== 'stop-duplicates' || entry.outcome !== 'ok' || !(at > from && at <= to)) continue;
    const pids = entry.args?.pids;
    if (Array.isArray(pids)) n += pids.length;
  }
  return n;
}

type Traded = Pick<Fill, 'orderId' | 'symbol' | 'side'>;

function tradeCounts(fills: readonly Traded[], own: Set<string>, source: 'broker' | 'recorded'): NonNullable<DigestReport['trades']> {
  const orders = new Map<string, Traded>();
  for (const fill of fills) if (!orders.has(fill.orderId)) orders.set(fill.orderId, fill);
  const bySymbol = new Map<string, { symbol: string; buys: number; sells: number }>();
  for (const order of orders.values()) {
    const row = bySymbol.get(order.symbol) ?? { symbol: order.symbol, buys: 0, sells: 0 };
    if (order.side === 'buy') row.buys++;
    else row.sells++;
    bySymbol.set(order.symbol, row);
  }
  return {
    count: orders.size,
    bySymbol: [...bySymbol.values()].sort((a, b) => b.buys + b.sells - (a.buys + a.sells) || a.symbol.localeCompare(b.symbol)),
    flattenCloses: [...orders.keys()].filter((id) => own.has(id)).length,
    source,
  };
}

/** Alpaca names crypto "BTC/USD" in fills, "BTCUSD" in positions. */
const symbolKey = (symbol: string) => symbol.replace('/', '');

interface Lot {
  /** signed: positive long, negative short */
  qty: number;
  /** undefined: held from before the fills read */
  price?: number;
}

/**
 * First in, first out per symbol over every fill read: each fill in the period that reduces a
 * position gets the P/L of the lots it closes. What was held before the first fill read is the
 * position now less every fill since, at an unknown price.
 */
function closedTrades(fills: readonly Fill[], positions: readonly Position[], from: number, to: number): Pick<DigestReport, 'best' | 'worst' | 'closedTrades' | 'unranked'> {
  const lots = new Map<string, Lot[]>();
  const net = new Map<string, number>();
  for (const f of fills) net.set(symbolKey(f.symbol), (net.get(symbolKey(f.symbol)) ?? 0) + signed(f));
  for (const p of positions) {
    const held = p.qty - (net.get(symbolKey(p.symbol)) ?? 0);
    if (Math.abs(held) > EPSILON) lots.set(symbolKey(p.symbol), [{ qty: held }]);
  }
  for (const [key, moved] of net) if (!positions.some((p) => symbolKey(p.symbol) === key) && Math.abs(moved) > EPSILON) lots.set(key, [{ qty: -moved }]);

  const byOrder = new Map<string, { trade: ClosedTrade; notional: number; filledQty: number; unknown: boolean }>();
  for (const fill of fills) {
    if (fill.at > to) break; // fills are oldest first; later ones belong to the next period
    const queue = lots.get(symbolKey(fill.symbol)) ?? [];
    lots.set(symbolKey(fill.symbol), queue);
    let left = signed(fill);
    let closedQty = 0;
    let pnl = 0;
    let unknown = false;
    while (Math.abs(left) > EPSILON && queue.length && Math.sign(queue[0].qty) !== Math.sign(left)) {
      const lot = queue[0];
      const matched = Math.min(Math.abs(left), Math.abs(lot.qty));
      if (lot.price === undefined) unknown = true;
      else pnl += (fill.price - lot.price) * matched * Math.sign(lot.qty);
      closedQty += matched;
      lot.qty += Math.sign(left) * matched;
      left -= Math.sign(left) * matched;
      if (Math.abs(lot.qty) <= EPSILON) queue.shift();
    }
    if (Math.abs(left) > EPSILON) queue.push({ qty: left, price: fill.price });
    if (fill.at <= from || closedQty <= EPSILON) continue;
    const entry = byOrder.get(fill.orderId) ?? {
      trade: { orderId: fill.orderId, symbol: fill.symbol, side: fill.side, qty: 0, price: 0, at: fill.at, pnl: 0 },
      notional: 0,
      filledQty: 0,
      unknown: false,
    };
    entry.trade.qty += closedQty;
    entry.trade.pnl += pnl;
    entry.notional += fill.price * fill.qty;
    entry.filledQty += fill.qty;
    entry.unknown ||= unknown;
    byOrder.set(fill.orderId, entry);
  }
  const ranked = [...byOrder.values()].filter((e) => !e.unknown).map((e) => ({ ...e.trade, price: e.notional / e.filledQty }));
  const unranked = byOrder.size - ranked.length;
  const best = ranked.reduce<ClosedTrade | undefined>((b, t) => (!b || t.pnl > b.pnl ? t : b), undefined);
  const worst = ranked.reduce<ClosedTrade | undefined>((w, t) => (!w || t.pnl < w.pnl ? t : w), undefined);
  return { closedTrades: byOrder.size, ...(best ? { best } : {}), ...(worst ? { worst } : {}), ...(unranked ? { unranked } : {}) };
}

const signed = (fill: Pick<Fill, 'side' | 'qty'>) => (fill.side === 'buy' ? fill.qty : -fill.qty);
