// The alert sink's failures say what an operator must fix: a rejected token (which discord.js then
// drops for good) and a channel the bot may not post in. Real discord.js client, local stand-in.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client, Events, GatewayIntentBits } from 'discord.js';
import { parseConfig } from '../src/config.ts';
import { discordAlertSink } from '../src/discord/alert-sink.ts';
import type { StoredAlert } from '../src/store/schema.ts';
import { startDiscordStandIn, type DiscordStandIn } from '../testkit/discord/discord.ts';

const applicationId = '1400000000000000001';
const guildId = '1400000000000000002';
const channelId = '1400000000000000003';
let discord: DiscordStandIn;
let client: Client;

before(async () => {
  discord = await startDiscordStandIn({ applicationId, guilds: [{ id: guildId, name: 'desk', channels: [{ id: channelId, name: 'alerts' }] }] });
  client = new Client({ intents: [GatewayIntentBits.Guilds], rest: { api: discord.apiUrl } });
  const ready = new Promise<void>((resolve) => client.once(Events.ClientReady, () => resolve()));
  await client.login(discord.token);
  await ready;
});
after(async () => {
  await client?.destroy();
  await discord?.close();
});

const alert: StoredAlert = {
  id: '2b6f1c1e-8a4e-4d7a-9f57-3f0c0c5a8e11',
  kind: 'process_down',
  severity: 'critical',
  key: 'k',
  title: 'Trader is down',
  body: 'trading-bot should be running but is stopped.',
  facts: {},
  createdAt: Date.now(),
  deliveries: {},
};

test('a channel the bot may not post in → an error that names the permissions; a rejected token → says so', async () => {
  const config = parseConfig({ DISCORD_TOKEN: discord.token, DISCORD_CLIENT_ID: applicationId, DISCORD_GUILD_ID: guildId, DISCORD_ALERT_CHANNEL_ID: channelId });
  const sink = discordAlertSink(client, config);

  discord.failNext({ method: 'POST', path: /\/channels\/\d+\/messages$/, status: 403 });
  await assert.rejects(sink.deliver(alert, { lateByMs: 0 }), /Discord refused the post \(403\): check that the bot can view and post in DISCORD_ALERT_CHANNEL_ID/);
  assert.ok(await sink.deliver(alert, { lateByMs: 0 }), 'delivered once the channel is fixed');

  discord.failNext({ method: 'POST', path: /\/channels\/\d+\/messages$/, status: 401 });
  await assert.rejects(sink.deliver(alert, { lateByMs: 0 }), /Discord rejected the bot token \(401\): alerts wait in the outbox/);
  // discord.js has dropped its token: every later attempt says the same, not a riddle.
  await assert.rejects(sink.deliver(alert, { lateByMs: 0 }), /Discord rejected the bot token/);
});
