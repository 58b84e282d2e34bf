// The operations every front offers (Discord, CLI, demo console), transport-free: each checks who
// may run it, runs it, writes the audit entry (who, what, arguments, outcome, duration) and returns
// plain data that a front renders.
import type { Account, Broker, Position } from '../broker/types.ts';
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import { OperationError, describeError, failed, refused, withTimeout } from '../errors.ts';
import { redact, redactDeep, type Logger } from '../log.ts';
import type { AlertOutbox } from '../alerts/outbox.ts';
import type { Store } from '../store/store.ts';
import type { AuditEntry, SeenTrade, StoredAlert, StoreData } from '../store/schema.ts';
import type { Duplicate, ProcessStatus, StartResult, StopDuplicatesResult, StopResult, Supervision } from '../supervisor/types.ts';
import { hourBuckets, tradesInLastHour } from '../watch/trade-window.ts';
import { flattenAccount, type FlattenReport } from './flatten.ts';
import { buildPnlReport, buildSessionReport, parsePnlPeriod, type PnlReport, type SessionReport } from './review.ts';

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

export const CONTROLLER: Actor = { id: 'controller', name: 'tradewarden', isOperator: true };

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
  account?: { equity: number; dayPnl: number; positions: number };
  /** why the account part is missing */
  accountError?: string;
  lastAlert?: StoredAlert;
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
  clock: Clock;
  logger: Logger;
  /** time-outs for the broker part of /bot status, so status stays fast when the broker is slow */
  statusBrokerTimeoutMs?: number;
  flattenVerifyTimeoutMs?: number;
  /** Reads new fills from the broker into the store (the trade watch's poll), when there is a broker. */
  refreshTrades?: () => Promise<unknown>;
}

export class Core {
  constructor(private readonly deps: CoreDeps) {}

  // ----- read-only -----

  async status(): Promise<StatusReport> {
    const { supervisor, store, clock, broker } = this.deps;
    const accountPart = broker
      ? withTimeout(Promise.all([broker.account(), broker.positions()]), this.deps.statusBrokerTimeoutMs ?? 1500, 'broker account')
          .then(([account, positions]) => ({ account: { equity: account.equity, dayPnl: account.dayPnl, positions: positions.length } }))
          .catch((error: unknown) => ({ accountError: describeError(error) }))
      : Promise.resolve({ accountError: 'broker not configured (APCA_API_KEY_ID)' });
    const [process, data, accountInfo] = await Promise.all([supervisor.status(), store.read(), accountPart]);
    return {
      process: redactDeep(process, this.deps.config.secrets),
      desired: data.desired,
      breaker: data.breaker,
      trades: this.summarizeTrades(data, clock.now()),
      ...accountInfo,
      lastAlert: data.alerts.at(-1),
    };
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
      return result;
    });
  }

  stop(actor: Actor): Promise<StopReport> {
    return this.mutate(actor, 'stop', {}, async () => {
      const startedAt = await this.runStartedAt();
      // Desired first: the health watch must not report a stop it was asked for as a crash.
      await this.setDesired('stopped', actor);
      const stopped = await this.deps.supervisor.stop();
      // An automatic stop (the breaker) comes straight from a poll: the fills are fresh already.
      const session = stopped.wasRunning ? await this.sessionReport(startedAt, actor !== CONTROLLER) : undefined;
      return session ? { ...stopped, session } : stopped;
    });
  }

  restart(actor: Actor): Promise<StartResult & { stopped: StopReport }> {
    return this.mutate(actor, 'restart', {}, async () => {
      const startedAt = await this.runStartedAt();
      const result = await this.deps.supervisor.restart();
      await this.setDesired('running', actor);
      const session = result.stopped.wasRunning ? await this.sessionReport(startedAt) : undefined;
      return session ? { ...result, stopped: { ...result.stopped, session } } : result;
    });
  }

  /** Clears a tripped breaker and starts the trader again; a refused start leaves the breaker as it was. */
  resume(actor: Actor): Promise<StartResult & { breakerWas: StoreData['breaker'] }> {
    return this.mutate(actor, 'resume', {}, async () => {
      const { store, clock, supervisor } = this.deps;
      const breakerWas = await store.update((data) => {
        const was = { ...data.breaker };
        data.breaker = { tripped: false, resumedAt: was.tripped ? clock.now() : data.breaker.resumedAt };
        return was;
      });
      let result: StartResult;
      try {
        result = await supervisor.start();
      } catch (error) {
        // E.g. the trader is still running because the halt failed: the breaker must still hold.
        if (breakerWas.tripped) {
          await store.update((data) => {
            if (!data.breaker.tripped) data.breaker = breakerWas;
          });
        }
        throw error;
      }
      await this.setDesired('running', actor);
      return { ...result, breakerWas };
    });
  }

  /** Ends only PIDs that a scan made now still reports (an alert's button may be hours old). */
  stopDuplicates(actor: Actor, pids: number[]): Promise<StopDuplicatesResult> {
    return this.mutate(actor, 'stop-duplicates', { pids }, async () => {
      await this.deps.supervisor.scanDuplicates();
      return this.deps.supervisor.stopDuplicates(pids);
    });
  }

  flatten(actor: Actor): Promise<FlattenReport> {
    return this.mutate(actor, 'flatten', {}, () => this.runFlatten(actor));
  }

  /**
   * The breaker (ON_RUNAWAY): a trade-rate breach stops the trader through PM2 (so auto-restart
   * cannot bring it back) and trips a persisted breaker that `start` respects until `resume`.
   * Called on every poll over the limit; trips once. After a resume the trader gets a fresh
   * allowance: only trades since the resume count, so a still-runaway trader trips it again.
   */
  async onRunaway(tradesInHour: SeenTrade[]): Promise<void> {
    const { config, store, outbox, logger, clock } = this.deps;
    if (config.onRunaway === 'alert') return;
    const tripped = await store.update((data) => {
      if (data.breaker.tripped) return undefined;
      const counted = tradesInHour.filter((t) => t.at > (data.breaker.resumedAt ?? 0)).length;
      if (counted <= config.maxTradesPerHour) return undefined;
      const reason = `${counted} trades in the last hour${data.breaker.resumedAt ? ' since the last resume' : ''} (limit ${config.maxTradesPerHour})`;
      data.breaker = { tripped: true, reason, at: new Date(clock.now()).toISOString(), by: CONTROLLER.id };
      return { reason, counted };
    });
    if (!tripped) return;
    let stopLine: string;
    let session: SessionReport | undefined;
    try {
      const stopped = await this.stop(CONTROLLER);
      session = stopped.session;
      stopLine = stopped.wasRunning ? `Trader stopped (PID ${stopped.pid}).` : 'Trader was not running.';
    } catch (error) {
      stopLine = `Stopping the trader FAILED: ${describeError(error)}. Stop it by hand.`;
      logger.error(stopLine);
    }
    await outbox.raise({
      kind: 'breaker_tripped',
      severity: 'critical',
      title: 'Breaker tripped: trading halted',
      body: `${tripped.reason}. ${stopLine} Start is refused until an operator runs resume.${session ? `\n${sessionSummary(session)}` : ''}`,
      facts: { count: tripped.counted, limit: config.maxTradesPerHour, action: config.onRunaway, ...(session ? { session } : {}) },
    });
    if (config.onRunaway === 'flatten') await this.flatten(CONTROLLER).catch((e) => logger.error(`flatten after runaway: ${describeError(e)}`));
  }

  /** Refusal used by the supervisor before any start (called inside its exactly-one guard). */
  async assertBreakerClear(): Promise<void> {
    const data = await this.deps.store.read();
    if (data.breaker.tripped) {
      throw refused(`the breaker is tripped (${data.breaker.reason ?? 'no reason recorded'}, at ${data.breaker.at ?? '?'}); an operator must run resume`);
    }
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
      const report = await buildSessionReport({ broker: this.deps.broker, trades: data.trades.seen, startedAt, endedAt });
      if (refreshError) report.missing.push(`fresh fills (trades counted from what was last recorded): ${refreshError}`);
      return redactDeep(report, this.deps.config.secrets);
    } catch (error) {
      this.deps.logger.warn(`stop report not made: ${describeError(error)}`);
      return undefined;
    }
  }

  private async runFlatten(actor: Actor): Promise<FlattenReport> {
    const broker = this.requireBroker();
    const report = await flattenAccount({
      broker,
      stopTrader: async () => {
        await this.setDesired('stopped', actor);
        return this.deps.supervisor.stop();
      },
      verifyTimeoutMs: this.deps.flattenVerifyTimeoutMs,
    });
    const failedSymbols = report.symbols.filter((s) => s.outcome === 'failed').map((s) => s.symbol);
    const queued = report.symbols.filter((s) => s.outcome === 'queued').map((s) => s.symbol);
    await this.deps.outbox.raise({
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
    const inHour = tradesInLastHour(data.trades.seen, now);
    return {
      count: inHour.length,
      limit: this.deps.config.maxTradesPerHour,
      buckets: hourBuckets(data.trades.seen, now),
      recent: [...data.trades.seen].sort((a, b) => b.at - a.at).slice(0, 20),
    };
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
    try {
      const result = await work();
      await this.deps.store.audit(entry('ok'));
      return result;
    } catch (error) {
      const kind = error instanceof OperationError && error.kind === 'refused' ? 'refused' : 'failed';
      await this.deps.store.audit(entry(kind, describeError(error))).catch(() => undefined);
      throw error instanceof OperationError ? error : failed(`${what} failed: ${describeError(error)}`, error);
    }
  }
}

/** One paragraph for alerts: the session in the words of the operators' "before stopping" checklist. */
export function sessionSummary(session: SessionReport): string {
  const pnl = session.pnl !== undefined ? `${session.pnl < 0 ? '-' : '+'}$${Math.abs(session.pnl).toFixed(2)}` : 'unknown';
  const positions = session.openPositions === undefined ? 'unknown' : session.openPositions.length ? session.openPositions.map((p) => `${p.symbol} ${p.qty}`).join(', ') : 'none';
  return `Session: ${session.trades} trade(s), P/L ${pnl}, positions left open: ${positions}.${session.missing.length ? ` Missing: ${session.missing.join('; ')}.` : ''}`;
}
