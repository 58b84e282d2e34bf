// /bot — the trading process: status, start, stop, restart, resume, logs, duplicates, stop-duplicates.
// Subcommands, options, access and behaviour come from the operation catalogue (src/core/catalogue.ts).
import { slashCommand } from '../src/discord/command.ts';

export default slashCommand('bot', { description: 'The trading process under PM2' });
