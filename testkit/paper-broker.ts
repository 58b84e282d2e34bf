// A local, in-memory, Alpaca-compatible paper broker (Trading API v2 subset) on node:http.
// Tests use it as the real HTTP counterpart of src/broker/alpaca.ts; `npm run demo` runs it through
// testkit/paper-broker-cli.ts. It answers the way Alpaca does: numbers as strings, errors as
// {"code": 4xx10000, "message": "..."}, 207 multi-status for the bulk DELETEs, FILL activities with
// ids like "20260105150000000::<uuid>", transaction times from the injected clock.
//
// Model (kept consistent on every fill): cash, positions (qty signed, avg entry price), orders, FILL
// activities. A position closed to zero disappears. Prices come from `prices` / setPrice (100 when
// unknown). Crypto is recognised by pair shape ("BTC/USD", "ETHUSD"); like Alpaca, orders and fills
// name it "BTC/USD" while positions name it "BTCUSD" (both forms are accepted everywhere).
//
// Order rules (a subset of Alpaca's, same status codes and error shape):
//   market orders fill at once at the current price; limit orders rest ("new") until fillOrder();
//   market closed → equity market orders are queued ("accepted") and fill on setMarketOpen(true);
//   crypto trades 24/7, accepts only time_in_force gtc|ioc (422) and needs ≥ $1 value (422);
//   qty xor notional; notional and fractional equity qty only for market/day (422);
//   a buy needs cash (403 insufficient buying power); an order may not sell more than the long
//   position minus what open orders already hold, nor flip a position through zero (403);
//   crypto cannot be shorted (403); client_order_id must be unique (422).
// GET /v2/orders:by_client_order_id?client_order_id=… finds an order by the client's own id (404 if none).
// PATCH /v2/orders/{id} replaces an open, unfilled order (qty, limit_price, time_in_force): the old one
// ends "replaced" (stream event `replaced`), the new one names it in `replaces`. A client that sends
// Accept-Encoding: gzip gets gzipped JSON, as from Alpaca.
// Unknown routes answer 404 {"code":40410000,…}; a known route with another method answers 405.
//
// Market data (Alpaca's data host, https://data.alpaca.markets, served here on the same port: point
// APCA_API_DATA_URL at `url`): the latest trade at the price orders fill at (prices / setPrice, 100
// when unknown), timestamped now, in Alpaca's shapes —
//   GET /v2/stocks/{symbol}/trades/latest → {"symbol","trade":{"t","x","p","s","c","i","z"}}
//   GET /v1beta3/crypto/us/latest/trades?symbols=BTC/USD,ETH/USD → {"trades":{"BTC/USD":{"t","p","s","tks","i"}}}
// (a crypto pair on the stocks route is 404, as an unknown ticker is; a symbol on the crypto route that is
// not a pair is left out of "trades"). failNext and setDelay match these paths like any other.
//
// Account configurations (GET /v2/account/configurations, PATCH with a partial JSON object): the
// object {dtbp_check, trade_confirm_email, suspend_trade, no_shorting, fractional_trading,
// max_margin_multiplier, pdt_check}; a PATCH changes the known fields it gets (each checked against
// Alpaca's values, 422 otherwise; nothing changes then), ignores unknown ones and answers the whole
// object. Only suspend_trade has an effect here: while it is true every NEW order is refused with 403
// {"code":40310000,"message":"new orders are not accepted: trading is suspended on this account
// (suspend_trade)"} — POST /v2/orders, DELETE /v2/positions/{symbol}, each symbol's entry in DELETE
// /v2/positions' 207 (cancel_orders=true still cancels first), and the placeOrder() hook. Cancels
// still work, orders accepted before keep resting and filling, and GET /v2/account shows it as
// trade_suspended_by_user.
//
// Test hooks on the returned PaperBroker:
//   url                      "http://127.0.0.1:PORT"
//   close()                  stops listening and drops open connections (delayed answers included)
//   failNext(status, count = 1, match?)
//                            answers the next `count` matching requests with `status` and an
//                            Alpaca-shaped body instead of handling them. status 'hangup' destroys
//                            the socket without an answer. match: { method?, path?: string|RegExp
//                            (on the pathname), symbol?, retryAfter? (seconds for 429/503, default 1),
//                            message? }. With `symbol`, the fault hits only that symbol's work: its
//                            entry inside DELETE /v2/positions' 207, DELETE /v2/positions/{symbol},
//                            and POST /v2/orders for it — other symbols go through. The cancel of
//                            each of its open orders takes one count too (the order stays open, as
//                            one the broker would not cancel): its entry in DELETE /v2/orders' 207,
//                            DELETE /v2/orders/{id}, and DELETE /v2/positions' cancel_orders=true
//                            step (the closes go on after it).
//   setDelay(ms, match?)     every answer (with match: { method?, path? }, each matching one) is sent
//                            `ms` later; the work is done first, as a slow broker that acted (and
//                            streamed the fills) but answered late would. setDelay(0, match) clears it
//   holdNext(match)          the next request matching { method?, path? } waits, before the broker
//                            acts on it, until release(); `reached` resolves when it has arrived.
//                            What a test does meanwhile happens before that request's work
//   setMarketOpen(open)      opening fills the queued equity market orders
//   setTradingSuspended(on)  flips suspend_trade as a person would in Alpaca's dashboard (above)
//   setPrice(symbol, price), setLastEquity(value)
//   seedPosition(symbol, qty, price)
//                            puts a position in place (no cash movement, no activity): an account
//                            that already holds it
//   placeOrder(request, { partialFills? })
//                            in-process POST /v2/orders (no faults, no delay); with partialFills: n a
//                            fillable market order fills in n parts, at now, now+1 ms, … (distinct
//                            transaction times). Throws PaperBrokerRejection on a 4xx.
//   fillOrder(orderId, qty?, price?)
//                            fills (part of) a resting order now; returns the FILL activity
//   seedHistory(points)      plants equity samples [{ at (ms), equity }] before or among the recorded
//                            ones: an account that already has a past
//   snapshot()               cash, equity, positions, orders, activities (Alpaca JSON shapes)
//
// Portfolio history (GET /v2/account/portfolio/history): the broker records its equity at start, on
// every fill, price change and seeded position; the answer steps through the period at the asked
// timeframe and gives each step the last equity recorded by then, in Alpaca's parallel arrays
// (timestamp in unix seconds, equity, profit_loss, profit_loss_pct, base_value, timeframe). Like
// Alpaca: timeframe defaults by period (< 7 days 1Min, < 30 days 15Min, else 1D), and an intraday
// timeframe with a period of 30 days or more is refused (422).
//   requests                 number of HTTP requests received; requestLog: method, path, status
//   inFlight                 HTTP requests received and not answered yet (with setDelay, held, …)
//
// The trading stream (Alpaca's `trade_updates`) is served on the same port at /stream (ws://…/stream):
// {"action":"auth","key","secret"} (or the legacy {"action":"authenticate","data":{"key_id","secret_key"}})
// → {"stream":"authorization","data":{"status":"authorized"|"unauthorized","action":"authenticate"}};
// {"action":"listen","data":{"streams":["trade_updates"]}} → {"stream":"listening",…}; then every fill
// as {"stream":"trade_updates","data":{"event":"fill"|"partial_fill","execution_id","order":{…},
// "timestamp","price","qty","position_qty"}}, every new order as {"event":"new" (a queued one
// "accepted"),"order":{…},"timestamp"} before its fills, and every cancel (by request, by a close's
// cancel_orders, or an IOC/FOK limit that could not fill) as {"event":"canceled","order":{…},"timestamp"}. Frames are
// binary, as Alpaca's paper endpoint sends them.
// The execution id is the uuid part of the fill's activity id. Stream hooks:
//   streamListeners          connections authorized and listening to trade_updates now
//   dropStreamConnections()  ends every stream connection without a close frame (a network drop)
//   refuseStream(on)         while on, every authentication is answered "unauthorized"
//   flapStream(on)           while on, every connection is dropped (no close frame) right after its
//                            "listening" answer has been sent: a broker that cannot keep a subscription
//   streamSubscriptions      when (Date.now()) each connection was subscribed to trade_updates
//   setStreamFrames('binary' | 'text')
//   setStreamAuthReply('authorization' | 'success')
//                            the authorization message above (default), or the market-data form some
//                            proxies and older gateways answer with: [{"T":"success","msg":"authenticated"}]
//                            (refusal [{"T":"error","code":402,"msg":"auth failed"}])
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Clock } from '../src/clock.ts';

export interface PaperBrokerOptions {
  /** 0 (default) = any free port */
  port?: number;
  host?: '127.0.0.1';
  /** When set (with secretKey), requests without matching APCA-API-* headers get 401. */
  keyId?: string;
  secretKey?: string;
  cash?: number;
  marketOpen?: boolean;
  prices?: Record<string, number>;
  clock?: Clock;
}

/** Which requests a test hook applies to: method and pathname, each any when absent. */
export interface RequestMatch {
  method?: string;
  path?: string | RegExp;
}

export interface FaultMatch extends RequestMatch {
  symbol?: string;
  /** Retry-After seconds sent with 429/503 (default 1). */
  retryAfter?: number;
  /** Overrides the default message of the error body. */
  message?: string;
}

export interface OrderRequest {
  symbol: string;
  side: 'buy' | 'sell';
  type?: 'market' | 'limit';
  time_in_force?: string;
  qty?: number | string;
  notional?: number | string;
  limit_price?: number | string;
  client_order_id?: string;
}

export type AlpacaJson = Record<string, unknown>;

export interface PaperBroker {
  readonly url: string;
  close(): Promise<void>;
  failNext(status: number | 'hangup', count?: number, match?: FaultMatch): void;
  setDelay(ms: number, match?: RequestMatch): void;
  holdNext(match: RequestMatch): { reached: Promise<void>; release(): void };
  setMarketOpen(open: boolean): void;
  /** the account configuration suspend_trade: while on, every new order is refused (403) */
  setTradingSuspended(on: boolean): void;
  setPrice(symbol: string, price: number): void;
  setLastEquity(value: number): void;
  seedPosition(symbol: string, qty: number, price: number): void;
  placeOrder(request: OrderRequest, options?: { partialFills?: number }): AlpacaJson;
  fillOrder(orderId: string, qty?: number, price?: number): AlpacaJson;
  seedHistory(points: ReadonlyArray<{ at: number; equity: number }>): void;
  snapshot(): {
    cash: number;
    equity: number;
    positions: AlpacaJson[];
    orders: AlpacaJson[];
    activities: AlpacaJson[];
  };
  readonly requests: number;
  readonly requestLog: ReadonlyArray<{ method: string; path: string; status: number }>;
  /** HTTP requests received and not answered yet */
  readonly inFlight: number;
  /** stream connections authorized and listening to trade_updates */
  readonly streamListeners: number;
  dropStreamConnections(): void;
  refuseStream(on: boolean): void;
  flapStream(on: boolean): void;
  /** when (Date.now(), ms) each stream connection was subscribed to trade_updates, in order */
  readonly streamSubscriptions: readonly number[];
  setStreamFrames(kind: 'binary' | 'text'): void;
  setStreamAuthReply(shape: 'authorization' | 'success'): void;
}

/** A 4xx/5xx answer of the order logic, thrown by the in-process placeOrder too. */
export class PaperBrokerRejection extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'PaperBrokerRejection';
  }
  get body(): { code: number; message: string } {
    return { code: alpacaCode(this.status), message: this.message };
  }
}

// Alpaca's error codes are the status followed by 10000 (40110000, 42210000, 50010000, …).
const alpacaCode = (status: number) => status * 100000 + 10000;

const defaultMessages: Record<number, string> = {
  400: 'bad request',
  401: 'request is not authorized',
  403: 'forbidden',
  404: 'not found',
  422: 'unprocessable entity',
  429: 'rate limit exceeded',
  500: 'internal server error occurred',
  502: 'bad gateway',
  503: 'service unavailable',
  504: 'gateway timeout',
};
const messageFor = (status: number) => defaultMessages[status] ?? `error ${status}`;

const OPEN_STATUSES = new Set(['new', 'accepted', 'partially_filled', 'pending_new', 'held', 'accepted_for_bidding']);
const EQUITY_TIFS = new Set(['day', 'gtc', 'opg', 'cls', 'ioc', 'fok']);
const CRYPTO_TIFS = new Set(['gtc', 'ioc']);
const EPSILON = 1e-9;
const TRADING_SUSPENDED = 'new orders are not accepted: trading is suspended on this account (suspend_trade)';

/** Alpaca's account configurations: the known fields and the values each may take. */
interface AccountConfigurations {
  dtbp_check: string;
  trade_confirm_email: string;
  suspend_trade: boolean;
  no_shorting: boolean;
  fractional_trading: boolean;
  max_margin_multiplier: string;
  pdt_check: string;
}
const CONFIGURATION_VALUES: Record<keyof AccountConfigurations, ReadonlyArray<string | boolean>> = {
  dtbp_check: ['both', 'entry', 'exit'],
  trade_confirm_email: ['all', 'none'],
  suspend_trade: [true, false],
  no_shorting: [true, false],
  fractional_trading: [true, false],
  max_margin_multiplier: ['1', '2', '4'],
  pdt_check: ['both', 'entry', 'exit'],
};

/** "BTC/USD" | "BTCUSD" → crypto pair; US equity tickers are at most 5 letters (+ class suffix). */
function cryptoPair(symbol: string): { base: string; quote: string } | undefined {
  const slashed = /^([A-Z0-9]{2,10})\/(USD|USDT|USDC|BTC)$/.exec(symbol);
  if (slashed) return { base: slashed[1], quote: slashed[2] };
  const joined = /^([A-Z0-9]{2,10})(USDT|USDC|USD)$/.exec(symbol);
  if (joined && symbol.length >= 6) return { base: joined[1], quote: joined[2] };
  return undefined;
}
/** Positions name crypto without the slash, as Alpaca's positions do. */
const positionSymbol = (symbol: string) => {
  const pair = cryptoPair(symbol);
  return pair ? pair.base + pair.quote : symbol;
};
/** Orders and fills name crypto with the slash. */
const orderSymbol = (symbol: string) => {
  const pair = cryptoPair(symbol);
  return pair ? `${pair.base}/${pair.quote}` : symbol;
};

/** Alpaca sends decimals as strings without exponent notation. */
function dec(n: number): string {
  const fixed = (Math.abs(n) < EPSILON / 10 ? 0 : n).toFixed(9);
  const trimmed = fixed.replace(/\.?0+$/, '');
  return trimmed === '-0' ? '0' : trimmed;
}
const round9 = (n: number) => Number(n.toFixed(9));
const iso = (ms: number) => new Date(ms).toISOString();

/** "20260105150000000": the UTC timestamp prefix of Alpaca's activity ids. */
function activityPrefix(ms: number): string {
  return iso(ms).replace(/[-:T.Z]/g, '');
}

interface PaperOrder {
  id: string;
  clientOrderId: string;
  symbol: string; // order form ("BTC/USD")
  assetClass: 'us_equity' | 'crypto';
  side: 'buy' | 'sell';
  type: 'market' | 'limit';
  timeInForce: string;
  qty: number | null;
  notional: number | null;
  limitPrice: number | null;
  /** what the order fills in total: qty, or notional / price at submission */
  targetQty: number;
  filledQty: number;
  filledAvgPrice: number | null;
  status: string;
  createdAt: number;
  updatedAt: number;
  filledAt: number | null;
  canceledAt: number | null;
  seq: number;
  /** PATCH /v2/orders/{id}: the order that replaced this one, and the one this one replaced */
  replacedBy?: string;
  replaces?: string;
}

interface PaperPosition {
  symbol: string; // position form ("BTCUSD")
  assetClass: 'us_equity' | 'crypto';
  qty: number; // signed
  avgEntryPrice: number;
}

interface FillActivity {
  id: string;
  at: number;
  seq: number;
  json: AlpacaJson;
}

interface Fault {
  status: number | 'hangup';
  remaining: number;
  match: FaultMatch;
}

interface Answer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  hangup?: boolean;
}

export async function startPaperBroker(options: PaperBrokerOptions = {}): Promise<PaperBroker> {
  const clock: Clock = options.clock ?? { now: () => Date.now() };
  const accountId = randomUUID();
  const assetIds = new Map<string, string>();
  const prices = new Map<string, number>();
  for (const [symbol, price] of Object.entries(options.prices ?? {})) prices.set(positionSymbol(symbol), price);
  let cash = options.cash ?? 100000;
  let lastEquity = cash;
  let marketOpen = options.marketOpen ?? true;
  const configurations: AccountConfigurations = {
    dtbp_check: 'entry',
    trade_confirm_email: 'all',
    suspend_trade: false,
    no_shorting: false,
    fractional_trading: true,
    max_margin_multiplier: '4',
    pdt_check: 'entry',
  };
  let delayMs = 0;
  /** setDelay with a match: answer delays for some routes only */
  let routeDelays: Array<{ ms: number; match: RequestMatch }> = [];
  /** holdNext: requests that wait, before the broker acts, until the test releases them */
  const holds: Array<{ match: RequestMatch; released: Promise<void>; arrived: () => void }> = [];
  let seq = 0;
  const positions = new Map<string, PaperPosition>();
  const orders: PaperOrder[] = [];
  const activities: FillActivity[] = [];
  const faults: Fault[] = [];
  const requestLog: Array<{ method: string; path: string; status: number }> = [];
  /** Equity samples, oldest first, for the portfolio history. */
  const equitySamples: Array<{ at: number; equity: number }> = [];
  const pendingTimers = new Set<NodeJS.Timeout>();

  const priceOf = (symbol: string) => prices.get(positionSymbol(symbol)) ?? 100;
  const assetIdOf = (symbol: string) => {
    const key = positionSymbol(symbol);
    let id = assetIds.get(key);
    if (!id) assetIds.set(key, (id = randomUUID()));
    return id;
  };
  const assetClassOf = (symbol: string): 'us_equity' | 'crypto' => (cryptoPair(symbol) ? 'crypto' : 'us_equity');
  const isOpen = (order: PaperOrder) => OPEN_STATUSES.has(order.status);
  const remainingQty = (order: PaperOrder) => round9(order.targetQty - order.filledQty);

  // ---- JSON views (Alpaca's shapes) ----
  const orderJson = (o: PaperOrder): AlpacaJson => ({
    id: o.id,
    client_order_id: o.clientOrderId,
    created_at: iso(o.createdAt),
    updated_at: iso(o.updatedAt),
    submitted_at: iso(o.createdAt),
    filled_at: o.filledAt === null ? null : iso(o.filledAt),
    expired_at: null,
    canceled_at: o.canceledAt === null ? null : iso(o.canceledAt),
    failed_at: null,
    replaced_at: null,
    replaced_by: o.replacedBy ?? null,
    replaces: o.replaces ?? null,
    asset_id: assetIdOf(o.symbol),
    symbol: o.symbol,
    asset_class: o.assetClass,
    notional: o.notional === null ? null : dec(o.notional),
    qty: o.qty === null ? null : dec(o.qty),
    filled_qty: dec(o.filledQty),
    filled_avg_price: o.filledAvgPrice === null ? null : dec(o.filledAvgPrice),
    order_class: '',
    order_type: o.type,
    type: o.type,
    side: o.side,
    position_intent: null,
    time_in_force: o.timeInForce,
    limit_price: o.limitPrice === null ? null : dec(o.limitPrice),
    stop_price: null,
    status: o.status,
    extended_hours: false,
    legs: null,
    trail_percent: null,
    trail_price: null,
    hwm: null,
  });

  const heldQty = (symbol: string, side: 'buy' | 'sell') =>
    orders
      .filter((o) => isOpen(o) && o.side === side && positionSymbol(o.symbol) === positionSymbol(symbol))
      .reduce((sum, o) => sum + remainingQty(o), 0);

  const positionJson = (p: PaperPosition): AlpacaJson => {
    const price = priceOf(p.symbol);
    const marketValue = p.qty * price;
    const costBasis = p.qty * p.avgEntryPrice;
    const unrealized = marketValue - costBasis;
    const held = heldQty(p.symbol, p.qty > 0 ? 'sell' : 'buy');
    return {
      asset_id: assetIdOf(p.symbol),
      symbol: p.symbol,
      exchange: p.assetClass === 'crypto' ? 'CRYPTO' : 'NASDAQ',
      asset_class: p.assetClass,
      asset_marginable: p.assetClass !== 'crypto',
      avg_entry_price: dec(p.avgEntryPrice),
      qty: dec(p.qty),
      qty_available: dec(Math.sign(p.qty) * Math.max(0, Math.abs(p.qty) - held)),
      side: p.qty > 0 ? 'long' : 'short',
      market_value: dec(marketValue),
      cost_basis: dec(costBasis),
      unrealized_pl: dec(unrealized),
      unrealized_plpc: dec(costBasis === 0 ? 0 : unrealized / Math.abs(costBasis)),
      unrealized_intraday_pl: dec(unrealized),
      unrealized_intraday_plpc: dec(costBasis === 0 ? 0 : unrealized / Math.abs(costBasis)),
      current_price: dec(price),
      lastday_price: dec(price),
      change_today: '0',
    };
  };

  const marketValues = () => {
    let long = 0;
    let short = 0;
    for (const p of positions.values()) {
      const value = p.qty * priceOf(p.symbol);
      if (value >= 0) long += value;
      else short += value;
    }
    return { long, short };
  };
  const equity = () => {
    const { long, short } = marketValues();
    return cash + long + short;
  };

  const accountJson = (): AlpacaJson => {
    const { long, short } = marketValues();
    const eq = cash + long + short;
    return {
      id: accountId,
      account_number: 'PA0000PAPER1',
      status: 'ACTIVE',
      crypto_status: 'ACTIVE',
      currency: 'USD',
      buying_power: dec(Math.max(0, cash)),
      regt_buying_power: dec(Math.max(0, cash)),
      daytrading_buying_power: '0',
      non_marginable_buying_power: dec(Math.max(0, cash)),
      cash: dec(cash),
      portfolio_value: dec(eq),
      equity: dec(eq),
      last_equity: dec(lastEquity),
      long_market_value: dec(long),
      short_market_value: dec(short),
      initial_margin: '0',
      maintenance_margin: '0',
      last_maintenance_margin: '0',
      sma: '0',
      multiplier: '1',
      daytrade_count: 0,
      pattern_day_trader: false,
      trading_blocked: false,
      transfers_blocked: false,
      account_blocked: false,
      trade_suspended_by_user: configurations.suspend_trade,
      shorting_enabled: true,
      created_at: '2024-01-02T14:30:00Z',
    };
  };

  const clockJson = (): AlpacaJson => {
    const now = clock.now();
    const hour = 3600_000;
    return {
      timestamp: iso(now),
      is_open: marketOpen,
      next_open: iso(marketOpen ? now + 24 * hour : now + hour),
      next_close: iso(marketOpen ? now + hour : now + 7.5 * hour),
    };
  };

  // ---- order logic ----
  const reject = (status: number, message: string): never => {
    throw new PaperBrokerRejection(status, message);
  };

  function decimalField(value: unknown, name: string): number | null {
    if (value === undefined || value === null || value === '') return null;
    const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : NaN;
    if (!Number.isFinite(n)) return reject(422, `invalid ${name}`);
    return n;
  }

  /** One fill of `qty` at `price`: moves cash, the position, the order and writes the activity. */
  function executeFill(order: PaperOrder, qty: number, price: number, at: number): AlpacaJson {
    const signed = order.side === 'buy' ? qty : -qty;
    cash = round9(cash - signed * price);
    const key = positionSymbol(order.symbol);
    const position = positions.get(key);
    if (!position) {
      positions.set(key, { symbol: key, assetClass: order.assetClass, qty: round9(signed), avgEntryPrice: price });
    } else {
      const before = position.qty;
      const after = round9(before + signed);
      if (Math.abs(after) < EPSILON) positions.delete(key);
      else if (Math.sign(before) === Math.sign(signed)) {
        position.avgEntryPrice = (before * position.avgEntryPrice + signed * price) / after;
        position.qty = after;
      } else if (Math.sign(after) !== Math.sign(before)) {
        position.qty = after; // crossed zero: the remainder was opened at this price
        position.avgEntryPrice = price;
      } else position.qty = after; // reduced: the entry price of what remains is unchanged
    }
    const cumQty = round9(order.filledQty + qty);
    order.filledAvgPrice = ((order.filledAvgPrice ?? 0) * order.filledQty + price * qty) / cumQty;
    order.filledQty = cumQty;
    const complete = order.targetQty - cumQty < EPSILON;
    order.status = complete ? 'filled' : 'partially_filled';
    order.updatedAt = at;
    if (complete) order.filledAt = at;
    const executionId = randomUUID();
    const id = `${activityPrefix(at)}::${executionId}`;
    const json: AlpacaJson = {
      id,
      activity_type: 'FILL',
      transaction_time: iso(at),
      type: complete ? 'fill' : 'partial_fill',
      price: dec(price),
      qty: dec(qty),
      side: order.side,
      symbol: order.symbol,
      leaves_qty: dec(Math.max(0, order.targetQty - cumQty)),
      order_id: order.id,
      cum_qty: dec(cumQty),
      order_status: order.status,
    };
    activities.push({ id, at, seq: ++seq, json });
    recordEquity(at);
    publishTradeUpdate({
      event: complete ? 'fill' : 'partial_fill',
      execution_id: executionId,
      order: orderJson(order),
      timestamp: iso(at),
      price: dec(price),
      qty: dec(qty),
      position_qty: dec(positions.get(key)?.qty ?? 0),
    });
    return json;
  }

  const fillable = (order: PaperOrder) => order.type === 'market' && (order.assetClass === 'crypto' || marketOpen);

  /** suspend_trade blocks every new order, closes included (not cancels, not orders already in). */
  const refuseIfSuspended = () => {
    if (configurations.suspend_trade) reject(403, TRADING_SUSPENDED);
  };

  function submitOrder(request: Record<string, unknown>, partialFills = 1): PaperOrder {
    refuseIfSuspended();
    const rawSymbol = typeof request.symbol === 'string' ? request.symbol.trim().toUpperCase() : '';
    if (!/^[A-Z0-9./]{1,15}$/.test(rawSymbol)) reject(422, 'invalid symbol');
    const symbol = orderSymbol(rawSymbol);
    const crypto = cryptoPair(symbol) !== undefined;
    const side = request.side;
    if (side !== 'buy' && side !== 'sell') return reject(422, 'invalid side');
    const type = request.type ?? 'market';
    if (type !== 'market' && type !== 'limit') return reject(422, `invalid order type for this paper broker: ${String(type)}`);
    const tif = typeof request.time_in_force === 'string' ? request.time_in_force : '';
    if (!tif) reject(422, 'time_in_force is required');
    if (crypto && !CRYPTO_TIFS.has(tif)) reject(422, 'invalid crypto time_in_force');
    if (!crypto && !EQUITY_TIFS.has(tif)) reject(422, 'invalid time_in_force');
    const qty = decimalField(request.qty, 'qty');
    const notional = decimalField(request.notional, 'notional');
    const limitPrice = decimalField(request.limit_price, 'limit_price');
    if (qty !== null && notional !== null) reject(422, 'only one of qty or notional can be specified');
    if (qty === null && notional === null) reject(422, 'qty or notional is required');
    if (qty !== null && qty <= 0) reject(422, 'qty must be > 0');
    if (notional !== null && notional <= 0) reject(422, 'notional must be > 0');
    if (notional !== null && type !== 'market') reject(422, 'notional orders must be market orders');
    if (type === 'limit' && (limitPrice === null || limitPrice <= 0)) reject(422, 'limit_price is required for limit orders');
    if (!crypto) {
      const fractional = notional !== null || (qty !== null && !Number.isInteger(qty));
      if (fractional && (type !== 'market' || tif !== 'day')) reject(422, 'fractional orders must be market orders with time_in_force day');
    }
    const price = type === 'limit' ? limitPrice! : priceOf(symbol);
    const targetQty = round9(qty ?? notional! / priceOf(symbol));
    if (crypto && targetQty * price < 1 - EPSILON) reject(422, 'cost basis must be >= 1');
    const clientOrderId = typeof request.client_order_id === 'string' && request.client_order_id ? request.client_order_id : randomUUID();
    if (clientOrderId.length > 128) reject(422, 'client_order_id must be at most 128 characters');
    if (orders.some((o) => o.clientOrderId === clientOrderId)) reject(422, 'client_order_id must be unique');

    // Position rules: never flip through zero in one order; no crypto shorts; cash for buys.
    const position = positions.get(positionSymbol(symbol));
    const posQty = position?.qty ?? 0;
    if (side === 'sell') {
      if (posQty > 0) {
        const available = round9(posQty - heldQty(symbol, 'sell'));
        if (targetQty > available + EPSILON) reject(403, `insufficient qty available for order (requested: ${dec(targetQty)}, available: ${dec(Math.max(0, available))})`);
      } else if (crypto) {
        const pair = cryptoPair(symbol)!;
        reject(403, `insufficient balance for ${pair.base} (requested: ${dec(targetQty)}, available: 0)`);
      } else if (!Number.isInteger(targetQty)) reject(403, 'fractional orders cannot be sold short');
    } else {
      if (posQty < 0) {
        const available = round9(-posQty - heldQty(symbol, 'buy'));
        if (targetQty > available + EPSILON) reject(403, `insufficient qty available for order (requested: ${dec(targetQty)}, available: ${dec(Math.max(0, available))})`);
      } else if (targetQty * price > cash + EPSILON) reject(403, 'insufficient buying power');
    }

    const now = clock.now();
    const order = recordOrder(now, {
      clientOrderId,
      symbol,
      assetClass: crypto ? 'crypto' : 'us_equity',
      side,
      type,
      timeInForce: tif,
      qty,
      notional,
      limitPrice,
      targetQty,
      // a market order the closed equity market cannot fill yet waits as "accepted", like Alpaca's
      status: type === 'market' && !crypto && !marketOpen ? 'accepted' : 'new',
    });
    if (fillable(order)) fillInParts(order, partialFills, now);
    else if (type === 'limit' && (tif === 'ioc' || tif === 'fok')) {
      // This paper broker never matches limits by itself, so an immediate-or-cancel limit cancels.
      cancelOrder(order, now);
    }
    return order;
  }

  /** A new, unfilled order in the book: what every order starts as, whoever places it. */
  function recordOrder(
    now: number,
    fields: Omit<PaperOrder, 'id' | 'filledQty' | 'filledAvgPrice' | 'createdAt' | 'updatedAt' | 'filledAt' | 'canceledAt' | 'seq'>,
  ): PaperOrder {
    const order: PaperOrder = {
      id: randomUUID(),
      ...fields,
      filledQty: 0,
      filledAvgPrice: null,
      createdAt: now,
      updatedAt: now,
      filledAt: null,
      canceledAt: null,
      seq: ++seq,
    };
    orders.push(order);
    // As Alpaca: every order is announced before anything else happens to it (queued ones as `accepted`).
    publishTradeUpdate({ event: order.status === 'accepted' ? 'accepted' : 'new', order: orderJson(order), timestamp: iso(now) });
    return order;
  }

  function fillInParts(order: PaperOrder, parts: number, now: number): void {
    const n = Math.max(1, Math.floor(parts));
    const total = remainingQty(order);
    const price = priceOf(order.symbol);
    let left = total;
    for (let i = 0; i < n; i++) {
      const qty = i === n - 1 ? left : round9(total / n);
      left = round9(left - qty);
      executeFill(order, qty, price, now + i);
    }
  }

  /**
   * PATCH /v2/orders/{id}: a resting order replaced by a new one with the given qty, limit_price or
   * time_in_force; the old one ends "replaced" (stream event `replaced`), the new one names it in
   * `replaces`. Only an open, unfilled order can be replaced here.
   */
  function replaceOrder(order: PaperOrder, body: unknown): PaperOrder {
    if (!isOpen(order)) reject(422, `order is already in "${order.status}" state`);
    if (order.filledQty > 0) reject(422, 'a partially filled order cannot be replaced by this paper broker');
    const change = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
    const request: Record<string, unknown> = {
      symbol: order.symbol,
      side: order.side,
      type: order.type,
      time_in_force: change.time_in_force ?? order.timeInForce,
      qty: change.qty ?? (order.qty === null ? undefined : String(order.qty)),
      notional: order.qty === null && order.notional !== null ? String(order.notional) : undefined,
      limit_price: change.limit_price ?? (order.limitPrice === null ? undefined : String(order.limitPrice)),
    };
    const now = clock.now();
    order.status = 'replaced';
    order.updatedAt = now;
    const replacement = submitOrder(request);
    order.replacedBy = replacement.id;
    replacement.replaces = order.id;
    publishTradeUpdate({ event: 'replaced', order: orderJson(order), timestamp: iso(now) });
    return replacement;
  }

  function cancelOrder(order: PaperOrder, now: number): void {
    order.status = 'canceled';
    order.canceledAt = now;
    order.updatedAt = now;
    publishTradeUpdate({ event: 'canceled', order: orderJson(order), timestamp: iso(now) });
  }

  /** The market order that closes `position` (queued when the equity market is closed). */
  function closePosition(position: PaperPosition, qtyToClose = Math.abs(position.qty)): PaperOrder {
    refuseIfSuspended();
    const side = position.qty > 0 ? 'sell' : 'buy';
    const available = round9(Math.abs(position.qty) - heldQty(position.symbol, side));
    if (qtyToClose > available + EPSILON) {
      reject(403, `insufficient qty available for order (requested: ${dec(qtyToClose)}, available: ${dec(Math.max(0, available))})`);
    }
    const now = clock.now();
    const order = recordOrder(now, {
      clientOrderId: randomUUID(),
      symbol: orderSymbol(position.symbol),
      assetClass: position.assetClass,
      side,
      type: 'market',
      timeInForce: position.assetClass === 'crypto' ? 'gtc' : 'day',
      qty: qtyToClose,
      notional: null,
      limitPrice: null,
      targetQty: qtyToClose,
      status: 'accepted',
    });
    if (fillable(order)) {
      order.status = 'new';
      fillInParts(order, 1, now);
    }
    return order;
  }

  // ---- faults ----
  const methodMatches = (rule: { match: RequestMatch }, method: string) => !rule.match.method || rule.match.method.toUpperCase() === method;
  const pathMatches = (rule: { match: RequestMatch }, path: string) => {
    const p = rule.match.path;
    if (p === undefined) return true;
    return typeof p === 'string' ? p === path : p.test(path);
  };
  const requestMatches = (rule: { match: RequestMatch }, method: string, path: string) => methodMatches(rule, method) && pathMatches(rule, path);
  /** A fault for the whole request (rules without a symbol). */
  function takeRequestFault(method: string, path: string): Fault | undefined {
    const fault = faults.find((f) => f.remaining > 0 && f.match.symbol === undefined && methodMatches(f, method) && pathMatches(f, path));
    if (fault) fault.remaining--;
    return fault;
  }
  /** A fault for one symbol's work inside a request. */
  function takeSymbolFault(symbol: string, method: string, path: string): Fault | undefined {
    const key = positionSymbol(symbol.toUpperCase());
    const fault = faults.find(
      (f) =>
        f.remaining > 0 &&
        f.match.symbol !== undefined &&
        positionSymbol(f.match.symbol.toUpperCase()) === key &&
        methodMatches(f, method) &&
        pathMatches(f, path),
    );
    if (fault) fault.remaining--;
    return fault;
  }
  function faultAnswer(fault: Fault): Answer {
    if (fault.status === 'hangup') return { status: 0, hangup: true };
    const headers: Record<string, string> = {};
    if (fault.status === 429 || fault.status === 503) headers['retry-after'] = String(fault.match.retryAfter ?? 1);
    return { status: fault.status, headers, body: { code: alpacaCode(fault.status), message: fault.match.message ?? messageFor(fault.status) } };
  }
  const faultError = (fault: Fault) => {
    const status = fault.status === 'hangup' ? 500 : fault.status;
    return new PaperBrokerRejection(status, fault.match.message ?? messageFor(status));
  };

  // ---- activities ----
  function listFills(query: URLSearchParams): Answer {
    const direction = query.get('direction') ?? 'desc';
    if (direction !== 'asc' && direction !== 'desc') return error(422, 'invalid direction');
    const after = query.get('after');
    const until = query.get('until');
    const date = query.get('date');
    const afterMs = after ? Date.parse(after) : undefined;
    const untilMs = until ? Date.parse(until) : undefined;
    if (Number.isNaN(afterMs) || Number.isNaN(untilMs)) return error(422, 'invalid timestamp');
    const pageSizeText = query.get('page_size');
    const pageSize = pageSizeText === null ? 100 : Number(pageSizeText);
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 100) return error(422, 'page_size must be between 1 and 100');
    let list = activities.filter(
      (a) =>
        (afterMs === undefined || a.at > afterMs) &&
        (untilMs === undefined || a.at < untilMs) &&
        (date === null || iso(a.at).slice(0, 10) === date.slice(0, 10)),
    );
    list.sort((a, b) => a.at - b.at || a.seq - b.seq);
    if (direction === 'desc') list.reverse();
    const token = query.get('page_token');
    if (token) {
      const index = list.findIndex((a) => a.id === token);
      if (index < 0) return error(422, 'invalid page_token');
      list = list.slice(index + 1);
    }
    return { status: 200, body: list.slice(0, pageSize).map((a) => a.json) };
  }

  // ---- portfolio history ----
  function recordEquity(at = clock.now()): void {
    const sample = { at, equity: round9(equity()) };
    let i = equitySamples.length;
    while (i > 0 && equitySamples[i - 1].at > at) i--;
    equitySamples.splice(i, 0, sample);
  }

  const PERIOD_UNIT_MS: Record<string, number> = { D: 86_400_000, W: 7 * 86_400_000, M: 30 * 86_400_000, A: 365 * 86_400_000 };
  const TIMEFRAME_MS: Record<string, number> = { '1Min': 60_000, '5Min': 300_000, '15Min': 900_000, '1H': 3_600_000, '1D': 86_400_000 };

  function portfolioHistory(query: URLSearchParams): Answer {
    const periodText = query.get('period') ?? '1M';
    const period = /^(\d+)([DWMA])$/.exec(periodText);
    if (!period || Number(period[1]) < 1) return error(422, `invalid period: ${periodText}`);
    const periodMs = Number(period[1]) * PERIOD_UNIT_MS[period[2]];
    const timeframe = query.get('timeframe') ?? (periodMs < 7 * 86_400_000 ? '1Min' : periodMs < 30 * 86_400_000 ? '15Min' : '1D');
    const stepMs = TIMEFRAME_MS[timeframe];
    if (stepMs === undefined) return error(422, `invalid timeframe: ${timeframe}`);
    if (stepMs < 86_400_000 && periodMs >= 30 * 86_400_000) return error(422, 'timeframe must be 1D for periods of 30 days or more');
    const end = Math.floor(clock.now() / stepMs) * stepMs;
    const firstSample = equitySamples[0]?.at ?? end;
    const timestamps: number[] = [];
    const values: number[] = [];
    let j = 0;
    let last: number | undefined;
    for (let t = end - periodMs + stepMs; t <= end; t += stepMs) {
      while (j < equitySamples.length && equitySamples[j].at < t + stepMs) last = equitySamples[j++].equity;
      // Before the account's first recorded equity there is nothing to report (Alpaca: no points).
      if (last === undefined || t + stepMs <= firstSample) continue;
      timestamps.push(t / 1000);
      values.push(last);
    }
    const base = values[0] ?? round9(equity());
    return {
      status: 200,
      body: {
        timestamp: timestamps,
        equity: values,
        profit_loss: values.map((v) => round9(v - base)),
        profit_loss_pct: values.map((v) => (base === 0 ? 0 : round9(v / base - 1))),
        base_value: base,
        timeframe,
      },
    };
  }

  // ---- account configurations ----
  /** PATCH /v2/account/configurations: every given known field is checked before any is changed. */
  function patchConfigurations(body: unknown): Answer {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return error(422, 'request body must be a JSON object');
    const changes: Partial<Record<keyof AccountConfigurations, unknown>> = {};
    for (const [field, value] of Object.entries(body)) {
      if (!Object.hasOwn(CONFIGURATION_VALUES, field)) continue; // unknown fields are ignored
      const allowed = CONFIGURATION_VALUES[field as keyof AccountConfigurations];
      if (!allowed.includes(value as string | boolean)) {
        const expected = allowed.every((v) => typeof v === 'boolean') ? 'true or false' : `one of ${allowed.join(', ')}`;
        return error(422, `invalid ${field}: ${JSON.stringify(value)} (expected ${expected})`);
      }
      changes[field as keyof AccountConfigurations] = value;
    }
    Object.assign(configurations, changes);
    return { status: 200, body: { ...configurations } };
  }

  // ---- HTTP ----
  const error = (status: number, message: string): Answer => ({ status, body: { code: alpacaCode(status), message } });
  const fromRejection = (e: unknown): Answer => {
    if (e instanceof PaperBrokerRejection) return { status: e.status, body: e.body };
    throw e;
  };

  function route(method: string, url: URL, body: unknown): Answer {
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const query = url.searchParams;
    const segments = path.split('/').slice(1).map(decodeURIComponent);
    const known = (methods: string[]): Answer | undefined =>
      methods.includes(method) ? undefined : error(405, 'method not allowed');

    if (segments[0] === 'v2' && segments[1] === 'stocks' && segments[3] === 'trades' && segments[4] === 'latest' && segments.length === 5) {
      const wrong = known(['GET']);
      if (wrong) return wrong;
      const symbol = segments[2].toUpperCase();
      if (cryptoPair(symbol) || !/^[A-Z0-9.]{1,10}$/.test(symbol)) return error(404, `no trade found for ${symbol}`);
      const trade = { t: iso(clock.now()), x: 'V', p: priceOf(symbol), s: 100, c: ['@'], i: ++seq, z: 'C' };
      return { status: 200, body: { symbol, trade } };
    }
    if (path === '/v1beta3/crypto/us/latest/trades') {
      const wrong = known(['GET']);
      if (wrong) return wrong;
      const symbols = (query.get('symbols') ?? '').split(',').map((s) => s.trim().toUpperCase()).filter(Boolean);
      if (!symbols.length) return error(422, 'symbols is required');
      const trades: Record<string, AlpacaJson> = {};
      for (const symbol of symbols) if (cryptoPair(symbol)) trades[orderSymbol(symbol)] = { t: iso(clock.now()), p: priceOf(symbol), s: 0.01, tks: 'B', i: ++seq };
      return { status: 200, body: { trades } };
    }

    if (path === '/v2/account') return known(['GET']) ?? { status: 200, body: accountJson() };
    if (path === '/v2/clock') return known(['GET']) ?? { status: 200, body: clockJson() };
    if (path === '/v2/account/portfolio/history') return known(['GET']) ?? portfolioHistory(query);
    if (path === '/v2/account/configurations') {
      const wrong = known(['GET', 'PATCH']);
      if (wrong) return wrong;
      return method === 'GET' ? { status: 200, body: { ...configurations } } : patchConfigurations(body);
    }

    if (path === '/v2/positions') {
      const wrong = known(['GET', 'DELETE']);
      if (wrong) return wrong;
      if (method === 'GET') return { status: 200, body: [...positions.values()].map(positionJson) };
      const now = clock.now();
      if (query.get('cancel_orders') === 'true') for (const o of orders) if (isOpen(o) && !takeSymbolFault(o.symbol, method, path)) cancelOrder(o, now);
      const results = [...positions.values()].map((position) => {
        const fault = takeSymbolFault(position.symbol, method, path);
        if (fault) return { symbol: position.symbol, status: fault.status === 'hangup' ? 500 : fault.status, body: faultError(fault).body };
        try {
          const order = closePosition(position);
          return { symbol: position.symbol, status: 200, body: orderJson(order) };
        } catch (e) {
          const { status, body: errorBody } = fromRejection(e);
          return { symbol: position.symbol, status, body: errorBody };
        }
      });
      return { status: 207, body: results };
    }

    if (segments[0] === 'v2' && segments[1] === 'positions' && segments.length === 3) {
      const wrong = known(['GET', 'DELETE']);
      if (wrong) return wrong;
      const position = positions.get(positionSymbol(segments[2].toUpperCase()));
      if (!position) return error(404, 'position does not exist');
      if (method === 'GET') return { status: 200, body: positionJson(position) };
      const fault = takeSymbolFault(position.symbol, method, path);
      if (fault) return faultAnswer(fault);
      const qtyText = query.get('qty');
      const percentText = query.get('percentage');
      let qty = Math.abs(position.qty);
      if (qtyText !== null && percentText !== null) return error(422, 'only one of qty or percentage can be specified');
      if (qtyText !== null) qty = Number(qtyText);
      if (percentText !== null) qty = round9((Math.abs(position.qty) * Number(percentText)) / 100);
      if (!Number.isFinite(qty) || qty <= 0 || qty > Math.abs(position.qty) + EPSILON) return error(422, 'invalid qty');
      try {
        return { status: 200, body: orderJson(closePosition(position, qty)) };
      } catch (e) {
        return fromRejection(e);
      }
    }

    if (path === '/v2/orders') {
      const wrong = known(['GET', 'POST', 'DELETE']);
      if (wrong) return wrong;
      if (method === 'POST') {
        if (typeof body !== 'object' || body === null || Array.isArray(body)) return error(422, 'request body must be a JSON object');
        const request = body as Record<string, unknown>;
        if (typeof request.symbol === 'string') {
          const fault = takeSymbolFault(request.symbol, method, path);
          if (fault) return faultAnswer(fault);
        }
        try {
          return { status: 200, body: orderJson(submitOrder(request)) };
        } catch (e) {
          return fromRejection(e);
        }
      }
      if (method === 'DELETE') {
        const now = clock.now();
        const results = orders.filter(isOpen).map((o) => {
          const fault = takeSymbolFault(o.symbol, method, path);
          if (fault) return { id: o.id, status: fault.status === 'hangup' ? 500 : fault.status, body: faultError(fault).body };
          cancelOrder(o, now);
          return { id: o.id, status: 200, body: orderJson(o) };
        });
        return { status: 207, body: results };
      }
      const status = query.get('status') ?? 'open';
      if (!['open', 'closed', 'all'].includes(status)) return error(422, 'invalid status');
      const limit = Math.min(500, Number(query.get('limit') ?? 50));
      if (!Number.isInteger(limit) || limit < 1) return error(422, 'invalid limit');
      const symbols = query.get('symbols')?.split(',').map((s) => positionSymbol(s.trim().toUpperCase()));
      const direction = query.get('direction') ?? 'desc';
      let list = orders.filter(
        (o) =>
          (status === 'all' || (status === 'open') === isOpen(o)) &&
          (!symbols || symbols.includes(positionSymbol(o.symbol))),
      );
      list.sort((a, b) => a.createdAt - b.createdAt || a.seq - b.seq);
      if (direction === 'desc') list.reverse();
      list = list.slice(0, limit);
      return { status: 200, body: list.map(orderJson) };
    }

    if (path === '/v2/orders:by_client_order_id') {
      const wrong = known(['GET']);
      if (wrong) return wrong;
      const wanted = query.get('client_order_id');
      if (!wanted) return error(422, 'client_order_id is required');
      const order = orders.find((o) => o.clientOrderId === wanted);
      return order ? { status: 200, body: orderJson(order) } : error(404, 'order not found');
    }

    if (segments[0] === 'v2' && segments[1] === 'orders' && segments.length === 3) {
      const wrong = known(['GET', 'DELETE', 'PATCH']);
      if (wrong) return wrong;
      const order = orders.find((o) => o.id === segments[2]);
      if (!order) return error(404, 'order not found');
      if (method === 'GET') return { status: 200, body: orderJson(order) };
      if (method === 'PATCH') {
        try {
          return { status: 200, body: orderJson(replaceOrder(order, body)) };
        } catch (e) {
          return fromRejection(e);
        }
      }
      if (!isOpen(order)) return error(422, `order is already in "${order.status}" state`);
      const fault = takeSymbolFault(order.symbol, method, path);
      if (fault) return faultAnswer(fault);
      cancelOrder(order, clock.now());
      return { status: 204 };
    }

    if (path === '/v2/account/activities' || (segments[0] === 'v2' && segments[1] === 'account' && segments[2] === 'activities' && segments.length === 4)) {
      const wrong = known(['GET']);
      if (wrong) return wrong;
      const types = segments.length === 4 ? [segments[3]] : (query.get('activity_types') ?? query.get('activity_type') ?? 'FILL').split(',');
      // Only FILL activities happen in this broker; other types are simply empty.
      return types.map((t) => t.trim().toUpperCase()).includes('FILL') ? listFills(query) : { status: 200, body: [] };
    }

    return error(404, 'endpoint not found');
  }

  function authorized(req: http.IncomingMessage): boolean {
    if (options.keyId === undefined && options.secretKey === undefined) return true;
    return req.headers['apca-api-key-id'] === options.keyId && req.headers['apca-api-secret-key'] === options.secretKey;
  }

  async function readBody(req: http.IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > 1_000_000) throw new PaperBrokerRejection(400, 'request body too large');
      chunks.push(chunk);
    }
    if (size === 0) return undefined;
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      throw new PaperBrokerRejection(400, 'request body is not valid JSON');
    }
  }

  const wait = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        pendingTimers.delete(timer);
        resolve();
      }, ms);
      pendingTimers.add(timer);
    });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const path = url.pathname;
    let answer: Answer;
    try {
      const body = await readBody(req);
      const held = holds.findIndex((h) => requestMatches(h, method, path));
      if (held >= 0) {
        const [hold] = holds.splice(held, 1);
        hold!.arrived();
        await hold!.released;
      }
      const fault = takeRequestFault(method, path);
      if (fault) answer = faultAnswer(fault);
      else if (!authorized(req)) answer = error(401, 'request is not authorized');
      else answer = route(method, url, body);
    } catch (e) {
      answer = e instanceof PaperBrokerRejection ? { status: e.status, body: e.body } : error(500, messageFor(500));
    }
    requestLog.push({ method, path: url.pathname + url.search, status: answer.status });
    const answerDelay = routeDelays.find((d) => requestMatches(d, method, path))?.ms ?? delayMs;
    if (answerDelay > 0) await wait(answerDelay);
    if (res.destroyed || res.writableEnded) return;
    if (answer.hangup) {
      req.socket.destroy();
      return;
    }
    const headers: Record<string, string> = { 'x-request-id': randomUUID().replace(/-/g, ''), ...answer.headers };
    if (answer.body === undefined) {
      res.writeHead(answer.status, headers).end();
      return;
    }
    const text = JSON.stringify(answer.body);
    // Like Alpaca: a client that accepts gzip (its Go and JS SDKs do) gets the body compressed.
    if (/\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) {
      const zipped = gzipSync(text);
      res.writeHead(answer.status, { ...headers, 'content-type': 'application/json; charset=UTF-8', 'content-encoding': 'gzip', 'content-length': String(zipped.length) });
      res.end(zipped);
      return;
    }
    res.writeHead(answer.status, { ...headers, 'content-type': 'application/json; charset=UTF-8', 'content-length': String(Buffer.byteLength(text)) });
    res.end(text);
  }

  recordEquity(); // the account's equity as the broker opens: the first point of its history
  let inFlight = 0;
  const server = http.createServer((req, res) => {
    inFlight += 1;
    handle(req, res)
      .catch(() => {
        if (!res.headersSent && !res.destroyed) res.writeHead(500).end();
      })
      .finally(() => (inFlight -= 1));
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  // ---- the trading stream ----
  const streamServer = new WebSocketServer({ server, path: '/stream' });
  const listening = new Set<WebSocket>();
  let refusingStream = false;
  let flappingStream = false;
  const streamSubscriptions: number[] = [];
  let binaryFrames = true;
  let authReply: 'authorization' | 'success' = 'authorization';
  /** `sent` runs once the frame is handed to the kernel (so a drop after it does not lose the frame). */
  const sendFrame = (socket: WebSocket, message: unknown, sent?: () => void) => {
    const text = JSON.stringify(message);
    socket.send(binaryFrames ? Buffer.from(text) : text, { binary: binaryFrames }, sent && (() => sent()));
  };
  streamServer.on('connection', (socket) => {
    let authorized = false;
    socket.on('close', () => listening.delete(socket));
    socket.on('error', () => listening.delete(socket));
    socket.on('message', (raw) => {
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(String(raw)) as Record<string, unknown>;
      } catch {
        sendFrame(socket, { action: 'error', data: { error_message: 'invalid syntax' } });
        return socket.close();
      }
      const data = (typeof message.data === 'object' && message.data !== null ? message.data : {}) as Record<string, unknown>;
      if (message.action === 'auth' || message.action === 'authenticate') {
        const key = message.action === 'auth' ? message.key : data.key_id;
        const secret = message.action === 'auth' ? message.secret : data.secret_key;
        const keysOk = (options.keyId === undefined && options.secretKey === undefined) || (key === options.keyId && secret === options.secretKey);
        authorized = keysOk && !refusingStream;
        sendFrame(
          socket,
          authReply === 'authorization'
            ? { stream: 'authorization', data: { status: authorized ? 'authorized' : 'unauthorized', action: 'authenticate' } }
            : [authorized ? { T: 'success', msg: 'authenticated' } : { T: 'error', code: 402, msg: 'auth failed' }],
        );
        return;
      }
      if (message.action === 'listen') {
        if (!authorized) return sendFrame(socket, { stream: 'authorization', data: { status: 'unauthorized', action: 'listen' } });
        const streams = Array.isArray(data.streams) ? data.streams.filter((x): x is string => x === 'trade_updates') : [];
        if (streams.length) listening.add(socket);
        else listening.delete(socket);
        if (streams.length) streamSubscriptions.push(Date.now());
        const drop = () => {
          listening.delete(socket);
          socket.terminate();
        };
        sendFrame(socket, { stream: 'listening', data: { streams } }, flappingStream && streams.length > 0 ? drop : undefined);
      }
    });
  });
  function publishTradeUpdate(data: AlpacaJson): void {
    for (const socket of listening) sendFrame(socket, { stream: 'trade_updates', data });
  }

  const broker: PaperBroker = {
    url: `http://${host}:${port}`,
    async close() {
      for (const timer of pendingTimers) clearTimeout(timer);
      pendingTimers.clear();
      for (const socket of streamServer.clients) socket.terminate();
      streamServer.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
    failNext(status, count = 1, match = {}) {
      faults.push({ status, remaining: count, match });
    },
    setDelay(ms, match) {
      if (!match) {
        delayMs = Math.max(0, ms);
        return;
      }
      routeDelays = routeDelays.filter((d) => d.match.method !== match.method || String(d.match.path) !== String(match.path));
      if (ms > 0) routeDelays.push({ ms, match });
    },
    holdNext(match) {
      let release!: () => void;
      let arrived!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      const reached = new Promise<void>((resolve) => (arrived = resolve));
      holds.push({ match, released, arrived });
      return { reached, release };
    },
    setMarketOpen(open) {
      marketOpen = open;
      if (!open) return;
      const now = clock.now();
      for (const order of orders) if (order.status === 'accepted' && fillable(order)) fillInParts(order, 1, now);
    },
    setTradingSuspended(on) {
      configurations.suspend_trade = on;
    },
    setPrice(symbol, price) {
      prices.set(positionSymbol(symbol.toUpperCase()), price);
      recordEquity();
    },
    setLastEquity(value) {
      lastEquity = value;
    },
    seedPosition(symbol, qty, price) {
      const key = positionSymbol(symbol.toUpperCase());
      prices.set(key, price);
      if (qty === 0) positions.delete(key);
      else positions.set(key, { symbol: key, assetClass: assetClassOf(key), qty, avgEntryPrice: price });
      recordEquity();
    },
    seedHistory(points) {
      for (const point of points) {
        let i = equitySamples.length;
        while (i > 0 && equitySamples[i - 1].at > point.at) i--;
        equitySamples.splice(i, 0, { at: point.at, equity: point.equity });
      }
    },
    placeOrder(request, options = {}) {
      return orderJson(submitOrder(request as unknown as Record<string, unknown>, options.partialFills ?? 1));
    },
    fillOrder(orderId, qty, price) {
      const order = orders.find((o) => o.id === orderId);
      if (!order) throw new PaperBrokerRejection(404, 'order not found');
      if (!isOpen(order)) throw new PaperBrokerRejection(422, `order is already in "${order.status}" state`);
      const fillQty = qty ?? remainingQty(order);
      if (fillQty <= 0 || fillQty > remainingQty(order) + EPSILON) throw new PaperBrokerRejection(422, 'invalid fill qty');
      return executeFill(order, fillQty, price ?? order.limitPrice ?? priceOf(order.symbol), clock.now());
    },
    snapshot() {
      return {
        cash,
        equity: equity(),
        positions: [...positions.values()].map(positionJson),
        orders: orders.map(orderJson),
        activities: [...activities].sort((a, b) => a.at - b.at || a.seq - b.seq).map((a) => a.json),
      };
    },
    get requests() {
      return requestLog.length;
    },
    get inFlight() {
      return inFlight;
    },
    requestLog,
    get streamListeners() {
      return listening.size;
    },
    dropStreamConnections() {
      for (const socket of streamServer.clients) socket.terminate();
      listening.clear();
    },
    refuseStream(on) {
      refusingStream = on;
    },
    flapStream(on) {
      flappingStream = on;
    },
    streamSubscriptions,
    setStreamFrames(kind) {
      binaryFrames = kind === 'binary';
    },
    setStreamAuthReply(shape) {
      authReply = shape;
    },
  };
  return broker;
}
