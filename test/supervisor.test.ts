// The supervisor against a real PM2 daemon in a temp PM2_HOME, with real trader processes.
// One daemon serves the file (PM2 keeps its paths in module-globals: one home per process); it
// starts cold so the first test can race 20 starts against the daemon spawn, and is ended by its
// PID in `after`. Traders run from copies in the temp dir, so a parallel test file running the
// same example cannot look like a duplicate (and ours cannot look like theirs).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Supervisor } from '../src/supervisor/supervisor.ts';
import { OperationError } from '../src/errors.ts';
import { silentLogger } from '../src/log.ts';
import { clockTicksFromAuxv, descendantsOf, parseCmdline, parsePs, readProcessTable } from '../src/os/process-table.ts';
import { findDuplicates, programOf, runsScript } from '../src/supervisor/duplicate-scan.ts';
import type { Pm2Entry } from '../src/supervisor/pm2-connection.ts';
import { tailLines } from '../src/supervisor/log-tail.ts';
import { copyTrader, godDaemonsFor, isAlive, killDaemon, killPid, makeTempHome, waitFor, type TempHome } from '../testkit/pm2-home.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixtures = path.join(root, 'test/fixtures');
const pm2Cli = path.join(root, 'node_modules/pm2/bin/pm2');

/** OS processes (outside or inside PM2) running `script`. */
async function processesRunning(script: string): Promise<number[]> {
  return (await readProcessTable()).filter((p) => runsScript(p, [script])).map((p) => p.pid);
}

/**
 * Waits until exactly `pids` run `script`. A fresh PM2 node trader shows PM2's wrapper
 * (ProcessContainerFork.js) until it renames itself "node <script>", and a pyenv python is a bash
 * shim until it execs: both take a moment on a loaded machine. An extra copy never goes away, so
 * this still fails on two.
 */
async function expectOnlyRunning(script: string, pids: number[]): Promise<void> {
  let seen: number[] = [];
  try {
    await waitFor(async () => {
      seen = (await processesRunning(script)).sort();
      return JSON.stringify(seen) === JSON.stringify([...pids].sort());
    }, { timeoutMs: 5000, what: `only ${pids.join(', ')} running ${script}` });
  } catch {
    assert.deepEqual(seen, pids, `processes running ${script}`);
  }
}

function expectRefused(error: unknown, pattern?: RegExp): true {
  assert.ok(error instanceof OperationError, `expected an OperationError, got ${String(error)}`);
  assert.equal(error.kind, 'refused', error.message);
  if (pattern) assert.match(error.message, pattern);
  return true;
}

/** Children we spawned outside PM2 (rogue copies): ended by PID in `after`. */
const spawned: ChildProcess[] = [];
function spawnRogue(command: string, args: string[], cwd: string): ChildProcess {
  // As `nohup python3 bot.py &` from another shell would: relative path, run from the script's dir.
  const child = spawn(command, args, { cwd, detached: true, stdio: 'ignore' });
  child.unref();
  spawned.push(child);
  return child;
}

describe('duplicate matching (no PM2)', () => {
  const script = '/srv/bot/bot.py';

  it('finds the program behind interpreters and their options', () => {
    assert.equal(programOf(['python3', 'bot.py']), 'bot.py');
    assert.equal(programOf(['/usr/bin/python3.11', '-u', '-X', 'dev', 'bot.py', '--live']), 'bot.py');
    assert.equal(programOf(['node', '--import', 'tsx', 'bot.ts']), 'bot.ts');
    assert.equal(programOf(['python3', '-c', 'import bot']), undefined);
    assert.equal(programOf(['/srv/bot/bot.py', '--live']), '/srv/bot/bot.py');
    assert.equal(programOf(['vim', 'bot.py']), 'vim');
  });

  it('matches by the path resolved against the process cwd, not by a word in the command line', () => {
    assert.ok(runsScript({ argv: ['python3', 'bot.py'], cwd: '/srv/bot' }, [script]), 'runsScript({ argv: [\'python3\', \'bot.py\'], cwd: \'/srv/bot\' }, [script])');
    assert.ok(runsScript({ argv: ['python3', '../bot/bot.py'], cwd: '/srv/other' }, [script]), 'runsScript({ argv: [\'python3\', \'../bot/bot.py\'], cwd: \'/srv/other\' }, [script])');
    assert.ok(runsScript({ argv: ['/usr/bin/python3', '/srv/bot/bot.py'] }, [script]), 'runsScript({ argv: [\'/usr/bin/python3\', \'/srv/bot/bot.py\'] }, [script])');
    assert.ok(!runsScript({ argv: ['python3', 'bot.py'], cwd: '/home/someone' }, [script]), 'another bot.py elsewhere');
    assert.ok(!runsScript({ argv: ['vim', 'bot.py'], cwd: '/srv/bot' }, [script]), 'an editor');
    assert.ok(!runsScript({ argv: ['tail', '-f', 'bot.log'], cwd: '/srv/bot' }, [script]), 'a log reader');
    assert.ok(!runsScript({ argv: ['python3', '-m', 'bot'], cwd: '/srv/bot' }, [script]), '!runsScript({ argv: [\'python3\', \'-m\', \'bot\'], cwd: \'/srv/bot\' }, [script])');
    // cwd unreadable (another user's process): the basename is all we can go by
    assert.ok(runsScript({ argv: ['python3', 'bot.py'] }, [script]), 'runsScript({ argv: [\'python3\', \'bot.py\'] }, [script])');
  });

  it('reads a rewritten process title (PM2 names its node wrapper "node <script>")', () => {
    assert.deepEqual(parseCmdline('node /srv/bot/bot.js\0\0\0\0'), ['node', '/srv/bot/bot.js']);
    assert.deepEqual(parseCmdline('python3\0bot.py\0'), ['python3', 'bot.py']);
  });

  it('reads the clock tick (start times) from the auxiliary vector, as getconf CLK_TCK says, without a child process', { skip: process.platform !== 'linux' }, () => {
    const getconf = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    assert.equal(clockTicksFromAuxv(), getconf);
    // A vector without AT_CLKTCK (type 17) before AT_NULL says nothing, so getconf is asked.
    const words = (pairs: Array<[number, number]>) => Buffer.concat(pairs.map(([t, v]) => { const b = Buffer.alloc(16); b.writeBigUInt64LE(BigInt(t)); b.writeBigUInt64LE(BigInt(v), 8); return b; }));
    if (process.arch === 'x64' || process.arch === 'arm64') {
      assert.equal(clockTicksFromAuxv(words([[6, 4096], [17, 250], [0, 0]])), 250);
      assert.equal(clockTicksFromAuxv(words([[6, 4096], [0, 0], [17, 250]])), undefined);
    }
  });

  it('parses the ps fallback, whose start time is five words', () => {
    const [row] = parsePs('  4242     1 Mon Jan  5 15:00:00 2026 python3 bot.py --live\n');
    assert.equal(row!.pid, 4242);
    assert.deepEqual(row!.argv, ['python3', 'bot.py', '--live']);
    assert.equal(new Date(row!.startedAt!).getFullYear(), 2026);
  });

  it('reports a second PM2 entry and an outsider, but not the trader, its children, or us', () => {
    const entry = (pmId: number, name: string, pid: number, status = 'online'): Pm2Entry => ({
      pmId, name, pid, status, restarts: 0, unstableRestarts: 0, exitCode: null, script,
    });
    const primary = entry(0, 'trading-bot', 100);
    const entries = [primary, entry(1, 'bot-copy', 200), entry(2, 'old', 0, 'stopped'), entry(3, 'trading-bot', 250)];
    const table = [
      { pid: 1, ppid: 0, argv: ['init'], command: 'init' },
      { pid: 100, ppid: 50, argv: ['python3', '/srv/bot/bot.py'], command: 'python3 /srv/bot/bot.py', cwd: '/srv/bot' },
      { pid: 101, ppid: 100, argv: ['python3', 'bot.py'], command: 'python3 bot.py', cwd: '/srv/bot' }, // trader's child
      { pid: 200, ppid: 50, argv: ['python3', '/srv/bot/bot.py'], command: 'python3 /srv/bot/bot.py', cwd: '/srv/bot' },
      { pid: 250, ppid: 50, argv: ['python3', '/srv/bot/bot.py'], command: 'python3 /srv/bot/bot.py', cwd: '/srv/bot' },
      { pid: 300, ppid: 1, argv: ['python3', 'bot.py'], command: 'python3 bot.py', cwd: '/srv/bot', startedAt: 5 },
      { pid: 400, ppid: 1, argv: ['vim', 'bot.py'], command: 'vim bot.py', cwd: '/srv/bot' },
      { pid: 500, ppid: 1, argv: ['python3', 'bot.py'], command: 'python3 bot.py', cwd: '/srv/bot' }, // us
    ];
    const found = findDuplicates({ name: 'trading-bot', scripts: [script], entries, primary, table, selfPid: 500 });
    assert.deepEqual(
      found.map((d) => [d.pid, d.foundIn, d.pm2Name]),
      [
        [200, 'pm2', 'bot-copy'],
        [250, 'pm2', 'trading-bot'],
        [300, 'os', undefined],
      ],
    );
    assert.equal(found[2]!.command, 'python3 bot.py');
  });

  it('tails a file from its end', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tw-tail-')), 'x.log');
    fs.writeFileSync(file, Array.from({ length: 50_000 }, (_, i) => `line ${i}`).join('\n') + '\n');
    assert.deepEqual(await tailLines(file, 3), ['line 49997', 'line 49998', 'line 49999']);
    assert.deepEqual(await tailLines(path.join(path.dirname(file), 'missing.log'), 3), []);
    fs.rmSync(path.dirname(file), { recursive: true });
  });
});

describe('Supervisor with a real PM2 daemon', { timeout: 120_000 }, () => {
  let home: TempHome;
  let heartbeat: string; // our copy of examples/heartbeat-trader.js
  let supervisor: Supervisor;
  const supervisors: Supervisor[] = [];

  const make = (processName: string, env: NodeJS.ProcessEnv = {}, extra: Partial<ConstructorParameters<typeof Supervisor>[0]> = {}) => {
    const s = new Supervisor({
      pm2Home: home.pm2Home,
      dataDir: home.dataDir,
      processName,
      env: { ...process.env, TRADING_SCRIPT: heartbeat, ...env },
      logger: silentLogger,
      settleMs: 300,
      ...extra,
    });
    supervisors.push(s);
    return s;
  };

  before(() => {
    home = makeTempHome();
    heartbeat = copyTrader(path.join(root, 'examples/heartbeat-trader.js'), path.join(home.root, 'bots'));
  });

  after(async () => {
    for (const s of supervisors) await s.close().catch(() => undefined);
    for (const child of spawned) if (child.pid) await killPid(child.pid, 'SIGKILL');
    await home.cleanup(); // SIGTERM to our daemon: it stops its apps, then exits
    assert.deepEqual(godDaemonsFor(home.pm2Home), [], 'no daemon of ours is left');
  });

  it('20 concurrent starts on a cold PM2_HOME: one succeeds, one daemon, one trader', async () => {
    assert.deepEqual(godDaemonsFor(home.pm2Home), [], 'the home starts cold');
    // PM2 spawns its daemon with `{ PM2_HOME: home, ...process.env }`: a PM2_HOME in our own
    // environment would win. godDaemonsFor() below reads the daemon's environ, so this checks
    // that the supervisor's home is the one the daemon gets.
    const ownHome = process.env.PM2_HOME;
    process.env.PM2_HOME = path.join(home.root, 'not-this-home');
    // Four supervisors (four connections, as four fronts would hold) × five calls each.
    const fronts = [make('trading-bot'), make('trading-bot'), make('trading-bot'), make('trading-bot')];
    let results: PromiseSettledResult<Awaited<ReturnType<Supervisor['start']>>>[];
    try {
      // Each front also asks for status at the same moment: those connect outside the start guard,
      // so only the connect lock keeps them from spawning daemons of their own.
      const statuses = Promise.all(fronts.map((s) => s.status()));
      results = await Promise.allSettled(fronts.flatMap((s) => Array.from({ length: 5 }, () => s.start())));
      await statuses;
    } finally {
      if (ownHome === undefined) delete process.env.PM2_HOME;
      else process.env.PM2_HOME = ownHome;
    }
    const wins = results.filter((r) => r.status === 'fulfilled');
    const losses = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(wins.length, 1, `exactly one start wins: ${losses.map((l) => String(l.reason)).join(' | ')}`);
    for (const loss of losses) expectRefused(loss.reason, /already running/);
    const { pid } = wins[0]!.value;
    assert.equal(godDaemonsFor(home.pm2Home).length, 1, 'one God Daemon for the home');
    await expectOnlyRunning(heartbeat, [pid]);
    supervisor = fronts[0]!;
    for (const extra of fronts.slice(1)) await extra.close();
  });

  it('status shows the trader online with a live PID; a second start is refused and leaves it be', async () => {
    const status = await supervisor.status();
    assert.equal(status.state, 'online');
    assert.ok(status.pid && isAlive(status.pid), 'status.pid && isAlive(status.pid)');
    assert.equal(status.script, heartbeat);
    assert.ok(status.startedAt && status.startedAt <= Date.now(), 'status.startedAt && status.startedAt <= Date.now()');
    assert.ok(status.outLogPath?.startsWith(home.dataDir), 'logs under DATA_DIR/logs');
    assert.deepEqual(status.duplicates, []);

    await assert.rejects(supervisor.start(), (e) => expectRefused(e, new RegExp(`pid ${status.pid}`)));
    const again = await supervisor.status();
    assert.equal(again.pid, status.pid);
    assert.equal(again.restarts, 0, 'not restarted behind our back');
  });

  it('a short-lived reader (the CLI) sees the same status over PM2\'s RPC socket, without loading PM2\'s client; with no daemon it starts one as before', async () => {
    const full = await supervisor.status();
    const light = await make('trading-bot', {}, { lightPm2Reads: true }).status();
    const stable = ({ uptimeMs: _u, cpuPercent: _c, memoryBytes: _m, ...rest }: typeof full) => rest;
    assert.deepEqual(stable(light), stable(full));

    // In a process of its own: whether lib/API.js was loaded is only visible from a fresh module cache.
    const cold = makeTempHome('tw-light-');
    try {
      const script = `
        import { createRequire } from 'node:module';
        import { Pm2Connection } from './src/supervisor/pm2-connection.ts';
        import { silentLogger } from './src/log.ts';
        const apiLoaded = () => Object.keys(createRequire(import.meta.url).cache).some((k) => k.endsWith('/pm2/lib/API.js'));
        const out = {};
        const warm = new Pm2Connection({ pm2Home: process.env.WARM_HOME, logger: silentLogger, lightReads: true });
        out.warm = (await warm.list()).map((e) => e.name);
        out.apiLoadedAfterWarm = apiLoaded();
        console.log(JSON.stringify(out));
        process.exit(0);`;
      const run = (env: NodeJS.ProcessEnv) => JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8' }));
      const answer = run({ WARM_HOME: home.pm2Home });
      assert.deepEqual(answer.warm, ['trading-bot'], 'the trader is listed from the running daemon');
      assert.equal(answer.apiLoadedAfterWarm, false, 'PM2\'s client (lib/API.js) was not loaded for a read');

      const fallback = run({ WARM_HOME: cold.pm2Home });
      assert.deepEqual(fallback.warm, [], 'no daemon: list() connected the usual way and found nothing');
      assert.equal(fallback.apiLoadedAfterWarm, true, 'the usual way is PM2\'s client');
      assert.equal(godDaemonsFor(cold.pm2Home).length, 1, 'and, as before, a daemon was started for the home');
    } finally {
      await cold.cleanup();
    }
  });

  it('logs returns the last lines of the trader', async () => {
    const text = await waitFor(async () => {
      const t = await supervisor.logs(5);
      return t.includes('heartbeat-trader pid=') ? t : undefined;
    });
    assert.ok(text.split('\n').length <= 5, 'text.split(\'\\n\').length <= 5');
    assert.match(text, /^\d{4}-\d\d-\d\dT[\d:]+: /m, 'PM2 timestamps each line (time: true)');
  });

  it('stop ends the process in the OS; stopping again reports it was not running', async () => {
    const { pid } = await supervisor.status();
    const stopped = await supervisor.stop();
    assert.equal(stopped.pid, pid);
    assert.equal(stopped.wasRunning, true);
    assert.equal(stopped.forceKilled, false, 'the heartbeat trader exits on SIGINT');
    assert.ok(!isAlive(pid!), 'gone from the OS');
    assert.deepEqual(await processesRunning(heartbeat), []);
    assert.equal((await supervisor.status()).state, 'stopped');
    assert.equal((await supervisor.status()).lastExitCode, 0);

    const second = await supervisor.stop();
    assert.equal(second.wasRunning, false);
    assert.equal(second.pid, undefined);
  });

  it('start from stopped reuses no stale entry; restart gives a new PID and still exactly one', async () => {
    await supervisor.stop(); // whatever an earlier failure left behind
    const first = await supervisor.start();
    const restarted = await supervisor.restart();
    assert.equal(restarted.stopped.pid, first.pid);
    assert.notEqual(restarted.pid, first.pid);
    assert.ok(!isAlive(first.pid), '!isAlive(first.pid)');
    await expectOnlyRunning(heartbeat, [restarted.pid]);
    assert.equal(restarted.status.state, 'online');
    await supervisor.stop();
  });

  it('a trader that ignores SIGINT is killed after kill_timeout, with its child, and stop says so', async () => {
    const stubborn = make('stubborn-bot', {
      TRADING_SCRIPT: copyTrader(path.join(fixtures, 'ignores-sigint-trader.js'), path.join(home.root, 'bots'), 'stubborn.mjs'),
      TRADING_KILL_TIMEOUT_MS: '1500',
    });
    const { pid } = await stubborn.start();
    const child = await waitFor(async () => descendantsOf(await readProcessTable(), pid)[0], { what: 'the stubborn child' });
    const stopped = await stubborn.stop();
    assert.equal(stopped.forceKilled, true);
    assert.ok(stopped.durationMs >= 1500, `took ${stopped.durationMs} ms`);
    assert.ok(!isAlive(pid) && !isAlive(child.pid), 'parent and child are gone');
    // forceKilled comes from the daemon's own log line; this pins the wording we rely on.
    assert.match(fs.readFileSync(path.join(home.pm2Home, 'pm2.log'), 'utf8'), new RegExp(`Process with pid ${pid} still alive after 1500ms`));
  });

  it('a trader that dies at once: start fails and says why, and PM2 is not left restarting it', async () => {
    // A settle window long enough for node to boot and crash even on a loaded machine.
    const crashing = make('crash-bot', { TRADING_SCRIPT: copyTrader(path.join(fixtures, 'crashing-trader.js'), path.join(home.root, 'bots'), 'crash.mjs') }, { settleMs: 2000 });
    await assert.rejects(crashing.start(), (e) => {
      assert.ok(e instanceof OperationError && e.kind === 'failed', String(e));
      assert.match(e.message, /did not stay up: .*code 3/);
      return true;
    });
    const status = await crashing.status();
    assert.ok(status.state === 'stopped' || status.state === 'errored', status.state);
    assert.deepEqual(await processesRunning(status.script), []);
  });

  it('a crash-looping trader stopped between a crash and its relaunch stays stopped', async () => {
    // PM2 relaunches from a timer and opens log files before forking: a stop landing there used to
    // find the entry "stopped", answer "was not running", and the relaunch came up after it.
    const looping = make('loop-bot', {
      TRADING_SCRIPT: copyTrader(path.join(fixtures, 'short-lived-trader.js'), path.join(home.root, 'bots'), 'loop.mjs'),
    }, { settleMs: 20 });
    // PM2 hands the starting process's environment to the app: long enough for start to see it
    // settle, short enough to loop.
    process.env.SHORT_LIVED_MS = '400';
    try {
      for (let round = 1; round <= 4; round++) {
        await looping.start();
        // Aim for the gap (the entry shows "stopped"); a few restarts in, stop anyway: still mid-loop.
        await waitFor(async () => {
          const { state, restarts } = await looping.status();
          return state === 'stopped' || restarts >= 3;
        }, { intervalMs: 5, timeoutMs: 10_000, what: `round ${round}: the trader crash-looping` });
        await looping.stop();
        // No event says "PM2 did not relaunch it": look again after a relaunch would have shown.
        await delay(400);
        const status = await looping.status();
        assert.equal(status.state, 'stopped', `round ${round}: still stopped 400 ms after the stop (restarts ${status.restarts})`);
        assert.deepEqual(await processesRunning(status.script), [], `round ${round}: nothing runs the script`);
      }
    } finally {
      delete process.env.SHORT_LIVED_MS;
    }
  });

  it('a stop that lands while PM2 is relaunching a crashed trader (held at opening its log) stays stopped', async () => {
    // PM2 relaunches a crashed app from a timer, opens the app's log files, and only then forks.
    // With a FIFO as the out log, that open waits until the FIFO has a reader: the test holds the
    // relaunch there, lands the stop, and only then lets the relaunch go on. The bad order is
    // certain, not a matter of luck.
    const held = make('held-bot', { TRADING_SCRIPT: copyTrader(path.join(root, 'examples/heartbeat-trader.js'), path.join(home.root, 'bots'), 'held.mjs') });
    const outLog = path.join(home.dataDir, 'logs', 'held-bot.out.log');
    fs.mkdirSync(path.dirname(outLog), { recursive: true });
    execFileSync('mkfifo', [outLog]);
    const openReader = () => fs.openSync(outLog, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const launchesOnline = () => (fs.readFileSync(path.join(home.pm2Home, 'pm2.log'), 'utf8').match(/App \[held-bot:\d+\] online/g) ?? []).length;
    let reader: number | undefined = openReader(); // the first start's open goes through
    try {
      const { pid } = await held.start();
      const { restarts } = await held.status();
      fs.closeSync(reader);
      reader = undefined; // from here, PM2's next open of the out log waits
      const onlineBefore = launchesOnline();
      process.kill(pid, 'SIGKILL'); // a crash, to PM2
      await waitFor(async () => (await held.status()).restarts === restarts + 1, { what: 'PM2 relaunching the trader (held at its log)' });
      const stopping = held.stop();
      // The stop has landed: PM2 zeroes the PID of the entry it stops.
      await waitFor(async () => (await held.status()).pid === undefined, { what: 'the stop reaching PM2' });
      reader = openReader(); // the relaunch goes on
      await stopping;
      await waitFor(() => launchesOnline() === onlineBefore + 1, { what: 'PM2 done relaunching (its "online" line)' });
      const status = await held.status();
      assert.equal(status.state, 'stopped', `after the stop answered, PM2 brought the trader back (pid ${status.pid})`);
      assert.deepEqual(await processesRunning(status.script), [], 'nothing runs the script');
    } finally {
      if (reader === undefined) reader = openReader(); // never leave the daemon held
      await held.stop().catch(() => undefined);
      fs.closeSync(reader);
    }
  });

  it('a copy started outside PM2 is a duplicate: named, blocks start, ended only on request', async () => {
    await supervisor.stop();
    const rogue = spawnRogue(process.execPath, [path.basename(heartbeat)], path.dirname(heartbeat));
    const found = await waitFor(async () => (await supervisor.scanDuplicates()).find((d) => d.pid === rogue.pid), {
      what: 'the rogue copy in a scan',
    });
    assert.equal(found.foundIn, 'os');
    assert.match(found.command, /heartbeat-trader\.js/);
    assert.ok(found.startedAt && Math.abs(found.startedAt - Date.now()) < 60_000, 'start time from the OS');

    await assert.rejects(supervisor.start(), (e) => expectRefused(e, new RegExp(`pid ${rogue.pid}`)));
    assert.deepEqual(await processesRunning(heartbeat), [rogue.pid], 'the refused start started nothing');
    assert.equal((await supervisor.status()).duplicates[0]?.pid, rogue.pid, 'status lists it too');

    const result = await supervisor.stopDuplicates([rogue.pid!, process.pid]);
    assert.deepEqual(result.stopped, [{ pid: rogue.pid, signal: 'SIGTERM' }]);
    assert.deepEqual(result.notInLatestScan, [process.pid], 'a PID the scan did not report is refused');
    assert.deepEqual(result.failed, []);
    assert.ok(!isAlive(rogue.pid!), '!isAlive(rogue.pid!)');
    assert.ok(isAlive(process.pid), 'isAlive(process.pid)');
    assert.deepEqual(await supervisor.scanDuplicates(), []);
  });

  it('a second PM2 entry for the script (started by hand with the pm2 CLI) is a duplicate, deleted through PM2', async () => {
    await supervisor.stop();
    const cli = spawn(process.execPath, [pm2Cli, 'start', heartbeat, '--name', 'bot-copy'], {
      env: { ...process.env, PM2_HOME: home.pm2Home },
      stdio: 'ignore',
    });
    assert.equal(await new Promise((resolve) => cli.on('close', resolve)), 0, 'pm2 start by hand');
    const found = await waitFor(async () => (await supervisor.scanDuplicates()).find((d) => d.foundIn === 'pm2'), { what: 'the PM2 copy' });
    assert.equal(found.pm2Name, 'bot-copy');
    assert.ok(isAlive(found.pid), 'isAlive(found.pid)');
    await assert.rejects(supervisor.start(), (e) => expectRefused(e, /PM2 entry bot-copy/));

    const result = await supervisor.stopDuplicates([found.pid]);
    assert.deepEqual(result.stopped.map((s) => s.pid), [found.pid]);
    assert.ok(!isAlive(found.pid), '!isAlive(found.pid)');
    assert.deepEqual(await supervisor.scanDuplicates(), []);
  });

  it('a Python trader runs under PM2 and a stray python copy of it is found', async () => {
    const script = copyTrader(path.join(fixtures, 'python-trader.py'), path.join(home.root, 'pybot'), 'bot.py');
    const py = make('py-bot', { TRADING_SCRIPT: script });
    const { pid, status } = await py.start();
    assert.equal(status.script, script);
    assert.match(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'), /python/);
    await expectOnlyRunning(script, [pid]);
    await waitFor(async () => (await py.logs(3)).includes('python-trader'), { what: 'python output in the logs' });

    const rogue = spawnRogue('python3', ['bot.py'], path.dirname(script));
    const dup = await waitFor(async () => (await py.scanDuplicates()).find((d) => d.pid === rogue.pid), { what: 'the python rogue' });
    assert.equal(dup.foundIn, 'os');
    assert.deepEqual((await py.stopDuplicates([rogue.pid!])).stopped.map((s) => s.pid), [rogue.pid]);

    const stopped = await py.stop();
    assert.equal(stopped.forceKilled, false, 'it closed out on SIGINT');
    assert.ok(!isAlive(pid), '!isAlive(pid)');
  });

  it('a start while another process is inside the guard does not get past it: it times out, or waits and is refused; one trader', async () => {
    // The interleaving made certain: another OS process (test/fixtures/start-once.ts) is held
    // inside the guard, so only the cross-process lock in DATA_DIR stands between it and our start.
    // Its own copy of the script, so the file's other traders are not its duplicates.
    const script = copyTrader(path.join(root, 'examples/heartbeat-trader.js'), path.join(home.root, 'guarded'));
    const dataDir = path.join(home.root, 'guarded-data');
    const env = { ...process.env, PM2_HOME: home.pm2Home, DATA_DIR: dataDir, TRADING_PROCESS_NAME: 'guarded-bot', TRADING_SCRIPT: script, HOLD_IN_GUARD: '1' };
    const holder = spawn(process.execPath, ['--import', 'tsx', path.join(fixtures, 'start-once.ts')], { cwd: root, env, stdio: ['pipe', 'pipe', 'pipe'] });
    spawned.push(holder);
    let out = '';
    holder.stdout.on('data', (d) => (out += d));
    holder.stderr.on('data', (d) => (out += d));
    const closed = once(holder, 'close');
    await waitFor(() => out.includes('in the guard'), { timeoutMs: 30_000, what: 'the other process to be inside the guard' });

    // A start that may wait 1.5 s: the other process holds the guard longer, so it must give up.
    const impatient = make('guarded-bot', { TRADING_SCRIPT: script }, { dataDir, lockWaitMs: 1500 });
    await assert.rejects(impatient.start(), (e) => {
      assert.ok(e instanceof OperationError, `expected an OperationError, got ${String(e)}`);
      assert.match(e.message, /changing guarded-bot while we wanted to start still holds .*supervisor\.lock after 1500 ms/, 'gave up waiting for the guard');
      return true;
    });
    assert.deepEqual(await processesRunning(script), [], 'nothing started while the other process was inside the guard');

    // A patient start waits for the guard; the other start goes first, so ours is refused.
    const patient = make('guarded-bot', { TRADING_SCRIPT: script }, { dataDir });
    let settled = false;
    const waiting = patient.start().finally(() => (settled = true));
    waiting.catch(() => undefined); // judged below; not an unhandled rejection meanwhile
    await delay(300);
    assert.equal(settled, false, 'the patient start waits while the other process is inside the guard');
    holder.stdin!.end('go\n');
    await closed;
    const theirs = JSON.parse(out.trim().split('\n').pop() ?? '') as { ok: boolean; pid?: number };
    assert.equal(theirs.ok, true, `the other process's start, once released, succeeds: ${out}`);
    await assert.rejects(waiting, (e) => expectRefused(e, new RegExp(`already running \\(pid ${theirs.pid}`)));
    await expectOnlyRunning(script, [theirs.pid!]);
    await patient.stop();
    assert.ok(!isAlive(theirs.pid!), 'stopped');
  });

  it('the PM2 daemon killed under us: a clear error, then recovery, and the orphan shows as a duplicate', async () => {
    // Orphans of a dead daemon do not live long: PM2's node wrapper exits on its next metrics
    // send over the closed IPC channel (~1 s), and a chatty trader dies of EPIPE on its next
    // write. A quiet Python trader (no wrapper, one line a minute) lives on, as a real one might.
    const script = copyTrader(path.join(fixtures, 'python-trader.py'), path.join(home.root, 'quiet'), 'bot.py');
    // A new daemon answers its first list slowly on a loaded machine: give calls room.
    const quiet = make('quiet-bot', { TRADING_SCRIPT: script, TRADING_ARGS: '60' }, { callTimeoutMs: 15_000 });
    const { pid: trader } = await quiet.start();
    await expectOnlyRunning(script, [trader]);
    // …and has written its one line while the pipe still had a reader
    await waitFor(async () => (await quiet.logs(5)).includes(`python-trader pid=${trader} started`), { what: 'the quiet trader to start' });
    const daemon = await killDaemon(home.pm2Home, 'SIGKILL'); // a crash: its trader lives on
    assert.ok(daemon !== undefined && !isAlive(daemon), 'daemon !== undefined && !isAlive(daemon)');
    assert.ok(isAlive(trader), 'isAlive(trader)');

    await assert.rejects(quiet.status(), (e) => {
      assert.ok(e instanceof OperationError && e.kind === 'failed', String(e));
      assert.match(e.message, new RegExp(`PM2 daemon at ${home.pm2Home} is not answering`));
      return true;
    });
    const status = await quiet.status(); // reconnects: a new daemon for the home
    assert.equal(godDaemonsFor(home.pm2Home).length, 1);
    assert.equal(status.state, 'not_found', 'the new daemon never knew the trader');
    assert.deepEqual(status.duplicates.map((d) => [d.pid, d.foundIn]), [[trader, 'os']], 'the orphan is caught');
    await assert.rejects(quiet.start(), (e) => expectRefused(e, new RegExp(`pid ${trader}`)));
    assert.deepEqual((await quiet.stopDuplicates([trader])).stopped.map((s) => s.pid), [trader]);
    assert.ok(!isAlive(trader), '!isAlive(trader)');
  });
});

describe('exactly one across OS processes', { timeout: 60_000 }, () => {
  const homes: TempHome[] = [];
  after(async () => {
    for (const child of spawned) if (child.pid) await killPid(child.pid, 'SIGKILL');
    for (const home of homes) {
      await home.cleanup();
      assert.deepEqual(godDaemonsFor(home.pm2Home), []);
    }
  });

  /** Runs test/fixtures/start-once.ts in `count` processes at once against `home`. */
  async function raceProcesses(home: TempHome, count: number, extraEnv: NodeJS.ProcessEnv) {
    const env = { ...process.env, PM2_HOME: home.pm2Home, DATA_DIR: home.dataDir, TRADING_PROCESS_NAME: 'trading-bot', ...extraEnv };
    const runs = Array.from({ length: count }, () =>
      new Promise<{ ok: boolean; pid?: number; kind?: string; message?: string }>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', path.join(fixtures, 'start-once.ts')], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
        spawned.push(child);
        let out = '';
        let err = '';
        child.stdout.on('data', (d) => (out += d));
        child.stderr.on('data', (d) => (err += d));
        child.on('error', reject);
        child.on('close', (code) => {
          try {
            resolve(JSON.parse(out.trim().split('\n').pop() ?? ''));
          } catch {
            reject(new Error(`start-once exited ${code}: ${out}${err}`));
          }
        });
      }),
    );
    return Promise.all(runs);
  }

  it('5 processes each start() against one cold PM2_HOME: one trader, one daemon', async () => {
    const home = makeTempHome();
    homes.push(home);
    const script = copyTrader(path.join(root, 'examples/heartbeat-trader.js'), path.join(home.root, 'bots'));
    const results = await raceProcesses(home, 5, { TRADING_SCRIPT: script });
    const wins = results.filter((r) => r.ok);
    assert.equal(wins.length, 1, JSON.stringify(results));
    for (const r of results.filter((r) => !r.ok)) assert.equal(r.kind, 'refused', r.message);
    assert.equal(godDaemonsFor(home.pm2Home).length, 1, 'one God Daemon for the home');
    await expectOnlyRunning(script, [wins[0]!.pid!]);
  });

  it('6 processes connecting at once to a cold PM2_HOME (no guard, only the connect lock): one daemon', async () => {
    const home = makeTempHome();
    homes.push(home);
    const results = await raceProcesses(home, 6, { ACTION: 'status' });
    assert.ok(results.every((r) => r.ok), JSON.stringify(results));
    assert.equal(godDaemonsFor(home.pm2Home).length, 1, 'one God Daemon for the home');
  });
});
