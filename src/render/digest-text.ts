// The digest in words, line by line: shared by the terminal, the log (what the scheduled digest
// prints without Discord) and the Discord embed, which gives the same lines its own bold labels and
// times that read in each reader's zone. Short lines: it is read on a phone.
import type { ClosedTrade, DigestReport } from '../core/reports.ts';
import { formatDuration } from '../duration.ts';
import { equitySparkline, money, signedMoney } from './text.ts';

export interface DigestStyle {
  /** an instant, as this front shows times */
  when(ms: number): string;
  /** a line's label */
  label(text: string): string;
}

/** "Mon 5 Jan 21:00" in the digest's zone (DIGEST_TZ). */
export function zonedTime(ms: number, timeZone: string): string {
  const parts = new Intl.DateTimeFormat('en-GB', { timeZone, weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(ms);
  const part = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  return `${part('weekday')} ${part('day')} ${part('month')} ${part('hour')}:${part('minute')}`;
}

const signedPct = (n: number) => `${n > 0 ? '+' : ''}${n.toFixed(2)}%`;
const counted = (counts: Partial<Record<string, number>>) =>
  Object.entries(counts)
    .filter(([, n]) => (n ?? 0) > 0)
    .sort(([a, x], [b, y]) => (y ?? 0) - (x ?? 0) || a.localeCompare(b))
    .map(([name, n]) => `${name.replace(/_/g, ' ')} ${n}`);
const sum = (counts: Partial<Record<string, number>>) => Object.values(counts).reduce<number>((a, n) => a + (n ?? 0), 0);
const closedText = (t: ClosedTrade) => `${t.symbol} ${signedMoney(t.pnl)} (${t.side} ${t.qty} @ ${money(t.price)})`;

/** The period, then one line per subject; every missing read is named last. */
export function digestLines(report: DigestReport, style: DigestStyle): string[] {
  const { label } = style;
  const lines: string[] = [];
  const span = formatDuration(report.to - report.from).replace(/ 0m$/, '');
  lines.push(`${label('Period')} ${style.when(report.from)} → ${style.when(report.to)} (${span}${report.firstPeriod ? ', the first digest' : ''})`);
  if (report.due?.lateByMs !== undefined) {
    const others = report.due.missedBefore ? `; it covers ${report.due.missedBefore} earlier due time(s) too` : '';
    lines.push(`${label('LATE')} due ${style.when(report.due.at)}, sent ${formatDuration(report.due.lateByMs)} after: nothing ran the schedule then${others}`);
  }

  if (report.equity !== undefined) {
    const change =
      report.change !== undefined && report.equityAtStart !== undefined
        ? ` · ${signedMoney(report.change)}${report.changePct !== undefined ? ` (${signedPct(report.changePct)})` : ''} from ${money(report.equityAtStart)}`
        : ' · change unknown';
    lines.push(`${label('Equity')} ${money(report.equity)}${change}`);
  } else lines.push(`${label('Equity')} unknown`);

  const trades = report.trades;
  if (trades && trades.count) {
    const symbols = trades.bySymbol.map((s) => `${s.symbol} ${[s.buys ? `${s.buys} buy` : '', s.sells ? `${s.sells} sell` : ''].filter(Boolean).join('/')}`);
    const extra = [trades.flattenCloses ? `${trades.flattenCloses} by flatten` : '', trades.source === 'recorded' ? 'as recorded by the watch' : ''].filter(Boolean);
    lines.push(`${label('Trades')} ${trades.count}: ${symbols.join(' · ')}${extra.length ? ` (${extra.join('; ')})` : ''}`);
  } else lines.push(`${label('Trades')} ${trades ? 'none' : 'unknown'}`);
  if (report.best && report.worst && report.best.orderId !== report.worst.orderId) {
    lines.push(`${label('Best')} ${closedText(report.best)} · ${label('worst')} ${closedText(report.worst)}`);
  } else if (report.best) lines.push(`${label('Closed')} ${closedText(report.best)}`);
  else if (report.closedTrades === 0) lines.push(`${label('Best/worst')} no trade closed a position`);
  if (report.unranked) lines.push(`${label('Unranked')} ${report.unranked} close(s) of positions older than the fills read (no known entry price)`);

  if (report.trader) {
    const t = report.trader;
    const up = t.uptimeMs !== undefined ? ` for ${formatDuration(t.uptimeMs)}` : '';
    const restarts = t.restarts !== undefined ? `${t.restarts} restart(s) in the period (PM2: ${t.restartsTotal} in all)` : `PM2 restarts ${t.restartsTotal} in all`;
    lines.push(`${label('Trader')} ${t.state === 'not_found' ? 'not in PM2' : t.state}${up} · ${restarts}`);
  } else lines.push(`${label('Trader')} unknown`);

  const alerts = counted(report.alerts);
  lines.push(`${label('Alerts')} ${alerts.length ? `${sum(report.alerts)}: ${alerts.join(', ')}` : 'none'}`);
  const guards = [`breaker trips ${report.breakerTrips}`, `duplicates ended ${report.duplicatesEnded}`];
  if (report.gateRefusals) {
    const refusals = counted(report.gateRefusals.byReason);
    const since = report.gateRefusals.since !== undefined ? ` since ${style.when(report.gateRefusals.since)}` : '';
    guards.push(`gate refusals ${sum(report.gateRefusals.byReason)}${refusals.length ? ` (${refusals.join(', ')})` : ''}${since}`);
  }
  lines.push(`${label('Guards')} ${guards.join(' · ')}`);
  for (const m of report.missing) lines.push(`${label('Could not read')} ${m}`);
  return lines;
}

/** The terminal's and the log's digest: the lines, and the curve as a sparkline. */
export function digestText(report: DigestReport): string {
  const style: DigestStyle = { when: (ms) => zonedTime(ms, report.timeZone), label: (text) => text };
  const curve = report.points.length > 1 ? [`  curve ${equitySparkline(report.points)} (${report.points.length} points${report.timeframe ? `, ${report.timeframe} steps` : ''})`] : [];
  return [`Digest (${report.timeZone}):`, ...digestLines(report, style).map((l) => `  ${l}`), ...curve].join('\n');
}
