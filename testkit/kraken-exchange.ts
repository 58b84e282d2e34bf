// A local stand-in for Kraken's spot REST API (https://docs.kraken.com/api/), for tests, bench and
// the demo with BROKER=ccxt: ccxt's real `kraken` class is pointed here through CCXT_OPTIONS
//   {"urls":{"api":{"public":"<url>","private":"<url>"}}}
// and talks to it as it talks to Kraken. Followed from Kraken's documentation:
// - paths /0/public/<Method> (GET) and /0/private/<Method> (POST, form-encoded, `nonce` first);
// - every answer is HTTP 200 with {"error": [...], "result": ...}; errors are Kraken's own strings
//   ("EAPI:Invalid key", "EAPI:Invalid signature", "EAPI:Invalid nonce", "EAPI:Rate limit exceeded",
//   "EOrder:Insufficient funds", "EOrder:Order minimum not met", "EQuery:Unknown asset pair");
// - API-Key and API-Sign: base64(HMAC-SHA512(base64-decoded secret, path + SHA256(nonce + body))),
//   checked; the nonce must grow per key;
// - asset ids with X/Z prefixes (XXBT, ZUSD, XXDG; newer ones plain: SOL), pairs keyed by id
//   (XXBTZUSD) with altname and wsname, ordermin, costmin, lot_decimals, pair_decimals;
// - TradesHistory: 50 trades a page, newest first, `start`/`end` (seconds, inclusive) and `ofs`,
//   with the total in `count`; trade ids like THVRQM-33VKH-UCI7BS, order ids like OQCLML-BW3P3-BUCMWZ;
// - market orders fill at once at the last price; limit orders rest until cancelled;
// - WebSocket API v2 for the account's executions (https://docs.kraken.com/api/docs/websocket-v2/executions),
//   as ccxt pro's kraken speaks it (watchMyTrades): REST GetWebSocketsToken {token, expires: 900};
//   at ws(s)://<host>/v2 a status message on connect, {"channel":"heartbeat"} every second when
//   quiet, {"method":"ping"} answered {"method":"pong"}, and
//     → {"method":"subscribe","params":{"channel":"executions","token":…,"snap_trades":true},"req_id":N}
//     ← {"method":"subscribe","result":{"channel":"executions",…},"success":true,"req_id":N,…}
//     ← {"channel":"executions","type":"snapshot","data":[the last 50 trades],"sequence":1}
//     ← {"channel":"executions","type":"update","data":[{"exec_type":"trade","exec_id":<trade id>,"order_id":…}],…}
//   an unknown token answers "ESession:Invalid session". exec_id is the trade id TradesHistory keys
//   its trades by, as on Kraken.
// Kept apart from Kraken: no fees, no order book (a limit order never fills), no margin
// (OpenPositions is always empty); the executions channel carries trades only (no order events).
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Clock } from '../src/clock.ts';
import { systemClock } from '../src/clock.ts';

export interface KrakenPair {
  /** Kraken's pair id, e.g. XXBTZUSD */
  id: string;
  base: string;
  quote: string;
  altname: string;
  wsname: string;
  ordermin: string;
  costmin: string;
  lotDecimals: number;
  pairDecimals: number;
}

/** Kraken's ids for the assets and pairs the stand-in lists (the common name: Kraken's id). */
export const KRAKEN_ASSETS: Record<string, { id: string; altname: string; decimals: number }> = {
  BTC: { id: 'XXBT', altname: 'XBT', decimals: 10 },
  ETH: { id: 'XETH', altname: 'ETH', decimals: 10 },
  DOGE: { id: 'XXDG', altname: 'XDG', decimals: 8 },
  SOL: { id: 'SOL', altname: 'SOL', decimals: 10 },
  USD: { id: 'ZUSD', altname: 'USD', decimals: 4 },
};

export const KRAKEN_PAIRS: Record<string, KrakenPair> = {
  'BTC/USD': { id: 'XXBTZUSD', base: 'XXBT', quote: 'ZUSD', altname: 'XBTUSD', wsname: 'XBT/USD', ordermin: '0.00005', costmin: '0.5', lotDecimals: 8, pairDecimals: 1 },
  'ETH/USD': { id: 'XETHZUSD', base: 'XETH', quote: 'ZUSD', altname: 'ETHUSD', wsname: 'ETH/USD', ordermin: '0.002', costmin: '0.5', lotDecimals: 8, pairDecimals: 2 },
  'DOGE/USD': { id: 'XDGUSD', base: 'XXDG', quote: 'ZUSD', altname: 'XDGUSD', wsname: 'XDG/USD', ordermin: '50', costmin: '0.5', lotDecimals: 8, pairDecimals: 7 },
  'SOL/USD': { id: 'SOLUSD', base: 'SOL', quote: 'ZUSD', altname: 'SOLUSD', wsname: 'SOL/USD', ordermin: '0.02', costmin: '0.5', lotDecimals: 8, pairDecimals: 2 },
};

interface KrakenTrade {
  id: string;
  /** Kraken's sequential trade id in the pair (executions' trade_id) */
  seq: number;
  ordertxid: string;
  /** the position's id Kraken gives every trade */
  postxid: string;
  pair: string;
  /** seconds, with fractions */
  time: number;
  type: 'buy' | 'sell';
  ordertype: string;
  price: number;
  vol: number;
}

interface RestingOrder {
  id: string;
  pair: string;
  type: 'buy' | 'sell';
  ordertype: string;
  price: number;
  vol: number;
  opentm: number;
}

export interface KrakenStandInOptions {
  apiKey: string;
  /** base64, as Kraken issues it */
  secret: string;
  /** more keys of the same account (key → base64 secret): the trader's own, beside tradewarden's */
  moreKeys?: Record<string, string>;
  clock?: Clock;
  /** last prices by common symbol (BTC/USD); default BTC 50000, ETH 3000, DOGE 0.1, SOL 150 */
  prices?: Record<string, number>;
  /** balances by common name (USD, BTC, …); default 100000 USD */
  balances?: Record<string, number>;
}

export interface KrakenStandIn {
  url: string;
  /** the CCXT_OPTIONS that point ccxt's kraken here (rate limiting off: the tests pace themselves) */
  ccxtOptions: string;
  /** places an order as the account holder would (the trader's side); returns its id, or throws Kraken's error */
  placeOrder(symbol: string, side: 'buy' | 'sell', volume: number, options?: { ordertype?: 'market' | 'limit'; price?: number }): string;
  setPrice(symbol: string, price: number): void;
  setBalance(asset: string, amount: number): void;
  balances(): Record<string, number>;
  /** the account's worth in USD at the last prices */
  equity(): number;
  /** every trade, oldest first: its id, its order's and when (ms) */
  trades(): Array<{ id: string; orderId: string; symbol: string; side: 'buy' | 'sell'; at: number }>;
  openOrderCount(): number;
  /** the next `count` private calls (to `method`, or any) answer with `error` (a Kraken error string) */
  failNext(error: string, count: number, options?: { method?: string }): void;
  /** AddOrder for this pair answers `error` until cleared (undefined) */
  refuseOrders(symbol: string, error: string | undefined): void;
  /** private calls received, by method, and the times they arrived (ms, the real clock) */
  calls(method?: string): number[];
  /** WebSocket connections subscribed to executions now */
  readonly pushListeners: number;
  /** WebSocket connections open now, subscribed or not */
  readonly pushConnections: number;
  /** trades sent on the executions channel (updates and snapshots) */
  readonly pushed: number;
  /** ends every WebSocket connection (as a network cut would: no close frame) */
  dropPush(): void;
  /** true: WebSocket connections are refused (HTTP 503 on the upgrade) until set false */
  refusePush(refuse: boolean): void;
  close(): Promise<void>;
}

const PAGE = 50;

export async function startKrakenStandIn(options: KrakenStandInOptions): Promise<KrakenStandIn> {
  const clock = options.clock ?? systemClock;
  const prices = new Map(Object.entries(options.prices ?? { 'BTC/USD': 50_000, 'ETH/USD': 3000, 'DOGE/USD': 0.1, 'SOL/USD': 150 }));
  const balances = new Map<string, number>(Object.entries(options.balances ?? { USD: 100_000 }).map(([name, amount]) => [assetId(name), amount]));
  const trades: KrakenTrade[] = [];
  const resting = new Map<string, RestingOrder>();
  const failures: Array<{ error: string; method?: string }> = [];
  const refused = new Map<string, string>();
  const received = new Map<string, number[]>();
  const secrets = new Map<string, string>([[options.apiKey, options.secret], ...Object.entries(options.moreKeys ?? {})]);
  // Kraken's nonce grows per key: two programs sharing one key refuse each other's calls.
  const lastNonce = new Map<string, bigint>();
  const tokens = new Set<string>();
  const subscribed = new Map<WebSocket, { sequence: number }>();
  let pushRefused = false;
  let pushedCount = 0;

  const pairById = (id: string) => Object.entries(KRAKEN_PAIRS).find(([, p]) => p.id === id || p.altname === id);

  function place(symbol: string, side: 'buy' | 'sell', volume: number, ordertype = 'market', limitPrice?: number): string {
    const pair = KRAKEN_PAIRS[symbol];
    if (!pair) throw new KrakenError('EQuery:Unknown asset pair');
    const refusal = refused.get(symbol);
    if (refusal) throw new KrakenError(refusal);
    if (!(volume > 0)) throw new KrakenError('EGeneral:Invalid arguments:volume');
    if (volume < Number(pair.ordermin)) throw new KrakenError('EOrder:Order minimum not met');
    const price = ordertype === 'limit' ? limitPrice ?? 0 : prices.get(symbol) ?? 0;
    if (volume * price < Number(pair.costmin)) throw new KrakenError('EOrder:Cost minimum not met');
    const id = krakenId('O');
    if (ordertype === 'limit') {
      resting.set(id, { id, pair: pair.id, type: side, ordertype, price, vol: volume, opentm: clock.now() / 1000 });
      return id;
    }
    const cost = volume * price;
    const base = balances.get(pair.base) ?? 0;
    const quote = balances.get(pair.quote) ?? 0;
    if (side === 'sell' ? base < volume - 1e-12 : quote < cost) throw new KrakenError('EOrder:Insufficient funds');
    // Kraken keeps balances in fixed decimals: sums of floats would leave 1e-19 BTC behind a full sale.
    balances.set(pair.base, decimals(side === 'sell' ? base - volume : base + volume));
    balances.set(pair.quote, decimals(side === 'sell' ? quote + cost : quote - cost));
    const trade: KrakenTrade = { id: krakenId('T'), seq: trades.length + 1, ordertxid: id, postxid: krakenId('T'), pair: pair.id, time: clock.now() / 1000, type: side, ordertype, price, vol: volume };
    trades.push(trade);
    for (const [socket, subscription] of subscribed) sendExecutions(socket, subscription, 'update', [trade]);
    return id;
  }

  const publicMethods: Record<string, (query: URLSearchParams) => unknown> = {
    Time: () => ({ unixtime: Math.floor(clock.now() / 1000), rfc1123: new Date(clock.now()).toUTCString() }),
    Assets: () =>
      Object.fromEntries(Object.values(KRAKEN_ASSETS).map((a) => [a.id, { aclass: 'currency', altname: a.altname, decimals: a.decimals, display_decimals: Math.min(a.decimals, 5), status: 'enabled' }])),
    AssetPairs: () =>
      Object.fromEntries(
        Object.values(KRAKEN_PAIRS).map((p) => [
          p.id,
          {
            altname: p.altname, wsname: p.wsname, aclass_base: 'currency', base: p.base, aclass_quote: 'currency', quote: p.quote, lot: 'unit',
            cost_decimals: 5, pair_decimals: p.pairDecimals, lot_decimals: p.lotDecimals, lot_multiplier: 1, leverage_buy: [], leverage_sell: [],
            fees: [[0, 0.26]], fees_maker: [[0, 0.16]], fee_volume_currency: 'ZUSD', margin_call: 80, margin_stop: 40,
            ordermin: p.ordermin, costmin: p.costmin, tick_size: (10 ** -p.pairDecimals).toFixed(p.pairDecimals), status: 'online',
          },
        ]),
      ),
    Ticker: (query) => {
      const wanted = query.get('pair')?.split(',').filter(Boolean);
      const chosen = Object.entries(KRAKEN_PAIRS).filter(([, p]) => !wanted || wanted.includes(p.id) || wanted.includes(p.altname));
      if (wanted && chosen.length < wanted.length) throw new KrakenError('EQuery:Unknown asset pair');
      return Object.fromEntries(
        chosen.map(([symbol, p]) => {
          const last = String(prices.get(symbol) ?? 0);
          return [p.id, { a: [last, '1', '1.000'], b: [last, '1', '1.000'], c: [last, '0.001'], v: ['0', '0'], p: [last, last], t: [0, 0], l: [last, last], h: [last, last], o: last }];
        }),
      );
    },
  };

  const privateMethods: Record<string, (body: URLSearchParams) => unknown> = {
    Balance: () => Object.fromEntries([...balances].map(([id, amount]) => [id, amount.toFixed(8)])),
    BalanceEx: () => Object.fromEntries([...balances].map(([id, amount]) => [id, { balance: amount.toFixed(8), hold_trade: '0.00000000' }])),
    TradesHistory: (body) => {
      const start = body.get('start');
      const end = body.get('end');
      const ofs = Number(body.get('ofs') ?? 0);
      const matching = trades
        .filter((t) => (start === null || t.time >= Number(start)) && (end === null || t.time <= Number(end)))
        .sort((a, b) => b.time - a.time);
      const page = matching.slice(ofs, ofs + PAGE);
      return {
        trades: Object.fromEntries(
          page.map((t) => [
            t.id,
            {
              ordertxid: t.ordertxid, postxid: t.postxid, pair: t.pair, time: t.time, type: t.type, ordertype: t.ordertype,
              price: t.price.toFixed(5), cost: (t.price * t.vol).toFixed(5), fee: '0.00000', vol: t.vol.toFixed(8), margin: '0.00000', leverage: '0', misc: '', maker: false,
            },
          ]),
        ),
        count: matching.length,
      };
    },
    OpenOrders: () => ({
      open: Object.fromEntries(
        [...resting.values()].map((o) => {
          const altname = pairById(o.pair)![1].altname;
          return [
            o.id,
            {
              refid: null, userref: 0, status: 'open', opentm: o.opentm, starttm: 0, expiretm: 0,
              descr: { pair: altname, type: o.type, ordertype: o.ordertype, price: String(o.price), price2: '0', leverage: 'none', order: `${o.type} ${o.vol.toFixed(8)} ${altname} @ limit ${o.price}`, close: '' },
              vol: o.vol.toFixed(8), vol_exec: '0.00000000', cost: '0.00000', fee: '0.00000', price: '0.00000', stopprice: '0.00000', limitprice: '0.00000', misc: '', oflags: 'fciq',
            },
          ];
        }),
      ),
    }),
    OpenPositions: () => ({}),
    GetWebSocketsToken: () => {
      const token = crypto.randomBytes(30).toString('base64');
      tokens.add(token);
      return { token, expires: 900 };
    },
    CancelAll: () => {
      const count = resting.size;
      resting.clear();
      return { count };
    },
    CancelOrder: (body) => {
      const txid = body.get('txid') ?? '';
      if (!resting.delete(txid)) throw new KrakenError('EOrder:Unknown order');
      return { count: 1 };
    },
    AddOrder: (body) => {
      const found = pairById(body.get('pair') ?? '');
      if (!found) throw new KrakenError('EQuery:Unknown asset pair');
      const type = body.get('type');
      if (type !== 'buy' && type !== 'sell') throw new KrakenError('EGeneral:Invalid arguments:type');
      const ordertype = body.get('ordertype') ?? 'market';
      const volume = Number(body.get('volume'));
      const id = place(found[0], type, volume, ordertype, body.get('price') === null ? undefined : Number(body.get('price')));
      return { descr: { order: `${type} ${volume.toFixed(8)} ${found[1].altname} @ ${ordertype}` }, txid: [id] };
    },
  };

  function authenticate(req: http.IncomingMessage, path: string, raw: string, body: URLSearchParams): void {
    const key = String(req.headers['api-key'] ?? '');
    const secret = secrets.get(key);
    if (secret === undefined) throw new KrakenError('EAPI:Invalid key');
    const nonce = body.get('nonce') ?? '';
    const expected = crypto
      .createHmac('sha512', Buffer.from(secret, 'base64'))
      .update(Buffer.concat([Buffer.from(path), crypto.createHash('sha256').update(nonce + raw).digest()]))
      .digest('base64');
    const given = String(req.headers['api-sign'] ?? '');
    if (given.length !== expected.length || !crypto.timingSafeEqual(Buffer.from(given), Buffer.from(expected))) throw new KrakenError('EAPI:Invalid signature');
    if (!/^\d{1,20}$/.test(nonce) || BigInt(nonce) <= (lastNonce.get(key) ?? 0n)) throw new KrakenError('EAPI:Invalid nonce');
    lastNonce.set(key, BigInt(nonce));
  }

  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (raw += chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const match = /^\/0\/(public|private)\/(\w+)$/.exec(url.pathname);
      let answer: { error: string[]; result?: unknown };
      try {
        if (!match) throw new KrakenError('EGeneral:Unknown method');
        const [, api, method] = match;
        if (api === 'public') {
          const handler = publicMethods[method!];
          if (!handler || req.method !== 'GET') throw new KrakenError('EGeneral:Unknown method');
          answer = { error: [], result: handler(url.searchParams) };
        } else {
          const handler = privateMethods[method!];
          if (!handler || req.method !== 'POST') throw new KrakenError('EGeneral:Unknown method');
          received.set(method!, [...(received.get(method!) ?? []), Date.now()]);
          const body = new URLSearchParams(raw);
          authenticate(req, url.pathname, raw, body);
          const failure = failures.findIndex((f) => !f.method || f.method === method);
          if (failure >= 0) throw new KrakenError(failures.splice(failure, 1)[0]!.error);
          answer = { error: [], result: handler(body) };
        }
      } catch (error) {
        if (!(error instanceof KrakenError)) throw error;
        answer = { error: [error.message] };
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer));
    });
  });
  // ---- WebSocket API v2: executions ----

  function execution(t: KrakenTrade): Record<string, unknown> {
    const symbol = pairById(t.pair)![0];
    return {
      order_id: t.ordertxid, exec_id: t.id, exec_type: 'trade', trade_id: t.seq, symbol, side: t.type,
      last_qty: t.vol, last_price: t.price, liquidity_ind: 't', cost: t.vol * t.price, order_userref: 0,
      order_status: 'filled', order_type: t.ordertype, fee_usd_equiv: 0, fees: [{ asset: 'USD', qty: 0 }],
      timestamp: new Date(Math.round(t.time * 1000)).toISOString(),
    };
  }

  function sendExecutions(socket: WebSocket, subscription: { sequence: number }, type: 'snapshot' | 'update', sent: KrakenTrade[]): void {
    subscription.sequence++;
    pushedCount += sent.length;
    socket.send(JSON.stringify({ channel: 'executions', type, data: sent.map(execution), sequence: subscription.sequence }));
  }

  const stamp = () => new Date(Date.now()).toISOString();
  const wss = new WebSocketServer({ noServer: true });
  let connectionId = 0;
  wss.on('connection', (socket) => {
    let quiet = true;
    const heartbeat = setInterval(() => {
      if (quiet) socket.send(JSON.stringify({ channel: 'heartbeat' }));
      quiet = true;
    }, 1000);
    heartbeat.unref();
    const send = socket.send.bind(socket);
    socket.send = ((data: string) => {
      quiet = false;
      send(data);
    }) as WebSocket['send'];
    socket.on('close', () => {
      clearInterval(heartbeat);
      subscribed.delete(socket);
    });
    socket.send(JSON.stringify({ channel: 'status', type: 'update', data: [{ api_version: 'v2', connection_id: ++connectionId, system: 'online', version: '2.0.10' }] }));
    socket.on('message', (raw) => {
      let request: { method?: string; params?: { channel?: string; token?: string; snap_trades?: boolean }; req_id?: number };
      try {
        request = JSON.parse(String(raw));
      } catch {
        socket.send(JSON.stringify({ error: 'EGeneral:Invalid arguments', success: false, time_in: stamp(), time_out: stamp() }));
        return;
      }
      const reply = { method: request.method, req_id: request.req_id, time_in: stamp(), time_out: stamp() };
      if (request.method === 'ping') {
        socket.send(JSON.stringify({ ...reply, method: 'pong' }));
        return;
      }
      if (request.method !== 'subscribe' || request.params?.channel !== 'executions') {
        socket.send(JSON.stringify({ ...reply, error: 'EGeneral:Invalid arguments', success: false }));
        return;
      }
      if (!request.params.token || !tokens.has(request.params.token)) {
        socket.send(JSON.stringify({ ...reply, error: 'ESession:Invalid session', success: false }));
        return;
      }
      socket.send(JSON.stringify({ ...reply, result: { channel: 'executions', maxratecount: 180, snapshot: true, warnings: [] }, success: true }));
      const subscription = { sequence: 0 };
      subscribed.set(socket, subscription);
      if (request.params.snap_trades) sendExecutions(socket, subscription, 'snapshot', trades.slice(-PAGE).reverse());
    });
  });
  server.on('upgrade', (req, socket, head) => {
    if (pushRefused || new URL(req.url ?? '/', 'http://127.0.0.1').pathname !== '/v2') {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const wsUrl = url.replace('http:', 'ws:');

  return {
    url,
    ccxtOptions: JSON.stringify({ urls: { api: { public: url, private: url, ws: { public: wsUrl, private: wsUrl, publicV2: `${wsUrl}/v2`, privateV2: `${wsUrl}/v2` } } }, enableRateLimit: false }),
    placeOrder(symbol, side, volume, placeOptions = {}) {
      return place(symbol, side, volume, placeOptions.ordertype ?? 'market', placeOptions.price);
    },
    setPrice(symbol, price) {
      prices.set(symbol, price);
    },
    setBalance(asset, amount) {
      balances.set(assetId(asset), amount);
    },
    balances() {
      return Object.fromEntries([...balances].map(([id, amount]) => [Object.entries(KRAKEN_ASSETS).find(([, a]) => a.id === id)?.[0] ?? id, amount]));
    },
    equity() {
      let total = balances.get('ZUSD') ?? 0;
      for (const [symbol, pair] of Object.entries(KRAKEN_PAIRS)) total += (balances.get(pair.base) ?? 0) * (prices.get(symbol) ?? 0);
      return total;
    },
    trades: () => trades.map((t) => ({ id: t.id, orderId: t.ordertxid, symbol: pairById(t.pair)![0], side: t.type, at: Math.round(t.time * 1000) })),
    openOrderCount: () => resting.size,
    failNext(error, count, failOptions = {}) {
      for (let i = 0; i < count; i++) failures.push({ error, method: failOptions.method });
    },
    refuseOrders(symbol, error) {
      if (error === undefined) refused.delete(symbol);
      else refused.set(symbol, error);
    },
    get pushListeners() {
      return subscribed.size;
    },
    get pushConnections() {
      return wss.clients.size;
    },
    get pushed() {
      return pushedCount;
    },
    dropPush() {
      for (const socket of wss.clients) socket.terminate();
    },
    refusePush(refuse) {
      pushRefused = refuse;
    },
    calls: (method) => (method ? received.get(method) ?? [] : [...received.values()].flat().sort((a, b) => a - b)),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of wss.clients) socket.terminate();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

class KrakenError extends Error {}

function decimals(amount: number): number {
  return Math.round(amount * 1e10) / 1e10;
}

function assetId(name: string): string {
  return KRAKEN_ASSETS[name]?.id ?? name;
}

/** Kraken's id shape: a letter and three dash-separated groups (OQCLML-BW3P3-BUCMWZ). */
function krakenId(prefix: 'O' | 'T'): string {
  const part = (n: number) => Array.from(crypto.randomBytes(n), (b) => 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'[b % 32]).join('');
  return `${prefix}${part(5)}-${part(5)}-${part(6)}`;
}
