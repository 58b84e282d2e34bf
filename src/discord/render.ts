// Core reports as Discord embeds, within Discord's limits (field values ≤ 1024, description ≤ 4096).
import { AttachmentBuilder, EmbedBuilder } from 'discord.js';
import type { Renderers } from '../core/catalogue.ts';
import type { AccountReport, AlertSeverity, Duplicate, FlattenReport, PnlReport, ProcessState, StatusReport, StoredAlert, StopDuplicatesResult, TradeSummary } from '../core/reports.ts';
import { formatDuration } from '../duration.ts';
import { TEXT, brokerLockText, duplicatesText, gateText, lossText, flattenDustLine, flattenLockLine, flattenSymbolLine, flattenText, megabytes, money, pnlLines, stopDuplicatesText, streamText, tradeCountText } from '../render/text.ts';
import { describeError } from '../errors.ts';
import { drawEquityChart } from '../render/chart-renderer.ts';
import { sparkline } from '../watch/trade-window.ts';
import { digestReply } from './digest-render.ts';

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
  const problem = p.duplicates.length > 0 || report.breaker.tripped || report.trades.count > report.trades.limit || Boolean(report.brokerLock?.locked || report.brokerLock?.failing);
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
          ? `${money(report.account.equity)} (day ${money(report.account.dayPnl)}), ${report.account.positions} position(s), read ${relative(report.account.at)}`
          : clip(`unavailable: ${report.accountError ?? '?'}`, 1024),
        inline: true,
      },
      ...(report.stream ? [{ name: 'Trade stream', value: clip(streamText(report.stream), 1024), inline: true }] : []),
      ...(report.brokerLock ? [{ name: 'Broker lock', value: clip(brokerLockText(report.brokerLock), 1024), inline: true }] : []),
      ...(report.gate ? [{ name: 'Order gate', value: clip(gateText(report.gate), 1024), inline: true }] : []),
      ...(report.loss ? [{ name: 'Loss limit', value: clip(lossText(report.loss), 1024), inline: true }] : []),
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

/** Where a reader sees every line a Discord reply had to leave out. */
export const FULL_ACCOUNT_HINT = '`tradewarden account --json`';

/** Discord's limits: 4096 per description, 10 embeds and 6000 characters per message. */
const DESCRIPTION_MAX = 4096;
const MESSAGE_EMBEDS_MAX = 10;
const MESSAGE_CHARS_MAX = 6000;

/**
 * Lines joined within `max` characters; what does not fit is counted in a last line made by
 * `more(n)`, never silently cut mid-list.
 */
export function fitLines(lines: readonly string[], max: number, more: (left: number) => string): string {
  const shown: string[] = [];
  let used = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const tail = i < lines.length - 1 ? more(lines.length - i - 1).length + 1 : 0;
    if (used + line.length + 1 + tail > max) return [...shown, more(lines.length - i)].join('\n');
    shown.push(line);
    used += line.length + 1;
  }
  return shown.join('\n');
}

/** Words joined with ", " within `max` characters; the rest counted by `more(n)`. */
export function fitWords(words: readonly string[], max: number, more: (left: number) => string): string {
  let out = '';
  for (let i = 0; i < words.length; i++) {
    const next = out ? `${out}, ${words[i]}` : words[i]!;
    const tail = i < words.length - 1 ? more(words.length - i - 1).length + 2 : 0;
    if (next.length + tail > max) return `${out}${out ? ' ' : ''}${more(words.length - i)}`;
    out = next;
  }
  return out;
}

/** The flatten report as one embed when it fits (the usual case). */
export function flattenEmbed(report: FlattenReport): EmbedBuilder {
  return flattenMessages(report)[0]![0]!;
}

/**
 * The flatten report as Discord messages (each a list of embeds). When the whole report fits one
 * embed it is one. Otherwise nothing that says a position is still held is ever dropped: a
 * summary first, then every failed and queued symbol (split across embeds, and messages when
 * there are very many), then the closed ones, summarized to what fits.
 */
export function flattenMessages(report: FlattenReport): EmbedBuilder[][] {
  const title = report.flat ? 'Flatten: account is flat' : 'Flatten: NOT flat';
  const colour = report.flat ? COLOURS.ok : COLOURS.critical;
  const whole = '```\n' + flattenText(report) + '\n```';
  if (whole.length <= DESCRIPTION_MAX) return [[new EmbedBuilder().setTitle(title).setColor(colour).setDescription(whole)]];

  const count = (outcome: string) => report.symbols.filter((s) => s.outcome === outcome).length;
  const failedN = count('failed');
  const queuedN = count('queued');
  const closed = report.symbols.filter((s) => s.outcome === 'closed');
  const summary = [
    report.flat ? 'FLAT: the broker shows no positions and no open orders.' : 'NOT FLAT: see below.',
    `${report.symbols.length} position(s): ${failedN} failed, ${queuedN} queued, ${closed.length} closed.`,
    report.trader.stopped
      ? `Trader: stopped${report.trader.pid ? ` (PID ${report.trader.pid})` : ' (was not running)'}${report.trader.forceKilled ? ', force-killed' : ''}.`
      : `Trader: could NOT be stopped: ${report.trader.error ?? 'unknown error'}.`,
    `Orders canceled: ${report.ordersCanceled}.${report.remainingOpenOrders ? ` Open orders left: ${report.remainingOpenOrders}.` : ''}`,
    ...(report.marketOpen === false ? ['Market is closed: closing orders are queued for the next open.'] : []),
    ...(report.remainingPositions.length ? [`Still held: ${report.remainingPositions.length} position(s); every one is listed below.`] : []),
    ...(report.dust?.length ? [flattenDustLine(report.dust)] : []),
    ...(report.error ? [`Error: ${report.error}`] : []),
    ...(report.brokerLock ? [flattenLockLine(report.brokerLock)] : []),
    `(${formatDuration(report.durationMs)})`,
  ].join('\n');
  const embeds: EmbedBuilder[] = [new EmbedBuilder().setTitle(title).setColor(colour).setDescription(clip(summary, DESCRIPTION_MAX))];

  // Every line that matters, in embeds of at most DESCRIPTION_MAX characters each.
  const problems = [...report.symbols.filter((s) => s.outcome === 'failed'), ...report.symbols.filter((s) => s.outcome === 'queued')].map((s) => clip(flattenSymbolLine(s), 1000));
  const reported = new Set(report.symbols.filter((s) => s.outcome !== 'closed').map((s) => s.symbol.replace('/', '')));
  const heldUnlisted = report.remainingPositions.filter((p) => !reported.has(p.symbol.replace('/', ''))).map((p) => `  ✘ ${p.symbol.padEnd(10)} qty ${String(p.qty).padStart(10)}  still held`);
  const chunks: string[][] = [];
  for (const line of [...problems, ...heldUnlisted]) {
    const last = chunks.at(-1);
    if (last && last.join('\n').length + line.length + 1 + 8 <= DESCRIPTION_MAX) last.push(line);
    else chunks.push([line]);
  }
  chunks.forEach((chunk, i) =>
    embeds.push(
      new EmbedBuilder()
        .setTitle(`Still open${chunks.length > 1 ? ` (${i + 1}/${chunks.length})` : ''}`)
        .setColor(COLOURS.critical)
        .setDescription('```\n' + chunk.join('\n') + '\n```'),
    ),
  );
  if (closed.length) {
    const names = closed.map((s) => s.symbol);
    embeds.push(
      new EmbedBuilder()
        .setTitle(`Closed (${closed.length})`)
        .setColor(COLOURS.ok)
        .setDescription(fitWords(names, 1000, (n) => `…and ${n} more; ${FULL_ACCOUNT_HINT} shows what is held now`)),
    );
  }
  // Pack embeds into messages within Discord's per-message limits.
  const messages: EmbedBuilder[][] = [];
  let size = 0;
  for (const embed of embeds) {
    const chars = (embed.data.title?.length ?? 0) + (embed.data.description?.length ?? 0);
    const current = messages.at(-1);
    if (current && current.length < MESSAGE_EMBEDS_MAX && size + chars <= MESSAGE_CHARS_MAX) {
      current.push(embed);
      size += chars;
    } else {
      messages.push([embed]);
      size = chars;
    }
  }
  return messages;
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
          ? fitLines(
              report.positions.map((p) => clip(`\`${p.symbol}\` ${p.qty} · ${money(p.marketValue)} · P/L ${money(p.unrealizedPnl)}`, 200)),
              1024,
              (n) => `…and ${n} more: ${FULL_ACCOUNT_HINT} lists them all`,
            )
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
  const lines = duplicatesText(duplicates).split('\n').map((l) => clip(l, 500));
  return new EmbedBuilder()
    .setTitle(duplicates.length ? `${duplicates.length} duplicate(s)` : 'No duplicates')
    .setColor(duplicates.length ? COLOURS.critical : COLOURS.ok)
    .setDescription('```\n' + fitLines(lines, DESCRIPTION_MAX - 8, (n) => `…${n} more line(s) not shown: \`tradewarden duplicates --json\` lists every copy`) + '\n```');
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

/** One Discord message: text, embeds, or both, and the files they show (a chart). */
export interface ReplyMessage {
  content?: string;
  embeds?: EmbedBuilder[];
  /** uploaded with the message; an embed shows one as its image by `attachment://<name>` */
  files?: AttachmentBuilder[];
}

/** What a reply carries: the message that answers, and follow-up messages when one is not enough. */
export interface Reply extends ReplyMessage {
  /** sent after the answer, in order (a long flatten report continues here) */
  followUps?: ReplyMessage[];
}

const text = (content: string): Reply => ({ content: clip(content, 2000) });
const embed = (e: EmbedBuilder): Reply => ({ embeds: [e] });

function logsReply(logs: string): Reply {
  // Keep the newest lines that fit in one message (2000 characters with the code fence).
  const body = logs.length > 1900 ? '…' + logs.slice(-1890) : logs;
  return text('```\n' + (body.replace(/```/g, "'''") || '(empty)') + '\n```');
}

function stopDuplicatesReply(result: StopDuplicatesResult): Reply {
  const nothingAsked = !result.stopped.length && !result.failed.length;
  if (nothingAsked && !result.notInLatestScan.length) return embed(duplicatesEmbed([]));
  if (nothingAsked) {
    const named = result.notInLatestScan;
    return text(`PID ${named.join(', ')} ${named.length === 1 ? 'is' : 'are'} no longer running as duplicates: nothing to stop.`);
  }
  return text(stopDuplicatesText(result));
}

/** The report replaces the prompt; a report too long for one message continues in follow-ups. */
function flattenReply(report: FlattenReport): Reply {
  const [first, ...rest] = flattenMessages(report);
  return { embeds: first ?? [], followUps: rest.map((embeds) => ({ embeds })) };
}

const PNL_CHART = 'pnl.png';

/**
 * /pnl: the figures, and the equity curve as a PNG drawn in the chart renderer's process. The
 * figures are the answer; a chart that cannot be drawn is named in the footer, never a failure.
 */
async function pnlReply(report: PnlReport): Promise<Reply> {
  if (report.points.length < 2 || report.baseValue === undefined) return embed(pnlEmbed(report));
  try {
    const chart = await drawEquityChart({ points: report.points, baseValue: report.baseValue, title: `Equity, last ${report.period}` });
    return { embeds: [pnlEmbed(report, PNL_CHART)], files: [new AttachmentBuilder(chart.png, { name: PNL_CHART })] };
  } catch (error) {
    return embed(pnlEmbed(report).setFooter({ text: `chart unavailable: ${describeError(error).slice(0, 200)}` }));
  }
}

/** Each operation's report as a Discord reply; one that draws a picture (/pnl) answers when it is drawn. */
export const REPLIES: Renderers<Reply | Promise<Reply>> = {
  status: (report) => embed(statusEmbed(report)),
  start: (result) => text(TEXT.start(result, {})),
  stop: (result) => text(TEXT.stop(result, {})),
  restart: (result, args) => text(TEXT.restart(result, args)),
  resume: (result, args) => text(TEXT.resume(result, args)),
  lock: (result, args) => text(TEXT.lock(result, args)),
  unlock: (result, args) => text(TEXT.unlock(result, args)),
  logs: ({ logs }) => logsReply(logs),
  duplicates: (duplicates) => embed(duplicatesEmbed(duplicates)),
  'stop-duplicates': stopDuplicatesReply,
  flatten: flattenReply,
  account: (report) => embed(accountEmbed(report)),
  trades: (trades) => embed(tradesEmbed(trades)),
  pnl: pnlReply,
  digest: digestReply,
  alerts: (alerts) => embed(alertsEmbed(alerts)),
  audit: (entries, args) => text('```\n' + TEXT.audit(entries, args) + '\n```'),
};
