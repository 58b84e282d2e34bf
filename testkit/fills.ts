// A broker fill as the watch receives it, for tests and benchmarks that record trades without placing
// orders (the order's one and only fill: its cumulative quantity is its own).
import type { Fill } from '../src/broker/types.ts';

export function fill(orderId: string, symbol: string, side: 'buy' | 'sell', qty: number, price: number, at: number): Fill {
  return { id: `${orderId}-fill`, orderId, symbol, side, qty, price, at, type: 'fill', cumQty: qty };
}
