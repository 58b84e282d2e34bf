// The bot's Discord presence shows the trader's state at a glance ("trading-bot online · 2/3
// trades this hour", "HALTED: breaker"). It is read from the data file (what the watch jobs and
// operations last recorded: cheap, no PM2 or broker call) on a short local check and whenever an
// alert is raised; a Presence Update goes to the gateway only when the text or status changed,
// and at most once per `minIntervalMs` (a change inside it goes out at the first check after).
// Discord drops a connection that sends too much; a timer that sent on every tick would.
import type { Clock } from '../clock.ts';
import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { StoreData } from '../store/schema.ts';
import { countedTrades } from '../watch/trade-window.ts';

export type PresenceStatus = 'online' | 'idle' | 'dnd';

export interface TraderPresence {
  text: string;
  status: PresenceStatus;
}

/** The one line the presence shows, from what the data file says now. */
export function traderPresence(data: StoreData, now: number, processName: string, limit: number): TraderPresence {
  if (data.breaker.tripped) return { text: 'HALTED: breaker', status: 'dnd' };
  if (data.watch.duplicates.lastPidSet) return { text: `${processName}: DUPLICATES running`, status: 'dnd' };
  if (data.watch.processDown) return { text: `${processName} DOWN`, status: 'dnd' };
  // What the limit counts: flatten's own closing orders are not the trader's trading.
  const count = countedTrades(data, now).length;
  const trades = `${count}/${limit} trades this hour`;
  if (data.desired?.state === 'stopped') return { text: `${processName} stopped · ${trades}`, status: 'idle' };
  const state = data.desired?.state === 'running' ? `${processName} online` : processName;
  return { text: `${state} · ${trades}${count > limit ? ' OVER LIMIT' : ''}`, status: count > limit ? 'dnd' : 'online' };
}

export interface PresenceOptions {
  read(): Promise<StoreData>;
  /** Sends the presence (discord.js: client.user.setPresence). */
  send(presence: TraderPresence): void;
  clock: Clock;
  logger: Logger;
  processName: string;
  limit: number;
  /** Least time between two presence updates (default 15 s). */
  minIntervalMs?: number;
  /** How often the data file is looked at (default 5 s); looking sends nothing unless it changed. */
  checkMs?: number;
}

export class PresenceUpdater {
  private shown?: string;
  private lastSentAt = Number.NEGATIVE_INFINITY;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  readonly minIntervalMs: number;

  constructor(private readonly options: PresenceOptions) {
    this.minIntervalMs = options.minIntervalMs ?? 15_000;
  }

  start(): void {
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.options.checkMs ?? 5_000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Looks at the state; sends it if it changed and the interval allows. Never throws. */
  refresh(): Promise<void> {
    // One look at a time: two overlapping looks could both see a change and send twice.
    this.running ??= this.look().finally(() => (this.running = undefined));
    return this.running;
  }

  private async look(): Promise<void> {
    const { clock, logger } = this.options;
    try {
      const presence = traderPresence(await this.options.read(), clock.now(), this.options.processName, this.options.limit);
      const key = `${presence.status}|${presence.text}`;
      if (key === this.shown) return;
      if (clock.now() - this.lastSentAt < this.minIntervalMs) return; // goes out at a later look
      this.options.send(presence);
      this.shown = key;
      this.lastSentAt = clock.now();
    } catch (error) {
      logger.warn(`presence: ${describeError(error)}`);
    }
  }
}
