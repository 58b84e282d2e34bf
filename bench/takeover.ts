// Controller takeover after a SIGKILL (issue 9: "a restart right after SIGKILL takes over at once").
// (1) the control socket alone: a holder process SIGKILLed, then ControlServer.listen here, timed
//     from the holder's exit to this process holding the socket; 20 rounds.
// (2) the whole controller (as `npm start` runs it: bench/controller-process.ts): SIGKILLed and a new one spawned at
//     once, timed from the kill to the new one answering on its socket; beside it, a cold start on a
//     fresh DATA_DIR (nothing to take over), so the difference is what the takeover costs; 5 rounds.
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { ControlServer, ControlUnavailable, requestControl } from '../src/control/socket.ts';
import { silentLogger } from '../src/log.ts';
import { makeTempHome, waitFor } from '../testkit/pm2-home.ts';
import { report } from './stats.ts';
import { controllerArgs } from './controller-process.ts';

if (process.argv[2] === 'hold') {
  await ControlServer.listen({ dataDir: process.argv[3], logger: silentLogger });
  process.stdout.write('held\n');
  setInterval(() => {}, 60_000);
} else {
  const home = makeTempHome('tw-bench-takeover-');
  const children: ChildProcess[] = [];
  const cleanup = async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await home.cleanup();
  };
  process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));
  try {
    // (1) the socket alone
    const socketOnly: number[] = [];
    const dataDir = path.join(home.root, 'sock');
    for (let round = 0; round < 20; round++) {
      const holder = spawn(process.execPath, ['--import', 'tsx', import.meta.filename, 'hold', dataDir], { stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(holder);
      await once(holder.stdout!, 'data');
      holder.kill('SIGKILL');
      await once(holder, 'exit');
      const began = performance.now();
      const server = await ControlServer.listen({ dataDir, logger: silentLogger });
      socketOnly.push(performance.now() - began);
      await server.close();
    }
    report('socket takeover after SIGKILL', 'ms', socketOnly, 'at once (no stale wait; was up to 10 000 ms)');

    // (2) the whole controller
    const pidOf = async (dir: string) => {
      try {
        return ((await requestControl(dir, 'hello', {}, 2000)) as { pid: number }).pid;
      } catch (error) {
        if (error instanceof ControlUnavailable) return undefined;
        throw error;
      }
    };
    const start = (dir: string) => {
      const child = spawn(process.execPath, controllerArgs(), {
        env: { PATH: process.env.PATH!, HOME: home.root, PM2_HOME: home.pm2Home, DATA_DIR: dir, LOG_LEVEL: 'error' },
        stdio: 'ignore',
      });
      children.push(child);
      return child;
    };
    const cold: number[] = [];
    const takeover: number[] = [];
    for (let round = 0; round < 5; round++) {
      const dir = path.join(home.root, `ctl-${round}`);
      let began = performance.now();
      const first = start(dir);
      await waitFor(async () => (await pidOf(dir)) === first.pid, { timeoutMs: 60_000, intervalMs: 10, what: 'a cold start' });
      cold.push(performance.now() - began);
      began = performance.now();
      first.kill('SIGKILL');
      const second = start(dir);
      await waitFor(async () => (await pidOf(dir)) === second.pid, { timeoutMs: 60_000, intervalMs: 10, what: 'the takeover' });
      takeover.push(performance.now() - began);
      second.kill('SIGKILL');
      await once(second, 'exit');
    }
    report('controller cold start to socket', 'ms', cold, '(context)');
    report('SIGKILL + restart to new controller answering', 'ms', takeover, '≈ cold start');
  } finally {
    await cleanup();
  }
}
