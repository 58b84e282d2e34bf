// /trades — recent fills and the rolling-hour count against the limit.
import { InteractionContextType, SlashCommandBuilder } from 'discord.js';
import type { Command } from '../src/discord/command.ts';
import { tradesEmbed } from '../src/discord/render.ts';

const trades: Command = {
  data: new SlashCommandBuilder()
    .setName('trades')
    .setDescription('Recent fills and the trade count of the last hour against the limit')
    .setContexts(InteractionContextType.Guild),
  access: 'member',
  async execute(interaction, { core }) {
    await interaction.editReply({ embeds: [tradesEmbed(await core.trades())] });
  },
};

export default trades;
