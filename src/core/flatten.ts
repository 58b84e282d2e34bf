// The emergency close (invariant 5: flatten never lies). The trader is stopped first so it cannot
// re-enter; "flat" is said only when the broker itself shows no positions and no open orders.
import type { Broker, CloseResult, Order, Position } from '../broker/types.ts';
import { describeError } from '../errors.ts';
import type { StopResult } from '../supervisor/types.ts';

export type SymbolOutcome = 'closed' | 'queued' | 'failed';

export interface SymbolReport {
  symbol: string;
  qtyBefore: number;
  closingOrderId?: string;
  closingOrderStatus?: string;
  outcome: SymbolOutcome;
  /** the broker's reason for a failure, or why it is queued */
  reason?: string;
}

export interface FlattenReport {
  flat: boolean;
  trader: { stopped: boolean; pid?: number; forceKilled?: boolean; error?: string };
  ordersCanceled: number;
  symbols: SymbolReport[];
  remainingPositions: Array<{ symbol: string; qty: number }>;
  remainingOpenOrders: number;
  marketOpen?: boolean;
  durationMs: number;
  /** set when the procedure could not run to the end (broker unreachable) */
  error?: string;
  /** holdings too small for their market to take (an exchange's dust): left as they are, not a failure */
  dust?: Array<{ symbol: string; reason: string }>;
  /** with the account locked at the broker: lifted for the closes, how long, and set back */
  brokerLock?: { openMs: number; relocked: boolean; error?: string };
}

export interface FlattenDeps {
  broker: Broker;
  stopTrader: () => Promise<StopResult>;
  /**
   * Told which positions are about to be closed, before the close is sent. The trade stream may
   * report the closing fills before the broker answers the close: the watch holds fills that may be
   * these closes until onClosingOrders names them. Must not throw (as below).
   */
  onClosing?: (positions: Position[]) => Promise<void>;
  /**
   * Told the closing orders' ids as soon as the broker answers the close (none when the close
   * failed): they are the controller's own orders, not the trader's trades. Always called after
   * onClosing. Must not throw (a failure to record is the caller's to report, never a reason to
   * stop closing).
   */
  onClosingOrders?: (orderIds: string[]) => Promise<void>;
  /** Runs the close (the broker lock is lifted for it and set back after); default: as is. */
  aroundClose?: <T>(close: () => Promise<T>) => Promise<T>;
  /** how long to wait for the broker to show the account flat */
  verifyTimeoutMs?: number;
  verifyIntervalMs?: number;
}

export async function flattenAccount(deps: FlattenDeps): Promise<FlattenReport> {
  const startedAt = Date.now();
  const report: FlattenReport = {
    flat: false,
    trader: { stopped: false },
    ordersCanceled: 0,
    symbols: [],
    remainingPositions: [],
    remainingOpenOrders: 0,
    durationMs: 0,
  };
  const finish = (): FlattenReport => ({ ...report, durationMs: Date.now() - startedAt });

  // 1. Stop the trader first. If that fails we still close: an emergency close must not wait on PM2.
  try {
    const stopped = await deps.stopTrader();
    report.trader = { stopped: true, pid: stopped.pid, forceKilled: stopped.forceKilled };
  } catch (error) {
    report.trader = { stopped: false, error: describeError(error) };
  }

  let before: Position[];
  try {
    [before, report.marketOpen] = await Promise.all([
      deps.broker.positions(),
      deps.broker.clock().then((c) => c.isOpen).catch(() => undefined),
    ]);
    // 2. Cancel open orders, 3. close every position (the broker cancels again as part of it).
    const canceled = await deps.broker.cancelAllOrders();
    report.ordersCanceled = canceled.filter((c) => c.status < 300).length;
  } catch (error) {
    report.error = `could not read or cancel at the broker: ${describeError(error)}`;
    return finish();
  }

  let closes: CloseResult[] = [];
  if (before.length) {
    await deps.onClosing?.(before);
    try {
      const close = () => deps.broker.closeAllPositions();
      closes = await (deps.aroundClose ? deps.aroundClose(close) : close());
    } catch (error) {
      report.error = `close all positions failed: ${describeError(error)}`;
    }
    await deps.onClosingOrders?.(closes.flatMap((c) => (c.order?.id ? [c.order.id] : [])));
    const dust = closes.flatMap((c) => (c.dust ? [{ symbol: c.symbol, reason: c.dust }] : []));
    if (dust.length) report.dust = dust;
  }

  // 4. Re-read until flat or time-out: market orders fill within moments; queued ones will not.
  const deadline = Date.now() + (deps.verifyTimeoutMs ?? 10_000);
  let after: Position[] = before;
  let openOrders: Order[] = [];
  for (;;) {
    try {
      [after, openOrders] = await Promise.all([deps.broker.positions(), deps.broker.openOrders()]);
    } catch (error) {
      report.error = `could not verify at the broker: ${describeError(error)}`;
      after = before;
      break;
    }
    // Waiting helps only while closing orders are pending in an open market.
    if (openOrders.length === 0 || report.marketOpen === false || Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, deps.verifyIntervalMs ?? 200));
  }

  // 5. One line per symbol held before. (Alpaca names crypto "BTC/USD" in orders, "BTCUSD" in positions.)
  const key = (symbol: string) => symbol.replace('/', '');
  const stillHeld = new Map(after.map((p) => [key(p.symbol), p]));
  const openBySymbol = new Map(openOrders.map((o) => [key(o.symbol), o]));
  for (const position of before) {
    const close = closes.find((c) => key(c.symbol) === key(position.symbol));
    const held = stillHeld.get(key(position.symbol));
    const line: SymbolReport = {
      symbol: position.symbol,
      qtyBefore: position.qty,
      closingOrderId: close?.order?.id,
      closingOrderStatus: close?.order?.status,
      outcome: 'closed',
    };
    if (!held) {
      line.outcome = 'closed';
    } else if (close && close.status >= 300) {
      line.outcome = 'failed';
      line.reason = close.error ?? `broker answered ${close.status}`;
    } else if (openBySymbol.has(key(position.symbol)) || close?.order) {
      line.outcome = 'queued';
      line.reason = report.marketOpen === false ? 'market closed: the closing order fills at the next open' : 'closing order not filled yet';
    } else {
      line.outcome = 'failed';
      line.reason = close ? 'position still open after the close' : 'the broker returned no close for this symbol';
    }
    report.symbols.push(line);
  }
  report.remainingPositions = after.map((p) => ({ symbol: p.symbol, qty: p.qty }));
  report.remainingOpenOrders = openOrders.length;
  report.flat = !report.error && after.length === 0 && openOrders.length === 0;
  return finish();
}
