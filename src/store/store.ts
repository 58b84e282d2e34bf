// The data file: one JSON document in DATA_DIR, the only module that imports lowdb.
// lowdb writes atomically (temp file + rename) but is single-process; the controller and every CLI
// invocation share this file, so each change is a read-modify-write under a cross-process lock.
// A file that cannot be parsed is never overwritten: it is renamed aside and reported.
import fs from 'node:fs';
import path from 'node:path';
import { Low } from 'lowdb';
import { JSONFile } from 'lowdb/node';
import { Mutex, withFileLock } from '../lock.ts';
import { failed } from '../errors.ts';
import { RETENTION, SCHEMA_VERSION, emptyStore, type AuditEntry, type StoreData } from './schema.ts';

export const STORE_FILE = 'tradewarden.json';

export class Store {
  readonly file: string;
  private readonly db: Low<StoreData>;
  private readonly mutex = new Mutex();
  private readonly keptAsideListeners: Array<(keptAs: string, reason: string) => void> = [];

  constructor(readonly dataDir: string) {
    fs.mkdirSync(dataDir, { recursive: true });
    this.file = path.join(dataDir, STORE_FILE);
    this.db = new Low<StoreData>(new JSONFile<StoreData>(this.file), emptyStore());
  }

  /** Called when a corrupt file was renamed aside (the controller raises an alert). */
  onKeptAside(listener: (keptAs: string, reason: string) => void): void {
    this.keptAsideListeners.push(listener);
  }

  /** A consistent snapshot of the whole file. */
  async read(): Promise<StoreData> {
    return this.mutex.run(() => this.load());
  }

  /** Read-modify-write under the cross-process lock; `change` mutates the draft and may return a value. */
  async update<T>(change: (data: StoreData) => T): Promise<T> {
    return this.mutex.run(() =>
      withFileLock(
        this.file,
        async () => {
          const data = await this.load();
          const before = JSON.stringify(data);
          const result = change(data);
          applyRetention(data);
          // The watch jobs check state every few seconds and usually change nothing: no write then.
          if (JSON.stringify(data) !== before) {
            this.db.data = data;
            await this.db.write();
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

  private async load(): Promise<StoreData> {
    let raw: string;
    try {
      raw = await fs.promises.readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return emptyStore();
      throw failed(`cannot read the data file ${this.file}`, error);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch (error) {
      return this.keepAside(`not valid JSON (${(error as Error).message})`);
    }
    if (!isStoreShape(parsed)) return this.keepAside('not a tradewarden data file');
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
    return emptyStore();
  }
}

function isStoreShape(value: unknown): value is StoreData {
  if (!value || typeof value !== 'object') return false;
  const data = value as Partial<StoreData>;
  return typeof data.schemaVersion === 'number' && Array.isArray(data.audit) && Array.isArray(data.alerts);
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

function applyRetention(data: StoreData): void {
  if (data.audit.length > RETENTION.auditEntries) data.audit.splice(0, data.audit.length - RETENTION.auditEntries);
  // Undelivered alerts are never dropped; delivered ones keep only the newest.
  const delivered = data.alerts.filter((a) => isDelivered(a));
  if (delivered.length > RETENTION.deliveredAlerts) {
    const drop = new Set(delivered.slice(0, delivered.length - RETENTION.deliveredAlerts).map((a) => a.id));
    data.alerts = data.alerts.filter((a) => !drop.has(a.id));
  }
  const newest = data.trades.seen.reduce((max, t) => Math.max(max, t.at), 0);
  data.trades.seen = data.trades.seen.filter((t) => t.at >= newest - RETENTION.tradeAgeMs);
  if (data.trades.ownOrders) data.trades.ownOrders = data.trades.ownOrders.filter((o) => o.at >= newest - RETENTION.tradeAgeMs);
}

function isDelivered(alert: StoreData['alerts'][number]): boolean {
  const deliveries = Object.values(alert.deliveries);
  return deliveries.length > 0 && deliveries.every((d) => d.deliveredAt !== undefined);
}
