// The controller's own look at the bot's permissions in the channels it posts to (issue 21): a
// channel that refuses the bot is an error in the log (with the fix) and a failing health check from
// the moment the bot connects, not an alert "waiting in the outbox" noticed hours later.
//
// The calculation is doctor's (src/doctor/permissions.ts), fed from discord.js's cache instead of
// REST JSON. Not discord.js's `channel.permissionsFor(me)`: that answers with bits only, and the
// fix must name the layer that took a permission away (@everyone's overwrite, a role's, the guild's
// roles); one calculator also means doctor and the controller never disagree.
//
// When: at connect, then on every gateway event that can change the answer — the channel's
// overwrites (channelUpdate, channelDelete), the guild's roles (roleCreate/Update/Delete), the bot's
// own member (guildMemberUpdate: Discord sends the current user's without the GUILD_MEMBERS
// intent), the guild itself (guildUpdate: its owner; guildDelete: the bot removed; guildAvailable:
// after an outage or a new session, the whole guild again). discord.js has updated its cache before
// it emits, so a check reads the state after the change. A guild that is unavailable (a Discord
// outage) keeps the last verdict: an outage is not a permission problem.
import { Events, OverwriteType, type Client, type ClientEvents, type Guild } from 'discord.js';
import type { Config } from '../config.ts';
import { inviteUrl } from '../doctor/discord.ts';
import { ALERT_CHANNEL_NEEDS, TEXT_CHANNEL_TYPES, TEXT_LINE_NEEDS, channelIdFix, channelVerdicts, missingPermissions, type PermissionInput } from '../doctor/permissions.ts';
import type { HealthChecks } from '../health/checks.ts';
import type { Logger } from '../log.ts';

type Need = (typeof ALERT_CHANNEL_NEEDS)[number];

/** A channel the controller posts in, what posts there, and what those posts need. */
export interface PostingChannel {
  id: string;
  /** the variable that names it: "DISCORD_ALERT_CHANNEL_ID" */
  variable: string;
  /** what goes there: "alerts", "the digest" */
  uses: string[];
  needs: Need[];
}

export interface PermissionProblem {
  /** the same problem has the same key from one check to the next: "1310…:Send Messages" */
  key: string;
  detail: string;
  fix: string;
  /** what the log says when it is gone */
  fixed: string;
}

/**
 * The channels this process posts in: the alert channel; the scheduled digest's and the fill
 * feed's when they run here (`active`: DIGEST_CRON; FILL_FEED=on with a broker), each the alert
 * channel unless its own variable names another. One entry per channel, with every use's needs.
 */
export function postingChannels(config: Config, active: { digest: boolean; fillFeed: boolean }): PostingChannel[] {
  const { alertChannelId } = config.discord;
  if (!alertChannelId) return [];
  const wanted: PostingChannel[] = [{ id: alertChannelId, variable: 'DISCORD_ALERT_CHANNEL_ID', uses: ['alerts'], needs: [...ALERT_CHANNEL_NEEDS] }];
  // The digest is one embed with its chart attached; the feed is text lines.
  if (active.digest) wanted.push({ id: config.digest.channelId ?? alertChannelId, variable: config.digest.channelId ? 'DIGEST_CHANNEL_ID' : 'DISCORD_ALERT_CHANNEL_ID', uses: ['the digest'], needs: [...ALERT_CHANNEL_NEEDS] });
  if (active.fillFeed && config.fillFeed) wanted.push({ id: config.fillFeed.channelId ?? alertChannelId, variable: config.fillFeed.channelId ? 'FILL_FEED_CHANNEL_ID' : 'DISCORD_ALERT_CHANNEL_ID', uses: ['the fill feed'], needs: [...TEXT_LINE_NEEDS] });
  const byId = new Map<string, PostingChannel>();
  for (const channel of wanted) {
    const known = byId.get(channel.id);
    if (!known) byId.set(channel.id, channel);
    else {
      known.uses.push(...channel.uses);
      for (const need of channel.needs) if (!known.needs.some((n) => n.bit === need.bit)) known.needs.push(need);
      known.needs.sort((a, b) => ALERT_CHANNEL_NEEDS.indexOf(a) - ALERT_CHANNEL_NEEDS.indexOf(b));
    }
  }
  return [...byId.values()];
}

/** What is wrong in `guild` for these channels, from discord.js's cache; undefined while the guild is unavailable. */
export function permissionProblems(client: Client, guildId: string, clientId: string, channels: readonly PostingChannel[]): PermissionProblem[] | undefined {
  const guild = client.guilds.cache.get(guildId);
  if (!guild) {
    return [
      {
        key: 'guild',
        detail: `the bot is not in DISCORD_GUILD_ID ${guildId} (removed from the server, or the server is gone)`,
        fix: `invite it again (a server admin opens this link): ${inviteUrl(clientId, guildId)}`,
        fixed: `the bot is in DISCORD_GUILD_ID ${guildId} again`,
      },
    ];
  }
  if (!guild.available) return undefined;
  const me = guild.members.me;
  if (!me) return undefined; // discord.js always caches the bot's own member with the guild
  const botRole = guild.roles.cache.find((role) => role.tags?.botId === me.id);
  const problems: PermissionProblem[] = [];
  for (const wanted of channels) {
    const channel = guild.channels.cache.get(wanted.id);
    if (!channel) {
      problems.push({
        key: `${wanted.id}:channel`,
        detail: `${wanted.variable} ${wanted.id} is no channel of "${guild.name}" (deleted?): ${wanted.uses.join(' and ')} cannot be posted`,
        fix: channelIdFix(wanted.variable),
        fixed: `${wanted.variable} ${wanted.id} is a channel of "${guild.name}" again`,
      });
      continue;
    }
    if (!TEXT_CHANNEL_TYPES.has(channel.type) || !('permissionOverwrites' in channel)) {
      problems.push({ key: `${wanted.id}:type`, detail: `#${channel.name} (${wanted.variable}) is not a text channel`, fix: `choose a text channel for ${wanted.variable}`, fixed: `#${channel.name} (${wanted.variable}) is a text channel` });
      continue;
    }
    const input: PermissionInput = {
      guildId: guild.id,
      ownerId: guild.ownerId,
      memberId: me.id,
      memberRoleIds: [...me.roles.cache.keys()],
      roles: rolesOf(guild),
      overwrites: channel.permissionOverwrites.cache.map((o) => ({ id: o.id, type: o.type === OverwriteType.Member ? 1 : 0, allow: o.allow.bitfield, deny: o.deny.bitfield })),
    };
    const label = `#${channel.name} (${wanted.variable}, for ${wanted.uses.join(' and ')})`;
    const place = { channel: `#${channel.name}`, botRole: botRole ? `@${botRole.name}` : undefined, bot: me.user.username };
    for (const missing of missingPermissions(channelVerdicts(input, wanted.needs), place, label)) {
      problems.push({ key: `${wanted.id}:${missing.permission}`, detail: missing.detail, fix: missing.fix, fixed: `${label}: the bot has ${missing.permission} again` });
    }
  }
  return problems;
}

function rolesOf(guild: Guild): PermissionInput['roles'] {
  return guild.roles.cache.map((role) => ({ id: role.id, name: role.name, permissions: role.permissions.bitfield, ...(role.tags?.botId ? { botId: role.tags.botId } : {}) }));
}

/**
 * Checks at start and on every change (see the top of this file), logs each problem at error with
 * its fix when it appears and at info when it is gone, and holds the health condition
 * `discord-permissions` (`tradewarden health`, /healthz, the dead-man's switch and the metrics'
 * healthy gauge read it).
 */
export class ChannelPermissionWatch {
  /** undefined until the first check that could see the guild */
  private problems: Map<string, PermissionProblem> | undefined;
  private readonly unsubscribe: Array<() => void> = [];
  private readonly channels: PostingChannel[];

  constructor(private readonly options: { client: Client; config: Config; logger: Logger; health: HealthChecks; channels: PostingChannel[] }) {
    this.channels = options.channels;
  }

  start(): void {
    const { client, config, health } = this.options;
    const ours = (guild: { id: string } | null | undefined) => guild?.id === config.discord.guildId;
    this.recheckOn(Events.ChannelUpdate, (_old, channel) => 'guild' in channel && ours(channel.guild));
    this.recheckOn(Events.ChannelDelete, (channel) => 'guild' in channel && ours(channel.guild));
    this.recheckOn(Events.GuildRoleCreate, (role) => ours(role.guild));
    this.recheckOn(Events.GuildRoleUpdate, (_old, role) => ours(role.guild));
    this.recheckOn(Events.GuildRoleDelete, (role) => ours(role.guild));
    this.recheckOn(Events.GuildMemberUpdate, (_old, member) => ours(member.guild) && member.id === client.user?.id);
    this.recheckOn(Events.GuildUpdate, (_old, guild) => ours(guild));
    this.recheckOn(Events.GuildDelete, (guild) => ours(guild));
    this.recheckOn(Events.GuildCreate, (guild) => ours(guild));
    this.recheckOn(Events.GuildAvailable, (guild) => ours(guild));
    health.condition('discord-permissions', () => this.reason());
    this.check();
  }

  stop(): void {
    for (const off of this.unsubscribe.splice(0)) off();
  }

  /** The health reason while something is missing: each problem and its fix. */
  reason(): string | undefined {
    const problems = [...(this.problems?.values() ?? [])];
    return problems.length ? problems.map((p) => `Discord: ${p.detail}; fix: ${p.fix}`).join(' | ') : undefined;
  }

  /** Looks again now, from discord.js's cache. */
  check(): void {
    const { client, config, logger } = this.options;
    const guildId = config.discord.guildId!;
    const found = permissionProblems(client, guildId, config.discord.clientId ?? client.user?.id ?? '', this.channels);
    if (!found) return;
    const before = this.problems;
    const next = new Map(found.map((p) => [p.key, p]));
    this.problems = next;
    for (const [key, problem] of next) {
      // Again when the fix changed (the same permission now taken away elsewhere).
      if (before?.get(key)?.fix !== problem.fix) logger.error(`discord: ${problem.detail}. Fix: ${problem.fix}. Until then \`tradewarden health\` fails.`);
    }
    for (const [key, problem] of before ?? []) if (!next.has(key)) logger.info(`discord: fixed: ${problem.fixed}`);
    if (next.size || (before && !before.size)) return;
    const granted = this.channels.map((c) => `${c.needs.map((n) => n.name).join(', ')} in ${channelName(client, guildId, c)}`).join('; ');
    logger.info(before ? `discord: the bot can post again (${granted}): health no longer fails on Discord` : `discord: permissions checked: the bot has ${granted}`);
  }

  private recheckOn<E extends keyof ClientEvents>(event: E, concerns: (...args: ClientEvents[E]) => boolean): void {
    const listener = (...args: ClientEvents[E]) => {
      if (concerns(...args)) this.check();
    };
    this.options.client.on(event, listener);
    this.unsubscribe.push(() => this.options.client.off(event, listener));
  }
}

function channelName(client: Client, guildId: string, channel: PostingChannel): string {
  const found = client.guilds.cache.get(guildId)?.channels.cache.get(channel.id);
  return found ? `#${found.name}` : channel.id;
}
