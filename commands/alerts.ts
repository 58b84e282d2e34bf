// /alerts — the recent alerts and whether each was delivered (src/core/catalogue.ts).
import { slashCommand } from '../src/discord/command.ts';

export default slashCommand('alerts');
