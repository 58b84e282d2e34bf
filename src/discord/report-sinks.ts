// Where the reports people read without asking go in Discord: the scheduled digest (one embed and
// its chart, DIGEST_CHANNEL_ID) and the fill feed (compact lines, FILL_FEED_CHANNEL_ID), each in the
// alert channel unless told otherwise. Neither pings anyone: alerts keep the ping. A failure throws,
// and the digest schedule or the feed keeps the post to try again.
import { DiscordAPIError, MessageFlags, type Client, type SendableChannels } from 'discord.js';
import type { Config } from '../config.ts';
import type { DigestSink } from '../watch/digest-schedule.ts';
import { feedLine, moreLine, type FeedSink } from '../watch/fill-feed.ts';
import { digestReply } from './digest-render.ts';

const MESSAGE_MAX = 2000;

/** The channel `variable` names (or the alert channel), fetched once it is reachable. */
function channelOf(client: Client, id: string, variable: string): () => Promise<SendableChannels> {
  let channel: SendableChannels | undefined;
  return async () => {
    if (channel) return channel;
    if (!client.isReady()) throw new Error('Discord is not connected');
    const fetched = await client.channels.fetch(id).catch((error: unknown) => {
      throw explain(error, id, variable);
    });
    if (!fetched?.isSendable()) throw new Error(`${variable} ${id} is not a text channel the bot can post in`);
    channel = fetched;
    return channel;
  };
}

function explain(error: unknown, id: string, variable: string): unknown {
  const status = error instanceof DiscordAPIError ? error.status : undefined;
  if (status === 403 || status === 404) {
    return new Error(`Discord refused (${status}): check that the bot can view and post in ${variable} ${id} (View Channel, Send Messages, Embed Links, Attach Files)`, { cause: error });
  }
  return error;
}

export function discordDigestSink(client: Client, config: Config): DigestSink {
  const { channelId } = config.digest;
  const channel = channelOf(client, channelId ?? config.discord.alertChannelId!, channelId ? 'DIGEST_CHANNEL_ID' : 'DISCORD_ALERT_CHANNEL_ID');
  return {
    name: 'discord',
    async post(report) {
      const target = await channel();
      const reply = await digestReply(report);
      await target
        .send({
          embeds: reply.embeds,
          files: reply.files ?? [],
          allowedMentions: { parse: [] },
          // A retry after a lost answer is not a second digest: Discord drops a repeated nonce.
          ...(report.due ? { nonce: `dg${Math.floor(report.due.at / 1000)}`, enforceNonce: true } : {}),
        })
        .catch((error: unknown) => {
          throw explain(error, target.id, channelId ? 'DIGEST_CHANNEL_ID' : 'DISCORD_ALERT_CHANNEL_ID');
        });
    },
  };
}

/** The feed's batch as one message: as many lines as fit, then the rest counted. */
export function feedMessage(fills: Parameters<FeedSink['post']>[0]): string {
  const lines = fills.map((f) => `<t:${Math.floor(f.at / 1000)}:T> ${feedLine(f)}`);
  const shown: string[] = [];
  let used = 0;
  for (let i = 0; i < lines.length; i++) {
    const rest = i < lines.length - 1 ? moreLine(fills.slice(i + 1)).length + 1 : 0;
    if (used + lines[i]!.length + 1 + rest > MESSAGE_MAX) {
      shown.push(moreLine(fills.slice(i)).slice(0, MESSAGE_MAX - used));
      return shown.join('\n');
    }
    shown.push(lines[i]!);
    used += lines[i]!.length + 1;
  }
  return shown.join('\n');
}

export function discordFeedSink(client: Client, config: Config): FeedSink {
  const channelId = config.fillFeed?.channelId;
  const variable = channelId ? 'FILL_FEED_CHANNEL_ID' : 'DISCORD_ALERT_CHANNEL_ID';
  const channel = channelOf(client, channelId ?? config.discord.alertChannelId!, variable);
  return {
    name: 'discord',
    async post(fills) {
      const target = await channel();
      await target
        .send({
          content: feedMessage(fills),
          // For reading, not for paging: nobody mentioned, no push notification.
          allowedMentions: { parse: [] },
          flags: MessageFlags.SuppressNotifications,
        })
        .catch((error: unknown) => {
          throw explain(error, target.id, variable);
        });
    },
  };
}
