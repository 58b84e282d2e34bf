// The operations every front offers (Discord, CLI, demo console), transport-free: each checks who
// may run it, runs it, writes the audit entry (who, what, arguments, outcome, duration) and returns
// plain data that a front renders.
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Account, Broker, Position } from '../broker/types.ts';
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import { OperationError, describeError, failed, refused, withTimeout } from '../errors.ts';
import { holdExclusive } from '../lock.ts';
import { redact, redactDeep, type Logger } from '../log.ts';
import type { AlertOutbox } from '../alerts/outbox.ts';
import type { Store } from '../store/store.ts';
import type { AccountSnapshot, AuditEntry, BrokerLockState, FlattenIntent, SeenTrade, StoredAlert, StoreData } from '../store/schema.ts';
import type { Duplicate, ProcessStatus, StartResult, StopDuplicatesResult, StopResult, Supervision } from '../supervisor/types.ts';
import { countedTrades, hourBuckets, traderTrades, withTrades } from '../watch/trade-window.ts';
import { flattenAccount, type FlattenReport } from './flatten.ts';
import { CONTROLLER, type RunawayBreaker } from './breaker.ts';
import type { BrokerLock, LockOpening } from './broker-lock.ts';
import { lossFigures, type LossFigures } from '../watch/loss-watch.ts';
import { buildPnlReport, buildSessionReport, parsePnlPeriod, type PnlReport, type SessionReport } from './review.ts';
import { buildDigest, type DigestPeriod, type DigestReport } from './digest.ts';
export { sessionSummary } from './review.ts';

/** A stop, with the report of the run it ended (absent when nothing was running). */
export type StopReport = StopResult & { session?: SessionReport };

/** Who is asking. Fronts build it: the CLI user is an operator (shell access), Discord checks roles. */
export interface Actor {
  /** "cli:<os user>", "discord:<user id>", "controller" */
  id: string;
  /** human-readable, for replies and the audit log */
  name: string;
  isOperator: boolean;
}

export { CONTROLLER } from './breaker.ts';
/** The configuration acting (ON_DUPLICATE=stop), so the audit log does not show a person. */
export const ON_DUPLICATE_POLICY: Actor = { id: 'policy:ON_DUPLICATE', name: 'ON_DUPLICATE=stop', isOperator: true };

export interface TradeSummary {
  /** set when fresh fills could not be read: the figures are what was last recorded */
  refreshError?: string;
  count: number;
  limit: number;
  /** last six 10-minute buckets, oldest first */
  buckets: number[];
  recent: SeenTrade[];
}

export interface StatusReport {
  process: ProcessStatus;
  desired?: StoreData['desired'];
  breaker: StoreData['breaker'];
  trades: TradeSummary;
  /** The last figures the watch read from the broker, with `at` (ms since epoch): status never waits on the broker. */
  account?: AccountSnapshot & { ageMs: number };
  /** the broker's trade stream: live in the controller, as last recorded elsewhere (the CLI) */
  stream?: StreamStatusReport;
  /** why the account part is missing */
  accountError?: string;
  /** the broker's own trading switch, as last set or read (with BROKER_LOCK=on, or once ever known) */
  brokerLock?: BrokerLockState & { setting: Config['brokerLock'] };
  /** the order gate, where it runs (the controller, with GATEWAY_ADDR) */
  gate?: GateStatus;
  /** the day's P/L against MAX_DAILY_LOSS and the drawdown against MAX_DRAWDOWN (with a loss limit set) */
  loss?: LossFigures;
  lastAlert?: StoredAlert;
}

/** The order gate as status shows it (the gate, src/gateway/, reports it; the core only passes it on). */
export interface GateStatus {
  mode: string;
  /** orders let through and not yet among the trades: they count towards the hour */
  pending: number;
  /** refusals in the last hour, by reason */
  refusedLastHour: Partial<Record<string, number>>;
  /** refusals since the controller started, by reason */
  refusedTotal: Partial<Record<string, number>>;
  /** whether MAX_OPEN_ORDERS / MAX_POSITION_NOTIONAL read the gate's model of the trader's book now (false: the broker); absent without one */
  bookLive?: boolean;
}

/** lock / unlock: the switch as it is now, and as it was. */
export interface LockReport {
  lock: BrokerLockState;
  was?: BrokerLockState;
}

export interface StreamStatusReport {
  status: 'connecting' | 'connected' | 'reconnecting' | 'stopped';
  since: number;
  lastError?: string;
  refused?: boolean;
  lastMessageAt?: number;
  /** true when read from the data file (another process runs the stream) */
  recorded: boolean;
}

export interface AccountReport {
  account: Account;
  positions: Position[];
}

export interface CoreDeps {
  config: Config;
  supervisor: Supervision;
  broker?: Broker;
  store: Store;
  outbox: AlertOutbox;
  /** the runaway breaker: resume clears it */
  breaker: RunawayBreaker;
  clock: Clock;
  logger: Logger;
  flattenVerifyTimeoutMs?: number;
  /** Reads new fills from the broker into the store (the trade watch's poll), when there is a broker. */
  refreshTrades?: () => Promise<unknown>;
  /** The live trade stream's state, in the process that runs it (the controller). */
  streamState?: () => Omit<StreamStatusReport, 'recorded'> | undefined;
  /** Records the account figures status shows (the account watch's refresh), when there is a broker. */
  refreshAccount?: () => Promise<unknown>;
  /** Judges the recorded fills again, without reading new ones (the trade watch's judge), when there is a broker. */
  judgeTrades?: () => Promise<unknown>;
  /** The broker's own trading switch (lock, unlock; lifted for flatten's closes), when there is a broker. */
  brokerLock?: BrokerLock;
  /** After every start or resume of the trader (the loss limit measures the drawdown from there). */
  onTraderStarted?: () => Promise<void>;
}

/** resume: the start, the breaker it cleared, and what it did with a broker lock. */
export type ResumeResult = StartResult & {
  breakerWas: StoreData['breaker'];
  /** lifted: the lock tradewarden had set; leftAlone: one set outside tradewarden (unlock lifts it) */
  brokerLock?: { lifted: BrokerLockState } | { leftAlone: BrokerLockState };
};

export class Core {
  /** the order gate, once the controller runs one: status shows its pending orders and refusals */
  private gate?: { status(): Promise<GateStatus> };

  constructor(private readonly deps: CoreDeps) {}

  /** The controller's order gate, for status and /metrics (the gate starts after the core). */
  useGate(gate: { status(): Promise<GateStatus> }): void {
    this.gate = gate;
  }

  async gateStatus(): Promise<GateStatus | undefined> {
    return this.gate?.status();
  }

  // ----- read-only -----

  /** Answers from PM2 and the store only: the account part is what the watch last recorded. */
  async status(): Promise<StatusReport> {
    const { supervisor, store, clock, broker, config } = this.deps;
    const [process, data, gate] = await Promise.all([supervisor.status(), store.read(), this.gateStatus()]);
    const accountInfo = data.account
      ? { account: { ...data.account, ageMs: Math.max(0, clock.now() - data.account.at) } }
      : { accountError: broker ? `not read yet (the watch reads it every ${config.tradePollSeconds} s)` : 'broker not configured (APCA_API_KEY_ID)' };
    return {
      process: redactDeep(process, config.secrets),
      desired: data.desired,
      breaker: data.breaker,
      trades: this.summarizeTrades(data, clock.now()),
      ...accountInfo,
      ...this.streamReport(data),
      ...(data.brokerLock || (config.brokerLock === 'on' && broker) ? { brokerLock: { locked: false, ours: false, ...data.brokerLock, setting: config.brokerLock } } : {}),
      ...(gate ? { gate } : {}),
      ...((config.maxDailyLoss || config.maxDrawdown) && data.account ? { loss: lossFigures(config, data.account, data.loss?.peak?.equity) } : {}),
      lastAlert: data.alerts.at(-1),
    };
  }

  private streamReport(data: StoreData): { stream?: StreamStatusReport } {
    if (!this.deps.broker) return {};
    const live = this.deps.streamState?.();
    if (live) return { stream: { ...live, recorded: false } };
    return data.watch.stream ? { stream: { ...data.watch.stream, recorded: true } } : {};
  }

  /** Fresh from the broker when it answers (the CLI may run while no controller polls). */
  async trades(): Promise<TradeSummary> {
    const refreshError = await this.deps.refreshTrades?.().then(
      () => undefined,
      (error: unknown) => describeError(error),
    );
    const summary = this.summarizeTrades(await this.deps.store.read(), this.deps.clock.now());
    return refreshError ? { ...summary, refreshError } : summary;
  }

  async account(): Promise<AccountReport> {
    const broker = this.requireBroker();
    const [account, positions] = await Promise.all([broker.account(), broker.positions()]);
    return { account, positions };
  }

  /** Equity now, P/L over the period, best and worst step, and the curve (everyone may ask). */
  async pnl(period?: string): Promise<PnlReport> {
    const chosen = parsePnlPeriod(period);
    return buildPnlReport(this.requireBroker(), chosen, this.deps.clock.now());
  }

  /** The digest (core/digest.ts): on demand, the period since the last scheduled one (or 24 h) up to now. */
  digest(period?: DigestPeriod): Promise<DigestReport> {
    const { config, broker, store, supervisor, clock } = this.deps;
    return buildDigest({ config, broker, store, supervisor, clock, gate: () => this.gateStatus() }, period);
  }

  async alerts(limit = 20): Promise<StoredAlert[]> {
    return this.deps.outbox.recent(limit);
  }

  /** Command lines are shown redacted: a bot started with its key as an argument is not rare. */
  async duplicates(): Promise<Duplicate[]> {
    return redactDeep(await this.deps.supervisor.scanDuplicates(), this.deps.config.secrets);
  }

  /** The trader's last log lines with every configured secret removed. */
  async logs(lines = 30): Promise<string> {
    const text = await this.deps.supervisor.logs(Math.max(1, Math.min(lines, 500)));
    return redact(text, this.deps.config.secrets);
  }

  async audit(limit = 50): Promise<AuditEntry[]> {
    const data = await this.deps.store.read();
    return data.audit.slice(-limit).reverse();
  }

  // ----- changes: operators only, audited -----

  start(actor: Actor): Promise<StartResult> {
    return this.mutate(actor, 'start', {}, async () => {
      const result = await this.deps.supervisor.start();
      await this.setDesired('running', actor);
      await this.traderStarted();
      return result;
    });
  }

  stop(actor: Actor): Promise<StopReport> {
    return this.mutate(actor, 'stop', {}, async () => {
      const startedAt = await this.runStartedAt();
      // Desired first: the health watch must not report a stop it was asked for as a crash. But a
      // full disk must not keep the trader running: the stop goes ahead if the record fails.
      const recorded = await this.recordBestEffort('the wanted state (stopped)', () => this.setDesired('stopped', actor));
      const stopped = await this.deps.supervisor.stop();
      if (!recorded) await this.recordBestEffort('the wanted state (stopped), after the stop', () => this.setDesired('stopped', actor), { alert: false });
      // An automatic stop (the breaker) comes straight from a poll: the fills are fresh already.
      const session = stopped.wasRunning ? await this.sessionReport(startedAt, actor !== CONTROLLER) : undefined;
      // Positions left with nothing to run them: the report says when the watch will warn about them.
      if (session?.openPositions?.length && this.deps.config.unattendedSeconds !== undefined) session.unattendedAlertInMs = this.deps.config.unattendedSeconds * 1000;
      return session ? { ...stopped, session } : stopped;
    });
  }

  restart(actor: Actor): Promise<StartResult & { stopped: StopReport }> {
    return this.mutate(actor, 'restart', {}, async () => {
      const startedAt = await this.runStartedAt();
      const result = await this.deps.supervisor.restart();
      await this.setDesired('running', actor);
      await this.traderStarted();
      const session = result.stopped.wasRunning ? await this.sessionReport(startedAt) : undefined;
      return session ? { ...result, stopped: { ...result.stopped, session } } : result;
    });
  }

  /**
   * Clears a tripped breaker, lifts the broker lock tradewarden set (a lock set outside it is left
   * alone and said), and starts the trader again; a refused start leaves the breaker as it was.
   */
  resume(actor: Actor): Promise<ResumeResult> {
    return this.mutate(actor, 'resume', {}, async () => {
      const { breaker, supervisor, brokerLock } = this.deps;
      const breakerWas = await breaker.clear();
      let result: StartResult;
      let lock: ResumeResult['brokerLock'];
      try {
        const held = await brokerLock?.state();
        if (held?.ours && (held.locked || held.failing)) {
          await brokerLock!.unlock(actor.id);
          lock = { lifted: held };
        } else if (held?.locked) lock = { leftAlone: held };
        result = await supervisor.start();
      } catch (error) {
        // E.g. the trader is still running because the halt failed: the breaker must still hold.
        await breaker.restore(breakerWas);
        throw error;
      }
      await this.setDesired('running', actor);
      await this.traderStarted();
      return { ...result, breakerWas, ...(lock ? { brokerLock: lock } : {}) };
    });
  }

  /** Sets the broker's own trading switch: no new order from any copy, anywhere, until unlock. */
  lock(actor: Actor): Promise<LockReport> {
    return this.mutate(actor, 'lock', {}, async () => {
      const brokerLock = this.requireBrokerLock();
      const was = await brokerLock.state();
      return { lock: await brokerLock.lock(actor.id, `asked by ${actor.name}`), ...(was ? { was } : {}) };
    });
  }

  /** Lifts the broker's trading switch, whoever set it (the breaker, an operator, the broker's dashboard). */
  unlock(actor: Actor): Promise<LockReport> {
    return this.mutate(actor, 'unlock', {}, async () => {
      const brokerLock = this.requireBrokerLock();
      const was = await brokerLock.state();
      return { lock: await brokerLock.unlock(actor.id), ...(was ? { was } : {}) };
    });
  }

  /** Ends only PIDs that a scan made now still reports (an alert's button may be hours old). */
  stopDuplicates(actor: Actor, pids: number[]): Promise<StopDuplicatesResult> {
    return this.mutate(actor, 'stop-duplicates', { pids }, async () => {
      await this.deps.supervisor.scanDuplicates();
      return this.deps.supervisor.stopDuplicates(pids);
    });
  }

  /**
   * One flatten at a time, across processes (CLI + controller): two interleaved flattens cancel
   * each other's closing orders and both reports lie. The second is refused, naming the first.
   */
  flatten(actor: Actor): Promise<FlattenReport> {
    return this.mutate(actor, 'flatten', {}, () =>
      holdExclusive(path.join(this.deps.config.dataDir, 'flatten'), `${actor.name} at ${new Date(this.deps.clock.now()).toISOString()}`, () => this.runFlatten(actor), {
        busy: (holder) => refused(`another flatten is already running${holder ? ` (started by ${holder})` : ''}; wait for its report, then check /account`),
        diskProblem: (error) => this.deps.logger.error(`flatten runs without its cross-process lock: ${describeError(error)}`),
      }),
    );
  }

  /** ON_DUPLICATE=stop: duplicates are ended on sight, audited as the policy, not as a person. */
  endDuplicatesByPolicy(duplicates: Duplicate[]): Promise<StopDuplicatesResult> {
    return this.stopDuplicates(ON_DUPLICATE_POLICY, duplicates.map((d) => d.pid));
  }

  /** Audits a change refused before it reached the core (a front's own authorization check). */
  async recordRefusal(actor: Actor, what: string, reason: string): Promise<void> {
    await this.deps.store.audit({
      at: new Date(this.deps.clock.now()).toISOString(),
      who: actor.id,
      what,
      outcome: 'refused',
      message: reason,
      durationMs: 0,
    });
  }

  // ----- internals -----

  /** When the running trader's run began, read before it is stopped (undefined if unknown or not running). */
  private async runStartedAt(): Promise<number | undefined> {
    try {
      return (await withTimeout(this.deps.supervisor.status(), 3000, 'trader status')).startedAt;
    } catch {
      return undefined;
    }
  }

  /**
   * The stopped run's report. Never fails the stop it follows: what cannot be read is named in it,
   * and if the report itself cannot be made the stop is reported without it.
   */
  private async sessionReport(startedAt: number | undefined, refresh = true): Promise<SessionReport | undefined> {
    const endedAt = this.deps.clock.now();
    try {
      const refreshError = !refresh
        ? undefined
        : await this.deps.refreshTrades?.().then(
            () => undefined,
            (error: unknown) => describeError(error),
          );
      const data = await this.deps.store.read();
      // The run's trades from the ledger (a run can be longer than the hot hours); from its first millisecond on.
      const runTrades = this.deps.store.trades(startedAt === undefined ? 0 : startedAt - 1, endedAt);
      const report = await buildSessionReport({ broker: this.deps.broker, trades: traderTrades(withTrades(data, runTrades), endedAt), startedAt, endedAt });
      if (refreshError) report.missing.push(`fresh fills (trades counted from what was last recorded): ${refreshError}`);
      return redactDeep(report, this.deps.config.secrets);
    } catch (error) {
      this.deps.logger.warn(`stop report not made: ${describeError(error)}`);
      return undefined;
    }
  }

  private async runFlatten(actor: Actor): Promise<FlattenReport> {
    const broker = this.requireBroker();
    const flattenId = randomUUID();
    const by = `flatten:${actor.id}`;
    let judging: Promise<void> | undefined;
    let opening: LockOpening | undefined;
    const brokerLock = this.deps.brokerLock;
    const report = await flattenAccount({
      broker,
      // The broker blocks closing orders too: its lock is lifted for the closes and set back after.
      aroundClose: brokerLock
        ? async (close) => {
            const { result, opening: opened } = await brokerLock.whileOpen(close);
            opening = opened;
            return result;
          }
        : undefined,
      // Act first, record after: a full DATA_DIR must not keep the trader trading or the positions open.
      stopTrader: async () => {
        const recorded = await this.recordBestEffort('the wanted state (stopped)', () => this.setDesired('stopped', actor));
        const stopped = await this.deps.supervisor.stop();
        if (!recorded) await this.recordBestEffort('the wanted state (stopped), after the stop', () => this.setDesired('stopped', actor), { alert: false });
        return stopped;
      },
      // Before the close is sent, the watch learns what is being closed: the trade stream may bring
      // the closing fills before the broker answers, and they must not be judged as the trader's.
      onClosing: (positions) =>
        this.recordBestEffort(`flatten's positions being closed (${positions.length})`, () =>
          this.deps.store.update((data) => {
            const intent: FlattenIntent = { id: flattenId, by, startedAt: this.deps.clock.now(), positions: positions.map((p) => ({ symbol: p.symbol, side: p.side })) };
            data.trades.flattens = [...(data.trades.flattens ?? []), intent];
          }),
        ).then(() => undefined),
      onClosingOrders: async (orderIds) => {
        const recorded = await this.recordBestEffort(`flatten's closing orders (${orderIds.length})`, () =>
          this.deps.store.update((data) => {
            const at = this.deps.clock.now();
            const known = new Set((data.trades.ownOrders ?? []).map((o) => o.orderId));
            data.trades.ownOrders = [...(data.trades.ownOrders ?? []), ...orderIds.filter((id) => !known.has(id)).map((orderId) => ({ orderId, at, by }))];
            const intent = data.trades.flattens?.find((f) => f.id === flattenId);
            if (intent) intent.answeredAt = at;
          }),
        );
        // What the intent held is judged now, not at the next fill or poll: a copy that traded
        // during the flatten is alerted on (and halted) while the flatten goes on verifying.
        if (recorded) judging = this.deps.judgeTrades?.().then(() => undefined, (error: unknown) => this.deps.logger.warn(`judging the fills held during the flatten: ${describeError(error)}`));
      },
      verifyTimeoutMs: this.deps.flattenVerifyTimeoutMs,
    });
    if (opening) report.brokerLock = opening;
    await judging;
    // Status must not go on showing the positions that were just closed.
    await this.deps.refreshAccount?.().catch((error: unknown) => this.deps.logger.warn(`account figures after flatten: ${describeError(error)}`));
    const failedSymbols = report.symbols.filter((s) => s.outcome === 'failed').map((s) => s.symbol);
    const queued = report.symbols.filter((s) => s.outcome === 'queued').map((s) => s.symbol);
    // raiseLoud: the report is what the operator needs, whether or not the disk can record it.
    await this.deps.outbox.raiseLoud({
      kind: 'flatten_result',
      severity: report.flat ? 'info' : 'critical',
      title: report.flat ? 'Flatten done: account is flat' : 'Flatten NOT complete',
      body: [
        `Requested by ${actor.name}. ${report.symbols.length} position(s) before, ${report.ordersCanceled} order(s) canceled.`,
        failedSymbols.length ? `Failed: ${failedSymbols.join(', ')}.` : '',
        queued.length ? `Queued: ${queued.join(', ')}.` : '',
        report.error ? `Error: ${report.error}.` : '',
      ].filter(Boolean).join(' '),
      facts: { flat: report.flat, symbols: report.symbols, remainingOpenOrders: report.remainingOpenOrders },
    });
    return report;
  }

  private summarizeTrades(data: StoreData, now: number): TradeSummary {
    const inHour = countedTrades(data, now);
    return {
      count: inHour.length,
      limit: this.deps.config.maxTradesPerHour,
      buckets: hourBuckets(traderTrades(data, now), now),
      recent: this.deps.store.latestTrades(20),
    };
  }

  /** A new run of the trader: what is measured per run (the drawdown's peak) starts over; never fails the start. */
  private async traderStarted(): Promise<void> {
    await this.deps.onTraderStarted?.().catch((error: unknown) => this.deps.logger.warn(`after the start: ${describeError(error)}`));
  }

  private requireBrokerLock(): BrokerLock {
    if (!this.deps.brokerLock && this.deps.config.ccxt) {
      throw refused(`${this.deps.config.ccxt.exchange} has no account switch that blocks new orders (Alpaca's suspend_trade): lock and unlock need BROKER=alpaca; stop the trader instead (ON_RUNAWAY=stop halts every copy)`);
    }
    if (!this.deps.brokerLock) throw failed('the broker is not configured: set APCA_API_KEY_ID and APCA_API_SECRET_KEY');
    return this.deps.brokerLock;
  }

  private requireBroker(): Broker {
    if (!this.deps.broker) throw failed('the broker is not configured: set APCA_API_KEY_ID and APCA_API_SECRET_KEY');
    return this.deps.broker;
  }

  private async setDesired(state: 'running' | 'stopped', actor: Actor): Promise<void> {
    await this.deps.store.update((data) => {
      data.desired = { state, at: new Date(this.deps.clock.now()).toISOString(), by: actor.id };
    });
  }

  /** Authorization + audit around every change (invariant 6). */
  private async mutate<T>(actor: Actor, what: string, args: Record<string, unknown>, work: () => Promise<T>): Promise<T> {
    const startedAt = Date.now();
    const entry = (outcome: AuditEntry['outcome'], message?: string): AuditEntry => ({
      at: new Date(this.deps.clock.now()).toISOString(),
      who: actor.id,
      what,
      ...(Object.keys(args).length ? { args } : {}),
      outcome,
      ...(message ? { message: redact(message, this.deps.config.secrets) } : {}),
      durationMs: Date.now() - startedAt,
    });
    if (!actor.isOperator) {
      const error = refused(`${what} needs an operator; ${actor.name} is not one`);
      await this.deps.store.audit(entry('refused', error.message));
      throw error;
    }
    let result: T;
    try {
      result = await work();
    } catch (error) {
      const kind = error instanceof OperationError && error.kind === 'refused' ? 'refused' : 'failed';
      await this.deps.store.audit(entry(kind, describeError(error))).catch(() => undefined);
      throw error instanceof OperationError ? error : failed(`${what} failed: ${describeError(error)}`, error);
    }
    // The action is done: a failure to write its audit entry is reported loudly, never turned into "failed".
    await this.recordBestEffort(`the audit entry for ${what} by ${actor.id} (outcome ok)`, () => this.deps.store.audit(entry('ok')));
    return result;
  }

  /**
   * Writes a record and reports a failure loudly (error log + an alert that reaches the sinks even
   * unsaved) instead of throwing: used where the action matters more than its record. Returns
   * whether the record was written.
   */
  private async recordBestEffort(what: string, write: () => Promise<unknown>, options: { alert?: boolean } = {}): Promise<boolean> {
    try {
      await write();
      return true;
    } catch (error) {
      const reason = describeError(error);
      const cause = (error as { cause?: NodeJS.ErrnoException }).cause ?? (error as NodeJS.ErrnoException);
      const hint = cause?.code === 'ENOSPC' ? ' DATA_DIR is full: free space (the trader\'s logs live in DATA_DIR/logs by default).' : '';
      this.deps.logger.error(`COULD NOT RECORD ${what} in ${this.deps.store.file}: ${reason}.${hint} The action itself went ahead.`);
      if (options.alert !== false) {
        await this.deps.outbox.raiseLoud({
          kind: 'record_failed',
          severity: 'critical',
          key: `record_failed:${what}`,
          title: 'tradewarden could not write its data file',
          body: `Could not record ${what}: ${reason}.${hint} The action itself went ahead; audit, alerts and the trade count are not being saved until this is fixed.`,
          facts: { what, reason, file: this.deps.store.file },
        });
      }
      return false;
    }
  }
}
