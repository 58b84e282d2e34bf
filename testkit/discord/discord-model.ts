// Shapes and helpers shared by the Discord stand-in's REST side (discord.ts) and its gateway
// (discord-gateway.ts). Wire objects are Discord API v10 JSON, snake_case, as discord.js reads them.

export type JsonObject = Record<string, unknown>;

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---------------------------------------------------------------------------------------------
// What a test declares

export interface ChannelSpec {
  id: string;
  name: string;
  /** Discord channel type; 0 (GUILD_TEXT) unless said otherwise. */
  type?: number;
  /** The channel's permission overwrites, in Discord's shape (none unless given). */
  permissionOverwrites?: OverwriteSpec[];
}

/**
 * A channel permission overwrite as Discord sends it: `id` is a role (type 0; the guild's id is
 * @everyone) or a member (type 1); `allow` and `deny` are permission bit sets as decimal strings.
 */
export interface OverwriteSpec {
  id: string;
  type: 0 | 1;
  allow?: string;
  deny?: string;
}

export interface RoleSpec {
  id: string;
  name: string;
  /** Permission bit set as a decimal string, as Discord sends it. Defaults to '0'. */
  permissions?: string;
  /** Whether anyone may @mention it (default true). */
  mentionable?: boolean;
  /** Set on a bot's managed role: the bot it belongs to. */
  botId?: string;
}

export interface GuildSpec {
  id: string;
  name: string;
  channels: ChannelSpec[];
  roles?: RoleSpec[];
  /**
   * The bot's own (managed) role, which Discord creates when the bot is invited with permissions:
   * its id and permissions. Default: id = the guild's id + 1000, the invite's permissions
   * (BOT_INVITE_PERMISSIONS: View Channels, Send Messages, Embed Links, Attach Files).
   */
  botRole?: { id?: string; permissions?: string };
  /** Further roles the bot's member holds (ids of `roles`). */
  botRoles?: string[];
}

/** Permission bits the stand-in checks, as Discord numbers them. */
export const Permission = {
  Administrator: 1n << 3n,
  ViewChannel: 1n << 10n,
  SendMessages: 1n << 11n,
  EmbedLinks: 1n << 14n,
  AttachFiles: 1n << 15n,
  MentionEveryone: 1n << 17n,
} as const;
/** What the README's invite link grants: View Channels, Send Messages, Embed Links, Attach Files. */
export const BOT_INVITE_PERMISSIONS = (Permission.ViewChannel | Permission.SendMessages | Permission.EmbedLinks | Permission.AttachFiles).toString();
const ALL_BITS = (1n << 53n) - 1n;

export interface UserSpec {
  id: string;
  username: string;
  globalName?: string;
}

// ---------------------------------------------------------------------------------------------
// What the stand-in records

/** A message as the stand-in holds it: the wire shape plus what it was sent with. */
export interface StandInMessage {
  id: string;
  type: number;
  channel_id: string;
  guild_id?: string;
  author: JsonObject;
  content: string;
  embeds: JsonObject[];
  components: JsonObject[];
  flags: number;
  timestamp: string;
  edited_timestamp: string | null;
  mentions: JsonObject[];
  mention_roles: string[];
  mention_everyone: boolean;
  /** Not echoed by Discord; kept so tests can see what the sender allowed to ping. */
  allowed_mentions: JsonObject | null;
  application_id?: string;
  webhook_id?: string;
  interaction_metadata?: JsonObject;
  /** Stand-in bookkeeping, stripped from the wire: how the message came to be. */
  source: 'channel' | 'interaction-response' | 'follow-up';
  /** Id of the interaction this message answers (original response or follow-up). */
  interactionId?: string;
  deleted: boolean;
  /** Files uploaded with it (multipart requests), bytes included, as its attachments. */
  files: StoredFile[];
  /** The nonce it was created with, when the sender asked Discord to enforce it. */
  enforcedNonce?: string;
}

/** One `files[n]` part of a multipart request, as Discord receives it. */
export interface UploadedFile {
  /** the form field, e.g. "files[0]" */
  field: string;
  name: string;
  size: number;
  contentType?: string;
  data: Buffer;
}

/** An uploaded file once it is a message's attachment (the id is the attachment's own). */
export interface StoredFile extends UploadedFile {
  id: string;
}

const bookkeeping = new Set(['allowed_mentions', 'source', 'interactionId', 'deleted', 'files', 'enforcedNonce']);

/** The message as Discord would send it to a client. */
export function messageToWire(message: StandInMessage): JsonObject {
  const wire: JsonObject = {
    tts: false,
    pinned: false,
    attachments: message.files.map((file) => ({
      id: file.id,
      filename: file.name,
      size: file.size,
      ...(file.contentType ? { content_type: file.contentType } : {}),
      url: `https://cdn.invalid/${file.name}`,
      proxy_url: `https://cdn.invalid/${file.name}`,
    })),
    mention_channels: [],
  };
  for (const [key, value] of Object.entries(message)) {
    if (!bookkeeping.has(key) && value !== undefined) wire[key] = value;
  }
  return structuredClone(wire);
}

// ---------------------------------------------------------------------------------------------
// Snowflakes

const discordEpoch = 1_420_070_400_000n;

/** Discord-style ids: time-ordered, unique within the process. */
export class Snowflakes {
  private increment = 0n;
  next(nowMs = Date.now()): string {
    this.increment = (this.increment + 1n) & 0xfffn;
    return (((BigInt(nowMs) - discordEpoch) << 22n) | (1n << 17n) | this.increment).toString();
  }
}

// ---------------------------------------------------------------------------------------------
// Event-driven waits: a waiter re-checks its condition whenever the stand-in records something,
// never on a timer. The timer only bounds the wait so a broken test fails with a clear message.

interface Watcher {
  check(): boolean;
  fail(error: Error): void;
}

export class ChangeFeed {
  private readonly watchers = new Set<Watcher>();
  private closedWith: Error | null = null;

  /** Resolves with the first non-undefined result of `probe`, now or after a later change. */
  until<T>(probe: () => T | undefined, what: string, timeoutMs: number): Promise<T> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    let now: T | undefined;
    try {
      now = probe();
    } catch (error) {
      return Promise.reject(error);
    }
    if (now !== undefined) return Promise.resolve(now);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.watchers.delete(watcher);
        reject(new Error(`Discord stand-in: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const watcher: Watcher = {
        check: () => {
          const value = probe();
          if (value === undefined) return false;
          clearTimeout(timer);
          resolve(value);
          return true;
        },
        fail: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.watchers.add(watcher);
    });
  }

  changed(): void {
    for (const watcher of [...this.watchers]) {
      let done = false;
      try {
        done = watcher.check();
      } catch (error) {
        watcher.fail(error instanceof Error ? error : new Error(String(error)));
        done = true;
      }
      if (done) this.watchers.delete(watcher);
    }
  }

  close(): void {
    this.closedWith = new Error('Discord stand-in closed');
    for (const watcher of this.watchers) watcher.fail(this.closedWith);
    this.watchers.clear();
  }
}

// ---------------------------------------------------------------------------------------------
// Wire builders

export function userToWire(user: UserSpec, bot = false): JsonObject {
  return {
    id: user.id,
    username: user.username,
    discriminator: bot ? '0000' : '0',
    global_name: user.globalName ?? null,
    avatar: null,
    bot,
    system: false,
    public_flags: 0,
    flags: 0,
  };
}

export function roleToWire(role: RoleSpec, position: number): JsonObject {
  const wire: JsonObject = {
    id: role.id,
    name: role.name,
    color: 0,
    colors: { primary_color: 0, secondary_color: null, tertiary_color: null },
    hoist: false,
    icon: null,
    unicode_emoji: null,
    position,
    permissions: role.permissions ?? '0',
    managed: role.botId !== undefined,
    mentionable: role.mentionable ?? true,
    flags: 0,
  };
  if (role.botId !== undefined) wire.tags = { bot_id: role.botId };
  return wire;
}

export function channelToWire(channel: ChannelSpec, guildId: string, position: number): JsonObject {
  return {
    id: channel.id,
    type: channel.type ?? 0,
    guild_id: guildId,
    name: channel.name,
    position,
    permission_overwrites: (channel.permissionOverwrites ?? []).map((o) => ({ id: o.id, type: o.type, allow: o.allow ?? '0', deny: o.deny ?? '0' })),
    topic: null,
    nsfw: false,
    last_message_id: null,
    rate_limit_per_user: 0,
    parent_id: null,
    flags: 0,
  };
}

/** The bot's managed role in `guild` (see GuildSpec.botRole). */
export function botRoleOf(guild: GuildSpec, botUser: JsonObject): RoleSpec {
  const id = guild.botRole?.id ?? (BigInt(guild.id) + 1000n).toString();
  return { id, name: String(botUser.username), permissions: guild.botRole?.permissions ?? BOT_INVITE_PERMISSIONS, botId: String(botUser.id), mentionable: false };
}

/** The role ids the bot's member holds in `guild`. */
export function botMemberRoles(guild: GuildSpec, botUser: JsonObject): string[] {
  return [botRoleOf(guild, botUser).id, ...(guild.botRoles ?? [])];
}

/** The @everyone role shares the guild's id; Discord always lists it. The bot's managed role follows the declared ones. */
export function guildRoles(guild: GuildSpec, botUser?: JsonObject): RoleSpec[] {
  const declared = guild.roles ?? [];
  const withEveryone = declared.some((role) => role.id === guild.id) ? declared : [{ id: guild.id, name: '@everyone', permissions: '0' }, ...declared];
  if (!botUser) return withEveryone;
  const botRole = botRoleOf(guild, botUser);
  if (withEveryone.some((role) => role.id === botRole.id)) {
    throw new Error(`Discord stand-in: guild ${guild.id} declares role ${botRole.id}, the id of the bot's managed role; give GuildSpec.botRole another id`);
  }
  return [...withEveryone, botRole];
}

/**
 * The bot's permissions in a channel, computed as Discord does: the guild's @everyone role and the
 * member's roles, Administrator = everything; then the channel's overwrites, in order: @everyone's,
 * the member's roles' (all denies, then all allows), the member's own. A text channel's Send
 * Messages gone takes Embed Links, Attach Files and Mention Everyone with it; View Channel gone takes all.
 */
export function botChannelPermissions(guild: GuildSpec, channel: ChannelSpec, botUser: JsonObject): bigint {
  const roles = botMemberRoles(guild, botUser);
  let bits = 0n;
  for (const role of guildRoles(guild, botUser)) {
    if (role.id === guild.id || roles.includes(role.id)) bits |= BigInt(role.permissions ?? '0');
  }
  if (bits & Permission.Administrator) return ALL_BITS;
  const overwrites = channel.permissionOverwrites ?? [];
  const apply = (allow: bigint, deny: bigint) => {
    bits = (bits & ~deny) | allow;
  };
  const everyone = overwrites.find((o) => o.type === 0 && o.id === guild.id);
  if (everyone) apply(BigInt(everyone.allow ?? '0'), BigInt(everyone.deny ?? '0'));
  let roleAllow = 0n;
  let roleDeny = 0n;
  for (const o of overwrites) {
    if (o.type !== 0 || o.id === guild.id || !roles.includes(o.id)) continue;
    roleAllow |= BigInt(o.allow ?? '0');
    roleDeny |= BigInt(o.deny ?? '0');
  }
  apply(roleAllow, roleDeny);
  const own = overwrites.find((o) => o.type === 1 && o.id === String(botUser.id));
  if (own) apply(BigInt(own.allow ?? '0'), BigInt(own.deny ?? '0'));
  if (!(bits & Permission.ViewChannel)) return 0n;
  if (!(bits & Permission.SendMessages)) bits &= ~(Permission.EmbedLinks | Permission.AttachFiles | Permission.MentionEveryone);
  return bits;
}

/** GET /guilds/{id}: the guild without the gateway's extras. */
export function guildToWire(guild: GuildSpec, ownerId: string, botUser: JsonObject): JsonObject {
  const full = guildCreateToWire(guild, ownerId, botUser);
  for (const key of ['joined_at', 'large', 'unavailable', 'member_count', 'voice_states', 'members', 'channels', 'threads', 'presences', 'stage_instances', 'guild_scheduled_events', 'soundboard_sounds']) {
    delete full[key];
  }
  return full;
}

export function guildCreateToWire(guild: GuildSpec, ownerId: string, botUser: JsonObject): JsonObject {
  return {
    id: guild.id,
    name: guild.name,
    icon: null,
    splash: null,
    discovery_splash: null,
    banner: null,
    description: null,
    owner_id: ownerId,
    afk_channel_id: null,
    afk_timeout: 300,
    verification_level: 0,
    default_message_notifications: 0,
    explicit_content_filter: 0,
    features: [],
    mfa_level: 0,
    application_id: null,
    system_channel_id: null,
    system_channel_flags: 0,
    rules_channel_id: null,
    public_updates_channel_id: null,
    safety_alerts_channel_id: null,
    vanity_url_code: null,
    premium_tier: 0,
    premium_subscription_count: 0,
    premium_progress_bar_enabled: false,
    preferred_locale: 'en-US',
    nsfw_level: 0,
    max_members: 500000,
    max_video_channel_users: 25,
    roles: guildRoles(guild, botUser).map((role, index) => roleToWire(role, index)),
    emojis: [],
    stickers: [],
    joined_at: new Date(0).toISOString(),
    large: false,
    unavailable: false,
    member_count: 1,
    voice_states: [],
    members: [memberToWire(botUser, botMemberRoles(guild, botUser))],
    channels: guild.channels.map((channel, index) => channelToWire(channel, guild.id, index)),
    threads: [],
    presences: [],
    stage_instances: [],
    guild_scheduled_events: [],
    soundboard_sounds: [],
  };
}

export function memberToWire(user: JsonObject, roles: string[], permissions?: string): JsonObject {
  const member: JsonObject = {
    user,
    nick: null,
    avatar: null,
    banner: null,
    roles,
    joined_at: new Date(0).toISOString(),
    premium_since: null,
    deaf: false,
    mute: false,
    pending: false,
    flags: 0,
    communication_disabled_until: null,
  };
  if (permissions !== undefined) member.permissions = permissions;
  return member;
}

// ---------------------------------------------------------------------------------------------
// Message bodies: Discord's limits, enforced so a front that outgrows them fails here, not in prod.

export interface FormError {
  path: (string | number)[];
  code: string;
  message: string;
}

function length(value: unknown): number {
  return typeof value === 'string' ? value.length : 0;
}

/** Problems with a message body, using Discord's limits (content 2000, 10 embeds, 6000 chars, …). */
export function messageBodyProblems(body: JsonObject, { requireContent }: { requireContent: boolean }): FormError[] {
  const problems: FormError[] = [];
  const tooLong = (path: (string | number)[], max: number, value: unknown) => {
    if (length(value) > max) {
      problems.push({ path, code: 'BASE_TYPE_MAX_LENGTH', message: `Must be ${max} or fewer in length.` });
    }
  };
  tooLong(['content'], 2000, body.content);
  const embeds = Array.isArray(body.embeds) ? body.embeds : [];
  if (embeds.length > 10) {
    problems.push({ path: ['embeds'], code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 10 or fewer in length.' });
  }
  let embedChars = 0;
  embeds.forEach((embed: unknown, i) => {
    if (!isJsonObject(embed)) return;
    const footer = isJsonObject(embed.footer) ? embed.footer : {};
    const author = isJsonObject(embed.author) ? embed.author : {};
    const fields = Array.isArray(embed.fields) ? embed.fields.filter(isJsonObject) : [];
    tooLong(['embeds', i, 'title'], 256, embed.title);
    tooLong(['embeds', i, 'description'], 4096, embed.description);
    tooLong(['embeds', i, 'footer', 'text'], 2048, footer.text);
    tooLong(['embeds', i, 'author', 'name'], 256, author.name);
    if (fields.length > 25) {
      problems.push({ path: ['embeds', i, 'fields'], code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 25 or fewer in length.' });
    }
    fields.forEach((field, f) => {
      tooLong(['embeds', i, 'fields', f, 'name'], 256, field.name);
      tooLong(['embeds', i, 'fields', f, 'value'], 1024, field.value);
      embedChars += length(field.name) + length(field.value);
    });
    embedChars += length(embed.title) + length(embed.description) + length(footer.text) + length(author.name);
  });
  if (embedChars > 6000) {
    problems.push({ path: ['embeds'], code: 'MAX_EMBED_SIZE_EXCEEDED', message: 'Embed size exceeds maximum size of 6000' });
  }
  const rows = Array.isArray(body.components) ? body.components : [];
  if (rows.length > 5) {
    problems.push({ path: ['components'], code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 5 or fewer in length.' });
  }
  rows.forEach((row: unknown, r) => {
    if (!isJsonObject(row) || row.type !== 1) return;
    const children = Array.isArray(row.components) ? row.components : [];
    if (children.length > 5) {
      problems.push({ path: ['components', r, 'components'], code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 5 or fewer in length.' });
    }
    children.forEach((child: unknown, c) => {
      if (!isJsonObject(child)) return;
      tooLong(['components', r, 'components', c, 'custom_id'], 100, child.custom_id);
      tooLong(['components', r, 'components', c, 'label'], 80, child.label);
    });
  });
  if (requireContent && length(body.content) === 0 && embeds.length === 0 && rows.length === 0 && body.sticker_ids === undefined) {
    problems.push({ path: [], code: 'EMPTY_MESSAGE', message: 'Cannot send an empty message' });
  }
  return problems;
}

/** Discord's 50035 body: errors nested by path, each leaf an `_errors` list. */
export function invalidFormBody(problems: FormError[]): JsonObject {
  const errors: JsonObject = {};
  for (const problem of problems) {
    let node = errors;
    for (const key of problem.path) {
      const name = String(key);
      if (!isJsonObject(node[name])) node[name] = {};
      node = node[name] as JsonObject;
    }
    const list = Array.isArray(node._errors) ? node._errors : (node._errors = []);
    (list as unknown[]).push({ code: problem.code, message: problem.message });
  }
  return { message: 'Invalid Form Body', code: 50035, errors };
}

// ---------------------------------------------------------------------------------------------
// Mentions: Discord parses them from content and filters them through allowed_mentions.

export function resolveMentions(
  content: string,
  allowed: JsonObject | null,
  knownUser: (id: string) => JsonObject,
): { mentions: JsonObject[]; mention_roles: string[]; mention_everyone: boolean } {
  const parse = allowed && Array.isArray(allowed.parse) ? allowed.parse.map(String) : null;
  const allowedRoles = allowed && Array.isArray(allowed.roles) ? allowed.roles.map(String) : [];
  const allowedUsers = allowed && Array.isArray(allowed.users) ? allowed.users.map(String) : [];
  const mayPing = (kind: 'roles' | 'users' | 'everyone', id?: string) => {
    if (!allowed) return true;
    if (parse?.includes(kind)) return true;
    if (kind === 'roles' && id) return allowedRoles.includes(id);
    if (kind === 'users' && id) return allowedUsers.includes(id);
    return false;
  };
  const roleIds = [...content.matchAll(/<@&(\d+)>/g)].map((m) => m[1]);
  const userIds = [...content.matchAll(/<@!?(\d+)>/g)].map((m) => m[1]);
  return {
    mention_roles: [...new Set(roleIds)].filter((id) => mayPing('roles', id)),
    mentions: [...new Set(userIds)].filter((id) => mayPing('users', id)).map(knownUser),
    mention_everyone: /@(everyone|here)/.test(content) && mayPing('everyone'),
  };
}
