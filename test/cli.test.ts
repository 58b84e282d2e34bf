// The terminal CLI as users run it: real `tradewarden` processes (bin/tradewarden.cjs) against a real
// PM2 daemon in a temp home — including the race the product exists for, from a cold PM2_HOME.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { parseConfig } from '../src/config.ts';
import { buildApp, type App } from '../src/app.ts';
import { silentLogger } from '../src/log.ts';
import { OperationError } from '../src/errors.ts';
import { startPaperBroker } from '../testkit/paper-broker.ts';
import { copyTrader, godDaemonsFor, isAlive, makeTempHome, waitFor, type TempHome } from '../testkit/pm2-home.ts';

const BIN = path.resolve('bin/tradewarden.cjs');
let home: TempHome;
let env: Record<string, string>;
let trader: string;
let app: App;

before(() => {
  home = makeTempHome('tw-cli-');
  trader = copyTrader(path.resolve('examples/heartbeat-trader.js'), path.join(home.root, 'bot'));
  env = { PM2_HOME: home.pm2Home, DATA_DIR: home.dataDir, TRADING_SCRIPT: trader, TRADING_KILL_TIMEOUT_MS: '1500', HOME: home.root };
  app = buildApp(parseConfig(env), { logger: silentLogger, deliversAlerts: false, env: { ...process.env, ...env } });
});

after(async () => {
  await app?.close();
  await home?.cleanup();
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], extraEnv: Record<string, string> = {}, input?: string): Promise<Run> {
  return new Promise((resolve) => {
    // A clean environment: only what a user would have, plus this test's home.
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: home.root,
      env: { PATH: process.env.PATH!, ...env, ...extraEnv },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.stdin.end(input ?? '');
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** PIDs of OS processes running this test's copy of the trader. */
function traderProcesses(): number[] {
  return fs
    .readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((pid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(trader);
      } catch {
        return false;
      }
    })
    .map(Number);
}

test('race from a cold PM2_HOME: 5 CLI starts and 20 in-process starts → one daemon, one trader, the rest refused', async () => {
  assert.deepEqual(godDaemonsFor(home.pm2Home), [], 'cold: no daemon yet');
  const operator = { id: 'cli:race', name: 'race', isOperator: true };
  const [cliRuns, inProcess] = await Promise.all([
    Promise.all(Array.from({ length: 5 }, () => cli(['start', '--json']))),
    Promise.allSettled(Array.from({ length: 20 }, () => app.core.start(operator))),
  ]);
  const cliStarted = cliRuns.filter((r) => r.code === 0).length;
  const cliRefused = cliRuns.filter((r) => r.code === 3).length;
  assert.equal(cliStarted + cliRefused, 5, `every CLI run started or was refused (none crashed): ${JSON.stringify(cliRuns.map((r) => [r.code, r.stderr.slice(0, 300)]))}`);
  const inStarted = inProcess.filter((r) => r.status === 'fulfilled').length;
  for (const r of inProcess) if (r.status === 'rejected') assert.ok(r.reason instanceof OperationError && r.reason.kind === 'refused', String(r.reason));
  assert.equal(cliStarted + inStarted, 1, 'exactly one start succeeded');
  assert.equal(godDaemonsFor(home.pm2Home).length, 1, 'exactly one PM2 daemon for this home');
  const running = traderProcesses();
  assert.equal(running.length, 1, 'exactly one OS process runs the trader');
  for (const r of cliRuns.filter((r) => r.code === 3)) assert.match(JSON.parse(r.stdout).error, /already running|in progress|running/i);

  const status = await cli(['status', '--json']);
  assert.equal(status.code, 0, status.stderr);
  const report = JSON.parse(status.stdout);
  assert.equal(report.process.state, 'online');
  assert.equal(report.process.pid, running[0]);

  const again = await cli(['start']);
  assert.equal(again.code, 3);
  assert.match(again.stderr, new RegExp(`Refused: .*${running[0]}`));
  assert.deepEqual(traderProcesses(), running, 'the running PID is untouched');

  const stopped = await cli(['stop']);
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.match(stopped.stdout, new RegExp(`Stopped the trader \\(PID ${running[0]}\\)`));
  assert.ok(!isAlive(running[0]), '!isAlive(running[0])');
  const audit = await cli(['audit', '--json']);
  const entries = JSON.parse(audit.stdout) as Array<{ who: string; what: string; outcome: string }>;
  assert.ok(entries.some((e) => e.what === 'stop' && e.outcome === 'ok' && e.who.startsWith('cli:')), 'entries.some((e) => e.what === \'stop\' && e.outcome === \'ok\' && e.who.startsWith(\'cli:\'))');
  assert.ok(entries.filter((e) => e.what === 'start' && e.outcome === 'refused').length >= 20, 'entries.filter((e) => e.what === \'start\' && e.outcome === \'refused\').length >= 20');
});

test('a rogue copy: listed by `duplicates`, blocks `start`, ended by `stop-duplicates` from a fresh CLI process', async () => {
  const rogue = spawn(process.execPath, [path.basename(trader)], { cwd: path.dirname(trader), detached: true, stdio: 'ignore' });
  try {
    let listed: Array<{ pid: number; command: string; foundIn: string }> = [];
    for (let i = 0; i < 50 && !listed.some((d) => d.pid === rogue.pid); i++) {
      listed = JSON.parse((await cli(['duplicates', '--json'])).stdout);
    }
    const found = listed.find((d) => d.pid === rogue.pid);
    assert.ok(found, 'the rogue is listed');
    assert.equal(found.foundIn, 'os');
    assert.match(found.command, /heartbeat-trader\.js/);
    const refused = await cli(['start']);
    assert.equal(refused.code, 3);
    assert.match(refused.stderr, new RegExp(String(rogue.pid)));
    const stopped = await cli(['stop-duplicates', String(rogue.pid)]);
    assert.equal(stopped.code, 0, stopped.stderr + stopped.stdout);
    assert.match(stopped.stdout, new RegExp(`Stopped PID ${rogue.pid}`));
    assert.ok(!isAlive(rogue.pid!), '!isAlive(rogue.pid!)');
  } finally {
    if (isAlive(rogue.pid!)) process.kill(rogue.pid!, 'SIGKILL');
  }
});

test('help, usage errors and configuration errors have their exit codes', async () => {
  const help = await cli(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /stop-duplicates PID/);
  assert.match((await cli(['flatten', '--help'])).stdout, /Type FLATTEN|type FLATTEN/i);
  const unknown = await cli(['launch']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /Unknown command "launch"/);
  // Strict: an unknown flag, a bad value, a typo'd verb or a stray word is refused, by name.
  const strict = await Promise.all([cli(['status', '--bogus']), cli(['stauts']), cli(['status', 'now']), cli(['alerts', '--count', '99'])]);
  assert.deepEqual(strict.map((r) => r.code), [2, 2, 2, 2], strict.map((r) => r.stderr).join('\n'));
  assert.match(strict[0].stderr, /unknown option --bogus/);
  assert.match(strict[1].stderr, /Unknown command "stauts"\. Did you mean "status"\?/);
  assert.match(strict[2].stderr, /status takes no words, got "now"/);
  assert.match(strict[3].stderr, /--count is "99": expected a whole number from 1 to 25/);
  const noPids = await cli(['stop-duplicates']);
  assert.equal(noPids.code, 2);
  assert.match(noPids.stderr, /needs one or more PIDs/);
  const badConfig = await cli(['status'], { MAX_TRADES_PER_HOUR: 'lots', APCA_API_KEY_ID: 'PKLEAKCHECK' });
  assert.equal(badConfig.code, 2);
  assert.match(badConfig.stderr, /MAX_TRADES_PER_HOUR is "lots"/);
  assert.match(badConfig.stderr, /APCA_API_SECRET_KEY is missing/);
  assert.doesNotMatch(badConfig.stderr + badConfig.stdout, /PKLEAKCHECK/);
});

test('flatten asks for a typed confirmation and does nothing without it', async () => {
  const run = await cli(['flatten'], { APCA_API_KEY_ID: 'PKX', APCA_API_SECRET_KEY: 'SKX', APCA_API_BASE_URL: 'http://127.0.0.1:9' }, 'no\n');
  assert.equal(run.code, 3);
  assert.match(run.stderr, /Type FLATTEN to confirm/);
  assert.match(run.stderr, /not confirmed: nothing was done/);
});

test('account, trades, alerts and flatten --yes against the paper broker', async () => {
  const paper = await startPaperBroker({ keyId: 'PKCLI', secretKey: 'SKCLI', prices: { AAPL: 200, 'BTC/USD': 50_000 } });
  try {
    const broker = { APCA_API_BASE_URL: paper.url, APCA_API_KEY_ID: 'PKCLI', APCA_API_SECRET_KEY: 'SKCLI' };
    paper.placeOrder({ symbol: 'AAPL', side: 'buy', qty: 5, type: 'market', time_in_force: 'day' });
    paper.placeOrder({ symbol: 'BTC/USD', side: 'buy', notional: 100, type: 'market', time_in_force: 'gtc' });

    const account = await cli(['account'], broker);
    assert.equal(account.code, 0, account.stderr);
    assert.match(account.stdout, /Equity \$[\d,]+\.\d\d/);
    assert.match(account.stdout, /AAPL\s+5/);

    const flatten = await cli(['flatten', '--yes', '--json'], broker);
    assert.equal(flatten.code, 0, flatten.stderr);
    const report = JSON.parse(flatten.stdout);
    assert.equal(report.flat, true);
    assert.deepEqual(report.symbols.map((s: { symbol: string; outcome: string }) => `${s.symbol}:${s.outcome}`).sort(), ['AAPL:closed', 'BTCUSD:closed']);

    const alerts = await cli(['alerts'], broker);
    assert.equal(alerts.code, 0);
    assert.match(alerts.stdout, /Flatten done: account is flat/);
    assert.match(alerts.stdout, /log: pending/, 'the CLI records it; the controller delivers it');

    // Read fresh from the broker: 2 buys + flatten's 2 closing sells. The sells are the
    // controller's own orders (recorded by the flatten), not the trader's: 2 count, not 4.
    const trades = await cli(['trades', '--json'], broker);
    assert.equal(trades.code, 0, trades.stderr);
    const summary = JSON.parse(trades.stdout);
    assert.equal(summary.limit, 3);
    assert.equal(summary.count, 2);
    assert.deepEqual(summary.recent.map((t: { symbol: string; side: string }) => t.side).sort(), ['buy', 'buy', 'sell', 'sell']);

    // The trade stream runs in the controller; `status` in another process shows what it recorded.
    paper.refuseStream(true);
    const controllerSide = buildApp(parseConfig({ ...env, ...broker }), { logger: silentLogger, deliversAlerts: false, env: { ...process.env, ...env }, streamBackoffMs: 5000 });
    try {
      controllerSide.startStream();
      await waitFor(async () => (await controllerSide.store.read()).watch.stream?.refused, { what: 'the refusal recorded' });
      const status = await cli(['status'], broker);
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, /trade stream reconnecting since [\d-]+ [\d:]+Z — the broker refused the stream credentials .*\(as the controller last recorded it\)/);
      assert.ok(!status.stdout.includes('SKCLI'), 'no secret in the status');
    } finally {
      await controllerSide.tradeStream!.stop();
    }
  } finally {
    await paper.close();
  }
});

test('pnl: the figures and a text sparkline, --json for scripts, a bad period named with the choices', async () => {
  const paper = await startPaperBroker({ keyId: 'PKCLI', secretKey: 'SKCLI', cash: 100_000 });
  try {
    const broker = { APCA_API_BASE_URL: paper.url, APCA_API_KEY_ID: 'PKCLI', APCA_API_SECRET_KEY: 'SKCLI' };
    const now = Date.now();
    paper.seedHistory([5, 4, 3, 2, 1].map((daysAgo, i) => ({ at: now - daysAgo * 86_400_000, equity: [95_000, 97_000, 96_000, 99_000, 98_000][i] })));

    const text = await cli(['pnl', '--period', 'week'], broker);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^P\/L, last week:$/m);
    assert.match(text.stdout, /^ {2}Equity now \$100,000\.00$/m);
    assert.match(text.stdout, /^ {2}P\/L over the week \+\$5,000\.00 \(\+5\.26%\) from \$95,000\.00$/m);
    assert.match(text.stdout, /^ {2}Best step \+\$3,000\.00 .* worst step -\$1,000\.00 /m);
    assert.match(text.stdout, /^ {2}[▁▂▃▄▅▆▇█]{8,}  \(\d+ points, 1H steps\)$/m, 'the curve as a sparkline');

    const json = await cli(['pnl', '--json'], broker);
    assert.equal(json.code, 0, json.stderr);
    const report = JSON.parse(json.stdout);
    assert.deepEqual([report.period, report.timeframe, report.equity, report.baseValue, report.change], ['month', '1D', 100_000, 95_000, 5_000]);
    assert.ok(report.points.length >= 5, `the curve's points are in the JSON (${report.points.length})`);

    const bad = await cli(['pnl', '--period', 'fortnight'], broker);
    assert.equal(bad.code, 2);
    // The catalogue's strict parsing names the option, the word and every choice (as for any choice option).
    assert.match(bad.stderr, /pnl: --period is "fortnight": expected one of day, week, month, year/);
  } finally {
    await paper.close();
  }
});
