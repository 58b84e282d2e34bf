// The order gate's model of the trader's book: its open orders and positions, so that MAX_OPEN_ORDERS
// and MAX_POSITION_NOTIONAL are decided without a broker round trip per order (issue 19: the gate with
// its limits adds ≤ 3 ms at p95). Kept current from three sources:
//
//   - the gate's own orders, the moment it forwards them (`sent`), before any answer: two orders sent
//     back to back both count, although the broker has not said `new` for the first; then by their
//     answer (`answered`): refused frees the slot, accepted gives the order the broker's id;
//   - the trade stream (`apply`): every event carries the order as it stands (open: kept; filled,
//     canceled, expired, rejected, replaced: gone, and never brought back), and a fill the position
//     after it (Alpaca's position_qty, absolute: nothing is summed);
//   - the broker's own lists (`seed`): read whole each time the stream (re)subscribes (what happened
//     while it was down was missed), after an event that could not be read and after an order whose
//     answer was lost; the positions again on every account read the controller already makes
//     (`reconcilePositions`). A list read while events arrive must not undo them: each change carries
//     a version (a read of the positions, a time), and a list replaces only what did not change after
//     it was asked.
//
// When it answers: only while seeded and the stream is connected, and only for the account the stream
// watches: the trader's keys (from the order's request) may belong to another account than
// tradewarden's, so the account number behind each set of keys is read once and compared. Otherwise —
// not seeded yet, the stream down or reconnecting, another account, no stream at all — the limits read
// the broker fresh for the order (the fallback), plus the orders the gate sent and has no answer for,
// which the broker's list cannot show yet. The model may count an order twice for a moment (its answer
// and its `new` event crossing); it never counts one too few.
import { createHash } from 'node:crypto';
import type { Clock } from '../clock.ts';
import { systemClock } from '../clock.ts';
import { describeError } from '../errors.ts';
import { silentLogger, type Logger } from '../log.ts';
import type { Order, OrderUpdate, Position } from '../broker/types.ts';
import type { OrderIntent } from './order-gate.ts';
import { PRICE_CACHE_MS, becomes, symbolKey, type BrokerView, type OrderView, type PositionView } from './pre-trade.ts';

/** tradewarden's own broker: the account the trade stream reports on. */
export interface BookBroker {
  account(): Promise<{ accountNumber?: string }>;
  openOrders(): Promise<Order[]>;
  positions(): Promise<Position[]>;
}

/** The trade stream as the book follows it (watch/trade-stream.ts). */
export interface OrderEvents {
  onStateChange(listener: (state: { status: string }) => void): void;
  onOrderUpdate(listener: (update: OrderUpdate | { unreadable: string }) => void): void;
}

/** The account watch's reads of the positions, with when each was asked. */
export interface PositionReads {
  observePositions(observer: (positions: Position[], askedAt: number) => void): void;
}

/** Longer than an order's answer can take: the gateway's upstream time-out (30 s) and a look-up (10 s). */
export const IN_FLIGHT_MAX_MS = 60_000;
/** Ended orders remembered, so a late event or list never brings one back. */
const ENDED_REMEMBERED = 2000;
/** Sets of keys whose account is remembered (a trader has one; a restart with new keys adds one). */
const KEYS_REMEMBERED = 16;

/** Statuses of an order that will trade no more; anything else (new, accepted, held, …) may still fill. */
const OVER = new Set(['filled', 'canceled', 'expired', 'rejected', 'replaced', 'done_for_day', 'calculated']);
/** Events that end an order, for an event whose order carries no status. */
const ENDING_EVENTS = new Set(['fill', 'canceled', 'expired', 'rejected', 'replaced', 'done_for_day']);

interface Booked {
  view: OrderView;
  version: number;
}

interface InFlight {
  view: OrderView;
  clientOrderId?: string;
  /** the order a replacement takes the place of, when the book knew it (it stops counting meanwhile) */
  replaces?: string;
  /** Date.now() when sent */
  sentAt: number;
  /** the broker's answer was lost: it may be at the broker; kept until a list read after that says */
  lost?: number;
}

interface Held {
  qty: number;
  /** the latest price seen for it (a fill's, or market value / qty), and when (Date.now()) */
  price?: number;
  pricedAt?: number;
  version: number;
  /** clock time of the change: a positions read asked before it does not replace it */
  changedAt: number;
}

export interface TraderBookOptions {
  /** absent: nothing to seed from, the book only holds the orders in flight (every decision reads fresh) */
  broker?: BookBroker;
  clock?: Clock;
  logger?: Logger;
}

export class TraderBook {
  private readonly orders = new Map<string, Booked>();
  private readonly inFlight = new Map<number, InFlight>();
  private readonly positions = new Map<string, Held>();
  /** ended order ids → version, bounded */
  private readonly ended = new Map<string, number>();
  /** account number behind each set of keys (a digest), null when the broker gave none */
  private readonly accountOfKeys = new Map<string, string | null>();
  private readonly learning = new Map<string, Promise<void>>();
  private version = 0;
  /** bumped by every seed and every disconnect: an answer for an older one is dropped */
  private generation = 0;
  private connected = false;
  private seeded = false;
  private seeding?: Promise<void>;
  /** the account the stream and the seed read */
  private account?: string;
  private readonly clock: Clock;
  private readonly logger: Logger;

  constructor(private readonly options: TraderBookOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
  }

  /** Whether decisions can come from the book now (for tests and status); per caller see `view`. */
  get live(): boolean {
    return this.connected && this.seeded && this.account !== undefined;
  }

  /**
   * Fed by the trade stream (its status and every order event) and by the positions reads the
   * controller makes anyway; the controller, the tests and the bench wire it alike.
   */
  follow(stream: OrderEvents, accountReads?: PositionReads): this {
    stream.onStateChange((state) => this.streamState(state.status));
    stream.onOrderUpdate((update) => this.apply(update));
    accountReads?.observePositions((positions, askedAt) => this.reconcilePositions(positions, askedAt));
    return this;
  }

  // ---- the trade stream ----

  /** The stream's status: connected (subscribed) seeds the book; anything else stops trusting it. */
  streamState(status: string): void {
    if (status === 'connected') {
      this.connected = true;
      void this.seed('the trade stream subscribed');
      return;
    }
    if (this.connected) this.logger.debug(`order gate: the trade stream is ${status}; the pre-trade limits read the broker for each order until it is back`);
    this.connected = false;
    this.seeded = false;
    this.generation++;
  }

  /** One trade_updates event, or why one could not be read (then the book is read again). */
  apply(update: OrderUpdate | { unreadable: string }): void {
    if ('unreadable' in update) return this.invalidate(`a trade update could not be read: ${update.unreadable}`);
    const version = ++this.version;
    const { order } = update;
    // The gate's own order, named by the client id it went out with: the event takes over from it.
    if (order.clientOrderId) {
      for (const [ticket, sent] of this.inFlight) if (sent.clientOrderId === order.clientOrderId) this.inFlight.delete(ticket);
    }
    const over = order.status !== undefined ? OVER.has(order.status) : ENDING_EVENTS.has(update.event);
    if (over) this.end(order.id, version);
    else if (!this.ended.has(order.id)) this.orders.set(order.id, { view: viewOf(order), version });

    if (update.event !== 'fill' && update.event !== 'partial_fill') return;
    if (update.positionQty === undefined) return this.invalidate(`a ${update.event} of ${order.symbol} came without position_qty`);
    const key = symbolKey(order.symbol);
    const held = this.positions.get(key);
    const priced = update.price !== undefined && update.price > 0;
    this.positions.set(key, {
      qty: update.positionQty,
      price: priced ? update.price : held?.price,
      pricedAt: priced ? Date.now() : held?.pricedAt,
      version,
      changedAt: this.clock.now(),
    });
  }

  /**
   * A read of the positions the controller made anyway (the account watch), with when it was asked:
   * what it shows replaces what did not change after it was asked. A book that is not seeded (its
   * last read failed) is read now.
   */
  reconcilePositions(positions: readonly Position[], askedAt: number): void {
    if (!this.connected) return;
    if (!this.seeded) {
      if (!this.seeding) void this.seed('an account read found the book unread');
      return;
    }
    const listed = new Map(positions.map((p) => [symbolKey(p.symbol), p]));
    const drift: string[] = [];
    for (const [key, held] of this.positions) {
      if (held.changedAt >= askedAt || listed.has(key)) continue;
      if (held.qty !== 0) drift.push(`${key} ${held.qty} → 0`);
      this.positions.delete(key);
    }
    for (const [key, p] of listed) {
      const held = this.positions.get(key);
      if (held && held.changedAt >= askedAt) continue;
      if ((held?.qty ?? 0) !== p.qty) drift.push(`${key} ${held?.qty ?? 0} → ${p.qty}`);
      this.positions.set(key, heldFrom(p, ++this.version, askedAt));
    }
    if (drift.length) this.logger.warn(`order gate: the model of the trader's positions differed from the broker's and was corrected (${drift.join(', ')}): a trade update was missed`);
  }

  // ---- the gate's own orders ----

  /** An order the gate forwards now (admit, inside its lock): it counts from this moment. */
  sent(ticket: number, intent: OrderIntent): void {
    const replaced = intent.replaces !== undefined ? this.orders.get(intent.replaces)?.view : undefined;
    // A replacement is the order it becomes; when the book does not know the replaced order, both count.
    const order = replaced ? becomes(replaced, intent) : intent;
    this.inFlight.set(ticket, {
      view: {
        id: `(in flight #${ticket})`,
        clientOrderId: intent.clientOrderId,
        symbol: order.symbol ?? '',
        side: order.side ?? '',
        type: order.type,
        qty: amount(order.qty),
        notional: amount(order.notional),
        filledQty: 0,
        limitPrice: amount(order.limitPrice),
        stopPrice: amount(order.stopPrice),
        inFlight: true,
      },
      clientOrderId: intent.clientOrderId,
      replaces: replaced ? intent.replaces : undefined,
      sentAt: Date.now(), // real time: how long an answer can take, not domain time
    });
  }

  /** The broker's answer to an order `sent`: refused (or over at once) frees it, accepted books it under its id. */
  answered(ticket: number, outcome: { accepted: false } | { accepted: true; orderId?: string; ended?: boolean } | { accepted: 'unknown' }): void {
    const sent = this.inFlight.get(ticket);
    if (!sent) return; // its event came first and took over
    if (outcome.accepted === false || (outcome.accepted === true && outcome.ended)) {
      this.inFlight.delete(ticket);
      return;
    }
    if (outcome.accepted === 'unknown' || !outcome.orderId) {
      // It may be at the broker: it counts until a list read after this moment says.
      sent.lost = ++this.version;
      return this.invalidate(outcome.accepted === 'unknown' ? "an order's answer was lost" : 'an accepted order came back without an id');
    }
    this.inFlight.delete(ticket);
    if (this.ended.has(outcome.orderId) || this.orders.has(outcome.orderId)) return;
    this.orders.set(outcome.orderId, { view: { ...sent.view, id: outcome.orderId, inFlight: undefined }, version: ++this.version });
  }

  /** A replacement the broker accepted: the order it replaced is over (its `replaced` event may follow). */
  replaced(orderId: string): void {
    this.end(orderId, ++this.version);
  }

  // ---- what the limits read ----

  /**
   * What the pre-trade limits read for an order that came with `fresh`'s keys: the book when it can
   * answer for that account, else the broker (fresh) and the orders in flight.
   */
  view(fresh: BrokerView): BrokerView {
    this.dropStale();
    if (this.answersFor(fresh)) {
      return {
        keys: fresh.keys,
        accountNumber: () => fresh.accountNumber(),
        latestTradePrice: (symbol) => fresh.latestTradePrice(symbol),
        position: async (symbol) => this.position(symbol),
        openOrders: async () => this.openOrders(),
        order: async (orderId) => this.orders.get(orderId)?.view ?? fresh.order(orderId),
      };
    }
    return {
      keys: fresh.keys,
      accountNumber: () => fresh.accountNumber(),
      latestTradePrice: (symbol) => fresh.latestTradePrice(symbol),
      position: (symbol) => fresh.position(symbol),
      order: (orderId) => fresh.order(orderId),
      openOrders: async () => {
        const listed = await fresh.openOrders();
        const ids = new Set(listed.map((o) => o.clientOrderId).filter(Boolean));
        // Sent and not answered: the broker's list may not show them yet.
        const unanswered = [...this.inFlight.values()].filter((s) => s.lost === undefined && !(s.clientOrderId && ids.has(s.clientOrderId)));
        return [...listed, ...unanswered.map((s) => s.view)];
      },
    };
  }

  private position(symbol: string): PositionView | null {
    const held = this.positions.get(symbolKey(symbol));
    if (!held || held.qty === 0) return null;
    // A price is the market's only while it is recent (as the gate's price cache); else the latest trade is read.
    const recent = held.price !== undefined && held.pricedAt !== undefined && Date.now() - held.pricedAt < PRICE_CACHE_MS;
    return { qty: held.qty, ...(recent ? { currentPrice: held.price } : {}) };
  }

  private openOrders(): OrderView[] {
    const sent = [...this.inFlight.values()];
    const replacing = new Set(sent.map((s) => s.replaces).filter(Boolean));
    return [...[...this.orders.values()].filter((b) => !replacing.has(b.view.id)).map((b) => b.view), ...sent.map((s) => s.view)];
  }

  private answersFor(fresh: BrokerView): boolean {
    if (!this.live) return false;
    const known = this.accountOfKeys.get(fresh.keys);
    if (known === undefined) {
      this.learnAccount(fresh);
      return false;
    }
    return known === this.account;
  }

  /** Reads, once per set of keys and beside the order's own reads, which account they trade. */
  private learnAccount(fresh: BrokerView): void {
    if (this.learning.has(fresh.keys)) return;
    const learning = fresh
      .accountNumber()
      .then((number) => {
        if (this.accountOfKeys.size >= KEYS_REMEMBERED) this.accountOfKeys.delete(this.accountOfKeys.keys().next().value!);
        this.accountOfKeys.set(fresh.keys, number ?? null);
        if (number !== this.account) this.logger.info("order gate: the trader's keys trade another account than tradewarden's (its trade stream): the pre-trade limits read the broker for each of its orders");
      })
      .catch((error: unknown) => this.logger.debug(`order gate: the trader's account could not be read (${describeError(error)}); asked again with its next order`))
      .finally(() => this.learning.delete(fresh.keys));
    this.learning.set(fresh.keys, learning);
  }

  // ---- internals ----

  private end(orderId: string, version: number): void {
    this.orders.delete(orderId);
    this.ended.set(orderId, version);
    if (this.ended.size > ENDED_REMEMBERED) this.ended.delete(this.ended.keys().next().value!);
  }

  /** Not trusted until read again from the broker. */
  private invalidate(why: string): void {
    this.seeded = false;
    if (this.connected) void this.seed(why);
  }

  /** Reads the account, its open orders and positions, and takes what did not change since it asked. */
  private seed(why: string): Promise<void> {
    const broker = this.options.broker;
    if (!broker) return Promise.resolve();
    this.seeded = false;
    const generation = ++this.generation;
    const asked = this.version;
    const askedAt = this.clock.now();
    const seeding = (async () => {
      let read: [{ accountNumber?: string }, Order[], Position[]];
      try {
        read = await Promise.all([broker.account(), broker.openOrders(), broker.positions()]);
      } catch (error) {
        if (generation === this.generation) this.logger.warn(`order gate: the trader's open orders and positions could not be read (${describeError(error)}); the pre-trade limits read the broker for each order until the next account read`);
        return;
      }
      if (generation !== this.generation) return; // disconnected, or read again, meanwhile
      const [account, orders, positions] = read;
      for (const [id, booked] of this.orders) if (booked.version <= asked) this.orders.delete(id);
      for (const order of orders) {
        if (OVER.has(order.status) || this.ended.has(order.id) || (this.orders.get(order.id)?.version ?? -1) > asked) continue;
        this.orders.set(order.id, { view: viewOf(order), version: asked });
      }
      // An order whose answer was lost is in the list if it reached the broker.
      for (const [ticket, sent] of this.inFlight) if (sent.lost !== undefined && sent.lost <= asked) this.inFlight.delete(ticket);
      for (const [key, held] of this.positions) if (held.version <= asked) this.positions.delete(key);
      for (const p of positions) {
        const key = symbolKey(p.symbol);
        if ((this.positions.get(key)?.version ?? -1) > asked) continue;
        this.positions.set(key, heldFrom(p, asked, askedAt));
      }
      this.account = account.accountNumber;
      this.seeded = true;
      this.logger.debug(`order gate: the trader's book read (${why}): ${this.orders.size} open order(s), ${this.positions.size} position(s)`);
    })();
    this.seeding = seeding;
    void seeding.finally(() => {
      if (this.seeding === seeding) this.seeding = undefined;
    });
    return seeding;
  }

  /** Resolves once the reads in progress (the book's, an account's) are taken in: tests and the bench wait on it. */
  async settled(): Promise<void> {
    while (this.seeding || this.learning.size) await Promise.all([this.seeding, ...this.learning.values()]);
  }

  /** The open orders (in flight included) and the non-zero positions the book holds now. */
  snapshot(): { orders: OrderView[]; positions: Record<string, number> } {
    const positions: Record<string, number> = {};
    for (const [key, held] of this.positions) if (held.qty !== 0) positions[key] = held.qty;
    return { orders: this.openOrders(), positions };
  }

  /** Orders sent longer ago than any answer can take no longer count as in flight. */
  private dropStale(): void {
    const oldest = Date.now() - IN_FLIGHT_MAX_MS;
    for (const [ticket, sent] of this.inFlight) if (sent.sentAt < oldest) this.inFlight.delete(ticket);
  }
}

/** A digest of the credentials a request came with: which keys, never the keys themselves. */
export function keysDigest(parts: ReadonlyArray<string | undefined>): string {
  return createHash('sha256').update(parts.map((p) => p ?? '').join('\0')).digest('hex').slice(0, 32);
}

function viewOf(order: OrderUpdate['order'] | Order): OrderView {
  return {
    id: order.id,
    clientOrderId: order.clientOrderId,
    symbol: order.symbol,
    side: order.side,
    type: order.type,
    qty: order.qty,
    notional: order.notional,
    filledQty: order.filledQty,
    limitPrice: order.limitPrice,
    stopPrice: order.stopPrice,
  };
}

function heldFrom(p: Position, version: number, changedAt: number): Held {
  const price = p.qty !== 0 ? Math.abs(p.marketValue / p.qty) : undefined;
  return { qty: p.qty, ...(price && Number.isFinite(price) ? { price, pricedAt: Date.now() } : {}), version, changedAt };
}

function amount(value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const n = Number(value);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}
