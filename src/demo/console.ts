// The terminal as the chat: the slash commands of commands/*.ts, typed at a prompt. Names,
// subcommands, options (with their bounds) and descriptions come from the command definitions
// themselves, so the console and Discord cannot drift; who may run what comes from the same
// `access` data (accessFor); the answers are the core's reports rendered by src/render/text.ts;
// stop, flatten and stop-duplicates ask to type "yes", and the question expires like Discord's
// confirmation buttons do.
import readline from 'node:readline';
import { accessFor, type Access, type Command } from '../discord/command.ts';
import type { Actor, Core } from '../core/operations.ts';
import { OperationError, describeError, withTimeout } from '../errors.ts';
import { redact } from '../log.ts';
import { Mutex } from '../lock.ts';
import * as text from '../render/text.ts';
import type { Terminal } from './terminal.ts';

// ---- the command definitions, as the console reads them ----

export type OptionKind = 'string' | 'integer' | 'number' | 'boolean';

export interface OptionSpec {
  name: string;
  description: string;
  kind: OptionKind;
  required: boolean;
  min?: number;
  max?: number;
}

/** One runnable slash command: `/account`, or one subcommand such as `/bot logs`. */
export interface CommandSpec {
  /** "account", "bot logs" — the key of its console handler */
  path: string;
  command: string;
  subcommand?: string;
  description: string;
  options: OptionSpec[];
  access: Access;
}

// Discord's ApplicationCommandOptionType numbers (a wire format, stable across API versions).
const SUB_COMMAND = 1;
const SUB_COMMAND_GROUP = 2;
const KIND_OF: Record<number, OptionKind> = { 3: 'string', 4: 'integer', 5: 'boolean', 10: 'number' };

interface RawOption {
  type: number;
  name: string;
  description: string;
  required?: boolean;
  min_value?: number;
  max_value?: number;
  options?: RawOption[];
}

function asRawOptions(value: unknown): RawOption[] {
  if (!Array.isArray(value)) return [];
  return value.filter(
    (o): o is RawOption => Boolean(o) && typeof o === 'object' && typeof o.type === 'number' && typeof o.name === 'string',
  );
}

function optionSpecs(raw: RawOption[]): OptionSpec[] {
  return raw
    .filter((o) => KIND_OF[o.type] !== undefined)
    .map((o) => ({
      name: o.name,
      description: typeof o.description === 'string' ? o.description : '',
      kind: KIND_OF[o.type]!,
      required: o.required === true,
      ...(typeof o.min_value === 'number' ? { min: o.min_value } : {}),
      ...(typeof o.max_value === 'number' ? { max: o.max_value } : {}),
    }));
}

/** Every runnable command and subcommand of the loaded definitions, in definition order. */
export function commandSpecs(commands: ReadonlyMap<string, Command>): CommandSpec[] {
  const specs: CommandSpec[] = [];
  for (const command of commands.values()) {
    const json = command.data.toJSON() as { name: string; description?: string; options?: unknown };
    const options = asRawOptions(json.options);
    const subcommands = options.filter((o) => o.type === SUB_COMMAND);
    if (options.some((o) => o.type === SUB_COMMAND_GROUP)) {
      throw new Error(`/${json.name} uses subcommand groups, which the demo console does not support yet`);
    }
    if (subcommands.length === 0) {
      specs.push({ path: json.name, command: json.name, description: json.description ?? '', options: optionSpecs(options), access: accessFor(command, null) });
      continue;
    }
    for (const sub of subcommands) {
      specs.push({
        path: `${json.name} ${sub.name}`,
        command: json.name,
        subcommand: sub.name,
        description: sub.description ?? '',
        options: optionSpecs(asRawOptions(sub.options)),
        access: accessFor(command, sub.name),
      });
    }
  }
  return specs;
}

export function usageOf(spec: CommandSpec): string {
  return `/${spec.path}${spec.options.map((o) => (o.required ? ` <${o.name}>` : ` [${o.name}]`)).join('')}`;
}

// ---- what each command does in the console (commands/*.ts do the same for Discord) ----

export type OptionValues = ReadonlyMap<string, string | number | boolean>;

export interface HandlerContext {
  core: Core;
  actor: Actor;
  /** Asks to type "yes"; false when anything else was typed or it expired (already said so). */
  confirm(question: string): Promise<boolean>;
}

type Handler = (context: HandlerContext, options: OptionValues) => Promise<string | undefined>;

const integer = (options: OptionValues, name: string): number | undefined => {
  const value = options.get(name);
  return typeof value === 'number' ? value : undefined;
};

export const HANDLERS: Record<string, Handler> = {
  'bot status': async ({ core }) => text.statusText(await core.status()),
  'bot start': async ({ core, actor }) => text.startText(await core.start(actor)),
  'bot stop': async ({ core, actor, confirm }) => {
    if (!(await confirm('Stop the trader? It gets SIGINT, then SIGKILL after its kill timeout.'))) return undefined;
    return text.stopText(await core.stop(actor));
  },
  'bot restart': async ({ core, actor }) => {
    const result = await core.restart(actor);
    return text.restartText(result);
  },
  'bot resume': async ({ core, actor }) => {
    const result = await core.resume(actor);
    return `Breaker cleared${result.breakerWas.tripped ? ` (was: ${result.breakerWas.reason})` : ' (was not tripped)'}. ${text.startText(result)}`;
  },
  'bot logs': async ({ core }, options) => (await core.logs(integer(options, 'lines') ?? 30)) || '(the log is empty)',
  'bot duplicates': async ({ core }) => text.duplicatesText(await core.duplicates()),
  'bot stop-duplicates': async ({ core, actor, confirm }) => {
    const duplicates = await core.duplicates();
    if (duplicates.length === 0) return text.duplicatesText(duplicates);
    const pids = duplicates.map((d) => d.pid);
    if (!(await confirm(`${text.duplicatesText(duplicates)}\nStop ${pids.length} duplicate(s): PID ${pids.join(', ')}?`))) return undefined;
    return text.stopDuplicatesText(await core.stopDuplicates(actor, pids));
  },
  flatten: async ({ core, actor, confirm }) => {
    if (!(await confirm('Flatten the account? This stops the trader, cancels every open order and closes every position at the broker.'))) return undefined;
    return text.flattenText(await core.flatten(actor));
  },
  account: async ({ core }) => text.accountText(await core.account()),
  trades: async ({ core }) => text.tradesText(await core.trades()),
  pnl: async ({ core }, options) => {
    const period = options.get('period');
    return text.pnlText(await core.pnl(typeof period === 'string' ? period : undefined));
  },
  alerts: async ({ core }, options) => text.alertsText(await core.alerts(integer(options, 'count') ?? 10)),
};

/** Console-only words, beside the slash commands. */
const QUIT_WORDS = new Set(['quit', 'exit']);

// ---- parsing a typed line ----

export type Parsed =
  | { kind: 'run'; spec: CommandSpec; options: Map<string, string | number | boolean> }
  | { kind: 'help'; topic?: string }
  | { kind: 'quit' }
  | { kind: 'empty' }
  | { kind: 'problem'; message: string };

export function parseLine(line: string, specs: readonly CommandSpec[]): Parsed {
  const words = line.trim().split(/\s+/).filter(Boolean);
  if (words.length === 0) return { kind: 'empty' };
  const name = words[0]!.replace(/^\//, '').toLowerCase();
  if (name === 'help' || name === '?') return { kind: 'help', topic: words[1]?.replace(/^\//, '').toLowerCase() };
  if (QUIT_WORDS.has(name)) return { kind: 'quit' };

  const family = specs.filter((s) => s.command === name);
  if (family.length === 0) return { kind: 'problem', message: unknownCommand(name, specs) };
  let spec = family.find((s) => s.subcommand === undefined);
  let rest = words.slice(1);
  if (!spec) {
    const sub = words[1]?.toLowerCase();
    const subs = family.map((s) => s.subcommand!).join(', ');
    if (!sub) return { kind: 'problem', message: `/${name} needs a subcommand: ${subs}. Example: /${family[0]!.path}` };
    spec = family.find((s) => s.subcommand === sub);
    if (!spec) {
      const close = nearest(sub, family.map((s) => s.subcommand!));
      return { kind: 'problem', message: `/${name} has no subcommand "${sub}"${close ? ` — did you mean /${name} ${close}?` : ''}. It has: ${subs}.` };
    }
    rest = words.slice(2);
  }

  const options = new Map<string, string | number | boolean>();
  let position = 0;
  for (const word of rest) {
    // Discord's own syntax (lines:50) or positional, in definition order (/bot logs 50).
    const named = /^([a-z0-9_-]+):(.*)$/i.exec(word);
    const option = named ? spec.options.find((o) => o.name === named[1]!.toLowerCase()) : spec.options[position++];
    if (!option) {
      return {
        kind: 'problem',
        message: named
          ? `/${spec.path} has no option "${named[1]}". Usage: ${usageOf(spec)}`
          : `/${spec.path} takes ${spec.options.length ? `at most ${spec.options.length} value(s)` : 'no values'}. Usage: ${usageOf(spec)}`,
      };
    }
    const parsed = parseValue(option, named ? named[2]! : word);
    if (typeof parsed === 'object') return { kind: 'problem', message: `${parsed.problem}. Usage: ${usageOf(spec)}` };
    options.set(option.name, parsed);
  }
  const missing = spec.options.filter((o) => o.required && !options.has(o.name));
  if (missing.length) return { kind: 'problem', message: `/${spec.path} needs ${missing.map((o) => o.name).join(', ')}. Usage: ${usageOf(spec)}` };
  return { kind: 'run', spec, options };
}

function parseValue(option: OptionSpec, raw: string): string | number | boolean | { problem: string } {
  const bounds = () =>
    option.min !== undefined && option.max !== undefined ? ` from ${option.min} to ${option.max}` : option.min !== undefined ? ` of at least ${option.min}` : option.max !== undefined ? ` up to ${option.max}` : '';
  switch (option.kind) {
    case 'string':
      return raw;
    case 'boolean':
      if (/^(true|yes|on)$/i.test(raw)) return true;
      if (/^(false|no|off)$/i.test(raw)) return false;
      return { problem: `${option.name} is "${raw}": expected true or false` };
    case 'integer':
    case 'number': {
      const n = Number(raw);
      const ok = raw !== '' && Number.isFinite(n) && (option.kind === 'number' || Number.isInteger(n));
      if (!ok || (option.min !== undefined && n < option.min) || (option.max !== undefined && n > option.max)) {
        return { problem: `${option.name} is "${raw}": expected a ${option.kind === 'integer' ? 'whole ' : ''}number${bounds()}` };
      }
      return n;
    }
  }
}

function unknownCommand(name: string, specs: readonly CommandSpec[]): string {
  const names = [...new Set(specs.map((s) => s.command))];
  // "/acount" is probably "/account"; "/status" or "/stauts" probably "/bot status".
  const byWord = new Map<string, string>();
  for (const spec of specs) byWord.set(spec.subcommand ?? spec.command, spec.subcommand ? spec.path : spec.command);
  for (const command of names) byWord.set(command, command);
  const word = nearest(name, [...byWord.keys()]);
  const close = word === undefined ? undefined : byWord.get(word);
  return [
    `Unknown command "/${name}".${close ? ` Did you mean /${close}?` : ''}`,
    `Commands: ${names.map((n) => '/' + n).join(', ')} — /help lists them all with what they do.`,
  ].join('\n');
}

/** The closest candidate within a typo's reach of `word` (one edit for short words, two otherwise). */
function nearest(word: string, candidates: readonly string[]): string | undefined {
  const reach = word.length <= 4 ? 1 : 2;
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(word, candidate);
    if (distance <= reach && (!best || distance < best.distance)) best = { candidate, distance };
  }
  return best?.candidate;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

export function helpText(specs: readonly CommandSpec[], actor: Actor, topic?: string): string {
  const shown = topic ? specs.filter((s) => s.command === topic) : specs;
  if (topic && shown.length === 0) return unknownCommand(topic, specs);
  const width = Math.max(...shown.map((s) => usageOf(s).length));
  const lines = [topic ? `/${topic}:` : 'Commands (the same as in Discord):'];
  for (const spec of shown) {
    const notes = [spec.access === 'operator' ? 'operators' : '', HANDLERS[spec.path] ? '' : 'Discord only'].filter(Boolean);
    lines.push(`  ${usageOf(spec).padEnd(width)}  ${spec.description}${notes.length ? ` [${notes.join(', ')}]` : ''}`);
    for (const option of spec.options) lines.push(`  ${''.padEnd(width)}    ${option.name}: ${option.description}`);
  }
  if (!topic) {
    lines.push(
      '',
      'Options go by position or by name, as in Discord: /bot logs 50, /bot logs lines:50.',
      '/help [command] — this list · /quit (or Ctrl-C) — stop everything the demo started.',
      `You are ${actor.name} (${actor.id}), ${actor.isOperator ? 'an operator: every command is allowed' : 'not an operator: commands that change something are refused'}.`,
    );
  }
  return lines.join('\n');
}

// ---- the console itself ----

export interface ChatConsoleOptions {
  core: Core;
  actor: Actor;
  commands: ReadonlyMap<string, Command>;
  terminal: Terminal;
  input: NodeJS.ReadableStream & { isTTY?: boolean };
  output: NodeJS.WriteStream;
  /** values redacted from every reply */
  secrets: readonly string[];
  /** same expiry as Discord's confirmation buttons */
  confirmTimeoutMs?: number;
  /** /quit, Ctrl-C at the prompt, Ctrl-D */
  onQuit(reason: string): void;
}

interface PendingConfirmation {
  resolve(confirmed: boolean): void;
  timer: NodeJS.Timeout;
}

export class ChatConsole {
  readonly specs: CommandSpec[];
  private readonly queue = new Mutex();
  private readonly confirmTimeoutMs: number;
  private readonly interactive: boolean;
  private rl?: readline.Interface;
  private pending?: PendingConfirmation;
  private closed = false;

  constructor(private readonly options: ChatConsoleOptions) {
    this.specs = commandSpecs(options.commands);
    this.confirmTimeoutMs = options.confirmTimeoutMs ?? 30_000;
    this.interactive = Boolean(options.input.isTTY);
  }

  /**
   * Reads lines: at a prompt on a terminal; without one from a pipe (scripts, tests), each line
   * echoed. When a pipe ends the demo keeps running (until --exit-after or a signal).
   */
  start(): void {
    const { input, output, terminal } = this.options;
    const rl = readline.createInterface({ input, output, terminal: this.interactive, historySize: this.interactive ? 100 : 0 });
    this.rl = rl;
    rl.on('line', (line) => this.onLine(line));
    if (this.interactive) {
      rl.setPrompt(terminal.paint('heading', 'tradewarden> '));
      terminal.attachPrompt(rl);
      rl.on('SIGINT', () => this.options.onQuit('Ctrl-C'));
      rl.on('close', () => {
        terminal.attachPrompt(undefined);
        if (!this.closed) this.options.onQuit('end of input (Ctrl-D)');
      });
      rl.prompt();
    }
  }

  /** Stops reading, expires an open question, and waits (bounded) for a command still running. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      if (this.pending) {
        clearTimeout(this.pending.timer);
        this.pending.resolve(false);
        this.pending = undefined;
      }
      this.options.terminal.attachPrompt(undefined);
      this.rl?.close();
      if (this.interactive) {
        // Erase the prompt, so what follows starts on a clean line.
        readline.clearLine(this.options.output, 0);
        readline.cursorTo(this.options.output, 0);
      }
    }
    await withTimeout(this.queue.run(async () => undefined), 15_000, 'the command still running').catch(() => undefined);
  }

  /** Runs one line as typed, after whatever is running now; resolves when its answer is printed. */
  run(line: string): Promise<void> {
    return this.queue.run(() => this.execute(line));
  }

  private onLine(line: string): void {
    // An open question takes the next line as its answer — not queued behind the command asking it.
    if (this.pending) {
      const { resolve, timer } = this.pending;
      this.pending = undefined;
      clearTimeout(timer);
      this.setPrompt('tradewarden> ');
      if (!this.interactive) this.options.terminal.print(`> ${line}`, 'muted');
      const confirmed = line.trim().toLowerCase() === 'yes';
      if (!confirmed) this.say('Cancelled: nothing was done.', 'muted');
      resolve(confirmed);
      return;
    }
    if (!line.trim()) {
      if (this.interactive) this.rl?.prompt();
      return;
    }
    void this.run(line);
  }

  private async execute(line: string): Promise<void> {
    if (this.closed) return;
    // Piped in, the command is echoed as it runs, so each answer follows its question.
    if (!this.interactive) this.options.terminal.print(`> ${line}`, 'muted');
    const parsed = parseLine(line, this.specs);
    const { core, actor, secrets } = this.options;
    switch (parsed.kind) {
      case 'empty':
        return;
      case 'quit':
        this.options.onQuit('/quit');
        return;
      case 'help':
        this.say(helpText(this.specs, actor, parsed.topic));
        return;
      case 'problem':
        this.say(parsed.message, 'warning');
        return;
      case 'run':
        break;
    }
    const { spec, options } = parsed;
    const handler = HANDLERS[spec.path];
    if (!handler) {
      this.say(`/${spec.path} is in Discord but not in this console yet.`, 'warning');
      return;
    }
    // The same check the Discord router makes, from the same `access` data.
    if (spec.access === 'operator' && !actor.isOperator) {
      this.say(`Only operators can run /${spec.path}.`, 'error');
      await core.recordRefusal(actor, spec.path, 'not an operator').catch(() => undefined);
      return;
    }
    try {
      const reply = await handler({ core, actor, confirm: (question) => this.confirm(question) }, options);
      if (reply !== undefined) this.say(redact(reply, secrets));
    } catch (error) {
      const message = redact(describeError(error), secrets);
      if (error instanceof OperationError) {
        const label = error.kind === 'refused' ? 'Refused' : error.kind === 'usage' ? 'Usage' : 'Failed';
        this.say(`${label}: ${message}`, error.kind === 'refused' ? 'warning' : 'error');
      } else this.say(`/${spec.path} failed unexpectedly: ${message}`, 'error');
    }
  }

  private confirm(question: string): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    const seconds = Math.round(this.confirmTimeoutMs / 1000);
    this.setPrompt('confirm> ');
    this.say(`${question}\nType yes to confirm (anything else cancels; expires in ${seconds} s).`, 'warning');
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        if (this.pending?.timer !== timer) return;
        this.pending = undefined;
        this.setPrompt('tradewarden> ');
        this.say(`Expired after ${seconds} s: nothing was done.`, 'muted');
        resolve(false);
      }, this.confirmTimeoutMs);
      timer.unref();
      this.pending = { resolve, timer };
    });
  }

  private setPrompt(prompt: string): void {
    if (!this.interactive || !this.rl) return;
    this.rl.setPrompt(this.options.terminal.paint(prompt.startsWith('confirm') ? 'warning' : 'heading', prompt));
  }

  private say(message: string, tone: Parameters<Terminal['print']>[1] = 'plain'): void {
    this.options.terminal.print(message, tone);
  }
}
