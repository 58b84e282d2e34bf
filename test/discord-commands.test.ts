// The Discord commands that discord-e2e.test.ts does not drive: /bot stop, restart, resume,
// duplicates, stop-duplicates, /trades, /alerts, /account, and a late alert's footer — through the
// real discord.js client, the Discord stand-in, a real PM2 daemon (its own temp PM2_HOME, ended by
// its PID) and the paper broker. The paper broker runs on the app's ManualClock, so fills made
// "now" at the broker fall in the app's rolling hour and the outbox's lateness is driven exactly.
// Every assert.ok has a message (node 20's expression quoting can spin under tsx).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { App } from '../src/app.ts';
import { COLOURS } from '../src/discord/render.ts';
import { money } from '../src/render/text.ts';
import type { DiscordStandIn, JsonObject, StandInInteraction, StandInMessage } from '../testkit/discord/discord.ts';
import { isAlive, waitFor } from '../testkit/pm2-home.ts';
import {
  EPHEMERAL,
  alertChannelId,
  buttonsOf,
  bystander,
  customIdLike,
  fieldOf,
  keyId,
  operator,
  operatorActor,
  secretKey,
  startDiscordHarness,
  subcommand,
  waitForDuplicate,
  type DiscordHarness,
  type Member,
} from './helpers/discord-app.ts';

const CONFIRM_TIMEOUT_MS = 5000;

/**
 * PIDs of live processes running `script`, read from /proc: independent of PM2's listing and of
 * our duplicate scan. PM2's node trader renames its title to one word list ("node <script>"), and
 * before that shows PM2's wrapper, whose environment names the script (pm_exec_path).
 */
function osCopiesOf(script: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const words = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split(/[\0 ]/);
      const viaPm2 = () => fs.readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(`pm_exec_path=${script}`);
      if ((words.includes(script) || viaPm2()) && isAlive(Number(entry))) pids.push(Number(entry));
    } catch {
      // gone between readdir and read
    }
  }
  return pids.sort((a, b) => a - b);
}

describe('Discord commands through discord.js (stop, restart, resume, duplicates, trades, alerts, account)', () => {
  let harness: DiscordHarness;
  let discord: DiscordStandIn;
  let app: App;
  let trader: string;

  const slash = (member: Member, name: string, options?: JsonObject[]): Promise<StandInInteraction> => harness.slash(member, name, options);
  const click = (member: Member, message: StandInMessage | string, customId: string): Promise<StandInInteraction> => harness.click(member, message, customId);
  const auditOf = (what: string) => harness.auditOf(what);
  const traderPid = async (): Promise<number> => {
    const status = await app.supervisor.status();
    assert.equal(status.state, 'online', 'the trader runs under PM2');
    return status.pid!;
  };
  /** The prompt's message once a later edit has replaced its text with one starting with `prefix`. */
  const editedTo = (message: StandInMessage, prefix: string, what: string): Promise<StandInMessage> =>
    discord.waitFor(() => (discord.message(message.id)?.content.startsWith(prefix) ? discord.message(message.id) : undefined), what);

  before(async () => {
    harness = await startDiscordHarness({ prefix: 'tw-dcc-', confirmTimeoutMs: CONFIRM_TIMEOUT_MS, brokerOnAppClock: true });
    ({ discord, app, trader } = harness);
    await app.core.start(operatorActor);
  });

  after(async () => {
    await harness?.close();
  });

  test('a bystander is refused every changing /bot subcommand (ephemeral, audited) and nothing changes', async () => {
    const pid = await traderPid();
    const changing = ['stop', 'restart', 'resume', 'stop-duplicates'];
    for (const name of changing) {
      const reply = await (await slash(bystander, 'bot', subcommand(name))).response();
      assert.ok(reply.ephemeral, `/bot ${name}: the refusal is ephemeral`);
      assert.equal(reply.content, `Only operators can run /bot ${name}. Ask someone with an operator role.`);
    }
    for (const name of changing) {
      const entry = await waitFor(async () => (await auditOf(name)).find((e) => e.who === `discord:${bystander.user.id}`), { what: `the refused ${name} in the audit log` });
      assert.deepEqual([entry.outcome, entry.message], ['refused', 'not an operator']);
    }
    assert.equal(await traderPid(), pid, 'same trader, same PID');
    assert.deepEqual(osCopiesOf(trader), [pid]);
  });

  test('/bot stop, cancelled: the prompt says so and the trader keeps running', async () => {
    const pid = await traderPid();
    const stopsBefore = (await auditOf('stop')).length;
    const prompt = await (await slash(operator, 'bot', subcommand('stop'))).response();
    assert.equal(prompt.content, 'Stop the trader? It gets SIGINT, then SIGKILL after its kill timeout.\n-# Only you can answer; expires in 5 s.');
    assert.deepEqual(buttonsOf(prompt.message).map((b) => b.label), ['Stop trader', 'Cancel']);
    const answer = await (await click(operator, prompt.message, customIdLike(prompt.message, 'tw:cancel:'))).response();
    assert.equal(answer.type, 7, 'the click updates the prompt in place');
    assert.equal(answer.content, 'Cancelled: nothing was done.');
    assert.deepEqual(discord.message(prompt.message.id)!.components, [], 'no buttons left');
    assert.ok(isAlive(pid), `PID ${pid} is still alive`);
    assert.equal(await traderPid(), pid);
    assert.equal((await auditOf('stop')).length, stopsBefore, 'no stop was run');
    assert.equal((await app.store.read()).desired?.state, 'running');
  });

  test('/bot stop, confirmed: "Stopped the trader (PID n)", the PID gone from the OS, audited', async () => {
    const pid = await traderPid();
    const prompt = await (await slash(operator, 'bot', subcommand('stop'))).response();
    const working = await (await click(operator, prompt.message, customIdLike(prompt.message, 'tw:confirm:'))).response();
    assert.equal(working.content, 'Stop trader: working…');
    const done = await editedTo(prompt.message, 'Stopped', 'the stop result');
    assert.match(done.content, new RegExp(`^Stopped the trader \\(PID ${pid}\\) in \\d+s\\.\\nSession .+:\\n {2}trades \\d+ · P/L `));
    assert.match(done.content, /\n {2}positions left open: /, 'the stop report names the positions left open');
    assert.deepEqual(done.components, []);
    assert.ok(!isAlive(pid), `PID ${pid} is gone from the OS`);
    assert.deepEqual(osCopiesOf(trader), [], 'no copy of the trader is left');
    assert.equal((await app.supervisor.status()).state, 'stopped');
    const [entry] = await auditOf('stop');
    assert.deepEqual([entry?.who, entry?.outcome], [`discord:${operator.user.id}`, 'ok']);
    const { desired } = await app.store.read();
    assert.deepEqual([desired?.state, desired?.by], ['stopped', `discord:${operator.user.id}`]);
  });

  test('/bot restart: a new PID, the old one gone, exactly one copy in PM2 and in the OS', async () => {
    await app.core.start(operatorActor);
    const old = await traderPid();
    const run = await slash(operator, 'bot', subcommand('restart'));
    const reply = await run.response();
    assert.equal(run.callbacks[0]?.type, 5, 'deferred first: a restart takes more than a second');
    const match = new RegExp(`^Stopped the trader \\(PID ${old}\\) in \\d+s\\.\\nStarted trading-bot \\(PID (\\d+)\\)\\.\\nSession `).exec(reply.content);
    assert.ok(match, `the reply names the old and the new PID: ${reply.content}`);
    const pid = Number(match[1]);
    assert.notEqual(pid, old, 'a new process');
    assert.ok(!isAlive(old), `the old PID ${old} is gone`);
    assert.ok(isAlive(pid), `the new PID ${pid} is alive`);
    const status = await app.supervisor.status();
    assert.deepEqual([status.state, status.pid, status.duplicates.length], ['online', pid, 0]);
    assert.deepEqual(osCopiesOf(trader), [pid], 'exactly one trader in the OS');
    const [entry] = await auditOf('restart');
    assert.deepEqual([entry?.who, entry?.outcome], [`discord:${operator.user.id}`, 'ok']);
  });

  test('/bot resume with a tripped breaker: cleared, the trader started, audited', async () => {
    await app.core.stop(operatorActor);
    const reason = '5 trades in the last hour (limit 3)';
    await app.store.update((data) => {
      data.breaker = { tripped: true, reason, at: new Date(harness.clock.now()).toISOString(), by: 'controller' };
    });
    // The breaker holds: a plain start is refused.
    const start = await slash(operator, 'bot', subcommand('start'));
    const refusal = await start.waitForFollowUp();
    assert.equal(refusal.flags & EPHEMERAL, EPHEMERAL);
    assert.match(refusal.content, /^Refused: the breaker is tripped \(5 trades in the last hour \(limit 3\), at .*\); an operator must run resume$/);
    assert.deepEqual(osCopiesOf(trader), [], 'nothing started');

    const reply = await (await slash(operator, 'bot', subcommand('resume'))).response();
    const match = new RegExp(`^Breaker cleared \\(was: ${reason.replace(/[()]/g, '\\$&')}\\)\\. Started trading-bot \\(PID (\\d+)\\)\\.$`).exec(reply.content);
    assert.ok(match, `the reply says what was cleared and the new PID: ${reply.content}`);
    const pid = Number(match[1]);
    assert.ok(isAlive(pid), `PID ${pid} is alive`);
    assert.deepEqual(osCopiesOf(trader), [pid]);
    const { breaker, desired } = await app.store.read();
    assert.deepEqual(breaker, { tripped: false, resumedAt: harness.clock.now() });
    assert.equal(desired?.state, 'running');
    const [entry] = await auditOf('resume');
    assert.deepEqual([entry?.who, entry?.outcome], [`discord:${operator.user.id}`, 'ok']);
    const status = (await (await slash(bystander, 'bot', subcommand('status'))).response()).embeds[0];
    assert.equal(fieldOf(status, 'Breaker'), 'ok');
  });

  test('/bot resume with no breaker tripped says so (as the CLI and the console do) and starts the trader', async () => {
    await app.core.stop(operatorActor);
    const { breaker: before } = await app.store.read();
    const reply = await (await slash(operator, 'bot', subcommand('resume'))).response();
    const match = /^Breaker cleared \(was not tripped\)\. Started trading-bot \(PID (\d+)\)\.$/.exec(reply.content);
    assert.ok(match, `the reply does not claim a breaker was tripped: ${reply.content}`);
    assert.deepEqual(osCopiesOf(trader), [Number(match[1])]);
    assert.deepEqual((await app.store.read()).breaker, before, 'resumedAt moves only when a tripped breaker is cleared');
  });

  test('/bot duplicates lists a copy started outside PM2 (its key redacted from the command line), not the PM2 trader', async () => {
    const none = (await (await slash(bystander, 'bot', subcommand('duplicates'))).response()).embeds[0];
    assert.deepEqual([none.title, none.color], ['No duplicates', COLOURS.ok]);
    assert.match(String(none.description), /No duplicates: exactly one trader \(or none\) is running\./);

    const pid = await traderPid();
    // Started by hand with the key on its command line, as happens.
    const rogue = harness.spawnRogue([`--key=${keyId}`]);
    await waitForDuplicate(app, rogue.pid!);
    const reply = await (await slash(bystander, 'bot', subcommand('duplicates'))).response();
    assert.equal(reply.ephemeral, false, 'for the channel');
    const [embed] = reply.embeds;
    assert.deepEqual([embed.title, embed.color], ['1 duplicate(s)', COLOURS.critical]);
    const text = String(embed.description);
    assert.match(text, new RegExp(`PID ${rogue.pid}  outside PM2  started \\d{4}-`));
    assert.ok(text.includes(trader), `the command line names the script: ${text}`);
    assert.ok(text.includes('--key=[redacted]') && !text.includes(keyId), `the key is redacted: ${text}`);
    assert.ok(!text.includes(`PID ${pid} `), 'the PM2 trader is not a duplicate');
  });

  test('/bot stop-duplicates: confirmed, the copy outside PM2 is stopped and the PM2 trader is left alone', async () => {
    const pid = await traderPid();
    const [duplicate] = await app.supervisor.scanDuplicates();
    assert.ok(duplicate, 'the rogue of the previous test is still running');
    const rogue = duplicate.pid;
    const prompt = await (await slash(operator, 'bot', subcommand('stop-duplicates'))).response();
    assert.equal(prompt.content, `Stop 1 duplicate(s): PID ${rogue}?\n-# Only you can answer; expires in 5 s.`);
    const working = await (await click(operator, prompt.message, customIdLike(prompt.message, 'tw:confirm:'))).response();
    assert.equal(working.content, 'Stop duplicates: working…');
    const done = await editedTo(prompt.message, 'Stopped', 'the stop-duplicates result');
    assert.equal(done.content, `Stopped PID ${rogue} (SIGTERM).`);
    assert.ok(!isAlive(rogue), `the rogue PID ${rogue} is gone`);
    assert.ok(isAlive(pid), `the PM2 trader PID ${pid} is alive`);
    assert.deepEqual(osCopiesOf(trader), [pid], 'exactly one trader is left');
    const [entry] = await auditOf('stop-duplicates');
    assert.deepEqual([entry?.who, entry?.outcome, entry?.args], [`discord:${operator.user.id}`, 'ok', { pids: [rogue] }]);

    // With nothing to stop there is nothing to confirm.
    const again = await (await slash(operator, 'bot', subcommand('stop-duplicates'))).response();
    assert.equal(again.embeds[0].title, 'No duplicates');
    assert.deepEqual(again.components, [], 'no confirmation buttons');
  });

  test('/account shows equity, cash, day P/L and each position as the broker reports them', async () => {
    const { paper } = harness;
    paper.seedPosition('AAPL', 10, 200);
    paper.seedPosition('MSFT', -5, 400);
    paper.setPrice('AAPL', 210);
    paper.setLastEquity(1_000_500);
    const snapshot = paper.snapshot();
    assert.equal(snapshot.equity, 1_000_100, 'cash + 10 × 210 − 5 × 400');
    const reply = await (await slash(bystander, 'account')).response();
    assert.equal(reply.ephemeral, false);
    const [embed] = reply.embeds;
    assert.deepEqual([embed.title, embed.color], ['Account', COLOURS.warning]);
    assert.equal(fieldOf(embed, 'Equity'), '$1,000,100.00');
    assert.equal(fieldOf(embed, 'Cash'), money(snapshot.cash));
    assert.equal(fieldOf(embed, 'Day P/L'), '-$400.00');
    assert.match(fieldOf(embed, 'Buying power'), /^\$[\d,]+\.\d\d$/);
    assert.deepEqual(fieldOf(embed, 'Positions (2)').split('\n').sort(), ['`AAPL` 10 · $2,100.00 · P/L $100.00', '`MSFT` -5 · -$2,000.00 · P/L $0.00']);
  });

  test('/trades counts fills made at the broker against the limit, once each, critical over it, and says when it is stale', async () => {
    const { paper, clock } = harness;
    const empty = (await (await slash(bystander, 'trades')).response()).embeds[0];
    assert.equal(empty.title, 'Trades: 0/3 in the last hour');
    assert.match(String(empty.description), /No fills recorded yet\./);

    paper.placeOrder({ symbol: 'AAPL', side: 'buy', qty: 1, time_in_force: 'day' });
    clock.advance(60_000);
    paper.placeOrder({ symbol: 'MSFT', side: 'sell', qty: 2, time_in_force: 'day' });
    const two = (await (await slash(bystander, 'trades')).response()).embeds[0];
    assert.deepEqual([two.title, two.color], ['Trades: 2/3 in the last hour', COLOURS.ok]);
    const lines = String(two.description).split('\n');
    assert.match(lines[0], /^`2\/3 in the last hour [·▁-█]{6}`$/);
    assert.match(lines[2], /^<t:\d+:R> sell 2 `MSFT` @ 400$/, 'newest first');
    assert.match(lines[3], /^<t:\d+:R> buy 1 `AAPL` @ 210$/);

    // While the broker cannot be read, the figures are the last recorded ones, and say so.
    paper.failNext(422, 1, { path: '/v2/account/activities/FILL', message: 'activities are unavailable' });
    const stale = (await (await slash(bystander, 'trades')).response()).embeds[0];
    assert.deepEqual([stale.title, stale.color], ['Trades: 2/3 in the last hour', COLOURS.warning]);
    assert.match(String(stale.description), /\n⚠ Broker unreachable: showing what was last recorded \(broker GET \/v2\/account\/activities\/FILL answered 422: activities are unavailable\)\n/);
    assert.ok(String(stale.description).includes('sell 2 `MSFT` @ 400'), 'the recorded fills are still listed');

    clock.advance(60_000);
    paper.placeOrder({ symbol: 'AAPL', side: 'buy', qty: 3, time_in_force: 'day' });
    paper.placeOrder({ symbol: 'AAPL', side: 'sell', qty: 1, time_in_force: 'day' });
    const four = (await (await slash(bystander, 'trades')).response()).embeds[0];
    assert.deepEqual([four.title, four.color], ['Trades: 4/3 in the last hour', COLOURS.critical]);
    assert.ok(!String(four.description).includes('unreachable'), 'no stale note once the broker answers');
    assert.match(String(four.description), /^`4\/3 in the last hour OVER LIMIT /);
    // Asked again, the overlapping poll reads the same fills: still four.
    assert.equal((await (await slash(bystander, 'trades')).response()).embeds[0].title, 'Trades: 4/3 in the last hour');
    // The poll behind /trades is the trade watch's: crossing the limit raised the runaway alert.
    await discord.waitForChannelMessage(alertChannelId, (m) => m.embeds[0]?.title === 'Trade rate exceeded');
    assert.equal(harness.alertPosts('Trade rate exceeded').length, 1, 'one alert for the episode');
  });

  test('/alerts lists recent alerts newest first, shows a sink still pending, and honours count', async () => {
    await app.outbox.raise({ kind: 'process_down', severity: 'warning', key: 'cmd:delivered', title: 'Delivered alert', body: 'posted at once' });
    assert.equal(harness.alertPosts('Delivered alert').length, 1, 'posted');
    // Discord has a bad minute: past discord.js's retries, the outbox keeps it pending.
    const fault = discord.failNext({ method: 'POST', path: new RegExp(`^/channels/${alertChannelId}/messages$`), status: 500, count: 4 });
    await app.outbox.raise({ kind: 'process_down', severity: 'critical', key: 'cmd:late', title: 'Late alert', body: 'Discord was down' });
    assert.equal(fault.hits.length, 4, 'the post failed');

    const [embed] = (await (await slash(bystander, 'alerts')).response()).embeds;
    assert.deepEqual([embed.title, embed.color], ['Recent alerts', COLOURS.info]);
    const lines = String(embed.description).split('\n');
    assert.match(lines[0], /^<t:\d+:R> \*\*Late alert\*\* \(pending: discord\)$/);
    assert.match(lines[1], /^<t:\d+:R> \*\*Delivered alert\*\*$/);
    assert.ok(lines.some((l) => /\*\*Trade rate exceeded\*\*$/.test(l)), `older alerts follow: ${lines.join(' | ')}`);

    const one = (await (await slash(bystander, 'alerts', [{ type: 4, name: 'count', value: 1 }])).response()).embeds[0];
    assert.deepEqual(String(one.description).split('\n').length, 1, 'count: 1 shows one alert');
    assert.match(String(one.description), /\*\*Late alert\*\*/);
  });

  test('an alert delivered late says so in its embed footer; /alerts no longer shows it pending', async () => {
    assert.equal(harness.alertPosts('Late alert').length, 0, 'not posted yet');
    harness.clock.advance(90_000);
    await app.outbox.deliverDue();
    const [late] = harness.alertPosts('Late alert');
    assert.ok(late, 'posted once Discord answered');
    assert.equal((late.embeds[0].footer as JsonObject).text, 'process_down · delivered 1m 30s late');
    const [onTime] = harness.alertPosts('Delivered alert');
    assert.equal((onTime.embeds[0].footer as JsonObject).text, 'process_down', 'an alert on time has no lateness note');
    await app.outbox.deliverDue();
    assert.equal(harness.alertPosts('Late alert').length, 1, 'posted exactly once');

    const [embed] = (await (await slash(bystander, 'alerts', [{ type: 4, name: 'count', value: 2 }])).response()).embeds;
    assert.match(String(embed.description), /^<t:\d+:R> \*\*Late alert\*\*\n/, 'no longer pending');
  });

  test('no request the stand-in saw, and no log line, carries the token or a broker key', () => {
    for (const request of discord.requests) {
      const body = JSON.stringify(request.body ?? '') + JSON.stringify(request.query) + request.path;
      for (const secret of [discord.token, keyId, secretKey]) assert.ok(!body.includes(secret), `${request.method} ${request.path} carries a secret`);
    }
    assert.deepEqual(discord.unexpectedRequests.map((r) => `${r.method} ${r.path}`), []);
    for (const line of harness.logLines) for (const secret of [discord.token, keyId, secretKey]) assert.ok(!line.includes(secret), `log line carries a secret: ${line}`);
  });
});
