// Reviewing the trading from Discord: /pnl with its chart, the trade-rate alert's chart, the stop
// report and the bot's presence — through the real discord.js client, the Discord stand-in (which
// keeps the bytes of uploaded files and records the gateway's presence updates), a real PM2 daemon
// (its own temp PM2_HOME, ended by its PID) and the paper broker on the app's ManualClock.
// Every assert.ok has a message (node 20's expression quoting can spin under tsx).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { App } from '../src/app.ts';
import type { ManualClock } from '../src/clock.ts';
import type { DiscordStandIn, JsonObject, StandInMessage, StoredFile } from '../testkit/discord/discord.ts';
import type { PaperBroker } from '../testkit/paper-broker.ts';
import {
  alertChannelId,
  bystander,
  customIdLike,
  guildId,
  operator,
  operatorActor,
  startDiscordHarness,
  subcommand,
  type DiscordHarness,
  type Front,
} from './helpers/discord-app.ts';
import { chartRendererPid, drawTradeRateChart } from '../src/render/chart-renderer.ts';
import { isAlive } from '../testkit/pm2-home.ts';
import { CHART_WAIT_MS } from '../src/discord/alert-sink.ts';

const DAY = 86_400_000;

/** Width and height from a PNG's IHDR chunk, after checking the signature: it decodes as a PNG. */
function pngSize(file: StoredFile): { width: number; height: number } {
  const data = file.data;
  assert.deepEqual([...data.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], `${file.name} starts with the PNG signature`);
  assert.equal(data.subarray(12, 16).toString('latin1'), 'IHDR', `${file.name}'s first chunk is IHDR`);
  assert.equal(data.subarray(data.length - 8, data.length - 4).toString('latin1'), 'IEND', `${file.name} ends with IEND (not truncated)`);
  return { width: data.readUInt32BE(16), height: data.readUInt32BE(20) };
}

describe('Reviewing the trading in Discord: /pnl, alert chart, stop report, presence', () => {
  let harness: DiscordHarness;
  let discord: DiscordStandIn;
  let paper: PaperBroker;
  let app: App;
  let front: Front;
  let clock: ManualClock;

  const pnl = async (period?: string) => {
    const run = await harness.slash(bystander, 'pnl', period ? [{ type: 3, name: 'period', value: period }] : []);
    return run.response();
  };

  before(async () => {
    harness = await startDiscordHarness({ prefix: 'tw-dcr-', confirmTimeoutMs: 5000, brokerOnAppClock: true });
    ({ discord, paper, app, front, clock } = harness);
  });

  after(async () => {
    await harness?.close();
  });

  test('/pnl is registered for everyone with the four periods as choices', () => {
    const command = discord.commands(guildId).find((c) => c.name === 'pnl');
    assert.ok(command, '/pnl is registered');
    const [period] = command.options as JsonObject[];
    assert.deepEqual([period.name, period.type, period.required ?? false], ['period', 3, false]);
    assert.deepEqual((period.choices as JsonObject[]).map((c) => c.value), ['day', 'week', 'month', 'year']);
    assert.equal(command.default_member_permissions, null);
  });

  test('/bot stop reports the session it ended: trades, P/L from start to stop, positions left open', async () => {
    await app.core.start(operatorActor);
    // PM2 stamps the start with the real time; the app's clock goes well past it before trading
    // (this test runs first: nothing was traded on the clock before the start).
    clock.advance(10 * 60_000);
    paper.placeOrder({ symbol: 'AAPL', side: 'buy', qty: 5, type: 'market', time_in_force: 'day' });
    clock.advance(2 * 60_000);
    paper.setPrice('AAPL', 210); // 5 × +10 on the session

    const prompt = await (await harness.slash(operator, 'bot', subcommand('stop'))).response();
    await (await harness.click(operator, prompt.message, customIdLike(prompt.message, 'tw:confirm:'))).response();
    const done: StandInMessage = await discord.waitFor(
      () => (discord.message(prompt.message.id)?.content.startsWith('Stopped') ? discord.message(prompt.message.id) : undefined),
      'the stop result',
    );
    const lines = done.content.split('\n');
    assert.match(lines[0], /^Stopped the trader \(PID \d+\) in \d+s\.$/);
    assert.match(lines[1], /^Session \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ → .+:$/);
    assert.equal(lines[2], '  trades 1 · P/L +$50.00 (equity $1,000,000.00 → $1,000,050.00)');
    assert.match(lines[3], /^ {2}positions left open: .*AAPL 5 \(P\/L \$50\.00\)/);
    assert.equal(lines.length, 4, `nothing missing: ${done.content}`);
    // Back to a flat account at 1M for the tests after this one.
    paper.setPrice('AAPL', 200);
    paper.placeOrder({ symbol: 'AAPL', side: 'sell', qty: 5, type: 'market', time_in_force: 'day' });
  });

  test('/pnl (a month) answers the figures and attaches an 800×400 PNG of the equity curve', async () => {
    // The account's past: 990k twenty days ago, 1.01M ten days ago; it opened today at 1M.
    const now = clock.now();
    paper.seedHistory([
      { at: now - 20 * DAY, equity: 990_000 },
      { at: now - 10 * DAY, equity: 1_010_000 },
    ]);
    const reply = await pnl();
    assert.equal(reply.ephemeral, false, '/pnl is for the channel');
    const [embed] = reply.embeds;
    assert.equal(embed.title, 'P/L, last month');
    const text = String(embed.description);
    assert.match(text, /^Equity now \$1,000,000\.00$/m);
    assert.match(text, /^P\/L over the month \+\$10,000\.00 \(\+1\.01%\) from \$990,000\.00$/m);
    assert.match(text, /^Best step \+\$20,000\.00 \(.+\) · worst step -\$10,000\.00 \(.+\)$/m);
    assert.doesNotMatch(text, /Missing/);
    assert.equal((embed.image as JsonObject | undefined)?.url, 'attachment://pnl.png', 'the chart is the embed\'s image');

    const files = reply.message.files;
    assert.deepEqual(files.map((f) => [f.name, f.field]), [['pnl.png', 'files[0]']]);
    assert.deepEqual(pngSize(files[0]), { width: 800, height: 400 });
    assert.ok(files[0].size > 5000, `a drawn chart, not an empty image (${files[0].size} bytes)`);
    assert.match(embed.footer ? String((embed.footer as JsonObject).text) : '', /points, 1D steps/);
  });

  test('/pnl without history (404): equity now, and what is missing; no picture', async () => {
    paper.failNext(404, 1, { path: '/v2/account/portfolio/history', message: 'endpoint not found' });
    const reply = await pnl('week');
    const [embed] = reply.embeds;
    assert.equal(embed.title, 'P/L, last week');
    const text = String(embed.description);
    assert.match(text, /^Equity now \$1,000,000\.00$/m);
    assert.match(text, /^Missing: equity history \(P\/L over the week, best and worst step, chart\): broker GET \/v2\/account\/portfolio\/history answered 404: endpoint not found$/m);
    assert.doesNotMatch(text, /P\/L over the week [+-]/);
    assert.deepEqual(reply.message.files, [], 'no chart without a curve');
    assert.equal(embed.image, undefined);
  });

  test('/pnl when the history fails with 500 (after the client\'s retries): the same, said plainly', async () => {
    paper.failNext(500, 4, { path: '/v2/account/portfolio/history' });
    const reply = await pnl('day');
    const text = String(reply.embeds[0].description);
    assert.match(text, /^Equity now \$1,000,000\.00$/m);
    assert.match(text, /^Missing: equity history .*answered 500/m);
    assert.deepEqual(reply.message.files, []);
  });

  test('/pnl day: a 15-minute curve with today\'s move, chart attached', async () => {
    paper.seedPosition('AAPL', 10, 200);
    clock.advance(30 * 60_000);
    paper.setPrice('AAPL', 190); // -100 on the day
    const reply = await pnl('day');
    const text = String(reply.embeds[0].description);
    assert.match(text, /^Equity now \$1,001,900\.00$/m, 'seeded AAPL is worth 1900');
    assert.match(text, /^P\/L over the day /m);
    assert.match(String((reply.embeds[0].footer as JsonObject).text), /15Min steps/);
    assert.deepEqual(pngSize(reply.message.files[0]), { width: 800, height: 400 });
    paper.seedPosition('AAPL', 0, 190);
  });

  test('the trade-rate alert carries a chart of its hour (600×260), after the text that says it all', async () => {
    clock.advance(61 * 60_000); // the stop test's two trades leave the hour
    for (let i = 0; i < 4; i++) {
      clock.advance(60_000);
      paper.placeOrder({ symbol: 'MSFT', side: 'buy', qty: 1, type: 'market', time_in_force: 'day' });
    }
    await app.tradeWatch!.poll();
    // Posted with its chart, or (a renderer slower than CHART_WAIT_MS on a busy machine) edited in after.
    const alert = await discord.waitForChannelMessage(alertChannelId, (m) => m.embeds[0]?.title === 'Trade rate exceeded' && m.embeds[0]?.image !== undefined);
    assert.match(String(alert.embeds[0].description), /^4 trades in the last hour \(limit 3\) for trading-bot\.$/);
    assert.equal((alert.embeds[0].image as JsonObject | undefined)?.url, 'attachment://trade-rate.png');
    assert.deepEqual(alert.files.map((f) => f.name), ['trade-rate.png']);
    assert.deepEqual(pngSize(alert.files[0]), { width: 600, height: 260 });
    const [stored] = (await app.core.alerts(50)).filter((a) => a.kind === 'trade_rate_exceeded');
    const hour = stored.facts.hour as { counts: number[]; bucketMs: number };
    assert.equal(hour.counts.length, 12, 'the hour in twelve 5-minute buckets');
    assert.equal(hour.counts.reduce((a, b) => a + b, 0), 4, 'every trade of the hour is in the chart');
  });

  test('a stuck chart renderer does not hold the trade-rate alert back: posted with its text, the chart edited in once drawn', async () => {
    const hour = { end: clock.now(), bucketMs: 5 * 60_000, counts: [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2] };
    await drawTradeRateChart({ counts: hour.counts, bucketMs: hour.bucketMs, windowEnd: hour.end, limit: 3 }); // the renderer running
    const pid = chartRendererPid();
    assert.ok(pid, 'the renderer runs');
    process.kill(pid, 'SIGSTOP');
    try {
      const raisedAt = Date.now();
      await app.outbox.raise({ kind: 'trade_rate_exceeded', severity: 'critical', key: 'stuck-renderer', title: 'Trade rate still climbing', body: '5 trades in the last hour (limit 3) for trading-bot.', facts: { count: 5, limit: 3, hour } });
      const posted = await discord.waitForChannelMessage(alertChannelId, (m) => m.embeds[0]?.title === 'Trade rate still climbing');
      const waitedMs = Date.now() - raisedAt;
      assert.equal(posted.embeds[0].image, undefined, 'posted without the chart the renderer cannot draw');
      assert.ok(waitedMs < CHART_WAIT_MS + 5000, `posted after ${waitedMs} ms: the chart's wait, not the renderer's 15 s time-out`);
      process.kill(pid, 'SIGCONT');
      const edited = await discord.waitForChannelMessage(alertChannelId, (m) => m.id === posted.id && (m.embeds[0]?.image as JsonObject | undefined)?.url === 'attachment://trade-rate.png');
      assert.equal(String(edited.embeds[0].description), '5 trades in the last hour (limit 3) for trading-bot.', 'the text as posted');
      assert.deepEqual(pngSize(edited.files[0]), { width: 600, height: 260 });
    } finally {
      if (isAlive(pid)) process.kill(pid, 'SIGCONT'); // (the renderer's time-out kills one stopped for 15 s)
    }
  });

  test('presence: the trader\'s state at a glance, sent only when it changes, at most once per interval', async () => {
    const updates = () => discord.gateway.presenceUpdates;
    const stateOf = (d: JsonObject) => `${String(d.status)} ${String((d.activities as JsonObject[])[0]?.state)}`;
    const presence = front.presence;
    const stopped = 'idle trading-bot stopped · 0/3 trades this hour';
    assert.ok(updates().length >= 1, 'the presence was set when the bot came online');
    // The trader was stopped by /bot stop; the alert's trades leave the hour on the clock.
    clock.advance(61 * 60_000);
    await presence.refresh();
    await discord.waitFor(() => (updates().length && stateOf(updates().at(-1)!) === stopped ? true : undefined), `the presence "${stopped}"`);
    const count = updates().length;

    await presence.refresh();
    await presence.refresh(); // no change: nothing sent (proved below: the next update is the next one)
    await app.store.update((d) => {
      d.breaker = { tripped: true, reason: 'test', at: new Date(clock.now()).toISOString(), by: 'controller' };
    });
    await presence.refresh(); // changed, but inside the interval since the last update: held back
    clock.advance(presence.minIntervalMs);
    await presence.refresh();
    await discord.waitFor(() => (updates().length > count ? true : undefined), 'the HALTED presence');
    assert.equal(updates().length, count + 1, 'one update for one change');
    assert.equal(stateOf(updates().at(-1)!), 'dnd HALTED: breaker');

    await app.store.update((d) => {
      d.breaker = { tripped: false };
    });
    clock.advance(presence.minIntervalMs);
    await presence.refresh();
    await discord.waitFor(() => (updates().length > count + 1 ? true : undefined), 'the presence after the breaker clears');
    assert.equal(updates().length, count + 2);
    assert.equal(stateOf(updates().at(-1)!), stopped);
  });
});
