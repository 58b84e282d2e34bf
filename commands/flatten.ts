// /flatten — the emergency close: stop the trader, cancel orders, close every position, verify flat.
import { InteractionContextType, PermissionFlagsBits, SlashCommandBuilder } from 'discord.js';
import type { Command } from '../src/discord/command.ts';
import { flattenMessages } from '../src/discord/render.ts';

const flatten: Command = {
  data: new SlashCommandBuilder()
    .setName('flatten')
    .setDescription('EMERGENCY: stop the trader and close every position at the broker (asks for confirmation)')
    .setContexts(InteractionContextType.Guild)
    // A first gate in Discord's own UI; the router still checks the operator lists.
    .setDefaultMemberPermissions(PermissionFlagsBits.ManageGuild),
  access: 'operator',

  async execute(interaction, { core, actor, confirm }) {
    const click = await confirm(
      '**Flatten the account?** This stops the trader, cancels every open order and closes every position at the broker.',
      'Flatten now',
    );
    if (!click) return;
    const report = await core.flatten(actor);
    // The report replaces the prompt; a report too long for one message continues in follow-ups.
    const [first, ...rest] = flattenMessages(report);
    await interaction.editReply({ content: '', embeds: first ?? [], components: [] });
    for (const embeds of rest) await interaction.followUp({ embeds });
  },
};

export default flatten;
