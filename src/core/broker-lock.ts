// The broker lock (BROKER_LOCK, lock/unlock): the account's own switch that blocks every new order
// at the broker (Alpaca: the account configuration suspend_trade), whoever sends it: the managed
// trader, a copy on another host, a bot that ignores the order gate. No copy anywhere walks around it.
//
// - A breaker trip sets it at once, beside ending the local copies, and keeps trying with back-off
//   until the broker confirms it (holdLocked); the trip's alert says whether it holds.
// - A lock tradewarden set is `ours`: resume lifts it. One found set (by hand in the broker's
//   dashboard, or before tradewarden started) is reported and left alone unless an operator unlocks.
// - The broker blocks closing orders too: flatten lifts it for its own closes and sets it back
//   (whileOpen), and says how long the account was open.
// - Every account read reconciles the record with the broker (observe); a read asked before the
//   last change answered, or at the same instant, may be stale and is ignored.
import type { AlertOutbox } from '../alerts/outbox.ts';
import type { Broker } from '../broker/types.ts';
import type { Clock } from '../clock.ts';
import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { BrokerLockState } from '../store/schema.ts';
import type { Store } from '../store/store.ts';

/** Back-off of a wanted lock that does not hold yet: doubled from the first, at most the last. */
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 30_000;

export const OUTSIDE = 'outside tradewarden';

/** What flatten's closes did to the lock. */
export interface LockOpening {
  /** how long the account accepted new orders for the closes, in ms */
  openMs: number;
  /** set back after the closes (false: it could not be, see error) */
  relocked: boolean;
  error?: string;
}

export interface BrokerLockDeps {
  broker: Broker;
  store: Store;
  clock: Clock;
  logger: Logger;
  /** told when a wanted lock that failed at first holds at last */
  outbox?: Pick<AlertOutbox, 'raise'>;
  /** injected so tests do not wait out the back-off */
  sleep?: (ms: number) => Promise<void>;
}

export class BrokerLock {
  /** the retry loop of a wanted lock that does not hold yet; ended by unlock or stop */
  private retrying?: { cancelled: boolean };
  /** set while flatten has lifted the lock for its closes: what an account read sees then is ours */
  private openForFlatten = false;

  constructor(private readonly deps: BrokerLockDeps) {}

  /** The lock as recorded (what status shows). */
  async state(): Promise<BrokerLockState | undefined> {
    return (await this.deps.store.read()).brokerLock;
  }

  /** Sets it at the broker (the adapter's own retries included) and records it as ours; throws when it does not hold. */
  async lock(by: string, reason: string): Promise<BrokerLockState> {
    await this.deps.broker.setTradingSuspended(true);
    const now = this.deps.clock.now();
    return this.record((current) => ({
      locked: true,
      ours: true,
      by,
      reason,
      since: current?.locked ? (current.since ?? now) : now,
      checkedAt: now,
    }));
  }

  /** Lifts it at the broker, whoever set it, and ends any retry of a wanted lock. */
  async unlock(by: string): Promise<BrokerLockState> {
    this.cancelRetry();
    await this.deps.broker.setTradingSuspended(false);
    const now = this.deps.clock.now();
    return this.record(() => ({ locked: false, ours: false, by, since: now, checkedAt: now }));
  }

  /**
   * The breaker's lock: tried at once; when it fails, tried again with back-off until it holds or
   * an unlock ends it (a `broker_locked` alert says when it holds at last). Resolves with the first
   * outcome, so the trip's alert can say which.
   */
  async holdLocked(by: string, reason: string): Promise<{ held: true } | { held: false; error: string }> {
    this.cancelRetry();
    try {
      await this.lock(by, reason);
      return { held: true };
    } catch (error) {
      const message = describeError(error);
      this.deps.logger.error(`broker lock: could not suspend trading at the broker (${message}); retrying until it holds`);
      const since = this.deps.clock.now();
      await this.recordQuietly((current) => ({ ...(current ?? { locked: false, ours: false }), failing: { error: message, attempts: 1, since } }));
      const loop = { cancelled: false };
      this.retrying = loop;
      void this.retryUntilHeld(loop, by, reason).catch((e: unknown) => this.deps.logger.error(`broker lock retry: ${describeError(e)}`));
      return { held: false, error: message };
    }
  }

  /** What the broker says now (an account read asked at `askedAt`), folded into the record. */
  async observe(suspended: boolean, askedAt: number): Promise<void> {
    if (this.openForFlatten) return;
    await this.recordQuietly((current) => {
      // A read asked before the last change (or at the same instant: an injected clock, or one
      // millisecond) may show the switch as it was; the change's own answer from the broker wins.
      if (current?.checkedAt !== undefined && askedAt <= current.checkedAt) return current;
      if (suspended) {
        if (current?.locked) return { ...current, checkedAt: askedAt };
        return { locked: true, ours: false, by: OUTSIDE, since: askedAt, reason: 'found set at the broker (its dashboard, or another tool)', checkedAt: askedAt };
      }
      if (current?.failing) return { ...current, checkedAt: askedAt }; // wanted and being retried: not "lifted"
      if (current?.locked) return { locked: false, ours: false, by: OUTSIDE, since: askedAt, checkedAt: askedAt };
      return current ? { ...current, checkedAt: askedAt } : { locked: false, ours: false, checkedAt: askedAt };
    });
  }

  /** Asks the broker itself (at start, and when a record may be stale). */
  async refresh(): Promise<BrokerLockState | undefined> {
    const askedAt = this.deps.clock.now();
    await this.observe(await this.deps.broker.tradingSuspended(), askedAt);
    return this.state();
  }

  /**
   * Runs `work` (flatten's closes) with the lock lifted when it is on, then sets it back as it was:
   * the broker blocks closing orders too. Without a lock, `work` runs as is.
   */
  async whileOpen<T>(work: () => Promise<T>): Promise<{ result: T; opening?: LockOpening }> {
    const before = await this.state();
    if (!before?.locked && !before?.failing) return { result: await work() };
    this.openForFlatten = true;
    try {
      await this.deps.broker.setTradingSuspended(false);
    } catch (error) {
      this.openForFlatten = false;
      // The closes will be refused: flatten reports each symbol as it stands.
      this.deps.logger.error(`flatten: could not lift the broker lock for the closes: ${describeError(error)}`);
      return { result: await work(), opening: { openMs: 0, relocked: true, error: `the lock could not be lifted for the closes: ${describeError(error)}` } };
    }
    const openedAt = Date.now(); // real time: how long the account was open, not domain time
    try {
      return { result: await work(), opening: await this.relock(before, openedAt) };
    } catch (error) {
      await this.relock(before, openedAt);
      throw error;
    } finally {
      this.openForFlatten = false;
    }
  }

  /** Ends the retry loop (the controller stops). */
  stop(): void {
    this.cancelRetry();
  }

  private async relock(before: BrokerLockState, openedAt: number): Promise<LockOpening> {
    try {
      await this.deps.broker.setTradingSuspended(true);
      const now = this.deps.clock.now();
      await this.recordQuietly(() => ({ ...before, locked: true, failing: undefined, checkedAt: now }));
      return { openMs: Date.now() - openedAt, relocked: true };
    } catch (error) {
      const openMs = Date.now() - openedAt;
      const message = describeError(error);
      this.deps.logger.error(`flatten: could not set the broker lock back after the closes (${message}); retrying until it holds`);
      void this.holdLocked(before.by ?? 'controller', before.reason ?? 'set back after flatten');
      return { openMs, relocked: false, error: `the lock could not be set back: ${message}` };
    }
  }

  /** A controller that starts with a wanted lock not holding (it was being retried when the last one stopped) goes on trying. */
  async resumeRetrying(): Promise<void> {
    const state = await this.state();
    if (state?.failing) await this.holdLocked(state.by ?? 'controller', state.reason ?? 'wanted before the controller restarted');
  }

  private async retryUntilHeld(loop: { cancelled: boolean }, by: string, reason: string): Promise<void> {
    const sleep = this.deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref()));
    for (let attempt = 2; ; attempt++) {
      await sleep(Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (attempt - 2)));
      if (loop.cancelled) return;
      try {
        await this.lock(by, reason);
        if (loop.cancelled) return;
        this.deps.logger.info(`broker lock: trading suspended at the broker after ${attempt} attempts`);
        await this.deps.outbox?.raise({
          kind: 'broker_locked',
          severity: 'warning',
          title: 'Account locked at the broker',
          body: `Trading is now suspended at the broker (after ${attempt} attempts): no copy anywhere can place a new order. resume lifts it.`,
          facts: { attempts: attempt, by, reason },
        });
        return;
      } catch (error) {
        if (loop.cancelled) return;
        const message = describeError(error);
        await this.recordQuietly((current) => ({ ...(current ?? { locked: false, ours: false }), failing: { error: message, attempts: attempt, since: current?.failing?.since ?? this.deps.clock.now() } }));
      }
    }
  }

  private cancelRetry(): void {
    if (this.retrying) this.retrying.cancelled = true;
    this.retrying = undefined;
  }

  /** Writes the record; the action it describes has happened, so a failure to write is logged, not thrown. */
  private async record(next: (current: BrokerLockState | undefined) => BrokerLockState): Promise<BrokerLockState> {
    let written: BrokerLockState | undefined;
    await this.recordQuietly((current) => (written = next(current)));
    return written ?? next(undefined);
  }

  private async recordQuietly(next: (current: BrokerLockState | undefined) => BrokerLockState | undefined): Promise<void> {
    try {
      await this.deps.store.update((data) => {
        const value = next(data.brokerLock);
        if (value === undefined) delete data.brokerLock;
        else data.brokerLock = stripUndefined(value);
      });
    } catch (error) {
      this.deps.logger.error(`broker lock: COULD NOT RECORD its state in the data file (${describeError(error)}); the broker's own switch is what counts`);
    }
  }
}

function stripUndefined(state: BrokerLockState): BrokerLockState {
  return Object.fromEntries(Object.entries(state).filter(([, v]) => v !== undefined)) as unknown as BrokerLockState;
}
