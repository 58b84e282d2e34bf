// The runaway breaker (ON_RUNAWAY), a unit beside the core: a trade-rate breach over the limit
// stops the trader through the core's audited stop (so PM2's auto-restart cannot bring it back) and
// trips a persisted breaker that every start respects until an operator resumes. Called on every
// poll over the limit; trips once. After a resume the trader gets a fresh allowance: only trades
// since the resume count, so a still-runaway trader trips it again.
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import { describeError, refused } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { AlertOutbox } from '../alerts/outbox.ts';
import type { Store } from '../store/store.ts';
import type { SeenTrade, StoreData } from '../store/schema.ts';
import type { StopResult } from '../supervisor/types.ts';
import type { Actor } from './operations.ts';

export type BreakerState = StoreData['breaker'];

/** Who trips it: the controller itself, as the audit log names it. */
export const CONTROLLER: Actor = { id: 'controller', name: 'tradewarden', isOperator: true };

/** What the breaker halts through: the core's operations, so a halt is audited like any stop. */
export interface Halt {
  stop(actor: Actor): Promise<StopResult>;
  flatten(actor: Actor): Promise<unknown>;
}

export interface BreakerDeps {
  config: Pick<Config, 'onRunaway' | 'maxTradesPerHour'>;
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

  /** The trade watch's report of a rolling hour over the limit. */
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
    try {
      if (!this.halt) throw new Error('nothing to halt through (the core was not attached)');
      const stopped = await this.halt.stop(CONTROLLER);
      stopLine = stopped.wasRunning ? `Trader stopped (PID ${stopped.pid}).` : 'Trader was not running.';
    } catch (error) {
      stopLine = `Stopping the trader FAILED: ${describeError(error)}. Stop it by hand.`;
      logger.error(stopLine);
    }
    await outbox.raise({
      kind: 'breaker_tripped',
      severity: 'critical',
      title: 'Breaker tripped: trading halted',
      body: `${tripped.reason}. ${stopLine} Start is refused until an operator runs resume.`,
      facts: { count: tripped.counted, limit: config.maxTradesPerHour, action: config.onRunaway },
    });
    if (config.onRunaway === 'flatten' && this.halt) {
      await this.halt.flatten(CONTROLLER).catch((e: unknown) => logger.error(`flatten after runaway: ${describeError(e)}`));
    }
  }
}
