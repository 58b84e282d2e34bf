import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { ManualClock, systemClock } from '../src/clock.ts';
import { silentLogger } from '../src/log.ts';
import { Store } from '../src/store/store.ts';
import { AlertOutbox, alertLine, logSink, type AlertSink } from '../src/alerts/outbox.ts';
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

/** A logger that keeps its lines ("warn message"), to read what the outbox said. */
function recordingLogger() {
  const lines: string[] = [];
  const at = (level: string) => (message: string) => void lines.push(`${level} ${message}`);
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** A data file that cannot be read or written: a folder where the file should be (a real Store error). */
function breakDataFile(dir: string): void {
  fs.rmSync(path.join(dir, 'tradewarden.json'), { force: true });
  fs.mkdirSync(path.join(dir, 'tradewarden.json'));
}

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
    // The fixture never exits by itself while its delivery blocks: an exit is a failure, said at once.
    const exited = once(child, 'exit').then(() => {
      throw new Error(`the fixture exited (${child.exitCode ?? child.signalCode}) before its sink began delivering: ${out}`);
    });
    exited.catch(() => undefined); // judged in the race below, or moot after the kill
    const id = await Promise.race([
      waitFor(() => /^delivering (\S+)$/m.exec(out)?.[1], { timeoutMs: 30_000, what: `the fixture's sink to begin delivering (output so far: ${out})` }),
      exited,
    ]);
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

test('defaults: a first retry after 2 s, doubling up to 5 minutes; due at the exact moment', async () => {
  const dir = scratchDir('tw-outbox-');
  const clock = new ManualClock();
  const sink = flakySink();
  const outbox = new AlertOutbox({ store: new Store(dir), clock, logger: silentLogger, sinks: [sink] });
  await outbox.raise(input);
  const next = async () => (await new Store(dir).read()).alerts[0].deliveries.discord.nextAttemptAt! - clock.now();
  assert.equal(await next(), 2000, 'first retry 2 s after the first attempt');
  const waits = [];
  for (let attempt = 2; attempt <= 10; attempt++) {
    clock.advance(await next()); // exactly when due: tried
    await outbox.deliverDue();
    assert.equal(sink.attempts, attempt, `attempt ${attempt} made when due`);
    waits.push(await next());
  }
  assert.deepEqual(waits, [4000, 8000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000, 300_000], 'doubling, capped at 5 minutes');
  clock.advance(299_999);
  await outbox.deliverDue();
  assert.equal(sink.attempts, 10, 'not a moment early');
});

test('defaults: the same key is held back for 10 minutes, to the millisecond; other keys are not', async () => {
  const dir = scratchDir('tw-outbox-');
  const clock = new ManualClock();
  const outbox = new AlertOutbox({ store: new Store(dir), clock, logger: silentLogger, addressTo: ['log'] });
  assert.ok(await outbox.raise(input), 'the first is raised');
  assert.ok(await outbox.raise({ ...input, key: 'duplicate:43' }), 'another key at the same moment is raised');
  clock.advance(10 * 60_000 - 1);
  assert.equal(await outbox.raise(input), undefined, 'held back until the cool-down is over');
  clock.advance(1);
  assert.ok(await outbox.raise(input), 'raised again once 10 minutes have passed');
  assert.equal((await new Store(dir).read()).alerts.length, 3, 'three saved');
});

test('lateness: said only past the threshold (5 s by default), in full then', async () => {
  const dir = scratchDir('tw-outbox-');
  const clock = new ManualClock();
  const sink = flakySink();
  const outbox = new AlertOutbox({ store: new Store(dir), clock, logger: silentLogger, sinks: [sink] });
  for (const [key, lateBy] of [['a', 3000], ['b', 5000], ['c', 5001]] as const) {
    sink.down = true;
    await outbox.raise({ ...input, key });
    sink.down = false;
    clock.advance(lateBy);
    await outbox.deliverDue();
  }
  assert.deepEqual(sink.delivered.map((d) => [d.alert.key, d.lateByMs]), [['a', 0], ['b', 0], ['c', 5001]]);
});

test('each delivery is recorded on its own alert: attempts, the error (logged), the reference', async () => {
  const dir = scratchDir('tw-outbox-');
  const clock = new ManualClock();
  const logger = recordingLogger();
  const sink = flakySink();
  const outbox = new AlertOutbox({ store: new Store(dir), clock, logger, sinks: [sink], backoffMs: 1000 });
  const first = (await outbox.raise({ ...input, key: 'one', title: 'One' }))!;
  const second = (await outbox.raise({ ...input, key: 'two', title: 'Two' }))!;
  assert.deepEqual(logger.lines, [
    'warn alert duplicate_instance not delivered to discord yet: 503 Service Unavailable',
    'warn alert duplicate_instance not delivered to discord yet: 503 Service Unavailable',
  ]);
  const byId = async () => new Map((await new Store(dir).read()).alerts.map((a) => [a.id, a.deliveries.discord]));
  let deliveries = await byId();
  assert.deepEqual(deliveries.get(first.id), { attempts: 1, lastError: '503 Service Unavailable', nextAttemptAt: clock.now() + 1000 });
  assert.deepEqual(deliveries.get(second.id), { attempts: 1, lastError: '503 Service Unavailable', nextAttemptAt: clock.now() + 1000 });
  sink.down = false;
  clock.advance(1000);
  await outbox.deliverDue();
  deliveries = await byId();
  const refOf = (title: string) => `msg-${sink.delivered.findIndex((d) => d.alert.title === title) + 1}`;
  assert.deepEqual(deliveries.get(first.id), { attempts: 2, deliveredAt: clock.now(), ref: refOf('One') }, 'the first alert: its own reference');
  assert.deepEqual(deliveries.get(second.id), { attempts: 2, deliveredAt: clock.now(), ref: refOf('Two') }, 'the second alert: its own reference');
});

test('an alert that leaves the data file while it is delivered (retention, another process): no error, nothing recorded', async () => {
  const dir = scratchDir('tw-outbox-');
  const logger = recordingLogger();
  const store = new Store(dir);
  let fail = false;
  const vanishing: AlertSink = {
    name: 'discord',
    async deliver() {
      await store.update((data) => {
        data.alerts = [];
      });
      if (fail) throw new Error('503 Service Unavailable');
    },
  };
  const outbox = new AlertOutbox({ store, clock: new ManualClock(), logger, sinks: [vanishing] });
  await outbox.raise(input);
  fail = true;
  await outbox.raise({ ...input, key: 'other' });
  assert.deepEqual((await store.read()).alerts, [], 'nothing written back for an alert that is gone');
  assert.deepEqual(logger.lines, ['warn alert duplicate_instance not delivered to discord yet: 503 Service Unavailable'], 'only the failed delivery is said');
});

test('no sinks and no addresses: saved addressed to nobody; addSink adds one; onRaised hears each raised alert, not a held-back one', async () => {
  const dir = scratchDir('tw-outbox-');
  const outbox = new AlertOutbox({ store: new Store(dir), clock: new ManualClock(), logger: silentLogger });
  const heard: string[] = [];
  outbox.onRaised((alert) => heard.push(alert.key));
  const bare = (await outbox.raise({ kind: 'process_down', severity: 'warning', title: 'Down', body: 'gone' }))!;
  assert.deepEqual([bare.key, bare.facts, bare.deliveries], [bare.id, {}, {}], 'no key: its own id; no facts: {}; addressed to nobody');
  const sink = flakySink();
  sink.down = false;
  outbox.addSink(sink);
  await outbox.raise(input);
  assert.equal(await outbox.raise(input), undefined, 'held back');
  assert.deepEqual(sink.delivered.map((d) => d.alert.key), ['duplicate:42'], 'delivered through the added sink');
  assert.deepEqual(heard, [bare.id, 'duplicate:42'], 'the listener heard the two raised alerts');
});

test('raiseLoud: saved and delivered as raise() does', async () => {
  const dir = scratchDir('tw-outbox-');
  const sink = flakySink();
  sink.down = false;
  const outbox = new AlertOutbox({ store: new Store(dir), clock: new ManualClock(), logger: silentLogger, sinks: [sink] });
  await outbox.raiseLoud(input);
  assert.equal(sink.delivered.length, 1, 'delivered once');
  assert.ok((await new Store(dir).read()).alerts[0].deliveries.discord.deliveredAt, 'saved, and its delivery recorded');
});

test('raiseLoud with a data file that cannot be written: delivered unsaved, redacted, to every sink; failures logged, never thrown', async () => {
  const dir = scratchDir('tw-outbox-');
  breakDataFile(dir);
  const logger = recordingLogger();
  const good = flakySink('log');
  good.down = false;
  const bad = flakySink('discord');
  const heard: string[] = [];
  const outbox = new AlertOutbox({ store: new Store(dir), clock: new ManualClock(), logger, sinks: [good, bad], secrets: ['PKSECRET123'] });
  outbox.onRaised((alert) => heard.push(alert.title));
  await outbox.raiseLoud({ kind: 'record_failed', severity: 'critical', title: 'Not recorded', body: 'key PKSECRET123' });
  assert.equal(good.delivered.length, 1, 'delivered to the working sink');
  const [{ alert, lateByMs }] = good.delivered;
  assert.deepEqual(
    { kind: alert.kind, key: alert.key, body: alert.body, facts: alert.facts, deliveries: alert.deliveries, lateByMs },
    { kind: 'record_failed', key: alert.id, body: 'key [redacted]', facts: {}, deliveries: {}, lateByMs: 0 },
  );
  assert.equal(bad.attempts, 1, 'tried on the failing sink too');
  assert.deepEqual(heard, ['Not recorded'], 'the listener heard it');
  assert.equal(logger.lines.length, 2, logger.lines.join('\n'));
  assert.match(logger.lines[0]!, /^error alert record_failed could not be saved \(cannot read the data file .*\); delivering it unsaved$/);
  assert.equal(logger.lines[1], 'error alert record_failed not delivered to discord: 503 Service Unavailable');
});

test('recent: newest first, as many as asked (20 by default)', async () => {
  const dir = scratchDir('tw-outbox-');
  const outbox = new AlertOutbox({ store: new Store(dir), clock: new ManualClock(), logger: silentLogger, addressTo: ['log'] });
  for (let i = 1; i <= 22; i++) await outbox.raise({ ...input, key: `k${i}`, title: `#${i}` });
  assert.deepEqual((await outbox.recent(2)).map((a) => a.title), ['#22', '#21']);
  const all = await outbox.recent();
  assert.equal(all.length, 20, 'twenty by default');
  assert.deepEqual([all[0]!.title, all[19]!.title], ['#22', '#3']);
});

test('start() delivers in the background until stop(); a round that fails is logged, not thrown', async () => {
  const dir = scratchDir('tw-outbox-');
  const clock = new ManualClock();
  const logger = recordingLogger();
  const sink = flakySink();
  sink.down = false;
  const controller = new AlertOutbox({ store: new Store(dir), clock, logger, sinks: [sink] });
  const cli = new AlertOutbox({ store: new Store(dir), clock, logger: silentLogger, addressTo: ['discord'] });
  controller.start(10);
  try {
    await cli.raise({ ...input, key: 'first' });
    await waitFor(() => sink.delivered.length === 1, { what: 'the background delivery' });
  } finally {
    controller.stop();
  }
  await cli.raise({ ...input, key: 'second' });
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(sink.delivered.length, 1, 'nothing delivered after stop()');

  breakDataFile(dir);
  controller.start(10);
  try {
    await waitFor(() => logger.lines.find((l) => l.startsWith('warn alert delivery: cannot read the data file')), { what: 'the failed round in the log' });
  } finally {
    controller.stop();
  }
});

test('the log sink writes each alert at its severity\'s level, with how late it is', async () => {
  const logger = recordingLogger();
  const sink = logSink(logger);
  assert.equal(sink.name, 'log');
  const alert = (severity: StoredAlert['severity'], title: string): StoredAlert => ({
    id: title, kind: 'process_down', severity, key: title, title, body: 'body', facts: {}, createdAt: 0, deliveries: {},
  });
  await sink.deliver(alert('critical', 'C'), { lateByMs: 0 });
  await sink.deliver(alert('warning', 'W'), { lateByMs: 185_000 });
  await sink.deliver(alert('info', 'I'), { lateByMs: 0 });
  assert.deepEqual(logger.lines, [
    'error ALERT [CRITICAL] C: body',
    'warn ALERT [WARNING] W: body (delivered 3m 5s late)',
    'info ALERT [INFO] I: body',
  ]);
  assert.equal(alertLine(alert('info', 'I')), '[INFO] I: body', 'on time by default');
});

