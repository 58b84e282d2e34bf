// /digest — since the last digest (or the last 24 h): equity and its change, trades by symbol, the
// best and worst trade, the trader's uptime and restarts, alerts, breaker trips, duplicates ended
// and the gate's refusals, with the equity curve as a PNG. The same report DIGEST_CRON posts on its
// schedule (src/core/digest.ts; its embed in src/discord/digest-render.ts).
import { slashCommand } from '../src/discord/command.ts';

export default slashCommand('digest');
