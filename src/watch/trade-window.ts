// The rolling-hour trade count. A trade is an order with at least one fill, placed in time by the
// broker's transaction time of its first fill — never by when we happened to poll.
import type { Fill } from '../broker/types.ts';
import type { SeenTrade } from '../store/schema.ts';

export const HOUR_MS = 3600_000;
export const BUCKET_MS = 10 * 60_000;

/** Trades in (now - 1h, now]. */
export function tradesInLastHour(seen: readonly SeenTrade[], now: number): SeenTrade[] {
  return seen.filter((t) => t.at > now - HOUR_MS && t.at <= now);
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

/**
 * Merges new fills into the seen trades: partial fills of one order count once, and an activity
 * seen before (overlapping polls, a restart) changes nothing. Returns the trades that are new.
 */
export function mergeFills(seen: SeenTrade[], fills: readonly Fill[]): SeenTrade[] {
  const byOrder = new Map(seen.map((t) => [t.orderId, t]));
  const added: SeenTrade[] = [];
  for (const fill of fills) {
    const known = byOrder.get(fill.orderId);
    if (known) {
      if (known.activityIds.includes(fill.id)) continue;
      known.activityIds.push(fill.id);
      known.qty += fill.qty;
      if (fill.at < known.at) known.at = fill.at;
      continue;
    }
    const trade: SeenTrade = {
      orderId: fill.orderId,
      symbol: fill.symbol,
      side: fill.side,
      qty: fill.qty,
      price: fill.price,
      at: fill.at,
      activityIds: [fill.id],
    };
    byOrder.set(fill.orderId, trade);
    seen.push(trade);
    added.push(trade);
  }
  return added;
}
