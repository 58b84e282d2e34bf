// The Alpaca Trading API v2 client — the only module that imports axios. It turns Alpaca's JSON
// (numbers as strings) into our own types at the edge, refuses malformed answers, bounds every call
// with a time-out, retries what is safe to retry, and never lets a key reach an error or a log line.
// It also reads and flips the account's own trading switch (the configuration `suspend_trade`).
import { randomUUID } from 'node:crypto';
import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import { OperationError } from '../errors.ts';
import { redact, silentLogger, type Logger } from '../log.ts';
import type { Account, Broker, CloseResult, Fill, HistoryPeriod, HistoryTimeframe, MarketClock, Order, OrderUpdate, PortfolioHistory, Position } from './types.ts';

export interface AlpacaBrokerOptions {
  /** e.g. https://paper-api.alpaca.markets (a trailing /v2 is tolerated) */
  baseUrl: string;
  keyId: string;
  secretKey: string;
  /** per attempt (default 5000) */
  timeoutMs?: number;
  /** extra attempts after the first (default 3) */
  retries?: number;
  logger?: Logger;
  /** injected so tests do not wait out back-offs */
  sleep?: (ms: number) => Promise<void>;
  /** first back-off, doubled on each retry (default 250) */
  backoffMs?: number;
  /** a Retry-After longer than this is not waited out: the call fails at once (default 10000) */
  maxRetryAfterMs?: number;
}

export interface PlaceOrderRequest {
  symbol: string;
  side: 'buy' | 'sell';
  qty?: number;
  notional?: number;
  type: 'market';
  time_in_force: 'day' | 'gtc' | 'ioc' | 'fok' | 'opg' | 'cls';
  clientOrderId?: string;
}

/**
 * The sanitized cause of every broker error: what was asked and what came back — never the axios
 * error, whose `config.headers` carry the keys.
 */
export class BrokerRequestError extends Error {
  constructor(
    message: string,
    readonly details: {
      method: string;
      path: string;
      attempts: number;
      /** HTTP status, when the broker answered */
      status?: number;
      /** Alpaca's error code (e.g. 40310000) or the network error code (e.g. ECONNREFUSED) */
      code?: string | number;
      brokerMessage?: string;
      requestId?: string;
    },
  ) {
    super(message);
    this.name = 'BrokerRequestError';
  }
}

/**
 * How far a call may be retried.
 * - 'idempotent' (GETs, and the PATCH of the account configuration, which sets a value: repeating it
 *   leaves the same state): any transient failure is retried: 429, 5xx, network errors and time-outs.
 * - 'only-if-untouched' (DELETE /v2/orders, DELETE /v2/positions, POST /v2/orders): the request acts
 *   on the account. A retry is safe only when the first attempt certainly did nothing: 429 (the rate
 *   limiter turns it away before it is handled), 503 (the service turned it away) and a connection
 *   that was never made (refused, unknown host). After a time-out, a reset or a 500/502/504 the
 *   broker may already have cancelled or submitted closing orders; a blind repeat would then report
 *   on the second attempt (cancelling the first one's queued closes and sending new ones, or failing
 *   with "insufficient qty available" because they hold the shares) and the flatten report would not
 *   describe what happened. So we fail loudly and let the caller re-read positions and orders.
 */
type RetryPolicy = 'idempotent' | 'only-if-untouched';

type Attempt =
  | { kind: 'answer'; response: AxiosResponse<string> }
  | { kind: 'network'; code: string; description: string; timedOut: boolean };

// Network failures in which the request never reached the broker.
const NEVER_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN']);

const CREDENTIALS_REJECTED = (status: number) =>
  `broker credentials rejected (${status}) — check APCA_API_KEY_ID and APCA_API_SECRET_KEY`;

export class AlpacaBroker implements Broker {
  private readonly http: AxiosInstance;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly backoffMs: number;
  private readonly maxRetryAfterMs: number;
  private readonly logger: Logger;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly secrets: readonly string[];

  constructor(options: AlpacaBrokerOptions) {
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.retries = Math.max(0, options.retries ?? 3);
    this.backoffMs = options.backoffMs ?? 250;
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? 10_000;
    this.logger = options.logger ?? silentLogger;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.secrets = [options.keyId, options.secretKey];
    const baseURL = options.baseUrl.replace(/\/+$/, '').replace(/\/v2$/, '');
    this.http = axios.create({
      baseURL,
      timeout: this.timeoutMs,
      headers: {
        'APCA-API-KEY-ID': options.keyId,
        'APCA-API-SECRET-KEY': options.secretKey,
        Accept: 'application/json',
      },
      // Every status is ours to judge; the body stays text so JSON errors are reported clearly.
      validateStatus: () => true,
      responseType: 'text',
      transformResponse: [(data: unknown) => data],
      // follow-redirects would forward the APCA-* headers to wherever a redirect points.
      maxRedirects: 0,
      transitional: { clarifyTimeoutError: true },
    });
  }

  async account(): Promise<Account> {
    const where = 'GET /v2/account';
    const a = record(await this.request('GET', '/v2/account', 'idempotent'), where);
    const equity = decimal(a, 'equity', where);
    const lastEquity = decimal(a, 'last_equity', where);
    return {
      accountNumber: optionalText(a, 'account_number', where),
      status: text(a, 'status', where),
      currency: text(a, 'currency', where),
      equity,
      lastEquity,
      cash: decimal(a, 'cash', where),
      buyingPower: decimal(a, 'buying_power', where),
      dayPnl: equity - lastEquity,
      tradeSuspendedByUser: optionalBoolean(a, 'trade_suspended_by_user', where),
      tradingBlocked: optionalBoolean(a, 'trading_blocked', where),
      accountBlocked: optionalBoolean(a, 'account_blocked', where),
    };
  }

  /** The account configuration `suspend_trade`: true while new orders (closes included) are blocked. */
  async tradingSuspended(): Promise<boolean> {
    const path = '/v2/account/configurations';
    return suspendTrade(await this.request('GET', path, 'idempotent'), `GET ${path}`);
  }

  /**
   * Sets `suspend_trade` with a partial PATCH (the other settings are left as they are). Setting a
   * value is safe to repeat, so it is retried like a GET; the answer must show the asked value.
   */
  async setTradingSuspended(suspended: boolean): Promise<void> {
    const path = '/v2/account/configurations';
    const where = `PATCH ${path}`;
    const now = suspendTrade(await this.request('PATCH', path, 'idempotent', { body: { suspend_trade: suspended } }), where);
    if (now !== suspended) {
      throw new OperationError('failed', `broker ${where}: asked for suspend_trade ${suspended}, the answer still shows ${now}`);
    }
  }

  async clock(): Promise<MarketClock> {
    const where = 'GET /v2/clock';
    const c = record(await this.request('GET', '/v2/clock', 'idempotent'), where);
    if (typeof c.is_open !== 'boolean') throw new Malformed(where, `"is_open" is ${show(c.is_open)}, expected true or false`);
    return { timestamp: optionalText(c, 'timestamp', where), isOpen: c.is_open, nextOpen: optionalText(c, 'next_open', where), nextClose: optionalText(c, 'next_close', where) };
  }

  async positions(): Promise<Position[]> {
    const where = 'GET /v2/positions';
    return list(await this.request('GET', '/v2/positions', 'idempotent'), where).map((p, i) => parsePosition(p, `${where} [${i}]`));
  }

  async openOrders(): Promise<Order[]> {
    const where = 'GET /v2/orders';
    const data = await this.request('GET', '/v2/orders', 'idempotent', { query: { status: 'open', limit: '500' } });
    return list(data, where).map((o, i) => parseOrder(o, `${where} [${i}]`));
  }

  async order(id: string): Promise<Order> {
    const path = `/v2/orders/${encodeURIComponent(id)}`;
    return parseOrder(await this.request('GET', path, 'idempotent'), `GET ${path}`);
  }

  /** All FILL activities after `afterIso`, oldest first, following page_token until a short page. */
  async fills(afterIso?: string): Promise<Fill[]> {
    if (afterIso !== undefined && Number.isNaN(Date.parse(afterIso))) {
      throw new OperationError('usage', `fills: "${afterIso}" is not an ISO timestamp`);
    }
    const path = '/v2/account/activities/FILL';
    const where = `GET ${path}`;
    const pageSize = 100;
    const maxPages = 1000;
    const fills: Fill[] = [];
    const seen = new Set<string>();
    let pageToken: string | undefined;
    for (let page = 0; ; page++) {
      if (page === maxPages) {
        throw new OperationError('failed', `broker ${where}: more than ${maxPages * pageSize} fills after ${afterIso ?? 'the beginning'}; narrow the window`);
      }
      const query: Record<string, string> = { direction: 'asc', page_size: String(pageSize) };
      if (afterIso !== undefined) query.after = afterIso;
      if (pageToken !== undefined) query.page_token = pageToken;
      const items = list(await this.request('GET', path, 'idempotent', { query }), where).map((a, i) =>
        parseFill(a, `${where} [${fills.length + i}]`),
      );
      for (const fill of items) {
        // Pages are cut by id; a fill seen twice (a page boundary the broker moved) counts once.
        if (!seen.has(fill.id)) fills.push(fill);
        seen.add(fill.id);
      }
      if (items.length < pageSize) break;
      const last = items[items.length - 1].id;
      if (last === pageToken) throw new Malformed(where, 'paging did not advance (the same page_token came back)');
      pageToken = last;
    }
    // Stable: the broker's order is kept among fills of the same millisecond.
    return fills.sort((a, b) => a.at - b.at);
  }

  async cancelAllOrders(): Promise<Array<{ id: string; status: number }>> {
    const where = 'DELETE /v2/orders';
    const data = await this.request('DELETE', '/v2/orders', 'only-if-untouched');
    return list(data, where).map((entry, i) => {
      const e = record(entry, `${where} [${i}]`);
      return { id: text(e, 'id', `${where} [${i}]`), status: httpStatus(e, `${where} [${i}]`) };
    });
  }

  async closeAllPositions(): Promise<CloseResult[]> {
    const where = 'DELETE /v2/positions';
    const data = await this.request('DELETE', '/v2/positions', 'only-if-untouched', { query: { cancel_orders: 'true' } });
    return list(data, where).map((entry, i) => {
      const at = `${where} [${i}]`;
      const e = record(entry, at);
      const result: CloseResult = { symbol: text(e, 'symbol', at), status: httpStatus(e, at) };
      if (result.status >= 200 && result.status < 300) {
        // The close happened whatever the body looks like; an unreadable order must not hide that.
        try {
          result.order = parseOrder(e.body, `${at}.body`);
        } catch (error) {
          result.error = `closing order unreadable: ${error instanceof Error ? error.message : String(error)}`;
        }
      } else {
        const body = isRecord(e.body) ? e.body : {};
        const reason = typeof body.message === 'string' && body.message ? body.message : `HTTP ${result.status}`;
        result.error = redact(reason, this.secrets);
      }
      return result;
    });
  }

  /**
   * The equity curve over `period` at `timeframe` resolution. intraday_reporting=continuous gives
   * 24/7 points (crypto trades round the clock; an equity-only account just shows flat nights), and
   * pnl_reset=no_reset keeps profit/loss continuous over the period instead of restarting it daily.
   */
  async portfolioHistory(period: HistoryPeriod, timeframe: HistoryTimeframe): Promise<PortfolioHistory> {
    const path = '/v2/account/portfolio/history';
    const where = `GET ${path}`;
    const query: Record<string, string> = { period, timeframe };
    if (timeframe !== '1D') Object.assign(query, { intraday_reporting: 'continuous', pnl_reset: 'no_reset' });
    const h = record(await this.request('GET', path, 'idempotent', { query }), where);
    const timestamps = list(h.timestamp ?? [], `${where} "timestamp"`);
    const equity = list(h.equity ?? [], `${where} "equity"`);
    const profitLoss = list(h.profit_loss ?? [], `${where} "profit_loss"`);
    const profitLossPct = list(h.profit_loss_pct ?? [], `${where} "profit_loss_pct"`);
    if (equity.length !== timestamps.length) {
      throw new Malformed(where, `"equity" has ${equity.length} values for ${timestamps.length} timestamps`);
    }
    const points: PortfolioHistory['points'] = [];
    timestamps.forEach((t, i) => {
      // Alpaca sends null for steps it has no figure for (before funding, closed sessions).
      if (equity[i] === null || equity[i] === undefined) return;
      const at = `${where} [${i}]`;
      const seconds = decimal({ t }, 't', at);
      points.push({
        at: seconds * 1000,
        equity: decimal({ equity: equity[i] }, 'equity', at),
        profitLoss: optionalDecimal({ profit_loss: profitLoss[i] }, 'profit_loss', at) ?? 0,
        profitLossPct: optionalDecimal({ profit_loss_pct: profitLossPct[i] }, 'profit_loss_pct', at) ?? 0,
      });
    });
    return {
      timeframe: optionalText(h, 'timeframe', where) ?? timeframe,
      baseValue: optionalDecimal(h, 'base_value', where) ?? points[0]?.equity ?? 0,
      points,
    };
  }

  /** Places a market order (used by the demo trader; the controller itself never places orders). */
  async placeOrder(request: PlaceOrderRequest): Promise<Order> {
    if ((request.qty === undefined) === (request.notional === undefined)) {
      throw new OperationError('usage', 'placeOrder: give exactly one of qty or notional');
    }
    const amount = request.qty ?? request.notional!;
    if (!Number.isFinite(amount) || amount <= 0) throw new OperationError('usage', 'placeOrder: qty/notional must be a positive number');
    const body: Record<string, string> = {
      symbol: request.symbol,
      side: request.side,
      type: request.type,
      time_in_force: request.time_in_force,
      // Alpaca refuses a second order with the same client_order_id: a resent request cannot double.
      client_order_id: request.clientOrderId ?? `tw-${randomUUID()}`,
    };
    if (request.qty !== undefined) body.qty = String(request.qty);
    else body.notional = String(request.notional);
    return parseOrder(await this.request('POST', '/v2/orders', 'only-if-untouched', { body }), 'POST /v2/orders');
  }

  // ---- transport ----

  /** One logical call: attempts, back-off, and the translation of failures into OperationErrors. */
  private async request(
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    path: string,
    policy: RetryPolicy,
    options: { query?: Record<string, string>; body?: unknown } = {},
  ): Promise<unknown> {
    const call = `${method} ${path}`;
    const attempts = this.retries + 1;
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.attempt(method, path, options);
      let retryable: boolean;
      let waitMs = this.backoffMs * 2 ** (attempt - 1);
      let failure: OperationError;

      if (outcome.kind === 'answer') {
        const { status } = outcome.response;
        const body = parseBody(outcome.response.data);
        if (status >= 200 && status < 300) {
          if (body.ok) return body.value;
          throw this.malformed(call, status, attempt, 'a body that is not JSON');
        }
        const brokerMessage = redact(errorMessage(body.ok ? body.value : outcome.response.data) ?? '', this.secrets) || undefined;
        const code = body.ok && isRecord(body.value) && typeof body.value.code === 'number' ? body.value.code : undefined;
        const requestId = headerText(outcome.response.headers['x-request-id']);
        const details = { method, path, attempts: attempt, status, code, brokerMessage, requestId };
        if (status === 401 || (status === 403 && isAuthForbidden(brokerMessage))) {
          const message = CREDENTIALS_REJECTED(status);
          throw new OperationError('failed', message, { cause: new BrokerRequestError(message, details) });
        }
        retryable = status === 429 || (policy === 'idempotent' ? status >= 500 : status === 503);
        let note = attempt > 1 ? ` (after ${attempt} attempts)` : '';
        if (status === 429 || status === 503) {
          const advised = retryAfterMs(outcome.response.headers);
          if (advised !== undefined && advised > this.maxRetryAfterMs) {
            retryable = false;
            note += `; the broker asks to wait ${Math.ceil(advised / 1000)} s`;
          } else if (advised !== undefined) waitMs = advised;
        }
        if (status >= 300 && status < 400) note += ' — a redirect: put the final URL in APCA_API_BASE_URL';
        const message = `broker ${call} answered ${status}${brokerMessage ? `: ${brokerMessage}` : ''}${note}`;
        failure = new OperationError('failed', message, { cause: new BrokerRequestError(message, details) });
      } else {
        const details = { method, path, attempts: attempt, code: outcome.code };
        retryable = policy === 'idempotent' || NEVER_CONNECTED.has(outcome.code);
        let message: string;
        if (outcome.timedOut) {
          message = `broker ${call} timed out after ${this.timeoutMs} ms${attempt > 1 ? ` (${attempt} attempts)` : ''}`;
          if (policy === 'only-if-untouched') message += '; not repeated because the broker may have acted on it — re-read positions and orders';
        } else {
          message = `broker ${call} failed: ${outcome.description}${attempt > 1 ? ` (after ${attempt} attempts)` : ''}`;
        }
        failure = new OperationError('failed', message, { cause: new BrokerRequestError(message, details) });
      }

      if (!retryable || attempt >= attempts) throw failure;
      this.logger.warn(`${failure.message}; retrying in ${waitMs} ms (attempt ${attempt + 1} of ${attempts})`);
      await this.sleep(waitMs);
    }
  }

  private async attempt(method: string, path: string, options: { query?: Record<string, string>; body?: unknown }): Promise<Attempt> {
    // axios' own timeout watches the socket; the signal bounds the whole exchange, body included.
    const signal = AbortSignal.timeout(this.timeoutMs);
    try {
      const response = await this.http.request<string>({ method, url: path, params: options.query, data: options.body, signal });
      return { kind: 'answer', response };
    } catch (error) {
      // Only the code and a fixed description leave this block: the axios error holds the keys.
      const code = errorCode(error);
      const timedOut = signal.aborted || code === 'ETIMEDOUT' || code === 'ECONNABORTED' || code === 'ERR_CANCELED';
      return { kind: 'network', code: timedOut ? 'ETIMEDOUT' : code, description: describeNetworkError(code), timedOut };
    }
  }

  private malformed(call: string, status: number, attempts: number, what: string): OperationError {
    const [method, path] = call.split(' ');
    const message = `broker ${call} answered ${status} with ${what}`;
    return new OperationError('failed', message, { cause: new BrokerRequestError(message, { method, path, status, attempts }) });
  }
}

// ---- parsing Alpaca's JSON into our types ----

/** A broker answer of the wrong shape; an OperationError so fronts show it as a failure. */
class Malformed extends OperationError {
  constructor(where: string, problem: string) {
    super('failed', `broker ${where} answered malformed data: ${problem}`);
  }
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function show(value: unknown): string {
  if (value === undefined) return 'missing';
  const json = JSON.stringify(value);
  return json.length > 40 ? `${json.slice(0, 40)}…` : json;
}

function record(value: unknown, where: string): Record<string, unknown> {
  if (!isRecord(value)) throw new Malformed(where, `expected an object, got ${show(value)}`);
  return value;
}

function list(value: unknown, where: string): unknown[] {
  if (!Array.isArray(value)) throw new Malformed(where, `expected an array, got ${show(value)}`);
  return value;
}

function text(o: Record<string, unknown>, field: string, where: string): string {
  const value = o[field];
  if (typeof value !== 'string' || value === '') throw new Malformed(where, `"${field}" is ${show(value)}, expected text`);
  return value;
}

function optionalText(o: Record<string, unknown>, field: string, where: string): string | undefined {
  const value = o[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new Malformed(where, `"${field}" is ${show(value)}, expected text`);
  return value;
}

/** Alpaca sends decimals as strings ("100000.12"); plain JSON numbers are accepted too. */
function decimal(o: Record<string, unknown>, field: string, where: string): number {
  const value = o[field];
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  if (!Number.isFinite(n)) throw new Malformed(where, `"${field}" is ${show(value)}, expected a number`);
  return n;
}

function optionalBoolean(o: Record<string, unknown>, field: string, where: string): boolean | undefined {
  const value = o[field];
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') throw new Malformed(where, `"${field}" is ${show(value)}, expected true or false`);
  return value;
}

/** The `suspend_trade` of an account configuration answer (GET or PATCH /v2/account/configurations). */
function suspendTrade(value: unknown, where: string): boolean {
  const c = record(value, where);
  if (typeof c.suspend_trade !== 'boolean') throw new Malformed(where, `"suspend_trade" is ${show(c.suspend_trade)}, expected true or false`);
  return c.suspend_trade;
}

function optionalDecimal(o: Record<string, unknown>, field: string, where: string): number | undefined {
  return o[field] === undefined || o[field] === null ? undefined : decimal(o, field, where);
}

function httpStatus(o: Record<string, unknown>, where: string): number {
  const value = o.status;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 100 || value > 599) {
    throw new Malformed(where, `"status" is ${show(value)}, expected an HTTP status`);
  }
  return value;
}

function parsePosition(value: unknown, where: string): Position {
  const p = record(value, where);
  const side = text(p, 'side', where);
  if (side !== 'long' && side !== 'short') throw new Malformed(where, `"side" is ${show(side)}, expected long or short`);
  const qty = decimal(p, 'qty', where);
  return {
    symbol: text(p, 'symbol', where),
    // signed, whether or not the broker already sent a negative qty for a short
    qty: side === 'short' ? -Math.abs(qty) : Math.abs(qty),
    side,
    marketValue: decimal(p, 'market_value', where),
    avgEntryPrice: decimal(p, 'avg_entry_price', where),
    unrealizedPnl: decimal(p, 'unrealized_pl', where),
    assetClass: optionalText(p, 'asset_class', where),
  };
}

function parseOrder(value: unknown, where: string): Order {
  const o = record(value, where);
  const side = text(o, 'side', where);
  if (side !== 'buy' && side !== 'sell') throw new Malformed(where, `"side" is ${show(side)}, expected buy or sell`);
  return {
    id: text(o, 'id', where),
    clientOrderId: optionalText(o, 'client_order_id', where),
    symbol: text(o, 'symbol', where),
    side,
    qty: optionalDecimal(o, 'qty', where),
    notional: optionalDecimal(o, 'notional', where),
    type: text(o, 'type', where),
    timeInForce: text(o, 'time_in_force', where),
    status: text(o, 'status', where),
    filledQty: decimal(o, 'filled_qty', where),
    submittedAt: optionalText(o, 'submitted_at', where),
    limitPrice: optionalDecimal(o, 'limit_price', where),
    stopPrice: optionalDecimal(o, 'stop_price', where),
  };
}

function parseFill(value: unknown, where: string): Fill {
  const a = record(value, where);
  if (a.activity_type !== undefined && a.activity_type !== 'FILL') {
    throw new Malformed(where, `"activity_type" is ${show(a.activity_type)}, expected FILL`);
  }
  const type = text(a, 'type', where);
  if (type !== 'fill' && type !== 'partial_fill') throw new Malformed(where, `"type" is ${show(type)}, expected fill or partial_fill`);
  const time = text(a, 'transaction_time', where);
  const at = Date.parse(time);
  if (Number.isNaN(at)) throw new Malformed(where, `"transaction_time" is ${show(time)}, expected a timestamp`);
  return {
    id: text(a, 'id', where),
    orderId: text(a, 'order_id', where),
    symbol: text(a, 'symbol', where),
    side: text(a, 'side', where),
    qty: decimal(a, 'qty', where),
    price: decimal(a, 'price', where),
    at,
    type,
    cumQty: optionalDecimal(a, 'cum_qty', where),
  };
}

/**
 * The fill inside a `trade_updates` message's data, or undefined for the events that are not fills
 * (new, canceled, …). Same type as a polled FILL activity, so both feed one trade window.
 */
export function parseTradeUpdateFill(value: unknown, where: string): Fill | undefined {
  const data = record(value, where);
  const event = text(data, 'event', where);
  if (event !== 'fill' && event !== 'partial_fill') return undefined;
  const order = record(data.order, `${where}.order`);
  const time = text(data, 'timestamp', where);
  const at = Date.parse(time);
  if (Number.isNaN(at)) throw new Malformed(where, `"timestamp" is ${show(time)}, expected a timestamp`);
  const orderId = text(order, 'id', `${where}.order`);
  return {
    // Alpaca names each execution; the order id and time stand in should an event lack it.
    id: optionalText(data, 'execution_id', where) ?? `${orderId}@${time}`,
    orderId,
    symbol: text(order, 'symbol', `${where}.order`),
    side: text(order, 'side', `${where}.order`),
    qty: decimal(data, 'qty', where),
    price: decimal(data, 'price', where),
    at,
    type: event,
    cumQty: optionalDecimal(order, 'filled_qty', `${where}.order`),
  };
}

/** An order that will trade no more, as a trade_updates event says it (the gate stops counting it). */
export interface OrderEnded {
  orderId: string;
  event: 'canceled' | 'expired' | 'rejected' | 'replaced' | 'done_for_day';
  /** what it filled before it ended (its fills count as trades anyway) */
  filledQty: number;
}

const ENDING_EVENTS = new Set<OrderEnded['event']>(['canceled', 'expired', 'rejected', 'replaced', 'done_for_day']);

/** A trade_updates event that ends an order; undefined for every other event. */
export function parseTradeUpdateEnd(value: unknown, where: string): OrderEnded | undefined {
  const data = record(value, where);
  const event = text(data, 'event', where) as OrderEnded['event'];
  if (!ENDING_EVENTS.has(event)) return undefined;
  const order = record(data.order, `${where}.order`);
  return { orderId: text(order, 'id', `${where}.order`), event, filledQty: optionalDecimal(order, 'filled_qty', `${where}.order`) ?? 0 };
}

/**
 * Any trade_updates event, as the order it leaves (the gate's model of the trader's book). Lenient
 * beyond what the model needs — the id, symbol and side —, since an event is judged by its order's
 * status, or by its name when the status is absent.
 */
export function parseTradeUpdateOrder(value: unknown, where: string): OrderUpdate {
  const data = record(value, where);
  const o = record(data.order, `${where}.order`);
  const at = `${where}.order`;
  return {
    event: text(data, 'event', where),
    order: {
      id: text(o, 'id', at),
      clientOrderId: optionalText(o, 'client_order_id', at),
      symbol: text(o, 'symbol', at),
      side: text(o, 'side', at),
      type: optionalText(o, 'type', at),
      status: optionalText(o, 'status', at),
      qty: optionalDecimal(o, 'qty', at),
      notional: optionalDecimal(o, 'notional', at),
      filledQty: optionalDecimal(o, 'filled_qty', at) ?? 0,
      limitPrice: optionalDecimal(o, 'limit_price', at),
      stopPrice: optionalDecimal(o, 'stop_price', at),
    },
    positionQty: optionalDecimal(data, 'position_qty', where),
    price: optionalDecimal(data, 'price', where),
    qty: optionalDecimal(data, 'qty', where),
  };
}

// ---- transport helpers ----

function parseBody(data: unknown): { ok: true; value: unknown } | { ok: false } {
  if (typeof data !== 'string') return { ok: true, value: data };
  if (data.trim() === '') return { ok: true, value: undefined }; // 204, or an empty error answer
  try {
    return { ok: true, value: JSON.parse(data) };
  } catch {
    return { ok: false };
  }
}

/** Alpaca's error bodies are {"code": 40310000, "message": "…"}; proxies may answer with text. */
function errorMessage(body: unknown): string | undefined {
  if (isRecord(body) && typeof body.message === 'string') return body.message;
  if (typeof body === 'string' && body.trim()) return body.trim().slice(0, 200);
  return undefined;
}

/**
 * Alpaca answers 403 both for keys it refuses ("forbidden.", e.g. paper keys on the live URL) and for
 * business rules ("insufficient buying power"); only the former is a credentials problem.
 */
function isAuthForbidden(message: string | undefined): boolean {
  return message === undefined || /^(forbidden\.?|request is not authorized\.?|unauthorized\.?)$/i.test(message.trim());
}

function headerText(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** Retry-After (seconds or an HTTP date), else Alpaca's X-RateLimit-Reset (epoch seconds). */
function retryAfterMs(headers: AxiosResponse['headers']): number | undefined {
  const retryAfter = headerText(headers['retry-after']);
  if (retryAfter !== undefined && retryAfter.trim() !== '') {
    const seconds = Number(retryAfter);
    if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
    const date = Date.parse(retryAfter);
    if (!Number.isNaN(date)) return Math.max(0, date - Date.now());
  }
  const reset = Number(headerText(headers['x-ratelimit-reset']));
  if (Number.isFinite(reset) && reset > 0) return Math.max(0, reset * 1000 - Date.now());
  return undefined;
}

function errorCode(error: unknown): string {
  if (isRecord(error) || error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code) return code;
  }
  return 'UNKNOWN';
}

function describeNetworkError(code: string): string {
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused (ECONNREFUSED) — is APCA_API_BASE_URL right?';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `host not found (${code}) — is APCA_API_BASE_URL right?`;
    case 'ECONNRESET':
      return 'connection reset by the broker (ECONNRESET)';
    case 'EPIPE':
      return 'connection closed by the broker (EPIPE)';
    default:
      return `network error (${code})`;
  }
}
