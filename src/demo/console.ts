// The terminal as the chat: the slash commands, typed at a prompt. They are the operations of the
// catalogue (src/core/catalogue.ts) that Discord offers, with the same names, subcommands, options
// (and bounds), access rule, confirmation and flow (perform); the answers are the reports rendered
// by src/render/text.ts. A confirmation asks to type "yes" and expires like Discord's buttons do.
import readline from 'node:readline';
import { OPERATIONS, checkValue, isValueOption, mayRun, operationNames, perform, plainPrompt, type Access, type AnyOperation, type Args, type OperationName, type ValueOption } from '../core/catalogue.ts';
import type { Actor, Core } from '../core/operations.ts';
import { OperationError, describeError, withTimeout } from '../errors.ts';
import { redact } from '../log.ts';
import { Mutex } from '../lock.ts';
import { nearest } from '../render/suggest.ts';
import { TEXT } from '../render/text.ts';
import type { Terminal } from './terminal.ts';

/** One runnable slash command: `/account`, or one subcommand such as `/bot logs`. */
export interface CommandSpec {
  /** "account", "bot logs" */
  path: string;
  command: string;
  subcommand?: string;
  description: string;
  /** the options typed in a chat (PIDs come from the scan there) */
  options: ValueOption[];
  access: Access;
  operation: OperationName;
}

/** Every operation Discord offers, as the console types it, in catalogue order. */
export function commandSpecs(): CommandSpec[] {
  const specs: CommandSpec[] = [];
  for (const name of operationNames) {
    const op = OPERATIONS[name] as AnyOperation;
    if (!op.slash) continue;
    const { command, subcommand } = op.slash;
    specs.push({
      path: subcommand ? `${command} ${subcommand}` : command,
      command,
      ...(subcommand ? { subcommand } : {}),
      description: op.summary,
      options: op.options.filter(isValueOption),
      access: op.access,
      operation: name,
    });
  }
  return specs;
}

export function usageOf(spec: CommandSpec): string {
  return `/${spec.path}${spec.options.map((o) => ` [${o.name}]`).join('')}`;
}

/** Console-only words, beside the slash commands. */
const QUIT_WORDS = new Set(['quit', 'exit']);

// ---- parsing a typed line ----

export type Parsed =
  | { kind: 'run'; spec: CommandSpec; options: Map<string, number | string> }
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

  const options = new Map<string, number | string>();
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
  return { kind: 'run', spec, options };
}

function parseValue(option: ValueOption, raw: string): number | string | { problem: string } {
  return checkValue(option, raw);
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

export function helpText(specs: readonly CommandSpec[], actor: Actor, topic?: string): string {
  const shown = topic ? specs.filter((s) => s.command === topic) : specs;
  if (topic && shown.length === 0) return unknownCommand(topic, specs);
  const width = Math.max(...shown.map((s) => usageOf(s).length));
  const lines = [topic ? `/${topic}:` : 'Commands (the same as in Discord):'];
  for (const spec of shown) {
    const notes = spec.access === 'operator' ? ['operators'] : [];
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
    this.specs = commandSpecs();
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
    const op = OPERATIONS[spec.operation] as AnyOperation;
    // The same check the Discord router makes, from the same catalogue.
    if (!mayRun(op, actor)) {
      this.say(`Only operators can run /${spec.path}.`, 'error');
      await core.recordRefusal(actor, op.name, 'not an operator').catch(() => undefined);
      return;
    }
    try {
      const outcome = await perform(op, core, actor, Object.fromEntries(options), (confirmation, args) => this.confirm(plainPrompt(confirmation, args)));
      if (outcome.done) this.say(redact((TEXT[spec.operation] as (report: unknown, args: Args) => string)(outcome.report, outcome.args), secrets));
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
