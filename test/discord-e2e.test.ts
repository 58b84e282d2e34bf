// The Discord front end to end: the real discord.js client logged in to the local Discord stand-in,
// the real app (core, outbox, store) with a real PM2 daemon in a temp PM2_HOME and the local paper
// broker. The tests play the users (slash commands, button clicks) and read what the bot answered,
// what it registered and what it posted. One PM2 daemon serves the file; it is ended by its PID.
// Each test sets up what it needs (the trader running or not, the positions, this hour's trades,
// the front without operators), so any one runs alone: --test-name-pattern '/bot logs'.
// Every assert.ok has a message: without one, node 20's assert re-reads the source to quote the
// expression, and under tsx (columns of the transformed code) that can spin for minutes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ButtonBuilder, ButtonStyle, ActionRowBuilder, PermissionFlagsBits, REST, Routes, type TextChannel } from 'discord.js';
import type { App } from '../src/app.ts';
import type { ManualClock } from '../src/clock.ts';
import { parseConfig } from '../src/config.ts';
import { COLOURS } from '../src/discord/render.ts';
import type { PaperBroker } from '../testkit/paper-broker.ts';
import { fill } from '../testkit/fills.ts';
import type { DiscordStandIn, JsonObject, StandInInteraction, StandInMessage } from '../testkit/discord/discord.ts';
import { isAlive, waitFor, type TempHome } from '../testkit/pm2-home.ts';
import {
  EPHEMERAL,
  alertChannelId,
  alertRoleId,
  applicationId,
  buttonsOf,
  bystander,
  customIdLike,
  fieldOf,
  guildId,
  keyId,
  operator,
  operatorActor,
  opsChannelId,
  secretKey,
  startDiscordHarness,
  subcommand,
  waitForDuplicate,
  type DiscordHarness,
  type Front,
  type Member,
} from './helpers/discord-app.ts';

const CONFIRM_TIMEOUT_MS = 2000;

describe('Discord front, end to end (discord.js + stand-in + PM2 + paper broker)', () => {
  let harness: DiscordHarness;
  let home: TempHome;
  let discord: DiscordStandIn;
  let paper: PaperBroker;
  let app: App;
  let front: Front;
  let clock: ManualClock;
  let logLines: string[];
  let other: App | undefined; // the app of the restarted front: no operators, STATUS_MESSAGE=on

  const slash = (member: Member, name: string, options?: JsonObject[]): Promise<StandInInteraction> => harness.slash(member, name, options);
  const click = (member: Member, message: StandInMessage | string, customId: string): Promise<StandInInteraction> => harness.click(member, message, customId);
  const auditOf = (what: string) => harness.auditOf(what);
  const alertPosts = (title: string) => harness.alertPosts(title);

  // ---- set-up helpers: each test states what it needs ----

  /** The trader online under PM2 (started by the operator if it is not): its PID. */
  const traderRunning = async (): Promise<number> => {
    const status = await app.supervisor.status();
    if (status.state === 'online' && status.pid) return status.pid;
    return (await app.core.start(operatorActor)).pid;
  };
  const traderNotRunning = async (): Promise<void> => {
    if ((await app.supervisor.status()).state === 'online') await app.core.stop(operatorActor);
  };
  /** The broker holds exactly these positions (seeded: no fills, nothing for the trade count). */
  const holding = (...positions: Array<[symbol: string, qty: number, price: number]>): void => {
    for (const p of paper.snapshot().positions) paper.seedPosition(String(p.symbol), 0, Number(p.current_price));
    for (const [symbol, qty, price] of positions) paper.seedPosition(symbol, qty, price);
  };
  /** This hour's trades are exactly these fills, so many minutes ago on the app's clock. */
  const tradesThisHour = async (minutesAgo: number[]): Promise<void> => {
    clock.advance(3600_000 + 1); // the trades recorded so far leave the rolling hour (the ledger keeps them)
    const now = clock.now();
    await app.store.update((data) => {
      app.store.recordFills(data, minutesAgo.map((m, i) => fill(`set-up-${now}-${i}`, 'AAPL', 'buy', 1, 200, now - m * 60_000)));
    });
  };
  /** The front restarted without operators and with STATUS_MESSAGE=on (once; later tests reuse it). */
  const frontWithoutOperators = async (): Promise<App> => {
    if (other) return other;
    await front.stop();
    const env = harness.envFor({ DISCORD_OPERATOR_ROLE_IDS: undefined, DISCORD_OPERATOR_USER_IDS: undefined, STATUS_MESSAGE: 'on' });
    const config = parseConfig(env);
    assert.deepEqual([config.discord.operatorRoleIds, config.discord.operatorUserIds], [[], []]);
    other = harness.makeApp(config, env);
    await harness.startFront(other, { statusCheckMs: 100 });
    return other;
  };

  before(async () => {
    harness = await startDiscordHarness({ prefix: 'tw-dc-', confirmTimeoutMs: CONFIRM_TIMEOUT_MS });
    ({ home, discord, paper, app, front, clock, logLines } = harness);
  });

  after(async () => {
    await harness?.close();
  });

  test('registers every command in the guild, with descriptions, limits, guild-only contexts and a permission gate on /flatten', () => {
    assert.deepEqual(discord.commands(), [], 'nothing global');
    const commands = discord.commands(guildId);
    assert.deepEqual(commands.map((c) => c.name).sort(), ['account', 'alerts', 'bot', 'digest', 'flatten', 'pnl', 'trades']);
    for (const command of commands) {
      assert.ok(String(command.description).length > 10, `/${command.name} has a description`);
      assert.deepEqual(command.contexts, [0], `/${command.name} is guild-only`);
    }
    const byName = new Map(commands.map((c) => [c.name, c]));
    const bot = byName.get('bot')!;
    const subs = bot.options as JsonObject[];
    assert.deepEqual(subs.map((s) => s.name), ['status', 'start', 'stop', 'restart', 'resume', 'lock', 'unlock', 'logs', 'duplicates', 'stop-duplicates']);
    assert.ok(subs.every((s) => s.type === 1 && String(s.description).length > 5), 'every subcommand is a described subcommand');
    const lines = (subs.find((s) => s.name === 'logs')!.options as JsonObject[])[0];
    assert.deepEqual([lines.name, lines.type, lines.min_value, lines.max_value, lines.required ?? false], ['lines', 4, 1, 200, false]);
    const count = (byName.get('alerts')!.options as JsonObject[])[0];
    assert.deepEqual([count.name, count.min_value, count.max_value], ['count', 1, 25]);
    // /bot mixes read-only and operator subcommands: members must see it; the router checks per subcommand.
    assert.equal(bot.default_member_permissions, null);
    assert.equal(byName.get('flatten')!.default_member_permissions, String(PermissionFlagsBits.ManageGuild));
    assert.equal(byName.get('account')!.default_member_permissions, null);
  });

  test('/bot start by a non-operator is refused ephemerally, audited, and starts nothing', async () => {
    await traderNotRunning();
    const run = await slash(bystander, 'bot', subcommand('start'));
    const reply = await run.response();
    assert.equal(reply.type, 4);
    assert.ok(reply.ephemeral, 'the refusal is ephemeral');
    assert.match(reply.content, /Only operators can run \/bot start\. Ask someone with an operator role\./);
    const refused = await waitFor(async () => (await auditOf('start')).find((e) => e.who === `discord:${bystander.user.id}`), { what: 'the refusal in the audit log' });
    assert.equal(refused.outcome, 'refused');
    const after = await app.supervisor.status();
    assert.ok(after.state !== 'online' && after.pid === undefined, `nothing was started (${after.state})`);
  });

  test('/bot start by an operator starts the trader under PM2 (deferred, then the result)', async () => {
    await traderNotRunning();
    const run = await slash(operator, 'bot', subcommand('start'));
    const reply = await run.response();
    assert.equal(run.callbacks[0]?.type, 5, 'deferred first: a start takes more than a second');
    const pid = Number(/Started trading-bot \(PID (\d+)\)\./.exec(reply.content)?.[1]);
    assert.ok(pid > 0, reply.content);
    assert.ok(isAlive(pid), `PID ${pid} is alive`);
    const status = await app.supervisor.status();
    assert.deepEqual([status.state, status.pid, status.duplicates.length], ['online', pid, 0]);
    const [entry] = await auditOf('start');
    assert.deepEqual([entry?.who, entry?.outcome], [`discord:${operator.user.id}`, 'ok']);
  });

  test('/bot start while running is refused by the core: a short ephemeral follow-up, no public trace', async () => {
    await traderRunning();
    const run = await slash(operator, 'bot', subcommand('start'));
    const followUp = await run.waitForFollowUp();
    assert.equal(followUp.flags & EPHEMERAL, EPHEMERAL);
    assert.match(followUp.content, /^Refused: trading-bot is already running \(pid \d+, online\)/);
    await discord.waitFor(() => (run.original?.deleted ? true : undefined), 'the public "thinking…" to be deleted');
  });

  test('/bot status shows state, PID, trades against the limit with a sparkline, breaker and account', async () => {
    const pid = await traderRunning(); // started by the operator: the footer says who wants it running
    // Two fills in the last ten minutes and one 25 minutes ago, on the app's clock.
    await tradesThisHour([25, 5, 1]);
    const now = clock.now();
    holding(['AAPL', 10, 200]);
    await app.accountWatch!.refresh(); // what the controller's watch does on its cadence
    paper.setDelay(5000); // status answers from those figures: a slow broker does not hold it up
    const run = await slash(bystander, 'bot', subcommand('status'));
    const reply = await run.response();
    paper.setDelay(0);
    assert.equal(run.callbacks[0]?.type, 5);
    assert.equal(reply.ephemeral, false, 'status is for the channel');
    const [embed] = reply.embeds;
    assert.equal(embed.title, 'trading-bot: online');
    assert.equal(embed.color, COLOURS.ok);
    assert.equal(fieldOf(embed, 'PID'), String(pid));
    assert.equal(fieldOf(embed, 'Trades (1h)'), '3/3 `···▅·█`');
    assert.equal(fieldOf(embed, 'Breaker'), 'ok');
    assert.equal(fieldOf(embed, 'Duplicates'), 'none');
    assert.match(fieldOf(embed, 'Account'), new RegExp(`^\\$[\\d,]+\\.\\d\\d \\(day -?\\$[\\d,.]+\\), 1 position\\(s\\), read <t:${Math.floor(now / 1000)}:R>$`));
    assert.match(String((embed.footer as JsonObject).text), /wanted running \(by discord:1500000000000000001\)/);
  });

  test('/bot logs shows the trader\'s log in a code block with every secret redacted', async () => {
    await traderRunning();
    const outLog = path.join(home.dataDir, 'logs', 'trading-bot.out.log');
    await waitFor(() => fs.existsSync(outLog) && fs.readFileSync(outLog, 'utf8').includes('fixture-trader pid='), { what: 'the trader\'s first line in its log' });
    const raw = fs.readFileSync(outLog, 'utf8');
    assert.ok(raw.includes(keyId), 'the trader really printed the key (else this test proves nothing)');
    const run = await slash(bystander, 'bot', subcommand('logs', [{ type: 4, name: 'lines', value: 20 }]));
    const reply = await run.response();
    assert.match(reply.content, /^```\n[\s\S]*\n```$/);
    assert.match(reply.content, /key=\[redacted\] secret=\[redacted\]/);
    assert.ok(!reply.content.includes(keyId) && !reply.content.includes(secretKey) && !reply.content.includes(discord.token), 'no secret in the reply');
    assert.ok(reply.content.length <= 2000, 'within Discord\'s 2000 characters');
  });

  test('/flatten by an operator: a bystander\'s click is refused, a double click flattens once, the report replaces the prompt', async () => {
    holding(['AAPL', 10, 200], ['MSFT', -5, 400]);
    const traderPid = await traderRunning();
    const flattensBefore = (await auditOf('flatten')).length;
    const resultsBefore = alertPosts('Flatten done: account is flat').length;
    clock.advance(1000);

    const run = await slash(operator, 'flatten');
    const prompt = await run.response();
    assert.match(prompt.content, /\*\*Flatten the account\?\*\*[\s\S]*Only you can answer; expires in 2 s\./);
    const confirmId = customIdLike(prompt.message, 'tw:confirm:');
    customIdLike(prompt.message, 'tw:cancel:');

    const stranger = await click(bystander, prompt.message, confirmId);
    const refusal = await stranger.response();
    assert.ok(refusal.ephemeral, 'ephemeral');
    assert.equal(refusal.content, `Only <@${operator.user.id}>, who asked, can answer this.`);
    assert.deepEqual(refusal.message.mentions, [], 'naming the operator does not ping them');
    assert.equal(buttonsOf(discord.message(prompt.message.id)!).length, 2, 'the prompt is still open');
    assert.equal(paper.snapshot().positions.length, 2, 'nothing done');

    // Both clicks reach the bot before it has answered either (a double click).
    const [first, second] = await Promise.all([click(operator, prompt.message, confirmId), click(operator, prompt.message, confirmId)]);
    const firstAnswer = await first.response();
    assert.equal(firstAnswer.type, 7, 'the confirm click updates the prompt in place');
    assert.equal(firstAnswer.content, 'Flatten now: working…');
    assert.deepEqual(firstAnswer.components, []);
    const secondAnswer = await second.response();
    assert.ok(secondAnswer.ephemeral, 'ephemeral');
    assert.equal(secondAnswer.content, 'This button has expired or was already used: nothing was done.');

    const report = await discord.waitFor(() => (discord.message(prompt.message.id)?.embeds[0]?.title ? discord.message(prompt.message.id) : undefined), 'the flatten report');
    assert.equal(report.embeds[0].title, 'Flatten: account is flat');
    assert.equal(report.content, '');
    assert.deepEqual(report.components, []);
    const text = String(report.embeds[0].description);
    assert.match(text, /FLAT: the broker shows no positions/);
    assert.match(text, /✔ AAPL\s+qty\s+10\s+closed/);
    assert.match(text, /✔ MSFT\s+qty\s+-5\s+closed/);
    assert.match(text, new RegExp(`Trader: stopped \\(PID ${traderPid}\\)`));
    assert.deepEqual(paper.snapshot().positions, [], 'the broker shows flat');
    assert.ok(!isAlive(traderPid), 'the trader was stopped first');

    const flattens = await auditOf('flatten');
    assert.equal(flattens.length, flattensBefore + 1, 'flatten ran once');
    assert.deepEqual([flattens[0].who, flattens[0].outcome], [`discord:${operator.user.id}`, 'ok']);
    const result = await discord.waitFor(() => alertPosts('Flatten done: account is flat')[resultsBefore], 'the flatten result alert');
    assert.match(String(result.embeds[0].description), /Requested by operator\. 2 position\(s\) before/);
    assert.equal(alertPosts('Flatten done: account is flat').length, resultsBefore + 1, 'one flatten, one result alert');
  });

  test('/flatten cancel: the prompt says so, nothing is done', async () => {
    holding(['AAPL', 3, 200]);
    const flattensBefore = (await auditOf('flatten')).length;
    const run = await slash(operator, 'flatten');
    const prompt = await run.response();
    const cancel = await click(operator, prompt.message, customIdLike(prompt.message, 'tw:cancel:'));
    const answer = await cancel.response();
    assert.equal(answer.type, 7);
    assert.equal(answer.content, 'Cancelled: nothing was done.');
    assert.deepEqual(discord.message(prompt.message.id)!.components, []);
    assert.equal(paper.snapshot().positions.length, 1);
    assert.equal((await auditOf('flatten')).length, flattensBefore);
  });

  test('/flatten expiry: after the time-out the buttons are removed and nothing is done', async () => {
    holding(['AAPL', 3, 200]);
    const flattensBefore = (await auditOf('flatten')).length;
    const run = await slash(operator, 'flatten');
    const prompt = await run.response();
    assert.equal(buttonsOf(prompt.message).length, 2);
    const expired = await discord.waitFor(
      () => (discord.message(prompt.message.id)?.content.startsWith('Expired') ? discord.message(prompt.message.id) : undefined),
      'the prompt to expire',
      CONFIRM_TIMEOUT_MS + 5000,
    );
    assert.equal(expired.content, 'Expired after 2 s: nothing was done.');
    assert.deepEqual(expired.components, []);
    assert.equal(paper.snapshot().positions.length, 1, 'the AAPL position is still held');
    assert.equal((await auditOf('flatten')).length, flattensBefore);
  });

  test('/flatten with a report too long for one message: the answer replaces the prompt and follow-ups carry the rest, every held symbol listed', async () => {
    const symbols = Array.from({ length: 300 }, (_, i) => `Q${String(i).padStart(3, '0')}`);
    holding(['AAPL', 3, 200], ...symbols.map((symbol): [string, number, number] => [symbol, 1, 10]));
    paper.setMarketOpen(false); // every closing order is queued, so every symbol is listed as still open
    try {
      const run = await slash(operator, 'flatten');
      const prompt = await run.response();
      await (await click(operator, prompt.message, customIdLike(prompt.message, 'tw:confirm:'))).response();
      const report = await discord.waitFor(() => (discord.message(prompt.message.id)?.embeds[0]?.title ? discord.message(prompt.message.id) : undefined), 'the flatten report', 20_000);
      assert.equal(report.embeds[0].title, 'Flatten: NOT flat');
      assert.deepEqual(report.components, []);
      await run.waitForFollowUp((m) => m.embeds.some((e) => /^Still open \((\d+)\/\1\)$/.test(String(e.title))), 20_000);
      assert.ok(run.followUps.length >= 1, 'the rest of the report came as follow-up messages');
      const shown = [report, ...run.followUps].flatMap((m) => m.embeds).map((e) => String(e.description)).join('\n');
      const missing = [...symbols, 'AAPL'].filter((symbol) => !shown.includes(symbol));
      assert.deepEqual(missing, [], 'no held symbol is lost to Discord\'s limits');
      for (const message of [report, ...run.followUps]) assert.ok(message.embeds.length <= 10, 'at most 10 embeds a message');
    } finally {
      paper.setMarketOpen(true);
      await app.core.flatten({ id: 'test:cleanup', name: 'cleanup', isOperator: true });
    }
    assert.deepEqual(paper.snapshot().positions, [], 'flat again');
  });

  test('an alert is posted in the alert channel, mentioning only the alert role', async () => {
    const alert = await app.outbox.raise({
      kind: 'trade_rate_exceeded',
      severity: 'critical',
      key: 'e2e:runaway',
      title: 'Runaway trading: 5 fills in the last hour',
      body: 'Limit is 3. @everyone <@&1400000000000000003> <@1500000000000000002> should not be pinged by this text.',
      facts: { count: 5 },
    });
    assert.ok(alert, 'raised (not suppressed)');
    const posted = await discord.waitForChannelMessage(alertChannelId, (m) => m.embeds[0]?.title === alert.title);
    assert.equal(posted.content, `<@&${alertRoleId}>`);
    assert.deepEqual(posted.allowed_mentions, { parse: [], roles: [alertRoleId] });
    assert.deepEqual(posted.mention_roles, [alertRoleId]);
    assert.deepEqual(posted.mentions, []);
    assert.equal(posted.mention_everyone, false);
    assert.equal(posted.embeds[0].color, COLOURS.critical);
    assert.deepEqual(posted.components, [], 'no button on a trade-rate alert');
    const stored = (await app.outbox.recent(50)).find((a) => a.id === alert.id)!;
    assert.equal(stored.deliveries.discord?.ref, posted.id);
    assert.equal(stored.deliveries.discord?.attempts, 1);
    const request = discord.requests.find((r) => r.method === 'POST' && r.path === `/channels/${alertChannelId}/messages` && (r.body as JsonObject)?.nonce);
    assert.equal((request?.body as JsonObject).enforce_nonce, true, 'a retried post cannot be doubled by Discord');
  });

  test('a duplicate found outside PM2 raises an alert with a Stop duplicates button that only operators can use, confirmed', async () => {
    const rogue = harness.spawnRogue();
    const rogueExited = new Promise<void>((resolve) => rogue.once('exit', () => resolve()));
    await waitForDuplicate(app, rogue.pid!);
    await app.processWatch.scan(); // the watch job raises the alert
    const posted = await discord.waitForChannelMessage(alertChannelId, (m) => m.embeds[0]?.title === 'Duplicate trading process');
    assert.match(String(posted.embeds[0].description), new RegExp(`PID ${rogue.pid} \\(outside PM2\\)`));
    const buttonId = customIdLike(posted, 'tw:stopdups:');
    assert.equal(buttonId, `tw:stopdups:${rogue.pid}`);
    assert.equal(buttonsOf(posted)[0].label, 'Stop duplicates');

    const refused = await (await click(bystander, posted, buttonId)).response();
    assert.ok(refused.ephemeral, 'ephemeral');
    assert.match(refused.content, /^Only operators can stop duplicates\./);
    assert.ok(isAlive(rogue.pid!), 'a refused click stops nothing');
    // The refusal is answered first (Discord's 3 s), then audited.
    const audited = await waitFor(async () => (await auditOf('stop-duplicates'))[0], { what: 'the refusal in the audit log' });
    assert.deepEqual([audited.who, audited.outcome], [`discord:${bystander.user.id}`, 'refused']);

    const asked = await click(operator, posted, buttonId);
    const prompt = await asked.response();
    assert.ok(prompt.ephemeral, 'the confirmation is only for the operator');
    assert.match(prompt.content, new RegExp(`Stop 1 duplicate\\(s\\): PID ${rogue.pid}\\?`));
    const confirm = await click(operator, prompt.message, customIdLike(prompt.message, 'tw:confirm:'));
    assert.equal((await confirm.response()).content, 'Stop duplicates: working…');
    const result = await discord.waitFor(
      () => (discord.message(prompt.message.id)?.content.startsWith('Stopped') ? discord.message(prompt.message.id) : undefined),
      'the stop-duplicates result',
    );
    assert.equal(result.content, `Stopped PID ${rogue.pid} (SIGTERM).`);
    await rogueExited;
    const [done] = await auditOf('stop-duplicates');
    assert.deepEqual([done?.who, done?.outcome, done?.args], [`discord:${operator.user.id}`, 'ok', { pids: [rogue.pid] }]);
  });

  test('the gateway dropped repeatedly (clean and abnormal closes): the client resumes each time and still answers /bot status', async () => {
    await traderNotRunning();
    const title = (await (await slash(bystander, 'bot', subcommand('status'))).response()).embeds[0].title;
    assert.match(String(title), /^trading-bot: /, 'the status embed before the drops');
    for (let drop = 1; drop <= 5; drop++) {
      const resumes = discord.gateway.resumes.filter((r) => r.accepted).length;
      discord.dropConnection(drop % 2 === 0 ? { abnormal: true } : undefined);
      await discord.waitForResume(resumes);
      const run = await slash(bystander, 'bot', subcommand('status'));
      assert.equal((await run.response()).embeds[0].title, title, `answered after drop #${drop}`);
    }
    assert.equal(discord.gateway.identifies.length, 1, 'resumed every time, never re-identified');
  });

  test('a 429 on an alert post is waited out: delivered once, later', async () => {
    const pending = (await app.outbox.recent(100)).filter((a) => a.deliveries.discord && a.deliveries.discord.deliveredAt === undefined);
    assert.deepEqual(pending.map((a) => a.title), [], 'nothing else is waiting to be posted');
    const fault = discord.failNext({ method: 'POST', path: new RegExp(`^/channels/${alertChannelId}/messages$`), status: 429, retryAfter: 0.3 });
    const alert = (await app.outbox.raise({ kind: 'process_down', severity: 'warning', key: 'e2e:429', title: 'Alert through a 429', body: 'rate limited once' }))!;
    const posts = discord.requests.filter((r) => r.method === 'POST' && r.path === `/channels/${alertChannelId}/messages` && (r.body as JsonObject)?.embeds);
    const mine = posts.filter((r) => JSON.stringify(r.body).includes('Alert through a 429'));
    assert.deepEqual(mine.map((r) => r.status), [429, 200]);
    assert.equal(fault.hits.length, 1);
    assert.ok(mine[1].at - mine[0].at >= 250, `posted after retry_after (${mine[1].at - mine[0].at} ms later)`);
    assert.equal(alertPosts('Alert through a 429').length, 1);
    const stored = (await app.outbox.recent(100)).find((a) => a.id === alert.id)!;
    assert.equal(stored.deliveries.discord?.attempts, 1, 'discord.js waited; the outbox saw one attempt');
    assert.ok(stored.deliveries.discord?.deliveredAt !== undefined, 'delivered');
  });

  test('a 500 on an alert post (past discord.js\'s retries) is retried by the outbox: delivered once, later', async () => {
    const path500 = new RegExp(`^/channels/${alertChannelId}/messages$`);
    const fault = discord.failNext({ method: 'POST', path: path500, status: 500, count: 4 });
    const alert = (await app.outbox.raise({ kind: 'process_down', severity: 'critical', key: 'e2e:500', title: 'Alert through a 500', body: 'Discord had a bad minute' }))!;
    assert.equal(fault.hits.length, 4, 'one try and three retries inside discord.js');
    let stored = (await app.outbox.recent(100)).find((a) => a.id === alert.id)!;
    const delivery = stored.deliveries.discord!;
    assert.equal(delivery.deliveredAt, undefined);
    assert.equal(delivery.attempts, 1);
    assert.equal(delivery.nextAttemptAt, clock.now() + 2000, 'retried after the outbox back-off');
    assert.ok(delivery.lastError && !delivery.lastError.includes(discord.token), `the failure is recorded without the token: ${delivery.lastError}`);
    assert.equal(alertPosts('Alert through a 500').length, 0);

    const requestsBefore = discord.requests.length;
    await app.outbox.deliverDue();
    assert.equal(discord.requests.length, requestsBefore, 'not due yet: no post');
    clock.advance(2000);
    await app.outbox.deliverDue();
    await app.outbox.deliverDue();
    assert.equal(alertPosts('Alert through a 500').length, 1, 'exactly one message');
    stored = (await app.outbox.recent(100)).find((a) => a.id === alert.id)!;
    assert.equal(stored.deliveries.discord?.deliveredAt, clock.now());
    assert.equal(stored.deliveries.discord?.attempts, 2);
    assert.equal(stored.deliveries.discord?.ref, alertPosts('Alert through a 500')[0].id);
  });

  test('an unknown command and stale or foreign buttons get a polite ephemeral answer', async () => {
    // A command left registered by an older version (the test plays the stale deployment).
    const rest = new REST({ version: '10', api: discord.apiUrl }).setToken(discord.token);
    await rest.post(Routes.applicationGuildCommands(applicationId, guildId), { body: { name: 'retired', description: 'A command this version no longer has' } });
    const unknown = await (await slash(bystander, 'retired')).response();
    assert.ok(unknown.ephemeral, 'ephemeral');
    assert.match(unknown.content, /^I don't know \/retired \(any more\)\./);

    const channel = (await front.client.channels.fetch(opsChannelId)) as TextChannel;
    const old = await channel.send({
      content: 'An old prompt',
      components: [
        new ActionRowBuilder<ButtonBuilder>().addComponents(
          new ButtonBuilder().setCustomId('tw:confirm:00000000deadbeef').setLabel('Flatten now').setStyle(ButtonStyle.Danger),
          new ButtonBuilder().setCustomId('v0:restart').setLabel('Restart').setStyle(ButtonStyle.Primary),
        ),
      ],
    });
    const stale = await (await click(operator, old.id, 'tw:confirm:00000000deadbeef')).response();
    assert.ok(stale.ephemeral, 'ephemeral');
    assert.equal(stale.content, 'This button has expired or was already used: nothing was done.');
    const foreign = await (await click(operator, old.id, 'v0:restart')).response();
    assert.ok(foreign.ephemeral, 'ephemeral');
    assert.equal(foreign.content, "This button isn't mine or is from an older version; nothing was done.");
  });

  test('a broker error is answered without a stack trace or a key, even when the broker echoes the key', async () => {
    holding(['AAPL', 3, 200]);
    paper.failNext(422, 1, { path: '/v2/account', message: `account for key ${keyId} is not permitted` });
    const run = await slash(bystander, 'account');
    const followUp = await run.waitForFollowUp();
    assert.equal(followUp.flags & EPHEMERAL, EPHEMERAL);
    assert.match(followUp.content, /^Failed: broker .*422.*\[redacted\]/);
    assert.ok(!followUp.content.includes(keyId), 'no key in the answer');
    // And without the fault: the account embed.
    const ok = await (await slash(bystander, 'account')).response();
    assert.equal(ok.embeds[0].title, 'Account');
    assert.match(fieldOf(ok.embeds[0], 'Positions (1)'), /`AAPL` 3/);
  });

  test('with no operators configured, a change is refused with the hint (and the front restarts cleanly)', async () => {
    // A prompt left open when the controller stops must not stay clickable.
    const open = await (await slash(operator, 'flatten')).response();
    await front.stop();
    const closed = discord.message(open.message.id)!;
    assert.deepEqual(closed.components, [], 'the open prompt lost its buttons at shutdown');
    assert.match(closed.content, /nothing was done/);

    const identifiesBefore = discord.gateway.identifies.length;
    const restarted = await frontWithoutOperators();
    assert.equal(discord.gateway.identifies.length, identifiesBefore + 1, 'the new front logged in once');
    const refused = await (await slash(operator, 'bot', subcommand('start'))).response();
    assert.ok(refused.ephemeral, 'ephemeral');
    assert.equal(refused.content, 'Only operators can run /bot start. No operators are configured: set DISCORD_OPERATOR_USER_IDS or DISCORD_OPERATOR_ROLE_IDS on the controller.');
    const entry = await waitFor(async () => (await auditOf('start')).find((e) => e.who === `discord:${operator.user.id}` && e.message === 'not an operator'), {
      what: 'the refusal in the audit log',
    });
    assert.equal(entry.outcome, 'refused');
    const after = await restarted.supervisor.status();
    assert.ok(after.state !== 'online' && after.pid === undefined, `nothing started (${after.state})`);
    // Reads stay open to everyone.
    const title = String((await (await slash(bystander, 'bot', subcommand('status'))).response()).embeds[0].title);
    assert.ok(title.startsWith('trading-bot: ') && title !== 'trading-bot: online', `the status, to a bystander: ${title}`);
  });

  test('STATUS_MESSAGE=on keeps one status message in the alert channel, edited in place on a change', async () => {
    const other = await frontWithoutOperators();
    await tradesThisHour([25, 5, 1]);
    const isStatus = (m: StandInMessage) => m.source === 'channel' && String(m.embeds[0]?.title ?? '').startsWith('trading-bot:');
    const posted = await discord.waitForChannelMessage(alertChannelId, isStatus);
    await discord.waitFor(
      () => (fieldOf(discord.message(posted.id)!.embeds[0], 'Trades (1h)').split(' ')[0] === '3/3' ? true : undefined),
      'the status message to show the three trades',
    );
    // Remembered in the data file, so a restarted controller edits the same message.
    await waitFor(async () => (await other.store.read()).discord.statusMessageId === posted.id, { what: 'the status message id in the store' });
    const edits = () => discord.requests.filter((r) => r.method === 'PATCH' && r.path === `/channels/${alertChannelId}/messages/${posted.id}`).length;
    const editsBefore = edits();
    await other.store.update((data) => {
      other.store.recordFills(data, [fill('o4', 'MSFT', 'sell', 2, 401, clock.now())]);
    });
    const edited = await discord.waitFor(
      () => (fieldOf(discord.message(posted.id)!.embeds[0], 'Trades (1h)').startsWith('4/3') ? discord.message(posted.id) : undefined),
      'the status message to show the fourth trade',
    );
    assert.equal(edited.embeds[0].color, COLOURS.critical, 'over the limit shows as a problem');
    assert.ok(edits() > editsBefore, 'edited, not re-posted');
    assert.equal(discord.channelMessages(alertChannelId).filter(isStatus).length, 1, 'one status message');
  });

  test('no request the stand-in saw carries the token or a broker key, or a stack trace', async () => {
    // Its own requests to check, beside whatever the tests before it made: reads anyone may run.
    const requestsBefore = discord.requests.length;
    for (const [name, options] of [['bot', subcommand('status')], ['bot', subcommand('logs')], ['account', undefined], ['alerts', undefined]] as const) {
      await (await slash(bystander, name, options)).response();
    }
    const stackFrame = /\n\s+at .+:\d+:\d+|node:internal|\.ts:\d+:\d+/;
    for (const request of discord.requests) {
      const body = JSON.stringify(request.body ?? '') + JSON.stringify(request.query) + request.path;
      for (const secret of [discord.token, keyId, secretKey]) assert.ok(!body.includes(secret), `${request.method} ${request.path} carries a secret`);
      assert.ok(!stackFrame.test(body), `${request.method} ${request.path} carries a stack trace: ${body.slice(0, 300)}`);
    }
    assert.ok(discord.requests.length > requestsBefore, 'the commands above made requests to check');
    assert.deepEqual(discord.unexpectedRequests.map((r) => `${r.method} ${r.path}`), []);
    for (const line of logLines) for (const secret of [discord.token, keyId, secretKey]) assert.ok(!line.includes(secret), `log line carries a secret: ${line}`);
  });
});
