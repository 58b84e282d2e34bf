// A local stand-in for Discord's REST API v10 and gateway, good enough for the real discord.js 14
// client: point `rest.api` at `apiUrl`, log in with `token`, and the gateway URL follows from
// GET /gateway/bot. Tests then play the users (slash commands, button clicks), read what the bot
// answered, and inject faults (429, 5xx, gateway drops).
//
//   const discord = await startDiscordStandIn({ applicationId, guilds: [...] });
//   const client = new Client({ intents: [GatewayIntentBits.Guilds], rest: { api: discord.apiUrl } });
//   await client.login(discord.token);
//   const run = await discord.slashCommand({ channelId, user, name: 'bot', options: [...] });
//   const reply = await run.response();
//
// Permissions are Discord's: the bot's member holds its managed role (what the invite granted: View
// Channels, Send Messages, Embed Links, Attach Files, unless GuildSpec.botRole says otherwise) and
// GuildSpec.botRoles; a channel's permissionOverwrites (@everyone, roles, the bot) apply on top. A
// post in a channel the bot cannot see answers 403 50001, one where it may not send (or attach) 403
// 50013. GET /users/@me/guilds, /guilds/{id}[/roles|/channels|/members/{user}] let a bot check its
// footing; a guild the stand-in does not hold is 404 10004, as Discord answers for one the bot is not in.
// A test changes the server as an admin would (setChannelOverwrites, deleteChannel, createRole,
// updateRole, deleteRole, setBotRoles, removeBot) and the gateway dispatches what Discord sends for
// it (CHANNEL_UPDATE, CHANNEL_DELETE, GUILD_ROLE_CREATE/UPDATE/DELETE, GUILD_MEMBER_UPDATE, GUILD_DELETE).
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { Gateway, type DropOptions, type GatewayIdentify, type GatewayResume } from './discord-gateway.ts';
import {
  CallbackType,
  MessageFlag,
  StandInInteraction,
  type InteractionSpec,
} from './discord-interactions.ts';
import {
  ChangeFeed,
  Permission,
  Snowflakes,
  botChannelPermissions,
  botMemberRoles,
  botRoleOf,
  channelToWire,
  guildCreateToWire,
  guildRoles,
  guildToWire,
  isJsonObject,
  memberToWire,
  messageBodyProblems,
  messageToWire,
  resolveMentions,
  roleToWire,
  userToWire,
  type ChannelSpec,
  type FormError,
  type GuildSpec,
  type JsonObject,
  type OverwriteSpec,
  type RoleSpec,
  type StandInMessage,
  type UploadedFile,
  type UserSpec,
} from './discord-model.ts';
import {
  commandProblems,
  describe,
  errorBody,
  fail,
  faultAnswer,
  formError,
  matchRoute,
  readBody,
  safeDecode,
  type Answer,
  type FaultSpec,
  type Route,
  type RouteContext,
} from './discord-rest.ts';

export { BOT_INVITE_PERMISSIONS, Permission } from './discord-model.ts';
export type { ChannelSpec, GuildSpec, JsonObject, OverwriteSpec, RoleSpec, StandInMessage, StoredFile, UploadedFile, UserSpec } from './discord-model.ts';
export type { GatewayConnection, GatewayIdentify, GatewayResume, DropOptions } from './discord-gateway.ts';
export { StandInInteraction, CallbackType, MessageFlag } from './discord-interactions.ts';
export type { InteractionReply, RecordedCallback, RecordedEdit } from './discord-interactions.ts';
export type { FaultSpec } from './discord-rest.ts';

export interface DiscordStandInOptions {
  applicationId: string;
  /** Defaults to the application id, as for bots created in the developer portal. */
  botUserId?: string;
  botUsername?: string;
  guilds: GuildSpec[];
  /** HELLO's heartbeat_interval. Discord sends ~41 s; tests want something short. */
  heartbeatIntervalMs?: number;
  /** How long after dispatch an interaction may still be acknowledged (Discord: 3 s). */
  interactionExpiryMs?: number;
  /** Clock for interaction expiry; pass a ManualClock to expire interactions without waiting. */
  clock?: { now(): number };
  /** Default bound on the helper waits (response(), waitFor…). */
  waitTimeoutMs?: number;
}

export interface RecordedRequest {
  method: string;
  /** Path after /api/v10, percent-decoded: '/webhooks/1/tok/messages/@original'. */
  path: string;
  query: Record<string, string>;
  body: unknown;
  /** Route template that handled it ('POST /channels/:channel/messages'), null if none matched. */
  route: string | null;
  /** Whether a valid `Authorization: Bot <token>` header came with it. */
  authorized: boolean;
  /** Filled in once answered. */
  status: number;
  /** True when a failNext() fault answered instead of the route. */
  faulted: boolean;
  at: number;
}

export interface Fault {
  readonly spec: FaultSpec;
  /** Requests this fault has answered so far. */
  readonly hits: RecordedRequest[];
  readonly remaining: number;
}

export interface ActingMember {
  user: UserSpec;
  /** Role ids the member has (the guild's @everyone is implied). */
  roles?: string[];
  /** Member permission bits; defaults to the union of the roles' permissions. */
  permissions?: string;
  locale?: string;
}

export interface SlashCommandSpec extends ActingMember {
  channelId: string;
  /** Optional; must match the channel's guild when given. */
  guildId?: string;
  name: string;
  /** Discord's option tree, e.g. `[{ type: 1, name: 'status', options: [] }]` for a subcommand. */
  options?: JsonObject[];
  resolved?: JsonObject;
  /** Override the stand-in's interactionExpiryMs for this one. */
  expiresInMs?: number;
}

export interface ButtonClickSpec extends ActingMember {
  /** The message carrying the button, or its id; the stand-in's current copy is used. */
  message: StandInMessage | string;
  customId: string;
  expiresInMs?: number;
}

export interface StoredCommand extends JsonObject {
  id: string;
  name: string;
  type: number;
}

const ALL_PERMISSIONS = ((1n << 51n) - 1n).toString();

export class DiscordStandIn {
  /** Base for discord.js `rest.api` / DISCORD_API_URL (discord.js appends /v10). */
  readonly apiUrl: string;
  readonly gatewayUrl: string;
  /** The bot token this stand-in accepts. Fake, but treat it as a secret: redaction tests can look for it. */
  readonly token: string;
  readonly applicationId: string;
  readonly botUser: JsonObject;
  readonly guilds: readonly GuildSpec[];
  /** Every REST call, in arrival order. Authorization headers are not kept. */
  readonly requests: RecordedRequest[] = [];
  readonly interactions: StandInInteraction[] = [];
  readonly gateway: Gateway;

  private readonly feed = new ChangeFeed();
  private readonly ids = new Snowflakes();
  private readonly messages = new Map<string, StandInMessage>();
  private readonly globalCommands: StoredCommand[] = [];
  private readonly guildCommands = new Map<string, StoredCommand[]>();
  private readonly users = new Map<string, JsonObject>();
  private readonly faults: { spec: FaultSpec; hits: RecordedRequest[]; remaining: number }[] = [];
  private readonly withheld: Array<{ method: string; path: RegExp; arrived: (record: RecordedRequest) => void }> = [];
  private readonly routes: Route[];
  private readonly clock: { now(): number };
  private readonly expiryMs: number;
  private readonly waitMs: number;
  private readonly guildOwnerId: string;

  private constructor(
    private readonly server: http.Server,
    port: number,
    options: DiscordStandInOptions,
  ) {
    this.applicationId = options.applicationId;
    this.guilds = options.guilds;
    this.clock = options.clock ?? { now: () => Date.now() };
    this.expiryMs = options.interactionExpiryMs ?? 3000;
    this.waitMs = options.waitTimeoutMs ?? 5000;
    const botId = options.botUserId ?? options.applicationId;
    this.botUser = userToWire({ id: botId, username: options.botUsername ?? 'tradewarden' }, true);
    this.token = `${Buffer.from(botId).toString('base64url')}.StandIn.${randomBytes(18).toString('base64url')}`;
    this.apiUrl = `http://127.0.0.1:${port}/api`;
    this.gatewayUrl = `ws://127.0.0.1:${port}`;
    const guildOwnerId = this.ids.next();
    this.guildOwnerId = guildOwnerId;
    this.gateway = new Gateway(server, {
      token: this.token,
      publicUrl: this.gatewayUrl,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 41_250,
      nextSessionId: () => randomBytes(16).toString('hex'),
      changed: () => this.feed.changed(),
      readyData: () => ({
        v: 10,
        user: this.botUser,
        guilds: this.guilds.map((guild) => ({ id: guild.id, unavailable: true })),
        shard: [0, 1],
        application: { id: this.applicationId, flags: 0 },
        user_settings: {},
        private_channels: [],
        relationships: [],
        presences: [],
        guild_join_requests: [],
        geo_ordered_rtc_regions: [],
        _trace: ['stand-in'],
      }),
      guildCreates: () => this.guilds.map((guild) => guildCreateToWire(guild, guildOwnerId, this.botUser)),
    });
    this.routes = this.buildRoutes();
  }

  static async start(options: DiscordStandInOptions): Promise<DiscordStandIn> {
    const server = http.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    const standIn = new DiscordStandIn(server, port, options);
    server.on('request', (request, response) => void standIn.serve(request, response));
    return standIn;
  }

  // ------------------------------------------------------------------------------------------
  // Reading what happened

  /** Registered command definitions: a guild's, or the global ones without an argument. */
  commands(guildId?: string): StoredCommand[] {
    return structuredClone(guildId === undefined ? this.globalCommands : (this.guildCommands.get(guildId) ?? []));
  }

  /** Messages in a channel (channel posts, interaction responses, follow-ups), oldest first. */
  channelMessages(channelId: string): StandInMessage[] {
    return [...this.messages.values()].filter((message) => message.channel_id === channelId && !message.deleted);
  }

  message(id: string): StandInMessage | undefined {
    return this.messages.get(id);
  }

  /** Resolves with the first message in the channel that matches, now or when one is posted or edited. */
  waitForChannelMessage(
    channelId: string,
    predicate: (message: StandInMessage) => boolean = () => true,
    timeoutMs = this.waitMs,
  ): Promise<StandInMessage> {
    return this.feed.until(
      () => this.channelMessages(channelId).find(predicate),
      `a message in channel ${channelId}`,
      timeoutMs,
    );
  }

  waitForRequest(predicate: (request: RecordedRequest) => boolean, timeoutMs = this.waitMs): Promise<RecordedRequest> {
    return this.feed.until(
      () => this.requests.find((request) => request.status !== 0 && predicate(request)),
      'a matching REST request',
      timeoutMs,
    );
  }

  /**
   * Resolves with the first non-undefined value of `probe`, re-checked whenever the stand-in records
   * anything (a request, a gateway payload, a heartbeat); for waits the helpers above don't cover.
   */
  waitFor<T>(probe: () => T | undefined, what: string, timeoutMs = this.waitMs): Promise<T> {
    return this.feed.until(probe, what, timeoutMs);
  }

  /** REST calls no route knows: a test can assert this stays empty. */
  get unexpectedRequests(): RecordedRequest[] {
    return this.requests.filter((request) => request.route === null && !request.faulted);
  }

  /** Resolves once the client has identified (count = how many IDENTIFYs, default 1). */
  waitForIdentify(count = 1, timeoutMs = this.waitMs): Promise<GatewayIdentify> {
    return this.feed.until(() => this.gateway.identifies[count - 1], `IDENTIFY #${count}`, timeoutMs);
  }

  /** Resolves with the next accepted RESUME after `afterCount` of them (default: the first). */
  waitForResume(afterCount = 0, timeoutMs = this.waitMs): Promise<GatewayResume> {
    return this.feed.until(
      () => this.gateway.resumes.filter((resume) => resume.accepted)[afterCount],
      `RESUME #${afterCount + 1}`,
      timeoutMs,
    );
  }

  // ------------------------------------------------------------------------------------------
  // Faults

  /** The next matching REST call(s) fail with `status` instead of reaching their route. */
  failNext(spec: FaultSpec): Fault {
    const fault = { spec, hits: [] as RecordedRequest[], remaining: spec.count ?? 1 };
    this.faults.push(fault);
    return fault;
  }

  /**
   * The next matching REST call is carried out (a message is created) but its answer never leaves:
   * the client's side of "Discord got it, then I died before hearing back". Resolves when it arrived.
   */
  withholdAnswerTo(method: string, path: RegExp): Promise<RecordedRequest> {
    return new Promise((arrived) => this.withheld.push({ method: method.toUpperCase(), path, arrived }));
  }

  /** Closes the gateway socket (default code 4000, which discord.js answers with a RESUME). */
  dropConnection(options?: DropOptions): void {
    this.gateway.drop(options);
  }

  // ------------------------------------------------------------------------------------------
  // Changing the server, as its admin would in Discord's settings: the state changes (REST answers
  // and posts follow it) and the gateway dispatches the event Discord sends for the change, in
  // Discord's shape (https://discord.com/developers/docs/events/gateway-events). Before the bot has
  // a session nothing is dispatched: its GUILD_CREATE carries the state.

  /** Replaces a channel's permission overwrites → CHANNEL_UPDATE with the whole channel. */
  setChannelOverwrites(channelId: string, overwrites: OverwriteSpec[]): void {
    const { guild, channel } = this.locateChannel(channelId);
    channel.permissionOverwrites = structuredClone(overwrites);
    this.dispatchChange('CHANNEL_UPDATE', channelToWire(channel, guild.id, guild.channels.indexOf(channel)));
  }

  /** Deletes a channel → CHANNEL_DELETE with the channel as it was; posts there answer 404 10003. */
  deleteChannel(channelId: string): void {
    const { guild, channel } = this.locateChannel(channelId);
    const position = guild.channels.indexOf(channel);
    guild.channels.splice(position, 1);
    this.dispatchChange('CHANNEL_DELETE', channelToWire(channel, guild.id, position));
  }

  /** Adds a role → GUILD_ROLE_CREATE { guild_id, role }. */
  createRole(guildId: string, role: RoleSpec): void {
    const guild = this.guildById(guildId);
    (guild.roles ??= []).push(structuredClone(role));
    this.dispatchChange('GUILD_ROLE_CREATE', { guild_id: guild.id, role: this.roleWire(guild, role.id) });
  }

  /**
   * Changes a role's permissions or name → GUILD_ROLE_UPDATE { guild_id, role }. The guild's id is
   * @everyone; the bot's managed role (GuildSpec.botRole) can be changed too, as an admin can.
   */
  updateRole(guildId: string, roleId: string, change: { permissions?: string; name?: string }): void {
    const guild = this.guildById(guildId);
    if (roleId === botRoleOf(guild, this.botUser).id) {
      if (change.name !== undefined) throw new Error("Discord stand-in: the bot's managed role is named after the bot; Discord does not let it be renamed");
      guild.botRole = { ...guild.botRole, id: roleId, ...(change.permissions !== undefined ? { permissions: change.permissions } : {}) };
    } else {
      let role = guild.roles?.find((r) => r.id === roleId);
      if (!role && roleId === guild.id) (guild.roles ??= []).unshift((role = { id: guild.id, name: '@everyone', permissions: '0' }));
      if (!role) throw new Error(`Discord stand-in: guild ${guildId} has no role ${roleId}`);
      Object.assign(role, change);
    }
    this.dispatchChange('GUILD_ROLE_UPDATE', { guild_id: guild.id, role: this.roleWire(guild, roleId) });
  }

  /**
   * Deletes a role → GUILD_ROLE_DELETE { guild_id, role_id }. Members no longer hold it (Discord
   * sends no member update for that: clients drop the role id themselves).
   */
  deleteRole(guildId: string, roleId: string): void {
    const guild = this.guildById(guildId);
    const index = guild.roles?.findIndex((r) => r.id === roleId) ?? -1;
    if (index < 0 || roleId === guild.id) throw new Error(`Discord stand-in: guild ${guildId} has no role ${roleId} that can be deleted`);
    guild.roles!.splice(index, 1);
    guild.botRoles = guild.botRoles?.filter((id) => id !== roleId);
    this.dispatchChange('GUILD_ROLE_DELETE', { guild_id: guild.id, role_id: roleId });
  }

  /**
   * Sets the roles the bot's member holds besides its managed one → GUILD_MEMBER_UPDATE, which
   * Discord sends for the current user whatever the intents.
   */
  setBotRoles(guildId: string, roleIds: string[]): void {
    const guild = this.guildById(guildId);
    guild.botRoles = [...roleIds];
    this.dispatchChange('GUILD_MEMBER_UPDATE', { guild_id: guild.id, ...memberToWire(this.botUser, botMemberRoles(guild, this.botUser)) });
  }

  /**
   * Removes the bot from a guild (kicked, or the guild deleted) → GUILD_DELETE { id } without
   * `unavailable`, which is how a client tells a removal from an outage; the guild then answers
   * 404 10004 like any the bot is not in.
   */
  removeBot(guildId: string): void {
    const guild = this.guildById(guildId);
    (this.guilds as GuildSpec[]).splice(this.guilds.indexOf(guild), 1);
    this.dispatchChange('GUILD_DELETE', { id: guild.id });
  }

  private guildById(guildId: string): GuildSpec {
    const guild = this.guilds.find((g) => g.id === guildId);
    if (!guild) throw new Error(`Discord stand-in: unknown guild ${guildId}`);
    return guild;
  }

  private roleWire(guild: GuildSpec, roleId: string): JsonObject {
    const roles = guildRoles(guild, this.botUser);
    const index = roles.findIndex((role) => role.id === roleId);
    return roleToWire(roles[index]!, index);
  }

  private dispatchChange(event: string, data: JsonObject): void {
    if (this.gateway.sessionId) this.gateway.dispatch(event, data);
    this.feed.changed();
  }

  // ------------------------------------------------------------------------------------------
  // Playing the users

  /** Dispatches an APPLICATION_COMMAND INTERACTION_CREATE for a registered chat-input command. */
  async slashCommand(spec: SlashCommandSpec): Promise<StandInInteraction> {
    const { guild, channel } = this.locateChannel(spec.channelId, spec.guildId);
    const command =
      this.guildCommands.get(guild.id)?.find((c) => c.name === spec.name && c.type === 1) ??
      this.globalCommands.find((c) => c.name === spec.name && c.type === 1);
    if (!command) {
      const known = [...(this.guildCommands.get(guild.id) ?? []), ...this.globalCommands].map((c) => c.name);
      throw new Error(`Discord stand-in: /${spec.name} is not registered for guild ${guild.id} (registered: ${known.join(', ') || 'none'})`);
    }
    const data: JsonObject = { id: command.id, name: spec.name, type: 1, options: spec.options ?? [] };
    if (command.guild_id) data.guild_id = command.guild_id;
    if (spec.resolved) data.resolved = spec.resolved;
    return this.dispatchInteraction('command', 2, guild, channel, spec, data, { commandName: spec.name });
  }

  /** Dispatches a button click (MESSAGE_COMPONENT) on a message the bot sent. */
  async clickButton(spec: ButtonClickSpec): Promise<StandInInteraction> {
    const messageId = typeof spec.message === 'string' ? spec.message : spec.message.id;
    const message = this.messages.get(messageId);
    if (!message || message.deleted) throw new Error(`Discord stand-in: no message ${messageId} to click on`);
    const buttons = message.components.flatMap((row) => (Array.isArray(row.components) ? row.components.filter(isJsonObject) : []));
    const button = buttons.find((b) => b.custom_id === spec.customId && b.type === 2);
    if (!button) {
      const ids = buttons.map((b) => b.custom_id).filter(Boolean);
      throw new Error(`Discord stand-in: message ${messageId} has no button '${spec.customId}' (buttons: ${ids.join(', ') || 'none'})`);
    }
    if (button.disabled === true) throw new Error(`Discord stand-in: button '${spec.customId}' is disabled; a user cannot click it`);
    const { guild, channel } = this.locateChannel(message.channel_id);
    return this.dispatchInteraction('component', 3, guild, channel, spec, { custom_id: spec.customId, component_type: 2 }, {
      customId: spec.customId,
      componentMessage: message,
      messageWire: messageToWire(message),
    });
  }

  async close(): Promise<void> {
    this.feed.close();
    await this.gateway.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ------------------------------------------------------------------------------------------
  // Interactions

  private locateChannel(channelId: string, guildId?: string): { guild: GuildSpec; channel: ChannelSpec } {
    for (const guild of this.guilds) {
      const channel = guild.channels.find((c) => c.id === channelId);
      if (!channel) continue;
      if (guildId !== undefined && guildId !== guild.id) {
        throw new Error(`Discord stand-in: channel ${channelId} belongs to guild ${guild.id}, not ${guildId}`);
      }
      return { guild, channel };
    }
    throw new Error(`Discord stand-in: unknown channel ${channelId}`);
  }

  private async dispatchInteraction(
    kind: 'command' | 'component',
    type: number,
    guild: GuildSpec,
    channel: ChannelSpec,
    actor: ActingMember & { locale?: string; expiresInMs?: number },
    data: JsonObject,
    extra: { commandName?: string; customId?: string; componentMessage?: StandInMessage; messageWire?: JsonObject },
  ): Promise<StandInInteraction> {
    await this.feed.until(() => this.gateway.sessionId ?? undefined, 'a gateway session (client logged in)', this.waitMs);
    const user = userToWire(actor.user);
    this.users.set(actor.user.id, user);
    const roles = actor.roles ?? [];
    const id = this.ids.next();
    const token = `aW50ZXJhY3Rpb24.${randomBytes(24).toString('base64url')}`;
    const payload: JsonObject = {
      id,
      application_id: this.applicationId,
      type,
      data,
      guild_id: guild.id,
      channel: channelToWire(channel, guild.id, 0),
      channel_id: channel.id,
      member: memberToWire(user, roles, actor.permissions ?? this.memberPermissions(guild, roles)),
      token,
      version: 1,
      app_permissions: ALL_PERMISSIONS,
      locale: actor.locale ?? 'en-US',
      guild_locale: 'en-US',
      entitlements: [],
      authorizing_integration_owners: { '0': guild.id },
      context: 0,
      attachment_size_limit: 10 * 1024 * 1024,
    };
    if (extra.messageWire) payload.message = extra.messageWire;
    const spec: InteractionSpec = {
      kind,
      id,
      token,
      applicationId: this.applicationId,
      guildId: guild.id,
      channelId: channel.id,
      user,
      commandName: extra.commandName,
      customId: extra.customId,
      componentMessage: extra.componentMessage,
      createdAt: this.clock.now(),
      expiresInMs: actor.expiresInMs ?? this.expiryMs,
      payload,
      // Filled in right below; the record must exist before the dispatch so an instant callback finds it.
      dispatch: { sessionId: '', seq: 0, delivered: false },
    };
    const interaction = new StandInInteraction(spec, this.feed, this.waitMs);
    this.interactions.push(interaction);
    Object.assign(interaction.dispatch, this.gateway.dispatch('INTERACTION_CREATE', structuredClone(payload)));
    this.feed.changed();
    return interaction;
  }

  /** The bot's guild-level permissions (its roles and @everyone), as /users/@me/guilds shows them. */
  private botGuildPermissions(guild: GuildSpec): string {
    const roles = botMemberRoles(guild, this.botUser);
    let bits = 0n;
    for (const role of guildRoles(guild, this.botUser)) {
      if (role.id === guild.id || roles.includes(role.id)) bits |= BigInt(role.permissions ?? '0');
    }
    return bits.toString();
  }

  private memberPermissions(guild: GuildSpec, roles: string[]): string {
    let bits = 0n;
    for (const role of guildRoles(guild)) {
      if (role.id === guild.id || roles.includes(role.id)) bits |= BigInt(role.permissions ?? '0');
    }
    return bits.toString();
  }

  private interactionById(id: string): StandInInteraction | undefined {
    return this.interactions.find((interaction) => interaction.id === id);
  }

  private interactionByToken(applicationId: string, token: string): StandInInteraction | undefined {
    if (applicationId !== this.applicationId) return undefined;
    return this.interactions.find((interaction) => interaction.token === token);
  }

  private interactionCallback({ params, query, body }: RouteContext): Answer {
    const interaction = this.interactionById(params.interaction);
    const callback = isJsonObject(body) ? body : {};
    const type = typeof callback.type === 'number' ? callback.type : -1;
    const data = isJsonObject(callback.data) ? callback.data : null;
    const withResponse = query.with_response === 'true';
    if (!interaction || interaction.token !== params.token) return fail(404, errorBody.unknownInteraction);

    const record = { type, data, withResponse, status: 0, afterMs: this.clock.now() - interaction.createdAt };
    interaction.callbacks.push(record);
    const answer = this.acknowledge(interaction, type, data, withResponse, record.afterMs);
    record.status = answer.status;
    return answer;
  }

  private acknowledge(interaction: StandInInteraction, type: number, data: JsonObject | null, withResponse: boolean, afterMs: number): Answer {
    if (interaction.acknowledged) return fail(400, errorBody.alreadyAcknowledged);
    if (afterMs > interaction.expiresInMs) return fail(404, errorBody.unknownInteraction);
    const component = interaction.componentMessage;
    const invalidType = formError([{ path: ['type'], code: 'INTERACTION_RESPONSE_TYPE_INVALID', message: `Response type ${type} is not valid for this interaction` }]);

    let message: StandInMessage | null = null;
    switch (type) {
      case CallbackType.ChannelMessageWithSource: {
        const body = data ?? {};
        const problems = messageBodyProblems(body, { requireContent: true });
        if (problems.length) return formError(problems);
        message = this.createMessage(interaction.channelId, body, 'interaction-response', interaction);
        interaction.original = message;
        interaction.settle(type, message);
        break;
      }
      case CallbackType.DeferredChannelMessageWithSource: {
        const flags = MessageFlag.Loading | (Number(data?.flags ?? 0) & MessageFlag.Ephemeral);
        message = this.createMessage(interaction.channelId, { content: '', flags }, 'interaction-response', interaction);
        interaction.original = message;
        break;
      }
      case CallbackType.DeferredUpdateMessage:
        if (!component) return invalidType;
        interaction.original = component;
        break;
      case CallbackType.UpdateMessage: {
        if (!component) return invalidType;
        const problem = this.editMessage(component, data ?? {}, interaction);
        if (problem) return problem;
        interaction.original = component;
        message = component;
        interaction.settle(type, component);
        break;
      }
      case CallbackType.Modal:
        break;
      default:
        return invalidType;
    }
    interaction.acknowledgedWith = type;
    if (!withResponse) return { status: 204 };
    const callback: JsonObject = { id: interaction.id, type: interaction.payload.type };
    if (message) {
      callback.response_message_id = message.id;
      callback.response_message_loading = (message.flags & MessageFlag.Loading) !== 0;
      callback.response_message_ephemeral = (message.flags & MessageFlag.Ephemeral) !== 0;
    }
    const resource: JsonObject = { type };
    if (message) resource.message = messageToWire(message);
    return { status: 200, body: { interaction: callback, resource } };
  }

  // ------------------------------------------------------------------------------------------
  // Messages

  private knownUser = (id: string): JsonObject => this.users.get(id) ?? userToWire({ id, username: `user${id}` });

  private createMessage(
    channelId: string,
    body: JsonObject,
    source: StandInMessage['source'],
    interaction?: StandInInteraction,
    files: UploadedFile[] = [],
  ): StandInMessage {
    const { guild } = this.locateChannel(channelId);
    const content = typeof body.content === 'string' ? body.content : '';
    const allowed = isJsonObject(body.allowed_mentions) ? body.allowed_mentions : null;
    const message: StandInMessage = {
      id: this.ids.next(),
      type: interaction ? (interaction.kind === 'command' ? 20 : 0) : 0,
      channel_id: channelId,
      guild_id: guild.id,
      author: this.botUser,
      content,
      embeds: Array.isArray(body.embeds) ? body.embeds.filter(isJsonObject) : [],
      components: Array.isArray(body.components) ? body.components.filter(isJsonObject) : [],
      flags: Number(body.flags ?? 0),
      timestamp: new Date().toISOString(),
      edited_timestamp: null,
      ...resolveMentions(content, allowed, this.knownUser),
      allowed_mentions: allowed,
      source,
      deleted: false,
      files: files.map((file) => ({ ...file, id: this.ids.next() })),
    };
    if (interaction) {
      message.application_id = this.applicationId;
      message.webhook_id = this.applicationId;
      message.interactionId = interaction.id;
      const metadata: JsonObject = {
        id: interaction.id,
        type: interaction.payload.type,
        user: interaction.user,
        authorizing_integration_owners: { '0': interaction.guildId },
      };
      if (interaction.commandName) metadata.name = interaction.commandName;
      if (interaction.componentMessage) metadata.interacted_message_id = interaction.componentMessage.id;
      if (source === 'follow-up' && interaction.original) metadata.original_response_message_id = interaction.original.id;
      message.interaction_metadata = metadata;
    }
    this.messages.set(message.id, message);
    this.feed.changed();
    return message;
  }

  /** Applies a PATCH body; returns an error answer, or null when applied. */
  private editMessage(message: StandInMessage, body: JsonObject, interaction?: StandInInteraction, files: UploadedFile[] = []): Answer | null {
    const next = { ...message };
    // Discord's rule: `attachments`, when sent, lists the existing attachments to keep (by id);
    // new uploads (files[n]) are added either way.
    if (Array.isArray(body.attachments) || files.length) {
      const keep = Array.isArray(body.attachments)
        ? new Set(body.attachments.filter(isJsonObject).map((a) => String(a.id)))
        : new Set(message.files.map((f) => f.id));
      next.files = [...message.files.filter((f) => keep.has(f.id)), ...files.map((file) => ({ ...file, id: this.ids.next() }))];
    }
    if ('content' in body && body.content !== undefined) next.content = typeof body.content === 'string' ? body.content : '';
    if (Array.isArray(body.embeds)) next.embeds = body.embeds.filter(isJsonObject);
    if (Array.isArray(body.components)) next.components = body.components.filter(isJsonObject);
    if (isJsonObject(body.allowed_mentions)) next.allowed_mentions = body.allowed_mentions;
    const problems = messageBodyProblems({ ...body, content: next.content, embeds: next.embeds, components: next.components }, { requireContent: true });
    if (problems.length) return formError(problems);
    // Editing a deferred response ends its "thinking…" state.
    Object.assign(message, next, {
      flags: message.flags & ~MessageFlag.Loading,
      edited_timestamp: new Date().toISOString(),
      ...resolveMentions(next.content, next.allowed_mentions, this.knownUser),
    });
    interaction?.edits.push({ messageId: message.id, body: structuredClone(body), at: this.clock.now() });
    this.feed.changed();
    return null;
  }

  private findWebhookMessage(interaction: StandInInteraction, messageId: string): StandInMessage | undefined {
    if (messageId === '@original') return interaction.original ?? undefined;
    const message = this.messages.get(messageId);
    if (!message || message.deleted) return undefined;
    const ours = message.interactionId === interaction.id || message === interaction.original;
    return ours ? message : undefined;
  }

  // ------------------------------------------------------------------------------------------
  // Commands

  private overwriteCommands(list: StoredCommand[], body: unknown, guildId?: string): Answer {
    if (!Array.isArray(body)) return formError([{ path: [], code: 'ARRAY_TYPE_CONVERT', message: 'Must be an array.' }]);
    const problems: FormError[] = [];
    const next: StoredCommand[] = [];
    body.forEach((raw: unknown, index) => {
      const definition = isJsonObject(raw) ? raw : {};
      problems.push(...commandProblems(definition, [index]));
      const type = typeof definition.type === 'number' ? definition.type : 1;
      const name = String(definition.name ?? '');
      const existing = list.find((c) => c.name === name && c.type === type);
      next.push(this.storeCommand(definition, existing?.id, guildId));
    });
    if (problems.length) return formError(problems);
    list.splice(0, list.length, ...next);
    this.feed.changed();
    return { status: 200, body: structuredClone(next) };
  }

  private storeCommand(definition: JsonObject, id: string | undefined, guildId?: string): StoredCommand {
    const stored: StoredCommand = {
      ...structuredClone(definition),
      id: id ?? this.ids.next(),
      application_id: this.applicationId,
      name: String(definition.name),
      description: typeof definition.description === 'string' ? definition.description : '',
      type: typeof definition.type === 'number' ? definition.type : 1,
      options: Array.isArray(definition.options) ? structuredClone(definition.options) : [],
      default_member_permissions: definition.default_member_permissions ?? null,
      nsfw: definition.nsfw === true,
      version: this.ids.next(),
    };
    if (guildId) stored.guild_id = guildId;
    return stored;
  }

  private commandList(params: Record<string, string>): StoredCommand[] | Answer {
    if (params.application !== this.applicationId) return fail(404, errorBody.unknownApplication);
    if (params.guild === undefined) return this.globalCommands;
    if (!this.guilds.some((guild) => guild.id === params.guild)) return fail(403, errorBody.missingAccess);
    let list = this.guildCommands.get(params.guild);
    if (!list) this.guildCommands.set(params.guild, (list = []));
    return list;
  }

  // ------------------------------------------------------------------------------------------
  // REST

  private buildRoutes(): Route[] {
    const route = (method: string, template: string, auth: boolean, handle: Route['handle']): Route => ({
      method,
      template,
      segments: template.split('/').filter(Boolean),
      auth,
      handle,
    });
    const guildOf = (id: string) => this.guilds.find((guild) => guild.id === id);
    const channelOf = (id: string) => this.guilds.flatMap((g) => g.channels.map((c) => ({ guild: g, channel: c }))).find((x) => x.channel.id === id);
    const channelMessage = (params: Record<string, string>) => {
      const message = this.messages.get(params.message);
      return message && !message.deleted && message.channel_id === params.channel ? message : undefined;
    };
    const commandsGet = ({ params }: RouteContext): Answer => {
      const list = this.commandList(params);
      return Array.isArray(list) ? { status: 200, body: structuredClone(list) } : list;
    };
    const commandsPut = ({ params, body }: RouteContext): Answer => {
      const list = this.commandList(params);
      return Array.isArray(list) ? this.overwriteCommands(list, body, params.guild) : list;
    };
    const commandsPost = ({ params, body }: RouteContext): Answer => {
      const list = this.commandList(params);
      if (!Array.isArray(list)) return list;
      const definition = isJsonObject(body) ? body : {};
      const problems = commandProblems(definition, []);
      if (problems.length) return formError(problems);
      const type = typeof definition.type === 'number' ? definition.type : 1;
      const index = list.findIndex((c) => c.name === definition.name && c.type === type);
      const stored = this.storeCommand(definition, list[index]?.id, params.guild);
      if (index >= 0) list[index] = stored;
      else list.push(stored);
      this.feed.changed();
      return { status: index >= 0 ? 200 : 201, body: structuredClone(stored) };
    };
    const webhookInteraction = (params: Record<string, string>) => this.interactionByToken(params.application, params.token);

    return [
      route('GET', '/gateway/bot', true, () => ({
        status: 200,
        body: {
          url: this.gatewayUrl,
          shards: 1,
          session_start_limit: { total: 1000, remaining: 1000 - this.gateway.identifies.length, reset_after: 14_400_000, max_concurrency: 1 },
        },
      })),
      route('GET', '/gateway', false, () => ({ status: 200, body: { url: this.gatewayUrl } })),
      route('GET', '/users/@me', true, () => ({ status: 200, body: this.botUser })),
      route('GET', '/applications/@me', true, () => ({
        status: 200,
        body: { id: this.applicationId, name: this.botUser.username, description: '', bot_public: false, bot_require_code_grant: false, flags: 0, bot: this.botUser },
      })),
      route('GET', '/applications/:application/commands', true, commandsGet),
      route('PUT', '/applications/:application/commands', true, commandsPut),
      route('POST', '/applications/:application/commands', true, commandsPost),
      route('GET', '/applications/:application/guilds/:guild/commands', true, commandsGet),
      route('PUT', '/applications/:application/guilds/:guild/commands', true, commandsPut),
      route('POST', '/applications/:application/guilds/:guild/commands', true, commandsPost),

      route('POST', '/interactions/:interaction/:token/callback', false, (context) => this.interactionCallback(context)),

      route('POST', '/webhooks/:application/:token', false, ({ params, query, body, files }) => {
        const interaction = webhookInteraction(params);
        // Follow-ups exist only after the interaction was acknowledged.
        if (!interaction || !interaction.acknowledged) return fail(404, errorBody.unknownWebhook);
        const payload = isJsonObject(body) ? body : {};
        const problems = messageBodyProblems(payload, { requireContent: files.length === 0 });
        if (problems.length) return formError(problems);
        const message = this.createMessage(interaction.channelId, payload, 'follow-up', interaction, files);
        interaction.followUps.push(message);
        this.feed.changed();
        return query.wait === 'true' ? { status: 200, body: messageToWire(message) } : { status: 204 };
      }),
      route('GET', '/webhooks/:application/:token/messages/:message', false, ({ params }) => {
        const interaction = webhookInteraction(params);
        if (!interaction) return fail(404, errorBody.unknownWebhook);
        const message = this.findWebhookMessage(interaction, params.message);
        return message ? { status: 200, body: messageToWire(message) } : fail(404, errorBody.unknownMessage);
      }),
      route('PATCH', '/webhooks/:application/:token/messages/:message', false, ({ params, body, files }) => {
        const interaction = webhookInteraction(params);
        if (!interaction) return fail(404, errorBody.unknownWebhook);
        const message = this.findWebhookMessage(interaction, params.message);
        if (!message) return fail(404, errorBody.unknownMessage);
        const problem = this.editMessage(message, isJsonObject(body) ? body : {}, interaction, files);
        if (problem) return problem;
        if (message === interaction.original && interaction.acknowledgedWith !== null) {
          interaction.settle(interaction.acknowledgedWith, message);
          this.feed.changed();
        }
        return { status: 200, body: messageToWire(message) };
      }),
      route('DELETE', '/webhooks/:application/:token/messages/:message', false, ({ params }) => {
        const interaction = webhookInteraction(params);
        if (!interaction) return fail(404, errorBody.unknownWebhook);
        const message = this.findWebhookMessage(interaction, params.message);
        if (!message) return fail(404, errorBody.unknownMessage);
        message.deleted = true;
        this.feed.changed();
        return { status: 204 };
      }),

      // What a bot reads to check its own footing: the guilds it is in, a guild's roles, channels
      // (with their overwrites, whether or not it can see them, as Discord lists them) and members.
      route('GET', '/users/@me/guilds', true, () => ({
        status: 200,
        body: this.guilds.map((guild) => ({ id: guild.id, name: guild.name, icon: null, banner: null, owner: false, permissions: this.botGuildPermissions(guild), features: [] })),
      })),
      route('GET', '/guilds/:guild', true, ({ params }) => {
        const guild = guildOf(params.guild);
        return guild ? { status: 200, body: guildToWire(guild, this.guildOwnerId, this.botUser) } : fail(404, errorBody.unknownGuild);
      }),
      route('GET', '/guilds/:guild/roles', true, ({ params }) => {
        const guild = guildOf(params.guild);
        return guild ? { status: 200, body: guildRoles(guild, this.botUser).map((role, index) => roleToWire(role, index)) } : fail(404, errorBody.unknownGuild);
      }),
      route('GET', '/guilds/:guild/channels', true, ({ params }) => {
        const guild = guildOf(params.guild);
        return guild ? { status: 200, body: guild.channels.map((channel, index) => channelToWire(channel, guild.id, index)) } : fail(404, errorBody.unknownGuild);
      }),
      route('GET', '/guilds/:guild/members/:user', true, ({ params }) => {
        const guild = guildOf(params.guild);
        if (!guild) return fail(404, errorBody.unknownGuild);
        if (params.user === String(this.botUser.id)) return { status: 200, body: memberToWire(this.botUser, botMemberRoles(guild, this.botUser)) };
        const user = this.users.get(params.user);
        return user ? { status: 200, body: memberToWire(user, []) } : fail(404, errorBody.unknownMember);
      }),

      route('GET', '/channels/:channel', true, ({ params }) => {
        const found = channelOf(params.channel);
        if (!found) return fail(404, errorBody.unknownChannel);
        if (!(botChannelPermissions(found.guild, found.channel, this.botUser) & Permission.ViewChannel)) return fail(403, errorBody.missingAccess);
        return { status: 200, body: channelToWire(found.channel, found.guild.id, found.guild.channels.indexOf(found.channel)) };
      }),
      route('POST', '/channels/:channel/messages', true, ({ params, body, files }) => {
        const found = channelOf(params.channel);
        if (!found) return fail(404, errorBody.unknownChannel);
        // As Discord: a channel the bot cannot see is 50001, one it may not post in (or attach to) 50013.
        const allowed = botChannelPermissions(found.guild, found.channel, this.botUser);
        if (!(allowed & Permission.ViewChannel)) return fail(403, errorBody.missingAccess);
        if (!(allowed & Permission.SendMessages)) return fail(403, errorBody.missingPermissions);
        if (files.length && !(allowed & Permission.AttachFiles)) return fail(403, errorBody.missingPermissions);
        const payload = isJsonObject(body) ? body : {};
        const problems = messageBodyProblems(payload, { requireContent: files.length === 0 });
        if (problems.length) return formError(problems);
        // enforce_nonce: a message with the same nonce sent within a few minutes is returned, not repeated.
        const nonce = payload.enforce_nonce === true && (typeof payload.nonce === 'string' || typeof payload.nonce === 'number') ? String(payload.nonce) : undefined;
        const earlier = nonce === undefined ? undefined : this.channelMessages(params.channel).find((m) => m.enforcedNonce === nonce && Date.now() - Date.parse(m.timestamp) < NONCE_WINDOW_MS);
        if (earlier) return { status: 200, body: messageToWire(earlier) };
        const created = this.createMessage(params.channel, payload, 'channel', undefined, files);
        if (nonce !== undefined) created.enforcedNonce = nonce;
        return { status: 200, body: messageToWire(created) };
      }),
      route('GET', '/channels/:channel/messages/:message', true, ({ params }) => {
        if (!channelOf(params.channel)) return fail(404, errorBody.unknownChannel);
        const message = channelMessage(params);
        return message ? { status: 200, body: messageToWire(message) } : fail(404, errorBody.unknownMessage);
      }),
      route('PATCH', '/channels/:channel/messages/:message', true, ({ params, body, files }) => {
        if (!channelOf(params.channel)) return fail(404, errorBody.unknownChannel);
        const message = channelMessage(params);
        if (!message) return fail(404, errorBody.unknownMessage);
        const interaction = message.interactionId ? this.interactionById(message.interactionId) : undefined;
        return this.editMessage(message, isJsonObject(body) ? body : {}, interaction, files) ?? { status: 200, body: messageToWire(message) };
      }),
      route('DELETE', '/channels/:channel/messages/:message', true, ({ params }) => {
        if (!channelOf(params.channel)) return fail(404, errorBody.unknownChannel);
        const message = channelMessage(params);
        if (!message) return fail(404, errorBody.unknownMessage);
        message.deleted = true;
        this.feed.changed();
        return { status: 204 };
      }),
    ];
  }

  private async serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://stand-in');
    const method = (request.method ?? 'GET').toUpperCase();
    const prefix = '/api/v10';
    const versioned = url.pathname.startsWith(`${prefix}/`);
    // discord.js sends '@original' percent-encoded (%40original); compare decoded segments.
    const segments = (versioned ? url.pathname.slice(prefix.length) : url.pathname).split('/').filter(Boolean).map(safeDecode);
    const record: RecordedRequest = {
      method,
      path: versioned ? `/${segments.join('/')}` : url.pathname,
      query: Object.fromEntries(url.searchParams),
      body: undefined,
      route: null,
      authorized: request.headers.authorization === `Bot ${this.token}`,
      status: 0,
      faulted: false,
      at: Date.now(),
    };
    this.requests.push(record);

    const answer = await this.answerRequest(request, record, versioned ? segments : null);
    const withhold = this.withheld.findIndex((w) => w.method === record.method && w.path.test(record.path));
    if (withhold >= 0) {
      const [held] = this.withheld.splice(withhold, 1);
      this.feed.changed();
      held.arrived(record);
      return; // the socket stays open, unanswered, until the client gives up or dies
    }
    record.status = answer.status;
    const headers: Record<string, string> = { ...answer.headers };
    if (answer.body !== undefined) headers['content-type'] = 'application/json';
    response.writeHead(answer.status, headers);
    response.end(answer.body === undefined ? undefined : JSON.stringify(answer.body));
    this.feed.changed();
  }

  private async answerRequest(request: IncomingMessage, record: RecordedRequest, segments: string[] | null): Promise<Answer> {
    let parsed: Awaited<ReturnType<typeof readBody>>;
    try {
      parsed = await readBody(request);
    } catch (error) {
      return fail(400, { message: `400: Bad Request (${describe(error)})`, code: 0 });
    }
    record.body = parsed.body;
    try {
      return this.answer(record, segments, parsed.body, parsed.files);
    } catch (error) {
      // A bug in the stand-in, not Discord behaviour: make it loud.
      return fail(500, { message: `Discord stand-in failed: ${describe(error)}`, code: 0 });
    }
  }

  private answer(record: RecordedRequest, segments: string[] | null, body: unknown, files: UploadedFile[]): Answer {
    const fault = this.faults.find(
      (f) => f.remaining > 0 && (f.spec.method === undefined || f.spec.method.toUpperCase() === record.method) && (f.spec.path === undefined || f.spec.path.test(record.path)),
    );
    if (fault) {
      fault.remaining -= 1;
      fault.hits.push(record);
      record.faulted = true;
      return faultAnswer(fault.spec);
    }
    if (!segments) return fail(404, errorBody.unknownRoute);
    for (const candidate of this.routes) {
      if (candidate.method !== record.method) continue;
      const params = matchRoute(candidate.segments, segments);
      if (!params) continue;
      record.route = `${candidate.method} ${candidate.template}`;
      if (candidate.auth && !record.authorized) return fail(401, errorBody.unauthorized);
      return candidate.handle({ params, query: record.query, body, files });
    }
    return fail(404, errorBody.unknownRoute);
  }
}

/** How long Discord remembers an enforced nonce ("the past few minutes"). */
const NONCE_WINDOW_MS = 5 * 60_000;

export function startDiscordStandIn(options: DiscordStandInOptions): Promise<DiscordStandIn> {
  return DiscordStandIn.start(options);
}

