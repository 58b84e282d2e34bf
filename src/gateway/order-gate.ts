// The order gate's decisions (DESIGN invariant 12): whether a new order may reach the broker. The
// HTTP side (gateway.ts) asks before forwarding an order and reports what the broker answered; this
// module keeps the count, knows the caller, raises `order_refused` once per episode.
//
// The count is the rolling hour's trades (the store's seen trades, filled in by the trade poll) plus
// the orders this gate let through that are not among them yet: accepted and not filled, or filled
// and not polled yet. Either way they may trade at any moment, so they count — which is what stops
// the 4th order of the hour before the broker, instead of alerting after its fill. An accepted order
// leaves the pending list when its id shows up among the seen trades, when the gate saw it canceled
// (after a grace period, so a partial fill before the cancel is polled first), or an hour after it
// was accepted. Pending orders live in memory: after a controller restart the poll's seen trades
// (persisted) still count everything that filled.
//
// Beside the count, the pre-trade limits (pre-trade.ts: ALLOWED_SYMBOLS, MAX_OPEN_ORDERS,
// MAX_ORDER_NOTIONAL, MAX_POSITION_NOTIONAL) are checked on the managed trader's orders once the count
// lets them through; they read the gate's model of the trader's book (trader-book.ts), which learns of
// every order the gate forwards the moment it does, or, when the model cannot answer, the broker with
// the trader's own keys (a BrokerView from gateway.ts).
import type { Clock } from '../clock.ts';
import { describeError } from '../errors.ts';
import { Mutex } from '../lock.ts';
import type { Logger } from '../log.ts';
import type { AlertOutbox } from '../alerts/outbox.ts';
import type { Store } from '../store/store.ts';
import type { GateMode } from '../config.ts';
import { HOUR_MS, countedTrades } from '../watch/trade-window.ts';
import { commandLineOf, processTree, socketOwner, type ConnectionEnds } from '../os/socket-owner.ts';
import { PreTradeCheck, type BrokerView, type PreTradeLimits, type PreTradeReason } from './pre-trade.ts';
import { IN_FLIGHT_MAX_MS, TraderBook } from './trader-book.ts';

/** What an order asks for, as far as the alert and the log need it (the body goes to the broker as is). */
export interface OrderIntent {
  symbol?: string;
  side?: string;
  qty?: string;
  notional?: string;
  type?: string;
  limitPrice?: string;
  stopPrice?: string;
  /** PATCH /v2/orders/{id}: the order being replaced */
  replaces?: string;
  /** the client_order_id it goes to the broker with (the trader's, or one the gateway gave it) */
  clientOrderId?: string;
}

export type RefusalReason = 'not_managed_trader' | 'trade_limit' | 'breaker_tripped' | 'broker_locked' | PreTradeReason;

/** The gate as status and /metrics show it. */
export interface GateStatus {
  mode: GateMode;
  /** orders let through and not yet among the trades: they count towards the hour */
  pending: number;
  /** refusals in the last hour, by reason (a trader the gate locks out shows here) */
  refusedLastHour: Partial<Record<RefusalReason, number>>;
  /** refusals since this controller started, by reason (/metrics' counter) */
  refusedTotal: Partial<Record<RefusalReason, number>>;
  /** with a model of the trader's book: whether the pre-trade limits read it now (false: the broker, for each order) */
  bookLive?: boolean;
}

export interface Refusal {
  reason: RefusalReason;
  /**
   * The HTTP status, chosen so that clients read a refusal as "not allowed now", not as "the broker
   * is down" (see REFUSAL_STATUS): 429 with Retry-After for the hourly limit, 403 otherwise.
   */
  status: number;
  /** seconds until the refusal lifts by itself (the hourly limit), sent as Retry-After */
  retryAfterSeconds?: number;
  /** Alpaca-shaped error body: what happened and what to do */
  code: number;
  message: string;
  /** a pre-trade limit's refusal: the limit and the value it judged, for the alert */
  limit?: { name: string; value: number | string };
  value?: number;
}

/** Who is asking: the process at the other end of the connection, when it could be found. */
export interface Caller {
  pid?: number;
  command?: string;
  managed: boolean;
  /** why the caller is not (known to be) the managed trader */
  why?: string;
}

/** One client connection; the gateway keeps it per socket so the owner is looked up once. */
export interface Peer {
  ends: ConnectionEnds;
  /** the process holding the client's socket, once found */
  ownerPid?: number;
}

export interface Admission {
  caller: Caller;
  /** set when the order breaks a rule; in observe mode the order still goes through */
  refusal?: Refusal;
  /** true when the order must be forwarded (allowed, or observe mode) */
  forward: boolean;
  /** hand back to settle() with the broker's answer; absent when not forwarded */
  ticket?: number;
}

export interface OrderGateOptions {
  store: Store;
  outbox: AlertOutbox;
  clock: Clock;
  logger: Logger;
  maxTradesPerHour: number;
  mode: GateMode;
  /** PM2 name of the managed trader, for messages */
  processName: string;
  /** PID of the managed trader while it runs (PM2's primary entry) */
  traderPid: () => Promise<number | undefined>;
  /** how long a canceled order still counts, so a fill just before the cancel is polled first */
  cancelGraceMs?: number;
  /** an episode of refusals ends after this long without one (or when an order is let through) */
  episodeQuietMs?: number;
  /** the pre-trade limits (config GATEWAY_ADDR's MAX_ORDER_NOTIONAL, …); none set: nothing more is read */
  limits?: PreTradeLimits;
  /** how long a market price is reused (pre-trade.ts PRICE_CACHE_MS) */
  priceCacheMs?: number;
  /** the model of the trader's book the limits read (fed by the trade stream); none: every decision reads the broker */
  book?: TraderBook;
}

const TRADER_PID_CACHE_MS = 2000;
/** How many ended orders are remembered for an answer that comes after the stream's event. */
const ENDED_REMEMBERED = 1000;
/** How long orders let through wait to be written to the data file together. */
/** How many order ids let through are kept in memory (the data file keeps as many). */
const FORWARDED_REMEMBERED = 20_000;

/** Alpaca answers "forbidden" business errors with 403 and an 8-digit 403xxxxx code. */
export const REFUSED_CODE = 40310000;
/** …and its rate limit with 429 and 42910000. */
export const LIMIT_CODE = 42910000;
/**
 * Alpaca's own wording when the account refuses new orders (suspend_trade). Clients know it: ccxt
 * maps a 403 carrying it to PermissionDenied, where a bare 403 is ExchangeNotAvailable, a network
 * error that frameworks retry. Every 403 refusal of the gate says it first.
 */
const REJECTED_BY_USER = 'new orders are rejected by user request';

interface PendingOrder {
  ticket: number;
  /** the broker's order id, once it answered */
  orderId?: string;
  acceptedAt: number;
  canceledAt?: number;
  /** the broker's answer (or its absence) is known */
  answered?: boolean;
}

interface Episode {
  startedAt: number;
  lastAt: number;
  refusals: number;
}

export class OrderGate {
  private readonly admitting = new Mutex();
  private readonly pending = new Map<number, PendingOrder>();
  /** refusals by reason: their times (the last hour's, for status) and their count since start (/metrics) */
  private readonly refusalTimes = new Map<RefusalReason, number[]>();
  private readonly refusalTotals = new Map<RefusalReason, number>();
  /** the broker's ids of the orders let through (bounded; the data file keeps them across restarts) */
  private readonly forwarded = new Set<string>();
  /** let through and not yet written to the data file */
  /** orders the stream said ended, newest last (bounded) */
  private readonly endedOrders = new Map<string, number>();
  private readonly episodes = new Map<string, Episode>();
  private nextTicket = 1;
  private traderPidCache?: { pid: number | undefined; at: number };
  /** alerts being raised: an order's answer never waits for Discord */
  private readonly raising = new Set<Promise<void>>();
  private readonly cancelGraceMs: number;
  private readonly episodeQuietMs: number;
  private readonly preTrade: PreTradeCheck;
  /** the trader's open orders and positions as the gate knows them (at least the orders it sent) */
  readonly book: TraderBook;

  constructor(private readonly options: OrderGateOptions) {
    this.cancelGraceMs = options.cancelGraceMs ?? 60_000;
    this.episodeQuietMs = options.episodeQuietMs ?? HOUR_MS;
    this.preTrade = new PreTradeCheck(options.limits ?? {}, options.priceCacheMs);
    this.book = options.book ?? new TraderBook({ logger: options.logger });
  }

  get mode(): GateMode {
    return this.options.mode;
  }

  /**
   * Decides on one new order from the process behind `peer`. Serialized, and a slot is reserved
   * before the answer, so two orders racing for the last slot cannot both get it. `view` reads the
   * broker with the caller's keys, for the pre-trade limits (without one, a limit that needs a read
   * refuses: nothing could be known).
   */
  admit(peer: Peer, intent: OrderIntent, view: BrokerView = NO_VIEW): Promise<Admission> {
    return this.admitting.run(async () => {
      const caller = await this.identify(peer);
      // The pre-trade limits read the broker only for an order the count lets through: a runaway
      // hammering a closed gate must not spend the account's request budget on reads.
      const refusal = caller.managed ? ((await this.checkLimits(intent.replaces)) ?? (await this.checkPreTrade(intent, view))) : notManaged(caller, this.options.processName);
      const forward = !refusal || this.options.mode === 'observe';
      let ticket: number | undefined;
      if (forward) {
        ticket = this.nextTicket++;
        this.pending.set(ticket, { ticket, acceptedAt: this.options.clock.now() });
        // Counted for the next decision at once, before the broker has said anything of it.
        this.book.sent(ticket, intent);
      }
      if (refusal) this.refused(caller, intent, refusal);
      // The trader's order got through: its next refusal is news again. A copy's episode goes on.
      else for (const key of [...this.episodes.keys()]) if (!key.startsWith('not_managed_trader:')) this.episodes.delete(key);
      return { caller, refusal, forward, ticket };
    });
  }

  /**
   * What became of a forwarded order. Not accepted (the broker answered an error, or it was never
   * sent: no connection, or the broker has no order of that client id) frees the slot; accepted
   * keeps it until the order is seen filled, ends unfilled or an hour passes; unknown (the answer was
   * lost and the broker could not be asked) keeps it too, the cautious way.
   */
  settle(ticket: number, outcome: { accepted: false } | { accepted: true; orderId?: string; ended?: boolean } | { accepted: 'unknown' }): void {
    this.book.answered(ticket, outcome);
    const pending = this.pending.get(ticket);
    if (!pending) return;
    pending.answered = true;
    if (outcome.accepted === true && outcome.orderId) this.remember(outcome.orderId);
    // Refused, never sent, or answered as already over and unfilled (an IOC that could not fill).
    if (outcome.accepted === false || (outcome.accepted === true && outcome.ended)) {
      this.pending.delete(ticket);
      return;
    }
    if (outcome.accepted === true && outcome.orderId) {
      // The stream may have said it ended before its answer named it (an IOC canceled at once).
      if (this.endedOrders.has(outcome.orderId)) this.pending.delete(ticket);
      else pending.orderId = outcome.orderId;
    }
  }

  /**
   * A successful PATCH replaced `orderId` by a new order: the new one took its place (its slot was
   * not counted twice, see admit), so the old one stops counting at once. What it filled before is
   * among the seen trades anyway.
   */
  replaced(orderId: string): void {
    this.book.replaced(orderId);
    for (const [ticket, pending] of this.pending) if (pending.orderId === orderId) this.pending.delete(ticket);
  }

  /**
   * The trade stream says an order will trade no more (canceled, expired, rejected, replaced, done
   * for the day). Unfilled, it stops counting at once; partly filled, its fills are seen trades.
   */
  ended(orderId: string): void {
    for (const [ticket, pending] of this.pending) if (pending.orderId === orderId) this.pending.delete(ticket);
    // Kept a while: the event can come before the broker's answer to the order names its id.
    this.endedOrders.set(orderId, Date.now());
    if (this.endedOrders.size > ENDED_REMEMBERED) {
      for (const id of [...this.endedOrders.keys()].slice(0, this.endedOrders.size - ENDED_REMEMBERED)) this.endedOrders.delete(id);
    }
  }

  /** The broker confirmed a cancel: of `orderId`, or of every open order (`all`). */
  canceled(orderId: string | 'all'): void {
    const now = this.options.clock.now();
    for (const pending of this.pending.values()) {
      // An order still in flight during a cancel-all may be accepted after it: it keeps counting.
      const hit = orderId === 'all' ? pending.orderId !== undefined : pending.orderId === orderId;
      if (hit && pending.canceledAt === undefined) pending.canceledAt = now;
    }
  }

  /** Resolves once every alert raised so far is saved (and its first delivery tried). */
  async alertsRaised(): Promise<void> {
    await Promise.all([...this.raising]);
  }

  /**
   * An order let through: in memory for the bypass watch, and appended to the gate's ledger at once
   * (one line beside the data file, not a rewrite of it), so a restarted gate knows every order let
   * through, the last one before a crash included.
   */
  private remember(orderId: string): void {
    if (this.forwarded.has(orderId)) return;
    this.forwarded.add(orderId);
    if (this.forwarded.size > FORWARDED_REMEMBERED) this.forwarded.delete(this.forwarded.values().next().value!);
    try {
      this.options.store.gate.record([{ orderId, at: this.options.clock.now() }]);
    } catch (error) {
      this.options.logger.warn(`order gate: could not record order ${orderId} in its ledger (a restarted gate would take its fills for a bypass): ${describeError(error)}`);
    }
  }

  /** Whether the gate let this order through (the bypass watch asks; a restarted gate reads its ledger). */
  knows(orderId: string): boolean {
    return this.forwarded.has(orderId);
  }

  /**
   * When the oldest order still waiting for the broker's answer was sent; undefined when none waits.
   * An order sent longer ago than any answer can take (the upstream time-out and a look-up) no
   * longer counts as waiting.
   */
  inFlightSince(): number | undefined {
    const now = this.options.clock.now();
    let oldest: number | undefined;
    for (const pending of this.pending.values()) {
      if (pending.answered || pending.acceptedAt < now - IN_FLIGHT_MAX_MS) continue;
      if (oldest === undefined || pending.acceptedAt < oldest) oldest = pending.acceptedAt;
    }
    return oldest;
  }

  /** Reads the ledger of orders let through before this controller started. */
  async load(): Promise<void> {
    await this.options.store.read(); // moves the ledger an older version kept in the data file
    for (const orderId of this.options.store.gate.newest(FORWARDED_REMEMBERED)) this.forwarded.add(orderId);
  }

  /** Pending orders and refusals, for status and /metrics. */
  async status(): Promise<GateStatus> {
    const now = this.options.clock.now();
    const refusedLastHour: GateStatus['refusedLastHour'] = {};
    for (const [reason, times] of this.refusalTimes) {
      const recent = times.filter((at) => at > now - HOUR_MS);
      this.refusalTimes.set(reason, recent);
      if (recent.length) refusedLastHour[reason] = recent.length;
    }
    return {
      mode: this.options.mode,
      pending: await this.pendingCount(),
      refusedLastHour,
      refusedTotal: Object.fromEntries(this.refusalTotals),
      ...(this.options.book ? { bookLive: this.book.live } : {}),
    };
  }

  /** Orders let through and not (yet) among the seen trades, for status and tests. */
  async pendingCount(): Promise<number> {
    await this.options.store.read();
    return this.livePending().length;
  }

  // ---- internals ----

  /**
   * Who is behind `peer`. The managed trader's PID is cached briefly (a PM2 listing per order would
   * cost more than the rest of the decision) but never trusted for a refusal: a caller outside the
   * cached tree is checked again against a fresh listing before it is refused.
   */
  private async identify(peer: Peer): Promise<Caller> {
    let traderPid: number | undefined;
    try {
      traderPid = await this.currentTraderPid(false);
    } catch (error) {
      return { managed: false, why: `the managed trader's PID could not be read from PM2 (${describeError(error)})` };
    }
    if (peer.ownerPid === undefined) {
      const owner = socketOwner(peer.ends, traderPid ? [traderPid] : []);
      if (!owner.found) return { managed: false, why: `the process behind the connection could not be found: ${owner.reason}` };
      peer.ownerPid = owner.pid; // a connection keeps its process: kept-alive connections are looked up once
    }
    const pid = peer.ownerPid;
    const inTree = (root: number | undefined) => root !== undefined && (pid === root || processTree(root).has(pid));
    if (inTree(traderPid)) return { pid, command: commandLineOf(pid), managed: true };
    try {
      traderPid = await this.currentTraderPid(true);
    } catch (error) {
      return { pid, command: commandLineOf(pid), managed: false, why: `the managed trader's PID could not be read from PM2 (${describeError(error)})` };
    }
    if (inTree(traderPid)) return { pid, command: commandLineOf(pid), managed: true };
    const why =
      traderPid === undefined
        ? `the managed trader "${this.options.processName}" is not running under PM2`
        : `PID ${pid} is not the managed trader (PM2 PID ${traderPid}) nor one of its child processes`;
    return { pid, command: commandLineOf(pid), managed: false, why };
  }

  private async currentTraderPid(fresh: boolean): Promise<number | undefined> {
    const now = Date.now(); // real time: this caches a PM2 answer, it is not domain time
    if (!fresh && this.traderPidCache && now - this.traderPidCache.at < TRADER_PID_CACHE_MS) return this.traderPidCache.pid;
    const pid = await this.options.traderPid();
    this.traderPidCache = { pid, at: now };
    return pid;
  }

  /** `replaces`: a replacement takes that order's place, so the order it replaces does not count beside it. */
  private async checkLimits(replaces?: string): Promise<Refusal | undefined> {
    const data = await this.options.store.read();
    const now = this.options.clock.now();
    if (data.breaker.tripped) {
      return {
        reason: 'breaker_tripped',
        status: 403,
        code: REFUSED_CODE,
        message:
          `tradewarden order gate: ${REJECTED_BY_USER}: order refused because the breaker is tripped (${data.breaker.reason ?? 'no reason recorded'}). ` +
          'Trading is halted until an operator runs resume (/bot resume, or tradewarden resume). Cancels, position closes and reads still pass.',
      };
    }
    // The broker would refuse it anyway; the gate says why in words the trader's log will show.
    if (data.brokerLock?.locked) {
      return {
        reason: 'broker_locked',
        status: 403,
        code: REFUSED_CODE,
        message:
          `tradewarden order gate: ${REJECTED_BY_USER}: order refused because the account is locked at the broker (suspend_trade, ${data.brokerLock.ours ? `set by ${data.brokerLock.by ?? 'tradewarden'}` : 'set outside tradewarden'}). ` +
          'An operator lifts it with unlock (or resume, for a lock tradewarden set). Cancels and reads still pass.',
      };
    }
    // The hour as everything else counts it (countedTrades: the trader's trades since any resume).
    const trades = countedTrades(data, now);
    const pending = this.livePending().filter((p) => replaces === undefined || p.orderId !== replaces);
    const limit = this.options.maxTradesPerHour;
    if (trades.length + pending.length + 1 <= limit) return undefined;
    const oldest = Math.min(...trades.map((t) => t.at), ...pending.map((p) => p.acceptedAt));
    return {
      reason: 'trade_limit',
      // A limit that lifts by itself: 429, and when (clients and frameworks wait, not fail over).
      status: 429,
      retryAfterSeconds: Math.max(1, Math.ceil((oldest + HOUR_MS - now) / 1000)),
      code: LIMIT_CODE,
      message:
        `tradewarden order gate: order refused: ${trades.length} trade(s) in the last hour and ${pending.length} order(s) accepted and not yet filled; ` +
        `one more would exceed MAX_TRADES_PER_HOUR=${limit}. The next order is possible after ${new Date(oldest + HOUR_MS).toISOString()}, ` +
        'when the oldest leaves the rolling hour (or an operator raises the limit). Cancels, position closes and reads still pass.',
    };
  }

  /** The pre-trade limits, as a 403 like the gate's other "not allowed" refusals. */
  private async checkPreTrade(intent: OrderIntent, view: BrokerView): Promise<Refusal | undefined> {
    if (!this.preTrade.active) return undefined;
    const broken = await this.preTrade.check(intent, this.book.view(view));
    if (!broken) return undefined;
    return {
      reason: broken.reason,
      status: 403,
      code: REFUSED_CODE,
      message: `tradewarden order gate: ${REJECTED_BY_USER}: order refused: ${broken.message}. Cancels, position closes and reads still pass.`,
      limit: broken.limit,
      value: broken.value,
    };
  }

  /** Pending orders that still count (as of the store's last read); drops those that no longer do. */
  private livePending(): PendingOrder[] {
    const now = this.options.clock.now();
    // A pending order is less than an hour old: its trade, once seen, is among the ledger's hot ones.
    const seen = (orderId: string) => this.options.store.fills.has(orderId);
    for (const [ticket, p] of this.pending) {
      const done =
        (p.orderId !== undefined && seen(p.orderId)) ||
        p.acceptedAt <= now - HOUR_MS ||
        (p.canceledAt !== undefined && p.canceledAt <= now - this.cancelGraceMs);
      if (done) this.pending.delete(ticket);
    }
    return [...this.pending.values()];
  }

  /** Logs every refusal; alerts on the first of an episode (per reason, and per PID for copies). */
  private refused(caller: Caller, intent: OrderIntent, refusal: Refusal): void {
    const { clock, logger, outbox, mode } = this.options;
    const now = clock.now();
    this.refusalTotals.set(refusal.reason, (this.refusalTotals.get(refusal.reason) ?? 0) + 1);
    const times = this.refusalTimes.get(refusal.reason) ?? [];
    times.push(now);
    // A trader hammering a closed gate: what status needs is the hour's count, bounded.
    this.refusalTimes.set(refusal.reason, times.length > 10_000 ? times.slice(-10_000) : times);
    const episodeKey = refusal.reason === 'not_managed_trader' ? `${refusal.reason}:${caller.pid ?? 'unknown'}` : refusal.reason;
    const known = this.episodes.get(episodeKey);
    const what = describeIntent(intent);
    const who = caller.pid ? `PID ${caller.pid} (${caller.command || 'command line unknown'})` : 'an unidentified process';
    const verb = mode === 'observe' ? 'would refuse (observe mode: forwarded)' : 'refused';
    if (known && now - known.lastAt < this.episodeQuietMs) {
      known.lastAt = now;
      known.refusals += 1;
      logger.debug(`order gate ${verb} ${what} from ${who}: ${refusal.reason} (${known.refusals} in this episode)`);
      return;
    }
    for (const [key, episode] of this.episodes) if (now - episode.lastAt >= this.episodeQuietMs) this.episodes.delete(key); // copies long gone
    this.episodes.set(episodeKey, { startedAt: now, lastAt: now, refusals: 1 });
    logger.info(`order gate ${verb} ${what} from ${who}: ${refusal.message}`); // the alert says it loudly
    const observe = mode === 'observe';
    const raising = outbox
      .raise({
        kind: 'order_refused',
        // Limits that lift by themselves warn; the rest is a bot doing what it must not, or a gate that cannot see.
        severity: refusal.reason === 'trade_limit' || refusal.reason === 'open_orders' ? 'warning' : 'critical',
        key: `order_refused:${episodeKey}:${now}`,
        title: observe ? `Order would have been refused (${REASON_TITLE[refusal.reason]}; observe mode)` : `Order refused: ${REASON_TITLE[refusal.reason]}`,
        body:
          `${observe ? 'GATE_MODE=observe let it through. ' : ''}Who: ${who}${caller.managed ? ', the managed trader' : ''}. What: ${what}. ` +
          `Why: ${(caller.managed ? refusal.message : caller.why ?? refusal.message).replace(/\.$/, '')}. ${
            caller.managed ? 'Further refusals of this kind are not alerted until an order passes again.' : 'Further refusals of this process are only logged while it keeps trying.'
          }`,
        facts: {
          reason: refusal.reason,
          mode,
          pid: caller.pid,
          command: caller.command,
          managed: caller.managed,
          symbol: intent.symbol,
          side: intent.side,
          qty: intent.qty,
          notional: intent.notional,
          limitPrice: intent.limitPrice,
          limit: refusal.limit?.value ?? this.options.maxTradesPerHour,
          limitName: refusal.limit?.name ?? 'MAX_TRADES_PER_HOUR',
          value: refusal.value,
        },
      })
      .then(
        () => undefined,
        (error: unknown) => logger.error(`could not raise order_refused: ${describeError(error)}`),
      )
      .finally(() => this.raising.delete(raising));
    this.raising.add(raising);
  }
}

const REASON_TITLE: Record<RefusalReason, string> = {
  not_managed_trader: 'not from the managed trader',
  trade_limit: 'trade limit reached',
  breaker_tripped: 'breaker tripped',
  broker_locked: 'account locked at the broker',
  symbol_not_allowed: 'symbol not in ALLOWED_SYMBOLS',
  open_orders: 'too many open orders',
  order_notional: 'order larger than MAX_ORDER_NOTIONAL',
  position_notional: 'position would exceed MAX_POSITION_NOTIONAL',
  value_unknown: "the order's value could not be known",
  open_orders_unknown: 'open orders could not be read',
};

/** No broker to ask: every read fails, so a limit that needs one refuses. */
const NO_VIEW: BrokerView = {
  keys: '',
  accountNumber: () => Promise.reject(new Error('no broker to read')),
  position: () => Promise.reject(new Error('no broker to read')),
  latestTradePrice: () => Promise.reject(new Error('no broker to read')),
  openOrders: () => Promise.reject(new Error('no broker to read')),
  order: () => Promise.reject(new Error('no broker to read')),
};

function notManaged(caller: Caller, processName: string): Refusal {
  return {
    reason: 'not_managed_trader',
    status: 403,
    code: REFUSED_CODE,
    message:
      `tradewarden order gate: ${REJECTED_BY_USER}: order refused: only the managed trader "${processName}" (started under PM2 by tradewarden) may place orders, ` +
      `and ${caller.pid ? `this request came from PID ${caller.pid}` : 'the process behind this request could not be identified'}. ` +
      'Stop this copy; start the trader with /bot start (or tradewarden start). Cancels, position closes and reads still pass.',
  };
}

function describeIntent(intent: OrderIntent): string {
  const size = intent.notional !== undefined ? `$${intent.notional}` : intent.qty !== undefined ? `${intent.qty}` : 'size unknown';
  const order = `${intent.side ?? 'order'} ${size} ${intent.symbol ?? '(symbol unknown)'}${intent.type ? ` ${intent.type}` : ''}`;
  return intent.replaces ? `replacement of order ${intent.replaces} (${order})` : order;
}
