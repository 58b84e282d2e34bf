// /flatten — the emergency close: stop the trader, cancel orders, close every position, verify flat.
// Its confirmation and behaviour are declared in the operation catalogue (src/core/catalogue.ts).
import { PermissionFlagsBits } from 'discord.js';
import { slashCommand } from '../src/discord/command.ts';

export default slashCommand('flatten', { defaultMemberPermissions: PermissionFlagsBits.ManageGuild });
