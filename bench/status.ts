// `/bot status` through Discord (target p95 < 50 ms, never past Discord's 3 s acknowledgement): the
// real discord.js client logged in to the local Discord stand-in, the real app with a heartbeat trader
// online under a private PM2 daemon and the paper broker behind it. Each sample runs from the
// INTERACTION_CREATE the stand-in dispatches to the moment it holds the reply's final content (the
// edit of the deferred reply); 200 in a row (STATUS_SAMPLES), after 10 to warm up. Beside it, the
// in-process `app.core.status()` that the reply renders, to show what Discord's round trips add.
// Run twice: with the broker answering at once, and with every broker answer 400 ms late
// (STATUS_BROKER_DELAY_MS; target p95 < 100 ms even then: status answers from the account figures
// the watch recorded, never from a broker call).
import path from 'node:path';
import { buildApp } from '../src/app.ts';
import { parseConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { startDiscord } from '../src/discord/front.ts';
import { startPaperBroker } from '../testkit/paper-broker.ts';
import { startDiscordStandIn } from '../testkit/discord/discord.ts';
import { copyTrader, makeTempHome } from '../testkit/pm2-home.ts';
import { fill } from '../testkit/fills.ts';
import { report } from './stats.ts';
import { cleanUp, cleanups } from './cleanup.ts';

const SAMPLES = Math.max(1, Number(process.env.STATUS_SAMPLES ?? 200) || 200);
const WARM_UP = 10;
const ROOT = path.resolve(import.meta.dirname, '..');
const KEY_ID = 'PKBENCHSTATUS';
const SECRET = 'SKBENCHSTATUS';
const applicationId = '1100000000000000042';
const guildId = '1200000000000000042';
const channelId = '1300000000000000042';
const member = { user: { id: '1500000000000000042', username: 'member' }, roles: [] as string[] };


let failed = false;
try {
  const home = makeTempHome('tw-bstat-');
  cleanups.push(() => home.cleanup()); // ends this home's PM2 daemon (and the trader under it) by PID
  const trader = copyTrader(path.join(ROOT, 'examples/heartbeat-trader.js'), path.join(home.root, 'bots'));

  const paper = await startPaperBroker({ keyId: KEY_ID, secretKey: SECRET, cash: 1_000_000, prices: { AAPL: 200, MSFT: 400, TSLA: 250 } });
  cleanups.push(() => paper.close());
  paper.seedPosition('AAPL', 10, 200);
  paper.seedPosition('MSFT', -5, 400);
  paper.seedPosition('TSLA', 3, 250);

  const discord = await startDiscordStandIn({
    applicationId,
    guilds: [{ id: guildId, name: 'Desk', channels: [{ id: channelId, name: 'ops' }] }],
    waitTimeoutMs: 10_000,
  });
  cleanups.push(() => discord.close());

  const env = {
    DISCORD_TOKEN: discord.token,
    DISCORD_API_URL: discord.apiUrl,
    DISCORD_CLIENT_ID: applicationId,
    DISCORD_GUILD_ID: guildId,
    DISCORD_ALERT_CHANNEL_ID: channelId,
    APCA_API_KEY_ID: KEY_ID,
    APCA_API_SECRET_KEY: SECRET,
    APCA_API_BASE_URL: paper.url,
    DATA_DIR: home.dataDir,
    PM2_HOME: home.pm2Home,
    TRADING_SCRIPT: trader,
    TRADING_KILL_TIMEOUT_MS: '2000',
  };
  const config = parseConfig(env);
  const app = buildApp(config, { logger: createLogger({ secrets: config.secrets, level: 'warn' }), deliversAlerts: true, env: { ...process.env, ...env } });
  cleanups.push(() => app.close());
  const front = await startDiscord(app);
  if (!front) throw new Error('the Discord front did not start');
  cleanups.push(() => front.stop());

  // A realistic report: the trader online (PID, CPU, memory), fills this hour, positions at the broker.
  const { pid } = await app.core.start({ id: 'bench', name: 'bench', isOperator: true });
  const now = Date.now();
  await app.store.update((data) => {
    app.store.recordFills(data, [0, 1, 2].map((i) => fill(`bench-${i}`, 'AAPL', 'buy', 1, 200, now - i * 12 * 60_000)));
  });

  await app.accountWatch!.refresh(); // what the controller's watch does on its cadence
  for (const delayMs of [0, Number(process.env.STATUS_BROKER_DELAY_MS ?? 400)]) {
  paper.setDelay(delayMs);
  const label = delayMs ? `, broker ${delayMs} ms late` : '';
  // Interleaved, so both figures see the same machine load (other suites may be running).
  const viaDiscord: number[] = [];
  const acknowledged: number[] = [];
  const inProcess: number[] = [];
  for (let i = 0; i < WARM_UP + SAMPLES; i++) {
    let began = performance.now();
    const run = await discord.slashCommand({ channelId, ...member, name: 'bot', options: [{ type: 1, name: 'status', options: [] }] });
    const reply = await run.response();
    const discordMs = performance.now() - began;
    const fields = JSON.stringify(reply.embeds[0]?.fields ?? []);
    if (reply.embeds[0]?.title !== 'trading-bot: online' || !fields.includes(`"value":"${pid}"`)) {
      throw new Error(`sample ${i}: the reply is not the online status of PID ${pid}: ${JSON.stringify(reply.embeds[0] ?? reply.content)}`);
    }

    began = performance.now();
    const status = await app.core.status();
    const coreMs = performance.now() - began;
    if (status.process.pid !== pid) throw new Error(`in-process sample ${i}: PID ${status.process.pid}, expected ${pid}`);

    if (i < WARM_UP) continue;
    viaDiscord.push(discordMs);
    acknowledged.push(run.callbacks[0]?.afterMs ?? NaN);
    inProcess.push(coreMs);
  }

  report(`/bot status via discord.js, final${label}`, 'ms', viaDiscord, delayMs ? 'p95 < 100 ms' : 'p95 < 50 ms');
  report(`/bot status, acknowledged${label}`, 'ms', acknowledged, '< 3000 ms');
  report(`app.core.status() in process${label}`, 'ms', inProcess, '—');
  }
} catch (error) {
  failed = true;
  console.error(`status bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
} finally {
  await cleanUp();
}
process.exit(failed ? 1 : 0);
