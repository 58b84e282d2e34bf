// The whole system in one terminal, with no accounts: the local paper broker, or with --broker ccxt
// the Kraken stand-in read through ccxt (in this process: src/demo/venue.ts), the
// demo trader under the demo's own PM2 daemon, and the controller with the terminal as its chat.
// Everything it starts is registered for shutdown as it starts, and ended by PID, in reverse.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freeLoopbackPort } from '../../testkit/ports.ts';
import { alertLine, type AlertSink } from '../alerts/outbox.ts';
import { ConfigError, loadConfig, type Config } from '../config.ts';
import { startController, type Controller } from '../controller.ts';
import type { Actor } from '../core/operations.ts';
import { discordFront } from '../discord/front.ts';
import { OperationError, describeError } from '../errors.ts';
import { createLogger, redact, type Logger } from '../log.ts';
import { money } from '../render/text.ts';
import type { AlertSeverity, StoreData } from '../store/schema.ts';
import { isAlive } from '../os/process-table.ts';
import { ChatConsole } from './console.ts';
import { checkSocketRoom, clearLeftovers, demoHome, forgetRogue, freshData, installTrader, recordRogue, takeDemoLock, type DemoHome } from './home.ts';
import { daemonPidOf, endPm2Daemon } from '../os/pm2-daemon.ts';
import { endProcess, type ProcessRef } from '../os/processes.ts';
import { DEMO_DIR_VARIABLE, leftoversOf, spawnOutsidePm2 } from './processes.ts';
import { incidentText, summarizeIncident } from './incident.ts';
import { RunawayStory, lossIntro, normalIntro, runawayIntro, type ScenarioName, type StoryFacts } from './story.ts';
import { Terminal, type Tone } from './terminal.ts';
import { startDemoVenue, type VenueKind } from './venue.ts';

export interface DemoOptions {
  /** the demo folder: PM2_HOME, DATA_DIR and the trader copy live under it */
  home: string;
  scenario?: ScenarioName;
  /** ends the demo this many seconds after it is up (CI) */
  exitAfterSeconds?: number;
  /** seconds between the trader's orders; default 90, or 3 in the runaway scenario */
  orderEverySeconds?: number;
  /** run the order gate (GATEWAY_ADDR): the trader, and the runaway's copy, trade through it */
  gate?: boolean;
  /** alpaca (default): the paper broker; ccxt: the Kraken stand-in, read through ccxt */
  broker?: VenueKind;
  input?: NodeJS.ReadableStream & { isTTY?: boolean };
  output?: NodeJS.WriteStream;
}

export const EXIT = { ok: 0, failed: 1, usage: 2, refused: 3, interrupted: 130 } as const;

/** What the demo sets up, fixed: short cadences so the story plays out in seconds. */
const DEMO_SETTINGS = {
  TRADING_PROCESS_NAME: 'trading-bot',
  TRADING_INTERPRETER: 'node',
  TRADING_CWD: '',
  TRADING_KILL_TIMEOUT_MS: '3000',
  TRADE_POLL_SECONDS: '2',
  DUPLICATE_SCAN_SECONDS: '2',
  MAX_TRADES_PER_HOUR: '3',
} as const;
const CASH = 100_000;
/** The loss scenario: a $20,000 position, the market falling 0.5% a second, a day's loss of 0.5% allowed. */
const LOSS_NOTIONAL = 20_000;
const LOSS_FALL_PER_TICK = 0.005;
const LOSS_LIMIT = '0.5%';
const PRICES = { 'BTC/USD': 97_000, 'ETH/USD': 3_400 };
const SEEDED_ETH = 0.25;
const NOTIONAL = 25;
const SYMBOL = 'BTC/USD';

/** The loss scenario in numbers: the alert's figures, when the breaker halted, equity at the end. */
function lossText(data: StoreData, equityNow: number, stream: StoryFacts['stream']): string {
  const alert = data.alerts.find((a) => a.kind === 'loss_limit');
  const trip = data.alerts.find((a) => a.kind === 'breaker_tripped');
  if (!alert) return 'The loss limit was not crossed in this run (run it longer: --exit-after 60).';
  const f = alert.facts as { reference?: number; equity?: number; dayPnl?: number; dailyLimit?: number };
  const amount = (n: number | undefined) => (n === undefined ? '?' : money(n));
  const row = (label: string, value: string) => `  ${label.padEnd(50)} ${value}`;
  return [
    'The loss, in numbers:',
    row(`the day's reference (${stream === 'alpaca' ? 'equity at the last close' : 'first equity since 00:00 UTC'})`, amount(f.reference)),
    row(`MAX_DAILY_LOSS ${LOSS_LIMIT}`, amount(f.dailyLimit)),
    row('equity at the read that crossed it', `${amount(f.equity)} (day ${amount(f.dayPnl)})`),
    row('loss_limit alert → breaker alert', trip ? `${Math.max(0, trip.createdAt - alert.createdAt)} ms` : 'no breaker alert'),
    row('equity when the demo stopped', `${amount(equityNow)} (the market kept falling; the bot did not trade on)`),
  ].join('\n');
}

/** Thrown between start-up steps when Ctrl-C came in meanwhile: straight to shutdown. */
class StopRequested extends Error {}

/** Runs the demo until Ctrl-C, /quit or --exit-after; resolves with the exit code. */
export async function runDemo(options: DemoOptions): Promise<number> {
  const output = options.output ?? process.stdout;
  const input = options.input ?? process.stdin;
  const terminal = new Terminal(output);
  const say = (line: string, tone: Tone = 'muted') => terminal.print(line, tone);
  const home = demoHome(options.home);
  const shutdown = new Shutdown();
  const rel = (p: string) => (p.startsWith(process.cwd() + path.sep) ? path.relative(process.cwd(), p) : p);

  // ---- stopping: a signal, /quit or --exit-after resolves `stopRequested` ----
  let stopReason: string | undefined;
  let requestStop!: (reason: string) => void;
  const stopRequested = new Promise<string>((resolve) => {
    requestStop = (reason) => {
      if (stopReason !== undefined) return;
      stopReason = reason;
      resolve(reason);
    };
  });
  const checkpoint = () => {
    if (stopReason !== undefined) throw new StopRequested(stopReason);
  };
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals === 1) {
      say(`${signal}: stopping everything the demo started… (again to leave at once)`, 'warning');
      requestStop(signal);
    } else {
      say(`Leaving now. Anything left running is ended by the next demo in ${rel(home.root)}.`, 'error');
      process.exit(EXIT.interrupted);
    }
  };
  const handled: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of handled) process.on(s, onSignal);
  shutdown.push('signal handlers', async () => {
    for (const s of handled) process.off(s, onSignal);
  });

  let code: number = EXIT.ok;
  try {
    checkSocketRoom(home);
    shutdown.push('demo lock', await takeDemoLock(home, say));
    shutdown.push('demo.pid', async () => fs.rmSync(path.join(home.root, 'demo.pid'), { force: true }));
    // Belt and braces, last before the folder is let go: nothing marked with it may still run the
    // trader or a PM2 daemon.
    shutdown.push('leftovers', async () => {
      const strays = await leftoversOf(home.root, home.traderScript);
      for (const stray of strays) await endProcess(stray).catch(() => undefined);
      if (strays.length) throw new Error(`still running, now ended: ${strays.map((p) => `PID ${p.pid} (${p.command})`).join(', ')}`);
    });
    await clearLeftovers(home, say);
    freshData(home);
    installTrader(home);
    checkpoint();

    // ---- the broker: local, in this process, with keys that exist only for this run ----
    const broker = await startDemoVenue(options.broker ?? 'alpaca', { cash: CASH, prices: PRICES, seededEth: SEEDED_ETH });
    shutdown.push('broker', () => broker.close());
    // Prices drift a little, so /account and the P/L move like a market's would. In the loss
    // scenario the market falls instead: what the bot holds loses a little every second.
    const falling = options.scenario === 'loss';
    let fallen = 1;
    const drift = setInterval(
      () => {
        fallen *= 1 - LOSS_FALL_PER_TICK;
        for (const [symbol, base] of Object.entries(PRICES)) broker.setPrice(symbol, round2(base * (falling ? fallen : 1 + (Math.random() - 0.5) * 0.01)));
      },
      falling ? 1000 : 5000,
    );
    drift.unref();
    shutdown.push('price drift', async () => clearInterval(drift));

    // ---- configuration: .env may add Discord; everything else is the demo's ----
    const every = options.orderEverySeconds ?? (options.scenario === 'runaway' ? 3 : options.scenario === 'loss' ? 1200 : 90);
    const notional = falling ? LOSS_NOTIONAL : NOTIONAL;
    const traderArgs = options.scenario === 'runaway' || options.scenario === 'loss' ? ['--every', String(every)] : [];
    // PM2 hands the starting client's environment to the trader, and the daemon inherits it too:
    // the broker and the folder marker go into this process's own environment.
    Object.assign(process.env, {
      ...broker.traderEnv,
      DEMO_ORDER_EVERY_SECONDS: String(every),
      DEMO_ORDER_NOTIONAL: String(notional),
      DEMO_SYMBOL: SYMBOL,
      [DEMO_DIR_VARIABLE]: home.root,
    });
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...broker.controllerEnv,
      ...DEMO_SETTINGS,
      DATA_DIR: home.dataDir,
      PM2_HOME: home.pm2Home,
      TRADING_SCRIPT: home.traderScript,
      TRADING_ARGS: traderArgs.join(' '),
      ON_RUNAWAY: options.scenario === 'runaway' ? 'stop' : 'alert',
      ...(falling ? { MAX_DAILY_LOSS: LOSS_LIMIT, ON_LOSS: 'stop' } : {}),
      // Set either way, so a GATEWAY_ADDR in the developer's .env does not decide for the demo.
      GATEWAY_ADDR: options.gate ? `127.0.0.1:${await freeLoopbackPort()}` : '',
    };
    const config = loadConfig(env); // the configuration folder's .env (Discord, if the user wants it)
    const log = demoLogger(home.logFile, config.secrets, terminal);
    shutdown.push('log file', log.close);
    const facts: StoryFacts = {
      gate: Boolean(config.gateway),
      stream: config.ccxt ? 'ccxt' : 'alpaca',
      limit: config.maxTradesPerHour,
      orderEverySeconds: every,
      pollSeconds: config.tradePollSeconds,
      scanSeconds: config.duplicateScanSeconds,
      notional,
      symbol: SYMBOL,
    };

    // ---- the controller, with the terminal as an alert sink ----
    let rogue: ProcessRef | undefined;
    const story = options.scenario === 'runaway' ? new RunawayStory(facts, (line) => say(line, 'narration'), () => rogueAlive(rogue)) : undefined;
    const consoleSink: AlertSink = {
      name: 'console',
      async deliver(alert, { lateByMs }) {
        terminal.print(alertLine(alert, lateByMs), SEVERITY_TONE[alert.severity]);
        story?.alert(alert);
      },
    };
    // Registered before the controller, so it runs after the controller has let go of PM2.
    shutdown.push('PM2 daemon', async () => {
      const ended = await endPm2Daemon(home.pm2Home);
      if (ended?.outcome === 'not-ours') throw new Error(`pm2.pid names PID ${ended.pid}, which is not this demo's daemon; left alone`);
    });
    const controller = await startController(config, {
      logger: log.logger,
      deliversAlerts: true,
      sinks: [consoleSink],
      fronts: config.discord.token ? [discordFront] : [],
      env,
      alertDeliveryIntervalMs: 1000,
    }).catch((error: unknown) => {
      throw friendlyControllerError(error, config);
    });
    shutdown.push('controller', () => controller.stop());
    checkpoint();

    // ---- the trader, started exactly as an operator would ----
    const user = os.userInfo().username;
    const actor: Actor = { id: `demo:${user}`, name: user, isOperator: true };
    const started = await controller.app.core.start(actor);
    shutdown.push('trader', () => stopTrader(controller, actor));
    checkpoint();

    say(
      banner({ brokerUrl: broker.url, brokerLabel: broker.label, gateUrl: controller.gateway?.server.url, home, rel, daemonPid: daemonPidOf(home.pm2Home), traderPid: started.pid, config, every, notional, discord: Boolean(config.discord.token) }),
      'plain',
    );
    say(
      options.scenario === 'runaway' ? runawayIntro(facts) : falling ? lossIntro({ ...facts, dailyLoss: LOSS_LIMIT, heldSymbol: 'ETH and BTC' }) : normalIntro(facts),
      'narration',
    );
    story?.traderStarted(started.pid);
    if (options.scenario === 'runaway') {
      // Without the Discord token: the trader gets none, and neither does its rogue copy.
      const { DISCORD_TOKEN: _token, ...rogueEnv } = process.env;
      // With the gate on, the copy is started the way the trader is configured: through the gate.
      if (controller.gateway) rogueEnv.APCA_API_BASE_URL = controller.gateway.server.url;
      rogue = await spawnOutsidePm2({ script: home.traderScript, args: traderArgs, env: rogueEnv, logFile: home.rogueLog });
      recordRogue(home, rogue);
      const copy = rogue;
      shutdown.push('copy outside PM2', async () => {
        await endProcess(copy);
        forgetRogue(home);
      });
      story?.rogueStarted(rogue.pid, `(cd ${rel(path.dirname(home.traderScript))} && nohup node ${path.basename(home.traderScript)} ${traderArgs.join(' ')} &)`);
    }

    // ---- the chat ----
    const chat = new ChatConsole({
      core: controller.app.core,
      actor,
      terminal,
      input,
      output,
      secrets: config.secrets,
      onQuit: (reason) => requestStop(reason),
    });
    chat.start();
    shutdown.push('console', () => chat.close());
    if (!input.isTTY) say('(stdin is not a terminal: no prompt. Lines piped in still run as commands.)');
    say(`Type /help for the commands, Ctrl-C to stop everything the demo started.`, 'heading');

    if (options.exitAfterSeconds !== undefined) {
      const seconds = options.exitAfterSeconds;
      const timer = setTimeout(() => requestStop(`--exit-after ${seconds}`), seconds * 1000);
      timer.unref();
      shutdown.push('exit timer', async () => clearTimeout(timer));
    }
    const reason = await stopRequested;
    await chat.close();
    say(`Stopping (${reason})…`, 'muted');
    if (options.scenario === 'runaway') {
      say(incidentText(summarizeIncident(await controller.app.store.read(), broker.fills(), config.maxTradesPerHour)), 'plain');
    }
    if (falling) say(lossText(await controller.app.store.read(), broker.equity(), facts.stream), 'plain');
  } catch (error) {
    if (error instanceof StopRequested) {
      say('Stopped before the demo was fully up.', 'muted'); // asked for: not a failure
    } else {
      code = exitCodeFor(error);
      say(problemText(error), code === EXIT.refused ? 'warning' : 'error');
    }
  }

  const problems = await shutdown.run();
  if (problems.length) {
    say(`Shutdown problems:\n${problems.map((p) => `  - ${p}`).join('\n')}`, 'error');
    if (code === EXIT.ok) code = EXIT.failed;
  } else if (code === EXIT.ok) {
    say('Demo stopped: trader, PM2 daemon, broker and every copy it started are gone. The data is kept in ' + rel(home.dataDir) + '.', 'muted');
  }
  return code;
}

const SEVERITY_TONE: Record<AlertSeverity, Tone> = { critical: 'critical', warning: 'warning', info: 'info' };


const round2 = (n: number) => Math.round(n * 100) / 100;

const rogueAlive = (rogue: ProcessRef | undefined) => rogue !== undefined && isAlive(rogue.pid);

async function stopTrader(controller: Controller, actor: Actor): Promise<void> {
  const status = await controller.app.core.status();
  if (status.process.state === 'online' || status.process.state === 'launching') await controller.app.core.stop(actor);
}

/** Steps undone in reverse order of registration; a failing step is reported, the rest still run. */
class Shutdown {
  private readonly steps: Array<{ what: string; undo: () => Promise<unknown> }> = [];

  push(what: string, undo: () => Promise<unknown>): void {
    this.steps.push({ what, undo });
  }

  async run(): Promise<string[]> {
    const problems: string[] = [];
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step.undo();
      } catch (error) {
        problems.push(`${step.what}: ${describeError(error)}`);
      }
    }
    return problems;
  }
}

/**
 * Everything the controller logs goes to the run's log file; warnings and errors also show in the
 * terminal — except the log sink's "ALERT …" lines, which the console sink already prints in colour.
 */
function demoLogger(file: string, secrets: readonly string[], terminal: Terminal): { logger: Logger; close: () => Promise<void> } {
  const stream = fs.createWriteStream(file, { flags: 'a' });
  const toFile = createLogger({ secrets, write: (line) => stream.write(line + '\n') });
  const shown = (tone: Tone, message: string) => {
    if (!message.startsWith('ALERT ')) terminal.print(redact(message, secrets), tone);
  };
  return {
    logger: {
      debug: toFile.debug,
      info: toFile.info,
      warn: (message) => {
        toFile.warn(message);
        shown('warning', message);
      },
      error: (message) => {
        toFile.error(message);
        shown('error', message);
      },
    },
    close: () => new Promise<void>((resolve) => stream.end(resolve)),
  };
}

function banner(facts: {
  brokerUrl: string;
  brokerLabel: string;
  gateUrl?: string;
  home: DemoHome;
  rel: (p: string) => string;
  daemonPid?: number;
  traderPid: number;
  notional: number;
  config: Config;
  every: number;
  discord: boolean;
}): string {
  const { config, rel, home } = facts;
  const prices = Object.entries(PRICES).map(([s, p]) => `${s} ${money(p)}`).join(', ');
  return [
    'tradewarden demo — everything runs on this machine; no accounts, nothing to configure.',
    `  broker   ${facts.brokerUrl}  ${facts.brokerLabel}: ${money(CASH)} cash + ${SEEDED_ETH} ETH; ${prices}`,
    ...(facts.gateUrl ? [`  gate     ${facts.gateUrl}  the order gate (GATEWAY_ADDR, ${config.gateway?.mode}): the trader's APCA_API_BASE_URL; it forwards to the broker`] : []),
    `  PM2      PM2_HOME=${rel(home.pm2Home)} (daemon PID ${facts.daemonPid ?? '?'}) — the demo's own, not your PM2`,
    `  trader   ${config.trading.processName} PID ${facts.traderPid}: ${rel(home.traderScript)}, a $${facts.notional.toLocaleString('en-US')} ${SYMBOL} order every ${facts.every} s`,
    `  watch    fills every ${config.tradePollSeconds} s, processes every ${config.duplicateScanSeconds} s, limit ${config.maxTradesPerHour} trades/hour, on runaway: ${config.onRunaway}${config.maxDailyLoss ? `, MAX_DAILY_LOSS ${'percent' in config.maxDailyLoss ? `${config.maxDailyLoss.percent}%` : config.maxDailyLoss.amount}, on loss: ${config.onLoss}` : ''}`,
    `  data     DATA_DIR=${rel(home.dataDir)} (controller log: ${rel(path.join(home.dataDir, path.basename(home.logFile)))})`,
    facts.discord
      ? `  Discord  on: slash commands in guild ${config.discord.guildId}, alerts in channel ${config.discord.alertChannelId}`
      : '  Discord  off (set DISCORD_TOKEN and the ids in .env to serve it too)',
  ].join('\n');
}

function friendlyControllerError(error: unknown, config: Config): unknown {
  if (/controller\.lock/.test(describeError(error))) {
    return new OperationError('refused', `another tradewarden controller is using ${config.dataDir}: stop it first (the demo needs that folder to itself)`);
  }
  return error;
}

function exitCodeFor(error: unknown): number {
  if (error instanceof ConfigError) return EXIT.usage;
  if (error instanceof OperationError) return error.kind === 'refused' ? EXIT.refused : error.kind === 'usage' ? EXIT.usage : EXIT.failed;
  return EXIT.failed;
}

function problemText(error: unknown): string {
  if (error instanceof ConfigError) return `The demo takes the Discord settings from your environment and .env, and they have problems:\n${error.message}`;
  if (error instanceof OperationError && error.kind === 'refused') return `Refused: ${error.message}`;
  return `The demo could not start: ${describeError(error)}`;
}
