// Plain-text renderings of core reports, shared by the CLI and the demo console: TEXT has one per
// operation of the catalogue. (Discord renders the same reports in src/discord/render.ts.)
import type { Renderers } from '../core/catalogue.ts';
import type {
  AccountReport,
  AuditEntry,
  BrokerLockState,
  GateStatus,
  LockReport,
  LossFigures,
  Duplicate,
  EquityPoint,
  FlattenReport,
  PnlReport,
  RestartReport,
  ResumeReport,
  SessionReport,
  StartResult,
  StatusReport,
  StopDuplicatesResult,
  StopReport,
  StoredAlert,
  StreamStatusReport,
  SymbolReport,
  TradeSummary,
} from '../core/reports.ts';
import { formatDuration } from '../duration.ts';
import { unattendedNotice } from '../core/review.ts';
import { sparkline } from '../watch/trade-window.ts';
import type { HealthProbe } from '../health/probe.ts';
import { digestText } from './digest-text.ts';

export const money = (n: number) => `${n < 0 ? '-' : ''}$${Math.abs(n).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
export const megabytes = (bytes?: number) => (bytes === undefined ? '—' : `${(bytes / 1024 / 1024).toFixed(1)} MB`);
const time = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + 'Z';

export function statusText(report: StatusReport): string {
  const p = report.process;
  const lines = [
    `${p.name}: ${p.state.toUpperCase().replace('_', ' ')}${p.pid ? ` (PID ${p.pid})` : ''}`,
    `  uptime ${p.uptimeMs !== undefined ? formatDuration(p.uptimeMs) : '—'} · restarts ${p.restarts} · CPU ${p.cpuPercent ?? '—'}% · memory ${megabytes(p.memoryBytes)}${p.lastExitCode != null ? ` · last exit ${p.lastExitCode}` : ''}`,
    `  wanted ${report.desired?.state ?? 'not set'}${report.desired ? ` (by ${report.desired.by})` : ''}`,
    `  trades ${tradeCountText(report.trades)}`,
    `  duplicates ${p.duplicates.length ? p.duplicates.map((d) => `PID ${d.pid} (${d.foundIn})`).join(', ') : 'none'}`,
    `  breaker ${report.breaker.tripped ? `TRIPPED${report.breaker.cause === 'loss_limit' ? ' by the loss limit' : ''} — ${report.breaker.reason ?? ''} (resume to clear)` : 'ok'}`,
    report.account
      ? `  equity ${money(report.account.equity)} · day ${money(report.account.dayPnl)} · ${report.account.positions} open position(s) (read ${formatDuration(report.account.ageMs)} ago)`
      : `  account unavailable: ${report.accountError ?? 'unknown'}`,
    ...(report.stream ? [`  trade stream ${streamText(report.stream)}`] : []),
    ...(report.brokerLock ? [`  broker lock ${brokerLockText(report.brokerLock)}`] : []),
    ...(report.gate ? [`  order gate ${gateText(report.gate)}`] : []),
    ...(report.loss ? [`  loss limit ${lossText(report.loss)}`] : []),
    `  last alert ${report.lastAlert ? `${report.lastAlert.title} (${time(report.lastAlert.createdAt)})` : 'none'}`,
  ];
  return lines.join('\n');
}

/** "connected since …" / "reconnecting since … (why)"; the CLI's copy says it is as last recorded. */
export function streamText(stream: StreamStatusReport): string {
  const since = `since ${time(stream.since)}`;
  const why = stream.status !== 'connected' && stream.lastError ? ` — ${stream.lastError}` : '';
  const recorded = stream.recorded ? ' (as the controller last recorded it)' : '';
  return `${stream.status} ${since}${why}${recorded}`;
}

/**
 * The broker's trading switch: "LOCKED since … by … (why)", "NOT HOLDING: …" while a wanted lock is
 * retried, or "off". A lock set outside tradewarden says that resume leaves it.
 */
export function brokerLockText(lock: BrokerLockState & { setting?: 'on' | 'off' }): string {
  if (lock.failing) return `NOT HOLDING — wanted since ${time(lock.failing.since)}, ${lock.failing.attempts} attempt(s), retrying: ${lock.failing.error}`;
  if (!lock.locked) return `off${lock.setting ? ` (BROKER_LOCK=${lock.setting})` : ''}`;
  const who = lock.ours ? `by ${lock.by ?? 'tradewarden'}` : 'outside tradewarden (resume leaves it; unlock lifts it)';
  return `LOCKED — no new order accepted at the broker${lock.since ? ` since ${time(lock.since)}` : ''} ${who}${lock.reason ? `: ${lock.reason}` : ''}`;
}

/** "enforce · 2 order(s) pending · refused this hour: 3 trade limit, 1 not the managed trader" */
export function gateText(gate: GateStatus): string {
  const refused = Object.entries(gate.refusedLastHour).map(([reason, n]) => `${n} ${reason.replace(/_/g, ' ')}`);
  return `${gate.mode} · ${gate.pending} order(s) pending · refused this hour: ${refused.length ? refused.join(', ') : 'none'}`;
}

/** "day -$120.00 of -$300.00 allowed · drawdown 2.10% of 10.00% (peak $10,500.00)" */
export function lossText(loss: LossFigures): string {
  const day = `day ${money(loss.dayPnl)}${loss.dailyLimit !== undefined ? ` of -${money(loss.dailyLimit)} allowed${-loss.dayPnl > loss.dailyLimit ? ' — PAST THE LIMIT' : ''}` : ''}`;
  const drawdown =
    loss.drawdownRatio !== undefined
      ? ` · drawdown ${(loss.drawdownRatio * 100).toFixed(2)}%${loss.drawdownLimit !== undefined ? ` of ${(loss.drawdownLimit * 100).toFixed(2)}%${loss.drawdownRatio > loss.drawdownLimit ? ' — PAST THE LIMIT' : ''}` : ''} (peak ${money(loss.peak!)})`
      : '';
  return day + drawdown;
}

export function lockText(report: LockReport): string {
  const now = report.lock.locked ? 'Account LOCKED at the broker: no new order from any copy, anywhere (cancels still work). unlock lifts it.' : 'Account unlocked at the broker: new orders are accepted again.';
  const before = report.was ? ` (before: ${brokerLockText(report.was)})` : '';
  return `${now}${before}`;
}

export function tradeCountText(trades: TradeSummary): string {
  const over = trades.count > trades.limit ? ' OVER LIMIT' : '';
  return `${trades.count}/${trades.limit} in the last hour${over} ${sparkline(trades.buckets)}`;
}

export function startText(result: StartResult): string {
  return `Started ${result.status.name} (PID ${result.pid}).`;
}

/** The stop, then the report of the run it ended. */
export function stopText(result: StopReport): string {
  return result.session ? `${stoppedLine(result)}\n${sessionText(result.session)}` : stoppedLine(result);
}

/** The stop, the start, then the report of the run the restart ended. */
export function restartText(result: RestartReport): string {
  const lines = [stoppedLine(result.stopped), startText(result)];
  return result.stopped.session ? [...lines, sessionText(result.stopped.session)].join('\n') : lines.join('\n');
}

function stoppedLine(result: StopReport): string {
  if (!result.wasRunning) return 'The trader was not running.';
  const outside = result.endedOutsidePm2?.length ? ` It was running outside PM2 (PM2's daemon had lost it): ended PID ${result.endedOutsidePm2.join(', ')}.` : '';
  return `Stopped the trader (PID ${result.pid}) in ${formatDuration(result.durationMs)}${result.forceKilled ? ' — it ignored SIGINT and was force-killed' : ''}.${outside}`;
}

/** The stopped run: trades, P/L, positions left open (the "before stopping" checklist). */
export function sessionText(session: SessionReport): string {
  const span = session.startedAt !== undefined ? `${time(session.startedAt)} → ${time(session.endedAt)} (${formatDuration(session.endedAt - session.startedAt)})` : `until ${time(session.endedAt)}`;
  const pnl =
    session.pnl !== undefined
      ? `${signedMoney(session.pnl)} (equity ${money(session.equityAtStart!)} → ${money(session.equityAtEnd!)})`
      : 'unknown';
  const positions =
    session.openPositions === undefined
      ? 'unknown'
      : session.openPositions.length
        ? session.openPositions.map((p) => `${p.symbol} ${p.qty} (P/L ${money(p.unrealizedPnl)})`).join(', ')
        : 'none';
  return [
    `Session ${span}:`,
    `  trades ${session.trades} · P/L ${pnl}`,
    `  positions left open: ${positions}${unattendedNotice(session) ? ` — ${unattendedNotice(session)}` : ''}`,
    ...session.missing.map((m) => `  missing: ${m}`),
  ].join('\n');
}

export const signedMoney = (n: number) => `${n > 0 ? '+' : ''}${money(n)}`;
const signedPct = (n: number) => `${n > 0 ? '+' : ''}${n.toFixed(2)}%`;

/** The equity curve in one line: each character the min–max-scaled mean of its share of points. */
export function equitySparkline(points: readonly EquityPoint[], width = 32): string {
  if (points.length === 0) return '';
  const buckets = Math.min(width, points.length);
  const values = Array.from({ length: buckets }, (_, b) => {
    const slice = points.slice(Math.floor((b * points.length) / buckets), Math.floor(((b + 1) * points.length) / buckets));
    return slice.reduce((sum, p) => sum + p.equity, 0) / slice.length;
  });
  const min = Math.min(...values);
  const span = Math.max(...values) - min;
  const sparks = '▁▂▃▄▅▆▇█';
  return values.map((v) => sparks[span === 0 ? 3 : Math.round(((v - min) / span) * (sparks.length - 1))]).join('');
}

const PERIOD_WORD = { day: 'day', week: 'week', month: 'month', year: 'year' } as const;

/** /pnl's figures, shared by every front (Discord puts the chart beside them). */
export function pnlLines(report: PnlReport): string[] {
  const lines: string[] = [];
  if (report.equity !== undefined) lines.push(`Equity now ${money(report.equity)}`);
  if (report.change !== undefined && report.baseValue !== undefined) {
    lines.push(`P/L over the ${PERIOD_WORD[report.period]} ${signedMoney(report.change)}${report.changePct !== undefined ? ` (${signedPct(report.changePct)})` : ''} from ${money(report.baseValue)}`);
  }
  if (report.best && report.worst) {
    lines.push(`Best step ${signedMoney(report.best.change)} (${time(report.best.at)}) · worst step ${signedMoney(report.worst.change)} (${time(report.worst.at)})`);
  }
  if (report.recordedSince !== undefined) lines.push(`Curve recorded by tradewarden since ${time(report.recordedSince)} (the exchange keeps no history)`);
  for (const m of report.missing) lines.push(`Missing: ${m}`);
  return lines;
}

export function pnlText(report: PnlReport): string {
  const curve = report.points.length > 1 ? [`  ${equitySparkline(report.points)}  (${report.points.length} points${report.timeframe ? `, ${report.timeframe} steps` : ''})`] : [];
  return [`P/L, last ${PERIOD_WORD[report.period]}:`, ...pnlLines(report).map((l) => `  ${l}`), ...curve].join('\n');
}

export function duplicatesText(duplicates: Duplicate[]): string {
  if (!duplicates.length) return 'No duplicates: exactly one trader (or none) is running.';
  return [
    `${duplicates.length} duplicate(s) found:`,
    ...duplicates.map(
      (d) => `  PID ${d.pid}  ${d.foundIn === 'pm2' ? `PM2 entry ${d.pm2Name ?? ''}` : 'outside PM2'}  started ${d.startedAt ? time(d.startedAt) : '?'}\n    ${d.command}`,
    ),
  ].join('\n');
}

export function stopDuplicatesText(result: StopDuplicatesResult): string {
  // Nothing asked for is still running: the same answer as the list of duplicates.
  if (!result.stopped.length && !result.failed.length && !result.notInLatestScan.length) return duplicatesText([]);
  const lines = result.stopped.map((s) => `Stopped PID ${s.pid} (${s.signal}).`);
  if (result.notInLatestScan.length) lines.push(`Not touched (not reported as duplicates by the latest scan): ${result.notInLatestScan.join(', ')}.`);
  for (const f of result.failed) lines.push(`Could not stop PID ${f.pid}: ${f.reason}`);
  return lines.join('\n') || 'Nothing to stop.';
}

const OUTCOME_ORDER: Record<SymbolReport['outcome'], number> = { failed: 0, queued: 1, closed: 2 };

export function flattenSymbolLine(s: SymbolReport): string {
  const icon = s.outcome === 'closed' ? '✔' : s.outcome === 'queued' ? '…' : '✘';
  return `  ${icon} ${s.symbol.padEnd(10)} qty ${String(s.qtyBefore).padStart(10)}  ${s.outcome}${s.closingOrderId ? `  order ${s.closingOrderId}` : ''}${s.reason ? `  — ${s.reason}` : ''}`;
}

/** Dust is left on purpose (no order would be taken for it), so it is said apart from the failures. */
export function flattenDustLine(dust: NonNullable<FlattenReport['dust']>): string {
  return `Dust left, not sellable (not a position): ${dust.map((d) => `${d.symbol} — ${d.reason.replace(/^dust: /, '')}`).join('; ')}.`;
}

export function flattenText(report: FlattenReport): string {
  const lines = [
    report.flat ? 'FLAT: the broker shows no positions and no open orders.' : 'NOT FLAT: see below.',
    report.trader.stopped
      ? `Trader: stopped${report.trader.pid ? ` (PID ${report.trader.pid})` : ' (was not running)'}${report.trader.forceKilled ? ', force-killed' : ''}.`
      : `Trader: could NOT be stopped: ${report.trader.error ?? 'unknown error'}.`,
    `Orders canceled: ${report.ordersCanceled}.`,
  ];
  if (report.marketOpen === false) lines.push('Market is closed: closing orders are queued for the next open.');
  if (report.symbols.length === 0) lines.push('No positions were open.');
  // What is still held first: with many positions, that is the line a reader must not miss.
  for (const s of [...report.symbols].sort((a, b) => OUTCOME_ORDER[a.outcome] - OUTCOME_ORDER[b.outcome])) lines.push(flattenSymbolLine(s));
  if (report.remainingPositions.length) lines.push(`Still held: ${report.remainingPositions.map((p) => `${p.symbol} ${p.qty}`).join(', ')}.`);
  if (report.remainingOpenOrders) lines.push(`Open orders left: ${report.remainingOpenOrders}.`);
  if (report.dust?.length) lines.push(flattenDustLine(report.dust));
  if (report.error) lines.push(`Error: ${report.error}`);
  if (report.brokerLock) lines.push(flattenLockLine(report.brokerLock));
  lines.push(`(${formatDuration(report.durationMs)})`);
  return lines.join('\n');
}

/** What flatten did with the broker lock: the account was open for its closes, then locked again (or not). */
export function flattenLockLine(lock: NonNullable<FlattenReport['brokerLock']>): string {
  if (lock.error && lock.relocked) return `Broker lock: ${lock.error}; the closes were refused by the broker.`;
  return (
    `Broker lock: lifted for the closes, the account was open ${formatDuration(lock.openMs)}; ` +
    (lock.relocked ? 'locked again.' : `NOT set back (${lock.error ?? 'unknown error'}): retrying; check the broker's dashboard.`)
  );
}

export function accountText(report: AccountReport): string {
  const a = report.account;
  const lines = [
    `Equity ${money(a.equity)} · cash ${money(a.cash)} · buying power ${money(a.buyingPower)} · day P/L ${money(a.dayPnl)}`,
    report.positions.length ? 'Positions:' : 'No open positions.',
    ...report.positions.map(
      (p) => `  ${p.symbol.padEnd(10)} ${String(p.qty).padStart(12)}  value ${money(p.marketValue)}  entry ${money(p.avgEntryPrice)}  P/L ${money(p.unrealizedPnl)}`,
    ),
  ];
  return lines.join('\n');
}

export function tradesText(trades: TradeSummary): string {
  return [
    `Trades: ${tradeCountText(trades)}`,
    ...(trades.refreshError ? [`  (broker unreachable, showing what was last recorded: ${trades.refreshError})`] : []),
    ...(trades.recent.length ? trades.recent.map((t) => `  ${time(t.at)}  ${t.side.padEnd(4)} ${String(t.qty).padStart(10)} ${t.symbol} @ ${t.price}`) : ['  no fills recorded yet']),
  ].join('\n');
}

export function alertsText(alerts: StoredAlert[]): string {
  if (!alerts.length) return 'No alerts.';
  return alerts
    .map((a) => {
      const deliveries = Object.entries(a.deliveries)
        .map(([sink, d]) => `${sink}: ${d.deliveredAt !== undefined ? `delivered${d.deliveredAt - a.createdAt > 5000 ? ` ${formatDuration(d.deliveredAt - a.createdAt)} late` : ''}` : `pending (${d.attempts} attempt(s)${d.lastError ? `, ${d.lastError}` : ''})`}`)
        .join('; ');
      return `${time(a.createdAt)} [${a.severity}] ${a.title}\n    ${a.body.split('\n').join('\n    ')}\n    ${deliveries || 'no sinks'}`;
    })
    .join('\n');
}

export function resumeText(result: ResumeReport): string {
  const lock = result.brokerLock
    ? 'lifted' in result.brokerLock
      ? ' Broker lock lifted (tradewarden had set it).'
      : ` The broker lock was set outside tradewarden and is left on (${brokerLockText(result.brokerLock.leftAlone)}): the trader cannot place orders until an operator runs unlock.`
    : '';
  return `Breaker cleared${result.breakerWas.tripped ? ` (was: ${result.breakerWas.reason})` : ' (was not tripped)'}.${lock} ${startText(result)}`;
}

export function auditText(entries: AuditEntry[]): string {
  return entries.map((e) => `${e.at}  ${e.who.padEnd(24)} ${e.what.padEnd(16)} ${e.outcome}${e.message ? `  ${e.message}` : ''}`).join('\n') || 'No audit entries.';
}

/** Each operation's report as text (CLI without --json, the demo console). */
export const TEXT: Renderers<string> = {
  status: statusText,
  start: startText,
  stop: stopText,
  restart: restartText,
  resume: resumeText,
  lock: lockText,
  unlock: lockText,
  logs: ({ logs }) => logs || '(the log is empty)',
  duplicates: duplicatesText,
  'stop-duplicates': stopDuplicatesText,
  flatten: flattenText,
  account: accountText,
  trades: tradesText,
  pnl: pnlText,
  digest: digestText,
  alerts: alertsText,
  audit: auditText,
};
export function healthText(probe: HealthProbe): string {
  const head = probe.healthy
    ? `healthy: controller PID ${probe.pid ?? '?'} serves ${probe.dataDir}`
    : `UNHEALTHY${probe.controller ? ` (controller PID ${probe.pid ?? '?'})` : ''}:\n${probe.reasons.map((r) => `  - ${r}`).join('\n')}`;
  const checks = (probe.checks ?? []).map(
    (c) => `  ${c.name.padEnd(14)} ${c.state.padEnd(8)} every ${c.intervalSeconds}s, last ok ${c.lastOkAt ? `${formatDuration(c.ageSeconds * 1000)} ago` : 'never'}${c.lastError ? ` — ${c.lastError}` : ''}`,
  );
  return [head, ...(checks.length ? ['checks:', ...checks] : [])].join('\n');
}
