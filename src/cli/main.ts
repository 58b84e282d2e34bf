// `tradewarden <verb>`: the core operations from a terminal, for when Discord is down.
// Exit codes: 0 done, 1 failed, 2 usage, 3 refused (already running, breaker, not confirmed, …).
import os from 'node:os';
import readline from 'node:readline/promises';
import { buildApp, type App } from '../app.ts';
import { ConfigError, loadConfig } from '../config.ts';
import { OperationError, describeError } from '../errors.ts';
import { createLogger, redact } from '../log.ts';
import type { Actor } from '../core/operations.ts';
import * as text from '../render/text.ts';

export const EXIT = { ok: 0, failed: 1, usage: 2, refused: 3 } as const;

interface Verb {
  usage: string;
  summary: string;
  details?: string;
  run(app: App, args: ParsedArgs, actor: Actor): Promise<{ json: unknown; text: string; exitCode?: number }>;
}

interface ParsedArgs {
  positional: string[];
  flags: Set<string>;
  values: Map<string, string>;
}

const VERBS: Record<string, Verb> = {
  status: {
    usage: 'status',
    summary: 'state of the trader (PID, uptime, restarts, CPU/memory), trades this hour, duplicates, breaker, account',
    async run(app) {
      const report = await app.core.status();
      return { json: report, text: text.statusText(report) };
    },
  },
  start: {
    usage: 'start',
    summary: 'start the trader; refused if it is already running, a duplicate exists or the breaker is tripped',
    async run(app, _args, actor) {
      const result = await app.core.start(actor);
      return { json: result, text: text.startText(result) };
    },
  },
  stop: {
    usage: 'stop',
    summary: 'stop the trader gracefully (SIGINT, then SIGKILL after kill_timeout) and verify it is gone',
    async run(app, _args, actor) {
      const result = await app.core.stop(actor);
      return { json: result, text: text.stopText(result) };
    },
  },
  restart: {
    usage: 'restart',
    summary: 'stop, then start, as one guarded operation',
    async run(app, _args, actor) {
      const result = await app.core.restart(actor);
      return { json: result, text: text.restartText(result) };
    },
  },
  resume: {
    usage: 'resume',
    summary: 'clear a tripped breaker and start the trader',
    async run(app, _args, actor) {
      const result = await app.core.resume(actor);
      return { json: result, text: `Breaker cleared${result.breakerWas.tripped ? ` (was: ${result.breakerWas.reason})` : ' (was not tripped)'}.\n${text.startText(result)}` };
    },
  },
  duplicates: {
    usage: 'duplicates',
    summary: 'list copies of the trader: extra PM2 entries and processes running the script outside PM2',
    async run(app) {
      const duplicates = await app.core.duplicates();
      return { json: duplicates, text: text.duplicatesText(duplicates) };
    },
  },
  'stop-duplicates': {
    usage: 'stop-duplicates PID [PID…]',
    summary: 'end duplicate processes by PID (only PIDs the latest scan reports; SIGTERM, then SIGKILL)',
    async run(app, args, actor) {
      const pids = args.positional.map(Number);
      if (!pids.length || pids.some((p) => !Number.isInteger(p) || p <= 0)) {
        throw new OperationError('usage', 'stop-duplicates needs one or more PIDs, e.g. `tradewarden stop-duplicates 4242` (see `tradewarden duplicates`)');
      }
      const result = await app.core.stopDuplicates(actor, pids);
      return { json: result, text: text.stopDuplicatesText(result), exitCode: result.failed.length ? EXIT.failed : EXIT.ok };
    },
  },
  flatten: {
    usage: 'flatten [--yes]',
    summary: 'EMERGENCY: stop the trader, cancel open orders, close every position, verify the account is flat',
    details: 'Asks you to type FLATTEN unless --yes is given. Exits 0 only when the broker shows the account flat.',
    async run(app, args, actor) {
      if (!args.flags.has('yes') && !(await confirm('This stops the trader and closes EVERY position at the broker. Type FLATTEN to confirm: ', 'FLATTEN'))) {
        throw new OperationError('refused', 'flatten not confirmed: nothing was done');
      }
      const report = await app.core.flatten(actor);
      return { json: report, text: text.flattenText(report), exitCode: report.flat ? EXIT.ok : EXIT.failed };
    },
  },
  account: {
    usage: 'account',
    summary: 'equity, cash, buying power, day P/L and open positions at the broker',
    async run(app) {
      const report = await app.core.account();
      return { json: report, text: text.accountText(report) };
    },
  },
  pnl: {
    usage: 'pnl [--period day|week|month|year]',
    summary: 'equity now, P/L over the period (default month), best and worst step, and the curve as a sparkline',
    async run(app, args) {
      const report = await app.core.pnl(args.values.get('period') ?? args.positional[0]);
      return { json: report, text: text.pnlText(report) };
    },
  },
  trades: {
    usage: 'trades',
    summary: 'recent fills and the rolling-hour count against MAX_TRADES_PER_HOUR',
    async run(app) {
      const trades = await app.core.trades();
      return { json: trades, text: text.tradesText(trades) };
    },
  },
  alerts: {
    usage: 'alerts [--limit N]',
    summary: 'recent alerts with their delivery state',
    async run(app, args) {
      const alerts = await app.core.alerts(positiveInt(args.values.get('limit'), 20, 'limit'));
      return { json: alerts, text: text.alertsText(alerts) };
    },
  },
  logs: {
    usage: 'logs [--lines N]',
    summary: "the trader's last log lines, secrets redacted",
    async run(app, args) {
      const logs = await app.core.logs(positiveInt(args.values.get('lines'), 30, 'lines'));
      return { json: { logs }, text: logs || '(the log is empty)' };
    },
  },
  audit: {
    usage: 'audit [--limit N]',
    summary: 'who did what, when, and how it ended',
    async run(app, args) {
      const entries = await app.core.audit(positiveInt(args.values.get('limit'), 30, 'limit'));
      return {
        json: entries,
        text: entries.map((e) => `${e.at}  ${e.who.padEnd(24)} ${e.what.padEnd(16)} ${e.outcome}${e.message ? `  ${e.message}` : ''}`).join('\n') || 'No audit entries.',
      };
    },
  },
};

function positiveInt(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new OperationError('usage', `--${name} expects a positive whole number, got ${JSON.stringify(value)}`);
  return n;
}

function parseArgs(argv: string[]): ParsedArgs {
  const parsed: ParsedArgs = { positional: [], flags: new Set(), values: new Map() };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h') parsed.flags.add('help');
    else if (arg.startsWith('--')) {
      const [name, inline] = arg.slice(2).split('=', 2);
      if (inline !== undefined) parsed.values.set(name, inline);
      else if (['limit', 'lines', 'period'].includes(name) && argv[i + 1] !== undefined) parsed.values.set(name, argv[++i]);
      else parsed.flags.add(name);
    } else parsed.positional.push(arg);
  }
  return parsed;
}

async function confirm(question: string, expected: string): Promise<boolean> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await Promise.race([rl.question(question), new Promise<string>((resolve) => rl.once('close', () => resolve('')))]);
    return answer.trim() === expected;
  } finally {
    rl.close();
  }
}

export function helpText(verb?: string): string {
  if (verb && VERBS[verb]) {
    const v = VERBS[verb];
    return [`Usage: tradewarden ${v.usage} [--json]`, '', v.summary, ...(v.details ? ['', v.details] : [])].join('\n');
  }
  const width = Math.max(...Object.values(VERBS).map((v) => v.usage.length));
  return [
    'Usage: tradewarden <command> [options]',
    '',
    'Keeps exactly one trading process running under PM2; the same operations as the Discord bot.',
    '',
    'Commands:',
    ...Object.values(VERBS).map((v) => `  ${v.usage.padEnd(width)}  ${v.summary}`),
    '',
    'Options: --json (machine-readable output), --help (help for a command)',
    'Exit codes: 0 done, 1 failed, 2 usage error, 3 refused',
    'Configuration comes from the environment and .env (see .env.example).',
  ].join('\n');
}

export async function runCli(argv: string[], io = { out: (s: string) => process.stdout.write(s + '\n'), err: (s: string) => process.stderr.write(s + '\n') }): Promise<number> {
  const args = parseArgs(argv);
  const verbName = args.positional.shift();
  if (!verbName || verbName === 'help') {
    io.out(helpText(args.positional[0]));
    return verbName || args.flags.has('help') ? EXIT.ok : EXIT.usage;
  }
  const verb = VERBS[verbName];
  if (!verb) {
    io.err(`Unknown command "${verbName}".\n\n${helpText()}`);
    return EXIT.usage;
  }
  if (args.flags.has('help')) {
    io.out(helpText(verbName));
    return EXIT.ok;
  }
  const json = args.flags.has('json');

  let app: App | undefined;
  let secrets: readonly string[] = [];
  try {
    const config = loadConfig();
    secrets = config.secrets;
    app = buildApp(config, { logger: createLogger({ secrets, level: 'warn' }), deliversAlerts: false });
    const user = os.userInfo().username;
    const actor: Actor = { id: `cli:${user}`, name: user, isOperator: true };
    const result = await verb.run(app, args, actor);
    io.out(json ? JSON.stringify(result.json, null, 2) : result.text);
    return result.exitCode ?? EXIT.ok;
  } catch (error) {
    const message = redact(describeError(error), secrets);
    if (json) io.out(JSON.stringify({ error: message, kind: error instanceof OperationError ? error.kind : 'failed' }));
    else io.err(`${error instanceof OperationError && error.kind === 'refused' ? 'Refused' : 'Error'}: ${message}`);
    if (error instanceof ConfigError) return EXIT.usage;
    if (error instanceof OperationError) return error.kind === 'refused' ? EXIT.refused : error.kind === 'usage' ? EXIT.usage : EXIT.failed;
    return EXIT.failed;
  } finally {
    await app?.close().catch(() => undefined);
  }
}

/** Runs the CLI for this process and exits with its code (bin/tradewarden.js and `npm run cli`). */
export async function main(): Promise<never> {
  const code = await runCli(process.argv.slice(2));
  // PM2's client can keep handles open after disconnect; the answer is out, so leave now.
  process.stdout.write('', () => process.exit(code));
  return new Promise<never>(() => {});
}

if (process.argv[1] && import.meta.filename === process.argv[1]) await main();
