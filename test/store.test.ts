import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { Store } from '../src/store/store.ts';
import { SCHEMA_VERSION } from '../src/store/schema.ts';
import { scratchDir } from '../testkit/scratch.ts';

const tempDir = () => scratchDir('tw-store-');

test('a fresh store has the schema version and survives a round trip', async () => {
  const dir = tempDir();
  const store = new Store(dir);
  await store.update((d) => {
    d.breaker = { tripped: true, reason: 'test' };
  });
  const onDisk = JSON.parse(fs.readFileSync(path.join(dir, 'tradewarden.json'), 'utf8'));
  assert.equal(onDisk.schemaVersion, SCHEMA_VERSION);
  assert.equal((await new Store(dir).read()).breaker.reason, 'test');
});

test('owner-only: a new DATA_DIR is 0700, the data file 0600 — also over an older 0644 file and a 0644 temp file a crash left', async () => {
  const dir = path.join(tempDir(), 'nested', 'data');
  const store = new Store(dir);
  assert.equal(fs.statSync(dir).mode & 0o777, 0o700, 'DATA_DIR is created 0700');
  await store.update((d) => {
    d.breaker = { tripped: true, reason: 'test' };
  });
  const file = path.join(dir, 'tradewarden.json');
  assert.equal(fs.statSync(file).mode & 0o777, 0o600, 'the data file is written 0600');

  // A file an older version wrote 0644, and the temp file of a write that crashed (0644 too).
  fs.chmodSync(file, 0o644);
  const temp = path.join(dir, '.tradewarden.json.tmp');
  fs.writeFileSync(temp, 'half a write', { mode: 0o644 });
  fs.chmodSync(temp, 0o644);
  await store.update((d) => {
    d.breaker = { tripped: false };
  });
  assert.equal(fs.statSync(file).mode & 0o777, 0o600, 'the next write makes it 0600');
  assert.equal(fs.existsSync(temp), false, 'the temp file became the data file');
  assert.equal((await new Store(dir).read()).breaker.tripped, false, 'and holds the write');
});

test('a corrupt file is kept aside, never overwritten, and reported', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'tradewarden.json');
  fs.writeFileSync(file, '{"schemaVersion":1,"audit":[{"at":"2026-');
  const store = new Store(dir);
  const reports: string[] = [];
  store.onKeptAside((keptAs) => reports.push(keptAs));
  const data = await store.read();
  assert.deepEqual(data.audit, []);
  assert.equal(reports.length, 1);
  assert.equal(fs.readFileSync(reports[0], 'utf8'), '{"schemaVersion":1,"audit":[{"at":"2026-');
  await store.update((d) => d.audit.push({ at: 'x', who: 'cli:t', what: 'start', outcome: 'ok', durationMs: 1 }));
  assert.equal(fs.readFileSync(reports[0], 'utf8'), '{"schemaVersion":1,"audit":[{"at":"2026-'); // still intact
});

test('a file from a newer tradewarden is refused, not rewritten', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'tradewarden.json');
  fs.writeFileSync(file, JSON.stringify({ schemaVersion: SCHEMA_VERSION + 1, audit: [], alerts: [] }));
  await assert.rejects(new Store(dir).update(() => {}), /newer than this tradewarden understands/);
  assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).schemaVersion, SCHEMA_VERSION + 1);
});

test('an update that changes nothing does not rewrite the file', async () => {
  const dir = tempDir();
  const store = new Store(dir);
  await store.update((d) => {
    d.watch.processDown = true;
  });
  const file = path.join(dir, 'tradewarden.json');
  const longAgo = new Date('2026-01-01T00:00:00Z');
  fs.utimesSync(file, longAgo, longAgo);
  const marked = fs.statSync(file).mtimeMs;
  await store.update((d) => {
    d.watch.processDown = true; // same value
  });
  assert.equal(fs.statSync(file).mtimeMs, marked, 'not rewritten');
  await store.update((d) => {
    d.watch.processDown = false;
  });
  assert.ok(fs.statSync(file).mtimeMs > marked, 'rewritten on a real change');
});

test('retention keeps the audit log bounded', async () => {
  const store = new Store(tempDir());
  await store.update((d) => {
    for (let i = 0; i < 2500; i++) d.audit.push({ at: String(i), who: 'cli:t', what: 'status', outcome: 'ok', durationMs: 0 });
  });
  const data = await store.read();
  assert.equal(data.audit.length, 2000);
  assert.equal(data.audit.at(-1)!.at, '2499');
});

test('concurrent writers in several processes lose no update', async () => {
  const dir = tempDir();
  const writers = 4;
  const perWriter = 15;
  const script = `
    import { Store } from ${JSON.stringify(path.resolve('src/store/store.ts'))};
    const store = new Store(process.argv[1]);
    for (let i = 0; i < ${perWriter}; i++) {
      await store.update((d) => { d.audit.push({ at: String(i), who: 'w' + process.pid, what: 'x', outcome: 'ok', durationMs: 0 }); });
    }`;
  await Promise.all(
    Array.from({ length: writers }, () =>
      new Promise<void>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, dir], { stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr.on('data', (c) => (stderr += c));
        child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`writer exited ${code}: ${stderr}`))));
      }),
    ),
  );
  const data = await new Store(dir).read();
  assert.equal(data.audit.length, writers * perWriter);
});
