// The positions_unattended alert on Discord (issue 19, part 3): it carries a Flatten button that runs
// the catalogue's flatten with its confirmation, as the duplicate alert's "Stop duplicates" runs
// stop-duplicates. The real discord.js front against the Discord stand-in, the paper broker, real PM2.
// The watch that raises the alert: test/unattended.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { alertChannelId, buttonsOf, bystander, customIdLike, operator, startDiscordHarness, type DiscordHarness } from './helpers/discord-app.ts';

describe('Discord: the positions_unattended alert', () => {
  let harness: DiscordHarness;

  before(async () => {
    harness = await startDiscordHarness({ prefix: 'tw-unattdc-', confirmTimeoutMs: 10_000 });
  });

  after(async () => {
    await harness?.close();
  });

  test('carries a Flatten button: operators only; confirmed, it flattens the account', async () => {
    const { app, discord, paper } = harness;
    paper.seedPosition('AAPL', 10, 200);
    await app.outbox.raise({ kind: 'positions_unattended', severity: 'warning', key: 'unattended:button', title: 'Positions held while no trader runs', body: '1 position(s) held for 15m 0s while no copy runs.' });
    const posted = await discord.waitForChannelMessage(alertChannelId, (m) => m.embeds[0]?.title === 'Positions held while no trader runs');
    assert.deepEqual(buttonsOf(posted).map((b) => b.label), ['Flatten']);
    const refused = await (await harness.click(bystander, posted, customIdLike(posted, 'tw:flatten'))).response();
    assert.match(refused.content, /^Only operators can flatten the account\./);
    assert.equal(paper.snapshot().positions.length, 1, 'a refused click flattens nothing');
    const asked = await harness.click(operator, posted, customIdLike(posted, 'tw:flatten'));
    const prompt = await asked.response();
    assert.ok(prompt.ephemeral, 'the confirmation is only for the operator');
    assert.match(prompt.content, /Flatten the account\?/);
    const confirm = await harness.click(operator, prompt.message, customIdLike(prompt.message, 'tw:confirm:'));
    await confirm.response();
    const report = await discord.waitFor(() => (discord.message(prompt.message.id)?.embeds[0]?.title ? discord.message(prompt.message.id) : undefined), 'the flatten report');
    assert.equal(report.embeds[0].title, 'Flatten: account is flat', String(report.embeds[0].description));
    assert.deepEqual(paper.snapshot().positions, [], 'the broker shows the account flat');
    const audit = await harness.auditOf('flatten');
    assert.deepEqual(audit.map((e) => `${e.who}:${e.outcome}`), [`discord:${operator.user.id}:ok`, `discord:${bystander.user.id}:refused`], 'both clicks audited');
  });
});
