// Positions nobody manages: held at the broker while no copy of the trader runs on this host (it
// crashed, was stopped, the breaker halted it, PM2 lost it). No stop loss moves, no exit comes.
//
// Fed by what the controller already reads, with no cadence of its own: every process scan says
// whether a copy runs here (copiesRunning, as the foreign-trading watch judges it), every account
// read brings the broker's positions. An episode begins at the first account read that shows
// positions while the latest scan saw no copy; UNATTENDED_SECONDS later a warning names them, then
// a reminder every hour while it lasts. A copy running again, or the account flat, ends it without
// another word (the operator who started the trader or flattened knows).
//
// The episode lives in the data file, so a controller restart neither forgets how long the
// positions have waited nor repeats an alert early. Until this controller's first scan nothing is
// judged (a copy may well be running); a CLI process never scans, so it only ever ends an episode
// when it reads the account flat.
import type { Position } from '../broker/types.ts';
import type { Clock } from '../clock.ts';
import type { AlertOutbox } from '../alerts/outbox.ts';
import { formatDuration } from '../duration.ts';
import { money, signedMoney } from '../render/text.ts';
import type { Store } from '../store/store.ts';
import type { ProcessStatus } from '../supervisor/types.ts';
import { copiesRunning } from './foreign-trading.ts';
import { HOUR_MS } from './trade-window.ts';

/** While the positions stay unattended, the warning comes again this often. */
export const UNATTENDED_REMINDER_MS = HOUR_MS;
/** An alert is read on a phone: at most this many positions named, the rest counted. */
export const UNATTENDED_NAMED_POSITIONS = 10;

export interface UnattendedWatchOptions {
  store: Store;
  outbox: AlertOutbox;
  clock: Clock;
  processName: string;
  /** UNATTENDED_SECONDS in ms: how long positions wait without a trader before the first warning */
  afterMs: number;
}

export class UnattendedWatch {
  /** the latest scan of this controller's life; undefined until the first */
  private latestScan?: ProcessStatus;

  constructor(private readonly options: UnattendedWatchOptions) {}

  /** From every process scan: a copy running here ends an episode. */
  async noteScan(status: ProcessStatus): Promise<void> {
    this.latestScan = status;
    if (copiesRunning(status)) await this.end();
  }

  /** From every account read: positions without a copy running open or continue an episode, flat ends it. */
  async noteAccount(positions: readonly Position[]): Promise<void> {
    if (!positions.length) {
      await this.end();
      return;
    }
    const scan = this.latestScan;
    if (!scan || copiesRunning(scan)) return;
    const { store, clock, afterMs } = this.options;
    const now = clock.now();
    const due = await store.update((data) => {
      const episode = (data.watch.unattended ??= { since: now });
      const last = episode.lastAlertAt;
      // The reminder counts from the last alert, so a restart or a slow read never brings it early.
      if (last === undefined ? now - episode.since < afterMs : now - last < UNATTENDED_REMINDER_MS) return undefined;
      episode.lastAlertAt = now;
      episode.alerts = (episode.alerts ?? 0) + 1;
      const why = data.breaker.tripped ? 'halted by the breaker' : data.desired?.state === 'stopped' ? `stopped by ${data.desired.by}` : scan.state.replace('_', ' ');
      return { since: episode.since, count: episode.alerts, why };
    });
    if (due) await this.raise(positions, due, now);
  }

  private async end(): Promise<void> {
    await this.options.store.update((data) => {
      if (data.watch.unattended) data.watch.unattended = undefined;
    });
  }

  private async raise(positions: readonly Position[], due: { since: number; count: number; why: string }, now: number): Promise<void> {
    const { outbox, processName } = this.options;
    const value = positions.reduce((sum, p) => sum + p.marketValue, 0);
    const pnl = positions.reduce((sum, p) => sum + p.unrealizedPnl, 0);
    const shown = positions.slice(0, UNATTENDED_NAMED_POSITIONS).map((p) => `${p.symbol} ${p.qty} · value ${money(p.marketValue)} · P/L ${signedMoney(p.unrealizedPnl)}`);
    const more = positions.length - shown.length;
    const lines = more > 0 ? [...shown, `…and ${more} more: /account (or tradewarden account) lists every position`] : shown;
    const reminder = due.count > 1;
    await outbox.raise({
      kind: 'positions_unattended',
      severity: 'warning',
      key: `positions_unattended:${due.since}:${due.count}`,
      title: reminder ? 'Positions still held while no trader runs' : 'Positions held while no trader runs',
      body:
        `${positions.length} position(s) held for ${formatDuration(now - due.since)} while no copy of ${processName} runs on this host (${due.why}); ` +
        `value ${money(value)}, unrealized P/L ${signedMoney(pnl)}:\n${lines.join('\n')}\n` +
        'No stop loss moves and no exit comes while nothing runs. Start the trader (resume, if the breaker halted it), or flatten. ' +
        'Reminded every hour until a trader runs or the account is flat.',
      facts: {
        since: new Date(due.since).toISOString(),
        reminder,
        // Every position for a script reading the alert, within reason: the data file stays bounded.
        positionCount: positions.length,
        positions: positions.slice(0, 100).map((p) => ({ symbol: p.symbol, qty: p.qty, marketValue: p.marketValue, unrealizedPnl: p.unrealizedPnl })),
        marketValue: value,
        unrealizedPnl: pnl,
      },
    });
  }
}
