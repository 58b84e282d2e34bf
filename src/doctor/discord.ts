// Doctor's Discord checks, against the real REST API (DISCORD_API_URL when set: a proxy, or the
// tests' stand-in). Plain HTTPS GETs with the bot token — no gateway, no discord.js: nothing here
// changes anything on Discord, and the answers are the same ones discord.js would get.
//
// The order is the order things go wrong for a newcomer: the token (GET /users/@me), the token's
// application against DISCORD_CLIENT_ID (GET /applications/@me), the bot in the server (GET
// /guilds/{id}: since 2023 Discord answers 404 10004 for a server the bot is not in, 403 50001
// before; both mean "invite it"), then side by side the bot's member (its roles), the server's
// channels (with their overwrites, listed whether or not the bot can see them) and the registered
// commands. From those the bot's effective permissions in the alert channel (permissions.ts).
import type { Config } from '../config.ts';
import { describeError } from '../errors.ts';
import { ALERT_CHANNEL_NEEDS, INVITE_PERMISSIONS, PERMISSION, TEXT_CHANNEL_TYPES, bits, channelIdFix, channelVerdicts, missingPermissions, type GuildRole, type Overwrite } from './permissions.ts';
import type { DoctorCheck } from './report.ts';

const DISCORD_API = 'https://discord.com/api';

type Add = (check: Omit<DoctorCheck, 'area'>) => void;
type Json = Record<string, unknown>;

interface Answer {
  status: number;
  body: unknown;
}

/** The invite link with the scopes and permissions tradewarden needs, for this server. */
export function inviteUrl(clientId: string, guildId?: string): string {
  const url = `https://discord.com/oauth2/authorize?client_id=${clientId}&scope=bot%20applications.commands&permissions=${INVITE_PERMISSIONS}`;
  return guildId ? `${url}&guild_id=${guildId}&disable_guild_select=true` : url;
}

class DiscordApi {
  constructor(
    private readonly base: string,
    private readonly token: string,
    private readonly timeoutMs: number,
  ) {}

  async get(path: string): Promise<Answer> {
    let response: Response;
    try {
      response = await fetch(`${this.base}/v10${path}`, {
        headers: { Authorization: `Bot ${this.token}`, 'User-Agent': 'DiscordBot (https://github.com/tradewarden, 0.1) tradewarden-doctor' },
        signal: AbortSignal.timeout(this.timeoutMs),
        redirect: 'manual', // the token goes to Discord (or DISCORD_API_URL), nowhere else
      });
    } catch (error) {
      throw new Unreachable(this.base, error, this.timeoutMs);
    }
    const text = await response.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON (a proxy's page): kept as text for the message
    }
    return { status: response.status, body };
  }
}

class Unreachable extends Error {
  constructor(base: string, error: unknown, timeoutMs: number) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    const timedOut = (error as { name?: string }).name === 'TimeoutError';
    super(`cannot reach ${new URL(base).origin}: ${timedOut ? `no answer within ${timeoutMs} ms` : (cause ?? describeError(error))}`);
  }
}

const isJson = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
const code = (answer: Answer) => (isJson(answer.body) && typeof answer.body.code === 'number' ? answer.body.code : undefined);
const said = (answer: Answer) => `${answer.status}${isJson(answer.body) && typeof answer.body.message === 'string' ? ` ${answer.body.message}` : ''}${code(answer) ? ` (code ${code(answer)})` : ''}`;

export async function discordChecks(discord: Config['discord'], add: Add, timeoutMs: number): Promise<void> {
  const { token } = discord;
  if (!token) {
    add({
      name: 'Discord',
      status: 'warn',
      detail: 'DISCORD_TOKEN is not set: the controller runs without Discord (alerts go to its log, the CLI works)',
      fix: 'README "Connect a real Discord server", then set DISCORD_TOKEN, DISCORD_CLIENT_ID, DISCORD_GUILD_ID and DISCORD_ALERT_CHANNEL_ID',
    });
    return;
  }
  const base = discord.apiUrl ?? DISCORD_API;
  const api = new DiscordApi(base, token, timeoutMs);
  try {
    await checkAll(api, discord, add);
  } catch (error) {
    if (!(error instanceof Unreachable)) throw error;
    add({ name: 'Discord API', status: 'fail', detail: error.message, fix: discord.apiUrl ? 'check DISCORD_API_URL, or unset it to use Discord itself' : "check this machine's network and DNS (discord.com must answer)" });
  }
}

async function checkAll(api: DiscordApi, d: Config['discord'], add: Add): Promise<void> {
  const { clientId, guildId, alertChannelId } = d;
  const [me, app] = await Promise.all([api.get('/users/@me'), api.get('/applications/@me')]);
  if (me.status === 401) {
    add({
      name: 'token',
      status: 'fail',
      detail: 'Discord rejected DISCORD_TOKEN (401 Unauthorized)',
      fix: 'Developer Portal → your application → Bot → Reset Token, and put the new token in DISCORD_TOKEN (the token alone: no "Bot " prefix, no quotes)',
    });
    return;
  }
  if (me.status !== 200 || !isJson(me.body) || typeof me.body.id !== 'string') {
    add({ name: 'token', status: 'fail', detail: `GET /users/@me answered ${said(me)}`, fix: 'try again in a minute; if it stays, check https://discordstatus.com' });
    return;
  }
  const botId = me.body.id;
  const botName = typeof me.body.username === 'string' ? me.body.username : botId;
  const appId = app.status === 200 && isJson(app.body) && typeof app.body.id === 'string' ? app.body.id : undefined;
  if (appId && clientId && appId !== clientId) {
    add({
      name: 'token',
      status: 'fail',
      detail: `DISCORD_TOKEN is the bot of application ${appId}, but DISCORD_CLIENT_ID is ${clientId}`,
      fix: 'copy both from the same application: General Information → Application ID (DISCORD_CLIENT_ID), Bot → Reset Token (DISCORD_TOKEN)',
    });
    return;
  }
  add({ name: 'token', status: 'ok', detail: `accepted: bot ${botName}${appId ? ` of application ${appId}${clientId ? ' (DISCORD_CLIENT_ID)' : ''}` : ''}` });
  const invite = inviteUrl(clientId ?? appId ?? botId, guildId);
  if (!guildId) return; // the configuration check has said it is missing

  const guild = await api.get(`/guilds/${guildId}`);
  if (guild.status === 404 || guild.status === 403) {
    add({
      name: 'server',
      status: 'fail',
      detail: `the bot is not in DISCORD_GUILD_ID ${guildId} (or there is no such server): ${said(guild)}`,
      fix: `invite it with this link (a server admin opens it): ${invite} — or correct DISCORD_GUILD_ID (right-click the server → Copy Server ID)`,
    });
    return;
  }
  if (guild.status !== 200 || !isJson(guild.body)) {
    add({ name: 'server', status: 'fail', detail: `GET /guilds/${guildId} answered ${said(guild)}`, fix: 'try again in a minute; if it stays, check https://discordstatus.com' });
    return;
  }
  const guildName = typeof guild.body.name === 'string' ? guild.body.name : guildId;
  add({ name: 'server', status: 'ok', detail: `the bot is in "${guildName}"` });
  const roles = parseRoles(guild.body.roles);
  const ownerId = typeof guild.body.owner_id === 'string' ? guild.body.owner_id : undefined;

  const commandsOf = (path: string) => api.get(path).catch((error: unknown) => (error instanceof Unreachable ? { status: 0, body: error.message } : Promise.reject(error)));
  const [member, channels, guildCommands, globalCommands] = await Promise.all([
    api.get(`/guilds/${guildId}/members/${botId}`),
    api.get(`/guilds/${guildId}/channels`),
    appId ? commandsOf(`/applications/${appId}/guilds/${guildId}/commands`) : Promise.resolve(undefined),
    appId ? commandsOf(`/applications/${appId}/commands`) : Promise.resolve(undefined),
  ]);
  const memberRoleIds = member.status === 200 && isJson(member.body) && Array.isArray(member.body.roles) ? member.body.roles.map(String) : undefined;
  const botRole = roles.find((role) => role.botId === botId);
  let canMentionEveryone = false;

  if (alertChannelId) {
    const list = channels.status === 200 && Array.isArray(channels.body) ? channels.body.filter(isJson) : undefined;
    const channel = list?.find((c) => c.id === alertChannelId);
    if (!list || !memberRoleIds) {
      add({ name: 'alert channel', status: 'fail', detail: `could not read the server's channels or the bot's roles: ${said(list ? member : channels)}`, fix: 'try again in a minute' });
    } else if (!channel) {
      add({
        name: 'alert channel',
        status: 'fail',
        detail: `DISCORD_ALERT_CHANNEL_ID ${alertChannelId} is no channel of "${guildName}"`,
        fix: channelIdFix('DISCORD_ALERT_CHANNEL_ID'),
      });
    } else if (!TEXT_CHANNEL_TYPES.has(Number(channel.type))) {
      add({ name: 'alert channel', status: 'fail', detail: `#${String(channel.name)} is not a text channel (type ${String(channel.type)})`, fix: 'choose a text channel for DISCORD_ALERT_CHANNEL_ID' });
    } else {
      const name = `#${String(channel.name)}`;
      const input = { guildId, ownerId, memberId: botId, memberRoleIds, roles, overwrites: parseOverwrites(channel.permission_overwrites) };
      const verdicts = channelVerdicts(input);
      canMentionEveryone = channelVerdicts(input, [{ bit: PERMISSION.MentionEveryone, name: 'Mention Everyone' }])[0]!.granted;
      const missing = missingPermissions(verdicts, { channel: name, botRole: botRole ? `@${botRole.name}` : undefined, bot: botName });
      for (const { detail, fix } of missing) add({ name: 'alert channel', status: 'fail', detail, fix });
      if (!missing.length) add({ name: 'alert channel', status: 'ok', detail: `${name}: the bot can ${ALERT_CHANNEL_NEEDS.map((n) => n.name).join(', ')}` });
    }
  }

  const roleName = (id: string) => roles.find((role) => role.id === id);
  if (d.alertRoleId) {
    const role = roleName(d.alertRoleId);
    if (!role) {
      add({ name: 'alert role', status: 'fail', detail: `DISCORD_ALERT_ROLE_ID ${d.alertRoleId} is no role of "${guildName}"`, fix: 'Server Settings → Roles → right-click the role → Copy Role ID, into DISCORD_ALERT_ROLE_ID' });
    } else if (!role.mentionable && !canMentionEveryone) {
      add({
        name: 'alert role',
        status: 'warn',
        detail: `@${role.name} is not mentionable and the bot may not mention every role: alerts name it but ping no one`,
        fix: `Server Settings → Roles → @${role.name} → allow anyone to @mention this role (or give the bot "Mention @everyone, @here and All Roles")`,
      });
    } else add({ name: 'alert role', status: 'ok', detail: `@${role.name} (DISCORD_ALERT_ROLE_ID) is pinged by alerts` });
  }
  if (!d.operatorRoleIds.length && !d.operatorUserIds.length) {
    add({
      name: 'operators',
      status: 'warn',
      detail: 'DISCORD_OPERATOR_ROLE_IDS and DISCORD_OPERATOR_USER_IDS are empty: on Discord every command that changes something is refused',
      fix: 'put the id of the role allowed to start, stop and flatten in DISCORD_OPERATOR_ROLE_IDS (README step 5)',
    });
  } else {
    const unknown = d.operatorRoleIds.filter((id) => !roleName(id));
    const known = d.operatorRoleIds.map(roleName).filter((role): role is GuildRole => role !== undefined);
    for (const id of unknown) {
      add({ name: 'operators', status: 'fail', detail: `DISCORD_OPERATOR_ROLE_IDS has ${id}, no role of "${guildName}"`, fix: 'Server Settings → Roles → right-click the role → Copy Role ID, into DISCORD_OPERATOR_ROLE_IDS' });
    }
    const who = [...known.map((role) => `@${role.name}`), ...(d.operatorUserIds.length ? [`${d.operatorUserIds.length} user id${d.operatorUserIds.length > 1 ? 's' : ''}`] : [])];
    if (who.length) add({ name: 'operators', status: 'ok', detail: who.join(', ') });
  }

  checkCommands(guildCommands, globalCommands, guildName, invite, add);
}

function checkCommands(inGuild: Answer | undefined, global: Answer | undefined, guildName: string, invite: string, add: Add): void {
  const names = (answer: Answer | undefined) => (answer?.status === 200 && Array.isArray(answer.body) ? answer.body.filter(isJson).map((c) => `/${String(c.name)}`) : undefined);
  const here = names(inGuild);
  const everywhere = names(global);
  if (here?.length) add({ name: 'slash commands', status: 'ok', detail: `${here.length} registered in "${guildName}": ${here.join(' ')}` });
  else if (everywhere?.length) add({ name: 'slash commands', status: 'ok', detail: `${everywhere.length} registered globally: ${everywhere.join(' ')}` });
  else if (inGuild?.status === 403) {
    add({
      name: 'slash commands',
      status: 'fail',
      detail: `Discord refuses this server's commands (${said(inGuild)}): the bot was invited without the applications.commands scope`,
      fix: `invite it again with this link (it keeps its roles): ${invite}`,
    });
  } else if (here) {
    add({ name: 'slash commands', status: 'warn', detail: 'not registered yet', fix: 'nothing to do: the controller registers them in DISCORD_GUILD_ID at every start (or now: npm run commands:deploy)' });
  } else {
    add({ name: 'slash commands', status: 'warn', detail: `could not read them: ${inGuild ? said(inGuild) : 'no application id'}`, fix: 'the controller registers them at start; its log says "commands registered"' });
  }
}

function parseRoles(value: unknown): GuildRole[] {
  if (!Array.isArray(value)) return [];
  return value.filter(isJson).map((role) => ({
    id: String(role.id),
    name: String(role.name),
    permissions: bits(role.permissions),
    mentionable: role.mentionable === true,
    ...(isJson(role.tags) && typeof role.tags.bot_id === 'string' ? { botId: role.tags.bot_id } : {}),
  }));
}

function parseOverwrites(value: unknown): Overwrite[] {
  if (!Array.isArray(value)) return [];
  return value.filter(isJson).map((o) => ({ id: String(o.id), type: Number(o.type) === 1 ? 1 : 0, allow: bits(o.allow), deny: bits(o.deny) }));
}

// ---- single questions, for `tradewarden init` (each answer checked as it is given) ----

export type Checked<T> = T | { problem: string };
export const isProblem = <T>(value: Checked<T>): value is { problem: string } => typeof value === 'object' && value !== null && 'problem' in value;

/** Whom a token belongs to: the bot and its application, or why Discord would not say. */
export async function identifyBot(apiUrl: string | undefined, token: string, timeoutMs = 5000): Promise<Checked<{ id: string; name: string; appId?: string }>> {
  const api = new DiscordApi(apiUrl ?? DISCORD_API, token, timeoutMs);
  try {
    const [me, app] = await Promise.all([api.get('/users/@me'), api.get('/applications/@me')]);
    if (me.status === 401) return { problem: 'Discord rejected this token (401 Unauthorized): copy it again from Bot → Reset Token' };
    if (me.status !== 200 || !isJson(me.body) || typeof me.body.id !== 'string') return { problem: `Discord answered ${said(me)}` };
    const appId = app.status === 200 && isJson(app.body) && typeof app.body.id === 'string' ? app.body.id : undefined;
    return { id: me.body.id, name: typeof me.body.username === 'string' ? me.body.username : me.body.id, ...(appId ? { appId } : {}) };
  } catch (error) {
    return { problem: describeError(error) };
  }
}

export interface GuildFound {
  name: string;
  roles: GuildRole[];
  /** text channels: id → name */
  textChannels: Map<string, string>;
}

/** A server as the bot sees it, or why it cannot (not in it: the invite link says how). */
export async function readGuild(apiUrl: string | undefined, token: string, guildId: string, clientId: string, timeoutMs = 5000): Promise<Checked<GuildFound>> {
  const api = new DiscordApi(apiUrl ?? DISCORD_API, token, timeoutMs);
  try {
    const [guild, channels] = await Promise.all([api.get(`/guilds/${guildId}`), api.get(`/guilds/${guildId}/channels`)]);
    if (guild.status === 404 || guild.status === 403) return { problem: `the bot is not in server ${guildId} (or there is no such server): invite it with ${inviteUrl(clientId, guildId)} and give the id again` };
    if (guild.status !== 200 || !isJson(guild.body)) return { problem: `Discord answered ${said(guild)}` };
    const textChannels = new Map<string, string>();
    for (const channel of Array.isArray(channels.body) ? channels.body.filter(isJson) : []) {
      if (TEXT_CHANNEL_TYPES.has(Number(channel.type))) textChannels.set(String(channel.id), String(channel.name));
    }
    return { name: typeof guild.body.name === 'string' ? guild.body.name : guildId, roles: parseRoles(guild.body.roles), textChannels };
  } catch (error) {
    return { problem: describeError(error) };
  }
}
