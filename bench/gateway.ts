// The order gate's overhead on loopback (target: p95 added latency ≤ 3 ms). The paper broker runs in
// its own process (testkit/paper-broker-cli.ts) as a real broker would; the gate (startGateway +
// OrderGate, as the controller wires them) runs here, and so does the client, with keep-alive
// connections both ways. 200 requests direct and 200 through the gate, interleaved in pairs so both
// see the same load:
//   reads:  GET /v2/account (piped through untouched)
//   orders: POST /v2/orders (held for a decision: the caller's process found in /proc, the store read,
//           the order counted, the broker's answer read whole for the order id). The gate takes this
//           process as the managed trader, so every order passes.
//   orders with pre-trade limits (set so that every order passes): ALLOWED_SYMBOLS and
//           MAX_ORDER_NOTIONAL (a market qty order: priced by the latest trade, read once, then cached),
//           then all four as the controller runs them: MAX_OPEN_ORDERS and MAX_POSITION_NOTIONAL read
//           the gate's model of the trader's book (trader-book.ts: seeded from the broker, kept by the
//           trade stream), and all four with the stream down (the fallback: the open orders and the
//           position read at the broker for every order, in parallel: one more broker round trip)
// Also: the time to answer a refused order from a process that is not the managed trader (the slow
// path: every process's fds searched for the socket).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { AlertOutbox } from '../src/alerts/outbox.ts';
import { systemClock } from '../src/clock.ts';
import { startGateway } from '../src/gateway/gateway.ts';
import { OrderGate } from '../src/gateway/order-gate.ts';
import type { PreTradeLimits } from '../src/gateway/pre-trade.ts';
import { TraderBook } from '../src/gateway/trader-book.ts';
import { AlpacaBroker } from '../src/broker/alpaca.ts';
import { TradeStreamWatch } from '../src/watch/trade-stream.ts';
import { silentLogger } from '../src/log.ts';
import { Store } from '../src/store/store.ts';
import { killPid } from '../testkit/pm2-home.ts';
import { report, summarize } from './stats.ts';

const REQUESTS = Number(process.env.GATEWAY_REQUESTS ?? 200);
const KEY = 'PKBENCHGATE';
const SECRET = 'SKBENCHGATE';
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-bench-gw-'));

const brokerProcess = spawn(process.execPath, ['--import', 'tsx', 'testkit/paper-broker-cli.ts', '--auth-from-env', '--cash', '1000000000', '--price', 'AAPL=100'], {
  env: { ...process.env, APCA_API_KEY_ID: KEY, APCA_API_SECRET_KEY: SECRET },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const cleanup = async () => {
  if (brokerProcess.pid) await killPid(brokerProcess.pid);
  fs.rmSync(dataDir, { recursive: true, force: true });
};
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));

try {
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: brokerProcess.stdout! }).once('line', resolve);
    brokerProcess.once('exit', (code) => reject(new Error(`paper broker exited (${code})`)));
  });
  const brokerUrl = (JSON.parse(first) as { url: string }).url;
  const store = new Store(dataDir);
  const outbox = new AlertOutbox({ store, clock: systemClock, logger: silentLogger, sinks: [] });
  const gate = new OrderGate({
    store,
    outbox,
    clock: systemClock,
    logger: silentLogger,
    maxTradesPerHour: 10_000,
    mode: 'enforce',
    processName: 'bench',
    traderPid: async () => process.pid,
  });
  const gateway = await startGateway({ host: '127.0.0.1', port: 0, upstream: brokerUrl, gate, logger: silentLogger });

  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const call = (base: string, method: string, route: string, body?: string) =>
    new Promise<number>((resolve, reject) => {
      const started = performance.now();
      const req = http.request(`${base}${route}`, {
        method,
        agent,
        headers: { 'APCA-API-KEY-ID': KEY, 'APCA-API-SECRET-KEY': SECRET, ...(body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {}) },
      });
      req.once('response', (res) => {
        res.resume();
        res.once('end', () => (res.statusCode && res.statusCode < 300 ? resolve(performance.now() - started) : reject(new Error(`${method} ${route}: ${res.statusCode}`))));
      });
      req.once('error', reject);
      req.end(body);
    });
  const order = () => JSON.stringify({ symbol: 'AAPL', side: 'buy', type: 'market', time_in_force: 'day', qty: '1' });

  async function pairs(method: string, route: string, body?: () => string, gateUrl = gateway.url): Promise<{ direct: number[]; through: number[] }> {
    for (let i = 0; i < 20; i++) {
      await call(brokerUrl, method, route, body?.());
      await call(gateUrl, method, route, body?.());
    }
    const direct: number[] = [];
    const through: number[] = [];
    for (let i = 0; i < REQUESTS; i++) {
      // Alternate which goes first, so neither always gets the warmer connection.
      if (i % 2) {
        direct.push(await call(brokerUrl, method, route, body?.()));
        through.push(await call(gateUrl, method, route, body?.()));
      } else {
        through.push(await call(gateUrl, method, route, body?.()));
        direct.push(await call(brokerUrl, method, route, body?.()));
      }
    }
    return { direct, through };
  }

  const reads = await pairs('GET', '/v2/account');
  const orders = await pairs('POST', '/v2/orders', order);
  // The same orders through gates with pre-trade limits set (none refuses): what the limits add.
  async function withLimits(limits: PreTradeLimits, withBook = false): Promise<{ direct: number[]; through: number[] }> {
    // The book as the controller wires it: seeded by tradewarden's client, kept by its trade stream.
    const stream = withBook
      ? new TradeStreamWatch({ baseUrl: brokerUrl, keyId: KEY, secretKey: SECRET, tradeWatch: { ingest: async () => undefined, poll: async () => undefined }, store, clock: systemClock, logger: silentLogger })
      : undefined;
    const book = stream ? new TraderBook({ broker: new AlpacaBroker({ baseUrl: brokerUrl, keyId: KEY, secretKey: SECRET }) }).follow(stream) : undefined;
    const limitedGate = new OrderGate({ store, outbox, clock: systemClock, logger: silentLogger, maxTradesPerHour: 10_000, mode: 'enforce', processName: 'bench', traderPid: async () => process.pid, limits, book });
    const limitedGateway = await startGateway({ host: '127.0.0.1', port: 0, upstream: brokerUrl, dataUrl: brokerUrl, gate: limitedGate, logger: silentLogger });
    try {
      stream?.start();
      while (book && !book.live) await new Promise((resolve) => setTimeout(resolve, 10));
      // The warm-up's first order teaches the book which account the keys trade.
      const timed = await pairs('POST', '/v2/orders', order, limitedGateway.url);
      if (book && !book.live) throw new Error("the book stopped answering during the run: the figures would be the fallback's");
      return timed;
    } finally {
      await limitedGateway.close();
      await stream?.stop();
    }
  }
  const priced = await withLimits({ allowedSymbols: ['AAPL'], maxOrderNotional: 1_000_000 });
  const all = { allowedSymbols: ['AAPL'], maxOrderNotional: 1_000_000, maxPositionNotional: 1_000_000_000, maxOpenOrders: 1000 };
  const allLimits = await withLimits(all, true);
  const allFresh = await withLimits(all);

  // The refusal path: the "trader" is now another process (the broker's), so this one is a copy.
  const refusedGate = new OrderGate({ store, outbox, clock: systemClock, logger: silentLogger, maxTradesPerHour: 10_000, mode: 'enforce', processName: 'bench', traderPid: async () => brokerProcess.pid });
  const refusing = await startGateway({ host: '127.0.0.1', port: 0, upstream: brokerUrl, gate: refusedGate, logger: silentLogger });
  const refusals: number[] = [];
  for (let i = 0; i < 50; i++) {
    const started = performance.now();
    const response = await fetch(`${refusing.url}/v2/orders`, { method: 'POST', body: order(), headers: { 'content-type': 'application/json' } });
    await response.arrayBuffer();
    if (response.status !== 403) throw new Error(`expected a refusal, got ${response.status}`);
    refusals.push(performance.now() - started);
  }
  await refusing.close();

  const added = (s: { direct: number[]; through: number[] }) => summarize(s.through).p95 - summarize(s.direct).p95;
  report(`GET /v2/account direct (${REQUESTS})`, 'ms', reads.direct, '—');
  report(`GET /v2/account through the gate (${REQUESTS})`, 'ms', reads.through, '—');
  console.log(`${'  added latency, p95 through − p95 direct'.padEnd(44)} ${added(reads).toFixed(2)} ms   target ≤ 3 ms`);
  report(`POST /v2/orders direct (${REQUESTS})`, 'ms', orders.direct, '—');
  report(`POST /v2/orders through the gate (${REQUESTS})`, 'ms', orders.through, '—');
  console.log(`${'  added latency, p95 through − p95 direct'.padEnd(44)} ${added(orders).toFixed(2)} ms   target ≤ 3 ms`);
  report(`POST /v2/orders direct (${REQUESTS})`, 'ms', priced.direct, '—');
  report(`  … symbols, order notional (${REQUESTS})`, 'ms', priced.through, '—');
  console.log(`${'  added latency, p95 through − p95 direct'.padEnd(44)} ${added(priced).toFixed(2)} ms   target ≤ 3 ms`);
  report(`POST /v2/orders direct (${REQUESTS})`, 'ms', allLimits.direct, '—');
  report(`  … all four, from the book (${REQUESTS})`, 'ms', allLimits.through, '—');
  console.log(`${'  added latency, p95 through − p95 direct'.padEnd(44)} ${added(allLimits).toFixed(2)} ms   target ≤ 3 ms`);
  report(`POST /v2/orders direct (${REQUESTS})`, 'ms', allFresh.direct, '—');
  report(`  … all four, stream down: read fresh (${REQUESTS})`, 'ms', allFresh.through, '—');
  console.log(`${'  added latency, p95 through − p95 direct'.padEnd(44)} ${added(allFresh).toFixed(2)} ms   (the fallback: one broker read more)`);
  report('order refused, caller not the trader (50)', 'ms', refusals, '— (whole /proc searched)');
  agent.destroy();
  await gateway.close();
} finally {
  await cleanup();
}
