// The equity curve of an account whose broker keeps none (exchanges have no portfolio history):
// each account read appends its equity, at most once a minute, to a file of its own in DATA_DIR
// (one JSON object a line, appended, so the controller and a CLI call may both write; a line torn by
// a crash is cut off by the next append, hour-files.ts). /pnl, the
// stop report and the day's reference are drawn from it, and say how far back it goes.
// Loaded once per process; a long history is thinned when loaded (hourly beyond two days) so the
// file stays small and the load quick.
import fs from 'node:fs';
import path from 'node:path';
import { appendLines } from './hour-files.ts';

export interface EquitySnapshot {
  /** ms since epoch */
  at: number;
  equity: number;
}

const EVERY_MS = 60_000;
const KEEP_FINE_MS = 2 * 86_400_000;
const THIN_STEP_MS = 3_600_000;
const KEEP_MS = 400 * 86_400_000;
/** A file longer than this is rewritten thinned at load. */
const THIN_AT_LINES = 10_000;

export class EquityRecord {
  private points?: EquitySnapshot[];

  constructor(readonly file: string) {}

  static in(dataDir: string, name: string): EquityRecord {
    return new EquityRecord(path.join(dataDir, `equity-${name.replace(/[^a-z0-9_-]/gi, '_')}.jsonl`));
  }

  /** Every snapshot, oldest first. */
  all(): readonly EquitySnapshot[] {
    this.points ??= this.load();
    return this.points;
  }

  /** Records `equity` at `at` unless the last one is under a minute old (or newer: a late read). */
  note(at: number, equity: number): void {
    const points = this.all() as EquitySnapshot[];
    const last = points.at(-1);
    if (!Number.isFinite(equity) || (last && at - last.at < EVERY_MS)) return;
    points.push({ at, equity });
    fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    appendLines(this.file, `${JSON.stringify({ at, equity })}\n`);
  }

  /** The first snapshot at or after `from` (the day's reference), else undefined. */
  firstFrom(from: number): EquitySnapshot | undefined {
    return this.all().find((p) => p.at >= from);
  }

  private load(): EquitySnapshot[] {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch {
      return [];
    }
    const lines = text.split('\n');
    const points: EquitySnapshot[] = [];
    for (const line of lines) {
      try {
        const p = JSON.parse(line) as Partial<EquitySnapshot>;
        if (typeof p.at === 'number' && typeof p.equity === 'number' && Number.isFinite(p.equity)) points.push({ at: p.at, equity: p.equity });
      } catch {
        // a line cut short by a crash while appending: the others stand
      }
    }
    points.sort((a, b) => a.at - b.at);
    if (lines.length <= THIN_AT_LINES) return points;
    const newest = points.at(-1)?.at ?? 0;
    let lastKept = -Infinity;
    const thinned = points.filter((p) => {
      if (p.at < newest - KEEP_MS) return false;
      if (p.at >= newest - KEEP_FINE_MS || p.at - lastKept >= THIN_STEP_MS) {
        lastKept = p.at;
        return true;
      }
      return false;
    });
    const temporary = `${this.file}.${process.pid}.tmp`;
    fs.writeFileSync(temporary, thinned.map((p) => JSON.stringify(p)).join('\n') + '\n', { mode: 0o600 });
    fs.renameSync(temporary, this.file);
    return thinned;
  }
}
