// The data file: one JSON document in DATA_DIR, the only module that imports lowdb.
// Each write is atomic (temp file + rename) but lowdb is single-process; the controller and every CLI
// invocation share this file, so each change is a read-modify-write under a cross-process lock.
// A file that cannot be parsed is never overwritten: it is renamed aside and reported.
// The file holds the audit and the account's alerts: it is written 0600 in a 0700 DATA_DIR.
// The trades are not in it: they are in the fills ledger beside it (fill-ledger.ts), and a loaded
// document's trades.seen is the ledger's hot trades, read-only; fills are recorded by recordFills.
import fs from 'node:fs';
import path from 'node:path';
import type { Adapter, Low } from 'lowdb';
import { Mutex, withFileLock } from '../lock.ts';
import { OperationError, describeError, failed } from '../errors.ts';
import { createDataDir, unusableDataDir } from './data-dir.ts';
import { FillLedger } from './fill-ledger.ts';
import { GateLedger } from './gate-ledger.ts';
import { RETENTION, SCHEMA_VERSION, emptyStore, type AuditEntry, type SeenTrade, type StoreData } from './schema.ts';
import type { Fill } from '../broker/types.ts';

export const STORE_FILE = 'tradewarden.json';
/** Far above what retention lets the file grow to; beyond it the file is not one we wrote. */
export const MAX_FILE_BYTES = 100 * 1024 * 1024;

export class Store {
  readonly file: string;
  /** lowdb, loaded on the first write: reads parse the file themselves (a reading CLI skips ~15 ms). */
  private db: Low<StoreData> | undefined;
  private readonly mutex = new Mutex();
  private readonly keptAsideListeners: Array<(keptAs: string, reason: string) => void> = [];
  private readonly skippedListeners: Array<(file: string, lines: number) => void> = [];
  /** Every trade seen, by the hour (DATA_DIR/fills): appended to, read by range, never rewritten. */
  readonly fills: FillLedger;
  /** The orders the order gate let through (DATA_DIR/gate), likewise. */
  readonly gate: GateLedger;

  constructor(readonly dataDir: string) {
    try {
      createDataDir(dataDir);
      fs.accessSync(dataDir, fs.constants.R_OK | fs.constants.W_OK | fs.constants.X_OK);
    } catch (error) {
      throw unusableDataDir(dataDir, error);
    }
    this.file = path.join(dataDir, STORE_FILE);
    this.fills = new FillLedger(dataDir, {
      retentionMs: RETENTION.tradeAgeMs,
      onSkipped: (file, lines) => this.skippedListeners.forEach((listener) => listener(file, lines)),
    });
    this.gate = new GateLedger(dataDir, {
      retentionMs: RETENTION.tradeAgeMs,
      onTornLine: (file) => this.skippedListeners.forEach((listener) => listener(file, 1)),
    });
  }

  /** Called when the ledger met lines it could not read (a torn last line is cut off, others skipped). */
  onFillsSkipped(listener: (file: string, lines: number) => void): void {
    this.skippedListeners.push(listener);
  }

  /** Called when a corrupt file was renamed aside (the controller raises an alert). */
  onKeptAside(listener: (keptAs: string, reason: string) => void): void {
    this.keptAsideListeners.push(listener);
  }

  /** A consistent snapshot of the whole file. */
  async read(): Promise<StoreData> {
    const data = await this.mutex.run(() => this.load());
    if (!legacyTrades(data) && !data.gate) return data;
    // A data file from before the ledgers: its trades and the gate's orders move into them now, under the lock.
    await this.update(() => undefined);
    return this.read();
  }

  /**
   * Records fills in the ledger and shows them in `data.trades.seen`; returns the trades that are new
   * (see mergeFills). Only inside update(): the ledger is appended to under the data file's lock.
   */
  recordFills(data: StoreData, fills: readonly Fill[], onFilled?: (fill: Fill) => void): SeenTrade[] {
    const added = this.fills.merge(fills, onFilled);
    data.trades.seen = this.fills.recent();
    return added;
  }

  /** Trades with from < at <= to, oldest first, from the whole retention (the hot hours come from memory). */
  trades(from: number, to: number): SeenTrade[] {
    return this.fills.between(from, to);
  }

  /** The newest `count` trades, newest first. */
  latestTrades(count: number): SeenTrade[] {
    return this.fills.latest(count);
  }

  /** Read-modify-write under the cross-process lock; `change` mutates the draft and may return a value. */
  async update<T>(change: (data: StoreData) => T): Promise<T> {
    return this.mutex.run(() =>
      withFileLock(
        this.file,
        async () => {
          const data = await this.load();
          const legacy = legacyTrades(data);
          // Ledgers first, then the document without them: a crash between the two imports again, harmlessly.
          if (legacy) {
            this.fills.import(legacy);
            data.trades.seen = this.fills.recent();
          }
          const legacyGate = data.gate;
          if (legacyGate) {
            this.gate.record(legacyGate.forwarded);
            delete data.gate;
          }
          const before = legacy || legacyGate ? '' : JSON.stringify(documentOf(data));
          const result = change(data);
          if (!this.fills.isRecent(data.trades.seen)) {
            throw new Error('data.trades.seen is the fills ledger\'s view: record fills with Store.recordFills, not by changing the list');
          }
          applyRetention(data, this.fills.newestAt);
          this.fills.applyRetention();
          // The watch jobs check state every few seconds and usually change nothing: no write then.
          const after = documentOf(data);
          if (JSON.stringify(after) !== before) {
            const db = await this.writer();
            db.data = after;
            await db.write();
          }
          return result;
        },
        { what: 'another tradewarden process writing the data file', waitMs: 30_000 },
      ),
    );
  }

  async audit(entry: AuditEntry): Promise<void> {
    await this.update((data) => {
      data.audit.push(entry);
    });
  }

  private async writer(): Promise<Low<StoreData>> {
    if (!this.db) {
      const { Low } = await import('lowdb');
      this.db = new Low<StoreData>(new PrivateJsonFile(this.file), emptyStore());
    }
    return this.db;
  }

  /** The document, and the ledger caught up. */
  private async load(): Promise<StoreData> {
    this.fills.refresh();
    let raw: string;
    try {
      const { size } = await fs.promises.stat(this.file);
      if (size > MAX_FILE_BYTES) {
        throw failed(
          `the data file ${this.file} is ${(size / 1024 / 1024).toFixed(0)} MB, more than tradewarden reads (${MAX_FILE_BYTES / 1024 / 1024} MB; ` +
            `retention keeps the ones it writes to a few MB): move it aside (mv ${this.file} ${this.file}.big) and tradewarden starts with an empty one`,
        );
      }
      raw = await fs.promises.readFile(this.file, 'utf8');
    } catch (error) {
      if (error instanceof OperationError) throw error;
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return this.withTrades(emptyStore());
      throw failed(
        `cannot read the data file ${this.file} (${code ?? describeError(error)}): ` +
          (code === 'EACCES' || code === 'EPERM' ? 'give this user read and write access to it' : code === 'EISDIR' ? 'a folder has its name; move it away' : 'check the disk and the file, or point DATA_DIR elsewhere'),
        error,
      );
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch (error) {
      return this.keepAside(`not valid JSON (${(error as Error).message})`);
    }
    // A newer tradewarden's file is refused, never kept aside as "wrong shape".
    const version = (parsed as { schemaVersion?: unknown } | null)?.schemaVersion;
    if (typeof version === 'number' && version > SCHEMA_VERSION) return this.checkedVersion(parsed as StoreData);
    const wrong = shapeProblem(parsed);
    if (wrong) return this.keepAside(`not a tradewarden data file (${wrong})`);
    const data = this.checkedVersion(parsed as StoreData);
    // Schema 1 kept the trades here: they stay in view until update() moves them to the ledger.
    if (data.trades.seen?.length) {
      legacyOf.set(data, [...data.trades.seen]);
      return data;
    }
    return this.withTrades(data);
  }

  /** The document as the rest of the code sees it: trades.seen is the ledger's hot trades (and, before migration, the file's own). */
  private withTrades(data: StoreData): StoreData {
    data.trades.seen = this.fills.recent();
    return data;
  }

  private checkedVersion(parsed: StoreData): StoreData {
    if (parsed.schemaVersion > SCHEMA_VERSION) {
      throw failed(
        `the data file ${this.file} has schema version ${parsed.schemaVersion}, newer than this tradewarden understands (${SCHEMA_VERSION}); upgrade tradewarden or point DATA_DIR elsewhere`,
      );
    }
    return withDefaults(parsed);
  }

  private keepAside(reason: string): StoreData {
    const keptAs = `${this.file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    fs.renameSync(this.file, keptAs);
    for (const listener of this.keptAsideListeners) listener(keptAs, reason);
    return this.withTrades(emptyStore());
  }
}

/**
 * lowdb's JSONFile (same text, same temp file + rename), but owner-only: its steno writer creates
 * each temp file with the umask's mode (0644), and the rename makes that the data file's mode. Here
 * the temp file is 0600 before a byte is written (chmod too: a temp file left by a crash keeps its
 * old mode when reopened).
 */
class PrivateJsonFile implements Adapter<StoreData> {
  private readonly temp: string;

  constructor(private readonly file: string) {
    this.temp = path.join(path.dirname(file), `.${path.basename(file)}.tmp`);
  }

  /** Unused by Store (load() parses and checks the file itself); here for lowdb's Adapter. */
  async read(): Promise<StoreData | null> {
    try {
      return JSON.parse(await fs.promises.readFile(this.file, 'utf8')) as StoreData;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }

  async write(data: StoreData): Promise<void> {
    const handle = await fs.promises.open(this.temp, 'w', 0o600);
    try {
      await handle.chmod(0o600);
      await handle.writeFile(JSON.stringify(data, null, 2), 'utf8');
    } finally {
      await handle.close();
    }
    await fs.promises.rename(this.temp, this.file);
  }
}

/**
 * Why `value` is not a data file this code can work with, or undefined. Valid JSON with the wrong
 * types inside (a hand edit, another program's file) is as unusable as broken JSON: every part
 * that the code walks is checked, so stop and status never meet "x.filter is not a function".
 */
export function shapeProblem(value: unknown): string | undefined {
  const isObject = (v: unknown): v is Record<string, unknown> => Boolean(v) && typeof v === 'object' && !Array.isArray(v);
  if (!isObject(value)) return 'not a JSON object';
  if (typeof value.schemaVersion !== 'number') return 'schemaVersion is not a number';
  if (!Array.isArray(value.audit) || !value.audit.every(isObject)) return 'audit is not a list of entries';
  if (!Array.isArray(value.alerts) || !value.alerts.every((a) => isObject(a) && typeof a.id === 'string' && typeof a.key === 'string' && isObject(a.deliveries))) {
    return 'alerts is not a list of alerts';
  }
  for (const section of ['breaker', 'trades', 'watch', 'discord', 'desired'] as const) {
    if (value[section] !== undefined && !isObject(value[section])) return `${section} is not an object`;
  }
  if (isObject(value.breaker) && value.breaker.tripped !== undefined && typeof value.breaker.tripped !== 'boolean') return 'breaker.tripped is not true/false';
  const trades = value.trades as Record<string, unknown> | undefined;
  if (trades?.seen !== undefined) {
    const ok = Array.isArray(trades.seen) && trades.seen.every((t) => isObject(t) && typeof t.orderId === 'string' && typeof t.at === 'number' && Array.isArray(t.activityIds));
    if (!ok) return 'trades.seen is not a list of trades';
  }
  if (trades?.cursor !== undefined && (typeof trades.cursor !== 'string' || Number.isNaN(Date.parse(trades.cursor)))) return 'trades.cursor is not a date';
  if (trades?.ownOrders !== undefined && !(Array.isArray(trades.ownOrders) && trades.ownOrders.every((o) => isObject(o) && typeof o.orderId === 'string'))) {
    return 'trades.ownOrders is not a list of orders';
  }
  if (trades?.flattens !== undefined && !(Array.isArray(trades.flattens) && trades.flattens.every((f) => isObject(f) && typeof f.startedAt === 'number' && Array.isArray(f.positions)))) {
    return 'trades.flattens is not a list of flattens';
  }
  const gate = value.gate as Record<string, unknown> | undefined;
  if (gate !== undefined && !(isObject(gate) && Array.isArray(gate.forwarded) && gate.forwarded.every((f) => isObject(f) && typeof f.orderId === 'string'))) return 'gate is not the gate\'s ledger';
  if (trades?.held !== undefined && !(Array.isArray(trades.held) && trades.held.every((id) => typeof id === 'string'))) return 'trades.held is not a list of order ids';
  const watch = value.watch as Record<string, unknown> | undefined;
  if (watch) {
    for (const part of ['tradeRate', 'duplicates', 'crashLoop'] as const) {
      if (watch[part] !== undefined && !isObject(watch[part])) return `watch.${part} is not an object`;
    }
  }
  return undefined;
}

/** Older files may lack newer sections: fill them in without touching what is there. */
function withDefaults(data: StoreData): StoreData {
  const base = emptyStore();
  return {
    ...base,
    ...data,
    breaker: { ...base.breaker, ...data.breaker },
    trades: { ...base.trades, ...data.trades },
    watch: { ...base.watch, ...data.watch },
    discord: { ...base.discord, ...data.discord },
    schemaVersion: SCHEMA_VERSION,
  };
}

/** `newest`: the newest trade's time, which the trade-related lists are kept relative to. */
function applyRetention(data: StoreData, newest: number): void {
  if (data.audit.length > RETENTION.auditEntries) data.audit.splice(0, data.audit.length - RETENTION.auditEntries);
  // Undelivered alerts are never dropped; delivered ones keep only the newest.
  const delivered = data.alerts.filter((a) => isDelivered(a));
  if (delivered.length > RETENTION.deliveredAlerts) {
    const drop = new Set(delivered.slice(0, delivered.length - RETENTION.deliveredAlerts).map((a) => a.id));
    data.alerts = data.alerts.filter((a) => !drop.has(a.id));
  }
  if (data.trades.ownOrders) data.trades.ownOrders = data.trades.ownOrders.filter((o) => o.at >= newest - RETENTION.tradeAgeMs);
  if (data.trades.flattens) data.trades.flattens = data.trades.flattens.filter((f) => f.startedAt >= newest - RETENTION.tradeAgeMs).slice(-RETENTION.flattens);
}

/** The trades a loaded data file from before the ledger (schema 1) still held. */
const legacyOf = new WeakMap<StoreData, SeenTrade[]>();
const legacyTrades = (data: StoreData): SeenTrade[] | undefined => legacyOf.get(data);

/** What is written to the data file: everything but the trades (they are in the ledger). */
function documentOf(data: StoreData): StoreData {
  const { seen: _inLedger, ...trades } = data.trades;
  return { ...data, trades: trades as StoreData['trades'] };
}

function isDelivered(alert: StoreData['alerts'][number]): boolean {
  const deliveries = Object.values(alert.deliveries);
  return deliveries.length > 0 && deliveries.every((d) => d.deliveredAt !== undefined);
}
