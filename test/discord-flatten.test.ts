// /flatten from Discord while the controller watches the broker's trade stream: the real discord.js
// client against the Discord stand-in, a real PM2 daemon and trader, the paper broker over HTTP with
// its stream. The broker streams the closing fills at once and answers the close 1.5 s later (no real
// broker promises an order between the two): the operator's flatten must not be judged a runaway.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { App } from '../src/app.ts';
import { countedTrades } from '../src/watch/trade-window.ts';
import type { PaperBroker } from '../testkit/paper-broker.ts';
import type { DiscordStandIn } from '../testkit/discord/discord.ts';
import { waitFor } from '../testkit/pm2-home.ts';
import { customIdLike, operator, operatorActor, startDiscordHarness, subcommand, type DiscordHarness } from './helpers/discord-app.ts';

describe('/flatten from Discord while the trade stream watches', () => {
  let harness: DiscordHarness;
  let discord: DiscordStandIn;
  let paper: PaperBroker;
  let app: App;

  before(async () => {
    harness = await startDiscordHarness({ prefix: 'tw-dcflat-', confirmTimeoutMs: 10_000, brokerOnAppClock: true });
    ({ discord, paper, app } = harness);
    app.startStream();
    await waitFor(() => app.tradeStream!.state().status === 'connected' && paper.streamListeners > 0, { what: 'the trade stream', intervalMs: 10 });
  });

  after(async () => {
    await harness?.close();
  });

  test('/flatten of 5 positions: no trade-rate alert, no breaker, /bot start works right after', async () => {
    await app.core.start(operatorActor);
    paper.seedPosition('AAPL', 10, 200);
    paper.seedPosition('MSFT', -5, 400);
    paper.seedPosition('TSLA', 3, 100);
    paper.seedPosition('NVDA', 8, 100);
    paper.seedPosition('AMD', -4, 100);
    paper.setDelay(1500, { method: 'DELETE', path: '/v2/positions' });

    const run = await harness.slash(operator, 'flatten');
    const prompt = await run.response();
    const confirm = await harness.click(operator, prompt.message, customIdLike(prompt.message, 'tw:confirm:'));
    await confirm.response();
    const report = await discord.waitFor(() => (discord.message(prompt.message.id)?.embeds[0]?.title ? discord.message(prompt.message.id) : undefined), 'the flatten report');
    assert.equal(report.embeds[0].title, 'Flatten: account is flat', String(report.embeds[0].description));

    await waitFor(async () => (await app.store.read()).trades.seen.length >= 5, { what: 'the 5 closing fills through the stream', intervalMs: 10 });
    await app.tradeWatch!.poll(); // the scheduled poll, once everything is known
    const data = await app.store.read();
    assert.equal(countedTrades(data, app.clock.now()).length, 0, 'the closes count for nothing in the hour');
    const kinds = data.alerts.map((a) => a.kind);
    assert.ok(!kinds.includes('trade_rate_exceeded') && !kinds.includes('breaker_tripped'), `no rate alert, no trip (raised: ${kinds.join(', ')})`);
    assert.equal(harness.alertPosts('Trade rate exceeded').length, 0, 'nothing posted about the rate');
    assert.equal(data.breaker.tripped, false, 'the breaker is not tripped');

    const start = await harness.slash(operator, 'bot', subcommand('start'));
    const started = await start.response();
    assert.match(started.content, /Started trading-bot \(PID \d+\)\./);
    await app.core.stop(operatorActor);
  });
});
