// The exchange ids the installed ccxt knows, read from its entry file as text: loading ccxt costs
// ~0.3 s and ~80 MB (bench/README.md), and the configuration is checked by every CLI call, which
// must never load it. If ccxt ever lays its entry out differently, the list is unknown and the
// check is left to the broker, which refuses an unknown id when it loads (src/broker/ccxt.ts).
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

export type InstalledExchanges = { installed: false } | { installed: true; ids?: readonly string[] };

let cached: InstalledExchanges | undefined;

export function installedExchanges(): InstalledExchanges {
  cached ??= readInstalled();
  return cached;
}

function readInstalled(): InstalledExchanges {
  let entry: string;
  try {
    // Resolving finds the file without running it ("require" condition: dist/ccxt.cjs).
    entry = createRequire(import.meta.url).resolve('ccxt');
  } catch {
    return { installed: false };
  }
  try {
    const root = path.resolve(path.dirname(entry), '..');
    const source = fs.readFileSync(path.join(root, 'js', 'ccxt.js'), 'utf8');
    const block = /\bconst exchanges = \{([^}]*)\}/.exec(source)?.[1];
    const ids = block ? [...block.matchAll(/'([a-z0-9_]+)'\s*:/g)].map((m) => m[1]!) : [];
    return { installed: true, ...(ids.length ? { ids } : {}) };
  } catch {
    return { installed: true };
  }
}
