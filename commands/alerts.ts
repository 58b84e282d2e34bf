// /alerts — the recent alerts and whether each was delivered.
import { InteractionContextType, SlashCommandBuilder } from 'discord.js';
import type { Command } from '../src/discord/command.ts';
import { alertsEmbed } from '../src/discord/render.ts';

const alerts: Command = {
  data: new SlashCommandBuilder()
    .setName('alerts')
    .setDescription('Recent alerts and their delivery state')
    .setContexts(InteractionContextType.Guild)
    .addIntegerOption((o) => o.setName('count').setDescription('How many (1–25, default 10)').setMinValue(1).setMaxValue(25)),
  access: 'member',
  async execute(interaction, { core }) {
    await interaction.editReply({ embeds: [alertsEmbed(await core.alerts(interaction.options.getInteger('count') ?? 10))] });
  },
};

export default alerts;
