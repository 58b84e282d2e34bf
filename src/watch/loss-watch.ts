// The loss limit: a breaker on money, not only on counts (MAX_DAILY_LOSS, MAX_DRAWDOWN, ON_LOSS).
// A bot with a logic bug can lose the account three trades an hour, under every count we guard.
//
// - The day's loss is measured against the broker's own reference: Alpaca's `last_equity`, the
//   account's equity at the previous close of the equity market. "Day" is the broker's: from one
//   close to the next (for crypto, which trades around the clock, the day still turns at that close).
//   An exchange (BROKER=ccxt) keeps no such figure: its reference is the first equity tradewarden
//   recorded since 00:00 UTC (src/broker/ccxt.ts), and the alert says so.
// - The drawdown is measured from the highest equity seen since the trader was last started or
//   resumed (the peak is kept in the data file, so a controller restart keeps it).
// - Judged on every account read the controller makes (the account watch, on the poll's cadence)
//   and on a read made right after each fill the stream brings: no new polling when idle.
// - Once per episode: a new day (a new reference) or a resume starts a new one. Crossing raises a
//   critical `loss_limit` alert; ON_LOSS=stop|flatten also trips the breaker (as ON_RUNAWAY does).
import type { AlertOutbox } from '../alerts/outbox.ts';
import type { Account } from '../broker/types.ts';
import type { Clock } from '../clock.ts';
import type { Config, LossLimit } from '../config.ts';
import type { Logger } from '../log.ts';
import type { StoreData } from '../store/schema.ts';
import type { Store } from '../store/store.ts';
import { traderTrades, withTrades } from './trade-window.ts';

/** The day's loss and the drawdown, as status and /metrics show them. */
export interface LossFigures {
  equity: number;
  /** the broker's day reference (last_equity) */
  reference: number;
  /** equity − reference: negative is a loss */
  dayPnl: number;
  /** MAX_DAILY_LOSS as money, when set */
  dailyLimit?: number;
  /** the highest equity since the trader's last start or resume */
  peak?: number;
  /** (peak − equity) / peak, 0 when at the peak */
  drawdownRatio?: number;
  /** MAX_DRAWDOWN as a ratio, when set */
  drawdownLimit?: number;
}

/** MAX_DAILY_LOSS in money, for a day whose reference is `reference`. */
export function dailyLimitAmount(limit: LossLimit, reference: number): number {
  return 'amount' in limit ? limit.amount : (reference * limit.percent) / 100;
}

export function lossFigures(config: Pick<Config, 'maxDailyLoss' | 'maxDrawdown'>, account: { equity: number; dayPnl: number }, peak?: number): LossFigures {
  const reference = account.equity - account.dayPnl;
  const top = peak === undefined ? undefined : Math.max(peak, account.equity);
  return {
    equity: account.equity,
    reference,
    dayPnl: account.dayPnl,
    ...(config.maxDailyLoss ? { dailyLimit: dailyLimitAmount(config.maxDailyLoss, reference) } : {}),
    ...(top !== undefined && top > 0 ? { peak: top, drawdownRatio: Math.max(0, (top - account.equity) / top) } : {}),
    ...(config.maxDrawdown ? { drawdownLimit: config.maxDrawdown.percent / 100 } : {}),
  };
}

export interface LossWatchOptions {
  config: Pick<Config, 'maxDailyLoss' | 'maxDrawdown' | 'onLoss' | 'ccxt'>;
  store: Store;
  outbox: AlertOutbox;
  clock: Clock;
  logger: Logger;
  /** the breaker: ON_LOSS=stop|flatten trips it (it decides; it is idempotent) */
  onLoss: (reason: string, facts: Record<string, unknown>) => Promise<void>;
}

const money = (n: number) => `${n < 0 ? '-' : ''}$${Math.abs(n).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
const pct = (ratio: number) => `${(ratio * 100).toFixed(2)}%`;

export class LossWatch {
  constructor(private readonly options: LossWatchOptions) {}

  get enabled(): boolean {
    return Boolean(this.options.config.maxDailyLoss || this.options.config.maxDrawdown);
  }

  /** One account read: the peak follows it, and a loss past a limit is alerted once per episode. */
  async check(account: Account, at: number): Promise<void> {
    if (!this.enabled) return;
    const { config, store } = this.options;
    const crossing = await store.update((data) => {
      const loss = (data.loss ??= {});
      if (!loss.peak || account.equity > loss.peak.equity) loss.peak = { equity: account.equity, at };
      const figures = lossFigures(config, account, loss.peak.equity);
      const daily = figures.dailyLimit !== undefined && -figures.dayPnl > figures.dailyLimit;
      const drawdown = figures.drawdownLimit !== undefined && (figures.drawdownRatio ?? 0) > figures.drawdownLimit;
      if (!daily && !drawdown) return undefined;
      // A new day (the broker's reference moves at its close) or a resume starts a new episode.
      const key = `${figures.reference}:${data.breaker.resumedAt ?? 0}`;
      if (loss.alerted?.key === key) return undefined;
      loss.alerted = { key, at };
      return { figures, daily, drawdown, trades: dayTrades(store, data, at) };
    });
    if (crossing) await this.alert(crossing);
  }

  /** A start or a resume: the drawdown is measured from the next account read on. */
  async resetPeak(): Promise<void> {
    if (!this.options.config.maxDrawdown) return;
    await this.options.store.update((data) => {
      if (data.loss?.peak) delete data.loss.peak;
    });
  }

  private async alert(crossing: { figures: LossFigures; daily: boolean; drawdown: boolean; trades: StoreData['trades']['seen'] }): Promise<void> {
    const { outbox, config, onLoss, logger } = this.options;
    const f = crossing.figures;
    const referenceIs = config.ccxt ? 'the first equity recorded since 00:00 UTC' : "the broker's equity at its last close";
    const reasons = [
      ...(crossing.daily ? [`the day's loss ${money(-f.dayPnl)} (${pct(-f.dayPnl / f.reference)} of ${money(f.reference)}, ${referenceIs}) is past MAX_DAILY_LOSS ${money(f.dailyLimit!)}`] : []),
      ...(crossing.drawdown ? [`the drawdown ${pct(f.drawdownRatio!)} from the peak ${money(f.peak!)} is past MAX_DRAWDOWN ${pct(f.drawdownLimit!)}`] : []),
    ];
    const reason = `loss limit: ${reasons.join('; ')}`;
    const lines = crossing.trades.slice(-10).map((t) => `${new Date(t.at).toISOString().slice(11, 19)} ${t.side} ${t.qty} ${t.symbol} @ ${t.price}`);
    const facts = {
      equity: f.equity,
      reference: f.reference,
      dayPnl: f.dayPnl,
      ...(f.dailyLimit !== undefined ? { dailyLimit: f.dailyLimit } : {}),
      ...(f.peak !== undefined ? { peak: f.peak, drawdownRatio: f.drawdownRatio } : {}),
      ...(f.drawdownLimit !== undefined ? { drawdownLimit: f.drawdownLimit } : {}),
      action: config.onLoss,
      trades: crossing.trades.length,
    };
    await outbox.raise({
      kind: 'loss_limit',
      severity: 'critical',
      key: `loss_limit:${f.reference}:${Date.now()}`,
      title: 'Loss limit crossed',
      body:
        `Equity ${money(f.equity)}: ${reasons.join('; ')}.` +
        (lines.length ? `\nThe day's trades (${crossing.trades.length}${crossing.trades.length > lines.length ? `, the last ${lines.length}` : ''}):\n${lines.join('\n')}` : '\nNo trade recorded today: the positions moved.') +
        (config.onLoss === 'alert' ? '\nON_LOSS=alert: nothing was halted. Look at /account, then stop or flatten if needed.' : ''),
      facts,
    });
    await onLoss(reason, facts).catch((error: unknown) => logger.error(`loss limit: the breaker could not act: ${String(error)}`));
  }
}

/** The trader's trades of the last 24 hours, oldest first (what led to the day's loss). */
function dayTrades(store: Store, data: StoreData, now: number): StoreData['trades']['seen'] {
  return traderTrades(withTrades(data, store.trades(now - 24 * 3600_000, now)), now);
}
