// The digest (DIGEST_CRON, /digest, `tradewarden digest`) with real parts: the paper broker over HTTP
// on the app's ManualClock (fills, prices and the equity history it records), a real PM2 daemon in a
// temp PM2_HOME (ended by its PID), the data file, and real controllers started and stopped on one
// DATA_DIR. The schedule follows the clock: each test moves it to a due time and runs the job, or
// starts a controller, instead of waiting for real cron minutes.
// Every assert.ok carries a message (node 20's expression quoting can spin under tsx).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { buildApp, type App } from '../src/app.ts';
import { ManualClock } from '../src/clock.ts';
import { ConfigError, parseConfig } from '../src/config.ts';
import { startController, type Controller } from '../src/controller.ts';
import type { DigestReport } from '../src/core/digest.ts';
import { createLogger } from '../src/log.ts';
import { digestText } from '../src/render/digest-text.ts';
import { CronCalendar } from '../src/watch/cron-calendar.ts';
import { startPaperBroker, type PaperBroker } from '../testkit/paper-broker.ts';
import { makeTempHome, waitFor, type TempHome } from '../testkit/pm2-home.ts';

const KEY = 'PKDIGESTTEST';
const SECRET = 'SKDIGESTTESTSECRET0123';
const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const BERLIN = { DIGEST_CRON: '0 21 * * *', DIGEST_TZ: 'Europe/Berlin' };

let home: TempHome;
const apps: App[] = [];
const controllers: Controller[] = [];
const brokers: PaperBroker[] = [];

before(() => {
  home = makeTempHome('tw-dig-');
});

after(async () => {
  for (const controller of controllers) await controller.stop().catch(() => undefined);
  for (const app of apps) await app.close().catch(() => undefined);
  for (const broker of brokers) await broker.close();
  await home?.cleanup();
});

/** A data dir of its own under the file's temp home, and the environment a controller there reads. */
function envFor(paper: PaperBroker, name: string, extra: Record<string, string> = {}): Record<string, string> {
  const dataDir = path.join(home.root, name);
  fs.mkdirSync(dataDir, { recursive: true });
  return {
    APCA_API_BASE_URL: paper.url,
    APCA_API_KEY_ID: KEY,
    APCA_API_SECRET_KEY: SECRET,
    PM2_HOME: home.pm2Home,
    DATA_DIR: dataDir,
    HOME: home.root,
    FOREIGN_TRADING: 'off',
    ...extra,
  };
}

/** `tradewarden <args>` as a user runs it (bin/tradewarden.cjs), with only `env` and PATH. */
function cli(env: Record<string, string>, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.resolve('bin/tradewarden.cjs'), ...args], { cwd: home.root, env: { PATH: process.env.PATH!, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

function recordingLogger(lines: string[]) {
  return createLogger({ secrets: [KEY, SECRET], level: 'debug', write: (line) => lines.push(line) });
}

/** The digests the log sink printed, as their text. */
const printedDigests = (lines: readonly string[]) => lines.filter((l) => / info {2}Digest \(/.test(l));

describe('DIGEST_CRON and DIGEST_TZ', () => {
  test('a wrong pattern or zone is refused at start, naming the variable and an example; FILL_FEED likewise', () => {
    const refused = (env: Record<string, string>) => {
      try {
        parseConfig({ DATA_DIR: home.dataDir, ...env });
      } catch (error) {
        assert.ok(error instanceof ConfigError, `a ConfigError, not ${String(error)}`);
        return error.problems.join('\n');
      }
      assert.fail(`${JSON.stringify(env)} was accepted`);
    };
    assert.match(refused({ DIGEST_CRON: '0 25 * * *' }), /^DIGEST_CRON is "0 25 \* \* \*": 25 is not a valid expression for hour; expected node-cron syntax, e.g. "0 21 \* \* \*"/m);
    assert.match(refused({ DIGEST_CRON: 'every evening' }), /^DIGEST_CRON is "every evening": expected 5 or 6 fields but got 2; expected node-cron syntax/m);
    assert.match(refused({ DIGEST_TZ: 'Mars/Olympus_Mons' }), /^DIGEST_TZ is "Mars\/Olympus_Mons": not a time zone this Node.js knows; expected an IANA zone like Europe\/Berlin/m);
    assert.match(refused({ DIGEST_TZ: '+02:00' }), /^DIGEST_TZ is "\+02:00": not an IANA zone name/m);
    assert.match(refused({ FILL_FEED: 'yes' }), /^FILL_FEED is "yes": expected one of off, on/m);
    assert.match(refused({ DIGEST_CHANNEL_ID: 'alerts' }), /^DIGEST_CHANNEL_ID is "alerts": expected a Discord id/m);

    const defaults = parseConfig({ DATA_DIR: home.dataDir });
    assert.deepEqual([defaults.digest.cron, defaults.fillFeed], [undefined, undefined], 'both off by default');
    assert.equal(defaults.digest.timeZone, Intl.DateTimeFormat().resolvedOptions().timeZone, "the machine's zone by default");
    const set = parseConfig({ DATA_DIR: home.dataDir, DIGEST_CRON: '0 0 18 * * 1-5', DIGEST_TZ: 'America/New_York', FILL_FEED: 'on', FILL_FEED_CHANNEL_ID: '1300000000000000009' });
    assert.deepEqual(set.digest, { cron: '0 0 18 * * 1-5', timeZone: 'America/New_York' });
    assert.deepEqual(set.fillFeed, { channelId: '1300000000000000009' });
    assert.equal(parseConfig({ DATA_DIR: home.dataDir, DIGEST_CRON: 'off' }).digest.cron, undefined, 'off is off');
  });

  test('due times in the zone: 21:00 Berlin is 20:00Z, then 19:00Z after the spring-forward night; a skipped local time falls an hour later, a repeated one once', () => {
    const iso = (ms: number | undefined) => (ms === undefined ? 'none' : new Date(ms).toISOString());
    const evening = CronCalendar.of('0 21 * * *', 'Europe/Berlin');
    const dues: string[] = [];
    for (let t = Date.parse('2026-03-27T12:00:00Z'), i = 0; i < 3; i++) dues.push(iso((t = evening.next(t))));
    assert.deepEqual(dues, ['2026-03-27T20:00:00.000Z', '2026-03-28T20:00:00.000Z', '2026-03-29T19:00:00.000Z']);

    const night = CronCalendar.of('30 2 * * *', 'Europe/Berlin');
    // 29 March 2026: 02:00 → 03:00, so 02:30 does not exist and falls at 03:30 CEST (01:30Z).
    assert.equal(iso(night.next(Date.parse('2026-03-28T12:00:00Z'))), '2026-03-29T01:30:00.000Z');
    // 25 October 2026: 03:00 → 02:00, so 02:30 happens twice; due once, the first time (00:30Z).
    assert.equal(iso(night.next(Date.parse('2026-10-24T12:00:00Z'))), '2026-10-25T00:30:00.000Z');
    assert.equal(iso(night.next(Date.parse('2026-10-25T00:30:00Z'))), '2026-10-26T01:30:00.000Z', 'not again at 01:30Z the same night');

    // With seconds, node-cron's tokens, and the latest due time before an instant.
    assert.equal(iso(CronCalendar.of('*/15 * * * * *', 'UTC').next(Date.parse('2026-01-01T00:00:16Z'))), '2026-01-01T00:00:30.000Z');
    assert.equal(iso(CronCalendar.of('0 18 L * *', 'UTC').next(Date.parse('2026-02-03T00:00:00Z'))), '2026-02-28T18:00:00.000Z');
    assert.equal(iso(CronCalendar.of('0 9 * * 1#2', 'UTC').next(Date.parse('2026-02-03T00:00:00Z'))), '2026-02-09T09:00:00.000Z');
    assert.equal(iso(evening.latest(Date.parse('2026-03-30T08:00:00Z'), Date.parse('2026-03-20T00:00:00Z'))), '2026-03-29T19:00:00.000Z');
    assert.equal(evening.latest(Date.parse('2026-03-30T08:00:00Z'), Date.parse('2026-03-29T19:00:00Z')), undefined, 'none after the last one');
    assert.equal(evening.countBetween(Date.parse('2026-03-26T21:00:00Z'), Date.parse('2026-03-29T19:00:00Z')), 3);
  });
});

describe('the digest of a period, on the schedule', () => {
  // Friday 27 March 2026, 13:00 in Berlin: the spring-forward night is Saturday to Sunday.
  const clock = new ManualClock(Date.parse('2026-03-27T12:00:00Z'));
  let paper: PaperBroker;
  let app: App;
  const logLines: string[] = [];

  before(async () => {
    paper = await startPaperBroker({ keyId: KEY, secretKey: SECRET, cash: 100_000, prices: { AAPL: 200, MSFT: 400, TSLA: 250 }, clock });
    brokers.push(paper);
    const env = envFor(paper, 'schedule', BERLIN);
    app = buildApp(parseConfig(env), { logger: recordingLogger(logLines), deliversAlerts: true, clock, env: { ...process.env, ...env } });
    apps.push(app);
  });

  test('each due time once: nothing before the first; the first covers 24 h with equity, trades, best and worst, alerts and guards', async () => {
    assert.ok(app.digest, 'DIGEST_CRON is set: the app has the schedule');
    assert.equal(await app.digest.run(), undefined, 'armed at 13:00: no due time yet');

    // The account's past: $98,000 yesterday evening. TSLA held from before the fills anyone reads.
    paper.seedHistory([{ at: Date.parse('2026-03-26T18:00:00Z'), equity: 98_000 }]);
    paper.seedPosition('TSLA', 10, 250);
    const at = (hhmm: string) => clock.set(Date.parse(`2026-03-27T${hhmm}:00Z`));
    at('12:10');
    paper.placeOrder({ symbol: 'AAPL', side: 'buy', qty: 10, type: 'market', time_in_force: 'day' });
    at('12:20');
    paper.setPrice('AAPL', 210);
    paper.placeOrder({ symbol: 'AAPL', side: 'sell', qty: 10, type: 'market', time_in_force: 'day' }); // +$100
    at('12:30');
    paper.placeOrder({ symbol: 'MSFT', side: 'buy', qty: 5, type: 'market', time_in_force: 'day' });
    at('12:40');
    paper.setPrice('MSFT', 390);
    paper.placeOrder({ symbol: 'MSFT', side: 'sell', qty: 5, type: 'market', time_in_force: 'day' }); // -$50
    at('12:50');
    const tsla = paper.placeOrder({ symbol: 'TSLA', side: 'sell', qty: 10, type: 'market', time_in_force: 'day' }); // entry unknown
    at('13:00');
    paper.placeOrder({ symbol: 'AAPL', side: 'buy', qty: 1, type: 'market', time_in_force: 'day' }); // opens, closes nothing
    // The TSLA sale was a flatten's close (the controller's own order), as flatten records it.
    await app.store.update((data) => {
      data.trades.ownOrders = [{ orderId: String(tsla.id), at: clock.now(), by: 'flatten:cli:test' }];
    });
    // What the day raised and did: alerts by kind, a breaker trip, duplicates ended (and one attempt that failed).
    for (const [kind, key] of [['trade_rate_exceeded', 'a'], ['trade_rate_exceeded', 'b'], ['breaker_tripped', 'c'], ['process_down', 'd']] as const) {
      await app.outbox.raise({ kind, severity: 'warning', key, title: kind, body: 'test' });
    }
    const audit = (outcome: 'ok' | 'failed', pids: number[]) =>
      app.store.audit({ at: new Date(clock.now()).toISOString(), who: 'policy:ON_DUPLICATE', what: 'stop-duplicates', args: { pids }, outcome, durationMs: 5 });
    await audit('ok', [4242, 4243]);
    await audit('failed', [4244]);

    clock.set(Date.parse('2026-03-27T20:00:05Z')); // 21:00:05 in Berlin (CET)
    const report = await app.digest.run();
    assert.ok(report, 'due at 21:00: the digest is made');
    assert.deepEqual(report.due, { at: Date.parse('2026-03-27T20:00:00Z') }, 'on time: not marked late');
    assert.equal(report.firstPeriod, true);
    assert.deepEqual([report.from, report.to], [clock.now() - DAY, clock.now()], 'the first covers the last 24 h');
    assert.deepEqual(report.missing, [], 'every read answered');
    // $98,000 at the start; now $100,000 cash ± the trades + 1 AAPL at $210 (TSLA sold at its price).
    assert.equal(report.equityAtStart, 98_000);
    assert.equal(report.equity, 102_550);
    assert.equal(report.change, 4_550);
    assert.equal(report.changePct!.toFixed(2), '4.64');
    assert.deepEqual(report.trades, {
      count: 6,
      bySymbol: [
        { symbol: 'AAPL', buys: 2, sells: 1 },
        { symbol: 'MSFT', buys: 1, sells: 1 },
        { symbol: 'TSLA', buys: 0, sells: 1 },
      ],
      flattenCloses: 1,
      source: 'broker',
    });
    assert.deepEqual([report.best?.symbol, report.best?.pnl, report.best?.price], ['AAPL', 100, 210], 'best: the AAPL round trip');
    assert.deepEqual([report.worst?.symbol, report.worst?.pnl], ['MSFT', -50], 'worst: the MSFT one');
    assert.deepEqual([report.closedTrades, report.unranked], [3, 1], 'the TSLA close has no known entry: counted, not ranked');
    assert.deepEqual(report.alerts, { trade_rate_exceeded: 2, breaker_tripped: 1, process_down: 1 });
    assert.deepEqual([report.breakerTrips, report.duplicatesEnded], [1, 2]);
    assert.equal(report.trader?.restartsTotal, 0);
    assert.equal(report.trader?.restarts, undefined, 'no earlier digest to count restarts from');
    assert.ok(report.points.length > 10 && report.points[0].at === report.from && report.points.at(-1)!.at === report.to, `the curve spans the period (${report.points.length} points)`);

    // Printed to the log (no Discord here): the lines a terminal shows too.
    const [printed] = printedDigests(logLines);
    assert.ok(printed, `the digest is in the log: ${logLines.slice(-5).join('\n')}`);
    const text = digestText(report);
    assert.ok(printed.endsWith(text), 'the log line is the text rendering');
    assert.match(text, /^ {2}Period Thu 26 Mar 21:00 → Fri 27 Mar 21:00 \(24h, the first digest\)$/m);
    assert.match(text, /^ {2}Equity \$102,550\.00 · \+\$4,550\.00 \(\+4\.64%\) from \$98,000\.00$/m);
    assert.match(text, /^ {2}Trades 6: AAPL 2 buy\/1 sell · MSFT 1 buy\/1 sell · TSLA 1 sell \(1 by flatten\)$/m);
    assert.match(text, /^ {2}Best AAPL \+\$100\.00 \(sell 10 @ \$210\.00\) · worst MSFT -\$50\.00 \(sell 5 @ \$390\.00\)$/m);
    assert.match(text, /^ {2}Unranked 1 close\(s\)/m);
    assert.match(text, /^ {2}Trader not in PM2 · PM2 restarts 0 in all$/m);
    assert.match(text, /^ {2}Alerts 4: trade rate exceeded 2, breaker tripped 1, process down 1$/m);
    assert.match(text, /^ {2}Guards breaker trips 1 · duplicates ended 2$/m);
    assert.match(text, /^ {2}curve [▁▂▃▄▅▆▇█]+ \(\d+ points, 15Min steps\)$/m);

    assert.equal(await app.digest.run(), undefined, 'the same due time is not posted twice');
    assert.equal(printedDigests(logLines).length, 1);
  });

  test('the next covers from the last one to now; across the spring-forward night the period is 23 h; /digest in between shows the period so far', async () => {
    clock.set(Date.parse('2026-03-28T08:00:00Z'));
    const onDemand = await app.core.digest();
    assert.deepEqual([onDemand.from, onDemand.to, onDemand.firstPeriod, onDemand.due], [Date.parse('2026-03-27T20:00:05Z'), clock.now(), false, undefined], 'from the last digest to now, not a scheduled one');
    assert.equal(await app.digest!.run(), undefined, 'asking does not move the schedule');

    clock.set(Date.parse('2026-03-28T20:00:07Z'));
    const saturday = await app.digest!.run();
    assert.ok(saturday, 'Saturday 21:00 is due');
    assert.deepEqual([saturday.from, saturday.firstPeriod, saturday.trades?.count], [Date.parse('2026-03-27T20:00:05Z'), false, 0]);
    assert.equal(saturday.trader?.restarts, 0, 'restarts counted from the last digest now');
    assert.deepEqual(saturday.alerts, {}, 'the alerts of the first period are not counted again');

    clock.set(Date.parse('2026-03-29T19:00:03Z')); // 21:00:03 CEST
    const sunday = await app.digest!.run();
    assert.ok(sunday, 'Sunday 21:00 (CEST, 19:00Z) is due');
    assert.equal(sunday.due?.at, Date.parse('2026-03-29T19:00:00Z'));
    assert.equal(sunday.to - sunday.from, 23 * HOUR - 4_000, 'a day of 23 hours');
    assert.match(digestText(sunday), /^ {2}Period Sat 28 Mar 21:00 → Sun 29 Mar 21:00 \(22h 59m\)$/m);
    assert.equal(printedDigests(logLines).length, 3, 'one print per due time');
  });

  test('a broker read that fails is named; the rest is still posted', async () => {
    paper.failNext(404, 1, { path: '/v2/account/portfolio/history', message: 'endpoint not found' });
    paper.failNext(404, 1, { path: /^\/v2\/account\/activities/, message: 'activities unavailable' });
    clock.set(Date.parse('2026-03-30T10:00:00Z'));
    await app.outbox.raise({ kind: 'process_down', severity: 'warning', key: 'down-again', title: 'down', body: 'test' });
    clock.set(Date.parse('2026-03-30T19:00:04Z'));
    const report = await app.digest!.run();
    assert.ok(report, 'Monday 21:00 is due');
    assert.equal(report.missing.length, 2, report.missing.join('\n'));
    assert.match(report.missing[0], /^equity history \(the change over the period, the chart\): .*404.*endpoint not found/);
    assert.match(report.missing[1], /^the broker's fills \(trades counted from what the watch recorded; best and worst unknown\): .*activities unavailable/);
    assert.equal(report.equity, 102_550, 'equity now still read');
    assert.equal(report.change, undefined, 'no change without the history');
    assert.equal(report.trades?.source, 'recorded');
    assert.deepEqual(report.alerts, { process_down: 1 });
    const text = digestText(report);
    assert.match(text, /^ {2}Equity \$102,550\.00 · change unknown$/m);
    assert.match(text, /^ {2}Could not read equity history/m);
    assert.ok(printedDigests(logLines).at(-1)!.endsWith(text), 'posted (printed) all the same');
  });
});

describe("the order gate's refusals in the digest", () => {
  test('counted from the last digest while the same controller runs, from its start after a restart; named when no controller answers', async () => {
    const clock = new ManualClock(Date.parse('2026-05-04T12:00:00Z'));
    const paper = await startPaperBroker({ keyId: KEY, secretKey: SECRET, cash: 10_000, clock });
    brokers.push(paper);
    const env = envFor(paper, 'gate', { DIGEST_CRON: '0 18 * * *', DIGEST_TZ: 'UTC', GATEWAY_ADDR: '127.0.0.1:18790' });
    const app = buildApp(parseConfig(env), { logger: recordingLogger([]), deliversAlerts: true, clock, env: { ...process.env, ...env } });
    apps.push(app);
    const controllerStarted = (startedAt: number) =>
      app.store.update((data) => {
        data.controller = { pid: process.pid, startedAt, heartbeatAt: startedAt };
      });
    // The gate counts since its controller started (its status, as the controller's gate reports it).
    let refusedTotal: Partial<Record<string, number>> = { trade_limit: 3 };
    app.core.useGate({ status: async () => ({ mode: 'enforce', pending: 0, refusedLastHour: {}, refusedTotal }) });
    const guards = (report: DigestReport) => digestText(report).split('\n').find((l) => l.startsWith('  Guards'));

    await controllerStarted(Date.parse('2026-05-04T08:00:00Z'));
    await app.digest!.run();
    clock.set(Date.parse('2026-05-04T18:00:01Z'));
    const first = await app.digest!.run();
    assert.deepEqual(first?.gateRefusals, { byReason: { trade_limit: 3 }, since: Date.parse('2026-05-04T08:00:00Z') }, 'the first: all since the controller started inside the period');
    assert.equal(guards(first!), '  Guards breaker trips 0 · duplicates ended 0 · gate refusals 3 (trade limit 3) since Mon 4 May 08:00');

    refusedTotal = { trade_limit: 5, not_managed_trader: 1 };
    clock.set(Date.parse('2026-05-05T18:00:01Z'));
    const second = await app.digest!.run();
    assert.deepEqual(second?.gateRefusals, { byReason: { trade_limit: 2, not_managed_trader: 1 } }, 'the same controller: what its counts grew by');
    assert.equal(guards(second!), '  Guards breaker trips 0 · duplicates ended 0 · gate refusals 3 (trade limit 2, not managed trader 1)');

    // A controller restart starts the gate's counts over: the new one counts from its start.
    await controllerStarted(Date.parse('2026-05-06T09:00:00Z'));
    refusedTotal = { trade_limit: 1 };
    clock.set(Date.parse('2026-05-06T18:00:01Z'));
    const third = await app.digest!.run();
    assert.deepEqual(third?.gateRefusals, { byReason: { trade_limit: 1 }, since: Date.parse('2026-05-06T09:00:00Z') });

    // No gate answering (a terminal while no controller runs): said, not shown as none.
    app.core.useGate({ status: async () => undefined as never });
    const asked = await app.core.digest();
    assert.equal(asked.gateRefusals, undefined);
    assert.ok(asked.missing.includes("the order gate's refusals: the gate counts them in the running controller, and none answered here"), asked.missing.join('\n'));
  });
});

describe('a due time missed while no controller ran', () => {
  test('is posted once at the next start, marked late and covering since the last digest; never again by a later start', async () => {
    const clock = new ManualClock(Date.parse('2026-06-01T18:00:00Z')); // Monday 20:00 in Berlin (CEST)
    const paper = await startPaperBroker({ keyId: KEY, secretKey: SECRET, cash: 50_000, clock });
    brokers.push(paper);
    const env = envFor(paper, 'restart', { ...BERLIN, TRADE_POLL_SECONDS: '3600', DUPLICATE_SCAN_SECONDS: '3600' });
    const config = parseConfig(env);
    const lines: string[] = [];
    const start = async () => {
      const controller = await startController(config, { logger: recordingLogger(lines), deliversAlerts: true, clock, env: { ...process.env, ...env }, heartbeatSeconds: 3600 });
      controllers.push(controller);
      // The start's own look has run once the job answers (runs are one at a time).
      await controller.app.digest!.run();
      return controller;
    };

    const first = await start();
    clock.set(Date.parse('2026-06-01T19:00:02Z')); // 21:00:02: due, on time
    const onTime = await first.app.digest!.run();
    assert.ok(onTime && onTime.due?.lateByMs === undefined, 'Monday 21:00 went out on time');
    await first.stop();

    // Down from Monday night until Thursday morning: Tuesday's and Wednesday's 21:00 pass unseen.
    clock.set(Date.parse('2026-06-04T06:30:00Z'));
    const second = await start();
    await waitFor(() => printedDigests(lines).length === 2, { what: 'the late digest in the log' });
    const late = printedDigests(lines)[1];
    assert.match(late, /LATE due Wed 3 Jun 21:00, sent 11h 30m after: nothing ran the schedule then; it covers 1 earlier due time\(s\) too/);
    assert.match(late, /Period Mon 1 Jun 21:00 → Thu 4 Jun 08:30 \(59h 29m\)/);
    const record = (await second.app.store.read()).digest;
    assert.deepEqual([record?.lastDue, record?.lastTo], [Date.parse('2026-06-03T19:00:00Z'), clock.now()], 'the late one is recorded as posted');
    assert.equal(await second.app.digest!.run(), undefined, 'not again in the same run');
    await second.stop();

    clock.advance(10 * MIN);
    const third = await start();
    assert.equal(printedDigests(lines).length, 2, 'a later start does not post it again');
    // And the schedule goes on from there: Thursday 21:00 on time, from the late one's end.
    clock.set(Date.parse('2026-06-04T19:00:01Z'));
    const thursday = await third.app.digest!.run();
    assert.ok(thursday, 'Thursday 21:00 is due');
    assert.deepEqual([thursday.from, thursday.due?.lateByMs], [Date.parse('2026-06-04T06:30:00Z'), undefined]);

    // With a controller running, `tradewarden digest` is its answer (its clock, its period), and asking schedules nothing.
    clock.advance(30 * MIN);
    const asked = await cli(env, ['digest', '--json']);
    assert.equal(asked.code, 0, asked.stderr);
    const report = JSON.parse(asked.stdout) as DigestReport;
    assert.deepEqual([report.from, report.to, report.due], [Date.parse('2026-06-04T19:00:01Z'), clock.now(), undefined], "the controller's period, up to its now");
    assert.equal(printedDigests(lines).length, 3, 'the on-demand digest is not posted');
    await third.stop();
  });
});

describe('tradewarden digest in a terminal', () => {
  test('prints the digest of the last 24 h (no controller runs), --json for scripts; no broker: said, the rest shown', async () => {
    const paper = await startPaperBroker({ keyId: KEY, secretKey: SECRET, cash: 20_000, prices: { AAPL: 100 } });
    brokers.push(paper);
    paper.seedHistory([{ at: Date.now() - 2 * DAY, equity: 19_000 }]);
    paper.placeOrder({ symbol: 'AAPL', side: 'buy', qty: 3, type: 'market', time_in_force: 'day' });
    paper.setPrice('AAPL', 110);
    paper.placeOrder({ symbol: 'AAPL', side: 'sell', qty: 3, type: 'market', time_in_force: 'day' });
    const env = envFor(paper, 'terminal', { DIGEST_TZ: 'UTC' });
    const run = await cli(env, ['digest']);
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.trimEnd().split('\n');
    assert.equal(lines[0], 'Digest (UTC):');
    assert.match(lines[1], /^ {2}Period \w{3} \d{1,2} \w{3} \d\d:\d\d → \w{3} \d{1,2} \w{3} \d\d:\d\d \(24h, the first digest\)$/);
    assert.match(run.stdout, /^ {2}Equity \$20,030\.00 · \+\$1,030\.00 \(\+5\.42%\) from \$19,000\.00$/m);
    assert.match(run.stdout, /^ {2}Trades 2: AAPL 1 buy\/1 sell$/m);
    assert.match(run.stdout, /^ {2}Closed AAPL \+\$30\.00 \(sell 3 @ \$110\.00\)$/m);
    assert.doesNotMatch(run.stdout, /Could not read/);
    assert.ok(!run.stdout.includes(SECRET) && !run.stdout.includes(KEY), 'no secret printed');

    const json = await cli(env, ['digest', '--json']);
    assert.equal(json.code, 0, json.stderr);
    const report = JSON.parse(json.stdout) as DigestReport;
    assert.deepEqual([report.trades?.count, report.best?.pnl, report.timeZone], [2, 30, 'UTC']);

    const blind = await cli({ ...env, APCA_API_KEY_ID: '', APCA_API_SECRET_KEY: '' }, ['digest']);
    assert.equal(blind.code, 0, blind.stderr);
    assert.match(blind.stdout, /^ {2}Could not read equity now: the broker is not configured \(APCA_API_KEY_ID, APCA_API_SECRET_KEY\)$/m);
    assert.match(blind.stdout, /^ {2}Trader not in PM2 · PM2 restarts 0 in all$/m);

    const wrong = await cli({ ...env, DIGEST_CRON: '61 * * * *' }, ['digest']);
    assert.equal(wrong.code, 2, 'a wrong DIGEST_CRON is a configuration error');
    assert.match(wrong.stderr, /DIGEST_CRON is "61 \* \* \* \*": 61 is not a valid expression for minute/);
  });
});
