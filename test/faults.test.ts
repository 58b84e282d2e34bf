// The fault suite: each fault inflicted on real processes (a real PM2 daemon in a temp home, the
// controller as its own process, the paper broker over HTTP), asserting that nothing is lost or
// repeated and that the outside world hears about it. Faults already covered elsewhere are not
// repeated here (see README "Reliability" for the map).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { ControlUnavailable, requestControl } from '../src/control/socket.ts';
import { Store } from '../src/store/store.ts';
import type { StoredAlert } from '../src/store/schema.ts';
import { startPaperBroker, type PaperBroker } from '../testkit/paper-broker.ts';
import { isAlive, makeTempHome, waitFor } from '../testkit/pm2-home.ts';

const home = makeTempHome('tw-faults-');
const children: ChildProcess[] = [];
const closers: Array<() => Promise<unknown> | unknown> = [];
after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const close of closers.reverse()) await close();
  await home.cleanup();
});
const baseEnv = { PATH: process.env.PATH!, HOME: home.root, PM2_HOME: home.pm2Home, LOG_LEVEL: 'info' };
const pm2Bin = path.resolve('node_modules/pm2/bin/pm2');
const alertsOf = async (dataDir: string, kind: StoredAlert['kind']) => (await new Store(dataDir).read()).alerts.filter((a) => a.kind === kind);

/** The controller's PID as its control socket says, or undefined while none answers. */
async function controllerPid(dataDir: string): Promise<number | undefined> {
  try {
    return ((await requestControl(dataDir, 'hello', {}, 2000)) as { pid: number }).pid;
  } catch (error) {
    if (error instanceof ControlUnavailable) return undefined;
    throw error;
  }
}

function pm2(args: string[], env: Record<string, string>) {
  const result = spawnSync(process.execPath, [pm2Bin, ...args], { env, encoding: 'utf8', timeout: 60_000 });
  assert.equal(result.status, 0, `pm2 ${args.join(' ')}: ${result.stderr}${result.stdout}`);
  return result.stdout;
}

test('the controller under PM2 as the README runs it, SIGKILLed three times: back at once each time, never errored, never two, each gap reported', async () => {
  const dataDir = path.join(home.root, 'pm2-run');
  const env = { ...baseEnv, DATA_DIR: dataDir, DUPLICATE_SCAN_SECONDS: '1' };
  pm2(['start', 'ecosystem.config.js', '--only', 'tradewarden'], env);
  closers.push(() => spawnSync(process.execPath, [pm2Bin, 'delete', 'tradewarden'], { env, timeout: 30_000 }));
  let pid = await waitFor(() => controllerPid(dataDir), { timeoutMs: 30_000, intervalMs: 100, what: 'the controller under PM2 to take its socket' });
  await waitFor(async () => (await new Store(dataDir).read()).controller?.pid === pid, { timeoutMs: 30_000, what: 'its first heartbeat record' });

  for (let kill = 1; kill <= 3; kill++) {
    process.kill(pid, 'SIGKILL'); // what the OOM killer does
    const next = await waitFor(async () => {
      const answering = await controllerPid(dataDir);
      return answering !== undefined && answering !== pid ? answering : undefined;
    }, { timeoutMs: 30_000, intervalMs: 50, what: `a new controller after kill #${kill}` });
    assert.ok(!isAlive(pid), `the killed controller ${pid} is gone`);
    pid = next;
    // Each restart reports the gap it found before the next kill.
    await waitFor(async () => (await alertsOf(dataDir, 'controller_restarted')).length === kill, { timeoutMs: 30_000, what: `controller_restarted #${kill}` }).catch((e) => {
      console.log(fs.readFileSync(path.join(dataDir, 'logs', 'tradewarden.out.log'), 'utf8'), fs.readFileSync(path.join(dataDir, 'logs', 'tradewarden.err.log'), 'utf8'));
      throw e;
    });
  }
  const restarted = await alertsOf(dataDir, 'controller_restarted');
  assert.equal(restarted.length, 3, 'one report per crash');
  for (const alert of restarted) assert.match(alert.body, /^Nothing watched trading-bot from \S+ \(last heartbeat of PID \d+\) to \S+\.\nFills: not watched/);

  const [entry] = (JSON.parse(pm2(['jlist'], env)) as Array<{ name: string; pid: number; pm2_env: { status: string; restart_time: number } }>).filter((p) => p.name === 'tradewarden');
  assert.equal(entry.pm2_env.status, 'online', 'PM2 kept it, not errored');
  assert.equal(entry.pm2_env.restart_time, 3);
  assert.equal(entry.pid, pid, 'the one PM2 runs is the one holding the socket');

  const health = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'health', '--json'], { env, encoding: 'utf8', timeout: 60_000 });
  const report = JSON.parse(health.stdout) as { healthy: boolean; pid: number; reasons: string[] };
  assert.equal(health.status, 0, `healthy: ${report.reasons?.join('; ')}`);
  assert.equal(report.pid, pid);
});

/** The controller as its own process (npm start); its output collected. */
function controller(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const output = { text: '' };
  child.stdout!.on('data', (c) => (output.text += c));
  child.stderr!.on('data', (c) => (output.text += c));
  return { child, output };
}

async function startPingServer() {
  const requests: Array<{ method: string; url: string; body: string }> = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      requests.push({ method: req.method!, url: req.url!, body });
      res.writeHead(200).end('OK');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise((resolve) => server.close(resolve)));
  return { requests, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

test('SIGKILL, fills made while nothing watched: the restart counts them once, raises one trade-rate alert and says what it missed; pings, /metrics and health follow', async () => {
  const paper: PaperBroker = await startPaperBroker({ keyId: 'PKFAULTS0123456789AB', secretKey: 'SKfaultsSecretKey0123456789abcdefghijklm', prices: { AAPL: 200 } });
  closers.push(() => paper.close());
  const ping = await startPingServer();
  const checkPath = '/ping/5b3e2a1c-0d4f-4e6a-9b8c-7d6e5f4a3b2c';
  const dataDir = path.join(home.root, 'gap');
  const env = {
    ...baseEnv,
    DATA_DIR: dataDir,
    APCA_API_KEY_ID: 'PKFAULTS0123456789AB',
    APCA_API_SECRET_KEY: 'SKfaultsSecretKey0123456789abcdefghijklm',
    APCA_API_BASE_URL: paper.url,
    MAX_TRADES_PER_HOUR: '3',
    TRADE_POLL_SECONDS: '1',
    DUPLICATE_SCAN_SECONDS: '2',
    HEALTHCHECK_URL: ping.url + checkPath,
    HEALTHCHECK_SECONDS: '1',
    METRICS_ADDR: '127.0.0.1:0',
  };
  const buy = () => paper.placeOrder({ symbol: 'AAPL', side: 'buy', qty: 1, type: 'market', time_in_force: 'day' });
  buy();

  const first = controller(env);
  await waitFor(() => first.output.text.includes('controller watching'), { timeoutMs: 30_000, what: 'the controller to start' });
  await waitFor(() => ping.requests.some((r) => r.method === 'GET' && r.url === checkPath), { timeoutMs: 10_000, what: 'a healthy ping' });
  const metricsUrl = /metrics: (http:\/\/\S+)\/metrics/.exec(first.output.text)![1];
  const metric = async (url: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(await (await fetch(`${url}/metrics`)).text())?.[1]);
  assert.equal(await metric(metricsUrl, 'tradewarden_trades_last_hour'), 1);
  assert.equal((await fetch(`${metricsUrl}/healthz`)).status, 200);

  first.child.kill('SIGKILL');
  await once(first.child, 'exit');
  for (let i = 0; i < 4; i++) buy(); // 5 in the hour: over the limit of 3, while nobody watched

  const second = controller(env);
  await waitFor(() => second.output.text.includes('controller watching'), { timeoutMs: 30_000, what: 'the restarted controller' });
  const [restarted] = await alertsOf(dataDir, 'controller_restarted');
  assert.ok(restarted, 'controller_restarted raised');
  assert.equal(restarted.severity, 'critical', 'over the limit while down');
  assert.match(restarted.body, /Fills in the gap: 4 \(buy 1 AAPL, buy 1 AAPL, buy 1 AAPL, buy 1 AAPL\); 5 in the last hour \(limit 3\) — OVER THE LIMIT\./);
  assert.match(restarted.body, /Duplicates: none\.\nTrader: not found, wanted not set\./);
  assert.equal(restarted.facts.fillsInGap, 4);
  assert.match(second.output.text, /ALERT \[CRITICAL\] Controller restarted after a crash: Nothing watched trading-bot from/);

  // Polls keep running: still one trade-rate alert, five trades, each once.
  const metricsUrl2 = await waitFor(() => /metrics: (http:\/\/\S+)\/metrics/.exec(second.output.text)?.[1], { what: 'the new metrics address' });
  await waitFor(async () => (await metric(metricsUrl2, 'tradewarden_fill_poll_age_seconds')) < 3, { timeoutMs: 10_000, what: 'fresh polls' });
  const data = await new Store(dataDir).read();
  assert.equal(data.trades.seen.length, 5, 'every fill counted once');
  assert.equal((await alertsOf(dataDir, 'trade_rate_exceeded')).length, 1, 'one trade-rate alert for the episode');
  assert.equal(await metric(metricsUrl2, 'tradewarden_trades_last_hour'), 5);
  assert.equal(await metric(metricsUrl2, 'tradewarden_trade_limit'), 3);

  const healthy = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'health'], { env, encoding: 'utf8', timeout: 60_000 });
  assert.equal(healthy.status, 0, `health passes: ${healthy.stdout}${healthy.stderr}`);
  assert.match(healthy.stdout, new RegExp(`^healthy: controller PID ${second.child.pid} serves ${dataDir}`));

  // A clean stop leaves the mark: nothing to report next time.
  second.child.kill('SIGINT');
  assert.equal((await once(second.child, 'exit'))[0], 0);
  assert.ok((await new Store(dataDir).read()).controller?.cleanExitAt, 'clean exit recorded');
  const down = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'health'], { env, encoding: 'utf8', timeout: 60_000 });
  assert.equal(down.status, 1, 'no controller: health fails');
  assert.match(down.stdout, /UNHEALTHY:\n {2}- no tradewarden controller serves .*: nothing is watching the trader/);
  for (const text of [first.output.text, second.output.text]) assert.ok(!text.includes('5b3e2a1c'), 'the check URL never reaches the log');
});
