#!/usr/bin/env node
// The installed command. Runs the compiled CLI in dist/ (built by `npm install` through `prepare`,
// or `npm run build`) — unless a source is newer than the build, or there is no build: then the
// TypeScript sources run through tsx, so an edit is never answered by stale code.
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');

function newestSource(dir) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(full));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(full).mtimeMs);
  }
  return newest;
}

function freshBuild() {
  try {
    const built = fs.statSync(path.join(root, 'dist', 'BUILT')).mtimeMs;
    return newestSource(path.join(root, 'src')) <= built;
  } catch {
    return false;
  }
}

if (freshBuild()) {
  const { main } = await import('../dist/src/cli/main.js');
  await main();
} else {
  const { register } = await import('tsx/esm/api');
  register();
  const { main } = await import('../src/cli/main.ts');
  await main();
}
