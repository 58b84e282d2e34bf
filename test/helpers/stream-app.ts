// Test support for files that drive the app as the controller builds it against the paper broker:
// the app with a recording alert sink and its trade stream connected (no scheduled job: the test
// polls when it wants the poll), and the real `tradewarden` CLI as a user runs it.
import { spawn } from 'node:child_process';
import path from 'node:path';
import type { AlertSink } from '../../src/alerts/outbox.ts';
import { buildApp, type App, type BuildOptions } from '../../src/app.ts';
import { parseConfig } from '../../src/config.ts';
import { silentLogger } from '../../src/log.ts';
import type { StoredAlert } from '../../src/store/schema.ts';
import type { PaperBroker } from '../../testkit/paper-broker.ts';
import { waitFor } from '../../testkit/pm2-home.ts';

/** The app on `env`, alerts recorded in `alerts`, its stream connected to `paper`. The caller closes it. */
export async function streamingApp(paper: PaperBroker, env: Record<string, string>, options: Partial<BuildOptions> = {}): Promise<{ app: App; alerts: StoredAlert[] }> {
  const alerts: StoredAlert[] = [];
  const sink: AlertSink = { name: 'test', deliver: async (a) => void alerts.push(a) };
  const app = buildApp(parseConfig(env), { logger: silentLogger, deliversAlerts: true, sinks: [sink], env: { ...process.env, ...env }, streamBackoffMs: 50, ...options });
  try {
    app.startStream();
    await waitFor(() => app.tradeStream!.state().status === 'connected' && paper.streamListeners > 0, { what: 'the trade stream', intervalMs: 10 });
  } catch (error) {
    await app.close();
    throw error;
  }
  return { app, alerts };
}

const BIN = path.resolve('bin/tradewarden.cjs');

/** `tradewarden <args>` in `cwd` with only PATH and `env`, as a user's shell would run it. */
export function cli(args: string[], env: Record<string, string>, cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { PATH: process.env.PATH!, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
