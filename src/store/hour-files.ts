// Append-only JSON-lines files in one folder, one per UTC hour (2026-12-07T14.jsonl): what the fills
// ledger and the gate's ledger keep their records in, beside the data file. Appending costs the same
// however much is kept; retention deletes whole files; ranges read only the hours they cover.
//
// A crash can leave a torn last line. Readers stop at the last newline; an append first cuts a torn
// fragment off, so that it starts on a line of its own. The file, and every whole line, is kept.
import fs from 'node:fs';
import path from 'node:path';

export const HOUR_MS = 3600_000;
const NAME = /^\d{4}-\d{2}-\d{2}T\d{2}\.jsonl$/;

export const hourOf = (at: number): number => Math.floor(at / HOUR_MS);
export const nameOfHour = (hour: number): string => `${new Date(hour * HOUR_MS).toISOString().slice(0, 13)}.jsonl`;

/** The hour a file holds, or undefined for a name that is not one of ours. */
export function hourOfName(name: string): number | undefined {
  if (!NAME.test(name)) return undefined;
  const at = Date.parse(`${name.slice(0, 13)}:00:00Z`);
  return Number.isFinite(at) ? hourOf(at) : undefined;
}

export class HourFiles {
  /** the folder's listing, kept while the folder's mtime says no file came or went */
  private listing: { mtimeMs: number; names: string[] } | undefined;
  /**
   * A folder changed this recently is listed again even at the same mtime: on a file system that
   * keeps whole seconds, a file created in the same second as the last listing leaves it unchanged.
   */
  private static readonly SETTLED_MS = 2000;

  constructor(
    readonly dir: string,
    /** told when an append cut a torn last line off */
    private readonly onTornLine?: (file: string) => void,
  ) {}

  /** The files, oldest first (none before the first append). One stat while nothing came or went. */
  names(): string[] {
    let listing = this.listing;
    try {
      const { mtimeMs } = fs.statSync(this.dir);
      const settled = listing?.mtimeMs === mtimeMs && Date.now() - mtimeMs > HourFiles.SETTLED_MS;
      if (!listing || !settled) listing = this.listing = { mtimeMs, names: fs.readdirSync(this.dir).filter((n) => NAME.test(n)).sort() };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    return [...listing.names];
  }

  size(name: string): number {
    return fs.statSync(this.file(name)).size;
  }

  /**
   * Appends each file's text (whole lines) and returns each file's size before it. Only one process
   * appends at a time (the caller holds the data file's lock, or is the one controller).
   */
  append(textByName: ReadonlyMap<string, string>): Map<string, number> {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const before = new Map<string, number>();
    for (const [name, text] of textByName) before.set(name, appendLines(this.file(name), text, this.onTornLine));
    return before;
  }

  /** The whole lines of `name` from byte `from` on, and where they end (a torn last line is left out). */
  linesFrom(name: string, from = 0): { text: string; end: number } {
    let buffer: Buffer;
    try {
      buffer = readFrom(this.file(name), from);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { text: '', end: from }; // retention got there first
      throw error;
    }
    const whole = buffer.lastIndexOf(0x0a) + 1;
    return { text: buffer.subarray(0, whole).toString('utf8'), end: from + whole };
  }

  /** Deletes the files of hours before `hour`. */
  deleteBefore(hour: number): void {
    for (const name of this.names()) if (hourOfName(name)! < hour) fs.rmSync(this.file(name), { force: true });
  }

  private file(name: string): string {
    return path.join(this.dir, name);
  }
}

/**
 * Appends whole lines to a JSON-lines file (created 0600), after cutting off a torn last line a crash
 * left (else the first new line would be glued to it and lost with it). Returns the file's length
 * before the append. One writer at a time.
 */
export function appendLines(file: string, text: string, onTornLine?: (file: string) => void): number {
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    size = 0;
  }
  if (size > 0) {
    const fd = fs.openSync(file, 'r');
    let whole: boolean;
    try {
      const last = Buffer.alloc(1);
      fs.readSync(fd, last, 0, 1, size - 1);
      whole = last[0] === 0x0a;
    } finally {
      fs.closeSync(fd);
    }
    if (!whole) {
      size = readFrom(file, 0).lastIndexOf(0x0a) + 1;
      fs.truncateSync(file, size);
      onTornLine?.(file);
    }
  }
  fs.appendFileSync(file, text, { mode: 0o600 });
  return size;
}

function readFrom(file: string, from: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const buffer = Buffer.alloc(Math.max(0, size - from));
    let read = 0;
    while (read < buffer.length) {
      const n = fs.readSync(fd, buffer, read, buffer.length - read, from + read);
      if (n === 0) break;
      read += n;
    }
    return buffer.subarray(0, read);
  } finally {
    fs.closeSync(fd);
  }
}
