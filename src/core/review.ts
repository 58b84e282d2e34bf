// Reviewing the trading after the fact: the account's equity curve over a period (/pnl) and the
// trader's session from its start to its stop (the stop report). Both read the broker and the data
// file only, and both give what they can: a part the broker cannot answer is named in `missing`,
// never a reason to fail the whole report (the stop itself has already happened).
import type { Broker, HistoryPeriod, HistoryTimeframe, PortfolioHistory, Position } from '../broker/types.ts';
import { OperationError, describeError, failed, withTimeout } from '../errors.ts';
import type { SeenTrade } from '../store/schema.ts';
import { formatDuration } from '../duration.ts';

export const PNL_PERIODS = ['day', 'week', 'month', 'year'] as const;
export type PnlPeriod = (typeof PNL_PERIODS)[number];

/**
 * Period → the broker's period and a timeframe that gives a readable curve (roughly 20–170
 * points): a day in 15-minute steps, a week in hours, a month and a year in days. Alpaca accepts
 * intraday steps only for periods under 30 days.
 */
export const PNL_RESOLUTION: Record<PnlPeriod, { period: HistoryPeriod; timeframe: HistoryTimeframe; stepMs: number }> = {
  day: { period: '1D', timeframe: '15Min', stepMs: 15 * 60_000 },
  week: { period: '1W', timeframe: '1H', stepMs: 3_600_000 },
  month: { period: '1M', timeframe: '1D', stepMs: 86_400_000 },
  year: { period: '1A', timeframe: '1D', stepMs: 86_400_000 },
};

export interface EquityPoint {
  /** ms since epoch */
  at: number;
  equity: number;
}

export interface EquityStep {
  /** end of the step, ms since epoch */
  at: number;
  change: number;
}

export interface PnlReport {
  period: PnlPeriod;
  /** the broker's resolution of the curve, e.g. "15Min" */
  timeframe?: string;
  /** equity now (the account), else the curve's last point */
  equity?: number;
  /** equity at the start of the period: what the change is measured against */
  baseValue?: number;
  change?: number;
  /** change / baseValue × 100 */
  changePct?: number;
  best?: EquityStep;
  worst?: EquityStep;
  /** the equity curve, oldest first; the account's equity now is its last point */
  points: EquityPoint[];
  /** what could not be read, in words ("equity history: broker … answered 404") */
  missing: string[];
  /** the curve is tradewarden's own record (an exchange keeps none), kept since this time */
  recordedSince?: number;
}

export function parsePnlPeriod(value: string | undefined): PnlPeriod {
  if (value === undefined || value === '') return 'month';
  const period = value.toLowerCase();
  if ((PNL_PERIODS as readonly string[]).includes(period)) return period as PnlPeriod;
  throw new OperationError('usage', `period "${value}" is not one of ${PNL_PERIODS.join(', ')} (default month)`);
}

export async function buildPnlReport(broker: Broker, period: PnlPeriod, now: number, timeoutMs = 8000): Promise<PnlReport> {
  const { period: brokerPeriod, timeframe } = PNL_RESOLUTION[period];
  const [account, history] = await Promise.allSettled([
    withTimeout(broker.account(), timeoutMs, 'broker account'),
    withTimeout(broker.portfolioHistory(brokerPeriod, timeframe), timeoutMs, 'broker portfolio history'),
  ]);
  if (account.status === 'rejected' && history.status === 'rejected') {
    throw failed(`the broker answered neither the account (${describeError(account.reason)}) nor its history (${describeError(history.reason)})`, account.reason);
  }
  const missing: string[] = [];
  if (account.status === 'rejected') missing.push(`equity now: ${describeError(account.reason)}`);
  if (history.status === 'rejected') missing.push(`equity history (P/L over the ${period}, best and worst step, chart): ${describeError(history.reason)}`);

  const points = history.status === 'fulfilled' ? history.value.points.map((p) => ({ at: p.at, equity: p.equity })) : [];
  const equityNow = account.status === 'fulfilled' ? account.value.equity : points.at(-1)?.equity;
  if (account.status === 'fulfilled' && points.length > 0 && now > points.at(-1)!.at) points.push({ at: now, equity: account.value.equity });

  const report: PnlReport = { period, equity: equityNow, points, missing };
  if (history.status === 'fulfilled') {
    report.timeframe = history.value.timeframe;
    const recorded = history.value.recorded;
    if (recorded?.since !== undefined) report.recordedSince = recorded.since;
    if (points.length === 0) {
      missing.push(recorded ? `equity history: none recorded yet (the exchange keeps none; tradewarden records it on every account read)` : `equity history: the broker has no points for the ${period} (a new or unfunded account)`);
    }
    else Object.assign(report, periodChange(history.value, points));
  }
  return report;
}

function periodChange(history: PortfolioHistory, points: EquityPoint[]): Pick<PnlReport, 'baseValue' | 'change' | 'changePct' | 'best' | 'worst'> {
  // A zero base (funded during the period) has no meaningful percentage; the first point then is.
  const baseValue = history.baseValue > 0 ? history.baseValue : points[0].equity;
  const change = points.at(-1)!.equity - baseValue;
  let best: EquityStep | undefined;
  let worst: EquityStep | undefined;
  for (let i = 1; i < points.length; i++) {
    const step = { at: points[i].at, change: points[i].equity - points[i - 1].equity };
    if (!best || step.change > best.change) best = step;
    if (!worst || step.change < worst.change) worst = step;
  }
  return { baseValue, change, changePct: baseValue > 0 ? (change / baseValue) * 100 : undefined, best, worst };
}

// ---- the stop report ----

/** The trader's run from its start to its stop: the operators' "before stopping" checklist. */
export interface SessionReport {
  /** when the stopped run began (PM2's start time), when known */
  startedAt?: number;
  endedAt: number;
  /** trades (orders with fills) recorded from startedAt to endedAt */
  trades: number;
  equityAtStart?: number;
  equityAtEnd?: number;
  /** equityAtEnd − equityAtStart */
  pnl?: number;
  /** positions still open at the broker after the stop; undefined when they could not be read */
  openPositions?: Position[];
  /** set by a stop that leaves positions open: positions_unattended comes this long after it (UNATTENDED_SECONDS) */
  unattendedAlertInMs?: number;
  missing: string[];
}

export interface SessionInputs {
  broker?: Broker;
  /** the recorded trades (the data file), refreshed before the report when possible */
  trades: readonly SeenTrade[];
  startedAt?: number;
  endedAt: number;
  timeoutMs?: number;
}

export async function buildSessionReport(inputs: SessionInputs): Promise<SessionReport> {
  const { broker, startedAt, endedAt } = inputs;
  const timeoutMs = inputs.timeoutMs ?? 5000;
  const report: SessionReport = {
    startedAt,
    endedAt,
    trades: inputs.trades.filter((t) => (startedAt === undefined || t.at >= startedAt) && t.at <= endedAt).length,
    missing: [],
  };
  if (startedAt === undefined) report.missing.push('the start of the run (PM2 did not report it): trades counted since the earliest recorded');
  if (!broker) {
    report.missing.push('P/L and open positions: the broker is not configured (APCA_API_KEY_ID)');
    return report;
  }
  const [account, positions, history] = await Promise.allSettled([
    withTimeout(broker.account(), timeoutMs, 'broker account'),
    withTimeout(broker.positions(), timeoutMs, 'broker positions'),
    startedAt === undefined ? Promise.reject(new Error('the start of the run is unknown')) : withTimeout(sessionHistory(broker, startedAt, endedAt), timeoutMs, 'broker portfolio history'),
  ]);
  if (account.status === 'fulfilled') report.equityAtEnd = account.value.equity;
  else report.missing.push(`equity now: ${describeError(account.reason)}`);
  if (positions.status === 'fulfilled') report.openPositions = positions.value;
  else report.missing.push(`open positions: ${describeError(positions.reason)}`);
  if (history.status === 'fulfilled' && history.value !== undefined) report.equityAtStart = history.value;
  else report.missing.push(`equity at the start: ${history.status === 'rejected' ? describeError(history.reason) : 'the broker has no point from before the start'}`);
  if (report.equityAtStart !== undefined && report.equityAtEnd !== undefined) report.pnl = report.equityAtEnd - report.equityAtStart;
  return report;
}

/** Equity when the run began: the last point of the broker's curve that ends before the start. */
async function sessionHistory(broker: Broker, startedAt: number, endedAt: number): Promise<number | undefined> {
  const length = endedAt - startedAt;
  const [period, timeframe, stepMs]: [HistoryPeriod, HistoryTimeframe, number] =
    length < 86_400_000 ? ['1D', '1Min', 60_000] : length < 7 * 86_400_000 ? ['1W', '15Min', 900_000] : length < 30 * 86_400_000 ? ['1M', '1D', 86_400_000] : ['1A', '1D', 86_400_000];
  const { points } = await broker.portfolioHistory(period, timeframe);
  const before = points.filter((p) => p.at + stepMs <= startedAt);
  return (before.at(-1) ?? points[0])?.equity;
}

/** One paragraph for alerts: the session in the words of the operators' "before stopping" checklist. */
export function sessionSummary(session: SessionReport): string {
  const pnl = session.pnl !== undefined ? `${session.pnl < 0 ? '-' : '+'}$${Math.abs(session.pnl).toFixed(2)}` : 'unknown';
  const positions = session.openPositions === undefined ? 'unknown' : session.openPositions.length ? session.openPositions.map((p) => `${p.symbol} ${p.qty}`).join(', ') : 'none';
  const unattended = unattendedNotice(session);
  return `Session: ${session.trades} trade(s), P/L ${pnl}, positions left open: ${positions}${unattended ? ` (${unattended})` : ''}.${session.missing.length ? ` Missing: ${session.missing.join('; ')}.` : ''}`;
}

/** "positions_unattended in 15 min if no trader runs": when the warning about the positions left open will come. */
export function unattendedNotice(session: SessionReport): string | undefined {
  const ms = session.unattendedAlertInMs;
  if (ms === undefined || !session.openPositions?.length) return undefined;
  return `positions_unattended in ${ms % 60_000 === 0 ? `${ms / 60_000} min` : formatDuration(ms)} if no trader runs`;
}
