// The guards an operator reaches from Discord: /flatten while the controller watches the broker's
// trade stream, and the broker lock (/bot lock, /bot unlock, an alert's "Lock the account"). The real
// discord.js client against the Discord stand-in, a real PM2 daemon and trader, the paper broker
// over HTTP with its stream. For /flatten the broker streams the closing fills at once and answers
// the close 1.5 s later (no real broker promises an order between the two): the operator's flatten
// must not be judged a runaway.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { App } from '../src/app.ts';
import { countedTrades } from '../src/watch/trade-window.ts';
import type { PaperBroker } from '../testkit/paper-broker.ts';
import type { DiscordStandIn } from '../testkit/discord/discord.ts';
import { waitFor } from '../testkit/pm2-home.ts';
import { alertChannelId, buttonsOf, bystander, customIdLike, operator, operatorActor, startDiscordHarness, subcommand, type DiscordHarness } from './helpers/discord-app.ts';

describe('Discord: /flatten while the trade stream watches, and the broker lock', () => {
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
    paper.setDelay(0, { method: 'DELETE', path: '/v2/positions' });
  });

  /** Runs a confirmed operation's prompt to its answer; returns the answer's text. */
  async function confirmed(prompt: Awaited<ReturnType<Awaited<ReturnType<DiscordHarness['slash']>>['response']>>, done: RegExp): Promise<string> {
    const click = await harness.click(operator, prompt.message, customIdLike(prompt.message, 'tw:confirm:'));
    await click.response();
    const answer = await discord.waitFor(() => (done.test(discord.message(prompt.message.id)?.content ?? '') ? discord.message(prompt.message.id) : undefined), `an answer like ${done}`);
    return answer.content;
  }

  test('/bot lock and /bot unlock: operators only, confirmed, the broker locked and unlocked, audited', async () => {
    const refused = await (await harness.slash(bystander, 'bot', subcommand('lock'))).response();
    assert.match(refused.content, /Only operators can run \/bot lock/);
    assert.equal(await app.broker!.tradingSuspended(), false, 'a refused lock locks nothing');

    const lock = await (await harness.slash(operator, 'bot', subcommand('lock'))).response();
    assert.match(lock.content, /Lock the account at the broker\?/);
    assert.match(await confirmed(lock, /^Account LOCKED/), /no new order from any copy, anywhere/);
    assert.equal(await app.broker!.tradingSuspended(), true, 'the broker refuses new orders');
    const status = await (await harness.slash(bystander, 'bot', subcommand('status'))).response();
    const field = (status.embeds[0].fields as Array<{ name: string; value: string }>).find((f) => f.name === 'Broker lock');
    assert.match(field?.value ?? '', /^LOCKED .* by discord:/, '/bot status shows the lock and who set it');

    const unlock = await (await harness.slash(operator, 'bot', subcommand('unlock'))).response();
    assert.match(await confirmed(unlock, /^Account unlocked/), /new orders are accepted again/);
    assert.equal(await app.broker!.tradingSuspended(), false);
    const audit = (await app.core.audit(10)).filter((e) => e.what === 'lock' || e.what === 'unlock').map((e) => `${e.what}:${e.who}:${e.outcome}`);
    assert.deepEqual(audit, [`unlock:discord:${operator.user.id}:ok`, `lock:discord:${operator.user.id}:ok`, `lock:discord:${bystander.user.id}:refused`]);
  });

  test('a foreign-trading alert carries a Lock the account button: confirmed, it locks the broker', async () => {
    await app.outbox.raise({ kind: 'foreign_trading', severity: 'critical', key: 'guards:foreign', title: 'Trading while no copy of the trader runs here', body: '1 fill(s) at the broker while no copy runs here.' });
    const posted = await discord.waitForChannelMessage(alertChannelId, (m) => m.embeds[0]?.title === 'Trading while no copy of the trader runs here');
    assert.deepEqual(buttonsOf(posted).map((b) => b.label), ['Lock the account']);
    const asked = await harness.click(operator, posted, customIdLike(posted, 'tw:lock'));
    const prompt = await asked.response();
    assert.ok(prompt.ephemeral, 'the confirmation is only for the operator');
    assert.match(await confirmed(prompt, /^Account LOCKED/), /unlock lifts it/);
    assert.equal(await app.broker!.tradingSuspended(), true);
    await app.core.unlock(operatorActor);
  });
});
