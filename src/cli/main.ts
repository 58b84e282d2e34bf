// `tradewarden <verb>`: the catalogue's operations from a terminal, for when Discord is down.
// Exit codes: 0 done, 1 failed, 2 usage, 3 refused (already running, breaker, not confirmed, …).
//
// Quick on purpose: parsing and --help need only the catalogue; the parts a verb needs (config,
// PM2, the store, the broker) are imported after the command line is known to be right, and
// discord.js never loads here.
import os from 'node:os';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import {
  OPERATIONS,
  checkPids,
  checkValue,
  isValueOption,
  operation,
  operationNames,
  perform,
  plainPrompt,
  type AnyOperation,
  type Args,
  type OperationName,
} from '../core/catalogue.ts';
import type { Actor } from '../core/operations.ts';
import type { Config } from '../config.ts';
import { OperationError, describeError } from '../errors.ts';
import { nearest } from '../render/suggest.ts';
import { PACKAGE_VERBS, isPackageVerb, packageVerbHelp, runPackageVerb, takeConfigOption } from './package-verbs.ts';

export const EXIT = { ok: 0, failed: 1, usage: 2, refused: 3 } as const;

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

const processIo: CliIo = { out: (s) => process.stdout.write(s + '\n'), err: (s) => process.stderr.write(s + '\n') };

/**
 * Ways to answer a verb without building the app, tried in order before it (e.g. asking a running
 * controller over its local socket). Each returns the report, or undefined to let the next try.
 * `confirm` asks the operation's confirmation (once, whoever asks) and throws when it is refused.
 */
export type Shortcut = (config: Config, args: Args, confirm: () => Promise<void>) => Promise<unknown | undefined>;
export const SHORTCUTS: Partial<Record<OperationName, Shortcut[]>> = {
  // A running controller already holds PM2's answer and the store: one round trip on its socket.
  status: [askController('status')],
  // The controller watches the fills: a flatten it runs knows its closing orders as its own at once.
  flatten: [performInController('flatten', 120_000)],
  // Only the controller counts the order gate's refusals; it reads the broker as this process would.
  digest: [askController('digest', 40_000)],
};

/** Asks the controller of this DATA_DIR over its control socket; undefined (build the app) when none answers. */
function askController(op: string, timeoutMs = 2000): Shortcut {
  return async (config) => {
    const { requestControl } = await import('../control/client.ts');
    return requestControl(config.dataDir, op, {}, timeoutMs).catch(() => undefined);
  };
}

/**
 * Has the running controller perform a change for this terminal's user, after the confirmation.
 * With no controller, or one that does not serve `op` (an older one), the CLI does it itself.
 */
function performInController(op: string, timeoutMs: number): Shortcut {
  return async (config, _args, confirm) => {
    const { requestControl, ControlUnavailable } = await import('../control/client.ts');
    const hello = (await requestControl(config.dataDir, 'hello', {}, 2000).catch(() => undefined)) as { ops?: unknown } | undefined;
    if (!Array.isArray(hello?.ops) || !hello.ops.includes(op)) return undefined;
    await confirm();
    try {
      return await requestControl(config.dataDir, op, { actor: terminalActor() }, timeoutMs);
    } catch (error) {
      if (error instanceof ControlUnavailable) return undefined; // gone since its hello: done here instead
      if (error instanceof OperationError && error.kind !== 'failed') throw error;
      throw new OperationError('failed', `${describeError(error)}. The controller may still be running the ${op}: see \`tradewarden alerts\` before trying again`, { cause: error });
    }
  };
}

/** Who a terminal's change is by, in the audit log. */
function terminalActor(): Actor {
  const user = os.userInfo().username;
  return { id: `cli:${user}`, name: user, isOperator: true };
}

/**
 * Verbs of the terminal alone, not operations: `health` asks whether a controller watches at all,
 * which only makes sense from outside it (a PM2, systemd or Docker health check); `doctor` checks
 * this machine's set-up (its .env, its PM2, its ports) before any controller exists, and `init`
 * writes that set-up by asking (a terminal's questions, not a catalogue operation).
 */
const TERMINAL_VERBS = {
  health: {
    summary: 'exit 0 when a controller serves this DATA_DIR and its checks are fresh, 1 with the reasons otherwise',
    details:
      'Asks the running controller over its control socket in DATA_DIR. Fails when no controller answers, a check (fill poll, process scan, stream) ' +
      'has not succeeded within 3 times its interval or is failing (broker or PM2 unreachable), the trader is down while wanted, or alerts cannot be delivered. ' +
      'Usable as a PM2, systemd or Docker health check.',
    exits: 'Read-only. Exit codes: 0 healthy, 1 not (the reasons are printed).',
  },
  doctor: {
    summary: 'check the set-up before the first start: configuration, Discord, broker, PM2 and the trader, ports; each ✗ with its fix',
    details:
      'Checks every piece against the real thing: the variables (the controller\'s rules) and .env\'s mode; Discord (the token, its application, the bot in the server, ' +
      'its permissions in the alert channel after the channel\'s overwrites, the roles, the commands); the broker (the keys, paper or live, the account, the trade stream, ' +
      'the clock); PM2 and the trader (the daemon, PM2_HOME\'s mode, the ecosystem, script, folder and interpreter, copies outside PM2); the controller, ' +
      'GATEWAY_ADDR and METRICS_ADDR, DATA_DIR, HEALTHCHECK_URL. Runs with or without a controller and changes nothing. No secret is printed.',
    exits: 'Read-only. Exit codes: 0 nothing is ✗ (⚠ may remain), 1 something is.',
  },
  init: {
    summary: 'first set-up: asks for each value (checked against Discord and the broker as given), writes .env (0600), runs doctor',
    details:
      'Asks in the order of the README: the Discord application, token, server, alert channel and roles, then the broker URL and keys, then the trader\'s script. ' +
      'A token Discord rejects is asked again; a server the bot is not in gets the invite link. An existing .env is replaced only after a yes. ' +
      'With piped input the answers are the lines in order (an empty line skips a question); when the input ends early nothing is written. No secret is printed.',
    exits: 'Exit codes: 0 written and doctor found nothing ✗, 1 doctor found a ✗ (or .env kept, or an answer refused 3 times), 2 the input ended early.',
  },
} as const;
type TerminalVerb = keyof typeof TERMINAL_VERBS;
const isTerminalVerb = (verb: string): verb is TerminalVerb => Object.hasOwn(TERMINAL_VERBS, verb);
const verbNames = (): string[] => [...operationNames, ...Object.keys(TERMINAL_VERBS), ...Object.keys(PACKAGE_VERBS)];

// ---- the command line, from the catalogue ----

const cliOperations = (): AnyOperation[] => operationNames.map((name) => OPERATIONS[name] as AnyOperation);

const takesPids = (op: AnyOperation) => op.options.some((o) => o.kind === 'pids' && o.typedIn.includes('cli'));
const asksForWord = (op: AnyOperation) => op.confirm?.typedWord;

function usageOf(op: AnyOperation): string {
  const parts = [op.name];
  for (const option of op.options) {
    if (option.kind === 'integer') parts.push(`[--${option.name} N]`);
    else if (option.kind === 'choice') parts.push(`[--${option.name} ${option.choices.join('|')}]`);
    else if (option.typedIn.includes('cli')) parts.push('PID [PID…]');
  }
  if (asksForWord(op)) parts.push('[--yes]');
  return parts.join(' ');
}

function parseOptions(op: AnyOperation): ParseArgsConfig['options'] {
  const options: NonNullable<ParseArgsConfig['options']> = { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } };
  for (const option of op.options) if (isValueOption(option)) options[option.name] = { type: 'string' };
  if (asksForWord(op)) options.yes = { type: 'boolean' };
  return options;
}

class UsageError extends Error {}

interface VerbLine {
  op: AnyOperation;
  args: Args;
  json: boolean;
  yes: boolean;
  help: boolean;
}

/** Parses `<verb> [options]` strictly; every problem names the word and what is expected. */
export function parseVerbLine(verb: string, rest: readonly string[]): VerbLine {
  const op = operation(verb);
  if (!op) {
    const close = nearest(verb, verbNames());
    throw new UsageError(`Unknown command "${verb}".${close ? ` Did you mean "${close}"?` : ''} Run \`tradewarden --help\` for the list.`);
  }
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...rest], options: parseOptions(op), strict: true, allowPositionals: true }) as typeof parsed;
  } catch (error) {
    throw new UsageError(`${op.name}: ${argumentProblem(error, op)}`);
  }
  const { values, positionals } = parsed;
  const args: Record<string, number | string | number[]> = {};
  for (const option of op.options) {
    if (!isValueOption(option)) continue;
    const raw = values[option.name];
    if (typeof raw !== 'string') continue;
    const value = checkValue(option, raw);
    if (typeof value === 'object') throw new UsageError(`${op.name}: --${value.problem}`);
    args[option.name] = value;
  }
  if (takesPids(op)) {
    if (positionals.length === 0 && !values.help) {
      throw new UsageError(`${op.name} needs one or more PIDs, e.g. \`tradewarden ${op.name} 4242\` (see \`tradewarden duplicates\`)`);
    }
    const pids = checkPids(positionals);
    if (!Array.isArray(pids)) throw new UsageError(`${op.name}: ${pids.problem}`);
    if (pids.length) args.pids = pids;
  } else if (positionals.length) {
    throw new UsageError(`${op.name} takes no words, got "${positionals.join(' ')}". Usage: tradewarden ${usageOf(op)}`);
  }
  return { op, args, json: values.json === true, yes: values.yes === true, help: values.help === true };
}

/** node:util's parse errors, said in our words: which flag, and what the verb takes. */
function argumentProblem(error: unknown, op: AnyOperation): string {
  const code = (error as { code?: string }).code;
  const flag = /'(-[^']*)'/.exec(describeError(error))?.[1];
  const takes = `it takes: ${usageOf(op).split(' ').slice(1).concat('[--json]').join(' ')}`;
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown option ${flag ?? ''}; ${takes}`;
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    const name = flag?.replace(/^-+/, '').split(' ')[0] ?? '';
    return ['json', 'help', 'yes', 'h'].includes(name) ? `--${name} takes no value` : `--${name} needs a value, e.g. --${name} 10`;
  }
  return describeError(error);
}

// ---- help, generated from the catalogue ----

export function helpText(verb?: string): string {
  if (verb && isPackageVerb(verb)) return packageVerbHelp(verb);
  if (verb && isTerminalVerb(verb)) {
    const { summary, details, exits } = TERMINAL_VERBS[verb];
    return [`Usage: tradewarden ${verb}${verb === 'init' ? '' : ' [--json]'}`, '', summary, '', details, '', exits].join('\n');
  }
  const op = verb ? operation(verb) : undefined;
  if (op) {
    const lines = [`Usage: tradewarden ${usageOf(op)} [--json]`, '', op.summary];
    if (op.details) lines.push('', op.details);
    const word = asksForWord(op);
    if (word) lines.push('', `Asks you to type ${word} to confirm, unless --yes is given.`);
    const valued = op.options.filter(isValueOption);
    if (valued.length) lines.push('', 'Options:', ...valued.map((o) => `  --${o.name} ${o.kind === 'integer' ? 'N' : o.choices.join('|')}  ${o.description}`));
    lines.push('', op.access === 'operator' ? 'Changes things: audited as cli:<your user name>.' : 'Read-only.');
    return lines.join('\n');
  }
  const ops = cliOperations();
  const terminal = [
    ...Object.entries(TERMINAL_VERBS).map(([name, v]) => ({ usage: name, summary: v.summary })),
    ...Object.values(PACKAGE_VERBS).map((v) => ({ usage: v.usage, summary: v.summary })),
  ];
  const rows = [...ops.map((o) => ({ usage: usageOf(o), summary: o.summary })), ...terminal];
  const width = Math.max(...rows.map((r) => r.usage.length));
  return [
    'Usage: tradewarden <command> [options]',
    '',
    'Keeps exactly one trading process running under PM2; the same operations as the Discord bot.',
    '',
    'Commands:',
    ...rows.map((r) => `  ${r.usage.padEnd(width)}  ${r.summary}`),
    '',
    'Options: --json (machine-readable output), --help (help for a command), --config DIR (the configuration folder)',
    'Exit codes: 0 done, 1 failed, 2 usage error, 3 refused',
    'Configuration comes from the environment and the .env of the configuration folder: the working directory, or --config DIR',
    '(TRADEWARDEN_CONFIG); relative paths in it are taken from that folder (see .env.example).',
  ].join('\n');
}

// ---- running a verb ----

export async function runCli(commandLine: string[], io: CliIo = processIo): Promise<number> {
  const configured = takeConfigOption(commandLine);
  if ('problem' in configured) {
    io.err(configured.problem);
    return EXIT.usage;
  }
  const { argv } = configured;
  const verbAt = argv.findIndex((a) => !a.startsWith('-'));
  const verb = verbAt === -1 ? undefined : argv[verbAt]!;
  const rest = verbAt === -1 ? argv : [...argv.slice(0, verbAt), ...argv.slice(verbAt + 1)];
  if (verb === undefined || verb === 'help') {
    const topic = verb === 'help' ? rest.find((a) => !a.startsWith('-')) : undefined;
    const strays = rest.filter((a) => a !== '--help' && a !== '-h' && a !== topic);
    if (strays.length) {
      io.err(`Unknown option ${strays[0]}.\n\n${helpText()}`);
      return EXIT.usage;
    }
    if (topic && !operation(topic) && !isTerminalVerb(topic) && !isPackageVerb(topic)) {
      io.err(parseProblem(topic));
      return EXIT.usage;
    }
    io.out(helpText(topic));
    return verb === 'help' || rest.length ? EXIT.ok : EXIT.usage;
  }

  if (isPackageVerb(verb)) return runPackageVerb(verb, rest, io);
  if (isTerminalVerb(verb)) return verb === 'doctor' ? runDoctorVerb(verb, rest, io) : verb === 'init' ? runInitVerb(verb, rest, io) : runHealth(verb, rest, io);

  let line: VerbLine;
  try {
    line = parseVerbLine(verb, rest);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.err(error.message);
    return EXIT.usage;
  }
  if (line.help) {
    io.out(helpText(verb));
    return EXIT.ok;
  }
  return runVerb(line, io);
}

function parseProblem(verb: string): string {
  try {
    parseVerbLine(verb, []);
    return '';
  } catch (error) {
    return describeError(error);
  }
}

async function runVerb({ op, args, json, yes }: VerbLine, io: CliIo): Promise<number> {
  // Loaded only now: nothing of this is needed to parse or to print help. The text renderer only
  // for text output; it loads while the controller (if any) works on the answer.
  const [{ ConfigError, loadConfig }, { createLogger, redact }] = await Promise.all([import('../config.ts'), import('../log.ts')]);
  const textRenderers = json ? undefined : import('../render/text.ts');
  textRenderers?.catch(() => undefined); // awaited below; an early failure must not go unhandled
  const name = op.name as OperationName;
  let secrets: readonly string[] = [];
  let close: (() => Promise<void>) | undefined;
  try {
    const config = loadConfig();
    secrets = config.secrets;
    // Asked once, by a shortcut or by perform below, whichever gets there first.
    let confirmed = false;
    const confirm = async (confirmation = op.confirm, planned = args): Promise<void> => {
      const word = confirmation?.typedWord;
      if (confirmed || !word || yes) return;
      if (!(await typed(`${plainPrompt(confirmation, planned)} Type ${word} to confirm: `, word))) {
        throw new OperationError('refused', `${op.name} not confirmed: nothing was done`);
      }
      confirmed = true;
    };
    let report: unknown;
    for (const shortcut of SHORTCUTS[name] ?? []) {
      report = await shortcut(config, args, () => confirm());
      if (report !== undefined) break;
    }
    if (report === undefined) {
      const { buildApp } = await import('../app.ts');
      const app = buildApp(config, { logger: createLogger({ secrets, level: config.logLevel ?? 'warn' }), deliversAlerts: false, lightPm2Reads: true });
      close = () => app.close();
      const outcome = await perform(op, app.core, terminalActor(), args, async (confirmation, planned) => {
        await confirm(confirmation, planned);
        return true;
      });
      if (!outcome.done) throw new OperationError('refused', `${op.name} not confirmed: nothing was done`);
      report = outcome.report;
    }
    const rendered = textRenderers ? ((await textRenderers).TEXT[name] as (report: unknown, args: Args) => string)(report, args) : JSON.stringify(report, null, 2);
    io.out(redact(rendered, secrets));
    return op.incomplete?.(report) ? EXIT.failed : EXIT.ok;
  } catch (error) {
    const message = redact(describeError(error), secrets);
    if (json) io.out(JSON.stringify({ error: message, kind: error instanceof OperationError ? error.kind : 'failed' }));
    else io.err(`${error instanceof OperationError && error.kind === 'refused' ? 'Refused' : 'Error'}: ${message}`);
    if (error instanceof ConfigError) return EXIT.usage;
    if (error instanceof OperationError) return error.kind === 'refused' ? EXIT.refused : error.kind === 'usage' ? EXIT.usage : EXIT.failed;
    return EXIT.failed;
  } finally {
    await close?.().catch(() => undefined);
  }
}

/** A terminal verb's flags (--json, --help), strictly; a number is the exit code when they are wrong or --help was asked. */
function terminalFlags(verb: TerminalVerb, rest: readonly string[], io: CliIo): { json?: boolean } | number {
  let values: { json?: boolean; help?: boolean };
  try {
    const parsed = parseArgs({ args: [...rest], options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: true });
    if (parsed.positionals.length) throw new UsageError(`${verb} takes no words, got "${parsed.positionals.join(' ')}". Usage: tradewarden ${verb} [--json]`);
    values = parsed.values;
  } catch (error) {
    io.err(error instanceof UsageError ? error.message : `${verb}: ${describeError(error)}; it takes: [--json]`);
    return EXIT.usage;
  }
  if (values.help) {
    io.out(helpText(verb));
    return EXIT.ok;
  }
  return values;
}

/** `tradewarden doctor`: the report is the exit code; a wrong variable is one of its ✗ lines, not a usage error. */
async function runDoctorVerb(verb: TerminalVerb, rest: readonly string[], io: CliIo): Promise<number> {
  const values = terminalFlags(verb, rest, io);
  if (typeof values === 'number') return values;
  const [{ runDoctor }, { doctorText }] = await Promise.all([import('../doctor/run.ts'), import('../doctor/report.ts')]);
  const report = await runDoctor();
  io.out(values.json ? JSON.stringify(report, null, 2) : doctorText(report));
  return report.ok ? EXIT.ok : EXIT.failed;
}

/** `tradewarden init`: questions on stderr, doctor's report on stdout. */
async function runInitVerb(verb: TerminalVerb, rest: readonly string[], io: CliIo): Promise<number> {
  const values = terminalFlags(verb, rest, io);
  if (typeof values === 'number') return values;
  if (values.json) {
    io.err('init asks questions and takes no --json; run `tradewarden doctor --json` after it');
    return EXIT.usage;
  }
  const { runInit } = await import('../doctor/init.ts');
  return runInit({ io: { input: process.stdin, say: (text) => process.stderr.write(text + '\n'), prompt: (text) => process.stderr.write(text), out: io.out } });
}

/** `tradewarden health`: strict like every verb; the answer is the controller's, over its socket. */
async function runHealth(verb: TerminalVerb, rest: readonly string[], io: CliIo): Promise<number> {
  const values = terminalFlags(verb, rest, io);
  if (typeof values === 'number') return values;
  const [{ ConfigError, loadConfig }, { healthText }, { probeHealth }] = await Promise.all([
    import('../config.ts'),
    import('../render/text.ts'),
    import('../health/probe.ts'),
  ]);
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    io.err(`Error: ${describeError(error)}`);
    return error instanceof ConfigError ? EXIT.usage : EXIT.failed;
  }
  const probe = await probeHealth(config.dataDir);
  io.out(values.json ? JSON.stringify(probe, null, 2) : healthText(probe));
  return probe.healthy ? EXIT.ok : EXIT.failed;
}

async function typed(question: string, expected: string): Promise<boolean> {
  const readline = await import('node:readline/promises');
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await Promise.race([rl.question(question), new Promise<string>((resolve) => rl.once('close', () => resolve('')))]);
    return answer.trim() === expected;
  } finally {
    rl.close();
  }
}

/** Runs the CLI for this process and exits with its code (bin/tradewarden.cjs and `npm run cli`). */
export async function main(): Promise<never> {
  const code = await runCli(process.argv.slice(2));
  // PM2's client can keep handles open after disconnect; the answer is out, so leave now.
  process.stdout.write('', () => process.exit(code));
  return new Promise<never>(() => {});
}

// Run as a script (`npm run cli`, or node dist/cli.cjs): not when imported (bin/tradewarden.cjs, tests).
if (process.argv[1] && import.meta.filename === process.argv[1]) void main();
