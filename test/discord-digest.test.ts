// The reports people read without asking, in Discord: /digest and the scheduled digest (one embed,
// the equity curve as a PNG, nobody pinged) and the fill feed (compact lines, at most one message per
// 5 s under a burst, nothing dropped) — through the real discord.js client and the Discord stand-in,
// a real PM2 daemon (its own temp PM2_HOME, ended by its PID) and the paper broker on the app's
// ManualClock. The feed and the schedule follow that clock: the tests move it and run the job.
// Every assert.ok carries a message (node 20's expression quoting can spin under tsx).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageFlags } from 'discord.js';
import { buildApp, type App } from '../src/app.ts';
import type { ManualClock } from '../src/clock.ts';
import { parseConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import type { FillFeed } from '../src/watch/fill-feed.ts';
import type { DiscordStandIn, JsonObject, StandInMessage, StoredFile } from '../testkit/discord/discord.ts';
import type { PaperBroker } from '../testkit/paper-broker.ts';
import { alertChannelId, bystander, guildId, startDiscordHarness, type DiscordHarness } from './helpers/discord-app.ts';

const DAY = 86_400_000;

/** Width and height from a PNG's IHDR chunk, after checking the signature: it decodes as a PNG. */
function pngSize(file: StoredFile): { width: number; height: number } {
  const data = file.data;
  assert.deepEqual([...data.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], `${file.name} starts with the PNG signature`);
  assert.equal(data.subarray(data.length - 8, data.length - 4).toString('latin1'), 'IEND', `${file.name} ends with IEND (not truncated)`);
  return { width: data.readUInt32BE(16), height: data.readUInt32BE(20) };
}

describe('The digest and the fill feed in Discord', () => {
  let harness: DiscordHarness;
  let discord: DiscordStandIn;
  let paper: PaperBroker;
  let clock: ManualClock;
  /** A second app on the same data file with DIGEST_CRON and FILL_FEED=on, and its own front. */
  let reporting: App;
  let feed: FillFeed;

  before(async () => {
    harness = await startDiscordHarness({ prefix: 'tw-dgd-', confirmTimeoutMs: 5000, brokerOnAppClock: true });
    ({ discord, paper, clock } = harness);
  });

  after(async () => {
    await reporting?.close().catch(() => undefined);
    await harness?.close();
  });

  const alertPosts = () => discord.channelMessages(alertChannelId).filter((m) => m.source === 'channel');

  test('/digest is for everyone: one embed that says it all, the equity curve as a PNG', async () => {
    const command = discord.commands(guildId).find((c) => c.name === 'digest');
    assert.ok(command, '/digest is registered');
    assert.deepEqual([command.options ?? [], command.default_member_permissions], [[], null]);

    // The account's past: $990,000 two days ago (it opened at $1M); one round trip today, +$50.
    paper.seedHistory([{ at: clock.now() - 2 * DAY, equity: 990_000 }]);
    clock.advance(60_000);
    paper.placeOrder({ symbol: 'AAPL', side: 'buy', qty: 5, type: 'market', time_in_force: 'day' });
    clock.advance(60_000);
    paper.setPrice('AAPL', 210);
    paper.placeOrder({ symbol: 'AAPL', side: 'sell', qty: 5, type: 'market', time_in_force: 'day' });
    paper.setPrice('AAPL', 200);
    clock.advance(60_000);

    const reply = await (await harness.slash(bystander, 'digest')).response();
    assert.equal(reply.ephemeral, false, 'for the channel');
    assert.equal(reply.embeds.length, 1, 'one embed');
    const [embed] = reply.embeds;
    assert.equal(embed.title, 'Digest');
    const lines = String(embed.description).split('\n');
    assert.match(lines[0], /^\*\*Period\*\* <t:\d+:f> → <t:\d+:f> \(24h, the first digest\)$/, 'times in each reader\'s zone');
    assert.ok(lines.includes('**Equity** $1,000,050.00 · +$10,050.00 (+1.02%) from $990,000.00'), lines.join('\n'));
    assert.ok(lines.includes('**Trades** 2: AAPL 1 buy/1 sell'), lines.join('\n'));
    assert.ok(lines.includes('**Closed** AAPL +$50.00 (sell 5 @ $210.00)'), lines.join('\n'));
    assert.ok(lines.every((l) => l.length <= 120), 'short lines, for a phone');
    assert.equal((embed.image as JsonObject | undefined)?.url, 'attachment://digest.png', "the chart is the embed's image");
    assert.deepEqual(reply.message.files.map((f) => f.name), ['digest.png']);
    assert.deepEqual(pngSize(reply.message.files[0]), { width: 800, height: 400 });
    assert.ok(reply.message.files[0].size > 5000, `a drawn chart (${reply.message.files[0].size} bytes)`);
  });

  test('the scheduled digest goes to the alert channel (DIGEST_CHANNEL_ID unset): nobody pinged, the chart attached, late said in its title', async () => {
    const env = harness.envFor({ DIGEST_CRON: '0 */10 * * * *', DIGEST_TZ: 'UTC', FILL_FEED: 'on' });
    const config = parseConfig(env);
    reporting = buildApp(config, {
      logger: createLogger({ secrets: config.secrets, level: 'debug', write: (line) => harness.logLines.push(line) }),
      deliversAlerts: true,
      clock,
      env: { ...process.env, ...env },
      fillFeedAutoFlush: false,
    });
    assert.ok(reporting.digest && reporting.fillFeed, 'DIGEST_CRON and FILL_FEED=on: both built');
    feed = reporting.fillFeed;
    // Its own front: the Discord front gives the schedule and the feed their channel.
    await harness.startFront(reporting);

    assert.equal(await reporting.digest.run(), undefined, 'armed: nothing due yet');
    const before = alertPosts().length;
    clock.set(Math.floor(clock.now() / 600_000) * 600_000 + 600_000 + 3 * 60_000); // 3 minutes after the next :x0
    const report = await reporting.digest.run();
    assert.ok(report?.due?.lateByMs === 180_000, 'posted 3 minutes after its due time: late');
    const posted: StandInMessage = await discord.waitForChannelMessage(alertChannelId, (m) => m.embeds[0]?.title === 'Digest (late)');
    assert.equal(alertPosts().length, before + 1, 'one post');
    assert.equal(posted.content, '', 'no mention text');
    assert.deepEqual(posted.allowed_mentions, { parse: [] }, 'nobody may be pinged by it');
    assert.deepEqual([posted.mentions, posted.mention_roles], [[], []]);
    assert.match(String(posted.embeds[0].description), /^\*\*LATE\*\* due <t:\d+:f>, sent 3m 0s after/m);
    assert.deepEqual(posted.files.map((f) => f.name), ['digest.png']);
    assert.match(String(posted.enforcedNonce), /^dg\d+$/, 'a nonce: a retry after a lost answer is not a second post');
    assert.equal(await reporting.digest.run(), undefined, 'once');
  });

  test('the fill feed: a compact line per fill, no notification; 100 fills in a second → at most one message per 5 s, every fill shown or counted', async () => {
    const feedPosts = () => alertPosts().filter((m) => /^<t:\d+:T> /.test(m.content));
    const expectPosts = (n: number) => discord.waitFor(() => (feedPosts().length === n ? true : undefined), `${n} feed message(s)`);

    // The /digest test's round trip is new to this app's watch: two fills; the sell was a flatten's close.
    await reporting.tradeWatch!.poll();
    assert.equal(feed.pending, 2, 'the watch handed over both fills');
    const sell = (await reporting.store.read()).trades.seen.find((t) => t.side === 'sell')!;
    await reporting.store.update((data) => {
      data.trades.ownOrders = [{ orderId: sell.orderId, at: clock.now(), by: 'flatten:test' }];
    });
    await feed.flushDue();
    assert.equal(feedPosts().length, 0, 'a first fill waits a second for the ones that come with it');
    clock.advance(feed.gatherMs);
    await feed.flushDue();
    await expectPosts(1);
    const first = feedPosts()[0];
    assert.match(first.content, /^<t:\d+:T> BUY 5 AAPL @ 200 · trader\n<t:\d+:T> SELL 5 AAPL @ 210 · flatten$/);
    assert.equal(first.flags & MessageFlags.SuppressNotifications, MessageFlags.SuppressNotifications, 'no push notification');
    assert.deepEqual(first.allowed_mentions, { parse: [] }, 'no ping');
    assert.equal(first.embeds.length, 0);

    // A burst: 100 fills in one second.
    for (let i = 0; i < 100; i++) {
      clock.advance(10);
      paper.placeOrder({ symbol: i % 2 ? 'MSFT' : 'AAPL', side: 'buy', qty: 1, type: 'market', time_in_force: 'day' });
    }
    await reporting.tradeWatch!.poll();
    assert.equal(feed.pending, 100);
    clock.advance(feed.gatherMs);
    await feed.flushDue();
    assert.equal(feedPosts().length, 1, 'within 5 s of the last message: nothing more yet');
    clock.set(feed.dueAt!);
    await feed.flushDue();
    await expectPosts(2);
    const burst = feedPosts()[1].content;
    assert.ok(burst.length <= 2000, `one message within Discord's limit (${burst.length})`);
    const shown = burst.split('\n').filter((l) => l.startsWith('<t:'));
    const more = /^\+(\d+) more: AAPL (\d+) buy, MSFT (\d+) buy$/m.exec(burst) ?? /^\+(\d+) more: MSFT (\d+) buy, AAPL (\d+) buy$/m.exec(burst);
    assert.ok(more, `the rest counted by symbol: ${burst.split('\n').at(-1)}`);
    assert.equal(shown.length + Number(more[1]), 100, 'every fill shown or counted');
    assert.equal(Number(more[2]) + Number(more[3]), Number(more[1]));
    assert.ok(shown.length >= 20, `as many lines as fit (${shown.length})`);
    // No copy of the trader runs here (FOREIGN_TRADING=alert): the burst is someone else's trading.
    assert.ok(shown.every((l) => / · FOREIGN$/.test(l)), `marked foreign: ${shown[0]}`);
    assert.equal(feed.pending, 0);

    // Rate limited (429): discord.js waits it out and posts; meanwhile the watch records fills at once.
    discord.failNext({ method: 'POST', path: new RegExp(`^/channels/${alertChannelId}/messages$`), status: 429, retryAfter: 3 });
    for (let i = 0; i < 3; i++) paper.placeOrder({ symbol: 'AAPL', side: 'sell', qty: 1, type: 'market', time_in_force: 'day' });
    await reporting.tradeWatch!.poll();
    clock.set(feed.dueAt!);
    const limited = feed.flushDue();
    await discord.waitForRequest((r) => r.status === 429 && r.path === `/channels/${alertChannelId}/messages`);
    paper.placeOrder({ symbol: 'MSFT', side: 'sell', qty: 1, type: 'market', time_in_force: 'day' });
    await reporting.tradeWatch!.poll();
    assert.equal(feedPosts().length, 2, 'the poll is done while the rate-limited message still waits: the watch never waits for Discord');
    assert.equal(feed.pending, 1, 'the new fill waits for the next message');
    await limited;
    await expectPosts(3);
    assert.equal(feedPosts()[2].content.split('\n').length, 3, 'the three sells, after the wait');

    // Discord failing (500 past discord.js's retries): the batch is kept and goes with the next.
    discord.failNext({ method: 'POST', path: new RegExp(`^/channels/${alertChannelId}/messages$`), status: 500, count: 4 });
    clock.set(feed.dueAt!);
    await feed.flushDue();
    assert.equal(feed.pending, 1, 'not posted, not dropped');
    paper.placeOrder({ symbol: 'AAPL', side: 'buy', qty: 2, type: 'market', time_in_force: 'day' });
    await reporting.tradeWatch!.poll();
    clock.set(feed.dueAt!);
    await feed.flushDue();
    await expectPosts(4);
    assert.match(feedPosts()[3].content, /^<t:\d+:T> SELL 1 MSFT @ 400 · FOREIGN\n<t:\d+:T> BUY 2 AAPL @ 200 · FOREIGN$/);
  });
});
