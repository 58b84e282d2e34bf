// The runaway breaker (ON_RUNAWAY), a unit beside the core: a trade-rate breach over the limit
// halts every copy of the trader — the PM2 trader, through the core's audited stop (so PM2's
// auto-restart cannot bring it back), and every duplicate a scan made at that moment attributes to
// it — and trips a persisted breaker that every start respects until an operator resumes. Called on
// every count over the limit (poll or stream); trips once. After a resume the trader gets a fresh
// allowance: only trades since the resume count, so a still-runaway trader trips it again. Flatten
// (ON_RUNAWAY=flatten) runs only once no copy is left to open positions.
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import { describeError, refused } from '../errors.ts';
import { redactDeep, type Logger } from '../log.ts';
import type { AlertOutbox } from '../alerts/outbox.ts';
import type { Store } from '../store/store.ts';
import type { SeenTrade, StoreData } from '../store/schema.ts';
import type { Duplicate, StopDuplicatesResult, Supervision } from '../supervisor/types.ts';
import type { Actor, StopReport } from './operations.ts';
import { sessionSummary, type SessionReport } from './review.ts';
import type { BrokerLock } from './broker-lock.ts';

export type BreakerState = StoreData['breaker'];

/** Who trips it: the controller itself, as the audit log names it. */
export const CONTROLLER: Actor = { id: 'controller', name: 'tradewarden', isOperator: true };

/** What the breaker halts through: the core's operations, so a halt is audited like any stop. */
export interface Halt {
  /** the stop, with the session it ended (the stop report) */
  stop(actor: Actor): Promise<StopReport>;
  stopDuplicates(actor: Actor, pids: number[]): Promise<StopDuplicatesResult>;
  flatten(actor: Actor): Promise<unknown>;
}

/** What the breaker's halt did, PID by PID. */
export interface HaltReport {
  ended: Array<{ pid: number; how: string; command: string }>;
  /** copies still running after the halt (flatten is then not run) */
  survivors: Array<{ pid: number; command: string }>;
  /** the same, in sentences for the alert */
  lines: string[];
  /** the PM2 trader's run that the halt ended: trades, P/L, positions left open */
  session?: SessionReport;
}

export interface BreakerDeps {
  config: Pick<Config, 'onRunaway' | 'onLoss' | 'maxTradesPerHour' | 'trading' | 'secrets' | 'brokerLock'>;
  /** BROKER_LOCK=on: the account's own switch, set at the trip beside the halt */
  brokerLock?: BrokerLock;
  /** read-only here: the scan at the trip and the look after the halt; every change goes through the core */
  supervisor: Pick<Supervision, 'scanDuplicates' | 'status'>;
  store: Store;
  outbox: AlertOutbox;
  clock: Clock;
  logger: Logger;
}

export class RunawayBreaker {
  private halt?: Halt;

  constructor(private readonly deps: BreakerDeps) {}

  /** Set once the core exists (the core's start asks this breaker; this breaker halts through the core). */
  haltThrough(halt: Halt): void {
    this.halt = halt;
  }

  /** Refusal made before any start (inside the supervisor's exactly-one guard). */
  async assertClear(): Promise<void> {
    const data = await this.deps.store.read();
    if (data.breaker.tripped) {
      throw refused(`the breaker is tripped (${data.breaker.reason ?? 'no reason recorded'}, at ${data.breaker.at ?? '?'}); an operator must run resume`);
    }
  }

  /** Clears it (resume); returns what it was, for `restore` when the start that follows fails. */
  async clear(): Promise<BreakerState> {
    const { store, clock } = this.deps;
    return store.update((data) => {
      const was = { ...data.breaker };
      data.breaker = { tripped: false, resumedAt: was.tripped ? clock.now() : data.breaker.resumedAt };
      return was;
    });
  }

  /** Puts a cleared breaker back (e.g. the trader is still running because the halt failed). */
  async restore(was: BreakerState): Promise<void> {
    if (!was.tripped) return;
    await this.deps.store.update((data) => {
      if (!data.breaker.tripped) data.breaker = was;
    });
  }

  /** The trade watch's report of a rolling hour over the limit (ON_RUNAWAY). */
  async onRunaway(tradesInHour: SeenTrade[]): Promise<void> {
    const { config, store, clock } = this.deps;
    if (config.onRunaway === 'alert') return;
    const tripped = await store.update((data) => {
      if (data.breaker.tripped) return undefined;
      const counted = tradesInHour.filter((t) => t.at >= (data.breaker.resumedAt ?? 0)).length;
      if (counted <= config.maxTradesPerHour) return undefined;
      const reason = `${counted} trades in the last hour${data.breaker.resumedAt ? ' since the last resume' : ''} (limit ${config.maxTradesPerHour})`;
      data.breaker = { tripped: true, cause: 'trade_rate', reason, at: new Date(clock.now()).toISOString(), by: CONTROLLER.id };
      return { reason, counted };
    });
    if (!tripped) return;
    await this.halted(tripped.reason, config.onRunaway, { count: tripped.counted, limit: config.maxTradesPerHour });
  }

  /** The loss watch's report of a loss past MAX_DAILY_LOSS or MAX_DRAWDOWN (ON_LOSS). */
  async onLoss(reason: string, facts: Record<string, unknown>): Promise<void> {
    const { config, store, clock } = this.deps;
    if (config.onLoss === 'alert') return;
    const tripped = await store.update((data) => {
      if (data.breaker.tripped) return false;
      data.breaker = { tripped: true, cause: 'loss_limit', reason, at: new Date(clock.now()).toISOString(), by: CONTROLLER.id };
      return true;
    });
    if (tripped) await this.halted(reason, config.onLoss, facts);
  }

  /**
   * A trip, whatever its cause: the broker lock (BROKER_LOCK=on), every copy halted, the alert,
   * then flatten when the cause's action says so and no copy is left to open positions.
   */
  private async halted(reason: string, action: 'stop' | 'flatten', facts: Record<string, unknown>): Promise<void> {
    const { outbox, logger } = this.deps;
    // The broker lock first and without waiting for the halt: it stops every copy, even those no
    // scan can see, within a broker round trip of the crossing.
    const locking = this.lockAtBroker(reason);
    const halt = await this.haltEveryCopy();
    const lock = await locking;
    const flattenLine =
      action !== 'flatten' ? '' : halt.survivors.length ? ` Flatten NOT run: ${halt.survivors.length} cop${halt.survivors.length === 1 ? 'y' : 'ies'} survived and would open new positions; end ${halt.survivors.length === 1 ? 'it' : 'them'}, then flatten.` : ' Flattening now.';
    await outbox.raise({
      kind: 'breaker_tripped',
      severity: 'critical',
      title: 'Breaker tripped: trading halted',
      // The session last: the operators' "before stopping" checklist, on its own line.
      body: `${reason}. ${halt.lines.join(' ')}${lock?.line ?? ''}${flattenLine} Start is refused until an operator runs resume.${halt.session ? `\n${sessionSummary(halt.session)}` : ''}`,
      facts: {
        ...facts,
        action,
        ended: halt.ended,
        survivors: halt.survivors,
        ...(lock ? { brokerLocked: lock.held } : {}),
        ...(halt.session ? { session: halt.session } : {}),
      },
    });
    if (action === 'flatten' && !halt.survivors.length && this.halt) {
      await this.halt.flatten(CONTROLLER).catch((e: unknown) => logger.error(`flatten after the breaker tripped: ${describeError(e)}`));
    }
  }

  /** BROKER_LOCK=on: suspends trading at the broker; whether it holds, and the sentence the trip's alert says it with. */
  private async lockAtBroker(reason: string): Promise<{ held: boolean; line: string } | undefined> {
    const { config, brokerLock } = this.deps;
    if (config.brokerLock !== 'on') return undefined;
    if (!brokerLock) return { held: false, line: ' The account is NOT locked at the broker: no broker is configured.' };
    const outcome = await brokerLock.holdLocked(CONTROLLER.id, `breaker: ${reason}`);
    return outcome.held
      ? { held: true, line: ' Account LOCKED at the broker (suspend_trade): no new order from any copy anywhere; resume lifts it.' }
      : { held: false, line: ` The account is NOT LOCKED at the broker (${outcome.error}): retrying until it holds; lock it in the broker's dashboard if this persists.` };
  }

  /**
   * The halt: scan now (not at the next scheduled scan), stop the PM2 trader, end every duplicate
   * the scan found (PM2 entries through PM2; others SIGTERM, then SIGKILL, each PID only if its
   * start time still matches), then look again. Each step is audited as the controller.
   */
  private async haltEveryCopy(): Promise<HaltReport> {
    const { supervisor, logger, config } = this.deps;
    const ended: HaltReport['ended'] = [];
    const lines: string[] = [];
    const halt = this.halt;
    if (!halt) {
      lines.push('Nothing to halt through (the core was not attached): stop every copy by hand.');
      logger.error('breaker: nothing to halt through (the core was not attached)');
    }
    const duplicates = await supervisor.scanDuplicates().catch((error: unknown) => {
      lines.push(`The duplicate scan FAILED (${describeError(error)}): copies outside PM2 may still trade.`);
      return [] as Duplicate[];
    });
    // Both go through the supervisor's guard, in this order; neither waits for the other's caller.
    const [trader, others] = halt
      ? await Promise.allSettled([
          halt.stop(CONTROLLER),
          duplicates.length ? halt.stopDuplicates(CONTROLLER, duplicates.map((d) => d.pid)) : Promise.resolve(undefined),
        ])
      : [undefined, undefined];
    if (trader?.status === 'fulfilled') {
      if (trader.value.wasRunning && trader.value.pid) {
        ended.push({ pid: trader.value.pid, how: trader.value.forceKilled ? 'stopped through PM2 (force-killed)' : 'stopped through PM2', command: `PM2 trader ${config.trading.processName}` });
      } else lines.push('The PM2 trader was not running.');
    } else if (trader?.status === 'rejected') {
      lines.push(`Stopping the PM2 trader FAILED: ${describeError(trader.reason)}. Stop it by hand.`);
      logger.error(`breaker: stopping the trader failed: ${describeError(trader.reason)}`);
    }
    if (others?.status === 'fulfilled' && others.value) {
      for (const s of others.value.stopped) {
        const d = duplicates.find((x) => x.pid === s.pid);
        ended.push({ pid: s.pid, how: d?.foundIn === 'pm2' ? `PM2 entry ${d.pm2Name ?? ''} deleted` : s.signal, command: d?.command ?? '?' });
      }
    } else if (others?.status === 'rejected') {
      lines.push(`Ending the duplicates FAILED: ${describeError(others.reason)}.`);
    }
    // What is left: a fresh look, whatever the steps above reported.
    const survivors: HaltReport['survivors'] = [];
    const after = await supervisor.status().catch(() => undefined);
    if (after) {
      if (after.pid !== undefined && (after.state === 'online' || after.state === 'launching' || after.state === 'stopping')) {
        survivors.push({ pid: after.pid, command: `PM2 trader ${after.name}` });
      }
      for (const d of after.duplicates) survivors.push({ pid: d.pid, command: d.command });
      // A duplicate that went with the trader (a second PM2 entry of the same name) was ended too.
      for (const d of duplicates) {
        if (!ended.some((e) => e.pid === d.pid) && !survivors.some((s) => s.pid === d.pid)) ended.push({ pid: d.pid, how: 'gone with the trader', command: d.command });
      }
    } else lines.push('Could not look again after the halt: check that no copy still runs.');
    const session = trader?.status === 'fulfilled' ? trader.value.session : undefined;
    const redacted = redactDeep({ ended, survivors }, config.secrets);
    if (redacted.ended.length) lines.unshift(`Ended ${redacted.ended.map((e) => `PID ${e.pid} (${e.how}: ${e.command})`).join(', ')}.`);
    if (redacted.survivors.length) lines.push(`STILL RUNNING: ${redacted.survivors.map((s) => `PID ${s.pid} (${s.command})`).join(', ')} — end by hand.`);
    else lines.push('No copy of the trader runs here now.');
    // The session report is redacted by the core that made it.
    return { ...redacted, lines, ...(session ? { session } : {}) };
  }
}
