// An exchange through ccxt, behind the same Broker as Alpaca — the only module that imports ccxt,
// and it is loaded only with BROKER=ccxt (broker/on-demand.ts). ccxt's entry loads all its ~100
// exchanges (0.37 s, +80 MB RSS); loadCcxt imports the configured exchange's own module and ccxt's
// error classes instead (0.12 s, +25 MB), the whole entry only if ccxt ever lays its files out otherwise.
// What an exchange is not, and how each guard is served anyway:
// - Fills: fetchMyTrades from the cursor, keyed by the exchange's trade id. Pages are not alike:
//   Kraken answers the newest 50, Binance the oldest N; a full page is followed both ways (`until`
//   back, `since` forward) until nothing new comes. Where the exchange lists trades only per market
//   (ccxt says ArgumentsRequired: Binance), they are asked market by market: CCXT_SYMBOLS, else every
//   market of a currency held and every market traded since the start, with a warning naming them.
//   Where ccxt pro offers watchMyTrades (loaded with { push: true }: the controller), trades are also
//   pushed (nextPushedFills), keyed as the poll keys them, so both copies of a trade count once.
// - Account: balances valued in CCXT_QUOTE through tickers. A holding is a position when the market
//   would take an order for it (its minimum amount and cost); below that it is dust: not a position,
//   and flatten reports it as dust rather than a failure. Derivatives (ccxt's defaultType swap or
//   future, set through CCXT_OPTIONS) add fetchPositions.
// - History: exchanges keep none, so every account read records the equity (broker/equity-record.ts);
//   the day's reference is the first one recorded since 00:00 UTC.
// - No account switch blocks new orders (Alpaca's suspend_trade): lock/unlock are refused.
// - ccxt's errors become ours: AuthenticationError names the variables (never the values); a rate
//   limit (RateLimitExceeded, DDoSProtection) backs off, and every call waits out the same pause;
//   other network errors are retried on reads, then reported (the trade poll raises broker_unreachable);
//   an ExchangeError is reported as the exchange said it.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Exchange, Market, Order as CcxtOrder, Trade } from 'ccxt';
import type * as CcxtErrorClasses from 'ccxt';
import type { Clock } from '../clock.ts';
import { systemClock } from '../clock.ts';
import type { CcxtConfig } from '../config.ts';
import { OperationError } from '../errors.ts';
import { redact, silentLogger, type Logger } from '../log.ts';
import { closestNames } from '../render/suggest.ts';
import { EquityRecord } from '../store/equity-record.ts';
import type { Account, Broker, CloseResult, Fill, HistoryPeriod, HistoryTimeframe, MarketClock, Order, PortfolioHistory, Position } from './types.ts';

export interface CcxtBrokerOptions {
  config: CcxtConfig;
  /** where the equity record is kept (DATA_DIR) */
  dataDir: string;
  logger?: Logger;
  clock?: Clock;
  /** injected so tests do not wait out back-offs */
  sleep?: (ms: number) => Promise<void>;
  /** network failures retried on a read (default 3), the first back-off doubled each time (default 500 ms) */
  retries?: number;
  backoffMs?: number;
  /** a rate limit's first pause (default 2 s), doubled up to a minute, and how many are waited out in one call (default 5) */
  rateLimitBackoffMs?: number;
  rateLimitRetries?: number;
  /** ccxt, as loadCcxt loaded it (CcxtBroker.open does) */
  library: CcxtLibrary;
  /** tests: a ccxt exchange object to use instead of one built from the configuration */
  exchange?: Exchange;
  /** per request (default: CCXT_OPTIONS' timeout, else 10 s) */
  timeoutMs?: number;
  /** false: account reads leave no equity snapshot (doctor only looks) */
  recordEquity?: boolean;
  /** load ccxt pro's class, for pushed trades where the exchange offers watchMyTrades (the controller) */
  push?: boolean;
}

type ErrorClass = keyof typeof CcxtErrorClasses & (
  | 'AuthenticationError' | 'PermissionDenied' | 'RateLimitExceeded' | 'DDoSProtection' | 'NetworkError' | 'ExchangeNotAvailable'
  | 'InvalidNonce' | 'ExchangeError' | 'ArgumentsRequired' | 'OrderNotFound' | 'InsufficientFunds' | 'NotSupported'
);

/** What this module uses of ccxt: the configured exchange's class, the error classes, the version. */
export interface CcxtLibrary {
  version: string;
  exchangeClass: new (options: Record<string, unknown>) => Exchange;
  errors: Pick<typeof CcxtErrorClasses, ErrorClass>;
}

/**
 * ccxt for one exchange. Its modules are imported by file (js/src/<id>.js, js/src/base/errors.js: the
 * same files ccxt's entry imports, so the error classes are the ones every exchange throws); where
 * they are not found, ccxt's whole entry. An id ccxt does not know is refused with the closest.
 * `push`: the exchange's ccxt pro class where there is one (js/src/pro/<id>.js: the REST class and
 * its WebSocket methods, one object, so the nonce and the rate limit are shared).
 */
export async function loadCcxt(id: string, options: { push?: boolean } = {}): Promise<CcxtLibrary> {
  const root = path.resolve(path.dirname(createRequire(import.meta.url).resolve('ccxt')), '..');
  const pro = path.join(root, 'js', 'src', 'pro', `${id}.js`);
  const own = options.push && fs.existsSync(pro) ? pro : path.join(root, 'js', 'src', `${id}.js`);
  const errorsFile = path.join(root, 'js', 'src', 'base', 'errors.js');
  if (/^[a-z0-9_]+$/.test(id) && fs.existsSync(own) && fs.existsSync(errorsFile)) {
    const [exchangeModule, errors] = await Promise.all([import(pathToFileURL(own).href), import(pathToFileURL(errorsFile).href)]);
    const version = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
    return { version, exchangeClass: (exchangeModule as { default: CcxtLibrary['exchangeClass'] }).default, errors: errors as CcxtLibrary['errors'] };
  }
  const ccxt = (await import('ccxt')).default;
  const classes = (options.push ? ccxt.pro : ccxt) as unknown as Record<string, CcxtLibrary['exchangeClass'] | undefined>;
  const exchangeClass = classes[id] ?? (ccxt as unknown as Record<string, CcxtLibrary['exchangeClass'] | undefined>)[id];
  if (!ccxt.exchanges.includes(id) || typeof exchangeClass !== 'function') {
    const close = closestNames(id, ccxt.exchanges);
    throw new OperationError('failed', `CCXT_EXCHANGE "${id}" is not an exchange ccxt ${ccxt.version} knows${close.length ? ` — closest: ${close.join(', ')}` : ''}`);
  }
  return { version: ccxt.version, exchangeClass, errors: ccxt };
}

/** How far a call may be repeated after a network error: an order may have been placed. */
type Policy = 'read' | 'cancel' | 'order';

/** Trades per page asked for; a page this full is followed for more. */
const PAGE = 50;
/**
 * Exchanges whose trade list pages by offset, newest first: Kraken answers 50 a page and `ofs` moves
 * on (a burst within one second would defeat paging by time). A trade booked meanwhile shifts the
 * offsets by one: seen twice (counted once by id), never missed.
 */
const OFFSET_PAGING: Record<string, { param: string; page: number }> = { kraken: { param: 'ofs', page: 50 } };
const MAX_PAGES = 200;
const MAX_BACKOFF_MS = 60_000;
const CREDENTIAL_WORDS = /invalid (api[ -]?)?(key|signature|secret|passphrase)|signature (is )?(invalid|mismatch)|unauthori[sz]ed/i;
const PERIOD_MS: Record<HistoryPeriod, number> = { '1D': 86_400_000, '1W': 7 * 86_400_000, '1M': 30 * 86_400_000, '1A': 365 * 86_400_000 };
const STEP_MS: Record<HistoryTimeframe, number> = { '1Min': 60_000, '5Min': 300_000, '15Min': 900_000, '1H': 3_600_000, '1D': 86_400_000 };

interface Holding {
  currency: string;
  total: number;
  free: number;
  market?: Market;
  /** in CCXT_QUOTE */
  price?: number;
}

interface Holdings {
  quoteTotal: number;
  quoteFree: number;
  items: Holding[];
}

export class CcxtBroker implements Broker {
  readonly exchange: Exchange;
  private readonly id: string;
  private readonly quote: string;
  private readonly logger: Logger;
  private readonly time: Clock;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly secrets: string[];
  private readonly record: EquityRecord;
  /** markets traded since the start: watched where trades are listed per market */
  private readonly traded = new Set<string>();
  /** the exchange lists trades (open orders) only per market: learnt from its first ArgumentsRequired */
  private readonly perMarket = { trades: false, orders: false };
  /** a rate limit's pause: every call waits it out, not only the one that met it */
  private coolDown?: Promise<void>;
  /** calls go out one at a time: nonces must grow per key (Kraken), and a burst is what rate limits punish */
  private queue: Promise<unknown> = Promise.resolve();
  /** the balance read in flight: account() and positions() come together, and share it */
  private holdingsRead?: Promise<Holdings>;
  private warned = new Set<string>();

  private readonly errors: CcxtLibrary['errors'];

  /** Loads ccxt for the configured exchange, then the broker. */
  static async open(options: Omit<CcxtBrokerOptions, 'library'>): Promise<CcxtBroker> {
    return new CcxtBroker({ ...options, library: await loadCcxt(options.config.exchange, { push: options.push }) });
  }

  constructor(private readonly options: CcxtBrokerOptions) {
    const { config } = options;
    this.id = config.exchange;
    this.quote = config.quote;
    this.logger = options.logger ?? silentLogger;
    this.time = options.clock ?? systemClock;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.secrets = [config.apiKey, config.secret, config.password ?? ''].filter(Boolean);
    this.errors = options.library.errors;
    this.exchange = options.exchange ?? createExchange(config, options.library);
    if (options.timeoutMs !== undefined) this.exchange.timeout = options.timeoutMs;
    strictlyGrowingNonce(this.exchange);
    this.record = EquityRecord.in(options.dataDir, config.exchange);
  }

  async account(): Promise<Account> {
    const holdings = await this.holdings();
    const equity = holdings.quoteTotal + holdings.items.reduce((sum, h) => sum + (h.price ?? 0) * h.total, 0);
    const now = this.time.now();
    if (this.options.recordEquity !== false) this.record.note(now, equity);
    const dayStart = Math.floor(now / 86_400_000) * 86_400_000;
    const lastEquity = this.record.firstFrom(dayStart)?.equity ?? equity;
    return {
      status: 'ACTIVE',
      currency: this.quote,
      equity,
      lastEquity,
      cash: holdings.quoteTotal,
      buyingPower: holdings.quoteFree,
      dayPnl: equity - lastEquity,
    };
  }

  async clock(): Promise<MarketClock> {
    // Crypto markets never close; the exchange's time is what doctor compares the clock with.
    if (!this.exchange.has.fetchTime) return { isOpen: true };
    const time = await this.call('fetchTime', () => this.exchange.fetchTime());
    return { isOpen: true, ...(typeof time === 'number' ? { timestamp: new Date(time).toISOString() } : {}) };
  }

  async positions(): Promise<Position[]> {
    const holdings = await this.holdings();
    const spot = holdings.items.flatMap((h): Position[] => {
      if (!h.market || h.price === undefined || this.dustReason(h, h.total) !== undefined) return [];
      return [{ symbol: h.market.symbol, qty: h.total, side: 'long', marketValue: h.total * h.price, avgEntryPrice: 0, unrealizedPnl: 0, assetClass: 'crypto' }];
    });
    return [...spot, ...(await this.derivativePositions())];
  }

  async openOrders(): Promise<Order[]> {
    const orders = await this.eachMarket('orders', 'fetchOpenOrders', (symbol) => this.exchange.fetchOpenOrders(symbol));
    return orders.map(toOrder);
  }

  /** Fills at or after `afterIso` (all pages; per market where the exchange needs it), oldest first, each trade once. */
  async fills(afterIso?: string): Promise<Fill[]> {
    const since = afterIso === undefined ? undefined : Date.parse(afterIso);
    if (since !== undefined && Number.isNaN(since)) throw new OperationError('usage', `fills: "${afterIso}" is not an ISO timestamp`);
    const trades = await this.eachMarket('trades', 'fetchMyTrades', (symbol) => this.tradesSince(symbol, since));
    const fills = new Map<string, Fill>();
    for (const trade of trades) {
      const fill = toFill(trade);
      if (fill && (since === undefined || fill.at >= since)) fills.set(fill.id, fill);
    }
    for (const fill of fills.values()) this.traded.add(fill.symbol);
    return [...fills.values()].sort((a, b) => a.at - b.at);
  }

  async cancelAllOrders(): Promise<Array<{ id: string; status: number }>> {
    const open = await this.openOrders();
    if (!open.length) return [];
    if (this.exchange.has.cancelAllOrders && !this.perMarket.orders) {
      await this.call('cancelAllOrders', () => this.exchange.cancelAllOrders(), 'cancel');
      return open.map((o) => ({ id: o.id, status: 200 }));
    }
    return Promise.all(
      open.map(async (o) => {
        try {
          await this.call('cancelOrder', () => this.exchange.cancelOrder(o.id, o.symbol), 'cancel');
          return { id: o.id, status: 200 };
        } catch (error) {
          return { id: o.id, status: this.statusOf(error) };
        }
      }),
    );
  }

  /**
   * Sells every holding at market (the amount cut to the market's precision) and closes derivative
   * positions reduce-only. A holding the market would not take (under its minimum amount or cost)
   * is reported as dust: it stays, and it is not a position.
   */
  async closeAllPositions(): Promise<CloseResult[]> {
    const holdings = await this.holdings({ fresh: true });
    const spot = holdings.items.filter((h) => h.market).map(async (h): Promise<CloseResult> => {
      const symbol = h.market!.symbol;
      const amount = h.free > 0 ? h.free : h.total;
      const dust = this.dustReason(h, amount);
      if (dust !== undefined) return { symbol, status: 200, dust };
      try {
        const order = await this.call(`createOrder ${symbol}`, () => this.exchange.createOrder(symbol, 'market', 'sell', Number(this.exchange.amountToPrecision(symbol, amount))), 'order');
        return { symbol, status: 200, order: toOrder({ ...order, symbol: order.symbol ?? symbol, side: order.side ?? 'sell' }) };
      } catch (error) {
        return { symbol, status: this.statusOf(error), error: error instanceof Error ? error.message : String(error) };
      }
    });
    const derivatives = (await this.derivativePositions()).map(async (p): Promise<CloseResult> => {
      const side = p.qty > 0 ? 'sell' : 'buy';
      try {
        const order = await this.call(`createOrder ${p.symbol}`, () => this.exchange.createOrder(p.symbol, 'market', side, Math.abs(p.qty), undefined, { reduceOnly: true }), 'order');
        return { symbol: p.symbol, status: 200, order: toOrder({ ...order, symbol: order.symbol ?? p.symbol, side: order.side ?? side }) };
      } catch (error) {
        return { symbol: p.symbol, status: this.statusOf(error), error: error instanceof Error ? error.message : String(error) };
      }
    });
    return Promise.all([...spot, ...derivatives]);
  }

  /** The recorded equity over `period`, the last snapshot of each `timeframe` step; `recordedSince` says how far back the record goes. */
  async portfolioHistory(period: HistoryPeriod, timeframe: HistoryTimeframe): Promise<PortfolioHistory> {
    const from = this.time.now() - PERIOD_MS[period];
    const all = this.record.all();
    const step = STEP_MS[timeframe];
    const lastOfStep = new Map<number, { at: number; equity: number }>();
    for (const p of all) if (p.at >= from) lastOfStep.set(Math.floor(p.at / step), p);
    const chosen = [...lastOfStep.values()];
    const baseValue = all.filter((p) => p.at < from).at(-1)?.equity ?? chosen[0]?.equity ?? 0;
    return {
      timeframe,
      baseValue,
      points: chosen.map((p) => ({ at: p.at, equity: p.equity, profitLoss: p.equity - baseValue, profitLossPct: baseValue > 0 ? (p.equity - baseValue) / baseValue : 0 })),
      recorded: all.length ? { since: all[0]!.at } : {},
    };
  }

  /** Exchanges have no account switch that blocks new orders: nothing is ever suspended. */
  async tradingSuspended(): Promise<boolean> {
    return false;
  }

  async setTradingSuspended(suspended: boolean): Promise<void> {
    throw new OperationError('refused', `cannot ${suspended ? 'lock' : 'unlock'} the account: ${this.id} has no account switch that blocks new orders (Alpaca's suspend_trade): lock and unlock need BROKER=alpaca; stop the trader instead`);
  }

  get ccxtVersion(): string {
    return this.options.library.version;
  }

  /** Whether the exchange lists trades only per market (known after the first fills read), and the markets watched then. */
  async tradeWatchPlan(): Promise<{ perMarket: boolean; markets?: string[] }> {
    return this.perMarket.trades ? { perMarket: true, markets: await this.watchedMarkets() } : { perMarket: false };
  }

  // ---- pushed trades (ccxt pro's watchMyTrades) ----

  /** Whether the exchange pushes the account's trades through ccxt (pro class loaded, watchMyTrades offered). */
  get pushesTrades(): boolean {
    const exchange = this.exchange as Exchange & { watchMyTrades?: unknown };
    return this.exchange.has.watchMyTrades === true && typeof exchange.watchMyTrades === 'function';
  }

  /** Tells `listener` (the URL) each time one of the exchange's WebSockets opens: ccxt's onConnected hook, read when a connection is made. */
  onPushConnected(listener: (url: string) => void): void {
    const exchange = this.exchange as unknown as { onConnected: (client: { url: string }, message?: unknown) => void };
    const own = exchange.onConnected.bind(exchange);
    exchange.onConnected = (client, message) => {
      own(client, message);
      listener(client.url);
    };
  }

  /**
   * Before a (re)connection: the exchange's WebSocket token (Kraken GetWebSocketsToken, Binance's
   * listen key), asked in turn with the REST calls (its nonce must grow with theirs); an exchange
   * that needs none skips it. A refused key is said as the poll says it.
   */
  async preparePush(): Promise<void> {
    const exchange = this.exchange as unknown as { authenticate?: () => Promise<unknown>; loadHttpProxyAgent: () => Promise<unknown> };
    // ccxt refuses a plain ws:// URL (a local stand-in, a proxy without TLS) until its http agent is loaded.
    await exchange.loadHttpProxyAgent();
    await this.call('loadMarkets', () => this.exchange.loadMarkets());
    if (typeof exchange.authenticate === 'function') await this.call('authenticate (WebSocket)', () => exchange.authenticate!());
  }

  /**
   * The trades pushed since the last call, as fills keyed like the poll's (trade id, order id).
   * ccxt keeps what arrives between two calls and hands it to the next one, only once another
   * message comes: call again at once (a token still valid needs no REST call, so no message can
   * slip in between). Rejects when the connection is lost, with our error (the cause ccxt's).
   */
  async nextPushedFills(): Promise<Fill[]> {
    const exchange = this.exchange as unknown as { watchMyTrades: () => Promise<Trade[]> };
    let trades: Trade[];
    try {
      trades = await exchange.watchMyTrades();
    } catch (error) {
      const said = this.said(error);
      if (error instanceof this.errors.AuthenticationError || (error instanceof this.errors.ExchangeError && CREDENTIAL_WORDS.test(said))) throw this.credentialsRejected('watchMyTrades', error as Error, said);
      throw this.failure(`exchange ${this.id} watchMyTrades: ${said}`, error);
    }
    return trades.flatMap((t) => toFill(t) ?? []);
  }

  /** Whether `error` (from preparePush or nextPushedFills) is the exchange refusing the keys. */
  refusedKeys(error: unknown): boolean {
    const cause = error instanceof OperationError ? error.cause : error;
    return cause instanceof this.errors.AuthenticationError || (cause instanceof this.errors.ExchangeError && CREDENTIAL_WORDS.test(this.said(cause)));
  }

  /**
   * Closes the exchange's WebSockets (a pending nextPushedFills rejects). ccxt rejects every future
   * its clients hold, some awaited only later (Kraken's token request in flight: its future is
   * awaited once the REST answer comes) or never: marked handled here, so a stop is never an
   * unhandled rejection; whoever awaits one still gets the error.
   */
  async closePush(): Promise<void> {
    const exchange = this.exchange as unknown as { close: () => Promise<void>; clients?: Record<string, { futures?: Record<string, Promise<unknown>> }> };
    for (const client of Object.values(exchange.clients ?? {})) {
      for (const future of Object.values(client.futures ?? {})) future.catch(() => undefined);
    }
    await exchange.close();
  }

  // ---- reading ----

  /** Balances with each holding's market and price in CCXT_QUOTE; a read in flight is shared, never one that has ended (flatten re-reads after its sells). */
  private holdings(options: { fresh?: boolean } = {}): Promise<Holdings> {
    if (!options.fresh && this.holdingsRead) return this.holdingsRead;
    const read = this.readHoldings();
    this.holdingsRead = read;
    const done = () => {
      if (this.holdingsRead === read) this.holdingsRead = undefined;
    };
    read.then(done, done);
    return read;
  }

  private async readHoldings(): Promise<Holdings> {
    await this.call('loadMarkets', () => this.exchange.loadMarkets());
    const balance = await this.call('fetchBalance', () => this.exchange.fetchBalance());
    const totals = (balance.total ?? {}) as unknown as Record<string, number | undefined>;
    const frees = (balance.free ?? {}) as unknown as Record<string, number | undefined>;
    const items: Holding[] = Object.entries(totals)
      .filter(([currency, total]) => currency !== this.quote && typeof total === 'number' && total > 0)
      .map(([currency, total]) => ({ currency, total: total!, free: frees[currency] ?? total!, market: this.spotMarket(currency, this.quote) }));
    const direct = items.filter((h) => h.market).map((h) => h.market!.symbol);
    const inverse = items.filter((h) => !h.market && this.spotMarket(this.quote, h.currency)).map((h) => `${this.quote}/${h.currency}`);
    const prices = await this.lastPrices([...direct, ...inverse]);
    for (const h of items) {
      if (h.market) h.price = prices.get(h.market.symbol);
      else {
        const inverted = prices.get(`${this.quote}/${h.currency}`);
        if (inverted) h.price = 1 / inverted;
      }
    }
    const unvalued = items.filter((h) => h.price === undefined).map((h) => h.currency);
    this.warnOnce(`unvalued:${unvalued.join(',')}`, unvalued.length > 0, () => `${this.id}: ${unvalued.join(', ')} cannot be valued in ${this.quote} (no market against it, or no price): left out of equity and positions`);
    return { quoteTotal: totals[this.quote] ?? 0, quoteFree: frees[this.quote] ?? totals[this.quote] ?? 0, items };
  }

  private async lastPrices(symbols: string[]): Promise<Map<string, number>> {
    const prices = new Map<string, number>();
    if (!symbols.length) return prices;
    const tickers = this.exchange.has.fetchTickers
      ? Object.values(await this.call('fetchTickers', () => this.exchange.fetchTickers(symbols)))
      : await Promise.all(symbols.map((s) => this.call(`fetchTicker ${s}`, () => this.exchange.fetchTicker(s))));
    for (const t of tickers) {
      const mid = t.bid && t.ask ? (t.bid + t.ask) / 2 : undefined;
      const price = t.last ?? t.close ?? mid;
      if (t.symbol && typeof price === 'number' && price > 0) prices.set(t.symbol, price);
    }
    return prices;
  }

  private spotMarket(base: string, quote: string): Market | undefined {
    const market = this.exchange.markets?.[`${base}/${quote}`];
    return market && market.spot !== false && market.active !== false ? market : undefined;
  }

  /** Why `amount` of a holding cannot be sold in its market, or undefined when it can. */
  private dustReason(h: Holding, amount: number): string | undefined {
    const market = h.market!;
    const minAmount = market.limits?.amount?.min;
    const minCost = market.limits?.cost?.min;
    if (minAmount !== undefined && minAmount !== null && amount < minAmount) return `dust: ${amount} ${h.currency} is under ${market.symbol}'s minimum order of ${minAmount}`;
    if (h.price !== undefined && minCost !== undefined && minCost !== null && amount * h.price < minCost) {
      return `dust: ${amount} ${h.currency} (${(amount * h.price).toFixed(2)} ${this.quote}) is under ${market.symbol}'s minimum order value of ${minCost} ${this.quote}`;
    }
    try {
      this.exchange.amountToPrecision(market.symbol, amount);
    } catch {
      return `dust: ${amount} ${h.currency} is under ${market.symbol}'s smallest step`;
    }
    return undefined;
  }

  /** Open derivative positions, for an account whose ccxt defaultType is swap or future (CCXT_OPTIONS). */
  private async derivativePositions(): Promise<Position[]> {
    const type = String((this.exchange.options as Record<string, unknown>)?.defaultType ?? 'spot');
    if (type === 'spot' || type === 'margin' || !this.exchange.has.fetchPositions) return [];
    const positions = await this.call('fetchPositions', () => this.exchange.fetchPositions());
    return positions.flatMap((p): Position[] => {
      const contracts = (p.contracts ?? 0) * (p.contractSize ?? 1);
      if (!p.symbol || !contracts) return [];
      const side = p.side === 'short' ? 'short' : 'long';
      return [{ symbol: p.symbol, qty: side === 'short' ? -Math.abs(contracts) : Math.abs(contracts), side, marketValue: p.notional ?? 0, avgEntryPrice: p.entryPrice ?? 0, unrealizedPnl: p.unrealizedPnl ?? 0, assetClass: 'derivative' }];
    });
  }

  /**
   * One read for the whole account, or one per market where the exchange insists on a symbol
   * (learnt from its ArgumentsRequired the first time).
   */
  private async eachMarket<T>(kind: 'trades' | 'orders', what: string, read: (symbol?: string) => Promise<T[]>): Promise<T[]> {
    if (!this.perMarket[kind]) {
      try {
        return await this.call(what, () => read(undefined));
      } catch (error) {
        if (!(error instanceof OperationError && error.cause instanceof this.errors.ArgumentsRequired)) throw error;
        this.perMarket[kind] = true;
      }
    }
    const symbols = await this.watchedMarkets();
    const lists = [];
    for (const symbol of symbols) lists.push(await this.call(`${what} ${symbol}`, () => read(symbol)));
    return lists.flat();
  }

  /** CCXT_SYMBOLS, else every market of a currency held and every one traded since the start. */
  private async watchedMarkets(): Promise<string[]> {
    if (this.options.config.symbols) return [...this.options.config.symbols];
    const holdings = await this.holdings();
    const symbols = [...new Set([...holdings.items.flatMap((h) => (h.market ? [h.market.symbol] : [])), ...this.traded])].sort();
    this.warnOnce(`markets:${symbols.join(',')}`, true, () =>
      `${this.id} lists trades only per market: watching ${symbols.length ? symbols.join(', ') : 'no market yet (nothing held)'}. ` +
        `Fills in any other market are not seen (one quoted in another currency than ${this.quote}, or bought and sold back to nothing between two polls): name the markets in CCXT_SYMBOLS`,
    );
    return symbols;
  }

  /** Every trade since `since` in `symbol` (or all markets), following full pages both ways (or by offset). */
  private async tradesSince(symbol: string | undefined, since: number | undefined): Promise<Trade[]> {
    const seen = new Map<string, Trade>();
    const offset = OFFSET_PAGING[this.id];
    if (offset) {
      for (let pages = 0, ofs = 0; pages < MAX_PAGES; pages++) {
        const page = await this.exchange.fetchMyTrades(symbol, since, undefined, { [offset.param]: ofs });
        for (const t of page) seen.set(tradeKey(t), t);
        if (page.length < offset.page) break;
        ofs += page.length;
      }
      return [...seen.values()];
    }
    const ask = async (from: number | undefined, until?: number): Promise<Trade[]> => {
      const page = await this.exchange.fetchMyTrades(symbol, from, PAGE, until === undefined ? {} : { until });
      const added = page.filter((t) => !seen.has(tradeKey(t)));
      for (const t of added) seen.set(tradeKey(t), t);
      return page.length >= PAGE ? added : [];
    };
    let older = await ask(since);
    let newer = older;
    for (let pages = 1; (older.length || newer.length) && pages < MAX_PAGES; pages++) {
      // Newest-first pages (Kraken) hide older trades, oldest-first ones (Binance) newer trades.
      if (older.length) older = await ask(since, Math.min(...older.map((t) => t.timestamp ?? Infinity)));
      if (newer.length) newer = await ask(Math.max(...newer.map((t) => t.timestamp ?? 0)));
    }
    return [...seen.values()];
  }

  // ---- errors ----

  /** One call, after the ones before it: the shared rate-limit pause, retries, and ccxt's errors turned into ours. */
  private call<T>(what: string, work: () => Promise<T>, policy: Policy = 'read'): Promise<T> {
    const turn = this.queue.then(() => this.attempts(what, work, policy));
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  private async attempts<T>(what: string, work: () => Promise<T>, policy: Policy): Promise<T> {
    let networkFailures = 0;
    let rateLimited = 0;
    for (;;) {
      await this.coolDown;
      try {
        return await work();
      } catch (error) {
        const said = this.said(error);
        if (error instanceof this.errors.AuthenticationError) throw this.credentialsRejected(what, error, said);
        if (error instanceof this.errors.RateLimitExceeded || error instanceof this.errors.DDoSProtection) {
          // Turned away before it was handled: safe to repeat, orders included.
          rateLimited++;
          if (rateLimited > (this.options.rateLimitRetries ?? 5)) {
            throw this.failure(`exchange ${this.id} ${what}: still rate limited after backing off ${rateLimited - 1} times (${said})`, error);
          }
          const wait = Math.min(MAX_BACKOFF_MS, (this.options.rateLimitBackoffMs ?? 2000) * 2 ** (rateLimited - 1));
          this.logger.warn(`exchange ${this.id} ${what}: rate limited (${said}); every call pauses ${wait} ms`);
          const pause = this.sleep(wait);
          this.coolDown = pause;
          await pause;
          if (this.coolDown === pause) this.coolDown = undefined;
          continue;
        }
        if (error instanceof this.errors.NetworkError) {
          networkFailures++;
          const retries = this.options.retries ?? 3;
          if (policy === 'order') {
            // "Not available" is the exchange's own answer (Kraken: market in cancel_only mode); a time-out or a cut connection may hide a taken order.
            if (error instanceof this.errors.ExchangeNotAvailable || error instanceof this.errors.InvalidNonce) throw this.failure(`exchange ${this.id} ${what}: ${said}`, error);
            throw this.failure(`exchange ${this.id} ${what}: ${said}; not repeated because the exchange may have taken the order — re-read the positions`, error);
          }
          if (networkFailures > retries) throw this.failure(`exchange ${this.id} unreachable: ${what}: ${said}${networkFailures > 1 ? ` (after ${networkFailures} attempts)` : ''}`, error);
          const wait = (this.options.backoffMs ?? 500) * 2 ** (networkFailures - 1);
          this.logger.warn(`exchange ${this.id} ${what}: ${said}; retrying in ${wait} ms (attempt ${networkFailures + 1} of ${retries + 1})`);
          await this.sleep(wait);
          continue;
        }
        // Some refusals of the keys reach ccxt unmapped (Kraken's "EAPI:Invalid signature": a wrong secret).
        if (error instanceof this.errors.ExchangeError && CREDENTIAL_WORDS.test(said)) throw this.credentialsRejected(what, error, said);
        if (error instanceof this.errors.ExchangeError) throw this.failure(`exchange ${this.id} ${what}: ${said}`, error);
        throw this.failure(`exchange ${this.id} ${what} failed: ${said}`, error);
      }
    }
  }

  private credentialsRejected(what: string, error: Error, said: string): OperationError {
    const missing = /requires "(\w+)" credential/.exec(error.message)?.[1];
    const variable: Record<string, string> = { apiKey: 'CCXT_API_KEY', secret: 'CCXT_SECRET', password: 'CCXT_PASSWORD' };
    if (missing) return this.failure(`exchange ${this.id} needs ${variable[missing] ? `${variable[missing]}: set it` : `the "${missing}" credential: an account id (uid, login) goes in CCXT_OPTIONS, e.g. {"${missing}":"…"}; a private key or token is not supported yet`}`, error);
    if (error instanceof this.errors.PermissionDenied) {
      return this.failure(`exchange ${this.id} refused ${what} for this key (${said}) — give the key of CCXT_API_KEY permission to read the account and trade`, error);
    }
    const names = ['CCXT_API_KEY', 'CCXT_SECRET', ...(this.options.config.password ? ['CCXT_PASSWORD'] : [])];
    return this.failure(`exchange ${this.id} rejected the credentials (${what}: ${said}) — check ${names.slice(0, -1).join(', ')} and ${names.at(-1)}`, error);
  }

  /** The exchange's own words, without ccxt's "<id> " prefix, a secret or a page of HTML. */
  private said(error: unknown): string {
    const message = error instanceof Error ? error.message : String(error);
    const words = message.startsWith(`${this.id} `) ? message.slice(this.id.length + 1) : message;
    const clipped = words.length > 300 ? `${words.slice(0, 300)}…` : words;
    return redact(clipped, this.secrets);
  }

  /** An OperationError whose cause is ccxt's error class (its message redacted): fronts show ours, the log keeps the class. */
  private failure(message: string, error: unknown): OperationError {
    return new OperationError('failed', redact(message, this.secrets), { cause: error });
  }

  /** An HTTP-like status for a failed close or cancel, as Alpaca's multi-status answer has. */
  private statusOf(error: unknown): number {
    const cause = error instanceof OperationError ? error.cause : error;
    if (cause instanceof this.errors.OrderNotFound) return 404;
    if (cause instanceof this.errors.InsufficientFunds || cause instanceof this.errors.AuthenticationError) return 403;
    if (cause instanceof this.errors.NetworkError) return 503;
    return 422;
  }

  private warnOnce(key: string, when: boolean, message: () => string): void {
    if (!when || this.warned.has(key)) return;
    this.warned.add(key);
    this.logger.warn(message());
  }
}

/** The exchange object, with the credentials and CCXT_OPTIONS. */
function createExchange(config: CcxtConfig, library: CcxtLibrary): Exchange {
  const given = config.options as Record<string, unknown>;
  const exchange = new library.exchangeClass({
    apiKey: config.apiKey,
    secret: config.secret,
    ...(config.password ? { password: config.password } : {}),
    enableRateLimit: true,
    timeout: 10_000,
    ...given,
    // Binance refuses open orders without a symbol unless told the caller knows the cost.
    options: { warnOnFetchOpenOrdersWithoutSymbol: false, ...((given.options as Record<string, unknown> | undefined) ?? {}) },
  });
  if (config.sandbox) {
    try {
      // ccxt's own check passes an exchange whose test URL is undefined (kraken): look at the URL.
      if (!exchange.urls?.test) throw new library.errors.NotSupported('no test URL');
      exchange.setSandboxMode(true);
    } catch {
      throw new OperationError('failed', `CCXT_SANDBOX=on: ccxt knows no test network for ${config.exchange}; set CCXT_SANDBOX=off, or point CCXT_OPTIONS "urls" at the test endpoint the exchange documents`);
    }
  }
  return exchange;
}

/**
 * ccxt's nonce is the time in ms (Kraken): two calls in one millisecond (loopback, or a fast answer)
 * would send the same nonce, and the second be refused "EAPI:Invalid nonce". One more is enough.
 */
function strictlyGrowingNonce(exchange: Exchange): void {
  const clockNonce = exchange.nonce.bind(exchange);
  let last = 0;
  exchange.nonce = () => {
    last = Math.max(Number(clockNonce()), last + 1);
    return last;
  };
}

function tradeKey(t: Trade): string {
  return t.id ?? `${t.order ?? ''}@${t.timestamp ?? ''}@${t.amount ?? ''}@${t.price ?? ''}`;
}

function toFill(t: Trade): Fill | undefined {
  if (!t.symbol || typeof t.timestamp !== 'number' || typeof t.amount !== 'number' || typeof t.price !== 'number') return undefined;
  const id = tradeKey(t);
  return { id, orderId: t.order ?? id, symbol: t.symbol, side: t.side ?? 'unknown', qty: t.amount, price: t.price, at: t.timestamp, type: 'fill' };
}

function toOrder(o: CcxtOrder): Order {
  return {
    id: o.id ?? 'unknown',
    ...(o.clientOrderId ? { clientOrderId: o.clientOrderId } : {}),
    symbol: o.symbol ?? 'unknown',
    side: o.side === 'sell' ? 'sell' : 'buy',
    ...(typeof o.amount === 'number' ? { qty: o.amount } : {}),
    type: o.type ?? 'unknown',
    timeInForce: (o.timeInForce ?? 'gtc').toLowerCase(),
    status: o.status ?? 'open',
    filledQty: o.filled ?? 0,
    ...(o.datetime ? { submittedAt: o.datetime } : {}),
  };
}

