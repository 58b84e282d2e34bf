// The bot's effective permissions in the alert channel, computed the way Discord does
// (https://discord.com/developers/docs/topics/permissions#permission-overwrites), and for each one
// missing, the layer that took it away, so the fix can say where to grant it:
//   1. the guild: @everyone's permissions | every role of the member (Administrator = everything;
//      the guild's owner has everything);
//   2. the channel's overwrite for @everyone (deny, then allow);
//   3. the channel's overwrites for the member's roles: all their denies, then all their allows
//      (one role's allow beats another role's deny);
//   4. the channel's overwrite for the member itself (deny, then allow): the last word.
// Then what Discord implies: without View Channel nothing else counts, and without Send Messages a
// text channel takes Embed Links and Attach Files away too (fixing Send Messages fixes those).
// Pure: doctor feeds it REST JSON, the controller discord.js's cache (src/discord/channel-permissions.ts),
// so the two never disagree and both can say where to grant what is missing.

export const PERMISSION = {
  Administrator: 1n << 3n,
  ViewChannel: 1n << 10n,
  SendMessages: 1n << 11n,
  EmbedLinks: 1n << 14n,
  AttachFiles: 1n << 15n,
  MentionEveryone: 1n << 17n,
} as const;

/** What the alert channel needs: the messages, their embeds, the charts attached to them. */
export const ALERT_CHANNEL_NEEDS = [
  { bit: PERMISSION.ViewChannel, name: 'View Channel' },
  { bit: PERMISSION.SendMessages, name: 'Send Messages' },
  { bit: PERMISSION.EmbedLinks, name: 'Embed Links' },
  { bit: PERMISSION.AttachFiles, name: 'Attach Files' },
] as const;

/** What a channel that receives text lines only needs (the fill feed: no embed, no file). */
export const TEXT_LINE_NEEDS = ALERT_CHANNEL_NEEDS.slice(0, 2);

/** Channels a bot posts in: GUILD_TEXT, GUILD_ANNOUNCEMENT. */
export const TEXT_CHANNEL_TYPES: ReadonlySet<number> = new Set([0, 5]);

/** The invite's permissions integer: everything the alert channel needs (52224). */
export const INVITE_PERMISSIONS = ALERT_CHANNEL_NEEDS.reduce((bits, need) => bits | need.bit, 0n);

export interface GuildRole {
  id: string;
  name: string;
  permissions: bigint;
  mentionable?: boolean;
  /** the bot's own role, created by the invite (Discord: tags.bot_id) */
  botId?: string;
}

export interface Overwrite {
  id: string;
  /** 0 a role (the guild's id: @everyone), 1 a member */
  type: 0 | 1;
  allow: bigint;
  deny: bigint;
}

export interface PermissionInput {
  guildId: string;
  ownerId?: string;
  memberId: string;
  memberRoleIds: readonly string[];
  roles: readonly GuildRole[];
  overwrites: readonly Overwrite[];
}

/** Where a permission was last decided. */
export type Layer =
  | { kind: 'owner' }
  | { kind: 'administrator'; roles: string[] }
  | { kind: 'guild'; granted: boolean; roles: string[] }
  | { kind: 'everyone-overwrite'; granted: boolean }
  | { kind: 'role-overwrite'; granted: boolean; roles: string[] }
  | { kind: 'member-overwrite'; granted: boolean };

export interface Verdict {
  name: string;
  bit: bigint;
  granted: boolean;
  decidedBy: Layer;
  /** granted where it is decided, yet without effect: a permission it needs is missing */
  impliedAway?: 'View Channel' | 'Send Messages';
}

export function channelVerdicts(input: PermissionInput, needs: ReadonlyArray<{ bit: bigint; name: string }> = ALERT_CHANNEL_NEEDS): Verdict[] {
  const verdicts = needs.map((need) => ({ name: need.name, bit: need.bit, ...decide(input, need.bit) }));
  const has = (bit: bigint) => verdicts.find((v) => v.bit === bit)?.granted ?? true;
  return verdicts.map((v) => {
    if (!v.granted || v.bit === PERMISSION.ViewChannel) return v;
    if (!has(PERMISSION.ViewChannel)) return { ...v, impliedAway: 'View Channel' as const };
    if ((v.bit === PERMISSION.EmbedLinks || v.bit === PERMISSION.AttachFiles) && !has(PERMISSION.SendMessages)) return { ...v, impliedAway: 'Send Messages' as const };
    return v;
  });
}

function decide(input: PermissionInput, bit: bigint): { granted: boolean; decidedBy: Layer } {
  if (input.ownerId !== undefined && input.ownerId === input.memberId) return { granted: true, decidedBy: { kind: 'owner' } };
  const held = input.roles.filter((role) => role.id === input.guildId || input.memberRoleIds.includes(role.id));
  const admins = held.filter((role) => role.permissions & PERMISSION.Administrator);
  if (admins.length) return { granted: true, decidedBy: { kind: 'administrator', roles: admins.map(roleName) } };
  const granting = held.filter((role) => role.permissions & bit).map(roleName);
  let state: { granted: boolean; decidedBy: Layer } = { granted: granting.length > 0, decidedBy: { kind: 'guild', granted: granting.length > 0, roles: granting } };

  const everyone = input.overwrites.find((o) => o.type === 0 && o.id === input.guildId);
  if (everyone) {
    if (everyone.allow & bit) state = { granted: true, decidedBy: { kind: 'everyone-overwrite', granted: true } };
    else if (everyone.deny & bit) state = { granted: false, decidedBy: { kind: 'everyone-overwrite', granted: false } };
  }
  const roleOverwrites = input.overwrites.filter((o) => o.type === 0 && o.id !== input.guildId && input.memberRoleIds.includes(o.id));
  const name = (id: string) => roleName(input.roles.find((role) => role.id === id) ?? { id, name: id });
  const allowing = roleOverwrites.filter((o) => o.allow & bit).map((o) => name(o.id));
  const denying = roleOverwrites.filter((o) => o.deny & bit).map((o) => name(o.id));
  if (allowing.length) state = { granted: true, decidedBy: { kind: 'role-overwrite', granted: true, roles: allowing } };
  else if (denying.length) state = { granted: false, decidedBy: { kind: 'role-overwrite', granted: false, roles: denying } };
  const own = input.overwrites.find((o) => o.type === 1 && o.id === input.memberId);
  if (own) {
    if (own.allow & bit) state = { granted: true, decidedBy: { kind: 'member-overwrite', granted: true } };
    else if (own.deny & bit) state = { granted: false, decidedBy: { kind: 'member-overwrite', granted: false } };
  }
  return state;
}

function roleName(role: { id: string; name: string }): string {
  return role.name.startsWith('@') ? role.name : `@${role.name}`;
}

/**
 * Where to grant a missing permission, in Discord's own menu words. `channel` is "#alerts", `botRole`
 * the bot's own role ("@tradewarden"), `bot` its user name.
 */
export function whereToGrant(verdict: Verdict, place: { channel: string; botRole?: string; bot: string }): string {
  const channelMenu = `${place.channel} → Edit Channel → Permissions`;
  const forBot = place.botRole ? `the bot's role ${place.botRole} (or the member ${place.bot})` : `the member ${place.bot}`;
  const layer = verdict.decidedBy;
  switch (layer.kind) {
    case 'guild':
      return `no role of the bot grants it: Server Settings → Roles → ${place.botRole ?? "the bot's role"} → allow ${verdict.name}; or ${channelMenu}: add ${forBot} and allow it there`;
    case 'everyone-overwrite':
      return `${place.channel} denies it to @everyone: ${channelMenu} → add ${forBot} → allow ${verdict.name} (an allow for a role or member beats @everyone's deny)`;
    case 'role-overwrite':
      return `${place.channel} denies it to ${layer.roles.join(', ')}, a role the bot has: ${channelMenu} → ${layer.roles[0]} → set ${verdict.name} to neutral, or add the member ${place.bot} → allow it (a member's own allow beats its roles' denies)`;
    case 'member-overwrite':
      return `${place.channel} denies it to the bot itself: ${channelMenu} → ${place.bot} → allow ${verdict.name} (or set it to neutral)`;
    default:
      return `${channelMenu}: allow ${verdict.name} for ${forBot}`;
  }
}

export interface MissingPermission {
  permission: string;
  /** "#alerts: the bot lacks Send Messages (Embed Links and Attach Files need it too)" */
  detail: string;
  /** where to grant it, in Discord's menu words */
  fix: string;
}

/**
 * Each permission missing once, and where to grant it. Granted permissions that need a missing one
 * come back with it: said beside it, not as problems of their own. `label` names the channel in the
 * detail ("#alerts (DISCORD_ALERT_CHANNEL_ID, for alerts)"); the fix names it as Discord's menu does.
 */
export function missingPermissions(verdicts: readonly Verdict[], place: { channel: string; botRole?: string; bot: string }, label = place.channel): MissingPermission[] {
  return verdicts
    .filter((verdict) => !verdict.granted)
    .map((verdict) => {
      const riding = verdicts.filter((v) => v.impliedAway === verdict.name).map((v) => v.name);
      return {
        permission: verdict.name,
        detail: `${label}: the bot lacks ${verdict.name}${riding.length ? ` (${riding.join(' and ')} need${riding.length > 1 ? '' : 's'} it too)` : ''}`,
        fix: whereToGrant(verdict, place),
      };
    });
}

/** A channel id that names no channel of the server: where to copy the right one. */
export const channelIdFix = (variable: string): string => `Developer Mode on, right-click the channel → Copy Channel ID, and put it in ${variable}`;

/** Discord's permission strings ("52224") as bits; anything else is none. */
export function bits(value: unknown): bigint {
  if (typeof value === 'string' && /^\d+$/.test(value)) return BigInt(value);
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return BigInt(value);
  return 0n;
}
