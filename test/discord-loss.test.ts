// The loss_limit alert on Discord (issue 19): posted at once with its text (which says everything),
// then the day's equity drawn and attached to the same message — a chart that is slow or cannot be
// drawn never holds the alert back nor loses it. The real discord.js front against the Discord
// stand-in, the paper broker's portfolio history, the real chart renderer. The watch that raises the
// alert: test/loss-limit.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { JsonObject } from '../testkit/discord/discord.ts';
import { waitFor } from '../testkit/pm2-home.ts';
import { alertChannelId, startDiscordHarness, type DiscordHarness } from './helpers/discord-app.ts';

const HISTORY = '/v2/account/portfolio/history';
const TITLE = 'Loss limit crossed';
const BODY = "Equity $999,900.00: the day's loss $100.00 (0.01% of $1,000,000.00, the broker's equity at its last close) is past MAX_DAILY_LOSS $50.00.";

describe('Discord: the loss_limit alert', () => {
  let harness: DiscordHarness;

  before(async () => {
    harness = await startDiscordHarness({ prefix: 'tw-lossdc-', confirmTimeoutMs: 10_000, brokerOnAppClock: true });
    // A day with a curve: a position bought, half an hour, a fall.
    const { paper, clock } = harness;
    paper.seedPosition('AAPL', 10, 200);
    clock.advance(30 * 60_000);
    paper.setPrice('AAPL', 190);
  });

  after(async () => {
    await harness?.close();
  });

  const raise = (key: string) => harness.app.outbox.raise({ kind: 'loss_limit', severity: 'critical', key, title: TITLE, body: BODY, facts: { equity: 999_900, dailyLimit: 50 } });

  test('posted at once with its text while the day\'s equity is still being read; the chart is then attached to the same message', async () => {
    const { discord, paper } = harness;
    const held = paper.holdNext({ method: 'GET', path: HISTORY });
    let reading = false;
    void held.reached.then(() => (reading = true));
    await raise('loss:chart');
    await waitFor(() => reading, { what: "the day's equity being read for the chart" });
    const posted = await discord.waitForChannelMessage(alertChannelId, (m) => m.embeds[0]?.title === TITLE);
    assert.equal(String(posted.embeds[0].description), BODY, 'the whole text, posted while the history read is held');
    assert.equal(posted.embeds[0].image, undefined, 'no chart yet');
    held.release();
    const charted = await discord.waitForChannelMessage(alertChannelId, (m) => m.id === posted.id && (m.embeds[0]?.image as JsonObject | undefined)?.url === 'attachment://loss-limit.png');
    assert.equal(String(charted.embeds[0].description), BODY, 'the text unchanged beside the chart');
    assert.deepEqual(charted.files.map((f) => f.name), ['loss-limit.png']);
    assert.deepEqual([...charted.files[0].data.subarray(1, 4)].map((b) => String.fromCharCode(b)).join(''), 'PNG', 'a PNG');
    assert.equal(discord.channelMessages(alertChannelId).filter((m) => m.embeds[0]?.title === TITLE).length, 1, 'one message: edited, not posted twice');
  });

  test('a chart that cannot be drawn (the history refused) leaves the alert as posted, and says why in the log', async () => {
    const { discord, paper, logLines } = harness;
    paper.failNext(500, 4, { path: HISTORY });
    const before = discord.channelMessages(alertChannelId).length;
    await raise('loss:nochart');
    const posted = await discord.waitForChannelMessage(alertChannelId, (m) => m.embeds[0]?.title === TITLE && discord.channelMessages(alertChannelId).indexOf(m) >= before);
    const warning = await waitFor(() => logLines.find((l) => /loss-limit chart not attached \(the alert stands as posted, its text says it all\): .*500/.test(l)), { timeoutMs: 10_000, what: 'the warning that the chart was not attached' });
    assert.ok(warning, 'the log says why');
    const now = discord.message(posted.id)!;
    assert.equal(String(now.embeds[0].description), BODY, 'the alert stands with its text');
    assert.equal(now.embeds[0].image, undefined, 'and without a chart');
    assert.deepEqual(now.files, []);
  });
});
