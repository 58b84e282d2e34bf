// /trades — recent fills and the rolling-hour count against the limit (src/core/catalogue.ts).
import { slashCommand } from '../src/discord/command.ts';

export default slashCommand('trades');
