import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { ManualClock, systemClock } from '../src/clock.ts';
import { silentLogger } from '../src/log.ts';
import { Store } from '../src/store/store.ts';
import { AlertOutbox, type AlertSink } from '../src/alerts/outbox.ts';
import type { StoredAlert } from '../src/store/schema.ts';
import { scratchDir } from '../testkit/scratch.ts';
import { waitFor } from '../testkit/pm2-home.ts';

/** A sink that fails while `down` is true and records what it delivered. */
function flakySink(name = 'discord') {
  const delivered: Array<{ alert: StoredAlert; lateByMs: number }> = [];
  const sink: AlertSink & { down: boolean; delivered: typeof delivered; attempts: number } = {
    name,
    down: true,
    delivered,
    attempts: 0,
    async deliver(alert, context) {
      sink.attempts++;
      if (sink.down) throw new Error('503 Service Unavailable');
      delivered.push({ alert, lateByMs: context.lateByMs });
      return `msg-${delivered.length}`;
    },
  };
  return sink;
}

const input = { kind: 'duplicate_instance', severity: 'critical', key: 'duplicate:42', title: 'Duplicate', body: 'PID 42' } as const;

test('an alert is saved before delivery, kept while the sink fails, and delivered once later — across a restart', async () => {
  const dir = scratchDir('tw-outbox-');
  const clock = new ManualClock();
  const sink = flakySink();
  const outbox = new AlertOutbox({ store: new Store(dir), clock, logger: silentLogger, sinks: [sink], backoffMs: 1000 });
  const raised = await outbox.raise(input);
  assert.ok(raised, 'raised');
  assert.equal(sink.attempts, 1);
  let stored = (await new Store(dir).read()).alerts;
  assert.equal(stored.length, 1);
  assert.equal(stored[0].deliveries.discord.deliveredAt, undefined);
  assert.match(stored[0].deliveries.discord.lastError!, /503/);

  // Back-off: not retried before it is due.
  await outbox.deliverDue();
  assert.equal(sink.attempts, 1);

  // The controller restarts (new store, new outbox, new sink object); the sink recovers 3 minutes later.
  clock.advance(3 * 60_000);
  const sinkAfterRestart = flakySink();
  sinkAfterRestart.down = false;
  const outbox2 = new AlertOutbox({ store: new Store(dir), clock, logger: silentLogger, sinks: [sinkAfterRestart] });
  await outbox2.deliverDue();
  await outbox2.deliverDue();
  assert.equal(sinkAfterRestart.delivered.length, 1, 'delivered exactly once');
  assert.equal(sinkAfterRestart.delivered[0].lateByMs, 3 * 60_000, 'says how late it is');
  stored = (await new Store(dir).read()).alerts;
  assert.equal(stored[0].deliveries.discord.deliveredAt, clock.now());
  assert.equal(stored[0].deliveries.discord.ref, 'msg-1');

  // And another restart never repeats it.
  const sinkThird = flakySink();
  sinkThird.down = false;
  await new AlertOutbox({ store: new Store(dir), clock, logger: silentLogger, sinks: [sinkThird] }).deliverDue();
  assert.equal(sinkThird.attempts, 0);
});

test('saved before delivery: the process dies (SIGKILL) while its sink blocks on the first delivery; the next outbox finds the alert and delivers it once', async () => {
  // The order itself, from outside: a process whose only sink never answers raises an alert and is
  // killed while that delivery hangs. Saving after delivering would leave nothing to find here.
  const dir = scratchDir('tw-outbox-kill-');
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/outbox-blocking-sink.ts', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk));
  child.stderr.on('data', (chunk: Buffer) => (out += chunk));
  try {
    const id = await waitFor(() => /^delivering (\S+)$/m.exec(out)?.[1], { timeoutMs: 30_000, what: `the fixture's sink to begin delivering (output so far: ${out})` });
    process.kill(child.pid!, 'SIGKILL');
    await once(child, 'exit');
    assert.equal(child.signalCode, 'SIGKILL', `the fixture died by the kill, mid-delivery (output: ${out})`);

    const stored = (await new Store(dir).read()).alerts;
    assert.equal(stored.length, 1, 'the alert whose delivery was under way is in the data file');
    assert.equal(stored[0].id, id, 'the same alert the sink was handed');
    assert.deepEqual(stored[0].deliveries.discord, { attempts: 0 }, 'addressed to discord, never recorded as tried');

    const sink = flakySink();
    sink.down = false;
    const restarted = new AlertOutbox({ store: new Store(dir), clock: systemClock, logger: silentLogger, sinks: [sink] });
    await restarted.deliverDue();
    await restarted.deliverDue();
    assert.equal(sink.delivered.length, 1, 'delivered once by the restart, not again on its next round');
    assert.equal(sink.delivered[0].alert.id, id, 'the alert the dead process was delivering');
    assert.ok((await new Store(dir).read()).alerts[0].deliveries.discord.deliveredAt, 'recorded as delivered');
  } finally {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
  }
});

test('the same key within the cool-down is raised once; after it, again', async () => {
  const dir = scratchDir('tw-outbox-');
  const clock = new ManualClock();
  const sink = flakySink('log');
  sink.down = false;
  const outbox = new AlertOutbox({ store: new Store(dir), clock, logger: silentLogger, sinks: [sink], cooldownMs: 60_000 });
  assert.ok(await outbox.raise(input), 'await outbox.raise(input)');
  assert.equal(await outbox.raise(input), undefined);
  clock.advance(61_000);
  assert.ok(await outbox.raise(input), 'await outbox.raise(input)');
  assert.equal(sink.delivered.length, 2);
});

test('an alert raised by a process without sinks (the CLI) is addressed to the controller and delivered by it', async () => {
  const dir = scratchDir('tw-outbox-');
  const clock = new ManualClock();
  const cli = new AlertOutbox({ store: new Store(dir), clock, logger: silentLogger, addressTo: ['log', 'discord'] });
  await cli.raise({ ...input, kind: 'flatten_result', key: 'flatten:1' });
  const log = flakySink('log');
  const discord = flakySink('discord');
  log.down = discord.down = false;
  await new AlertOutbox({ store: new Store(dir), clock, logger: silentLogger, sinks: [log, discord] }).deliverDue();
  assert.equal(log.delivered.length, 1);
  assert.equal(discord.delivered.length, 1);
  assert.equal(log.delivered[0].alert.kind, 'flatten_result');
});

test('secrets are removed from an alert before it is saved or delivered', async () => {
  const dir = scratchDir('tw-outbox-');
  const sink = flakySink('log');
  sink.down = false;
  const outbox = new AlertOutbox({ store: new Store(dir), clock: new ManualClock(), logger: silentLogger, sinks: [sink], secrets: ['PKSECRET123'] });
  await outbox.raise({ ...input, body: 'PID 7: python3 bot.py --key PKSECRET123', facts: { duplicates: [{ command: 'python3 bot.py --key PKSECRET123' }] } });
  const onDisk = fs.readFileSync(path.join(dir, 'tradewarden.json'), 'utf8');
  assert.doesNotMatch(onDisk, /PKSECRET123/);
  assert.match(sink.delivered[0].alert.body, /--key \[redacted\]/);
});
