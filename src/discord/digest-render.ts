// The digest as one Discord embed, readable on a phone: the text says everything (one short line a
// subject, bold labels, times in each reader's own zone), the equity curve as a PNG adds the shape.
// Used by /digest and by the scheduled post (digest-sink.ts).
import { AttachmentBuilder, EmbedBuilder } from 'discord.js';
import type { DigestReport } from '../core/reports.ts';
import { describeError } from '../errors.ts';
import { drawEquityChart } from '../render/chart-renderer.ts';
import { digestLines } from '../render/digest-text.ts';
import { COLOURS, clip, type Reply } from './render.ts';

export const DIGEST_CHART = 'digest.png';

const discordTime = (ms: number) => `<t:${Math.floor(ms / 1000)}:f>`;

export function digestEmbed(report: DigestReport, image?: string): EmbedBuilder {
  const colour = report.missing.length || report.due?.lateByMs !== undefined ? COLOURS.warning : report.change !== undefined && report.change < 0 ? COLOURS.critical : COLOURS.ok;
  const lines = digestLines(report, { when: discordTime, label: (text) => `**${text}**` });
  const embed = new EmbedBuilder()
    .setTitle(report.due?.lateByMs !== undefined ? 'Digest (late)' : 'Digest')
    .setColor(colour)
    .setDescription(clip(lines.join('\n'), 4096))
    .setFooter({ text: `${report.timeZone}${report.points.length > 1 ? ` · ${report.points.length} points${report.timeframe ? `, ${report.timeframe} steps` : ''}` : ''}` })
    .setTimestamp(report.to);
  if (image) embed.setImage(`attachment://${image}`);
  return embed;
}

/** The embed, with the curve drawn in the chart renderer's process; a chart that fails is named in the footer. */
export async function digestReply(report: DigestReport): Promise<Reply> {
  if (report.points.length < 2 || report.equityAtStart === undefined) return { embeds: [digestEmbed(report)] };
  try {
    const chart = await drawEquityChart({ points: report.points, baseValue: report.equityAtStart, title: 'Equity over the period' });
    return { embeds: [digestEmbed(report, DIGEST_CHART)], files: [new AttachmentBuilder(chart.png, { name: DIGEST_CHART })] };
  } catch (error) {
    const embed = digestEmbed(report);
    return { embeds: [embed.setFooter({ text: `${embed.data.footer?.text ?? ''} · chart unavailable: ${describeError(error).slice(0, 200)}` })] };
  }
}
