// The fault and edge suite of issue 10: each case was found by breaking tradewarden on purpose (as a
// hostile or unlucky user would) and each test fails without its fix. Real parts throughout: the
// paper broker over HTTP, a real PM2 daemon (one for the file, in a temp PM2_HOME, ended by PID),
// real trader processes, and for the full-disk cases a real full filesystem (a tiny tmpfs; those
// tests are skipped when this user may not mount one).
import { after, before, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ManualClock, systemClock } from '../src/clock.ts';
import { ConfigError, parseConfig } from '../src/config.ts';
import { createLogger, redact, silentLogger, type Logger } from '../src/log.ts';
import { Store, MAX_FILE_BYTES } from '../src/store/store.ts';
import { AlertOutbox, type AlertSink } from '../src/alerts/outbox.ts';
import { AlpacaBroker } from '../src/broker/alpaca.ts';
import { ProcessWatch, TradeWatch } from '../src/watch/watchdog.ts';
import { everySeconds, scheduleJobs } from '../src/watch/schedule.ts';
import { buildApp, type App } from '../src/app.ts';
import { CONTROLLER } from '../src/core/operations.ts';
import { OperationError } from '../src/errors.ts';
import { holdFileLock } from '../src/lock.ts';
import { Supervisor } from '../src/supervisor/supervisor.ts';
import { runsScript } from '../src/supervisor/duplicate-scan.ts';
import { readProcessTable } from '../src/os/process-table.ts';
import { REPLIES, accountEmbed, duplicatesEmbed, flattenMessages } from '../src/discord/render.ts';
import type { FlattenReport } from '../src/core/flatten.ts';
import { stopText } from '../src/render/text.ts';
import type { StoredAlert } from '../src/store/schema.ts';
import type { Duplicate } from '../src/supervisor/types.ts';
import { startPaperBroker, type PaperBroker } from '../testkit/paper-broker.ts';
import { copyTrader, daemonPid, godDaemonsFor, isAlive, killDaemon, killPid, makeTempHome, waitFor, type TempHome } from '../testkit/pm2-home.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const made: string[] = [];
const tmp = (prefix: string) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
};
after(() => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
});

/** A logger that keeps its lines, to assert what an operator would read. */
function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const logger = createLogger({ secrets: [], level: 'debug', write: (line) => lines.push(line) });
  return Object.assign(logger, { lines });
}

function configProblems(env: Record<string, string>): string[] {
  try {
    parseConfig({ HOME: '/home/op', ...env });
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return [...error.problems];
  }
  return [];
}

describe('silent blindness', () => {
  let paper: PaperBroker;
  const brokerClock = new ManualClock(Date.parse('2026-03-02T14:00:00Z'));
  const watchClock = new ManualClock(Date.parse('2026-03-02T14:00:00Z'));
  before(async () => {
    paper = await startPaperBroker({ clock: brokerClock, keyId: 'PKEDGE', secretKey: 'SKEDGE', prices: { AAPL: 200 } });
  });
  after(() => paper.close());

  it('a fill stamped in the future is counted at its arrival, warned about once, and never blinds later polls', async () => {
    const dataDir = tmp('tw-edge-future-');
    const alerts: StoredAlert[] = [];
    const sink: AlertSink = { name: 'log', deliver: async (a) => void alerts.push(a) };
    const store = new Store(dataDir);
    const outbox = new AlertOutbox({ store, clock: watchClock, logger: silentLogger, sinks: [sink] });
    const broker = new AlpacaBroker({ baseUrl: paper.url, keyId: 'PKEDGE', secretKey: 'SKEDGE', sleep: async () => {} });
    const watch = new TradeWatch({ store, broker, outbox, clock: watchClock, processName: 'trading-bot', maxTradesPerHour: 3 });
    const buy = () => paper.placeOrder({ symbol: 'AAPL', side: 'buy', qty: 1, type: 'market', time_in_force: 'day' });

    // The broker's clock jumps two days ahead for one fill (a clock glitch, a proxy).
    brokerClock.set(watchClock.now() + 2 * 24 * 3600_000);
    buy();
    brokerClock.set(watchClock.now());
    assert.equal((await watch.poll()).count, 1, 'the future fill counts now, at its arrival');
    const cursor = Date.parse((await store.read()).trades.cursor!);
    assert.ok(cursor <= watchClock.now(), `the cursor (${new Date(cursor).toISOString()}) never passes now`);
    await watch.poll();
    assert.equal(alerts.filter((a) => a.kind === 'broker_clock_skew').length, 1, 'warned once, not per poll');

    // Later, real trades: the limit must still be watched.
    for (let i = 0; i < 3; i++) {
      watchClock.advance(60_000);
      brokerClock.set(watchClock.now());
      buy();
    }
    const result = await watch.poll();
    assert.equal(result.count, 4);
    assert.equal(result.event, 'exceeded', 'the trade-rate alert still fires');
    assert.ok(alerts.some((a) => a.kind === 'trade_rate_exceeded'), 'trade_rate_exceeded delivered');
  });

  it('a cursor already persisted in the future (an earlier run) is not trusted', async () => {
    const dataDir = tmp('tw-edge-cursor-');
    const store = new Store(dataDir);
    await store.update((d) => {
      d.trades.cursor = '2099-01-01T00:00:00.000Z';
    });
    const outbox = new AlertOutbox({ store, clock: watchClock, logger: silentLogger, sinks: [] });
    const broker = new AlpacaBroker({ baseUrl: paper.url, keyId: 'PKEDGE', secretKey: 'SKEDGE', sleep: async () => {} });
    const watch = new TradeWatch({ store, broker, outbox, clock: watchClock, processName: 'trading-bot', maxTradesPerHour: 3 });
    watchClock.advance(60_000);
    brokerClock.set(watchClock.now());
    paper.placeOrder({ symbol: 'AAPL', side: 'sell', qty: 1, type: 'market', time_in_force: 'day' });
    const { newTrades } = await watch.poll();
    assert.ok(newTrades >= 1, `the new fill is read despite the stale cursor (got ${newTrades})`);
    assert.ok(Date.parse((await store.read()).trades.cursor!) <= watchClock.now(), 'the cursor is pulled back to now');
  });

  it('malformed TRADING_* and LOG_LEVEL values stop the controller at start, naming the variable', () => {
    const problems = configProblems({
      TRADING_KILL_TIMEOUT_MS: '10s',
      LOG_LEVEL: 'verbose',
      MAX_TRADES_PER_HOUR: '1e3',
      TRADE_POLL_SECONDS: '0x10',
      TRADING_SCRIPT: 'no/such/bot.py',
      TRADING_ARGS: '--name "unclosed',
      TRADING_INTERPRETER: 'python3 -u',
    }).join('\n');
    for (const name of ['TRADING_KILL_TIMEOUT_MS', 'LOG_LEVEL', 'MAX_TRADES_PER_HOUR', 'TRADE_POLL_SECONDS', 'TRADING_SCRIPT', 'TRADING_ARGS', 'TRADING_INTERPRETER']) {
      assert.match(problems, new RegExp(`^${name} is `, 'm'), `${name} is named`);
    }
    assert.match(problems, /LOG_LEVEL is "verbose": expected one of debug, info, warn, error/);
    assert.equal(parseConfig({ HOME: '/h', LOG_LEVEL: 'WARN' }).logLevel, 'warn');
    assert.equal(parseConfig({ HOME: '/h', MAX_TRADES_PER_HOUR: '1000' }).maxTradesPerHour, 1000);
  });

  it('the controller process itself refuses to run with TRADING_KILL_TIMEOUT_MS=10s (exit 2, variable named)', () => {
    const dataDir = tmp('tw-edge-ctl-');
    const run = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(root, 'src/main.ts')], {
      cwd: dataDir, // no .env here
      env: { PATH: process.env.PATH, HOME: dataDir, DATA_DIR: dataDir, PM2_HOME: path.join(dataDir, 'pm2'), TRADING_KILL_TIMEOUT_MS: '10s' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(run.status, 2, `exit status (stderr: ${run.stderr})`);
    assert.match(run.stderr, /TRADING_KILL_TIMEOUT_MS is "10s": expected a whole number from 100 to 600000/);
    assert.ok(!fs.existsSync(path.join(dataDir, 'pm2', 'pm2.pid')), 'no PM2 daemon was started');
  });

  it('the CLI honours LOG_LEVEL and refuses a wrong one', () => {
    const dataDir = tmp('tw-edge-cli-');
    const run = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(root, 'src/cli/main.ts'), 'alerts'], {
      cwd: dataDir,
      env: { PATH: process.env.PATH, HOME: dataDir, DATA_DIR: dataDir, PM2_HOME: path.join(dataDir, 'pm2'), LOG_LEVEL: 'verbose' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(run.status, 2, `exit status (stderr: ${run.stderr})`);
    assert.match(run.stderr, /LOG_LEVEL is "verbose"/);
  });
});

describe('cadence', () => {
  it('TRADE_POLL_SECONDS=45 is a true 45 s interval, not cron */45 (45 s then 15 s)', async () => {
    assert.equal(everySeconds(45), undefined, 'no cron pattern says "every 45 s"');
    assert.equal(everySeconds(10), '*/10 * * * * *');
    mock.timers.enable({ apis: ['setInterval'] });
    try {
      let runs = 0;
      const jobs = scheduleJobs([{ name: 'poll', everySeconds: 45, run: async () => void runs++ }], silentLogger);
      const settle = () => new Promise((r) => setImmediate(r));
      mock.timers.tick(44_999);
      await settle();
      assert.equal(runs, 0);
      mock.timers.tick(1);
      await settle();
      assert.equal(runs, 1, 'first run at 45 s');
      mock.timers.tick(15_000); // cron */45 would fire again at the minute
      await settle();
      assert.equal(runs, 1, 'nothing 15 s later');
      mock.timers.tick(30_000);
      await settle();
      assert.equal(runs, 2, 'second run at 90 s');
      await jobs.stop();
    } finally {
      mock.timers.reset();
    }
  });

  it('a failing watch job is logged at error (once per distinct failure), not at debug only', async () => {
    const logger = recordingLogger();
    let fail = true;
    mock.timers.enable({ apis: ['setInterval'] });
    try {
      const jobs = scheduleJobs([{ name: 'process-scan', everySeconds: 7, run: async () => { if (fail) throw new Error('ENOSPC: no space left on device'); } }], logger);
      const settle = () => new Promise((r) => setImmediate(r));
      for (let i = 0; i < 3; i++) {
        mock.timers.tick(7000);
        await settle();
      }
      fail = false;
      mock.timers.tick(7000);
      await settle();
      await jobs.stop();
    } finally {
      mock.timers.reset();
    }
    assert.equal(logger.lines.filter((l) => / error process-scan failed: ENOSPC/.test(l)).length, 1, logger.lines.join('\n'));
    assert.ok(logger.lines.some((l) => /info  process-scan: working again/.test(l)), 'recovery is logged');
  });
});

describe('the data file', () => {
  it('valid JSON of the wrong shape is kept aside like a corrupt file, never "x.filter is not a function"', async () => {
    const dataDir = tmp('tw-edge-shape-');
    const file = path.join(dataDir, 'tradewarden.json');
    fs.writeFileSync(file, JSON.stringify({ schemaVersion: 1, audit: [], alerts: [], trades: { seen: 'none' } }));
    const store = new Store(dataDir);
    const keptAside: string[] = [];
    store.onKeptAside((keptAs, reason) => keptAside.push(`${keptAs} ${reason}`));
    const data = await store.read();
    assert.deepEqual(data.trades.seen, []);
    assert.equal(keptAside.length, 1);
    assert.match(keptAside[0]!, /corrupt-.* not a tradewarden data file \(trades\.seen is not a list of trades\)/);
    const kept = fs.readdirSync(dataDir).find((f) => f.includes('.corrupt-'));
    assert.ok(kept, 'the file is kept aside, not overwritten');
    assert.match(fs.readFileSync(path.join(dataDir, kept), 'utf8'), /"seen":"none"/);
  });

  it('a huge data file, an unreadable DATA_DIR: each says what and how to fix it', async () => {
    const dataDir = tmp('tw-edge-huge-');
    const huge = path.join(dataDir, 'tradewarden.json');
    fs.writeFileSync(huge, '');
    fs.truncateSync(huge, MAX_FILE_BYTES + 1); // sparse: no disk used
    await assert.rejects(new Store(dataDir).read(), /is 100 MB, more than tradewarden reads .* move it aside \(mv /);
    const blocker = path.join(tmp('tw-edge-dir-'), 'a-file');
    fs.writeFileSync(blocker, '');
    assert.throws(() => new Store(path.join(blocker, 'data')), /DATA_DIR .* cannot be used \(ENOTDIR: a part of the path is a file\): point DATA_DIR in \.env at a folder/);
  });
});

describe('smaller, same spirit', () => {
  it('secrets are redacted in their base64 and hex forms and in Authorization headers', () => {
    const secret = 'sk-live-Abc123XYZ';
    const line = [
      `b64 ${Buffer.from(secret).toString('base64')}`,
      `hex ${Buffer.from(secret).toString('hex')}`,
      `HEX ${Buffer.from(secret).toString('hex').toUpperCase()}`,
      `Authorization: Basic ${Buffer.from(`PKID:${secret}`).toString('base64')}`,
      `headers {"authorization": "Bearer abc.def.ghi"}`,
    ].join('\n');
    const out = redact(line, [secret]);
    assert.doesNotMatch(out, new RegExp([Buffer.from(secret).toString('base64').replace(/=+$/, ''), Buffer.from(secret).toString('hex')].join('|'), 'i'));
    assert.match(out, /Authorization: Basic \[redacted\]/);
    assert.match(out, /"authorization": "Bearer \[redacted\]/);
    assert.doesNotMatch(out, /abc\.def\.ghi/);
  });

  it('/flatten with 60 positions: failures come first and no still-open line is lost to the 4096 limit', () => {
    const symbols = Array.from({ length: 60 }, (_, i) => ({
      symbol: `SYM${String(i).padStart(2, '0')}`,
      qtyBefore: 100 + i,
      closingOrderId: `order-${'x'.repeat(30)}-${i}`,
      outcome: i === 59 ? ('failed' as const) : i === 58 ? ('queued' as const) : ('closed' as const),
      ...(i >= 58 ? { reason: i === 59 ? 'insufficient qty available for order' : 'closing order not filled yet' } : {}),
    }));
    const report: FlattenReport = {
      flat: false,
      trader: { stopped: true, pid: 4242 },
      ordersCanceled: 3,
      symbols,
      remainingPositions: [{ symbol: 'SYM59', qty: 159 }, { symbol: 'SYM58', qty: 158 }],
      remainingOpenOrders: 1,
      durationMs: 2300,
    };
    const messages = flattenMessages(report);
    const all = messages.flat().map((e) => `${e.data.title}\n${e.data.description}`).join('\n');
    for (const embeds of messages) {
      assert.ok(embeds.length <= 10, 'at most 10 embeds a message');
      const chars = embeds.reduce((n, e) => n + (e.data.title?.length ?? 0) + (e.data.description?.length ?? 0), 0);
      assert.ok(chars <= 6000, `at most 6000 characters a message (got ${chars})`);
      for (const e of embeds) assert.ok((e.data.description?.length ?? 0) <= 4096, 'description within 4096');
    }
    assert.match(all, /✘ SYM59 .* failed .* insufficient qty available/);
    assert.match(all, /… SYM58 .* queued/);
    assert.match(all, /60 position\(s\): 1 failed, 1 queued, 58 closed/);
    assert.ok(all.indexOf('SYM59') < all.indexOf('SYM00'), 'the failure is listed before the closed ones');
  });

  it('/flatten through the catalogue: a report too long for one message answers with the first and follows up with the rest', async () => {
    const symbols = Array.from({ length: 300 }, (_, i) => ({
      symbol: `SYM${String(i).padStart(3, '0')}`,
      qtyBefore: 100 + i,
      closingOrderId: `order-${'x'.repeat(30)}-${i}`,
      outcome: 'failed' as const,
      reason: 'insufficient qty available for order',
    }));
    const report: FlattenReport = { flat: false, trader: { stopped: true, pid: 4242 }, ordersCanceled: 0, symbols, remainingPositions: [], remainingOpenOrders: 0, durationMs: 900 };
    const messages = flattenMessages(report);
    assert.ok(messages.length > 1, `300 failed symbols need more than one message (got ${messages.length})`);
    const reply = await REPLIES.flatten(report, {});
    assert.deepEqual(reply.embeds, messages[0], 'the answer carries the first message');
    assert.deepEqual(reply.followUps?.map((m) => m.embeds), messages.slice(1), 'every other message follows, in order');
    const shown = [reply, ...(reply.followUps ?? [])].flatMap((m) => m.embeds ?? []).map((e) => String(e.data.description)).join('\n');
    for (const s of symbols) assert.ok(shown.includes(s.symbol), `${s.symbol} is in the reply`);
  });

  it('/account with 60 positions and 30 duplicates say how many were left out and where to see them all', () => {
    const positions = Array.from({ length: 60 }, (_, i) => ({ symbol: `LONGSYMBOL${i}`, qty: i + 1, side: 'long' as const, marketValue: 1234.5 * i, avgEntryPrice: 10, unrealizedPnl: -3.21 * i }));
    const account = { status: 'ACTIVE', currency: 'USD', equity: 1e6, lastEquity: 1e6, cash: 5e5, buyingPower: 1e6, dayPnl: 0 };
    const field = accountEmbed({ account, positions }).data.fields!.find((f) => f.name.startsWith('Positions'))!;
    assert.ok(field.value.length <= 1024, 'within the field limit');
    assert.match(field.value, /…and \d+ more: `tradewarden account --json` lists them all$/);
    const shown = (field.value.match(/LONGSYMBOL/g) ?? []).length;
    assert.equal(Number(/and (\d+) more/.exec(field.value)![1]) + shown, 60, 'shown + left out = all');

    const duplicates: Duplicate[] = Array.from({ length: 30 }, (_, i) => ({ pid: 10_000 + i, command: `python3 /srv/bots/releases/v2/main_bot.py --account main --strategy ${'x'.repeat(120)}`, foundIn: 'os', startedAt: Date.now() }));
    const text = String(duplicatesEmbed(duplicates).data.description);
    assert.ok(text.length <= 4096, 'within the description limit');
    assert.match(text, /more line\(s\) not shown: `tradewarden duplicates --json` lists every copy/);
  });
});

describe('with a real PM2 daemon', { timeout: 180_000 }, () => {
  let home: TempHome;
  let paper: PaperBroker;
  let heartbeat: string;
  const supervisors: Supervisor[] = [];
  const apps: App[] = [];
  const rogues: ChildProcess[] = [];
  /** processes a failing test could leave behind (a worker, an orphan): ended by PID in `after` */
  const leftovers: number[] = [];

  const supervisorFor = (processName: string, env: NodeJS.ProcessEnv, logger: Logger = silentLogger) => {
    const s = new Supervisor({ pm2Home: home.pm2Home, dataDir: home.dataDir, processName, env: { ...process.env, ...env }, logger, settleMs: 300 });
    supervisors.push(s);
    return s;
  };
  const appFor = (processName: string, options: { dataDir?: string; env?: Record<string, string>; logger?: Logger; sinks?: AlertSink[] } = {}) => {
    const dataDir = options.dataDir ?? tmp('tw-edge-app-');
    const config = parseConfig({
      HOME: os.homedir(),
      PM2_HOME: home.pm2Home,
      DATA_DIR: dataDir,
      TRADING_PROCESS_NAME: processName,
      APCA_API_KEY_ID: 'PKEDGE2',
      APCA_API_SECRET_KEY: 'SKEDGE2',
      APCA_API_BASE_URL: paper.url,
      MAX_TRADES_PER_HOUR: '3',
      ON_RUNAWAY: 'stop',
    });
    const app = buildApp(config, {
      logger: options.logger ?? silentLogger,
      clock: systemClock,
      deliversAlerts: true,
      sinks: options.sinks,
      env: { ...process.env, TRADING_SCRIPT: heartbeat, TRADING_KILL_TIMEOUT_MS: '3000', ...options.env },
      flattenVerifyTimeoutMs: 3000,
    });
    apps.push(app);
    return app;
  };
  const operator = { id: 'cli:edge', name: 'edge', isOperator: true };
  const rogue = (command: string, args: string[], cwd: string) => {
    const child = spawn(command, args, { cwd, detached: true, stdio: 'ignore' });
    child.unref();
    rogues.push(child);
    return child;
  };
  const runningScript = async (script: string) => (await readProcessTable()).filter((p) => runsScript(p, [script])).map((p) => p.pid);

  before(async () => {
    home = makeTempHome('tw-edge-pm2-');
    heartbeat = copyTrader(path.join(root, 'examples/heartbeat-trader.js'), path.join(home.root, 'bots'));
    paper = await startPaperBroker({ keyId: 'PKEDGE2', secretKey: 'SKEDGE2', cash: 1_000_000, prices: { AAPL: 200, MSFT: 400, TSLA: 250, NVDA: 100, AMD: 150 } });
  });

  after(async () => {
    for (const app of apps) await app.close().catch(() => undefined);
    for (const s of supervisors) await s.close().catch(() => undefined);
    for (const child of rogues) if (child.pid) await killPid(child.pid, 'SIGKILL');
    for (const pid of leftovers) await killPid(pid, 'SIGKILL');
    await paper.close();
    await home.cleanup();
    assert.deepEqual(godDaemonsFor(home.pm2Home), [], 'no daemon of ours is left');
  });

  it('a copy started from the real folder behind a symlinked deploy path is a duplicate, and start is refused', async () => {
    const release = path.join(home.root, 'releases', 'v2');
    const real = copyTrader(heartbeat, release, 'main_bot.js');
    const link = path.join(home.root, 'bot');
    fs.symlinkSync(release, link);
    const s = supervisorFor('symlink-bot', { TRADING_SCRIPT: path.join(link, 'main_bot.js') });
    const byRelative = rogue(process.execPath, ['main_bot.js', '60000'], release); // cd releases/v2 && node main_bot.js
    const byRealPath = rogue(process.execPath, [real, '60000'], home.root);
    const found = await waitFor(async () => {
      const pids = (await s.scanDuplicates()).map((d) => d.pid);
      return pids.includes(byRelative.pid!) && pids.includes(byRealPath.pid!) ? pids : undefined;
    }, { what: 'both copies reported as duplicates' });
    assert.ok(found.length >= 2, `found ${found.join(', ')}`);
    await assert.rejects(s.start(), (e: unknown) => e instanceof OperationError && e.kind === 'refused' && /2 other copies/.test(e.message));
    await killPid(byRelative.pid!, 'SIGKILL');
    await killPid(byRealPath.pid!, 'SIGKILL');
  });

  it('a TRADING_SCRIPT under a folder with a space starts, with its TRADING_ARGS', async () => {
    const dir = path.join(home.root, 'My Bots');
    fs.mkdirSync(dir, { recursive: true });
    const script = path.join(dir, 'args-trader.js');
    fs.writeFileSync(
      script,
      "require('fs').writeFileSync(require('path').join(__dirname, 'argv.json'), JSON.stringify(process.argv.slice(2)));\n" +
        "setInterval(() => {}, 1000);\nprocess.on('SIGINT', () => process.exit(0));\n",
    );
    const s = supervisorFor('space-bot', { TRADING_SCRIPT: script, TRADING_ARGS: '--mode "paper trading" 60000' });
    const started = await s.start();
    assert.ok(isAlive(started.pid), 'the trader runs');
    const argv = await waitFor(() => (fs.existsSync(path.join(dir, 'argv.json')) ? JSON.parse(fs.readFileSync(path.join(dir, 'argv.json'), 'utf8')) : undefined), { what: 'argv.json' });
    assert.deepEqual(argv, ['--mode', 'paper trading', '60000']);
    assert.equal(started.status.script, script, 'PM2 and the scan name the same absolute file');
    assert.deepEqual(await s.scanDuplicates(), []);
    const stopped = await s.stop();
    assert.equal(stopped.wasRunning, true);
    assert.ok(!isAlive(started.pid), 'stopped');
  });

  it('a missing TRADING_SCRIPT says which file and what to set, not "PM2 start failed: [{}]"', async () => {
    const s = supervisorFor('missing-bot', { TRADING_SCRIPT: path.join(home.root, 'nowhere', 'bot.py') });
    await assert.rejects(s.start(), /the trading script .*nowhere\/bot\.py cannot be read \(ENOENT\): set TRADING_SCRIPT/);
  });

  it('stop ends a double-forked worker of the trader (its session), and says so', async () => {
    const dir = path.join(home.root, 'forker');
    fs.mkdirSync(dir, { recursive: true });
    const script = path.join(dir, 'forking-trader.js');
    const pidFile = path.join(dir, 'worker.pid');
    // sh starts the worker in the background and exits: the worker is re-parented, out of the tree.
    fs.writeFileSync(
      script,
      `require('child_process').spawnSync('sh', ['-c', 'sleep 600 > /dev/null 2>&1 & echo $! > ${pidFile}']);\n` +
        "setInterval(() => {}, 1000);\nprocess.on('SIGINT', () => process.exit(0));\n",
    );
    const s = supervisorFor('forking-bot', { TRADING_SCRIPT: script });
    const started = await s.start();
    const worker = await waitFor(() => (fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, 'utf8').trim()) || undefined : undefined), { what: 'the worker pid' });
    leftovers.push(worker);
    assert.ok(isAlive(worker), 'the worker runs');
    const table = await readProcessTable();
    assert.notEqual(table.find((p) => p.pid === worker)?.ppid, started.pid, 'the worker is not a child of the trader');
    const stopped = await s.stop();
    assert.ok(!isAlive(started.pid), 'the trader is gone');
    assert.ok(!isAlive(worker), 'its double-forked worker is gone too');
    assert.deepEqual((stopped as { killedSurvivors?: number[] }).killedSurvivors, [worker]);
  });

  it('flatten\'s own closing orders are not runaway trading (ON_RUNAWAY=stop, limit 3, 5 positions)', async () => {
    const app = appFor('flatten-own-bot');
    for (const [symbol, qty] of [['AAPL', 10], ['MSFT', 5], ['TSLA', 3], ['NVDA', 7], ['AMD', 2]] as const) paper.seedPosition(symbol, qty, 100);
    await app.tradeWatch!.poll(); // the cursor is set before the flatten
    const report = await app.core.flatten(operator);
    assert.equal(report.flat, true, JSON.stringify(report));
    const poll = await app.tradeWatch!.poll();
    assert.ok(poll.newTrades >= 5, `the 5 closing fills were read (${poll.newTrades})`);
    assert.equal(poll.count, 0, 'none of them counts as the trader\'s');
    assert.notEqual(poll.event, 'exceeded');
    const data = await app.store.read();
    assert.equal(data.breaker.tripped, false, 'the breaker did not trip');
    assert.deepEqual(data.alerts.filter((a) => a.kind === 'trade_rate_exceeded' || a.kind === 'breaker_tripped'), []);
    await app.breaker.assertClear();
  });

  it('two confirmed flattens at once: one runs, the other is refused clearly — in one process and across processes', async () => {
    const app = appFor('flatten-twice-bot');
    paper.seedPosition('AAPL', 4, 200);
    const [a, b] = await Promise.allSettled([app.core.flatten(operator), app.core.flatten(operator)]);
    const outcomes = [a, b].map((r) => r.status).sort();
    assert.deepEqual(outcomes, ['fulfilled', 'rejected']);
    const refusal = [a, b].find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.ok(refusal.reason instanceof OperationError && refusal.reason.kind === 'refused', String(refusal.reason));
    assert.match(refusal.reason.message, /another flatten is already running \(started by edge at .*\); wait for its report/);

    // Another process (the CLI) holds the flatten lock in the same DATA_DIR.
    const release = await holdFileLock(path.join(app.config.dataDir, 'flatten'));
    try {
      await assert.rejects(app.core.flatten(operator), (e: unknown) => e instanceof OperationError && e.kind === 'refused' && /another flatten is already running/.test(e.message));
    } finally {
      await release();
    }
    assert.equal((await app.core.flatten(operator)).flat, true, 'once the first is done, flatten runs again');
  });

  it('a full DATA_DIR: stop and flatten act first and record after, loudly; a duplicate is still heard', async (t) => {
    const mount = tmp('tw-edge-full-');
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mount], { encoding: 'utf8' });
    if (mounted.status !== 0) {
      // One line whatever failed (no mount program, not root, no tmpfs): the reporter prints it
      // beside the test's name ("# SKIP …"), so a green run says what it did not test.
      const why = mounted.error?.message ?? (mounted.stderr?.trim().split('\n')[0] || `exit status ${mounted.status}`);
      t.skip(`cannot mount a 1 MB tmpfs here (${why}): the full-disk test needs root; README "Reliability: edges"`);
      return;
    }
    let duplicate: ChildProcess | undefined;
    try {
      const heard: StoredAlert[] = [];
      const sink: AlertSink = { name: 'test', deliver: async (a) => void heard.push(a) };
      const logger = recordingLogger();
      const app = appFor('full-disk-bot', { dataDir: mount, logger, sinks: [sink] });
      const started = await app.core.start(operator);
      paper.seedPosition('AAPL', 3, 200);
      // The trader's chatty log fills the disk.
      assert.throws(() => fs.writeFileSync(path.join(mount, 'logs', 'filler.log'), Buffer.alloc(2 * 1024 * 1024, 'x')), /ENOSPC/);
      assert.throws(() => fs.writeFileSync(path.join(mount, 'probe'), 'x'.repeat(8192)), /ENOSPC/, 'the disk is full');

      const stopped = await app.core.stop(operator);
      assert.equal(stopped.wasRunning, true);
      assert.ok(!isAlive(started.pid), 'the trader is stopped despite the full disk');
      assert.ok(logger.lines.some((l) => / error COULD NOT RECORD .*ENOSPC.*DATA_DIR is full/.test(l)), logger.lines.join('\n'));
      assert.ok(heard.some((a) => a.kind === 'record_failed'), 'an alert says the record failed, delivered unsaved');

      const report = await app.core.flatten(operator);
      assert.equal(report.flat, true, 'flatten did its work and says so');
      assert.ok(heard.some((a) => a.kind === 'flatten_result' && /account is flat/.test(a.title)), 'the flatten result is heard');

      duplicate = rogue(process.execPath, [heartbeat, '60000'], path.dirname(heartbeat));
      await waitFor(async () => (await runningScript(heartbeat)).includes(duplicate!.pid!), { what: 'the duplicate in the table' });
      await assert.rejects(app.processWatch.scan(), /ENOSPC|no space/i, 'the scan still fails (and the scheduler logs it at error)');
      const alert = heard.find((a) => a.kind === 'duplicate_instance');
      assert.ok(alert, 'the duplicate alert is not held back by the full disk');
      assert.deepEqual((alert.facts as { pids: number[] }).pids, [duplicate.pid]);
    } finally {
      if (duplicate?.pid) await killPid(duplicate.pid, 'SIGKILL');
      spawnSync('umount', ['-l', mount]);
    }
  });

  it('killing the PM2 daemon orphans a Python trader: stop still ends it', async () => {
    const python = copyTrader(path.join(root, 'test/fixtures/python-trader.py'), path.join(home.root, 'py'));
    const logger = recordingLogger();
    // The real interpreter, not a pyenv shim: a shim still exec'ing when its daemon dies dies with it.
    const interpreter = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
    const s = supervisorFor('python-orphan-bot', { TRADING_SCRIPT: python, TRADING_ARGS: '600', TRADING_INTERPRETER: interpreter }, logger);
    const started = await s.start();
    const trader = await waitFor(async () => (await runningScript(python))[0], { what: 'the python trader in the table' });
    assert.equal(trader, started.pid);
    leftovers.push(trader);
    const outLog = started.status.outLogPath!;
    await waitFor(() => fs.existsSync(outLog) && fs.readFileSync(outLog, 'utf8').includes('started'), { what: 'the trader to be up' });
    await killDaemon(home.pm2Home, 'SIGKILL'); // a crash of the daemon: its apps live on
    assert.equal(daemonPid(home.pm2Home) !== undefined && isAlive(daemonPid(home.pm2Home)!), false, 'the daemon is gone');
    assert.ok(isAlive(trader), 'the trader lives on outside PM2');
    const stopped = await s.stop(); // reconnects (a new daemon, which knows nothing of it)
    assert.equal(stopped.wasRunning, true, `not "the trader was not running" (log: ${logger.lines.join('\n')})`);
    assert.equal(stopped.pid, trader);
    assert.deepEqual(stopped.endedOutsidePm2, [trader]);
    assert.match(stopText(stopped), /running outside PM2 \(PM2's daemon had lost it\): ended PID \d+/);
    assert.ok(!isAlive(trader), 'the orphan is gone');
  });
});
