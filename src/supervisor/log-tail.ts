// The last lines of a log file, read backwards from its end in chunks: a trader's log can be
// gigabytes, `/bot logs` wants twenty lines.
import fs from 'node:fs/promises';

const CHUNK = 64 * 1024;

/** Last `lines` lines of `file` ('' if it does not exist), reading at most `maxBytes` from the end. */
export async function tailLines(file: string, lines: number, maxBytes = 4 * 1024 * 1024): Promise<string[]> {
  if (lines <= 0) return [];
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  try {
    const { size } = await handle.stat();
    const floor = Math.max(0, size - maxBytes);
    let position = size;
    let buffered = Buffer.alloc(0);
    let newlines = 0;
    // Stop once we hold more than `lines` line breaks (the extra one bounds the first full line).
    while (position > floor && newlines <= lines) {
      const length = Math.min(CHUNK, position - floor);
      position -= length;
      const chunk = Buffer.alloc(length);
      await handle.read(chunk, 0, length, position);
      for (const byte of chunk) if (byte === 0x0a) newlines++;
      buffered = Buffer.concat([chunk, buffered]);
    }
    const text = buffered.toString('utf8');
    const all = text.split('\n');
    if (all[all.length - 1] === '') all.pop(); // the file's final newline
    if (position > 0) all.shift(); // the first line may be cut off (the loop read past `lines` breaks, or hit maxBytes)
    return all.slice(-lines);
  } finally {
    await handle.close();
  }
}

/** Bytes in `file` now (0 if absent): a mark to read only what is written after it. */
export async function fileSize(file: string): Promise<number> {
  try {
    return (await fs.stat(file)).size;
  } catch {
    return 0;
  }
}

/** Text appended to `file` since `offset`, at most `maxBytes` of it. */
export async function readSince(file: string, offset: number, maxBytes = 1024 * 1024): Promise<string> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch {
    return '';
  }
  try {
    const { size } = await handle.stat();
    const start = size < offset ? 0 : offset; // rotated/truncated: read from the top
    const length = Math.min(size - start, maxBytes);
    if (length <= 0) return '';
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, start);
    return buffer.toString('utf8');
  } finally {
    await handle.close();
  }
}
