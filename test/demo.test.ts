// `npm run demo` end to end, as CI runs it: the real entry point in a child process with no TTY,
// its folder (PM2_HOME, DATA_DIR, trader copy) in a temp dir, a real PM2 daemon, real traders and
// the real paper broker. Commands are piped in as a user would type them. Afterwards nothing it
// started may be left: every process it starts carries TRADEWARDEN_DEMO_DIR=<its folder> in its
// environment, so "no process with that in /proc/PID/environ" covers the trader, the copy outside
// PM2 and the daemon; the daemon is also looked for by its PM2_HOME, and the broker's port must be
// closed.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { commandSpecs, usageOf } from '../src/demo/console.ts';
import { STORE_FILE, Store } from '../src/store/store.ts';
import type { StoreData } from '../src/store/schema.ts';
import { godDaemonsFor, isAlive, killPid, waitFor } from '../testkit/pm2-home.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MAIN = path.join(root, 'src/demo/main.ts');
const linux = process.platform === 'linux';

const homes: string[] = [];
function tempHome(): string {
  // Short: PM2's sockets live in <home>/pm2, and socket paths are limited to ~107 bytes.
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'twd-'));
  homes.push(home);
  return home;
}

/** PIDs of processes whose environment marks them as started by the demo of `home`. */
function markedPids(home: string): number[] {
  const marker = `TRADEWARDEN_DEMO_DIR=${home}`;
  return fs
    .readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((pid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(marker);
      } catch {
        return false;
      }
    });
}

/** Nothing the demo of `home` started is running, and its broker no longer listens. */
async function assertNothingLeft(home: string, brokerPort?: number): Promise<void> {
  assert.deepEqual(markedPids(home), [], 'processes started by the demo are still running');
  assert.deepEqual(godDaemonsFor(path.join(home, 'pm2')), [], 'a PM2 daemon of the demo home is still running');
  if (brokerPort !== undefined) {
    const refused = await new Promise<boolean>((resolve) => {
      const socket = net.connect(brokerPort, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('error', () => resolve(true));
    });
    assert.ok(refused, `the paper broker still listens on port ${brokerPort}`);
  }
}

after(async () => {
  // Only if a test failed half-way: end what carries our homes' marker, by PID; remove the homes.
  for (const home of homes) {
    for (const pid of markedPids(home)) await killPid(pid, 'SIGTERM', 5000).catch(() => undefined);
    fs.rmSync(home, { recursive: true, force: true });
  }
});

interface Demo {
  child: ChildProcessWithoutNullStreams;
  output(): string;
  /** Waits for `pattern` in the output after character `from`; returns the match and where it ends. */
  expect(pattern: RegExp, options?: { from?: number; timeoutMs?: number }): Promise<{ match: RegExpExecArray; end: number }>;
  /** Types a line; returns the output length at that moment (to look for the answer after it). */
  type(line: string): number;
  exited: Promise<number | null>;
}

function startDemo(home: string, args: string[], env: NodeJS.ProcessEnv = {}): Demo {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, '--home', home, ...args], {
    cwd: root,
    // No Discord whatever the developer's .env says (dotenv never overrides a variable that is set).
    env: { ...process.env, NO_COLOR: '1', DISCORD_TOKEN: '', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => text,
    async expect(pattern, options = {}) {
      const from = options.from ?? 0;
      const timeoutMs = options.timeoutMs ?? 20_000;
      try {
        return await waitFor(
          () => {
            const match = pattern.exec(text.slice(from));
            return match ? { match, end: from + match.index + match[0].length } : undefined;
          },
          { timeoutMs, intervalMs: 50 },
        );
      } catch {
        throw new Error(`no ${pattern} in the demo's output within ${timeoutMs} ms (after character ${from}):\n${text}`);
      }
    },
    type(line) {
      const at = text.length;
      child.stdin.write(line + '\n');
      return at;
    },
    exited,
  };
}

/** The demo's data file as tradewarden reads it (its trades from the fills ledger beside it). */
function readStore(home: string): Promise<StoreData> {
  return new Store(path.join(home, 'data')).read();
}

describe('npm run demo', { concurrency: true, skip: linux ? false : 'reads /proc to prove nothing is left' }, () => {
  it('--scenario runaway re-enacts the incident: duplicate, trade-rate alert, breaker; the console stops the copy and flattens; nothing is left', { timeout: 90_000 }, async () => {
    const home = tempHome();
    const demo = startDemo(home, ['--scenario', 'runaway', '--exit-after', '25'], { DEMO_ORDER_EVERY_SECONDS: '1' });
    try {
      await demo.expect(/Type \/help/, { timeoutMs: 40_000 });
      const text = demo.output();
      const brokerPort = Number(/broker\s+http:\/\/127\.0\.0\.1:(\d+)/.exec(text)?.[1]);
      const daemonPid = Number(/daemon PID (\d+)/.exec(text)?.[1]);
      const traderPid = Number(/trader\s+trading-bot PID (\d+)/.exec(text)?.[1]);
      const roguePid = Number(/second copy, PID (\d+)/.exec(text)?.[1]);
      assert.ok(brokerPort > 0 && daemonPid > 0 && traderPid > 0 && roguePid > 0, `start-up lines:\n${text}`);
      assert.match(text, new RegExp(`PM2_HOME=${path.join(home, 'pm2')}`));
      assert.deepEqual(godDaemonsFor(path.join(home, 'pm2')), [daemonPid], 'the demo runs its own PM2 daemon');
      assert.ok(markedPids(home).includes(roguePid) && markedPids(home).includes(traderPid), 'markedPids(home).includes(roguePid) && markedPids(home).includes(traderPid)');

      // The story, as the watchdog saw it: the stream's fills trip the breaker, which ends every copy.
      await demo.expect(/\[CRITICAL\] Trade rate exceeded: \d+ trades in the last hour \(limit 3\)/);
      const breaker = await demo.expect(/\[CRITICAL\] Breaker tripped: trading halted: [^\n]*/);
      assert.match(breaker.match[0], new RegExp(`PID ${traderPid} \\(stopped through PM2`));
      assert.match(breaker.match[0], new RegExp(`PID ${roguePid} \\((SIGTERM|SIGKILL): `));
      assert.match(breaker.match[0], /No copy of the trader runs here now/);
      await waitFor(() => !isAlive(traderPid) && !isAlive(roguePid), { timeoutMs: 5000, what: 'every copy to be halted' });

      let at = demo.type('/flatten');
      let answer = await demo.expect(/Type yes to confirm/, { from: at });
      at = demo.type('yes');
      await demo.expect(/FLAT: the broker shows no positions and no open orders\./, { from: answer.end });

      at = demo.type('/bot start');
      await demo.expect(/Refused: the breaker is tripped/, { from: at });
      at = demo.type('/bot status');
      await demo.expect(/breaker TRIPPED/, { from: at });
      at = demo.type('/bot logs lines:500');
      await demo.expect(/lines is "500": expected a whole number from 1 to 200/, { from: at });
      at = demo.type('/stauts');
      await demo.expect(/Unknown command "\/stauts"\. Did you mean \/bot status\?/, { from: at });

      // /help lists every command and subcommand of the Discord definitions.
      at = demo.type('/help');
      await demo.expect(/You are \S+ \(demo:\S+\), an operator/, { from: at });
      const help = demo.output().slice(at);
      for (const spec of commandSpecs()) assert.ok(help.includes(usageOf(spec)), `/help lacks ${usageOf(spec)}:\n${help}`);

      assert.equal(await demo.exited, 0, demo.output());
      assert.match(demo.output(), /Stopping \(--exit-after 25\)/);
      // The summary, beside the incident.
      assert.match(demo.output(), /The incident, in numbers[^]*trades made +\d+ in [\d.]+ s +\| 27 in 14 minutes/);
      assert.match(demo.output(), /crossing fill → halt +\d+ ms/);
      assert.match(demo.output(), /copies ended +2 /);

      // The data file tells the same story, and who did what.
      const data = await readStore(home);
      const kinds = new Set(data.alerts.map((a) => a.kind));
      for (const kind of ['trade_rate_exceeded', 'breaker_tripped', 'flatten_result'] as const) assert.ok(kinds.has(kind), `no ${kind} alert`);
      assert.ok(data.alerts.every((a) => a.deliveries.console?.deliveredAt !== undefined), 'every alert reached the console');
      assert.equal(data.breaker.tripped, true);
      const audited = data.audit.map((e) => `${e.who} ${e.what} ${e.outcome}`);
      assert.ok(audited.includes(`demo:${os.userInfo().username} start ok`), audited.join('\n'));
      assert.ok(audited.includes('controller stop ok'), audited.join('\n'));
      assert.ok(audited.includes('controller stop-duplicates ok'), audited.join('\n'));
      assert.ok(audited.includes(`demo:${os.userInfo().username} flatten ok`), audited.join('\n'));
      assert.ok(!fs.readFileSync(path.join(home, 'data', STORE_FILE), 'utf8').includes('PKDEMO'), 'broker keys in the data file');

      await assertNothingLeft(home, brokerPort);
    } finally {
      demo.child.kill('SIGKILL');
    }
  });

  it('--scenario loss: a bot losing under the trade limit is alerted and halted by the loss limit, the loss in numbers at the end', { timeout: 90_000 }, async () => {
    const home = tempHome();
    const demo = startDemo(home, ['--scenario', 'loss', '--exit-after', '20']);
    try {
      await demo.expect(/Type \/help/, { timeoutMs: 40_000 });
      const text = demo.output();
      const brokerPort = Number(/broker\s+http:\/\/127\.0\.0\.1:(\d+)/.exec(text)?.[1]);
      const traderPid = Number(/trader\s+trading-bot PID (\d+)/.exec(text)?.[1]);
      assert.ok(brokerPort > 0 && traderPid > 0, `start-up lines:\n${text}`);
      assert.match(text, /MAX_DAILY_LOSS 0\.5%, on loss: stop/);
      await demo.expect(/\[CRITICAL\] Loss limit crossed: Equity \$[\d,.]+: the day's loss \$[\d,.]+ \([\d.]+% of \$[\d,.]+, the broker's equity at its last close\) is past MAX_DAILY_LOSS/);
      const breaker = await demo.expect(/\[CRITICAL\] Breaker tripped: trading halted: loss limit: [^\n]*/);
      assert.match(breaker.match[0], new RegExp(`PID ${traderPid} \\(stopped through PM2`));
      await waitFor(() => !isAlive(traderPid), { timeoutMs: 5000, what: 'the trader halted' });
      assert.equal(await demo.exited, 0, demo.output());
      assert.match(demo.output(), /The loss, in numbers:[^]*MAX_DAILY_LOSS 0\.5% +\$[\d,.]+[^]*loss_limit alert → breaker alert +\d+ ms/);
      const data = await readStore(home);
      assert.deepEqual([data.breaker.tripped, data.breaker.cause], [true, 'loss_limit']);
      await assertNothingLeft(home, brokerPort);
    } finally {
      demo.child.kill('SIGKILL');
    }
  });

  it('--scenario runaway --gate: the order gate holds the limit before the broker and refuses the copy; the broker sees 3 trades', { timeout: 90_000 }, async () => {
    const home = tempHome();
    const demo = startDemo(home, ['--scenario', 'runaway', '--gate', '--exit-after', '15'], { DEMO_ORDER_EVERY_SECONDS: '1' });
    try {
      await demo.expect(/Type \/help/, { timeoutMs: 40_000 });
      const text = demo.output();
      const gatePort = Number(/gate\s+http:\/\/127\.0\.0\.1:(\d+)/.exec(text)?.[1]);
      const roguePid = Number(/second copy, PID (\d+)/.exec(text)?.[1]);
      assert.ok(gatePort > 0 && roguePid > 0, `start-up lines:\n${text}`);
      await demo.expect(new RegExp(`\\[CRITICAL\\] Order refused: not from the managed trader: Who: PID ${roguePid} `));
      await demo.expect(/\[WARNING\] Order refused: trade limit reached: Who: PID \d+ .*the managed trader/);
      assert.equal(await demo.exited, 0, demo.output());
      const data = await readStore(home);
      // The copy placed an order every second and so did the trader, for 15 s: without the gate the
      // broker would have seen dozens; with it, the limit.
      assert.equal(data.trades.seen.length, 3, `trades the broker filled: ${JSON.stringify(data.trades.seen)}`);
      const refusals = data.alerts.filter((a) => a.kind === 'order_refused');
      assert.deepEqual(refusals.map((a) => a.facts.reason).sort(), ['not_managed_trader', 'trade_limit'], 'one alert per episode, not per order');
      assert.equal(data.breaker.tripped, false, 'the limit was never crossed, so the breaker had nothing to do');
      await assertNothingLeft(home);
    } finally {
      demo.child.kill('SIGKILL');
    }
  });

  it('--broker ccxt --scenario runaway: the same story on an exchange read through ccxt (the Kraken stand-in), halted from the exchange\'s push (watchMyTrades); flatten sells at market; nothing is left', { timeout: 90_000 }, async () => {
    const home = tempHome();
    const demo = startDemo(home, ['--broker', 'ccxt', '--scenario', 'runaway', '--exit-after', '20'], { DEMO_ORDER_EVERY_SECONDS: '1' });
    try {
      await demo.expect(/Type \/help/, { timeoutMs: 40_000 });
      const text = demo.output();
      assert.match(text, /broker\s+http:\/\/127\.0\.0\.1:\d+ {2}local Kraken stand-in, read through ccxt \(BROKER=ccxt\)/);
      assert.match(text, /the exchange pushes each trade as it happens \(through ccxt's watchMyTrades\)/);
      const brokerPort = Number(/broker\s+http:\/\/127\.0\.0\.1:(\d+)/.exec(text)?.[1]);
      await demo.expect(/\[CRITICAL\] Trade rate exceeded: \d+ trades in the last hour \(limit 3\)/);
      await demo.expect(/The exchange pushed each trade as it was booked \(ccxt's watchMyTrades; the poll, fetchMyTrades every 2 s, only reconciles\)/);
      const breaker = await demo.expect(/\[CRITICAL\] Breaker tripped: trading halted: [^\n]*/);
      assert.match(breaker.match[0], /stopped through PM2/);
      const at = demo.type('/flatten');
      const answer = await demo.expect(/Type yes to confirm/, { from: at });
      demo.type('yes');
      const flat = await demo.expect(/FLAT: the broker shows no positions and no open orders\.[^]*?\(\d/, { from: answer.end });
      assert.match(flat.match[0], /ETH\/USD .*closed/, 'the seeded ETH was sold at market');
      assert.equal(await demo.exited, 0, demo.output());
      assert.match(demo.output(), /The incident, in numbers[^]*copies ended +2 /);
      await assertNothingLeft(home, brokerPort);
    } finally {
      demo.child.kill('SIGKILL');
    }
  });

  it('--broker ccxt with --gate is refused: the order gate is Alpaca\'s alone', async () => {
    const demo = startDemo(tempHome(), ['--broker', 'ccxt', '--gate']);
    assert.equal(await demo.exited, 2, demo.output());
    assert.match(demo.output(), /--gate with --broker ccxt: the order gate is Alpaca's alone/);
  });

  it('refuses a second demo on the same folder, and a demo after a crash ends what the crashed one left', { timeout: 90_000 }, async () => {
    const home = tempHome();
    const pm2Home = path.join(home, 'pm2');
    const first = startDemo(home, []);
    try {
      await first.expect(/Type \/help/, { timeoutMs: 40_000 });
      const daemonPid = Number(/daemon PID (\d+)/.exec(first.output())?.[1]);
      const traderPid = Number(/trader\s+trading-bot PID (\d+)/.exec(first.output())?.[1]);
      assert.ok(isAlive(daemonPid) && isAlive(traderPid), first.output());

      // A second demo on the same folder is refused, clearly, and touches nothing.
      const second = startDemo(home, ['--exit-after', '1']);
      assert.equal(await second.exited, 3, second.output());
      assert.match(second.output(), new RegExp(`a demo is already running in ${home} \\(PID ${first.child.pid}\\)`));
      assert.ok(isAlive(daemonPid) && isAlive(traderPid), 'the refused demo ended the running one\'s processes');

      // A crash: the demo dies, its PM2 daemon and trader live on.
      first.child.kill('SIGKILL');
      await first.exited;
      assert.ok(isAlive(daemonPid) && isAlive(traderPid), 'isAlive(daemonPid) && isAlive(traderPid)');

      const third = startDemo(home, ['--exit-after', '1']);
      assert.equal(await third.exited, 0, third.output());
      assert.match(third.output(), new RegExp(`Ended the PM2 daemon a previous demo left running \\(PID ${daemonPid}`));
      assert.match(third.output(), /Type \/help/);
      assert.ok(!isAlive(daemonPid) && !isAlive(traderPid), '!isAlive(daemonPid) && !isAlive(traderPid)');
      assert.deepEqual(godDaemonsFor(pm2Home), []);
      await assertNothingLeft(home);
    } finally {
      first.child.kill('SIGKILL');
    }
  });
});
