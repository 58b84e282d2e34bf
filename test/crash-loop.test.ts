// A trader that keeps crashing under a real PM2 daemon: PM2 restarts it, the controller notices the
// restart counter climbing (3 in 10 minutes) and raises crash_loop once — not once per scan.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { parseConfig } from '../src/config.ts';
import { buildApp } from '../src/app.ts';
import { silentLogger } from '../src/log.ts';
import type { StoredAlert } from '../src/store/schema.ts';
import fs from 'node:fs';
import { copyTrader, godDaemonsFor, makeTempHome, waitFor } from '../testkit/pm2-home.ts';

const home = makeTempHome('tw-crash-');
const trader = copyTrader(path.resolve('test/fixtures/short-lived-trader.js'), path.join(home.root, 'bot'));
const env = { PM2_HOME: home.pm2Home, DATA_DIR: home.dataDir, TRADING_SCRIPT: trader, HOME: home.root };
const alerts: StoredAlert[] = [];
const app = buildApp(parseConfig(env), {
  logger: silentLogger,
  deliversAlerts: true,
  sinks: [{ name: 'test', deliver: async (a) => void alerts.push(a) }],
  env: { ...process.env, ...env },
});
after(async () => {
  await app.close();
  await home.cleanup();
});

test('restarts climbing → one crash_loop alert with the counts', async () => {
  // The first PM2 call spawns this home's daemon: it must not inherit the controller's Discord token.
  process.env.DISCORD_TOKEN = 'MTQwMDAwMDAwMDAwMDAwMDAw.not-for-the-daemon';
  await app.core.start({ id: 'cli:test', name: 'test', isOperator: true });
  assert.equal(process.env.DISCORD_TOKEN, 'MTQwMDAwMDAwMDAwMDAwMDAw.not-for-the-daemon', 'put back after connecting');
  delete process.env.DISCORD_TOKEN;
  const [daemon] = godDaemonsFor(home.pm2Home);
  assert.ok(daemon, 'a daemon for this home');
  assert.doesNotMatch(fs.readFileSync(`/proc/${daemon}/environ`, 'utf8'), /not-for-the-daemon/);
  await waitFor(
    async () => {
      await app.processWatch.scan();
      return alerts.some((a) => a.kind === 'crash_loop');
    },
    { timeoutMs: 30_000, intervalMs: 300, what: 'a crash_loop alert' },
  );
  for (let i = 0; i < 3; i++) await app.processWatch.scan();
  const crashLoops = alerts.filter((a) => a.kind === 'crash_loop');
  assert.equal(crashLoops.length, 1);
  assert.ok((crashLoops[0].facts.restartsInWindow as number) >= 3, '(crashLoops[0].facts.restartsInWindow as number) >= 3');
  assert.match(crashLoops[0].body, /restarted \d+ times in the last 10 minutes/);
  await app.core.stop({ id: 'cli:test', name: 'test', isOperator: true });
});
