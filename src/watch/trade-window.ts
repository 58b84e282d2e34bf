// The rolling-hour trade count. A trade is an order with at least one fill, placed in time by the
// broker's transaction time of its first fill — never by when we happened to poll.
import type { Fill } from '../broker/types.ts';
import type { FlattenIntent, SeenTrade, StoreData } from '../store/schema.ts';

export const HOUR_MS = 3600_000;
export const BUCKET_MS = 10 * 60_000;

/** Lists known to be in time order (the fills ledger's views, and slices of them). */
const sortedByTime = new WeakSet<readonly SeenTrade[]>();

/** Declares `trades` in time order, oldest first: the window then finds its bounds by binary search. */
export function markSortedByTime<T extends readonly SeenTrade[]>(trades: T): T {
  sortedByTime.add(trades);
  return trades;
}

/** Trades with from < at <= to, in their order (a slice when the list is in time order). */
function within(trades: readonly SeenTrade[], from: number, to: number): SeenTrade[] {
  if (!sortedByTime.has(trades)) return trades.filter((t) => t.at > from && t.at <= to);
  const firstAfter = (at: number) => {
    let lo = 0;
    let hi = trades.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (trades[mid]!.at > at) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
  return markSortedByTime(trades.slice(firstAfter(from), firstAfter(to)));
}

/** Trades in (now - 1h, now]. */
export function tradesInLastHour(seen: readonly SeenTrade[], now: number): SeenTrade[] {
  return within(seen, now - HOUR_MS, now);
}

/**
 * How long a flatten that has not answered holds the fills that may be its closes. Longer than the
 * broker's close call can take with its retries (~25 s), so only a flatten whose process died lets
 * go this way; a live one lets go as soon as the broker answers (or refuses) the close.
 */
export const FLATTEN_HOLD_MS = 30_000;
/** The broker stamps fills with its own clock: a closing fill may read a little before the intent. */
const FLATTEN_CLOCK_SKEW_MS = 5_000;

/** Alpaca names crypto "BTC/USD" in orders and fills, "BTCUSD" in positions. */
const symbolKey = (symbol: string) => symbol.replace('/', '');

/** The orders the controller itself caused (flatten's closing orders). */
export function ownOrderIds(data: Pick<StoreData, 'trades'>): Set<string> {
  return new Set((data.trades.ownOrders ?? []).map((o) => o.orderId));
}

/** Flattens that have begun closing and not yet named their closing orders (nor died long ago). */
export function openFlattens(data: Pick<StoreData, 'trades'>, now: number): FlattenIntent[] {
  return (data.trades.flattens ?? []).filter((f) => f.answeredAt === undefined && now < f.startedAt + FLATTEN_HOLD_MS);
}

/**
 * Whether `trade` may be a closing fill of one of `open`: it reduces a position that flatten is
 * closing (a sell of a long, a buy of a short) and was made after the flatten began. Such a trade is
 * neither counted nor judged until the flatten answers; then it is the controller's own order or the
 * trader's trade like any other. Every other fill is judged at once, so a copy that keeps trading
 * during a flatten is still seen.
 */
export function heldByFlatten(trade: SeenTrade, open: readonly FlattenIntent[]): boolean {
  return open.some(
    (f) =>
      trade.at >= f.startedAt - FLATTEN_CLOCK_SKEW_MS &&
      f.positions.some((p) => symbolKey(p.symbol) === symbolKey(trade.symbol) && trade.side === (p.side === 'long' ? 'sell' : 'buy')),
  );
}

/** `data` with other trades in place of the hot ones (a range from the ledger), for traderTrades and countedTrades. */
export function withTrades<T extends Pick<StoreData, 'trades'>>(data: T, seen: readonly SeenTrade[]): T {
  return { ...data, trades: { ...data.trades, seen } };
}

/**
 * The trader's trades: every seen trade except the controller's own orders (flatten's closing
 * orders) and those held while a flatten has not yet named them. Those are not runaway trading,
 * and counting them would trip the breaker on the flatten that an operator ran to stop a runaway.
 */
export function traderTrades(data: Pick<StoreData, 'trades'>, now: number): readonly SeenTrade[] {
  const own = ownOrderIds(data);
  const open = openFlattens(data, now);
  if (!own.size && !open.length) return data.trades.seen;
  return data.trades.seen.filter((t) => !own.has(t.orderId) && !heldByFlatten(t, open));
}

/**
 * The trader's trades in the rolling hour: what the limit, the breaker, the gate, status and
 * /metrics all count (one function, one meaning). After a resume only the trades since it count:
 * the trader gets a fresh allowance, and what an operator reads is what the guard enforces.
 */
export function countedTrades(data: Pick<StoreData, 'trades'> & Partial<Pick<StoreData, 'breaker'>>, now: number): SeenTrade[] {
  // The hour first (a slice of the ledger's view), then the trader's among it.
  const inHour = traderTrades(withTrades(data, tradesInLastHour(data.trades.seen, now)), now);
  // A fill stamped at the very millisecond of the resume is counted: it came with the new run.
  const since = data.breaker?.resumedAt;
  // Either way a new list (the slice, or traderTrades' filter of it): the caller may keep it.
  return since === undefined ? (inHour as SeenTrade[]) : within(inHour, since - 1, now);
}

/** Counts of the last six 10-minute buckets, oldest first (for the sparkline; the alert's chart uses 12 of 5). */
export function hourBuckets(seen: readonly SeenTrade[], now: number, buckets = 6, bucketMs = BUCKET_MS): number[] {
  const counts = new Array<number>(buckets).fill(0);
  for (const trade of seen) {
    const age = now - trade.at;
    if (age < 0 || age >= buckets * bucketMs) continue;
    counts[buckets - 1 - Math.floor(age / bucketMs)] += 1;
  }
  return counts;
}

const SPARKS = '▁▂▃▄▅▆▇█';
export function sparkline(counts: readonly number[]): string {
  const max = Math.max(1, ...counts);
  return counts.map((c) => (c === 0 ? '·' : SPARKS[Math.min(SPARKS.length - 1, Math.round(((c / max) * (SPARKS.length - 1))))])).join('');
}

/** Where mergeFills finds the trade an order already made, and leaves the trades it changed. */
export interface TradeBook {
  /** the trade of `orderId` recorded so far (`fill` is the fill being merged: a hint of whether one can exist) */
  get(orderId: string, fill: Fill): SeenTrade | undefined;
  put(trade: SeenTrade): void;
}

/**
 * Merges new fills into the recorded trades: partial fills of one order count once, and a fill seen
 * before (overlapping polls, the stream and the poll, a restart) changes nothing. Returns the trades
 * that are new; every trade that changed is handed to `book.put` as a new object (never changed in
 * place: a snapshot read earlier stays what it was). `onFilled` hears each fill that filled more of
 * its order, with the quantity it added (the fill feed).
 */
export function mergeFills(book: TradeBook, fills: readonly Fill[], onFilled?: (fill: Fill) => void): SeenTrade[] {
  const added: SeenTrade[] = [];
  for (const fill of fills) {
    const known = book.get(fill.orderId, fill);
    if (known) {
      if (known.activityIds.includes(fill.id)) continue;
      // The stream and the poll name one execution differently; the order's cumulative filled
      // quantity, when given, is right however many of the two reported it.
      const qty = fill.cumQty !== undefined ? Math.max(known.qty, fill.cumQty) : known.qty + fill.qty;
      book.put({ ...known, qty, at: Math.min(known.at, fill.at), activityIds: [...known.activityIds, fill.id] });
      // A fill is new when it fills more of the order: the same execution named twice is not.
      if (qty > known.qty) onFilled?.({ ...fill, qty: qty - known.qty });
      continue;
    }
    const trade: SeenTrade = {
      orderId: fill.orderId,
      symbol: fill.symbol,
      side: fill.side,
      qty: fill.cumQty ?? fill.qty,
      price: fill.price,
      at: fill.at,
      activityIds: [fill.id],
    };
    book.put(trade);
    added.push(trade);
    onFilled?.({ ...fill, qty: trade.qty });
  }
  return added;
}

