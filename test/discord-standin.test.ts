// The Discord stand-in, proven against the real discord.js 14 client: if discord.js accepts what the
// stand-in serves (login, commands, interactions, buttons, channel posts, faults, resumes), the
// Discord front can be tested end to end on it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import zlib from 'node:zlib';
import WebSocket from 'ws';
import {
  ActionRowBuilder,
  ButtonBuilder,
  ButtonStyle,
  Client,
  DiscordAPIError,
  EmbedBuilder,
  Events,
  GatewayIntentBits,
  HTTPError,
  MessageFlags,
  REST,
  Routes,
  SlashCommandBuilder,
  type ChatInputCommandInteraction,
  type Interaction,
  type TextChannel,
} from 'discord.js';
import { ManualClock } from '../src/clock.ts';
import { startDiscordStandIn, type DiscordStandIn, type RecordedRequest } from '../testkit/discord/discord.ts';

const applicationId = '1100000000000000001';
const guildId = '1200000000000000001';
const opsChannelId = '1300000000000000001';
const alertChannelId = '1300000000000000002';
const operatorRoleId = '1400000000000000001';
const alertRoleId = '1400000000000000002';
const operator = { user: { id: '1500000000000000001', username: 'operator' }, roles: [operatorRoleId] };
const bystander = { user: { id: '1500000000000000002', username: 'bystander' }, roles: [] };

const botCommand = new SlashCommandBuilder()
  .setName('bot')
  .setDescription('Control the trading bot')
  .addSubcommand((s) => s.setName('status').setDescription('Show status'))
  .addSubcommand((s) => s.setName('stop').setDescription('Stop the trader (asks first)'))
  .addSubcommand((s) => s.setName('restart').setDescription('Restart the trader (asks first)'))
  .addSubcommand((s) => s.setName('ping').setDescription('Answer at once'))
  .addSubcommand((s) => s.setName('late').setDescription('Answer only when the test says so'));

const confirmRow = (prefix: string) =>
  new ActionRowBuilder<ButtonBuilder>().addComponents(
    new ButtonBuilder().setCustomId(`${prefix}:confirm`).setLabel('Confirm').setStyle(ButtonStyle.Danger),
    new ButtonBuilder().setCustomId(`${prefix}:cancel`).setLabel('Cancel').setStyle(ButtonStyle.Secondary),
  );

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const postsTo = (channelId: string) => (request: RecordedRequest) =>
  request.method === 'POST' && request.path === `/channels/${channelId}/messages`;

describe('Discord stand-in with the real discord.js client', () => {
  const clock = new ManualClock();
  let discord: DiscordStandIn;
  let client: Client;
  const subcommandsSeen: string[] = [];
  const handlerErrors: unknown[] = [];
  // The 'late' subcommand waits for its turn, so a test can move the clock past Discord's 3 s first.
  let lateTurn: { arrived: Deferred<void>; go: Deferred<void>; outcome: Deferred<unknown> } | null = null;

  async function handle(interaction: ChatInputCommandInteraction): Promise<void> {
    const subcommand = interaction.options.getSubcommand();
    subcommandsSeen.push(subcommand);
    switch (subcommand) {
      case 'status':
        await interaction.deferReply();
        await interaction.editReply({
          embeds: [new EmbedBuilder().setTitle('trading-bot').setDescription('online').addFields({ name: 'PID', value: '4242' })],
        });
        return;
      case 'stop': {
        // withResponse → the message comes back in the callback; its collector matches by message id.
        const response = await interaction.reply({ content: 'Stop the trader?', components: [confirmRow('stop')], withResponse: true });
        const message = response.resource?.message;
        assert.ok(message, 'callback with_response=true returns the message');
        const click = await message.awaitMessageComponent({ filter: (i) => i.user.id === interaction.user.id, time: 5000 });
        if (click.customId === 'stop:confirm') {
          await click.update({ content: 'Stopped', components: [] });
        } else {
          // The slow path: acknowledge first, edit the prompt afterwards, then tell the user privately.
          await click.deferUpdate();
          await click.editReply({ content: 'Cancelled', components: [] });
          await click.followUp({ content: 'Nothing was changed.', flags: MessageFlags.Ephemeral });
        }
        return;
      }
      case 'restart': {
        // Plain reply → InteractionResponse, whose collector matches clicks by interaction_metadata.id.
        const response = await interaction.reply({ content: 'Restart the trader?', components: [confirmRow('restart')] });
        const click = await response.awaitMessageComponent({ time: 5000 });
        await click.update({ content: `Restarted by ${click.user.username} for ${interaction.id}`, components: [] });
        return;
      }
      case 'ping':
        await interaction.reply({ content: 'pong' });
        return;
      case 'late': {
        const turn = lateTurn;
        assert.ok(turn, 'turn');
        turn.arrived.resolve();
        await turn.go.promise;
        await interaction.reply({ content: 'too late' }).then(
          () => turn.outcome.resolve('accepted'),
          (error: unknown) => turn.outcome.resolve(error),
        );
        return;
      }
    }
  }

  before(async () => {
    discord = await startDiscordStandIn({
      applicationId,
      guilds: [
        {
          id: guildId,
          name: 'Trading desk',
          channels: [
            { id: opsChannelId, name: 'ops' },
            { id: alertChannelId, name: 'alerts' },
          ],
          roles: [
            { id: operatorRoleId, name: 'operator', permissions: '8' },
            { id: alertRoleId, name: 'on-call' },
          ],
        },
      ],
      heartbeatIntervalMs: 200,
      clock,
    });
    client = new Client({ intents: [GatewayIntentBits.Guilds], rest: { api: discord.apiUrl } });
    client.on(Events.InteractionCreate, (interaction: Interaction) => {
      if (!interaction.isChatInputCommand()) return;
      handle(interaction).catch((error: unknown) => handlerErrors.push(error));
    });
    const ready = once(client, Events.ClientReady);
    await client.login(discord.token);
    await ready;
  });

  after(async () => {
    await client?.destroy();
    await discord?.close();
  });

  test('login asks GET /gateway/bot, identifies over plain JSON, and is ready once the guild arrives', () => {
    assert.equal(client.isReady(), true);
    const guild = client.guilds.cache.get(guildId);
    assert.equal(guild?.name, 'Trading desk');
    assert.equal(guild?.available, true);
    assert.deepEqual([...(guild?.channels.cache.keys() ?? [])].sort(), [opsChannelId, alertChannelId].sort());
    assert.ok(guild?.roles.cache.has(alertRoleId), 'guild?.roles.cache.has(alertRoleId)');
    assert.equal(client.user?.id, applicationId);
    assert.equal(client.application?.id, applicationId);

    // One REST call, authenticated, before the gateway.
    assert.deepEqual(
      discord.requests.map((r) => `${r.method} ${r.path} ${r.status} ${r.authorized}`),
      ['GET /gateway/bot 200 true'],
    );
    // Without zlib-sync discord.js asks for neither transport nor payload compression.
    const [connection] = discord.gateway.connections;
    assert.deepEqual(connection.query, { v: '10', encoding: 'json' });
    assert.equal(connection.transportCompression, null);
    assert.equal(discord.gateway.identifies.length, 1);
    assert.equal(discord.gateway.identifies[0].intents, GatewayIntentBits.Guilds);
    assert.equal(discord.gateway.identifies[0].compress, false);
  });

  test('heartbeats are acknowledged and carry the last sequence number', async () => {
    await discord.waitFor(() => (discord.gateway.heartbeats.length >= 2 ? true : undefined), 'two heartbeats');
    const last = discord.gateway.heartbeats.at(-1);
    assert.ok(typeof last === 'number' && last >= 2, `heartbeat carries seq (READY=1, GUILD_CREATE=2), got ${last}`);
    await discord.waitFor(() => (client.ws.ping >= 0 ? true : undefined), 'a measured ping (heartbeat ACK)');
  });

  test('a bulk overwrite through @discordjs/rest is stored, and ids survive a second overwrite', async () => {
    const rest = new REST({ version: '10', api: discord.apiUrl }).setToken(discord.token);
    const first = (await rest.put(Routes.applicationGuildCommands(applicationId, guildId), { body: [botCommand.toJSON()] })) as { id: string; name: string }[];
    assert.equal(first.length, 1);
    assert.match(first[0].id, /^\d+$/);
    const stored = discord.commands(guildId);
    assert.deepEqual(stored.map((c) => c.name), ['bot']);
    assert.deepEqual((stored[0].options as { name: string }[]).map((o) => o.name), ['status', 'stop', 'restart', 'ping', 'late']);
    assert.deepEqual(discord.commands(), [], 'nothing registered globally');

    const second = (await rest.put(Routes.applicationGuildCommands(applicationId, guildId), { body: [botCommand.toJSON()] })) as { id: string }[];
    assert.equal(second[0].id, first[0].id, 'Discord keeps a command id across overwrites');

    // Discord validates definitions; so does the stand-in.
    await assert.rejects(
      rest.put(Routes.applicationGuildCommands(applicationId, guildId), { body: [{ name: 'Bad Name', description: 'x' }] }),
      (error: unknown) => error instanceof DiscordAPIError && error.code === 50035 && error.status === 400,
    );
    assert.deepEqual(discord.commands(guildId).map((c) => c.name), ['bot'], 'a refused overwrite changes nothing');
    const withoutToken = new REST({ version: '10', api: discord.apiUrl });
    await assert.rejects(withoutToken.get(Routes.applicationGuildCommands(applicationId, guildId)), /token/i);
  });

  test('a slash command with a subcommand is deferred, then edited into its final embed', async () => {
    const run = await discord.slashCommand({ channelId: opsChannelId, ...operator, name: 'bot', options: [{ type: 1, name: 'status', options: [] }] });
    const reply = await run.response();
    assert.equal(subcommandsSeen.at(-1), 'status');
    assert.equal(reply.type, 5);
    assert.equal(reply.content, '');
    assert.equal(reply.embeds[0].title, 'trading-bot');
    assert.deepEqual(reply.embeds[0].fields, [{ name: 'PID', value: '4242' }]);
    assert.equal(reply.flags & 128, 0, 'the "thinking…" flag is gone after the edit');
    assert.deepEqual(run.callbacks.map((c) => [c.type, c.withResponse, c.status]), [[5, false, 204]]);
    assert.equal(run.edits.length, 1);
    assert.equal(reply.message.interaction_metadata?.id, run.id);
    // The edit went to /webhooks/{app}/{token}/messages/@original (sent as %40original).
    const edit = discord.requests.find((r) => r.method === 'PATCH' && r.path.endsWith('/messages/@original'));
    assert.ok(edit, 'edit');
    assert.equal(edit.authorized, false, 'interaction webhooks are called without the bot token');
  });

  test('a button on a reply fetched with withResponse reaches awaitMessageComponent', async () => {
    const run = await discord.slashCommand({ channelId: opsChannelId, ...operator, name: 'bot', options: [{ type: 1, name: 'stop', options: [] }] });
    const prompt = await run.response();
    assert.equal(prompt.content, 'Stop the trader?');
    assert.deepEqual(run.callbacks.map((c) => [c.type, c.withResponse, c.status]), [[4, true, 200]]);

    const click = await discord.clickButton({ message: prompt.message, customId: 'stop:confirm', ...operator });
    const update = await click.response();
    assert.equal(update.type, 7);
    assert.equal(update.content, 'Stopped');
    assert.deepEqual(update.components, []);
    assert.equal(discord.message(prompt.message.id)?.content, 'Stopped', 'the prompt itself was updated');
    await assert.rejects(discord.clickButton({ message: prompt.message, customId: 'stop:confirm', ...operator }), /no button/);
  });

  test('a deferred update edits the clicked message, and a follow-up is posted with ?wait=true', async () => {
    const run = await discord.slashCommand({ channelId: opsChannelId, ...operator, name: 'bot', options: [{ type: 1, name: 'stop', options: [] }] });
    const prompt = await run.response();
    // Another member's click is filtered out by the handler's collector and never acknowledged.
    const stranger = await discord.clickButton({ message: prompt.message, customId: 'stop:cancel', ...bystander });
    const click = await discord.clickButton({ message: prompt.message, customId: 'stop:cancel', ...operator });
    const update = await click.response();
    assert.equal(update.type, 6);
    assert.equal(update.message.id, prompt.message.id);
    assert.equal(update.content, 'Cancelled');
    const followUp = await click.waitForFollowUp();
    assert.equal(followUp.content, 'Nothing was changed.');
    assert.equal(followUp.flags & MessageFlags.Ephemeral, MessageFlags.Ephemeral);
    assert.equal(followUp.source, 'follow-up');
    assert.equal(followUp.interaction_metadata?.id, click.id);
    assert.ok(discord.requests.some((r) => r.method === 'POST' && r.path === `/webhooks/${applicationId}/${click.token}` && r.query.wait === 'true'), 'discord.requests.some((r) => r.method === \'POST\' && r.path === `/webhooks/${applicationId}/${click.token}` && r.query.wait === \'true\')');
    assert.equal(stranger.acknowledged, false);
    assert.deepEqual(stranger.callbacks, []);
  });

  test('InteractionResponse collectors match clicks by interaction_metadata.id, not by channel', async () => {
    const first = await discord.slashCommand({ channelId: opsChannelId, ...operator, name: 'bot', options: [{ type: 1, name: 'restart', options: [] }] });
    const second = await discord.slashCommand({ channelId: opsChannelId, ...bystander, name: 'bot', options: [{ type: 1, name: 'restart', options: [] }] });
    const firstPrompt = await first.response();
    const secondPrompt = await second.response();

    const secondClick = await discord.clickButton({ message: secondPrompt.message, customId: 'restart:confirm', ...bystander });
    assert.equal((await secondClick.response()).content, `Restarted by bystander for ${second.id}`);
    assert.equal(secondClick.callbacks.length, 1, 'only the second prompt\'s collector took the click');
    assert.equal(discord.message(firstPrompt.message.id)?.content, 'Restart the trader?', 'first prompt untouched');

    const firstClick = await discord.clickButton({ message: firstPrompt.message, customId: 'restart:confirm', ...operator });
    assert.equal((await firstClick.response()).content, `Restarted by operator for ${first.id}`);
  });

  test('channel.send via client.channels.fetch is recorded with allowed_mentions and resolved role mentions', async () => {
    const channel = (await client.channels.fetch(alertChannelId, { force: true })) as TextChannel;
    assert.ok(discord.requests.some((r) => r.method === 'GET' && r.path === `/channels/${alertChannelId}` && r.status === 200), 'discord.requests.some((r) => r.method === \'GET\' && r.path === `/channels/${alertChannelId}` && r.status === 200)');
    const sent = await channel.send({ content: `<@&${alertRoleId}> runaway: 5 fills in the last hour`, allowedMentions: { roles: [alertRoleId] } });
    const recorded = await discord.waitForChannelMessage(alertChannelId, (m) => m.id === sent.id);
    assert.equal(recorded.source, 'channel');
    assert.deepEqual(recorded.allowed_mentions?.roles, [alertRoleId]);
    assert.deepEqual(recorded.mention_roles, [alertRoleId]);

    const quiet = await channel.send({ content: `<@&${alertRoleId}> recovered`, allowedMentions: { parse: [] } });
    assert.deepEqual(discord.message(quiet.id)?.mention_roles, [], 'parse: [] pings nobody');
    await assert.rejects(channel.send({ content: 'x'.repeat(2001) }), (error: unknown) => error instanceof DiscordAPIError && error.code === 50035);
  });

  test('a 429 is waited out and the post is delivered exactly once', async () => {
    const channel = client.channels.cache.get(alertChannelId) as TextChannel;
    const fault = discord.failNext({ method: 'POST', path: /^\/channels\/\d+\/messages$/, status: 429, retryAfter: 0.05 });
    const before = discord.requests.length;
    const started = Date.now();
    await channel.send('after a 429');
    const elapsed = Date.now() - started;
    assert.equal(fault.hits.length, 1);
    assert.ok(elapsed >= 50, `waited out retry_after (took ${elapsed} ms)`);
    assert.deepEqual(discord.requests.slice(before).filter(postsTo(alertChannelId)).map((r) => r.status), [429, 200]);
    assert.equal(discord.channelMessages(alertChannelId).filter((m) => m.content === 'after a 429').length, 1);
  });

  test('500s are retried 3 times, then surface as an HTTPError', async () => {
    const channel = client.channels.cache.get(alertChannelId) as TextChannel;
    let before = discord.requests.length;
    discord.failNext({ method: 'POST', path: /^\/channels\/\d+\/messages$/, status: 500, count: 2 });
    await channel.send('after two 500s');
    assert.deepEqual(discord.requests.slice(before).filter(postsTo(alertChannelId)).map((r) => r.status), [500, 500, 200]);

    before = discord.requests.length;
    discord.failNext({ method: 'POST', path: /^\/channels\/\d+\/messages$/, status: 500, count: 10 });
    await assert.rejects(channel.send('never delivered'), (error: unknown) => error instanceof HTTPError && error.status === 500);
    assert.equal(discord.requests.slice(before).filter(postsTo(alertChannelId)).length, 4, 'one try + 3 retries');
    assert.equal(discord.channelMessages(alertChannelId).some((m) => m.content === 'never delivered'), false);
  });

  test('an interaction acknowledged after the expiry gets 10062; a second ack gets 40060', async () => {
    const turn = { arrived: deferred<void>(), go: deferred<void>(), outcome: deferred<unknown>() };
    lateTurn = turn;
    const run = await discord.slashCommand({ channelId: opsChannelId, ...operator, name: 'bot', options: [{ type: 1, name: 'late', options: [] }] });
    await turn.arrived.promise;
    clock.advance(3001);
    turn.go.resolve();
    const error = await turn.outcome.promise;
    assert.ok(error instanceof DiscordAPIError, `expected DiscordAPIError, got ${String(error)}`);
    assert.equal(error.code, 10062);
    assert.equal(error.status, 404);
    assert.equal(run.acknowledged, false);
    assert.deepEqual(run.callbacks.map((c) => [c.status, c.afterMs]), [[404, 3001]]);

    const ping = await discord.slashCommand({ channelId: opsChannelId, ...operator, name: 'bot', options: [{ type: 1, name: 'ping', options: [] }] });
    await ping.response();
    const again = await fetch(`${discord.apiUrl}/v10/interactions/${ping.id}/${ping.token}/callback`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 4, data: { content: 'twice' } }),
    });
    assert.equal(again.status, 400);
    assert.deepEqual(await again.json(), { message: 'Interaction has already been acknowledged.', code: 40060 });
  });

  test('after a gateway drop the client resumes, gets the missed interaction replayed, and still answers', async () => {
    const resumesBefore = discord.gateway.resumes.filter((r) => r.accepted).length;
    const resumed = once(client, Events.ShardResume);
    discord.dropConnection(); // close code 4000 → @discordjs/ws resumes
    // Dispatched while the socket is down: Discord keeps it for the resume.
    const missed = await discord.slashCommand({ channelId: opsChannelId, ...operator, name: 'bot', options: [{ type: 1, name: 'ping', options: [] }] });
    assert.equal(missed.dispatch.delivered, false);
    const started = Date.now();
    const [, replayedEvents] = (await resumed) as [number, number];
    const resume = await discord.waitForResume(resumesBefore);
    assert.equal(resume.replayed, 1);
    assert.equal(replayedEvents, 1, 'discord.js counted the replayed INTERACTION_CREATE');
    assert.equal((await missed.response()).content, 'pong');
    assert.equal(discord.gateway.identifies.length, 1, 'resumed, not re-identified');
    assert.equal(discord.gateway.connections.at(-1)?.path, '/resume', 'reconnected to resume_gateway_url');
    assert.ok(Date.now() - started < 3000, 'Date.now() - started < 3000');

    const after = await discord.slashCommand({ channelId: opsChannelId, ...operator, name: 'bot', options: [{ type: 1, name: 'ping', options: [] }] });
    assert.equal(after.dispatch.delivered, true);
    assert.equal((await after.response()).content, 'pong');
  });

  test('an abnormal drop (no close frame) and a zombie link (no heartbeat ACK) also end in a resume', async () => {
    let accepted = discord.gateway.resumes.filter((r) => r.accepted).length;
    discord.dropConnection({ abnormal: true });
    await discord.waitForResume(accepted);
    assert.equal(discord.gateway.connections.at(-2)?.closeCode, 1006);

    accepted += 1;
    discord.gateway.acknowledgeHeartbeats = false;
    await discord.waitForResume(accepted);
    discord.gateway.acknowledgeHeartbeats = true;
    assert.equal(discord.gateway.identifies.length, 1);
    const run = await discord.slashCommand({ channelId: opsChannelId, ...operator, name: 'bot', options: [{ type: 1, name: 'ping', options: [] }] });
    assert.equal((await run.response()).content, 'pong');
  });

  test('zlib-stream transport compression is honoured when a client asks for it', async () => {
    const socket = new WebSocket(`${discord.gatewayUrl}/?v=10&encoding=json&compress=zlib-stream`);
    const [frame, isBinary] = (await once(socket, 'message')) as [Buffer, boolean];
    assert.equal(isBinary, true);
    assert.deepEqual([...frame.subarray(-4)], [0, 0, 0xff, 0xff], 'ends in a zlib sync flush');
    const hello = JSON.parse(zlib.inflateSync(frame, { finishFlush: zlib.constants.Z_SYNC_FLUSH }).toString());
    assert.deepEqual(hello.op, 10);
    assert.equal(hello.d.heartbeat_interval, 200);
    socket.close();
    await once(socket, 'close');
  });

  test('REST refuses a missing token and records calls to routes it does not know', async () => {
    const anonymous = await fetch(`${discord.apiUrl}/v10/users/@me`);
    assert.equal(anonymous.status, 401);
    const me = await fetch(`${discord.apiUrl}/v10/users/@me`, { headers: { authorization: `Bot ${discord.token}` } });
    assert.equal(((await me.json()) as { id: string }).id, applicationId);
    assert.equal(discord.unexpectedRequests.length, 0);
    const unknown = await fetch(`${discord.apiUrl}/v10/guilds/${guildId}/bans`, { headers: { authorization: `Bot ${discord.token}` } });
    assert.equal(unknown.status, 404);
    assert.deepEqual(discord.unexpectedRequests.map((r) => `${r.method} ${r.path}`), [`GET /guilds/${guildId}/bans`]);
    assert.deepEqual(handlerErrors, [], 'no bot handler failed during the suite');
  });
});
