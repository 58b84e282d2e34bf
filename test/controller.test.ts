// The controller process as PM2 runs it (`node --import tsx src/main.ts`): a singleton per DATA_DIR,
// runs without Discord, delivers what an earlier run left in the outbox, shuts down on SIGINT.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { ManualClock } from '../src/clock.ts';
import { silentLogger } from '../src/log.ts';
import { Store } from '../src/store/store.ts';
import { AlertOutbox } from '../src/alerts/outbox.ts';
import { makeTempHome, waitFor } from '../testkit/pm2-home.ts';

const home = makeTempHome('tw-ctl-');
const children: ChildProcess[] = [];
after(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await home.cleanup();
});

function controller() {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { PATH: process.env.PATH!, HOME: home.root, PM2_HOME: home.pm2Home, DATA_DIR: home.dataDir, DUPLICATE_SCAN_SECONDS: '1', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const output = { text: '' };
  child.stdout!.on('data', (c) => (output.text += c));
  child.stderr!.on('data', (c) => (output.text += c));
  return { child, output };
}

test('one controller per data dir; it delivers what was pending, runs without Discord, and stops on SIGINT', async () => {
  // An alert raised while no controller ran (e.g. by the CLI): addressed to the log sink.
  await new AlertOutbox({ store: new Store(home.dataDir), clock: new ManualClock(Date.now() - 120_000), logger: silentLogger, addressTo: ['log'] }).raise({
    kind: 'flatten_result',
    severity: 'info',
    key: 'flatten:pending',
    title: 'Pending from before',
    body: 'raised while the controller was down',
  });

  const first = controller();
  await waitFor(() => first.output.text.includes('controller watching'), { timeoutMs: 20_000, what: 'the controller to start' });
  assert.match(first.output.text, /DISCORD_TOKEN is not set: running without Discord/);
  await waitFor(() => first.output.text.includes('Pending from before'), { what: 'the pending alert in the log' });
  assert.match(first.output.text, /ALERT \[INFO\] Pending from before: raised while the controller was down \(delivered \d+m \d+s late\)/);

  const second = controller();
  const [code] = await once(second.child, 'exit');
  assert.equal(code, 1);
  assert.match(second.output.text, new RegExp(`another tradewarden controller \\(PID ${first.child.pid}\\) serves .*only one may run per DATA_DIR`));

  first.child.kill('SIGINT');
  const [firstCode] = await once(first.child, 'exit');
  assert.equal(firstCode, 0);
  const alert = (await new Store(home.dataDir).read()).alerts.find((a) => a.key === 'flatten:pending')!;
  assert.ok(alert.deliveries.log.deliveredAt, 'recorded as delivered');
  assert.equal(first.output.text.match(/Pending from before/g)!.length, 1, 'delivered once');
});

test('a corrupt data file is kept aside, said loudly, and raised as an alert', async () => {
  const file = path.join(home.dataDir, 'tradewarden.json');
  fs.writeFileSync(file, '{"schemaVersion":1,"audit":[{"at":"2026-01-0');
  const run = controller();
  await waitFor(() => run.output.text.includes('controller watching'), { timeoutMs: 20_000, what: 'the controller to start' });
  await waitFor(() => run.output.text.includes('Data file was corrupt'), { what: 'the kept-aside alert' });
  const kept = fs.readdirSync(home.dataDir).filter((f) => f.startsWith('tradewarden.json.corrupt-'));
  assert.equal(kept.length, 1);
  assert.equal(fs.readFileSync(path.join(home.dataDir, kept[0]), 'utf8'), '{"schemaVersion":1,"audit":[{"at":"2026-01-0', 'kept byte for byte');
  assert.match(run.output.text, new RegExp(`DATA FILE KEPT ASIDE: .*it is kept as .*${kept[0]}`));
  run.child.kill('SIGINT');
  assert.equal((await once(run.child, 'exit'))[0], 0);
  const alerts = (await new Store(home.dataDir).read()).alerts.filter((a) => a.kind === 'data_file_kept_aside');
  assert.equal(alerts.length, 1);
});
