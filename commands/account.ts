// /account — equity, cash, buying power, day P/L and positions at the broker.
import { InteractionContextType, SlashCommandBuilder } from 'discord.js';
import type { Command } from '../src/discord/command.ts';
import { accountEmbed } from '../src/discord/render.ts';

const account: Command = {
  data: new SlashCommandBuilder()
    .setName('account')
    .setDescription('Equity, cash, buying power, day P/L and open positions')
    .setContexts(InteractionContextType.Guild),
  access: 'member',
  async execute(interaction, { core }) {
    await interaction.editReply({ embeds: [accountEmbed(await core.account())] });
  },
};

export default account;
