// /pnl [period] — equity now, P/L over the period, best and worst step, and the equity curve as a
// PNG. The figures are the reply; the chart is added when it renders (never needed to understand it).
import { AttachmentBuilder, InteractionContextType, SlashCommandBuilder } from 'discord.js';
import type { Command } from '../src/discord/command.ts';
import { pnlEmbed } from '../src/discord/render.ts';
import { describeError } from '../src/errors.ts';
import { drawEquityChart } from '../src/render/chart-renderer.ts';
import { PNL_PERIODS } from '../src/core/review.ts';

const CHART_FILE = 'pnl.png';

const pnl: Command = {
  data: new SlashCommandBuilder()
    .setName('pnl')
    .setDescription('Equity now, P/L over a period, best and worst step, with a chart of the equity curve')
    .setContexts(InteractionContextType.Guild)
    .addStringOption((o) =>
      o
        .setName('period')
        .setDescription('How far back (default month)')
        .addChoices(...PNL_PERIODS.map((p) => ({ name: p, value: p }))),
    ),
  access: 'member',
  async execute(interaction, { core }) {
    const report = await core.pnl(interaction.options.getString('period') ?? undefined);
    if (report.points.length < 2 || report.baseValue === undefined) {
      await interaction.editReply({ embeds: [pnlEmbed(report)] });
      return;
    }
    try {
      const chart = await drawEquityChart({ points: report.points, baseValue: report.baseValue, title: `Equity, last ${report.period}` });
      await interaction.editReply({ embeds: [pnlEmbed(report, CHART_FILE)], files: [new AttachmentBuilder(chart.png, { name: CHART_FILE })] });
    } catch (error) {
      const embed = pnlEmbed(report).setFooter({ text: `chart unavailable: ${describeError(error).slice(0, 200)}` });
      await interaction.editReply({ embeds: [embed] });
    }
  },
};

export default pnl;
