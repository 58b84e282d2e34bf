// The fills ledger: every trade the watch has seen, kept beside the data file rather than in it, so
// recording one costs the same with 100 trades retained as with 100,000 (issue 20).
//
// On disk: DATA_DIR/fills/<UTC hour of the trade>.jsonl, e.g. 2026-12-07T14.jsonl (hour-files.ts), one
// JSON trade per line, appended and never rewritten. A line is the trade as it stands after a fill; a later fill of
// the same order appends the trade again, and reading folds an order's lines together (the largest
// quantity, the earliest time, every execution id) so the order they are read in does not matter.
// Hour files make the two reads the product needs cheap: the rolling hour (the last three files) and a
// range (the files that overlap it); retention deletes whole files.
//
// In memory: only the hot trades (the last HOT_MS before the newest one), which every guard counts.
// Each process keeps its own copy and catches up with what another process appended by reading each
// hot file from where it last stopped (refresh: one stat of the folder, one of each hot file); writes
// happen under the data file's lock (Store.update), which refreshes first.
import path from 'node:path';
import type { Fill } from '../broker/types.ts';
import type { SeenTrade } from './schema.ts';
import { HOUR_MS, HourFiles, hourOf, hourOfName, nameOfHour } from './hour-files.ts';
import { markSortedByTime, mergeFills, type TradeBook } from '../watch/trade-window.ts';

/** What stays in memory: the rolling hour, with room for the poll's look-back and a flatten's hold. */
export const HOT_MS = 2 * HOUR_MS;
export const FILLS_DIR = 'fills';

/** Two records of one order: the order as both show it (fills only add). */
function combine(a: SeenTrade, b: SeenTrade): SeenTrade {
  const activityIds = b.activityIds.every((id) => a.activityIds.includes(id)) ? a.activityIds : [...new Set([...a.activityIds, ...b.activityIds])];
  return { ...a, qty: Math.max(a.qty, b.qty), at: Math.min(a.at, b.at), activityIds };
}

function isTrade(value: unknown): value is SeenTrade {
  const t = value as SeenTrade | null;
  return Boolean(t) && typeof t!.orderId === 'string' && typeof t!.at === 'number' && typeof t!.qty === 'number' && Array.isArray(t!.activityIds);
}

/** The whole lines of `text` as trades; a line that is not one (a torn write, a hand edit) is skipped. */
function parseLines(text: string, into: Map<string, SeenTrade>, skipped: { count: number }): void {
  for (const line of text.split('\n')) {
    if (!line) continue;
    let trade: unknown;
    try {
      trade = JSON.parse(line);
    } catch {
      skipped.count += 1;
      continue;
    }
    if (!isTrade(trade)) {
      skipped.count += 1;
      continue;
    }
    const known = into.get(trade.orderId);
    into.set(trade.orderId, known ? combine(known, trade) : trade);
  }
}

/**
 * The hot trades: by order id for lookups, and in time order so that the trade window finds the
 * hour's bounds by binary search (a fill costs the same with 15,000 trades in the hour as with 15).
 */
class HotTrades {
  private readonly byOrder = new Map<string, SeenTrade>();
  private readonly byTime: SeenTrade[] = [];
  private view: readonly SeenTrade[] | undefined;
  newest = 0;

  get size(): number {
    return this.byOrder.size;
  }

  get(orderId: string): SeenTrade | undefined {
    return this.byOrder.get(orderId);
  }

  /** Adds a trade, or folds it into the one its order made. */
  fold(trade: SeenTrade): void {
    const known = this.byOrder.get(trade.orderId);
    const next = known ? combine(known, trade) : trade;
    this.byOrder.set(trade.orderId, next);
    if (known) this.byTime.splice(this.indexOf(known), 1);
    this.insert(next);
    if (next.at > this.newest) this.newest = next.at;
    this.view = undefined;
  }

  /** Lets go of the trades older than `oldest`. */
  evictBefore(oldest: number): void {
    let n = 0;
    while (n < this.byTime.length && this.byTime[n]!.at < oldest) this.byOrder.delete(this.byTime[n++]!.orderId);
    if (!n) return;
    this.byTime.splice(0, n);
    this.view = undefined;
  }

  /** Oldest first; a copy, so that a snapshot read earlier stays what it was. */
  list(): readonly SeenTrade[] {
    this.view ??= markSortedByTime(this.byTime.slice());
    return this.view;
  }

  /** Forgets the copy handed out (someone changed it). */
  discardView(): void {
    this.view = undefined;
  }

  clear(): void {
    this.byOrder.clear();
    this.byTime.length = 0;
    this.newest = 0;
    this.view = undefined;
  }

  /** After the last trade at or before `trade.at` (the usual case: the end). */
  private insert(trade: SeenTrade): void {
    const list = this.byTime;
    if (!list.length || list[list.length - 1]!.at <= trade.at) {
      list.push(trade);
      return;
    }
    list.splice(firstIndex(list, (t) => t.at > trade.at), 0, trade);
  }

  private indexOf(trade: SeenTrade): number {
    const list = this.byTime;
    for (let i = firstIndex(list, (t) => t.at >= trade.at); i < list.length; i++) if (list[i] === trade) return i;
    return list.indexOf(trade);
  }
}

/** The first index of sorted `list` where `after` holds (it holds from there on), or the length. */
function firstIndex(list: readonly SeenTrade[], after: (t: SeenTrade) => boolean): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (after(list[mid]!)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

export interface LedgerOptions {
  /** how long trades are kept, counted back from the newest one */
  retentionMs: number;
  /** told once per file about lines that could not be read */
  onSkipped?: (file: string, lines: number) => void;
}

export class FillLedger {
  private readonly files: HourFiles;
  private readonly hot = new HotTrades();
  /** bytes of each hot file already read into `hot` (up to its last newline) */
  private readonly consumed = new Map<string, number>();
  private readonly warned = new Set<string>();
  /**
   * The order ids of every trade kept, built the first time a fill cannot say whether its order
   * filled before (no cumulative quantity: ccxt's trades), so that such fills look in the files
   * only for an order that is there, not for every new order.
   */
  private keptOrders?: Set<string>;

  constructor(
    dataDir: string,
    private readonly options: LedgerOptions,
  ) {
    this.files = new HourFiles(path.join(dataDir, FILLS_DIR), (file) => this.warnSkipped(file, 1));
  }

  /** Reads what was appended to the hot files since this process last looked (by itself or another process), and lets go of what is no longer hot. */
  refresh(): void {
    const names = this.files.names();
    const last = names.length ? hourOfName(names[names.length - 1]!)! : undefined;
    if (last === undefined) {
      if (this.hot.size) this.forget();
      return;
    }
    let grew = false;
    for (const name of names) {
      if (hourOfName(name)! < last - HOT_MS / HOUR_MS) continue;
      const from = this.consumed.get(name) ?? 0;
      let size: number;
      try {
        size = this.files.size(name);
      } catch {
        continue; // deleted by retention since the listing
      }
      if (size < from) {
        // Rewritten behind our back (restored from a backup, edited): read the hot hours again.
        this.forget();
        return this.refresh();
      }
      if (size === from) continue;
      const { text, end } = this.files.linesFrom(name, from);
      if (end === from) continue; // only a torn line (an append cut short, or one in progress)
      const skipped = { count: 0 };
      const read = new Map<string, SeenTrade>();
      parseLines(text, read, skipped);
      for (const trade of read.values()) {
        this.hot.fold(trade);
        this.keptOrders?.add(trade.orderId);
      }
      if (skipped.count) this.warnSkipped(path.join(this.files.dir, name), skipped.count);
      this.consumed.set(name, end);
      grew = true;
    }
    if (grew) this.evict();
  }

  /** The hot trades as of the last refresh, oldest first: everything within HOT_MS of the newest trade. Change them through merge(). */
  recent(): readonly SeenTrade[] {
    return this.hot.list();
  }

  /** Whether `view` is recent() as handed out, unchanged; a changed one is never handed out again. */
  isRecent(view: readonly SeenTrade[]): boolean {
    const same = view === this.hot.list() && view.length === this.hot.size;
    if (!same) this.hot.discardView();
    return same;
  }

  /** Whether the order made a trade among the hot ones (as of the last refresh). */
  has(orderId: string): boolean {
    return this.hot.get(orderId) !== undefined;
  }

  /** The newest trade's time (0 before the first). */
  get newestAt(): number {
    return this.hot.newest;
  }

  /**
   * Merges fills (the watch's poll or stream) and appends every trade they changed. Partial fills of
   * one order are one trade, a fill seen before changes nothing. Call under the data file's lock.
   */
  merge(fills: readonly Fill[], onFilled?: (fill: Fill) => void): SeenTrade[] {
    const changed = new Map<string, SeenTrade>();
    const book: TradeBook = {
      get: (orderId, fill) => changed.get(orderId) ?? this.hot.get(orderId) ?? (this.mayBeOlder(orderId, fill) ? this.findOlder(orderId) : undefined),
      put: (trade) => void changed.set(trade.orderId, trade),
    };
    const added = mergeFills(book, fills, onFilled);
    if (changed.size) this.append([...changed.values()]);
    return added;
  }

  /** Writes trades as they are (the migration from the data file); merging with what is there. Under the lock, after refresh. */
  import(trades: readonly SeenTrade[]): void {
    if (trades.length) this.append(trades);
  }

  /** Trades with from < at <= to, oldest first: memory for the hot hours, the hour files for the rest. */
  between(from: number, to: number): SeenTrade[] {
    this.refresh();
    const hotFrom = this.hot.newest - HOT_MS;
    const inRange = (t: SeenTrade) => t.at > from && t.at <= to;
    if (from >= hotFrom) return this.recent().filter(inRange);
    const found = new Map<string, SeenTrade>();
    for (const name of this.files.names()) {
      const hour = hourOfName(name)!;
      if (hour < hourOf(from) || hour > hourOf(to)) continue;
      this.readFile(name, found);
    }
    const oldest = this.hot.newest - this.options.retentionMs;
    return [...found.values()].filter((t) => inRange(t) && t.at >= oldest).sort((a, b) => a.at - b.at);
  }

  /** The newest `count` trades, newest first. */
  latest(count: number): SeenTrade[] {
    this.refresh();
    const hot = [...this.recent()].reverse();
    if (hot.length >= count) return hot.slice(0, count);
    const found = new Map<string, SeenTrade>();
    for (const name of this.files.names().reverse()) {
      this.readFile(name, found);
      if (found.size >= count) break;
    }
    return [...found.values()].sort((a, b) => b.at - a.at).slice(0, count);
  }

  /** Deletes hour files wholly older than retention. Under the lock. */
  applyRetention(): void {
    if (!this.hot.newest) return;
    this.files.deleteBefore(hourOf(this.hot.newest - this.options.retentionMs));
  }

  // ---- internals ----

  private append(trades: readonly SeenTrade[]): void {
    const byFile = new Map<string, string>();
    for (const t of trades) {
      const name = nameOfHour(hourOf(t.at));
      byFile.set(name, (byFile.get(name) ?? '') + JSON.stringify(t) + '\n');
    }
    const before = this.files.append(byFile);
    for (const [name, text] of byFile) {
      // Read up to where this append began (under the lock, after refresh: the usual case), what we
      // wrote is all that is new in it; no need to read it back.
      if ((this.consumed.get(name) ?? 0) === before.get(name)) this.consumed.set(name, before.get(name)! + Buffer.byteLength(text));
    }
    for (const t of trades) {
      if (this.hot.get(t.orderId) || t.at >= this.hot.newest - HOT_MS) this.hot.fold(t);
      this.keptOrders?.add(t.orderId);
    }
    this.evict();
  }

  /** Whether a fill of an order not among the hot trades may belong to an older one (a long-lived order filling again). */
  private mayBeOlder(orderId: string, fill: Fill): boolean {
    if (fill.cumQty !== undefined) return fill.cumQty > fill.qty + 1e-9; // not the order's first fill
    this.keptOrders ??= this.orderIdsKept();
    return this.keptOrders.has(orderId);
  }

  private orderIdsKept(): Set<string> {
    const trades = new Map<string, SeenTrade>();
    for (const name of this.files.names()) this.readFile(name, trades);
    return new Set(trades.keys());
  }

  /** The trade of `orderId` in the files that are not hot, newest first (rare: a long-lived order filling again). */
  private findOlder(orderId: string): SeenTrade | undefined {
    const needle = JSON.stringify(orderId);
    let found: SeenTrade | undefined;
    for (const name of this.files.names().reverse()) {
      const { text } = this.files.linesFrom(name);
      if (!text.includes(needle)) continue;
      const trades = new Map<string, SeenTrade>();
      parseLines(text, trades, { count: 0 });
      const trade = trades.get(orderId);
      // Every file that holds the order: a fill that moved its time earlier wrote it to two hours.
      if (trade) found = found ? combine(found, trade) : trade;
    }
    return found;
  }

  private readFile(name: string, into: Map<string, SeenTrade>): void {
    parseLines(this.files.linesFrom(name).text, into, { count: 0 });
  }

  private evict(): void {
    const oldest = this.hot.newest - HOT_MS;
    this.hot.evictBefore(oldest);
    const firstHotHour = hourOf(oldest) - 1;
    for (const name of this.consumed.keys()) if (hourOfName(name)! < firstHotHour) this.consumed.delete(name);
  }

  private forget(): void {
    this.hot.clear();
    this.consumed.clear();
  }

  private warnSkipped(file: string, lines: number): void {
    if (this.warned.has(file)) return;
    this.warned.add(file);
    this.options.onSkipped?.(file, lines);
  }
}

