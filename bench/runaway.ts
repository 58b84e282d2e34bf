// Runaway detection and halt, with the real controller (node-cron jobs, outbox, store, PM2).
//
// 1. Detection latency: from the creation of the fill that crosses MAX_TRADES_PER_HOUR=3 (the 4th)
//    at the paper broker to the trade_rate_exceeded alert reaching a sink, TRADE_POLL_SECONDS=1
//    (target ≤ 1 poll + 1 s). Every episode is fresh: its own DATA_DIR, paper broker and controller.
//    The crossing fill lands at a random phase of the poll schedule (cron fires on whole seconds).
// 2. Halt latency, ON_RUNAWAY=stop: from the trade_rate_exceeded alert reaching the sink to the
//    PM2-managed trader's PID gone from the OS (target ≤ 3000 ms). One controller and DATA_DIR for
//    all samples; between samples an injected clock (shared by the broker and the controller) moves
//    61 minutes on, so the rolling hour empties and the controller closes the episode itself
//    ("back to normal"); then app.core.resume clears the breaker and starts the trader again.
//
// RUNAWAY_EPISODES (default 20) and HALT_SAMPLES (default 6) change the sample counts.
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseConfig } from '../src/config.ts';
import { startController, type Controller } from '../src/controller.ts';
import { createLogger } from '../src/log.ts';
import type { Clock } from '../src/clock.ts';
import type { Actor } from '../src/core/operations.ts';
import type { AlertSink } from '../src/alerts/outbox.ts';
import type { AlertKind, StoredAlert } from '../src/store/schema.ts';
import { startPaperBroker, type PaperBroker } from '../testkit/paper-broker.ts';
import { copyTrader, isAlive, makeTempHome, waitFor } from '../testkit/pm2-home.ts';
import { report } from './stats.ts';
import { cleanUp, track } from './cleanup.ts';

const EPISODES = count('RUNAWAY_EPISODES', 20);
const HALT_SAMPLES = count('HALT_SAMPLES', 6);
const KEY_ID = 'PKBENCHRUNAWAY';
const SECRET = 'SKBENCHRUNAWAY';
const operator: Actor = { id: 'bench', name: 'bench', isOperator: true };
// Warnings and errors only, so a surprise (a failed delivery, a forced kill) shows up next to the
// figures; the log sink's own "ALERT …" lines are the expected outcome and are not printed.
const logger = createLogger({
  secrets: [KEY_ID, SECRET],
  level: 'warn',
  write: (line) => void (/ ALERT \[/.test(line) || process.stderr.write(`${line}\n`)),
});

/** Real time plus an offset the bench moves forward: "an hour later" without waiting an hour. */
class ShiftedClock implements Clock {
  private offsetMs = 0;
  now(): number {
    return Date.now() + this.offsetMs;
  }
  advance(ms: number): void {
    this.offsetMs += ms;
  }
}

/** A sink that notes when each alert reaches it, and lets the bench await the next one of a kind. */
class TimedSink implements AlertSink {
  readonly name = 'bench';
  private waiters: Array<{ kind: AlertKind; resolve: (at: number) => void }> = [];

  async deliver(alert: StoredAlert): Promise<void> {
    const at = performance.now();
    const matched = this.waiters.filter((w) => w.kind === alert.kind);
    this.waiters = this.waiters.filter((w) => w.kind !== alert.kind);
    for (const waiter of matched) waiter.resolve(at);
  }

  /** Arrival time (performance.now) of the next `kind` delivered; call it before causing the alert. */
  next(kind: AlertKind, timeoutMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`no ${kind} alert reached the sink within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (at: number) => {
        clearTimeout(timer);
        resolve(at);
      };
      this.waiters.push({ kind, resolve: done });
    });
  }
}


const home = makeTempHome('tw-brun-');
track(() => home.cleanup()); // ends this home's PM2 daemon (and any trader under it) by PID

function buy(paper: PaperBroker): void {
  paper.placeOrder({ symbol: 'BTC/USD', side: 'buy', type: 'market', time_in_force: 'gtc', qty: 0.001 });
}

function benchEnv(paper: PaperBroker, dataDir: string, trader: string, extra: Record<string, string>): Record<string, string> {
  return {
    APCA_API_BASE_URL: paper.url,
    APCA_API_KEY_ID: KEY_ID,
    APCA_API_SECRET_KEY: SECRET,
    PM2_HOME: home.pm2Home,
    DATA_DIR: dataDir,
    HOME: home.root,
    // The scan looks for processes running this file: a private copy, so nobody else's trader counts.
    TRADING_SCRIPT: trader,
    MAX_TRADES_PER_HOUR: '3',
    TRADE_POLL_SECONDS: '1',
    ...extra,
  };
}

async function startBenchController(env: Record<string, string>, sink: TimedSink, clock?: Clock): Promise<{ controller: Controller; stop: () => Promise<void> }> {
  fs.mkdirSync(env.DATA_DIR, { recursive: true });
  const controller = await startController(parseConfig(env), {
    logger,
    deliversAlerts: true,
    sinks: [sink],
    clock,
    // What ecosystem.config.js is evaluated with: the private trader copy and this DATA_DIR's logs.
    env: { ...process.env, ...env },
  });
  return { controller, stop: track(() => controller.stop()) };
}

const trader = copyTrader(path.resolve('examples/heartbeat-trader.js'), path.join(home.root, 'bot'));
let failed = false;
try {
  // ---- 1. detection latency ----
  const detection: number[] = [];
  for (let episode = 0; episode < EPISODES; episode++) {
    const paper = await startPaperBroker({ keyId: KEY_ID, secretKey: SECRET, prices: { 'BTC/USD': 50_000 } });
    const closePaper = track(() => paper.close());
    const sink = new TimedSink();
    const env = benchEnv(paper, path.join(home.root, `detect-${episode}`), trader, { ON_RUNAWAY: 'alert' });
    const { controller, stop } = await startBenchController(env, sink);

    // Three trades, at the limit; once the controller has counted them it is polling steadily.
    for (let i = 0; i < 3; i++) buy(paper);
    await waitFor(async () => (await controller.app.store.read()).trades.seen.length >= 3, {
      timeoutMs: 10_000,
      intervalMs: 20,
      what: 'the controller to count the first three trades',
    });
    // Polls fire on whole seconds: wait for a uniformly random point within the next second.
    await sleep(1000 - (Date.now() % 1000) + Math.random() * 1000);
    const reached = sink.next('trade_rate_exceeded', 10_000);
    const created = performance.now();
    buy(paper); // the 4th trade: the one that crosses the limit
    detection.push((await reached) - created);

    await stop();
    await closePaper();
  }
  report(`runaway detection, poll 1 s (${EPISODES} episodes)`, 'ms', detection, '≤ 2000 ms');

  // ---- 2. halt latency ----
  const clock = new ShiftedClock();
  const paper = await startPaperBroker({ keyId: KEY_ID, secretKey: SECRET, prices: { 'BTC/USD': 50_000 }, clock });
  track(() => paper.close());
  const sink = new TimedSink();
  const env = benchEnv(paper, path.join(home.root, 'halt'), trader, { ON_RUNAWAY: 'stop' });
  const { controller } = await startBenchController(env, sink, clock);
  const { core } = controller.app;
  const halt: number[] = [];
  for (let sample = 0; sample < HALT_SAMPLES; sample++) {
    let pid: number;
    if (sample === 0) {
      pid = (await core.start(operator)).pid;
    } else {
      // An hour later: the earlier trades leave the window and the controller ends the episode.
      const normal = sink.next('trade_rate_normal', 10_000);
      clock.advance(61 * 60_000);
      await normal;
      pid = (await core.resume(operator)).pid;
    }
    const detected = sink.next('trade_rate_exceeded', 10_000);
    const tripped = sink.next('breaker_tripped', 30_000);
    for (let i = 0; i < 4; i++) buy(paper);
    const detectedAt = await detected;
    await waitFor(() => !isAlive(pid), { timeoutMs: 30_000, intervalMs: 2, what: `trader pid ${pid} to be gone` });
    halt.push(performance.now() - detectedAt);
    await tripped; // the breaker's own work (audit, alert) is done before the next sample
    const { breaker } = await controller.app.store.read();
    if (!breaker.tripped) throw new Error(`sample ${sample}: the trader is gone but the breaker is not tripped`);
  }
  report(`runaway halt, ON_RUNAWAY=stop (${HALT_SAMPLES} samples)`, 'ms', halt, '≤ 3000 ms');
} catch (error) {
  failed = true;
  console.error(`runaway bench failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
} finally {
  await cleanUp();
}
process.exit(failed ? 1 : 0);

function count(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a whole number ≥ 1`);
  return value;
}
