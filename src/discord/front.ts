// The Discord front: the discord.js client (Guilds intent only), command registration, the router,
// the alert-channel sink, the check of the bot's permissions where it posts, and the optional live
// status message. Without DISCORD_TOKEN it is absent.
import { ActivityType, Client, Events, GatewayIntentBits, Routes, type Message, type SendableChannels } from 'discord.js';
import type { App } from '../app.ts';
import type { Front } from '../controller.ts';
import { describeError, failed, withTimeout } from '../errors.ts';
import { discordAlertSink } from './alert-sink.ts';
import { discordDigestSink, discordFeedSink } from './report-sinks.ts';
import { commandDefinitions, loadCommands } from './commands.ts';
import { statusEmbed } from './render.ts';
import { InteractionRouter } from './router.ts';
import { PresenceUpdater } from './presence.ts';
import { closeChartRenderer } from '../render/chart-renderer.ts';
import { ChannelPermissionWatch, postingChannels } from './channel-permissions.ts';

export interface DiscordFrontOptions {
  confirmTimeoutMs?: number;
  /** Bound on login → READY → every guild available (default 30 s). */
  readyTimeoutMs?: number;
  /** STATUS_MESSAGE=on: how often the status is looked at (edited on change, and at least every minute). */
  statusCheckMs?: number;
  /** The presence's least interval between updates and its local check cadence (tests shorten them). */
  presenceMinIntervalMs?: number;
  presenceCheckMs?: number;
}

/** The controller's `fronts` entry: starts Discord when a token is configured. */
export function discordFront(app: App): Promise<Front | undefined> {
  return startDiscord(app);
}

export async function startDiscord(
  app: App,
  options: DiscordFrontOptions = {},
): Promise<(Front & { client: Client; router: InteractionRouter; presence: PresenceUpdater; permissions: ChannelPermissionWatch }) | undefined> {
  const { config, logger, core } = app;
  const { token, apiUrl, clientId, guildId } = config.discord;
  if (!token) return undefined;

  const commands = await loadCommands();
  const client = new Client({ intents: [GatewayIntentBits.Guilds], ...(apiUrl ? { rest: { api: apiUrl } } : {}) });
  const router = new InteractionRouter({ core, config, logger, confirmTimeoutMs: options.confirmTimeoutMs });
  client.on(Events.InteractionCreate, (interaction) => void router.handle(interaction));
  client.on(Events.Error, (error) => logger.warn(`discord: ${describeError(error)}`));
  client.on(Events.ShardDisconnect, (event) => logger.warn(`discord gateway closed (${event.code}); reconnecting`));
  client.on(Events.ShardResume, () => logger.info('discord gateway resumed'));

  try {
    // login resolves once the gateway is opened; the client is usable only at ClientReady.
    const ready = new Promise<void>((resolve) => client.once(Events.ClientReady, () => resolve()));
    await withTimeout(
      client.login(token).then(() => ready),
      options.readyTimeoutMs ?? 30_000,
      'logging in to Discord',
    );
    logger.info(`discord: logged in as ${client.user?.tag ?? '?'}`);

    // One bulk overwrite: a redeploy never leaves stale commands behind.
    await client.rest.put(Routes.applicationGuildCommands(clientId!, guildId!), { body: commandDefinitions(commands) });
    logger.info(`discord: ${commands.size} commands registered in guild ${guildId}`);
  } catch (error) {
    // A half-started client would keep its gateway socket (and the process) alive.
    await client.destroy().catch(() => undefined);
    throw failed(`Discord did not start: ${describeError(error)}`, error);
  }

  // The channels it posts in, checked now and on every change: a missing permission fails health.
  const channels = postingChannels(config, { digest: Boolean(app.digest), fillFeed: Boolean(app.fillFeed) });
  const permissions = new ChannelPermissionWatch({ client, config, logger, health: app.health, channels });
  permissions.start();

  // A loss_limit alert's chart: the day's equity as /pnl day reads it.
  app.outbox.addSink(discordAlertSink(client, config, logger, app.broker ? () => app.core.pnl('day') : undefined));
  // The scheduled digest and the fill feed: the alert channel unless DIGEST_/FILL_FEED_CHANNEL_ID says otherwise.
  app.digest?.addSink(discordDigestSink(client, config));
  app.fillFeed?.setSink(discordFeedSink(client, config));

  const statusMessage = config.discord.statusMessage ? liveStatus(app, client, options.statusCheckMs ?? 10_000) : undefined;

  let stopped = false;
  const presence = new PresenceUpdater({
    read: () => app.store.read(),
    send: ({ text, status }) => {
      if (stopped || !client.user) return;
      // A custom status shows `state` as is, without a "Playing"/"Watching" prefix.
      client.user.setPresence({ status, activities: [{ name: 'Custom Status', state: text, type: ActivityType.Custom }] });
    },
    clock: app.clock,
    logger,
    processName: config.trading.processName,
    limit: config.maxTradesPerHour,
    minIntervalMs: options.presenceMinIntervalMs,
    checkMs: options.presenceCheckMs,
  });
  presence.start();
  app.outbox.onRaised(() => void presence.refresh());

  return {
    client,
    router,
    presence,
    permissions,
    async stop() {
      stopped = true;
      permissions.stop();
      presence.stop();
      closeChartRenderer();
      statusMessage?.stop();
      await router.close();
      await client.destroy();
    },
  };
}

/** STATUS_MESSAGE=on: one message in the alert channel, edited in place, instead of new posts. */
function liveStatus(app: App, client: Client, checkMs: number): { stop(): void } {
  let message: Message | undefined;
  let lastRendered = '';
  let lastEditAt = 0;
  const update = async () => {
    const report = await app.core.status();
    const embed = statusEmbed(report);
    // Uptime always moves; compare what matters (state, PID, trades, duplicates, breaker).
    const { process: p, trades, breaker } = report;
    const rendered = JSON.stringify([p.state, p.pid, p.duplicates.map((d) => d.pid), trades.count, breaker.tripped]);
    if (message && rendered === lastRendered && Date.now() - lastEditAt < 60_000) return;
    if (!message) {
      const channel = (await client.channels.fetch(app.config.discord.alertChannelId!)) as SendableChannels | null;
      if (!channel?.isSendable()) throw new Error('the alert channel is not sendable');
      const known = (await app.store.read()).discord.statusMessageId;
      message = known ? await channel.messages.fetch(known).catch(() => undefined) : undefined;
      if (!message) {
        message = await channel.send({ embeds: [embed.setTimestamp(Date.now())] });
        const id = message.id;
        await app.store.update((d) => {
          d.discord.statusMessageId = id;
        });
        lastRendered = rendered;
        lastEditAt = Date.now();
        return;
      }
    }
    await message.edit({ embeds: [embed.setTimestamp(Date.now())] });
    lastRendered = rendered;
    lastEditAt = Date.now();
  };
  let busy = false;
  const run = () => {
    if (busy) return;
    busy = true;
    void update()
      .catch((e) => app.logger.warn(`live status: ${describeError(e)}`))
      .finally(() => (busy = false));
  };
  run();
  const timer = setInterval(run, checkMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
