// Posts alerts to DISCORD_ALERT_CHANNEL_ID. A failure (not connected, 429 after discord.js's own
// waiting, 5xx after its retries) throws, and the outbox retries later: delayed, never lost.
// A loss_limit alert gets the day's equity as a chart, attached to the posted message afterwards: it
// needs a broker read and a drawing, and the alert (whose text says everything) waits for neither.
// A trade-rate alert's chart goes out with it when drawn within CHART_WAIT_MS (the usual case, one
// message), else it is edited in afterwards: a slow or stuck renderer never holds the alert back.
import { ActionRowBuilder, AttachmentBuilder, ButtonBuilder, ButtonStyle, DiscordAPIError, type Client, type Message, type SendableChannels } from 'discord.js';
import type { StoredAlert } from '../core/reports.ts';
import type { AlertSink } from '../alerts/outbox.ts';
import type { Config } from '../config.ts';
import { alertEmbed } from './render.ts';
import { CUSTOM_ID } from './router.ts';
import { drawEquityChart, drawTradeRateChart } from '../render/chart-renderer.ts';
import type { EquityPoint } from '../core/review.ts';
import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';

const TRADE_RATE_CHART = 'trade-rate.png';
const LOSS_CHART = 'loss-limit.png';
/** How long a post waits for its chart (drawn in ~50–400 ms); the renderer's own time-out is 15 s. */
export const CHART_WAIT_MS = 1000;
const LATE = Symbol('the chart is late');

/** The day's equity curve (the core's /pnl day), for a loss_limit alert's chart. */
export type DayEquity = () => Promise<{ points: readonly EquityPoint[]; baseValue?: number; missing?: readonly string[] }>;

export function discordAlertSink(client: Client, config: Config, logger?: Logger, dayEquity?: DayEquity): AlertSink {
  const { alertChannelId, alertRoleId } = config.discord;
  let channel: SendableChannels | undefined;
  return {
    name: 'discord',
    async deliver(alert, context) {
      try {
        return await post(alert, context.lateByMs);
      } catch (error) {
        throw explain(error);
      }
    },
  };

  async function post(alert: StoredAlert, lateByMs: number): Promise<string> {
    if (!client.isReady()) throw new Error('Discord is not connected');
    if (!channel) {
      const fetched = await client.channels.fetch(alertChannelId!);
      if (!fetched?.isSendable()) throw new Error(`channel ${alertChannelId} is not a text channel the bot can post in`);
      channel = fetched;
    }
    const pids = Array.isArray(alert.facts.pids) ? alert.facts.pids.filter((p): p is number => Number.isInteger(p)) : [];
    const drawing = chartOf(alert);
    let timer: NodeJS.Timeout | undefined;
    const waited = await Promise.race([drawing, new Promise<typeof LATE>((resolve) => (timer = setTimeout(() => resolve(LATE), CHART_WAIT_MS)))]);
    clearTimeout(timer);
    const chart = waited === LATE ? undefined : waited;
    const embed = alertEmbed(alert, lateByMs);
    if (chart) embed.setImage(`attachment://${chart.name}`);
    const message = await channel.send({
      content: alertRoleId ? `<@&${alertRoleId}>` : undefined,
      embeds: [embed],
      files: chart ? [chart] : [],
      // Ping the alert role and nobody else, whatever the alert text contains.
      allowedMentions: { parse: [], roles: alertRoleId ? [alertRoleId] : [] },
      components: alertButtons(alert, pids),
      // Discord drops a second message with the same nonce: a retry after a lost answer is not a repeat.
      nonce: alert.id.replace(/-/g, '').slice(0, 25),
      enforceNonce: true,
    });
    if (waited === LATE) void attachLater(message, alert, lateByMs, () => drawing, 'trade-rate');
    if (alert.kind === 'loss_limit' && dayEquity) void attachLater(message, alert, lateByMs, dayChart, 'loss-limit');
    return message.id;
  }

  /** A chart added to the posted alert once drawn; on any failure the alert stands as it is. */
  async function attachLater(message: Message, alert: StoredAlert, lateByMs: number, draw: () => Promise<AttachmentBuilder | undefined>, what: string): Promise<void> {
    try {
      const chart = await draw();
      if (chart) await message.edit({ embeds: [alertEmbed(alert, lateByMs).setImage(`attachment://${chart.name}`)], files: [chart] });
    } catch (error) {
      logger?.warn(`${what} chart not attached (the alert stands as posted, its text says it all): ${describeError(error)}`);
    }
  }

  /** The day's equity for a loss_limit alert; undefined while there is no curve yet (the day has just begun). */
  async function dayChart(): Promise<AttachmentBuilder | undefined> {
    const day = await dayEquity!();
    if (day.points.length < 2 || day.baseValue === undefined) {
      if (day.missing?.length) throw new Error(day.missing.join('; '));
      return undefined;
    }
    const image = await drawEquityChart({ points: day.points, baseValue: day.baseValue, title: "Today's equity (dashed: where the day began)" });
    return new AttachmentBuilder(image.png, { name: LOSS_CHART });
  }

  /** The trade-rate alert's hour as a picture; without one the alert goes out as text (it says it all). */
  async function chartOf(alert: StoredAlert): Promise<AttachmentBuilder | undefined> {
    const hour = alert.kind === 'trade_rate_exceeded' ? parseHour(alert.facts.hour) : undefined;
    if (!hour) return undefined;
    try {
      const limit = typeof alert.facts.limit === 'number' ? alert.facts.limit : 0;
      const image = await drawTradeRateChart({ counts: hour.counts, bucketMs: hour.bucketMs, windowEnd: hour.end, limit });
      return new AttachmentBuilder(image.png, { name: TRADE_RATE_CHART });
    } catch (error) {
      logger?.warn(`trade-rate chart not drawn (the alert goes out without it): ${describeError(error)}`);
      return undefined;
    }
  }
}

function parseHour(value: unknown): { end: number; bucketMs: number; counts: number[] } | undefined {
  if (!value || typeof value !== 'object') return undefined;
  const { end, bucketMs, counts } = value as Record<string, unknown>;
  if (typeof end !== 'number' || typeof bucketMs !== 'number' || bucketMs <= 0 || !Array.isArray(counts)) return undefined;
  if (!counts.every((c) => typeof c === 'number' && Number.isFinite(c))) return undefined;
  return { end, bucketMs, counts: counts as number[] };
}

/**
 * A 401 makes discord.js drop its token for good ("Expected token to be set" on every later call):
 * say what it means, since alerts then wait in the outbox until the token is fixed and the
 * controller restarts.
 */
function explain(error: unknown): unknown {
  const status = error instanceof DiscordAPIError ? error.status : undefined;
  if (status === 401 || (error instanceof Error && /Expected token to be set/.test(error.message))) {
    return new Error('Discord rejected the bot token (401): alerts wait in the outbox; set a valid DISCORD_TOKEN and restart the controller', { cause: error });
  }
  if (status === 403 || status === 404) {
    return new Error(`Discord refused the post (${status}): check that the bot can view and post in DISCORD_ALERT_CHANNEL_ID (View Channel, Send Messages, Embed Links, Attach Files; the controller's log and tradewarden health name what is missing and where to grant it)`, { cause: error });
  }
  return error;
}

/**
 * What an operator can do from the alert itself: end the duplicates it names; for a copy here or
 * trading from somewhere else, lock the account at the broker so that no copy anywhere trades; for
 * positions nobody manages, flatten.
 */
function alertButtons(alert: StoredAlert, pids: readonly number[]): ActionRowBuilder<ButtonBuilder>[] {
  const buttons: ButtonBuilder[] = [];
  if (alert.kind === 'duplicate_instance' && pids.length) buttons.push(new ButtonBuilder().setCustomId(stopDuplicatesId(pids)).setLabel('Stop duplicates').setStyle(ButtonStyle.Danger));
  if (alert.kind === 'duplicate_instance' || alert.kind === 'foreign_trading') {
    buttons.push(new ButtonBuilder().setCustomId(CUSTOM_ID.lockAccount).setLabel('Lock the account').setStyle(ButtonStyle.Danger));
  }
  if (alert.kind === 'positions_unattended') buttons.push(new ButtonBuilder().setCustomId(CUSTOM_ID.flatten).setLabel('Flatten').setStyle(ButtonStyle.Danger));
  return buttons.length ? [new ActionRowBuilder<ButtonBuilder>().addComponents(...buttons)] : [];
}

/**
 * The button names the alert's PIDs when they fit in a custom_id (100 characters: ~11 PIDs);
 * otherwise it names none and the click offers every duplicate a fresh scan finds. Discord refuses
 * a longer id, and a refused post would hold the alert in the outbox for ever.
 */
export function stopDuplicatesId(pids: readonly number[]): string {
  const id = CUSTOM_ID.stopDuplicates + pids.join(',');
  return id.length <= 100 ? id : CUSTOM_ID.stopDuplicates;
}
