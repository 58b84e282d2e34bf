// The order gate's pre-trade limits (issue 19): beside the hourly count, what an order is worth and
// where it goes. Checked on the managed trader's new orders and replacements, before the broker, only
// when the gate is on (GATEWAY_ADDR) and the limit is set:
//
//   ALLOWED_SYMBOLS        an order in any other symbol is refused (BTC/USD and BTCUSD are one symbol)
//   MAX_OPEN_ORDERS        a new order while that many of the trader's orders are open
//   MAX_ORDER_NOTIONAL     an order worth more: its notional, else qty × its limit (or stop) price, else
//                          qty × the market price (the position's current price, else the latest trade
//                          from the broker's market data, APCA_API_DATA_URL)
//   MAX_POSITION_NOTIONAL  an order that would take the symbol's position beyond it: the position, the
//                          open orders on the order's side (they may all fill) and the order, at the
//                          market price
//
// An order that reduces or closes a position passes all four: a bot must always be able to get out.
// It reduces when it is on the opposite side of the position and not larger than what is left of it
// once the open orders on its side (which reduce it too) have filled: a sell of 150 against a long of
// 100 opens a short of 50, and so do two sells of 100 sent back to back; those are judged like any order.
//
// What the gate cannot know it does not guess (fail closed, as the gate itself is): an order whose
// value or position cannot be read is refused (`value_unknown`), and so is a new order while the open
// orders cannot be read (`open_orders_unknown`). A replacement (PATCH /v2/orders/{id}) is judged as
// the order it would become: the replaced order's fields under the ones it changes — otherwise a
// resting order of 1 could be replaced by one of 1000 past every limit.
//
// MAX_OPEN_ORDERS counts the account's open orders, not the gate's own pending list: that list is the
// hourly count's (an order stays in it until a poll sees its fill, or an hour), so it would count
// filled orders as open, and forget a GTC order resting for days or one placed before a controller
// restart. Tradewarden's own orders (`tw-` client ids: flatten's closes) are not the trader's and are
// not counted.
//
// Where the position and the open orders come from is the BrokerView's business (trader-book.ts): the
// gate's model of the trader's book, kept by the trade stream and the gate's own orders, or — when the
// model cannot answer — the broker read fresh with the trader's own keys plus the orders in flight (let
// through, no answer yet), so a burst cannot all pass on one stale count either way. The reads run
// together, only for the limits that are set, each with a short time-out; a price is kept
// PRICE_CACHE_MS, so a bot's burst reads it once.
import { describeError } from '../errors.ts';
import type { OrderIntent } from './order-gate.ts';

export type PreTradeReason = 'symbol_not_allowed' | 'open_orders' | 'order_notional' | 'position_notional' | 'value_unknown' | 'open_orders_unknown';

/** The limits as config.ts reads them (each absent when unset). */
export interface PreTradeLimits {
  readonly maxOrderNotional?: number;
  readonly maxPositionNotional?: number;
  /** as given (BTC/USD, AAPL); compared by symbolKey */
  readonly allowedSymbols?: readonly string[];
  readonly maxOpenOrders?: number;
}

/** A position as the broker reports it. */
export interface PositionView {
  /** signed: negative for a short */
  qty: number;
  /** the broker's current price for the symbol (`current_price`) */
  currentPrice?: number;
}

/** An order as the broker reports it. */
export interface OrderView {
  id: string;
  clientOrderId?: string;
  symbol: string;
  side: string;
  type?: string;
  qty?: number;
  notional?: number;
  filledQty: number;
  limitPrice?: number;
  stopPrice?: number;
  /** sent by the gate, the broker's answer not in yet */
  inFlight?: boolean;
}

/** What the limits ask the broker, with the trader's own keys; each rejects when it cannot be read. */
export interface BrokerView {
  /** which keys the reads use (a digest, never the keys): the gate's model answers only for its own account */
  readonly keys: string;
  /** the account those keys trade (its number), undefined when the broker gives none */
  accountNumber(): Promise<string | undefined>;
  /** the position in `symbol`, null when there is none */
  position(symbol: string): Promise<PositionView | null>;
  /** the price of the latest trade in `symbol` (crypto or equity: see cryptoPair) */
  latestTradePrice(symbol: string): Promise<number>;
  /** the account's open orders */
  openOrders(): Promise<OrderView[]>;
  /** one order (the one a replacement replaces) */
  order(orderId: string): Promise<OrderView>;
}

export interface PreTradeRefusal {
  reason: PreTradeReason;
  /** what happened and what to do, without the gate's prefix */
  message: string;
  /** the limit that refused it, for the alert */
  limit: { name: string; value: number | string };
  /** the order's (or position's) value, when known */
  value?: number;
}

/** How long a market price is reused: a burst of orders reads it once, a moving market soon again. */
export const PRICE_CACHE_MS = 5000;
/** Tradewarden's own orders (flatten) carry this client id prefix; they are not the trader's. */
const OWN_ORDER_PREFIX = 'tw-';
/** Rounding slack: 0.1 × 3 is not 0.3 in floating point, and an order exactly at the limit passes. */
const EPSILON = 1e-9;

/** One symbol however it is spelled: upper case, no slash (Alpaca's orders say BTC/USD, its positions BTCUSD). */
export const symbolKey = (symbol: string): string => symbol.trim().toUpperCase().replace('/', '');

/**
 * The slash form of a crypto pair ("BTC/USD" for "BTC/USD" or "BTCUSD"), undefined for an equity.
 * An equity ticker is at most five letters plus a class (BRK.B), never six or more ending in a quote
 * currency, so the slash-less form is recognised by its length and ending.
 */
export function cryptoPair(symbol: string): string | undefined {
  const s = symbol.trim().toUpperCase();
  const slashed = /^([A-Z0-9]{1,10})\/([A-Z0-9]{2,5})$/.exec(s);
  if (slashed) return s;
  const joined = /^([A-Z0-9]{2,10}?)(USDT|USDC|USD|BTC)$/.exec(s);
  return joined && s.length >= 6 ? `${joined[1]}/${joined[2]}` : undefined;
}

type Priced = { price: number; source: string };

export class PreTradeCheck {
  private readonly allowed?: Set<string>;
  private readonly prices = new Map<string, Priced & { at: number }>();

  constructor(
    private readonly limits: PreTradeLimits,
    private readonly priceCacheMs = PRICE_CACHE_MS,
  ) {
    if (limits.allowedSymbols) this.allowed = new Set(limits.allowedSymbols.map(symbolKey));
  }

  /** Whether any limit is set (none: the gate reads nothing more than before). */
  get active(): boolean {
    const { maxOrderNotional, maxPositionNotional, maxOpenOrders } = this.limits;
    return Boolean(this.allowed) || maxOrderNotional !== undefined || maxPositionNotional !== undefined || maxOpenOrders !== undefined;
  }

  /** The first limit the order breaks, unless it reduces a position. */
  async check(intent: OrderIntent, view: BrokerView): Promise<PreTradeRefusal | undefined> {
    if (!this.active) return undefined;
    const { maxOrderNotional, maxPositionNotional, maxOpenOrders } = this.limits;
    const replacing = intent.replaces !== undefined;
    // The limits that judge what an order is (all but MAX_OPEN_ORDERS), by name, for the alert.
    const termLimits = [
      ...(this.allowed ? ['ALLOWED_SYMBOLS'] : []),
      ...(maxOrderNotional !== undefined ? ['MAX_ORDER_NOTIONAL'] : []),
      ...(maxPositionNotional !== undefined ? ['MAX_POSITION_NOTIONAL'] : []),
    ];

    let order: OrderIntent = intent;
    if (replacing && termLimits.length) {
      try {
        order = becomes(await view.order(intent.replaces!), intent);
      } catch (error) {
        return {
          reason: 'value_unknown',
          limit: { name: termLimits.join(', '), value: '' },
          message: `the order it replaces (${intent.replaces}) could not be read from the broker (${describeError(error)}), so what it would become is unknown and ${termLimits.join(', ')} cannot be checked. Retry shortly`,
        };
      }
    }
    const reads = this.reads(order, view);
    // Everything the set limits need, asked at once: one round trip, not one per limit.
    if (maxOpenOrders !== undefined && !replacing) void reads.openOrders().catch(() => undefined);
    if (maxPositionNotional !== undefined && order.symbol) {
      void reads.position().catch(() => undefined);
      void reads.openOrders().catch(() => undefined);
      void reads.price().catch(() => undefined);
    }
    if (maxOrderNotional !== undefined && order.notional === undefined && order.limitPrice === undefined && order.stopPrice === undefined && order.symbol) void reads.price().catch(() => undefined);

    const refusal = await this.firstBroken(order, reads, replacing);
    if (!refusal) return undefined;
    // Getting out is never refused.
    const reducing = await this.reduces(order, reads);
    if (reducing === true) return undefined;
    if (typeof reducing === 'string') refusal.message += ` (whether it reduces a position could not be known: ${reducing})`;
    return refusal;
  }

  private async firstBroken(order: OrderIntent, reads: Reads, replacing: boolean): Promise<PreTradeRefusal | undefined> {
    const { maxOrderNotional, maxPositionNotional, maxOpenOrders } = this.limits;
    const symbol = order.symbol;
    if (this.allowed && !(symbol && this.allowed.has(symbolKey(symbol)))) {
      const list = this.limits.allowedSymbols!.join(',');
      return {
        reason: 'symbol_not_allowed',
        limit: { name: 'ALLOWED_SYMBOLS', value: list },
        message: `${symbol ? `${symbol} is` : 'an order without a symbol is'} not in ALLOWED_SYMBOLS=${list}. An operator adds it there to trade it; orders that reduce or close a position in it still pass`,
      };
    }

    // A replacement takes its order's place: it adds no open order.
    if (maxOpenOrders !== undefined && !replacing) {
      const limit = { name: 'MAX_OPEN_ORDERS', value: maxOpenOrders };
      let open: number;
      let inFlight: number;
      try {
        const orders = (await reads.openOrders()).filter((o) => !o.clientOrderId?.startsWith(OWN_ORDER_PREFIX));
        open = orders.length;
        inFlight = orders.filter((o) => o.inFlight).length;
      } catch (error) {
        return { reason: 'open_orders_unknown', limit, message: `the trader's open orders could not be read from the broker (${describeError(error)}), and MAX_OPEN_ORDERS=${maxOpenOrders} is checked before the broker. Retry shortly` };
      }
      if (open >= maxOpenOrders) {
        return {
          reason: 'open_orders',
          limit,
          value: open,
          message: `${open} of the trader's orders are open (MAX_OPEN_ORDERS=${maxOpenOrders}${inFlight ? `, ${inFlight} of them sent and not answered yet` : ''}); a new one waits until one fills or is canceled. Orders that reduce or close a position still pass`,
        };
      }
    }

    if (maxOrderNotional !== undefined) {
      const limit = { name: 'MAX_ORDER_NOTIONAL', value: maxOrderNotional };
      const valued = await this.valueOf(order, reads);
      if ('unknown' in valued) {
        return { reason: 'value_unknown', limit, message: `its value is unknown (${valued.unknown}), and MAX_ORDER_NOTIONAL=${maxOrderNotional} is checked before the broker. Give a notional or a limit price, or retry once the price can be read` };
      }
      if (valued.value > maxOrderNotional + EPSILON) {
        return {
          reason: 'order_notional',
          limit,
          value: valued.value,
          message: `its value ${money(valued.value)} (${valued.how}) exceeds MAX_ORDER_NOTIONAL=${maxOrderNotional}. Send a smaller order; orders that reduce or close a position still pass`,
        };
      }
    }

    if (maxPositionNotional !== undefined) {
      const limit = { name: 'MAX_POSITION_NOTIONAL', value: maxPositionNotional };
      const unknown = (why: string): PreTradeRefusal => ({
        reason: 'value_unknown',
        limit,
        message: `the position it would make is unknown (${why}), and MAX_POSITION_NOTIONAL=${maxPositionNotional} is checked before the broker. Retry shortly`,
      });
      const sign = order.side === 'buy' ? 1 : order.side === 'sell' ? -1 : undefined;
      if (!symbol || sign === undefined) return unknown(!symbol ? 'the order names no symbol' : `its side is ${JSON.stringify(order.side ?? null)}, not buy or sell`);
      let position: PositionView | null;
      let open: OrderView[];
      try {
        position = await reads.position();
      } catch (error) {
        return unknown(`the position in ${symbol} could not be read: ${describeError(error)}`);
      }
      try {
        open = await reads.openOrders();
      } catch (error) {
        return unknown(`the open orders could not be read: ${describeError(error)}`);
      }
      // The position is valued at the market; without a market price, at the order's own price.
      let price: number;
      try {
        price = (await reads.price()).price;
      } catch (error) {
        const own = decimal(order.limitPrice) ?? decimal(order.stopPrice);
        if (own === undefined) return unknown(describeError(error));
        price = own;
      }
      const orderValue = decimal(order.notional) ?? (decimal(order.qty) ?? NaN) * price;
      if (!Number.isFinite(orderValue)) return unknown('it gives neither a qty nor a notional');
      const key = symbolKey(symbol);
      // Orders on the same side may all fill: the position they would make counts now.
      const pendingValue = open
        .filter((o) => symbolKey(o.symbol) === key && o.side === order.side && o.id !== order.replaces && !o.clientOrderId?.startsWith(OWN_ORDER_PREFIX))
        .reduce((sum, o) => sum + (o.qty !== undefined ? Math.max(0, o.qty - o.filledQty) * price : Math.max(0, (o.notional ?? 0) - o.filledQty * price)), 0);
      const held = (position?.qty ?? 0) * price;
      const projected = Math.abs(held + sign * (pendingValue + orderValue));
      if (projected > maxPositionNotional + EPSILON) {
        return {
          reason: 'position_notional',
          limit,
          value: projected,
          message:
            `it would take the ${symbol} position to ${money(projected)} (held ${money(Math.abs(held))}${pendingValue ? `, open ${order.side} orders ${money(pendingValue)}` : ''}, this order ${money(orderValue)}, at ${money(price)}), ` +
            `beyond MAX_POSITION_NOTIONAL=${maxPositionNotional}. Orders that reduce or close the position still pass`,
        };
      }
    }
    return undefined;
  }

  /** The order's value and how it was found, or why it cannot be known. */
  private async valueOf(order: OrderIntent, reads: Reads): Promise<{ value: number; how: string } | { unknown: string }> {
    if (order.notional !== undefined) {
      const notional = decimal(order.notional);
      return notional === undefined ? { unknown: `its notional ${JSON.stringify(order.notional)} is not an amount` } : { value: notional, how: 'its notional' };
    }
    const qty = decimal(order.qty);
    if (qty === undefined) return { unknown: order.qty === undefined ? 'it gives neither a qty nor a notional' : `its qty ${JSON.stringify(order.qty)} is not a quantity` };
    const limitPrice = decimal(order.limitPrice);
    if (limitPrice !== undefined) return { value: qty * limitPrice, how: `qty ${qty} × limit price ${money(limitPrice)}` };
    const stopPrice = decimal(order.stopPrice);
    if (stopPrice !== undefined) return { value: qty * stopPrice, how: `qty ${qty} × stop price ${money(stopPrice)}` };
    if (!order.symbol) return { unknown: 'the order names no symbol to price' };
    try {
      const { price, source } = await reads.price();
      return { value: qty * price, how: `qty ${qty} × ${money(price)}, ${source}` };
    } catch (error) {
      return { unknown: describeError(error) };
    }
  }

  /** Whether the order reduces (or closes) the position: true, false, or why it cannot be known. */
  private async reduces(order: OrderIntent, reads: Reads): Promise<boolean | string> {
    const sign = order.side === 'buy' ? 1 : order.side === 'sell' ? -1 : undefined;
    if (!order.symbol || sign === undefined) return false;
    let position: PositionView | null;
    try {
      position = await reads.position();
    } catch (error) {
      return `the position in ${order.symbol} could not be read: ${describeError(error)}`;
    }
    if (!position || sign * position.qty >= 0) return false; // nothing held, or the same side: it adds
    // The open orders on its side reduce the same position first (two sells of a long sent back to back).
    let open: OrderView[];
    try {
      open = await reads.openOrders();
    } catch (error) {
      return `the open orders could not be read: ${describeError(error)}`;
    }
    const key = symbolKey(order.symbol);
    const price = async () => position.currentPrice ?? (await reads.price().then((p) => p.price, () => undefined));
    let reducing = 0; // qty already on its way out
    for (const o of open) {
      if (symbolKey(o.symbol) !== key || o.side !== order.side || o.id === order.replaces || o.clientOrderId?.startsWith(OWN_ORDER_PREFIX)) continue;
      if (o.qty !== undefined) reducing += Math.max(0, o.qty - o.filledQty);
      else {
        const p = await price();
        if (p === undefined) return `the size of open order ${o.id} could not be valued`;
        reducing += Math.max(0, (o.notional ?? 0) / p - o.filledQty);
      }
    }
    const left = Math.max(0, Math.abs(position.qty) - reducing);
    const qty = decimal(order.qty);
    if (qty !== undefined) return qty <= left + EPSILON;
    const notional = decimal(order.notional);
    if (notional === undefined) return false;
    const p = await price();
    return p !== undefined && notional <= left * p + EPSILON;
  }

  /** The reads one decision may need, each made at most once. */
  private reads(order: OrderIntent, view: BrokerView): Reads {
    const symbol = order.symbol ?? '';
    const key = symbolKey(symbol);
    const position = once(() => view.position(key));
    const openOrders = once(() => view.openOrders());
    const fromPosition = (held: PositionView | null): Priced | undefined =>
      held?.currentPrice !== undefined ? { price: held.currentPrice, source: `the ${symbol} position's current price` } : undefined;
    const price = once(async (): Promise<Priced> => {
      // A position's own current price (fresh from the broker, or a recent one from the gate's model) first.
      const fresh = this.limits.maxPositionNotional !== undefined ? fromPosition(await position().catch(() => null)) : undefined;
      if (fresh) return this.remember(key, fresh);
      const cached = this.prices.get(key);
      // Real time: this caches a broker answer, it is not domain time.
      if (cached && Date.now() - cached.at < this.priceCacheMs) return cached;
      // Both at once: the position's price when there is one, else the latest trade.
      const trade = view.latestTradePrice(symbol);
      trade.catch(() => undefined);
      const held = fromPosition(await position().catch(() => null));
      let priced: Priced;
      if (held) priced = held;
      else {
        try {
          priced = { price: await trade, source: `the latest ${symbol} trade` };
        } catch (error) {
          throw new Error(`the latest price of ${symbol} could not be read: ${describeError(error)}`);
        }
        if (!(priced.price > 0)) throw new Error(`the latest price of ${symbol} could not be read: the broker gave ${priced.price}`);
      }
      return this.remember(key, priced);
    });
    return { position, openOrders, price };
  }

  private remember(key: string, priced: Priced): Priced {
    this.prices.set(key, { ...priced, at: Date.now() });
    return priced;
  }
}

interface Reads {
  position(): Promise<PositionView | null>;
  openOrders(): Promise<OrderView[]>;
  price(): Promise<Priced>;
}

/** What a replacement makes of `replaced`: its fields, under the ones the PATCH changes. */
export function becomes(replaced: OrderView, patch: OrderIntent): OrderIntent {
  const text = (n: number | undefined) => (n === undefined ? undefined : String(n));
  return {
    symbol: replaced.symbol,
    side: replaced.side,
    type: patch.type ?? replaced.type,
    // A new qty replaces the quantity, whatever the old order was sized in.
    qty: patch.qty ?? (patch.notional === undefined ? text(replaced.qty) : undefined),
    notional: patch.notional ?? (patch.qty === undefined ? text(replaced.notional) : undefined),
    limitPrice: patch.limitPrice ?? text(replaced.limitPrice),
    stopPrice: patch.stopPrice ?? text(replaced.stopPrice),
    replaces: patch.replaces,
    clientOrderId: patch.clientOrderId,
  };
}

/** A decimal the broker would read (string or number in the JSON); undefined when it is not one. */
function decimal(value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const n = Number(value);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

function money(value: number): string {
  // Cents, except for prices below a dollar (a coin at $0.00001 is not "$0.00").
  return `$${Math.abs(value) >= 1 || value === 0 ? value.toFixed(2) : value.toPrecision(4)}`;
}

function once<T>(work: () => Promise<T>): () => Promise<T> {
  let promise: Promise<T> | undefined;
  return () => (promise ??= work());
}
