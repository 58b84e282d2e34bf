// Core reports as Discord embeds, within Discord's limits (field values ≤ 1024, description ≤ 4096).
import { EmbedBuilder } from 'discord.js';
import type { AccountReport, StatusReport, TradeSummary } from '../core/operations.ts';
import type { FlattenReport } from '../core/flatten.ts';
import type { AlertSeverity, StoredAlert } from '../store/schema.ts';
import type { Duplicate, ProcessState } from '../supervisor/types.ts';
import { formatDuration } from '../alerts/outbox.ts';
import { duplicatesText, flattenText, megabytes, money, pnlLines, tradeCountText } from '../render/text.ts';
import type { PnlReport } from '../core/review.ts';
import { sparkline } from '../watch/trade-window.ts';

export const COLOURS = {
  ok: 0x2ecc71,
  info: 0x3498db,
  warning: 0xf1c40f,
  critical: 0xe74c3c,
  idle: 0x95a5a6,
} as const;

const stateColour: Record<ProcessState, number> = {
  online: COLOURS.ok,
  launching: COLOURS.info,
  stopping: COLOURS.warning,
  stopped: COLOURS.idle,
  not_found: COLOURS.idle,
  errored: COLOURS.critical,
};

export const severityColour: Record<AlertSeverity, number> = { info: COLOURS.info, warning: COLOURS.warning, critical: COLOURS.critical };

export const clip = (text: string, max: number) => (text.length <= max ? text : text.slice(0, max - 1) + '…');
const relative = (ms: number) => `<t:${Math.floor(ms / 1000)}:R>`;

export function statusEmbed(report: StatusReport): EmbedBuilder {
  const p = report.process;
  const problem = p.duplicates.length > 0 || report.breaker.tripped || report.trades.count > report.trades.limit;
  const embed = new EmbedBuilder()
    .setTitle(`${p.name}: ${p.state.replace('_', ' ')}`)
    .setColor(problem ? COLOURS.critical : stateColour[p.state])
    .addFields(
      { name: 'PID', value: p.pid ? String(p.pid) : '—', inline: true },
      { name: 'Uptime', value: p.uptimeMs !== undefined ? formatDuration(p.uptimeMs) : '—', inline: true },
      { name: 'Restarts', value: String(p.restarts), inline: true },
      { name: 'CPU / memory', value: `${p.cpuPercent ?? '—'}% / ${megabytes(p.memoryBytes)}`, inline: true },
      { name: 'Trades (1h)', value: `${report.trades.count}/${report.trades.limit} \`${sparkline(report.trades.buckets)}\``, inline: true },
      { name: 'Breaker', value: report.breaker.tripped ? clip(`TRIPPED: ${report.breaker.reason ?? ''}`, 1024) : 'ok', inline: true },
      {
        name: 'Duplicates',
        value: p.duplicates.length ? clip(p.duplicates.map((d) => `PID ${d.pid} (${d.foundIn})`).join(', '), 1024) : 'none',
        inline: true,
      },
      {
        name: 'Account',
        value: report.account
          ? `${money(report.account.equity)} (day ${money(report.account.dayPnl)}), ${report.account.positions} position(s)`
          : clip(`unavailable: ${report.accountError ?? '?'}`, 1024),
        inline: true,
      },
      {
        name: 'Last alert',
        value: report.lastAlert ? clip(`${report.lastAlert.title} ${relative(report.lastAlert.createdAt)}`, 1024) : 'none',
      },
    );
  if (report.desired) embed.setFooter({ text: `wanted ${report.desired.state} (by ${report.desired.by})` });
  return embed;
}

export function alertEmbed(alert: StoredAlert, lateByMs: number): EmbedBuilder {
  const embed = new EmbedBuilder()
    .setTitle(clip(alert.title, 256))
    .setDescription(clip(alert.body, 4000))
    .setColor(severityColour[alert.severity])
    .setTimestamp(alert.createdAt)
    .setFooter({ text: `${alert.kind}${lateByMs > 0 ? ` · delivered ${formatDuration(lateByMs)} late` : ''}` });
  return embed;
}

export function flattenEmbed(report: FlattenReport): EmbedBuilder {
  return new EmbedBuilder()
    .setTitle(report.flat ? 'Flatten: account is flat' : 'Flatten: NOT flat')
    .setColor(report.flat ? COLOURS.ok : COLOURS.critical)
    .setDescription(clip('```\n' + flattenText(report) + '\n```', 4096));
}

export function accountEmbed(report: AccountReport): EmbedBuilder {
  const a = report.account;
  return new EmbedBuilder()
    .setTitle('Account')
    .setColor(a.dayPnl < 0 ? COLOURS.warning : COLOURS.ok)
    .addFields(
      { name: 'Equity', value: money(a.equity), inline: true },
      { name: 'Cash', value: money(a.cash), inline: true },
      { name: 'Buying power', value: money(a.buyingPower), inline: true },
      { name: 'Day P/L', value: money(a.dayPnl), inline: true },
      {
        name: `Positions (${report.positions.length})`,
        value: report.positions.length
          ? clip(report.positions.map((p) => `\`${p.symbol}\` ${p.qty} · ${money(p.marketValue)} · P/L ${money(p.unrealizedPnl)}`).join('\n'), 1024)
          : 'none',
      },
    );
}

export function tradesEmbed(trades: TradeSummary): EmbedBuilder {
  const lines = trades.recent.slice(0, 15).map((t) => `${relative(t.at)} ${t.side} ${t.qty} \`${t.symbol}\` @ ${t.price}`);
  // Stale figures must say so: a runaway during a broker outage would otherwise read as "0/3".
  const stale = trades.refreshError ? `\n⚠ Broker unreachable: showing what was last recorded (${clip(trades.refreshError, 500)})` : '';
  return new EmbedBuilder()
    .setTitle(`Trades: ${trades.count}/${trades.limit} in the last hour`)
    .setColor(trades.count > trades.limit ? COLOURS.critical : stale ? COLOURS.warning : COLOURS.ok)
    .setDescription(clip(`\`${tradeCountText(trades)}\`${stale}\n\n${lines.join('\n') || 'No fills recorded yet.'}`, 4096));
}

export function alertsEmbed(alerts: StoredAlert[]): EmbedBuilder {
  const lines = alerts.map((a) => {
    const pending = Object.entries(a.deliveries).filter(([, d]) => d.deliveredAt === undefined).map(([sink]) => sink);
    return `${relative(a.createdAt)} **${a.title}**${pending.length ? ` (pending: ${pending.join(', ')})` : ''}`;
  });
  return new EmbedBuilder().setTitle('Recent alerts').setColor(COLOURS.info).setDescription(clip(lines.join('\n') || 'No alerts.', 4096));
}

export function duplicatesEmbed(duplicates: Duplicate[]): EmbedBuilder {
  return new EmbedBuilder()
    .setTitle(duplicates.length ? `${duplicates.length} duplicate(s)` : 'No duplicates')
    .setColor(duplicates.length ? COLOURS.critical : COLOURS.ok)
    .setDescription(clip('```\n' + duplicatesText(duplicates) + '\n```', 4096));
}

/** /pnl: the figures as text first; the chart, when there is one, is the embed's image. */
export function pnlEmbed(report: PnlReport, image?: string): EmbedBuilder {
  const colour = report.change === undefined ? COLOURS.warning : report.change < 0 ? COLOURS.critical : COLOURS.ok;
  const embed = new EmbedBuilder()
    .setTitle(`P/L, last ${report.period}`)
    .setColor(report.missing.length ? COLOURS.warning : colour)
    .setDescription(clip(pnlLines(report).join('\n') || 'No figures.', 4096));
  if (image) embed.setImage(`attachment://${image}`);
  if (report.timeframe && report.points.length) embed.setFooter({ text: `${report.points.length} points, ${report.timeframe} steps` });
  return embed;
}
