// Small file-system answers the doctor's checks share: a mode as people write it, and whether a
// folder that does not exist yet could be created by this user.
import fs from 'node:fs';
import path from 'node:path';

/** 0o644 → "0644" */
export const octal = (mode: number) => `0${(mode & 0o777).toString(8).padStart(3, '0')}`;

/** Whether the nearest existing folder above `dir` lets this user create it. */
export function writableAncestor(dir: string): boolean {
  for (let head = path.dirname(path.resolve(dir)); ; head = path.dirname(head)) {
    if (fs.existsSync(head)) {
      try {
        fs.accessSync(head, fs.constants.W_OK | fs.constants.X_OK);
        return true;
      } catch {
        return false;
      }
    }
    if (path.dirname(head) === head) return false;
  }
}
