// The folder holding package.json (and ecosystem.config.js, examples/): found by walking up, so the
// same code works run from src/ through tsx and bundled into dist/ (cli.cjs, controller/).
import fs from 'node:fs';
import path from 'node:path';

function findProjectRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${from}: tradewarden's files are not where they should be`);
  }
}

export const PROJECT_ROOT = findProjectRoot(import.meta.dirname);
