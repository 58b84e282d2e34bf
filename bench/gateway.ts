// The order gate's overhead on loopback (target: p95 added latency ≤ 3 ms). The paper broker runs in
// its own process (testkit/paper-broker-cli.ts) as a real broker would; the gates (startGateway +
// OrderGate, as the controller wires them) run here, and so does the client, with keep-alive
// connections both ways. 200 requests of each kind (GATEWAY_REQUESTS):
//   reads:  GET /v2/account (piped through untouched), direct and through the gate in pairs;
//   orders: POST /v2/orders (held for a decision: the caller's process found in /proc, the store read,
//           the order counted, the broker's answer read whole for the order id; the gate takes this
//           process as the managed trader, so every order passes), five ways in each round, in a
//           rotated order so that the machine's load weighs on all alike: direct; through a gate
//           without limits; with ALLOWED_SYMBOLS and MAX_ORDER_NOTIONAL (a market qty order, priced
//           by the latest trade, read once, then cached); with all four as the controller runs them
//           (MAX_OPEN_ORDERS and MAX_POSITION_NOTIONAL from the gate's model of the trader's book,
//           trader-book.ts: seeded from the broker, kept by the trade stream); and all four with no
//           stream (the fallback: the open orders and the position read at the broker for every
//           order, in parallel: one more broker round trip).
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

  // Orders, through gates without and with pre-trade limits (none refuses), and straight to the
  // broker: every variant in each round, in a rotated order, so that a busy phase of the machine
  // weighs on all of them alike (the machine is shared: run one after the other, they measured the
  // load as much as the gate).
  async function limitedGateway(limits: PreTradeLimits | undefined, book?: TraderBook) {
    const limitedGate = new OrderGate({ store, outbox, clock: systemClock, logger: silentLogger, maxTradesPerHour: 10_000, mode: 'enforce', processName: 'bench', traderPid: async () => process.pid, limits, book });
    return startGateway({ host: '127.0.0.1', port: 0, upstream: brokerUrl, dataUrl: brokerUrl, gate: limitedGate, logger: silentLogger });
  }
  // The book as the controller wires it: seeded by tradewarden's client, kept by its trade stream.
  const stream = new TradeStreamWatch({ baseUrl: brokerUrl, keyId: KEY, secretKey: SECRET, tradeWatch: { ingest: async () => undefined, poll: async () => undefined }, store, clock: systemClock, logger: silentLogger });
  const book = new TraderBook({ broker: new AlpacaBroker({ baseUrl: brokerUrl, keyId: KEY, secretKey: SECRET }) }).follow(stream);
  const all = { allowedSymbols: ['AAPL'], maxOrderNotional: 1_000_000, maxPositionNotional: 1_000_000_000, maxOpenOrders: 1000 };
  const gates = [await limitedGateway({ allowedSymbols: ['AAPL'], maxOrderNotional: 1_000_000 }), await limitedGateway(all, book), await limitedGateway(all)];
  stream.start();
  while (!book.live) await new Promise((resolve) => setTimeout(resolve, 10));
  const urls = [brokerUrl, gateway.url, ...gates.map((g) => g.url)];
  // Warm-up: connections, the price cache, and the book learning which account the keys trade.
  for (let i = 0; i < 20; i++) for (const url of urls) await call(url, 'POST', '/v2/orders', order());
  await book.settled();
  const timed = urls.map(() => [] as number[]);
  for (let i = 0; i < REQUESTS; i++) {
    for (let k = 0; k < urls.length; k++) {
      const j = (i + k) % urls.length;
      timed[j].push(await call(urls[j], 'POST', '/v2/orders', order()));
    }
  }
  if (!book.live) throw new Error("the book stopped answering during the run: its figures would be the fallback's");
  for (const g of gates) await g.close();
  await stream.stop();
  const [direct, plain, priced, fromBook, fresh] = timed;
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

  const p95 = (times: number[]) => summarize(times).p95;
  const addedLine = (added: number, note = '') => console.log(`${'  added latency, p95 through − p95 direct'.padEnd(44)} ${added.toFixed(2)} ms   target ≤ 3 ms${note}`);
  // What the limits themselves add, beside the gate's own cost (both in the same rounds).
  const limitsLine = (times: number[]) => console.log(`${'  the limits alone, p95 − p95 without them'.padEnd(44)} ${(p95(times) - p95(plain)).toFixed(2)} ms`);
  report(`GET /v2/account direct (${REQUESTS})`, 'ms', reads.direct, '—');
  report(`GET /v2/account through the gate (${REQUESTS})`, 'ms', reads.through, '—');
  addedLine(p95(reads.through) - p95(reads.direct));
  report(`POST /v2/orders direct (${REQUESTS})`, 'ms', direct, '— (interleaved with the four below)');
  report(`POST /v2/orders through the gate (${REQUESTS})`, 'ms', plain, '—');
  addedLine(p95(plain) - p95(direct));
  report(`  … symbols, order notional (${REQUESTS})`, 'ms', priced, '—');
  addedLine(p95(priced) - p95(direct));
  limitsLine(priced);
  report(`  … all four, from the book (${REQUESTS})`, 'ms', fromBook, '—');
  addedLine(p95(fromBook) - p95(direct));
  limitsLine(fromBook);
  report(`  … all four, stream down: read fresh (${REQUESTS})`, 'ms', fresh, '—');
  addedLine(p95(fresh) - p95(direct), ' (the fallback: one broker read more)');
  limitsLine(fresh);
  report('order refused, caller not the trader (50)', 'ms', refusals, '— (whole /proc searched)');
  agent.destroy();
  await gateway.close();
} finally {
  await cleanup();
}
