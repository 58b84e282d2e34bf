// The order gate's ledger: the broker's ids of the orders the gate let through, so that a restarted
// gate still knows them (their fills are the trader's, not trading around the gate). Kept like the
// fills, beside the data file in hour files (DATA_DIR/gate, hour-files.ts), one line per order:
// recorded the moment the broker names the order (an append costs the same with 20,000 kept as with
// none, and the data file does not grow with every order), read once when a controller starts.
import path from 'node:path';
import { HourFiles, hourOf, nameOfHour } from './hour-files.ts';

export const GATE_DIR = 'gate';

export interface ForwardedOrder {
  orderId: string;
  /** ms since epoch, when the gate let it through */
  at: number;
}

export class GateLedger {
  private readonly files: HourFiles;

  constructor(
    dataDir: string,
    private readonly options: { retentionMs: number; onTornLine?: (file: string) => void },
  ) {
    this.files = new HourFiles(path.join(dataDir, GATE_DIR), options.onTornLine);
  }

  /** Appends the orders; the hours older than retention (from the newest of them) are deleted. Only the one controller writes. */
  record(orders: readonly ForwardedOrder[]): void {
    if (!orders.length) return;
    const byFile = new Map<string, string>();
    let newest = 0;
    for (const order of orders) {
      const name = nameOfHour(hourOf(order.at));
      byFile.set(name, (byFile.get(name) ?? '') + JSON.stringify({ orderId: order.orderId, at: order.at }) + '\n');
      newest = Math.max(newest, order.at);
    }
    this.files.append(byFile);
    this.files.deleteBefore(hourOf(newest - this.options.retentionMs));
  }

  /** The ids of the newest `limit` orders recorded, oldest first (a line that is not one is skipped). */
  newest(limit: number): string[] {
    const ids: string[] = [];
    for (const name of this.files.names().reverse()) {
      const lines = this.files.linesFrom(name).text.split('\n');
      for (let i = lines.length - 1; i >= 0 && ids.length < limit; i--) {
        const orderId = orderIdOf(lines[i]!);
        if (orderId !== undefined) ids.push(orderId);
      }
      if (ids.length >= limit) break;
    }
    return ids.reverse();
  }
}

function orderIdOf(line: string): string | undefined {
  if (!line) return undefined;
  try {
    const value = JSON.parse(line) as { orderId?: unknown } | null;
    return typeof value?.orderId === 'string' ? value.orderId : undefined;
  } catch {
    return undefined;
  }
}
