// The shape of the one data file. Plain JSON, versioned; every part of the controller keeps its
// persistent state here so that the CLI and the controller (separate processes) see the same facts.
/**
 * 2: the trades moved out of this document into the fills ledger (fill-ledger.ts), and the gate's
 * orders into its own (gate-ledger.ts); a version 1 file is migrated on first start.
 */
export const SCHEMA_VERSION = 2;

export type Outcome = 'ok' | 'refused' | 'failed';

export interface AuditEntry {
  at: string; // ISO time the operation started
  who: string; // "cli:<os user>", "discord:<user id>", "controller" for automatic actions
  what: string; // operation name: start, stop, flatten, …
  args?: Record<string, unknown>;
  outcome: Outcome;
  message?: string;
  durationMs: number;
}

export type AlertSeverity = 'info' | 'warning' | 'critical';

export type AlertKind =
  | 'trade_rate_exceeded'
  | 'trade_rate_normal'
  | 'duplicate_instance'
  | 'process_down'
  | 'crash_loop'
  | 'broker_unreachable'
  | 'recovered'
  | 'breaker_tripped'
  | 'flatten_result'
  | 'data_file_kept_aside'
  | 'order_refused'
  | 'foreign_trading'
  | 'broker_clock_skew'
  | 'record_failed'
  | 'controller_restarted'
  | 'broker_locked'
  | 'gate_bypassed'
  | 'positions_unattended'
  | 'loss_limit';

export interface Delivery {
  attempts: number;
  deliveredAt?: number;
  nextAttemptAt?: number;
  lastError?: string;
  /** Sink-specific reference, e.g. the Discord message id. */
  ref?: string;
}

export interface StoredAlert {
  id: string;
  kind: AlertKind;
  severity: AlertSeverity;
  /** De-duplication key: the same key within a cool-down is one alert. */
  key: string;
  title: string;
  body: string;
  facts: Record<string, unknown>;
  createdAt: number; // ms since epoch
  deliveries: Record<string, Delivery>;
}

export interface SeenTrade {
  orderId: string;
  symbol: string;
  side: string;
  qty: number;
  price: number;
  /** Broker transaction time of the order's first fill, ms since epoch. */
  at: number;
  activityIds: string[];
}

/**
 * The account's "new orders are blocked" switch at the broker (Alpaca's suspend_trade). `ours` says
 * tradewarden set it: resume lifts only such a lock; one set by hand in the broker's dashboard (or
 * found set at start) is reported and left alone unless an operator asks unlock.
 */
export interface BrokerLockState {
  locked: boolean;
  ours: boolean;
  /** who set it ("controller" for a breaker trip, "discord:<id>", "cli:<user>"), or "outside tradewarden" */
  by?: string;
  /** ms since epoch it was set, or first seen set */
  since?: number;
  reason?: string;
  /** ms since epoch the broker last confirmed it */
  checkedAt?: number;
  /** a lock wanted but not yet holding: retried with back-off until it does */
  failing?: { error: string; attempts: number; since: number };
}

/** A flatten's closing, as the watch must know it before the broker answers (data.trades.flattens). */
export interface FlattenIntent {
  /** one flatten's id (its ownOrders say `by: flatten:<actor>`) */
  id: string;
  by: string;
  /** ms since epoch, before the close was sent */
  startedAt: number;
  /** the positions being closed: a fill on the opposite side of one of them may be a closing fill */
  positions: Array<{ symbol: string; side: 'long' | 'short' }>;
  /** set when the broker answered the close (its closing orders are then in ownOrders), or it failed */
  answeredAt?: number;
}

/** Account figures as last read from the broker (by the watch), with when. */
export interface AccountSnapshot {
  equity: number;
  dayPnl: number;
  positions: number;
  /** ms since epoch when the broker answered */
  at: number;
}

/** The last scheduled digest, ms since epoch; absent until the schedule first runs. */
export interface DigestRecord {
  /** DIGEST_CRON and DIGEST_TZ it follows: a changed schedule starts over (no "missed" time from the old one) */
  schedule: string;
  /** when the schedule was first seen running: due times before it were never missed */
  armedAt: number;
  /** the due time of the last digest posted (claimed before posting: never posted twice) */
  lastDue?: number;
  /** the end of the period the last digest covered: the next one starts here */
  lastTo?: number;
  /** counters at lastTo, for the next digest's differences (PM2's restarts, the gate's refusals since its controller started) */
  counters?: DigestCounters;
}

export interface DigestCounters {
  traderRestarts?: number;
  gateRefusals?: Partial<Record<string, number>>;
  /** the controller whose gate counted gateRefusals (data.controller.startedAt) */
  controllerStartedAt?: number;
}

export interface StoreData {
  schemaVersion: number;
  desired?: { state: 'running' | 'stopped'; at: string; by: string };
  /** resumedAt: after a resume, only trades since then count towards tripping it again */
  /** cause: which guard tripped it (the trade rate, ON_RUNAWAY; the loss limit, ON_LOSS) */
  breaker: { tripped: boolean; cause?: 'trade_rate' | 'loss_limit'; reason?: string; at?: string; by?: string; resumedAt?: number };
  /** The loss limit's memory: the peak equity since the trader's last start or resume, and the episode alerted. */
  loss?: { peak?: { equity: number; at: number }; alerted?: { key: string; at: number } };
  /** Schema 2 and before: the order gate's ledger, now in DATA_DIR/gate (gate-ledger.ts); moved there on the first load. */
  gate?: { forwarded: Array<{ orderId: string; at: number }> };
  /** The broker's own trading switch (BROKER_LOCK, lock/unlock), as last set or read; absent until known. */
  brokerLock?: BrokerLockState;
  audit: AuditEntry[];
  alerts: StoredAlert[];
  trades: {
    /**
     * The fills ledger's hot trades (the last two hours), oldest first, frozen: not written to this
     * document (record fills with Store.recordFills; older trades with Store.trades(from, to)).
     * A version 1 file held every trade here; they move to the ledger on the first load.
     */
    seen: readonly SeenTrade[];
    /** Transaction time (ISO) of the newest fill read; the next poll asks from a little before it. Never past now. */
    cursor?: string;
    /** Orders the controller itself caused (flatten's closing orders): seen, but not the trader's trades. */
    ownOrders?: Array<{ orderId: string; at: number; by: string }>;
    /**
     * Flattens that have begun closing: written before the close is sent, answered when the broker
     * names the closing orders. A fill that reduces one of these positions is held from judgement
     * meanwhile (see trade-window.ts), whatever reaches the watch first.
     */
    flattens?: FlattenIntent[];
    /** Trades seen while held, not yet handed to the foreign-trading check: it gets them once judged. */
    held?: string[];
  };
  watch: {
    tradeRate: { inEpisode: boolean; lastAlertedCount: number; episodeStartedAt?: number };
    duplicates: { lastPidSet?: string };
    processDown: boolean;
    crashLoop: { lastAlertedAt?: number };
    brokerUnreachable: boolean;
    /** The trade stream as the controller last saw it, for status from any process (the CLI). */
    stream?: { status: 'connecting' | 'connected' | 'reconnecting' | 'stopped'; since: number; lastError?: string; refused?: boolean };
    /** Fills while no copy of the trader runs here: one alert per episode, closed when a copy runs again. */
    foreignTrading: { inEpisode: boolean; since?: number; lastAt?: number; orderIds?: string[] };
    /** Fills of orders the order gate never saw: one alert per episode (an hour without one ends it). */
    gateBypass?: { inEpisode: boolean; since?: number; lastAt?: number; orderIds?: string[] };
    /** Positions held while no copy of the trader runs here (watch/unattended.ts); absent = none. ms since epoch. */
    unattended?: { since: number; lastAlertAt?: number; alerts?: number };
    /** set while polls keep seeing future-stamped fills, so the warning is raised once */
    futureFillWarned?: boolean;
  };
  discord: { statusMessageId?: string };
  /** The scheduled digest (DIGEST_CRON, core/digest.ts): what the last one covered, so the next starts there and none is posted twice. */
  digest?: DigestRecord;
  /** absent until the watch has read the account once */
  account?: AccountSnapshot;
  /**
   * The running controller's life signs. `heartbeatAt` is refreshed every ~30 s (not every second:
   * each refresh rewrites the file); `cleanExitAt` is set by a clean stop. A start that finds a
   * record without it knows the last controller died, and when it was last seen.
   */
  controller?: {
    pid: number;
    startedAt: number;
    heartbeatAt: number;
    cleanExitAt?: number;
    /** last sign of life before an unclean exit not yet reported (carried over if a restart dies too) */
    unreportedDownSince?: number;
  };
}

export function emptyStore(): StoreData {
  return {
    schemaVersion: SCHEMA_VERSION,
    breaker: { tripped: false },
    audit: [],
    alerts: [],
    trades: { seen: [] },
    watch: {
      tradeRate: { inEpisode: false, lastAlertedCount: 0 },
      duplicates: {},
      processDown: false,
      crashLoop: {},
      brokerUnreachable: false,
      foreignTrading: { inEpisode: false },
    },
    discord: {},
  };
}

/** Retention: what keeps the file bounded however long the controller runs. */
export const RETENTION = {
  auditEntries: 2000,
  deliveredAlerts: 500,
  tradeAgeMs: 48 * 3600_000,
  /** flatten intents kept (each only matters until it answers; the rest is history) */
  flattens: 50,
};
