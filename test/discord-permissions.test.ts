// The controller checks the bot's permissions where it posts, at connect and whenever Discord says
// something changed (issue 21). Real parts: the controller as `npm start` runs it (its Discord front
// logged in to the stand-in, the paper broker, a PM2 daemon in a temp home, METRICS_ADDR), the real
// `tradewarden health` CLI, and the stand-in changing the server the way an admin would, its gateway
// dispatching what Discord sends (CHANNEL_UPDATE, GUILD_ROLE_UPDATE, GUILD_MEMBER_UPDATE,
// GUILD_ROLE_DELETE, CHANNEL_DELETE). Each step waits for the log line the change brings, not for
// time: a re-check that does not happen on the event times the step out.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { parseConfig } from '../src/config.ts';
import { startController, type Controller } from '../src/controller.ts';
import { discordFront } from '../src/discord/front.ts';
import { postingChannels } from '../src/discord/channel-permissions.ts';
import { createLogger } from '../src/log.ts';
import { probeHealth } from '../src/health/probe.ts';
import { startDiscordStandIn, Permission, type DiscordStandIn } from '../testkit/discord/discord.ts';
import { startPaperBroker, type PaperBroker } from '../testkit/paper-broker.ts';
import { copyTrader, makeTempHome, type TempHome } from '../testkit/pm2-home.ts';
import { freeLoopbackPort } from '../testkit/ports.ts';

const BIN = path.resolve('bin/tradewarden.cjs');
const applicationId = '1120000000000000001';
const guildId = '1220000000000000001';
const botRoleId = (BigInt(guildId) + 1000n).toString(); // the stand-in's managed role for the bot
const alertChannelId = '1320000000000000001';
const feedChannelId = '1320000000000000002';
const mutedRoleId = '1420000000000000001'; // #fills hides itself from this role
const KEY = 'PKPERMSKEY0123456789';
const SECRET = 'SKPERMSsecretabcdefghijklmnopqrstuvwxyz0';
const INVITED = String(Permission.ViewChannel | Permission.SendMessages | Permission.EmbedLinks | Permission.AttachFiles);

let home: TempHome;
let discord: DiscordStandIn;
let paper: PaperBroker;
let controller: Controller;
let metricsUrl: string;
const lines: string[] = [];
const onLine = new Set<() => void>();

/** The first log line from `from` on that matches: waits for it (the controller logs as it learns). */
function logged(pattern: RegExp, from: number, what: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const look = () => {
      const line = lines.slice(from).find((l) => pattern.test(l));
      if (!line) return false;
      onLine.delete(look);
      clearTimeout(timer);
      resolve(line);
      return true;
    };
    const timer = setTimeout(() => {
      onLine.delete(look);
      reject(new Error(`no log line for ${what} within ${timeoutMs} ms (${pattern}); logged since:\n${lines.slice(from).join('\n')}`));
    }, timeoutMs);
    if (!look()) onLine.add(look);
  });
}

/** `tradewarden health` as an operator runs it. */
function healthCli(): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, 'health'], { cwd: home.root, env: { PATH: process.env.PATH!, HOME: home.root, DATA_DIR: home.dataDir, PM2_HOME: home.pm2Home }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stdout += c));
    child.on('exit', (code) => {
      if (process.env.TW_TEST_LOG) console.log(`$ tradewarden health\n${stdout}`);
      resolve({ code, stdout });
    });
  });
}

const discordReasons = async () => (await probeHealth(home.dataDir)).reasons.filter((r) => r.startsWith('Discord:'));

before(async () => {
  home = makeTempHome('tw-perms-');
  const trader = copyTrader(path.resolve('examples/heartbeat-trader.js'), path.join(home.root, 'bot'));
  discord = await startDiscordStandIn({
    applicationId,
    guilds: [
      {
        id: guildId,
        name: 'Trading desk',
        channels: [
          // At start @everyone may not send in #alerts: the bot (which has no allow of its own) neither.
          { id: alertChannelId, name: 'alerts', permissionOverwrites: [{ id: guildId, type: 0, deny: String(Permission.SendMessages) }] },
          { id: feedChannelId, name: 'fills', permissionOverwrites: [{ id: mutedRoleId, type: 0, deny: String(Permission.ViewChannel) }] },
        ],
        roles: [{ id: mutedRoleId, name: 'muted' }],
      },
    ],
    heartbeatIntervalMs: 500,
    waitTimeoutMs: 15_000,
  });
  paper = await startPaperBroker({ keyId: KEY, secretKey: SECRET });
  const env = {
    DISCORD_TOKEN: discord.token,
    DISCORD_API_URL: discord.apiUrl,
    DISCORD_CLIENT_ID: applicationId,
    DISCORD_GUILD_ID: guildId,
    DISCORD_ALERT_CHANNEL_ID: alertChannelId,
    FILL_FEED: 'on',
    FILL_FEED_CHANNEL_ID: feedChannelId,
    APCA_API_KEY_ID: KEY,
    APCA_API_SECRET_KEY: SECRET,
    APCA_API_BASE_URL: paper.url,
    PM2_HOME: home.pm2Home,
    DATA_DIR: home.dataDir,
    TRADING_SCRIPT: trader,
    METRICS_ADDR: `127.0.0.1:${await freeLoopbackPort()}`,
    HOME: home.root,
  };
  const config = parseConfig(env);
  const logger = createLogger({
    secrets: config.secrets,
    level: 'debug',
    write: (line) => {
      lines.push(line);
      for (const look of [...onLine]) look();
    },
  });
  controller = await startController(config, { logger, deliversAlerts: true, fronts: [discordFront], env: { ...process.env, ...env } });
  metricsUrl = controller.exposure.metrics!.url;
});

after(async () => {
  await controller?.stop();
  await home?.cleanup();
  await discord?.close();
  await paper?.close();
  if (process.env.TW_TEST_LOG) console.log(lines.join('\n'));
});

test('an overwrite that denies Send Messages at start: logged at error with the fix, `tradewarden health` and /healthz fail saying the same; Discord refuses the alert 403', async () => {
  const error = await logged(/ error .*#alerts/, 0, 'the check at connect');
  assert.match(error, /discord: #alerts \(DISCORD_ALERT_CHANNEL_ID, for alerts\): the bot lacks Send Messages \(Embed Links and Attach Files need it too\)\./, 'the line names the channel, its variable and the permission');
  assert.match(error, /Fix: #alerts denies it to @everyone: #alerts → Edit Channel → Permissions → add the bot's role @tradewarden \(or the member tradewarden\) → allow Send Messages/, 'and where to grant it');
  assert.ok(!lines.some((l) => / error .*#fills/.test(l)), `#fills is fine at start (the bot does not have @muted):\n${lines.join('\n')}`);

  const cli = await healthCli();
  assert.equal(cli.code, 1, `tradewarden health exits 1:\n${cli.stdout}`);
  assert.match(cli.stdout, /UNHEALTHY[\s\S]*Discord: #alerts \(DISCORD_ALERT_CHANNEL_ID, for alerts\): the bot lacks Send Messages.*; fix: #alerts denies it to @everyone/, `the reason and its fix:\n${cli.stdout}`);
  const healthz = await fetch(`${metricsUrl}/healthz`);
  assert.equal(healthz.status, 503, '/healthz fails');
  assert.match(await healthz.text(), /Discord: #alerts .*the bot lacks Send Messages/, '/healthz names it');
  assert.match(await (await fetch(`${metricsUrl}/metrics`)).text(), /^tradewarden_healthy 0$/m, 'the healthy gauge follows');

  // What the check foresaw, Discord does: the alert's post is refused, and it waits in the outbox.
  const from = discord.requests.length;
  await controller.app.outbox.raise({ kind: 'process_down', severity: 'critical', key: 'perm-test', title: 'Permission test', body: 'posted once #alerts lets the bot send', facts: {} });
  const refused = await discord.waitForRequest((r) => discord.requests.indexOf(r) >= from && r.method === 'POST' && r.path === `/channels/${alertChannelId}/messages`);
  assert.equal(refused.status, 403, 'Discord answers 403 (50013 Missing Permissions)');
});

test('the overwrite removed at runtime (CHANNEL_UPDATE): health passes again without a restart, said at info; the waiting alert goes out', async () => {
  const from = lines.length;
  discord.setChannelOverwrites(alertChannelId, []);
  const fixed = await logged(/ info .*discord: fixed/, from, 'the fix seen on channelUpdate');
  assert.match(fixed, /#alerts \(DISCORD_ALERT_CHANNEL_ID, for alerts\): the bot has Send Messages again/, 'names what came back');
  await logged(/ info .*discord: the bot can post again \(View Channel, Send Messages, Embed Links, Attach Files in #alerts; View Channel, Send Messages in #fills\): health no longer fails on Discord/, from, 'the all-clear');

  assert.deepEqual(await discordReasons(), [], 'no Discord reason any more');
  const cli = await healthCli();
  assert.equal(cli.code, 0, `tradewarden health passes:\n${cli.stdout}`);
  assert.equal((await fetch(`${metricsUrl}/healthz`)).status, 200, '/healthz passes');
  const posted = await discord.waitForChannelMessage(alertChannelId, (m) => m.embeds[0]?.title === 'Permission test', 20_000);
  assert.ok(posted, 'the outbox delivered the alert it held');
});

test("a permission taken away at runtime (GUILD_ROLE_UPDATE: the bot's role loses Embed Links) fails health at once; given back, it passes", async () => {
  let from = lines.length;
  discord.updateRole(guildId, botRoleId, { permissions: String(BigInt(INVITED) & ~Permission.EmbedLinks) });
  const error = await logged(/ error .*Embed Links/, from, 'the loss seen on roleUpdate');
  assert.match(error, /#alerts \(DISCORD_ALERT_CHANNEL_ID, for alerts\): the bot lacks Embed Links\. Fix: no role of the bot grants it: Server Settings → Roles → @tradewarden → allow Embed Links/, 'the fix points at the role');
  assert.ok(!/#fills/.test(error), 'the feed needs no embeds: #fills is not named');
  const reasons = await discordReasons();
  assert.equal(reasons.length, 1, `one reason: ${reasons.join(' | ')}`);
  assert.match(reasons[0]!, /the bot lacks Embed Links; fix: no role of the bot grants it/, 'health says what and how');
  assert.equal((await fetch(`${metricsUrl}/healthz`)).status, 503, '/healthz fails');

  from = lines.length;
  discord.updateRole(guildId, botRoleId, { permissions: INVITED });
  await logged(/ info .*discord: the bot can post again/, from, 'the role given back');
  assert.equal((await probeHealth(home.dataDir)).healthy, true, `healthy again: ${(await probeHealth(home.dataDir)).reasons.join(' | ')}`);
});

test("a role given to the bot that the feed's channel hides from (GUILD_MEMBER_UPDATE) fails health; the role deleted (GUILD_ROLE_DELETE) clears it", async () => {
  let from = lines.length;
  discord.setBotRoles(guildId, [mutedRoleId]);
  const error = await logged(/ error .*#fills/, from, "the bot's new role seen on guildMemberUpdate");
  assert.match(error, /#fills \(FILL_FEED_CHANNEL_ID, for the fill feed\): the bot lacks View Channel \(Send Messages needs it too\)\. Fix: #fills denies it to @muted, a role the bot has/, 'names the role and the channel');
  assert.match((await discordReasons()).join(), /#fills .*the bot lacks View Channel/, 'health fails on it');

  from = lines.length;
  discord.deleteRole(guildId, mutedRoleId);
  await logged(/ info .*discord: fixed: #fills \(FILL_FEED_CHANNEL_ID, for the fill feed\): the bot has View Channel again/, from, 'the role deleted');
  assert.deepEqual(await discordReasons(), [], 'health passes on Discord again');
});

test("the feed's channel deleted (CHANNEL_DELETE): health fails naming the variable and how to find the right id", async () => {
  const from = lines.length;
  discord.deleteChannel(feedChannelId);
  const error = await logged(/ error .*FILL_FEED_CHANNEL_ID/, from, 'the deletion seen on channelDelete');
  assert.match(error, new RegExp(`FILL_FEED_CHANNEL_ID ${feedChannelId} is no channel of "Trading desk" \\(deleted\\?\\): the fill feed cannot be posted\\. Fix: Developer Mode on, right-click the channel → Copy Channel ID, and put it in FILL_FEED_CHANNEL_ID`), 'what and how');
  assert.match((await discordReasons()).join(), /FILL_FEED_CHANNEL_ID .* is no channel/, 'health fails on it');
});

test('the bot removed from the server (GUILD_DELETE): health fails with the invite link that brings it back', async () => {
  const from = lines.length;
  discord.removeBot(guildId);
  const error = await logged(/ error .*DISCORD_GUILD_ID/, from, 'the removal seen on guildDelete');
  assert.match(error, new RegExp(`the bot is not in DISCORD_GUILD_ID ${guildId} \\(removed from the server, or the server is gone\\)\\. Fix: invite it again .*https://discord\\.com/oauth2/authorize\\?client_id=${applicationId}&scope=bot%20applications\\.commands&permissions=52224&guild_id=${guildId}`), 'the invite for this server');
  const reasons = await discordReasons();
  assert.equal(reasons.length, 1, `one reason, not one per channel: ${reasons.join(' | ')}`);
});

test('the channels checked are those this process posts in: the digest and the feed join the alert channel unless their own variable names another', () => {
  const base = { DISCORD_TOKEN: 'x', DISCORD_CLIENT_ID: applicationId, DISCORD_GUILD_ID: guildId, DISCORD_ALERT_CHANNEL_ID: alertChannelId, DIGEST_CRON: '0 21 * * *', FILL_FEED: 'on' };
  const shape = (channels: ReturnType<typeof postingChannels>) => channels.map((c) => [c.id, c.variable, c.uses.join('+'), c.needs.map((n) => n.name).join(',')]);
  const all = 'View Channel,Send Messages,Embed Links,Attach Files';
  assert.deepEqual(shape(postingChannels(parseConfig(base), { digest: true, fillFeed: true })), [[alertChannelId, 'DISCORD_ALERT_CHANNEL_ID', 'alerts+the digest+the fill feed', all]], 'one channel, every use');
  assert.deepEqual(
    shape(postingChannels(parseConfig({ ...base, FILL_FEED_CHANNEL_ID: feedChannelId }), { digest: true, fillFeed: true })),
    [
      [alertChannelId, 'DISCORD_ALERT_CHANNEL_ID', 'alerts+the digest', all],
      [feedChannelId, 'FILL_FEED_CHANNEL_ID', 'the fill feed', 'View Channel,Send Messages'],
    ],
    'the feed posts text lines only: no embeds, no files',
  );
  // Without a broker there is no feed; DIGEST_CRON runs only in the controller.
  assert.deepEqual(shape(postingChannels(parseConfig({ ...base, FILL_FEED_CHANNEL_ID: feedChannelId }), { digest: false, fillFeed: false })), [[alertChannelId, 'DISCORD_ALERT_CHANNEL_ID', 'alerts', all]], 'only what posts here');
});
