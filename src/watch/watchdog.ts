// The controller's own eyes: each check reads the world, compares it with what the data file
// remembers, and raises an alert only on a change of state (once per episode), never once per poll.
import type { Broker } from '../broker/types.ts';
import type { Clock } from '../clock.ts';
import { describeError } from '../errors.ts';
import type { AlertOutbox } from '../alerts/outbox.ts';
import type { Store } from '../store/store.ts';
import type { SeenTrade, StoreData } from '../store/schema.ts';
import type { Duplicate, ProcessStatus, Supervision } from '../supervisor/types.ts';
import { hourBuckets, mergeFills, tradesInLastHour, HOUR_MS } from './trade-window.ts';

/** Fills are asked for from a little before the newest one seen, so a late-posted fill is not missed. */
const FILL_OVERLAP_MS = 5 * 60_000;
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
}

/** The broker's fills → the rolling-hour count → trade-rate and broker-reachability alerts. */
export class TradeWatch {
  constructor(private readonly options: TradeWatchOptions) {}

  /** Poll the broker's fills, update the rolling-hour count, alert on a change of episode. */
  async poll(): Promise<TradePollResult> {
    const { store, broker, clock, outbox, maxTradesPerHour: limit } = this.options;
    const now = clock.now();
    const before = await store.read();
    const after = before.trades.cursor
      ? new Date(Date.parse(before.trades.cursor) - FILL_OVERLAP_MS).toISOString()
      : new Date(now - HOUR_MS).toISOString();
    let fills;
    try {
      fills = await broker.fills(after);
    } catch (error) {
      await this.brokerState(false, describeError(error));
      throw error;
    }
    await this.brokerState(true);

    const result = await store.update((data) => {
      const added = mergeFills(data.trades.seen, fills);
      const newest = fills.reduce((max, f) => Math.max(max, f.at), data.trades.cursor ? Date.parse(data.trades.cursor) : 0);
      if (newest > 0) data.trades.cursor = new Date(newest).toISOString();
      const inHour = tradesInLastHour(data.trades.seen, now);
      const { next, event } = evaluateTradeRate(data.watch.tradeRate, inHour.length, limit, now);
      data.watch.tradeRate = next;
      return { newTrades: added.length, count: inHour.length, event, inHour, episode: next.episodeStartedAt };
    });

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
    if (result.count > limit) await this.options.onRunaway?.(result.inHour);
    return { newTrades: result.newTrades, count: result.count, event: result.event };
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

export interface ProcessWatchOptions {
  store: Store;
  supervisor: Supervision;
  outbox: AlertOutbox;
  clock: Clock;
  processName: string;
}

/** PM2's description and the OS process table → duplicate, process-down and crash-loop alerts. */
export class ProcessWatch {
  private restartSamples: Array<{ at: number; restarts: number }> = [];

  constructor(private readonly options: ProcessWatchOptions) {}

  /** One look at the process: duplicates (in PM2 and the OS), down while wanted up, crash loop. */
  async scan(): Promise<ProcessStatus> {
    const status = await this.options.supervisor.status();
    await this.checkDuplicates(status.duplicates);
    await this.checkHealth(status);
    return status;
  }

  private async checkDuplicates(duplicates: Duplicate[]): Promise<void> {
    const pidSet = duplicates.map((d) => d.pid).sort((a, b) => a - b).join(',');
    const isNew = await this.options.store.update((data) => {
      const previous = data.watch.duplicates.lastPidSet ?? '';
      data.watch.duplicates.lastPidSet = pidSet || undefined;
      return pidSet !== '' && pidSet !== previous;
    });
    if (!isNew) return;
    const lines = duplicates.map((d) => `PID ${d.pid} (${d.foundIn === 'pm2' ? `PM2 entry ${d.pm2Name ?? ''}` : 'outside PM2'}): ${d.command}`);
    await this.options.outbox.raise({
      kind: 'duplicate_instance',
      severity: 'critical',
      key: `duplicate:${pidSet}`,
      title: 'Duplicate trading process',
      body: `${duplicates.length} extra ${duplicates.length === 1 ? 'copy' : 'copies'} of ${this.options.processName} running:\n${lines.join('\n')}`,
      facts: { pids: duplicates.map((d) => d.pid), duplicates },
    });
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
