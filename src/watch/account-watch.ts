// The account figures status shows (equity, day P/L, open positions), read from the broker on the
// watch's cadence and kept in the store with the time they were read: /bot status answers from them
// at once, whatever the broker's latency, and says how old they are. /account and flatten read live.
import type { Account, Broker, Position } from '../broker/types.ts';
import type { Clock } from '../clock.ts';
import type { Store } from '../store/store.ts';
import type { AccountSnapshot } from '../store/schema.ts';

export interface AccountWatchOptions {
  store: Store;
  broker: Broker;
  clock: Clock;
  /** every account read, with when it was asked (the broker lock reconciles with it, the loss limit judges it) */
  onAccount?: (account: Account, askedAt: number) => Promise<void> | undefined;
  /** every read of the positions (the unattended-positions watch): no cadence of its own */
  onPositions?: (positions: Position[]) => Promise<void>;
}

export class AccountWatch {
  /** a read in progress, and whether another was asked for meanwhile (refreshSoon) */
  private reading?: Promise<unknown>;
  private again = false;
  /** told of every positions read with when it was asked (the order gate's model of the trader's book) */
  private readonly positionObservers: Array<(positions: Position[], askedAt: number) => void> = [];

  constructor(private readonly options: AccountWatchOptions) {}

  observePositions(observer: (positions: Position[], askedAt: number) => void): void {
    this.positionObservers.push(observer);
  }

  /**
   * A read soon (after a fill): joined to the read in progress, plus one more after it when asked
   * meanwhile, so a burst of fills costs two reads, not one each. Failures are the poll's to report.
   */
  refreshSoon(): Promise<unknown> {
    if (this.reading) {
      this.again = true;
      return this.reading;
    }
    this.reading = this.refresh()
      .catch(() => undefined)
      .finally(() => {
        this.reading = undefined;
        if (this.again) {
          this.again = false;
          void this.refreshSoon();
        }
      });
    return this.reading;
  }

  /** Reads the account and its positions, and records the figures with the moment they were read. */
  async refresh(): Promise<AccountSnapshot> {
    const { broker, store, clock } = this.options;
    const askedAt = clock.now();
    const [account, positions] = await Promise.all([broker.account(), broker.positions()]);
    const snapshot: AccountSnapshot = { equity: account.equity, dayPnl: account.dayPnl, positions: positions.length, at: clock.now() };
    await store.update((data) => {
      // An older read finishing late must not replace a newer one.
      if ((data.account?.at ?? 0) <= snapshot.at) data.account = snapshot;
    });
    await this.options.onAccount?.(account, askedAt);
    for (const observe of this.positionObservers) observe(positions, askedAt);
    await this.options.onPositions?.(positions);
    return snapshot;
  }
}
