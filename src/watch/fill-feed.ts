// The fill feed (FILL_FEED=on): every fill of the account as one compact line — time, symbol, side,
// quantity, price, and whose order it was (the trader's, tradewarden's own flatten, foreign: made
// while no copy of the trader ran here, or past the order gate). For reading, not for paging: no
// mention, no notification.
//
// What shaped it:
// - Never holding the watch: the trade watch hands fills over synchronously (note()) and goes on;
//   posting happens here, on its own timer.
// - A runaway makes hundreds of fills a minute: at most one message per FEED_INTERVAL_MS, each
//   carrying everything queued since the last; a batch longer than one message shows what fits
//   and counts the rest ("+N more", by symbol). Discord's rate limits are respected by discord.js
//   (a 429 is waited out, the send is not dropped) and the next send waits for the last.
// - Never dropping a fill: a batch that cannot be posted (Discord down) goes back in front of the
//   queue and is tried again at the next interval.
// - Whose order: decided when the batch is posted, from the data file, so the flatten that names
//   its closing orders, or the foreign-trading check that judges a fill, has had its moment.
import type { Fill } from '../broker/types.ts';
import type { Clock } from '../clock.ts';
import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { StoreData } from '../store/schema.ts';
import type { Store } from '../store/store.ts';
import { heldByFlatten, openFlattens, ownOrderIds } from './trade-window.ts';

/** At most one message per this long under a burst. */
export const FEED_INTERVAL_MS = 5_000;
/** A first fill waits this long for the ones that come with it (the legs of one order, a burst's start). */
export const FEED_GATHER_MS = 1_000;

export type FillOwner = 'trader' | 'flatten' | 'foreign' | 'bypass';
export interface FeedFill extends Pick<Fill, 'orderId' | 'symbol' | 'side' | 'qty' | 'price' | 'at'> {
  owner: FillOwner;
}

export interface FeedSink {
  readonly name: string;
  /** Posts one message for the whole batch (what does not fit is counted in it); throws to have it kept. */
  post(fills: readonly FeedFill[]): Promise<void>;
}

export interface FillFeedOptions {
  store: Store;
  clock: Clock;
  logger: Logger;
  intervalMs?: number;
  gatherMs?: number;
  /** false: no timer of its own (tests call flushDue after moving the clock) */
  autoFlush?: boolean;
}

export class FillFeed {
  private queue: Array<Pick<Fill, 'orderId' | 'symbol' | 'side' | 'qty' | 'price' | 'at'>> = [];
  private firstQueuedAt?: number;
  private lastSentAt = Number.NEGATIVE_INFINITY;
  private sink?: FeedSink;
  private timer?: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();
  private stopped = false;
  readonly intervalMs: number;
  readonly gatherMs: number;

  constructor(private readonly options: FillFeedOptions) {
    this.intervalMs = options.intervalMs ?? FEED_INTERVAL_MS;
    this.gatherMs = options.gatherMs ?? FEED_GATHER_MS;
  }

  /** Where batches go (the Discord front sets it); without one they are logged. */
  setSink(sink: FeedSink): void {
    this.sink = sink;
  }

  /** The trade watch's listener: takes note and returns at once. */
  note(fills: readonly Fill[]): void {
    if (this.stopped || !fills.length) return;
    for (const f of fills) this.queue.push({ orderId: f.orderId, symbol: f.symbol, side: f.side, qty: f.qty, price: f.price, at: f.at });
    this.firstQueuedAt ??= this.options.clock.now();
    this.arm();
  }

  /** Fills waiting to be posted. */
  get pending(): number {
    return this.queue.length;
  }

  /** When the next batch may go (ms since epoch), or undefined when nothing waits. */
  get dueAt(): number | undefined {
    if (!this.queue.length || this.firstQueuedAt === undefined) return undefined;
    return Math.max(this.firstQueuedAt + this.gatherMs, this.lastSentAt + this.intervalMs);
  }

  /** Posts one batch when it is due by the clock; one at a time. */
  flushDue(): Promise<void> {
    this.flushing = this.flushing.then(() => this.flushOnce());
    return this.flushing;
  }

  /** Stops the timer after one last try to post what is queued (a controller stopping). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.queue.length) {
      this.flushing = this.flushing.then(() => this.flushOnce(true));
      await this.flushing;
    }
  }

  private async flushOnce(force = false): Promise<void> {
    const due = this.dueAt;
    if (due === undefined || (!force && due > this.options.clock.now())) return;
    const batch = this.queue;
    this.queue = [];
    this.firstQueuedAt = undefined;
    this.lastSentAt = this.options.clock.now();
    try {
      const fills = await this.withOwners(batch);
      if (this.sink) await this.sink.post(fills);
      else for (const line of feedLines(fills)) this.options.logger.info(`fill ${line}`);
    } catch (error) {
      // Kept, in order, before what came meanwhile: tried again at the next interval.
      this.queue = [...batch, ...this.queue];
      this.firstQueuedAt = this.options.clock.now();
      this.options.logger.warn(`fill feed: ${batch.length} fill(s) not posted yet (${describeError(error)}); trying again in ${Math.round(this.intervalMs / 1000)} s`);
    } finally {
      this.arm();
    }
  }

  private async withOwners(batch: ReadonlyArray<Omit<FeedFill, 'owner'>>): Promise<FeedFill[]> {
    let data: StoreData | undefined;
    try {
      data = await this.options.store.read();
    } catch (error) {
      this.options.logger.debug(`fill feed: whose orders unknown (${describeError(error)})`);
    }
    if (!data) return batch.map((f) => ({ ...f, owner: 'trader' }));
    const own = ownOrderIds(data);
    const open = openFlattens(data, this.options.clock.now());
    // The foreign-trading episode keeps its last 200 order ids; a longer burst is foreign by its time.
    const episode = data.watch.foreignTrading;
    const foreign = new Set(episode.orderIds ?? []);
    const inForeignEpisode = (at: number) => episode.inEpisode && episode.since !== undefined && at >= episode.since;
    const bypass = new Set(data.watch.gateBypass?.orderIds ?? []);
    return batch.map((f) => {
      const held = heldByFlatten({ ...f, activityIds: [] }, open);
      const owner: FillOwner = own.has(f.orderId) || held ? 'flatten' : foreign.has(f.orderId) || inForeignEpisode(f.at) ? 'foreign' : bypass.has(f.orderId) ? 'bypass' : 'trader';
      return { ...f, owner };
    });
  }

  private arm(): void {
    if (this.stopped || this.options.autoFlush === false) return;
    const due = this.dueAt;
    if (due === undefined || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flushDue();
    }, Math.max(0, due - this.options.clock.now()) + 5);
    this.timer.unref();
  }
}

const OWNER_WORD: Record<FillOwner, string> = { trader: 'trader', flatten: 'flatten', foreign: 'FOREIGN', bypass: 'past the gate' };

/** "BUY 5 AAPL @ 200.00 · trader" (the time is each front's: Discord shows it in the reader's zone). */
export function feedLine(fill: FeedFill): string {
  return `${fill.side.toUpperCase()} ${fill.qty} ${fill.symbol} @ ${fill.price} · ${OWNER_WORD[fill.owner]}`;
}

/** The log's lines: the fill's time (UTC) first. */
export function feedLines(fills: readonly FeedFill[]): string[] {
  return fills.map((f) => `${new Date(f.at).toISOString().slice(11, 19)}Z ${feedLine(f)}`);
}

/** "+N more: AAPL 40 buy/38 sell, MSFT 2 sell" — the fills a message had no room for, every one counted. */
export function moreLine(rest: readonly FeedFill[]): string {
  const bySymbol = new Map<string, { buy: number; sell: number }>();
  for (const f of rest) {
    const row = bySymbol.get(f.symbol) ?? { buy: 0, sell: 0 };
    if (f.side === 'buy') row.buy++;
    else row.sell++;
    bySymbol.set(f.symbol, row);
  }
  const parts = [...bySymbol].map(([symbol, n]) => `${symbol} ${[n.buy ? `${n.buy} buy` : '', n.sell ? `${n.sell} sell` : ''].filter(Boolean).join('/')}`);
  return `+${rest.length} more: ${parts.join(', ')}`;
}
