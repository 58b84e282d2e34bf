// Trading seen from anywhere: a fill at the broker while no copy of the trader runs on this host
// (stopped, halted by the breaker, never started) means another copy trades elsewhere — a second
// server, a laptop — or someone trades by hand. The duplicate scan cannot see those; the account can.
//
// A fill counts as foreign only if it was booked after the last moment a copy is known to have run
// here (seen by a scan, or the stop/halt recorded in the data file) plus a grace for orders that
// were already in flight when the trader stopped. One alert per episode; the episode ends when a
// copy runs here again or an hour passes without a foreign fill.
import type { Clock } from '../clock.ts';
import type { AlertOutbox } from '../alerts/outbox.ts';
import type { Store } from '../store/store.ts';
import type { SeenTrade } from '../store/schema.ts';
import type { ProcessStatus } from '../supervisor/types.ts';
import { HOUR_MS, ownOrderIds } from './trade-window.ts';

/** Orders sent just before a stop can fill just after it. */
export const FOREIGN_TRADING_GRACE_MS = 30_000;

export interface ForeignTradingWatchOptions {
  store: Store;
  outbox: AlertOutbox;
  clock: Clock;
  processName: string;
  /** a fresh look at this host: the managed trader's status, duplicates included */
  processStatus: () => Promise<ProcessStatus>;
  graceMs?: number;
  /** fills before this (the watch's start when nothing better is known) are not judged */
  since?: number;
}

/** Whether any copy of the trader runs on this host, by a status with its duplicate scan. */
export function copiesRunning(status: ProcessStatus): boolean {
  const managed = status.pid !== undefined && (status.state === 'online' || status.state === 'launching' || status.state === 'stopping');
  return managed || status.duplicates.length > 0;
}

export class ForeignTradingWatch {
  private lastCopySeenAt?: number;
  private readonly since: number;

  constructor(private readonly options: ForeignTradingWatchOptions) {
    this.since = options.since ?? options.clock.now();
  }

  /** From every process scan: a copy running here ends an episode and moves the baseline. */
  async noteScan(status: ProcessStatus): Promise<void> {
    if (!copiesRunning(status)) return;
    this.lastCopySeenAt = this.options.clock.now();
    await this.options.store.update((data) => {
      if (data.watch.foreignTrading.inEpisode) data.watch.foreignTrading = { inEpisode: false };
    });
  }

  /** Trades seen for the first time; raises foreign_trading when they were made while no copy ran. */
  async check(added: readonly SeenTrade[]): Promise<void> {
    const { store, outbox, clock, processName } = this.options;
    if (!added.length) return;
    const status = await this.options.processStatus();
    if (copiesRunning(status)) {
      await this.noteScan(status);
      return;
    }
    const now = clock.now();
    const opened = await store.update((data) => {
      const stoppedAt = data.desired?.state === 'stopped' ? Date.parse(data.desired.at) : undefined;
      const haltedAt = data.breaker.tripped && data.breaker.at ? Date.parse(data.breaker.at) : undefined;
      const baseline = Math.max(this.since, this.lastCopySeenAt ?? 0, stoppedAt || 0, haltedAt || 0);
      // Flatten's own closing orders are the controller's, not another copy's.
      const own = ownOrderIds(data);
      const foreign = added.filter((t) => !own.has(t.orderId) && t.at > baseline + (this.options.graceMs ?? FOREIGN_TRADING_GRACE_MS));
      if (!foreign.length) return undefined;
      const episode = data.watch.foreignTrading;
      const stale = (episode.lastAt ?? episode.since ?? 0) < now - HOUR_MS;
      if (episode.inEpisode && !stale) {
        episode.orderIds = [...new Set([...(episode.orderIds ?? []), ...foreign.map((t) => t.orderId)])].slice(-200);
        episode.lastAt = now;
        return undefined;
      }
      data.watch.foreignTrading = { inEpisode: true, since: now, lastAt: now, orderIds: foreign.map((t) => t.orderId) };
      return { foreign, state: status.state, stoppedBy: data.desired?.state === 'stopped' ? data.desired.by : undefined, halted: Boolean(haltedAt) };
    });
    if (!opened) return;
    const lines = opened.foreign.map((t) => `${new Date(t.at).toISOString().slice(11, 19)} ${t.side} ${t.qty} ${t.symbol} @ ${t.price} (order ${t.orderId})`);
    const why = opened.halted ? 'halted by the breaker' : opened.stoppedBy ? `stopped by ${opened.stoppedBy}` : `${opened.state.replace('_', ' ')}`;
    await outbox.raise({
      kind: 'foreign_trading',
      severity: 'critical',
      key: `foreign_trading:${now}`,
      title: 'Trading while no copy of the trader runs here',
      body:
        `${opened.foreign.length} fill(s) at the broker while no copy of ${processName} runs on this host (${why}):\n${lines.join('\n')}\n` +
        'Another copy trades elsewhere (a second server, a laptop) or someone trades by hand. Find it and stop it, then flatten if needed. ' +
        'If this account is traded by hand on purpose, set FOREIGN_TRADING=off.',
      facts: { fills: opened.foreign.map((t) => ({ orderId: t.orderId, symbol: t.symbol, side: t.side, qty: t.qty, price: t.price, at: new Date(t.at).toISOString() })), processState: opened.state },
    });
  }
}
