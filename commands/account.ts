// /account — equity, cash, buying power, day P/L and positions at the broker (src/core/catalogue.ts).
import { slashCommand } from '../src/discord/command.ts';

export default slashCommand('account');
