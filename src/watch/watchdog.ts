// The controller's own eyes: each check reads the world, compares it with what the data file
// remembers, and raises an alert only on a change of state (once per episode), never once per poll.
import type { Broker, Fill } from '../broker/types.ts';
import type { Clock } from '../clock.ts';
import { describeError } from '../errors.ts';
import type { AlertInput, AlertOutbox } from '../alerts/outbox.ts';
import type { Store } from '../store/store.ts';
import type { SeenTrade, StoreData } from '../store/schema.ts';
import type { Duplicate, ProcessStatus, StopDuplicatesResult, Supervision } from '../supervisor/types.ts';
import { countedTrades, heldByFlatten, hourBuckets, openFlattens, ownOrderIds, HOUR_MS } from './trade-window.ts';

/** Fills are asked for from a little before the newest one seen, so a late-posted fill is not missed. */
const FILL_OVERLAP_MS = 5 * 60_000;
/**
 * A fill stamped later than now + this (a broker clock glitch, a proxy rewriting dates) is counted
 * at its arrival instead, and never becomes the cursor: a future cursor would make every later poll
 * ask for fills after that date, get none, and blind the trade-rate alert across restarts.
 */
export const FUTURE_FILL_SKEW_MS = 60_000;
const CRASH_LOOP_RESTARTS = 3;
const CRASH_LOOP_WINDOW_MS = 10 * 60_000;

export type TradeRateEvent = 'exceeded' | 'grew' | 'normal';

/**
 * The episode state machine: the first count above the limit opens an episode (alert), a count
 * that doubles the last alerted one re-alerts, and falling back to the limit closes it (notice).
 */
export function evaluateTradeRate(
  state: StoreData['watch']['tradeRate'],
  count: number,
  limit: number,
  now: number,
): { next: StoreData['watch']['tradeRate']; event?: TradeRateEvent } {
  if (!state.inEpisode) {
    if (count > limit) return { next: { inEpisode: true, lastAlertedCount: count, episodeStartedAt: now }, event: 'exceeded' };
    return { next: state };
  }
  if (count <= limit) return { next: { inEpisode: false, lastAlertedCount: 0 }, event: 'normal' };
  if (count >= 2 * state.lastAlertedCount) return { next: { ...state, lastAlertedCount: count }, event: 'grew' };
  return { next: state };
}

export interface TradePollResult {
  newTrades: number;
  count: number;
  event?: TradeRateEvent;
}

export interface TradeWatchOptions {
  store: Store;
  broker: Broker;
  outbox: AlertOutbox;
  clock: Clock;
  processName: string;
  maxTradesPerHour: number;
  /**
   * Called on every poll that finds the hour over the limit, with the hour's trades: the breaker
   * (ON_RUNAWAY) lives in the core and decides whether to trip (it is idempotent).
   */
  onRunaway?: (tradesInHour: SeenTrade[]) => Promise<void>;
  /** Trades seen for the first time (either source): the foreign-trading check looks at them. */
  onNewTrades?: (added: SeenTrade[]) => Promise<void>;
}

/** The broker's fills → the rolling-hour count → trade-rate and broker-reachability alerts. */
export class TradeWatch {
  /** more listeners for judged new trades, added by parts that start later (the order gate's bypass watch) */
  private readonly newTradeListeners: Array<(added: SeenTrade[]) => Promise<void>> = [];
  private readonly fillListeners: Array<(fills: Fill[]) => void> = [];

  constructor(private readonly options: TradeWatchOptions) {}

  /** Also tells `listener` the judged new trades (as onNewTrades is told). */
  observeNewTrades(listener: (added: SeenTrade[]) => Promise<void>): void {
    this.newTradeListeners.push(listener);
  }

  /**
   * Tells `listener` every fill that filled more of its order (either source, each once, with the
   * quantity it added), as soon as they are recorded. Called synchronously and not
   * awaited: a listener must only take note (the fill feed queues them), never hold the watch.
   */
  observeFills(listener: (fills: Fill[]) => void): void {
    this.fillListeners.push(listener);
  }

  /** Poll the broker's fills, update the rolling-hour count, alert on a change of episode. */
  async poll(): Promise<TradePollResult> {
    const { store, broker, clock } = this.options;
    const before = await store.read();
    const now = clock.now();
    // A cursor persisted by an earlier run may already be in the future: never ask from past now.
    const cursorMs = before.trades.cursor ? Math.min(Date.parse(before.trades.cursor), now) : undefined;
    const after = cursorMs !== undefined && Number.isFinite(cursorMs)
      ? new Date(cursorMs - FILL_OVERLAP_MS).toISOString()
      : new Date(now - HOUR_MS).toISOString();
    let rawFills;
    try {
      rawFills = await broker.fills(after);
    } catch (error) {
      await this.brokerState(false, describeError(error));
      throw error;
    }
    await this.brokerState(true);
    return this.record(rawFills, { advanceCursor: true });
  }

  /**
   * Fills pushed by the trade stream: the same window, the same once-per-trade merge and the same
   * alerts as the poll. The poll's cursor does not move: a fill the stream missed while it was down
   * is older than the ones it pushes now, and the reconciling poll must still ask for it.
   */
  ingest(fills: readonly Fill[]): Promise<TradePollResult> {
    return this.record(fills, { advanceCursor: false });
  }

  /**
   * Judges again without new fills: after a flatten has named its closing orders, the fills it held
   * are the controller's own or the trader's, and the count, the alerts and the breaker follow now.
   */
  judge(): Promise<TradePollResult> {
    return this.record([], { advanceCursor: false });
  }

  private async record(rawFills: readonly Fill[], options: { advanceCursor: boolean }): Promise<TradePollResult> {
    const { store, clock, outbox, maxTradesPerHour: limit } = this.options;
    const now = clock.now();
    const future = rawFills.filter((f) => f.at > now + FUTURE_FILL_SKEW_MS);
    // Counted by arrival: a fill cannot have happened after we read it.
    const fills = rawFills.map((f) => (f.at > now ? { ...f, at: now } : f));
    const filled: Fill[] = [];
    const result = await store.update((data) => {
      const added = store.recordFills(data, fills, (fill) => filled.push(fill));
      const judged = judgeHeld(data, added, now);
      if (options.advanceCursor) {
        const previous = data.trades.cursor ? Date.parse(data.trades.cursor) : 0;
        const newest = Math.min(now, fills.reduce((max, f) => Math.max(max, f.at), Number.isFinite(previous) ? previous : 0));
        if (newest > 0) data.trades.cursor = new Date(newest).toISOString();
      }
      const warnFuture = future.length > 0 && !data.watch.futureFillWarned;
      // Only the poll, which sees every fill, may say the future-stamped ones have stopped.
      if (future.length > 0) data.watch.futureFillWarned = true;
      else if (options.advanceCursor) data.watch.futureFillWarned = undefined;
      const inHour = countedTrades(data, now);
      const { next, event } = evaluateTradeRate(data.watch.tradeRate, inHour.length, limit, now);
      data.watch.tradeRate = next;
      return { added, judged, count: inHour.length, event, inHour, episode: next.episodeStartedAt, warnFuture };
    });
    // Recorded: the fill feed hears them now, whatever the alerts and the breaker below do.
    for (const listener of filled.length ? this.fillListeners : []) {
      try {
        listener(filled);
      } catch {
        // a listener's own problem; the watch goes on
      }
    }

    if (result.warnFuture) {
      const latest = future.reduce((a, b) => (b.at > a.at ? b : a));
      await outbox.raise({
        kind: 'broker_clock_skew',
        severity: 'warning',
        title: 'Broker reported fills in the future',
        body:
          `${future.length} fill(s) stamped up to ${new Date(latest.at).toISOString()} (now ${new Date(now).toISOString()}). ` +
          'They are counted at their arrival and do not move the fills cursor; check the broker clock or any proxy in between.',
        facts: { fills: future.length, latest: new Date(latest.at).toISOString(), orderIds: future.slice(0, 10).map((f) => f.orderId) },
      });
    }

    if (result.event === 'exceeded' || result.event === 'grew') {
      const recent = result.inHour.slice(-10).map((t) => `${new Date(t.at).toISOString().slice(11, 19)} ${t.side} ${t.qty} ${t.symbol}`);
      await outbox.raise({
        kind: 'trade_rate_exceeded',
        severity: 'critical',
        key: `trade_rate:${result.episode}:${result.count}`,
        title: result.event === 'exceeded' ? 'Trade rate exceeded' : 'Trade rate still climbing',
        body: `${result.count} trades in the last hour (limit ${limit}) for ${this.options.processName}.`,
        // The hour in 5-minute counts: what a sink that can draw pictures charts (alert-sink.ts).
        facts: { count: result.count, limit, recent, hour: { end: now, bucketMs: 5 * 60_000, counts: hourBuckets(result.inHour, now, 12, 5 * 60_000) } },
      });
    } else if (result.event === 'normal') {
      await outbox.raise({
        kind: 'trade_rate_normal',
        severity: 'info',
        title: 'Trade rate back to normal',
        body: `${result.count} trades in the last hour (limit ${limit}).`,
        facts: { count: result.count, limit },
      });
    }
    // The breaker first: with a runaway, halting matters more than saying where the fills came from.
    if (result.count > limit) await this.options.onRunaway?.(result.inHour);
    if (result.judged.length) {
      await this.options.onNewTrades?.(result.judged);
      for (const listener of this.newTradeListeners) await listener(result.judged);
    }
    return { newTrades: result.added.length, count: result.count, event: result.event };
  }

  private async brokerState(reachable: boolean, reason?: string): Promise<void> {
    const { store, outbox } = this.options;
    const changed = await store.update((data) => {
      if (data.watch.brokerUnreachable === !reachable) return false;
      data.watch.brokerUnreachable = !reachable;
      return true;
    });
    if (!changed) return;
    if (!reachable) {
      await outbox.raise({
        kind: 'broker_unreachable',
        severity: 'warning',
        title: 'Broker unreachable',
        body: `Cannot read fills from the broker: ${reason}. Trade-rate watching is blind until it answers.`,
        facts: { reason },
      });
    } else {
      await outbox.raise({
        kind: 'recovered',
        severity: 'info',
        title: 'Broker reachable again',
        body: 'Fills are being read again.',
      });
    }
  }
}

/**
 * The trades to hand to the foreign-trading check now: the new ones a flatten does not hold, and
 * those it held that it no longer does (it named its closing orders, or let go), less the
 * controller's own. Keeps data.trades.held to what is still held.
 */
function judgeHeld(data: StoreData, added: SeenTrade[], now: number): SeenTrade[] {
  const open = openFlattens(data, now);
  const heldIds = new Set(data.trades.held ?? []);
  const waiting = [...(heldIds.size ? data.trades.seen.filter((t) => heldIds.has(t.orderId)) : []), ...added];
  const held = waiting.filter((t) => heldByFlatten(t, open));
  const own = ownOrderIds(data);
  data.trades.held = held.length ? held.map((t) => t.orderId) : undefined;
  return waiting.filter((t) => !held.includes(t) && !own.has(t.orderId));
}

export interface ProcessWatchOptions {
  store: Store;
  supervisor: Supervision;
  outbox: AlertOutbox;
  clock: Clock;
  processName: string;
  /**
   * ON_DUPLICATE=stop: ends the duplicates on sight (the core does it, audited as the policy) and
   * says what it ended; absent with ON_DUPLICATE=alert.
   */
  endDuplicates?: (duplicates: Duplicate[]) => Promise<StopDuplicatesResult>;
  /** every scan's status (the foreign-trading watch notes whether a copy runs here) */
  onScan?: (status: ProcessStatus) => Promise<void>;
}

/** PM2's description and the OS process table → duplicate, process-down and crash-loop alerts. */
export class ProcessWatch {
  private restartSamples: Array<{ at: number; restarts: number }> = [];
  /** the duplicate PID set last seen, for when the data file cannot be written */
  private unsavedPidSet: string | undefined;

  constructor(private readonly options: ProcessWatchOptions) {}

  /** One look at the process: duplicates (in PM2 and the OS), down while wanted up, crash loop. */
  async scan(): Promise<ProcessStatus> {
    const status = await this.options.supervisor.status();
    await this.checkDuplicates(status.duplicates);
    await this.checkHealth(status);
    await this.options.onScan?.(status);
    return status;
  }

  private async checkDuplicates(duplicates: Duplicate[]): Promise<void> {
    const pidSet = duplicates.map((d) => d.pid).sort((a, b) => a - b).join(',');
    let isNew: boolean;
    try {
      isNew = await this.options.store.update((data) => {
        const previous = data.watch.duplicates.lastPidSet ?? '';
        data.watch.duplicates.lastPidSet = pidSet || undefined;
        return pidSet !== '' && pidSet !== previous;
      });
    } catch (error) {
      // The data file cannot be written (a full disk): a duplicate must still be heard, once per
      // set of PIDs (remembered here meanwhile); the error still reaches the scheduler's log.
      const unsavedNew = pidSet !== '' && pidSet !== this.unsavedPidSet;
      this.unsavedPidSet = pidSet;
      const ended = duplicates.length && this.options.endDuplicates ? await this.endByPolicy(duplicates) : undefined;
      if (unsavedNew || ended?.stopped.length) await this.options.outbox.raiseLoud(this.duplicateAlert(duplicates, pidSet, ended));
      throw error;
    }
    this.unsavedPidSet = pidSet;
    // With ON_DUPLICATE=stop every scan that finds one acts (a failed end is tried again next scan);
    // the alert still goes out once per set of PIDs, or whenever something was ended.
    const ended = duplicates.length && this.options.endDuplicates ? await this.endByPolicy(duplicates) : undefined;
    if (!isNew && !ended?.stopped.length) return;
    await this.options.outbox.raise(this.duplicateAlert(duplicates, pidSet, ended));
  }

  private duplicateAlert(duplicates: Duplicate[], pidSet: string, ended?: StopDuplicatesResult): AlertInput {
    // An alert is read on a phone: at most 10 copies named, the rest counted with where to see them.
    const shown = duplicates.slice(0, 10).map((d) => `PID ${d.pid} (${d.foundIn === 'pm2' ? `PM2 entry ${d.pm2Name ?? ''}` : 'outside PM2'}): ${d.command.length > 300 ? `${d.command.slice(0, 299)}…` : d.command}`);
    const lines = duplicates.length > shown.length ? [...shown, `…and ${duplicates.length - shown.length} more: \`tradewarden duplicates --json\` lists every copy`] : shown;
    const endedLines = ended ? describeEnded(duplicates, ended) : [];
    return {
      kind: 'duplicate_instance',
      severity: 'critical',
      key: `duplicate:${pidSet}${ended ? `:ended:${ended.stopped.map((s) => s.pid).join(',')}` : ''}`,
      title: ended?.stopped.length ? 'Duplicate trading process ended (ON_DUPLICATE=stop)' : 'Duplicate trading process',
      body:
        `${duplicates.length} extra ${duplicates.length === 1 ? 'copy' : 'copies'} of ${this.options.processName} running:\n${lines.join('\n')}` +
        (ended ? `\nON_DUPLICATE=stop, the managed trader kept:\n${endedLines.join('\n')}` : ''),
      facts: { pids: duplicates.map((d) => d.pid), duplicates, ...(ended ? { ended: ended.stopped, failed: ended.failed } : {}) },
    };
  }

  private async endByPolicy(duplicates: Duplicate[]): Promise<StopDuplicatesResult> {
    try {
      return await this.options.endDuplicates!(duplicates);
    } catch (error) {
      return { stopped: [], notInLatestScan: [], failed: duplicates.map((d) => ({ pid: d.pid, reason: describeError(error) })) };
    }
  }

  private async checkHealth(status: ProcessStatus): Promise<void> {
    const { store, outbox, clock, processName } = this.options;
    const now = clock.now();
    const up = status.state === 'online' || status.state === 'launching';
    const change = await store.update((data) => {
      const wanted = data.desired?.state === 'running' && !data.breaker.tripped;
      if (wanted && !up && !data.watch.processDown) {
        data.watch.processDown = true;
        return 'down' as const;
      }
      if ((up || !wanted) && data.watch.processDown) {
        data.watch.processDown = false;
        return up ? ('up' as const) : undefined;
      }
      return undefined;
    });
    if (change === 'down') {
      await outbox.raise({
        kind: 'process_down',
        severity: 'critical',
        title: 'Trader is down',
        body: `${processName} should be running but is ${status.state.replace('_', ' ')}${status.lastExitCode != null ? ` (last exit code ${status.lastExitCode})` : ''}.`,
        facts: { state: status.state, lastExitCode: status.lastExitCode ?? null, restarts: status.restarts },
      });
    } else if (change === 'up') {
      await outbox.raise({
        kind: 'recovered',
        severity: 'info',
        title: 'Trader is back',
        body: `${processName} is ${status.state} again (PID ${status.pid ?? '?'}).`,
        facts: { state: status.state, pid: status.pid },
      });
    }

    // Crash loop: PM2's own restart counter climbing fast, seen across scans.
    this.restartSamples.push({ at: now, restarts: status.restarts });
    this.restartSamples = this.restartSamples.filter((s) => s.at >= now - CRASH_LOOP_WINDOW_MS);
    const climbed = status.restarts - Math.min(...this.restartSamples.map((s) => s.restarts));
    if (climbed >= CRASH_LOOP_RESTARTS) {
      const due = await store.update((data) => {
        const last = data.watch.crashLoop.lastAlertedAt;
        if (last !== undefined && now - last < CRASH_LOOP_WINDOW_MS) return false;
        data.watch.crashLoop.lastAlertedAt = now;
        return true;
      });
      if (due) {
        await outbox.raise({
          kind: 'crash_loop',
          severity: 'critical',
          title: 'Trader is crash-looping',
          body: `${processName} restarted ${climbed} times in the last ${CRASH_LOOP_WINDOW_MS / 60_000} minutes (${status.restarts} in all).`,
          facts: { restartsInWindow: climbed, restarts: status.restarts, lastExitCode: status.lastExitCode ?? null },
        });
      }
    }
  }
}

/** "Ended PID 123 (SIGTERM): node bot.js" / "NOT ended PID 124: why" — what a policy did, by PID. */
export function describeEnded(duplicates: readonly Duplicate[], result: StopDuplicatesResult): string[] {
  const command = (pid: number) => duplicates.find((d) => d.pid === pid)?.command ?? '?';
  return [
    ...result.stopped.map((s) => `Ended PID ${s.pid} (${s.signal}): ${command(s.pid)}`),
    ...result.failed.map((f) => `NOT ended PID ${f.pid}: ${f.reason}`),
  ];
}
