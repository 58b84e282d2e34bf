// /pnl [period] — equity now, P/L over the period, best and worst step, with the equity curve as a
// PNG. Declared in the operation catalogue (src/core/catalogue.ts); the chart is attached by its
// Discord reply (REPLIES.pnl in src/discord/render.ts), drawn in the chart renderer's process.
import { slashCommand } from '../src/discord/command.ts';

export default slashCommand('pnl');
