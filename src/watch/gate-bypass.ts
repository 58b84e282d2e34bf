// A bypass of the order gate is seen. Many real bots never read APCA_API_BASE_URL: they hard-code
// the broker's URL, or take it only as a parameter. With the gate on, such a bot trades straight at
// the broker and the gate protects nothing, silently. So while GATEWAY_ADDR is set, every fill is
// checked against the orders the gate let through: a fill of an order the gate never saw (and not
// the controller's own, such as flatten's closes) raises a critical `gate_bypassed` alert, once per
// episode, naming the order and saying how to point the bot at the gate.
//
// The fill can reach the watch before the gate has the broker's answer naming the order (the trade
// stream often wins that race, as with flatten's closes): a fill is judged only once no order that
// was in flight when it arrived is still waiting for its answer. Fills from before the gate started
// are not judged: nobody could have sent them through it.
import type { AlertOutbox } from '../alerts/outbox.ts';
import type { Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import type { SeenTrade } from '../store/schema.ts';
import type { Store } from '../store/store.ts';
import { HOUR_MS } from './trade-window.ts';

/** What the watch asks of the order gate. */
export interface GateLedger {
  /** the broker's order id of an order the gate let through (since this controller started, or recorded before) */
  knows(orderId: string): boolean;
  /** when the oldest order still waiting for the broker's answer was sent; undefined when none waits */
  inFlightSince(): number | undefined;
}

export interface GateBypassWatchOptions {
  store: Store;
  outbox: AlertOutbox;
  clock: Clock;
  logger: Logger;
  gate: GateLedger;
  /** the gate's URL, as the trader should be given it (APCA_API_BASE_URL) */
  gateUrl: string;
  processName: string;
  /** fills made before this (the gate's start) are not judged */
  since: number;
}

export class GateBypassWatch {
  /** fills not yet judged: the gate may still learn the order's id from an answer in flight */
  private readonly waiting = new Map<string, { trade: SeenTrade; arrivedAt: number }>();

  constructor(private readonly options: GateBypassWatchOptions) {}

  /** New trades (neither the controller's own nor held by a flatten); judged now or once the gate has caught up. */
  async note(trades: readonly SeenTrade[]): Promise<void> {
    const now = this.options.clock.now();
    for (const trade of trades) if (trade.at >= this.options.since && !this.waiting.has(trade.orderId)) this.waiting.set(trade.orderId, { trade, arrivedAt: now });
    await this.judge();
  }

  /** Judges the fills the gate has had its chance to account for (also run on the poll's cadence). */
  async judge(): Promise<void> {
    const { gate, store, clock } = this.options;
    if (!this.waiting.size) return;
    const data = await store.read();
    const own = new Set((data.trades.ownOrders ?? []).map((o) => o.orderId));
    const inFlight = gate.inFlightSince();
    const bypassed: SeenTrade[] = [];
    for (const [orderId, { trade, arrivedAt }] of this.waiting) {
      if (gate.knows(orderId) || own.has(orderId)) {
        this.waiting.delete(orderId);
        continue;
      }
      if (inFlight !== undefined && inFlight <= arrivedAt) continue; // that answer may name it
      this.waiting.delete(orderId);
      bypassed.push(trade);
    }
    if (bypassed.length) await this.alert(bypassed, clock.now());
  }

  private async alert(bypassed: SeenTrade[], now: number): Promise<void> {
    const { store, outbox, gateUrl, processName, logger } = this.options;
    const opened = await store.update((data) => {
      const episode = data.watch.gateBypass;
      const stale = !episode || (episode.lastAt ?? 0) < now - HOUR_MS;
      if (episode?.inEpisode && !stale) {
        episode.orderIds = [...new Set([...(episode.orderIds ?? []), ...bypassed.map((t) => t.orderId)])].slice(-200);
        episode.lastAt = now;
        return false;
      }
      data.watch.gateBypass = { inEpisode: true, since: now, lastAt: now, orderIds: bypassed.map((t) => t.orderId) };
      return true;
    });
    const line = (t: SeenTrade) => `${new Date(t.at).toISOString().slice(11, 19)} ${t.side} ${t.qty} ${t.symbol} @ ${t.price} (order ${t.orderId})`;
    if (!opened) {
      logger.warn(`order gate bypassed again: ${bypassed.map(line).join('; ')}`);
      return;
    }
    // Read on a phone: ten named, the rest counted (every one is in the facts).
    const lines = [...bypassed.slice(0, 10).map(line), ...(bypassed.length > 10 ? [`…and ${bypassed.length - 10} more`] : [])];
    await outbox.raise({
      kind: 'gate_bypassed',
      severity: 'critical',
      key: `gate_bypassed:${now}`,
      title: 'Orders are reaching the broker around the order gate',
      body:
        `${bypassed.length} fill(s) of order(s) the order gate never saw:\n${lines.join('\n')}\n` +
        `Something trades this account straight at the broker, so the gate's limits do not hold for it: ${processName} (or a copy) does not use ` +
        `APCA_API_BASE_URL, or another bot or a person trades by hand. Point the bot at the gate (APCA_API_BASE_URL=${gateUrl}; the README lists how for each client), ` +
        'or set BROKER_LOCK=on so that a breaker trip stops it at the broker.',
      facts: { fills: bypassed.map((t) => ({ orderId: t.orderId, symbol: t.symbol, side: t.side, qty: t.qty, price: t.price, at: new Date(t.at).toISOString() })), gateUrl },
    });
  }
}
