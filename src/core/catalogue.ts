// The operation catalogue: every operation tradewarden offers, declared once — its name, its
// options with their limits, who may run it, what it asks before acting, the core call, and the
// report it returns. Discord (slash commands, buttons), the CLI and the demo console are renderers
// of this list: they parse the options it declares, apply its access rule and confirmation, call
// `run`, and render the report with their own renderer for that name (a missing renderer is a
// compile error). Adding an operation is one entry here plus one renderer per front.
//
// Kept free of runtime imports (types only): the CLI loads it for `--help` and parsing before
// anything heavy is imported.
import type { Actor, Core } from './operations.ts';
import type {
  AccountReport,
  AuditEntry,
  DigestReport,
  Duplicate,
  FlattenReport,
  LockReport,
  LogsReport,
  PnlPeriod,
  PnlReport,
  RestartReport,
  ResumeReport,
  StartResult,
  StatusReport,
  StopDuplicatesResult,
  StopReport,
  StoredAlert,
  TradeSummary,
} from './reports.ts';

export type Access = 'member' | 'operator';
export type Front = 'discord' | 'cli' | 'console';

/** A whole number within bounds; absent means `default`. */
export interface IntegerOption {
  kind: 'integer';
  name: string;
  description: string;
  min: number;
  max: number;
  default: number;
}

/** Process ids, given as words (`stop-duplicates 4242 4243`) or by a button that carries them. */
export interface PidsOption {
  kind: 'pids';
  name: string;
  description: string;
  /** the fronts where a person types them; elsewhere they come from the scan (and buttons) */
  typedIn: readonly Front[];
}

/** One word of a fixed list (a period: day, week, month); absent means `default`. */
export interface ChoiceOption {
  kind: 'choice';
  name: string;
  description: string;
  choices: readonly string[];
  default: string;
}

export type OptionDecl = IntegerOption | ChoiceOption | PidsOption;
/** The options a person types in every front (PIDs are typed only in a terminal). */
export type ValueOption = IntegerOption | ChoiceOption;
export const isValueOption = (option: OptionDecl): option is ValueOption => option.kind !== 'pids';

export type ArgValue = number | string | readonly number[] | undefined;
/** Option values after parsing: integers and choices always set (defaults applied), pids when given. */
export type Args = Readonly<Record<string, ArgValue>>;

export interface Confirmation {
  /** the question (may use **bold**; text fronts drop the asterisks) */
  prompt(args: Args): string;
  /** what the confirm button says, and the "…: working" line */
  label: string;
  /**
   * The CLI asks only when this is set: type the word, or pass --yes. A shell operator's command
   * is otherwise its own confirmation (a script that stops the trader must not hang on a question).
   */
  typedWord?: string;
}

/** What to do after looking: run with these (possibly narrowed) args, or nothing is to be done. */
export type Plan<R> = { args: Args } | { report: R };

export interface Operation<R> {
  /** CLI verb, audit name, and the key of every renderer */
  name: string;
  /** Where it sits in Discord (and the console, which mirrors Discord); absent: CLI only */
  slash?: { command: string; subcommand?: string };
  /** one line, ≤ 100 characters (Discord's limit for descriptions) */
  summary: string;
  /** more for `tradewarden <verb> --help` */
  details?: string;
  access: Access;
  options: readonly OptionDecl[];
  /** Looks before asking, so the question names exactly what will be done (or nothing is asked). */
  plan?(core: Core, args: Args): Promise<Plan<R>>;
  confirm?: Confirmation;
  run(core: Core, actor: Actor, args: Args): Promise<R>;
  /** A report that says the job is not done (flatten not flat, a PID not stopped): CLI exit 1. */
  incomplete?(report: R): boolean;
}

const integer = (args: Args, name: string): number => {
  const value = args[name];
  if (typeof value !== 'number') throw new Error(`option ${name} was not parsed`);
  return value;
};

const choice = (args: Args, name: string): string => {
  const value = args[name];
  if (typeof value !== 'string') throw new Error(`option ${name} was not parsed`);
  return value;
};

/** /pnl's periods (the core maps each to the broker's period and resolution, src/core/review.ts). */
const PNL_PERIODS = ['day', 'week', 'month', 'year'] as const satisfies readonly PnlPeriod[];

const op = <R>(operation: Operation<R>): Operation<R> => operation;

export const OPERATIONS = {
  status: op<StatusReport>({
    name: 'status',
    slash: { command: 'bot', subcommand: 'status' },
    summary: 'State, PID, uptime, trades this hour, duplicates, breaker, account',
    details: 'The account figures are the last the watch recorded, with their age: status never waits on the broker.',
    access: 'member',
    options: [],
    run: (core) => core.status(),
  }),
  start: op<StartResult>({
    name: 'start',
    slash: { command: 'bot', subcommand: 'start' },
    summary: 'Start the trader (refused if running, duplicated or breaker tripped)',
    access: 'operator',
    options: [],
    run: (core, actor) => core.start(actor),
  }),
  stop: op<StopReport>({
    name: 'stop',
    slash: { command: 'bot', subcommand: 'stop' },
    summary: 'Stop the trader gracefully (SIGINT, then SIGKILL after its kill timeout)',
    access: 'operator',
    options: [],
    confirm: { prompt: () => 'Stop the trader? It gets SIGINT, then SIGKILL after its kill timeout.', label: 'Stop trader' },
    run: (core, actor) => core.stop(actor),
  }),
  restart: op<RestartReport>({
    name: 'restart',
    slash: { command: 'bot', subcommand: 'restart' },
    summary: 'Stop, then start, as one guarded operation',
    access: 'operator',
    options: [],
    run: (core, actor) => core.restart(actor),
  }),
  resume: op<ResumeReport>({
    name: 'resume',
    slash: { command: 'bot', subcommand: 'resume' },
    summary: 'Clear a tripped breaker and start the trader',
    access: 'operator',
    options: [],
    run: (core, actor) => core.resume(actor),
  }),
  lock: op<LockReport>({
    name: 'lock',
    slash: { command: 'bot', subcommand: 'lock' },
    summary: "Lock the account at the broker: no new order from any copy, anywhere (Alpaca's suspend_trade)",
    details:
      'Blocks every new order sent with these keys, closes included; cancels still work. Whatever BROKER_LOCK says. ' +
      'unlock lifts it; resume lifts a lock tradewarden set; flatten lifts it for its own closes and sets it back.',
    access: 'operator',
    options: [],
    confirm: {
      prompt: () => '**Lock the account at the broker?** No new order will be accepted from any copy of the trader, anywhere, until unlock.',
      label: 'Lock the account',
    },
    run: (core, actor) => core.lock(actor),
  }),
  unlock: op<LockReport>({
    name: 'unlock',
    slash: { command: 'bot', subcommand: 'unlock' },
    summary: 'Lift the lock at the broker, whoever set it (tradewarden, or the broker\'s dashboard)',
    access: 'operator',
    options: [],
    confirm: { prompt: () => '**Unlock the account at the broker?** New orders will be accepted again, from any copy that runs.', label: 'Unlock the account' },
    run: (core, actor) => core.unlock(actor),
  }),
  logs: op<LogsReport>({
    name: 'logs',
    slash: { command: 'bot', subcommand: 'logs' },
    summary: "The trader's last log lines (secrets redacted)",
    access: 'member',
    options: [{ kind: 'integer', name: 'lines', description: 'How many lines (1–200, default 30)', min: 1, max: 200, default: 30 }],
    run: async (core, _actor, args) => ({ logs: await core.logs(integer(args, 'lines')) }),
  }),
  duplicates: op<Duplicate[]>({
    name: 'duplicates',
    slash: { command: 'bot', subcommand: 'duplicates' },
    summary: 'Copies of the trader in PM2 or outside it',
    access: 'member',
    options: [],
    run: (core) => core.duplicates(),
  }),
  'stop-duplicates': op<StopDuplicatesResult>({
    name: 'stop-duplicates',
    slash: { command: 'bot', subcommand: 'stop-duplicates' },
    summary: 'Stop the duplicates the scan finds (only PIDs it reports; SIGTERM, then SIGKILL)',
    details: 'In a terminal, name the PIDs (see `tradewarden duplicates`). In Discord the scan (or the alert button) names them and you confirm.',
    access: 'operator',
    options: [{ kind: 'pids', name: 'pids', description: 'PIDs to end (only those the latest scan reports)', typedIn: ['cli'] }],
    // An alert's button may be hours old: scan now, keep only what is still a duplicate.
    async plan(core, args) {
      const current = (await core.duplicates()).map((d) => d.pid);
      const named = (args.pids as readonly number[] | undefined) ?? [];
      const pids = named.length ? named.filter((pid) => current.includes(pid)) : current;
      if (pids.length === 0) return { report: { stopped: [], notInLatestScan: [...named], failed: [] } };
      return { args: { ...args, pids, gone: named.filter((pid) => !current.includes(pid)) } };
    },
    confirm: {
      prompt: (args) => {
        const pids = (args.pids as readonly number[] | undefined) ?? [];
        return `Stop ${pids.length} duplicate(s): PID ${pids.join(', ')}?`;
      },
      label: 'Stop duplicates',
    },
    async run(core, actor, args) {
      const result = await core.stopDuplicates(actor, [...((args.pids as readonly number[] | undefined) ?? [])]);
      // PIDs named but gone by the time of the look are reported as untouched, as the core does.
      const gone = (args.gone as readonly number[] | undefined) ?? [];
      return gone.length ? { ...result, notInLatestScan: [...gone, ...result.notInLatestScan] } : result;
    },
    incomplete: (report) => report.failed.length > 0,
  }),
  flatten: op<FlattenReport>({
    name: 'flatten',
    slash: { command: 'flatten' },
    summary: 'EMERGENCY: stop the trader and close every position at the broker (asks for confirmation)',
    details: 'Cancels open orders, closes every position and verifies with the broker. Exits 0 only when the broker shows the account flat.',
    access: 'operator',
    options: [],
    confirm: {
      prompt: () => '**Flatten the account?** This stops the trader, cancels every open order and closes every position at the broker.',
      label: 'Flatten now',
      typedWord: 'FLATTEN',
    },
    run: (core, actor) => core.flatten(actor),
    incomplete: (report) => !report.flat,
  }),
  account: op<AccountReport>({
    name: 'account',
    slash: { command: 'account' },
    summary: 'Equity, cash, buying power, day P/L and open positions (read live from the broker)',
    access: 'member',
    options: [],
    run: (core) => core.account(),
  }),
  trades: op<TradeSummary>({
    name: 'trades',
    slash: { command: 'trades' },
    summary: 'Recent fills and the trade count of the last hour against the limit',
    access: 'member',
    options: [],
    run: (core) => core.trades(),
  }),
  pnl: op<PnlReport>({
    name: 'pnl',
    slash: { command: 'pnl' },
    summary: 'Equity now, P/L over a period, best and worst step, with a chart of the equity curve',
    details: 'Read live from the broker (its portfolio history). Discord attaches the curve as a PNG; a terminal shows it as a sparkline.',
    access: 'member',
    options: [{ kind: 'choice', name: 'period', description: 'How far back (default month)', choices: PNL_PERIODS, default: 'month' }],
    run: (core, _actor, args) => core.pnl(choice(args, 'period')),
  }),
  digest: op<DigestReport>({
    name: 'digest',
    slash: { command: 'digest' },
    summary: 'Since the last digest (or 24 h): equity, trades, best and worst, uptime, alerts, refusals',
    details:
      'What DIGEST_CRON posts on its schedule, up to now. Read live from the broker; a read that fails is named and the rest still shown. ' +
      'Discord attaches the equity curve as a PNG; a terminal shows it as a sparkline.',
    access: 'member',
    options: [],
    run: (core) => core.digest(),
  }),
  alerts: op<StoredAlert[]>({
    name: 'alerts',
    slash: { command: 'alerts' },
    summary: 'Recent alerts and their delivery state',
    access: 'member',
    options: [{ kind: 'integer', name: 'count', description: 'How many (1–25, default 10)', min: 1, max: 25, default: 10 }],
    run: (core, _actor, args) => core.alerts(integer(args, 'count')),
  }),
  audit: op<AuditEntry[]>({
    name: 'audit',
    summary: 'Who did what, when, and how it ended',
    access: 'operator',
    options: [{ kind: 'integer', name: 'count', description: 'How many entries (1–500, default 30)', min: 1, max: 500, default: 30 }],
    run: (core, _actor, args) => core.audit(integer(args, 'count')),
  }),
} as const;

export type OperationName = keyof typeof OPERATIONS;
export type ReportOf<N extends OperationName> = (typeof OPERATIONS)[N] extends Operation<infer R> ? R : never;
export type AnyOperation = Operation<unknown>;

/** One renderer per operation, checked by the compiler: a new operation needs one in every front. */
export type Renderers<Out> = { [N in OperationName]: (report: ReportOf<N>, args: Args) => Out };

export const operationNames = Object.keys(OPERATIONS) as OperationName[];

export function operation(name: string): AnyOperation | undefined {
  return Object.hasOwn(OPERATIONS, name) ? (OPERATIONS[name as OperationName] as AnyOperation) : undefined;
}

/** The operation behind `/command [subcommand]`. */
export function operationForSlash(command: string, subcommand: string | null): (AnyOperation & { name: OperationName }) | undefined {
  for (const name of operationNames) {
    const candidate = OPERATIONS[name] as AnyOperation;
    if (candidate.slash?.command === command && (candidate.slash.subcommand ?? null) === (subcommand ?? null)) return candidate as AnyOperation & { name: OperationName };
  }
  return undefined;
}

export const mayRun = (op: Pick<AnyOperation, 'access'>, actor: Actor): boolean => op.access === 'member' || actor.isOperator;

/** Defaults for the integer options the caller did not give. */
export function withDefaults(op: AnyOperation, given: Args): Args {
  const args: Record<string, ArgValue> = { ...given };
  for (const option of op.options) if (isValueOption(option) && args[option.name] === undefined) args[option.name] = option.default;
  return args;
}

/** Checks an integer option's value; the problem names the option and its bounds. */
export function checkInteger(option: IntegerOption, raw: string): number | { problem: string } {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(n) || n < option.min || n > option.max) {
    return { problem: `${option.name} is "${raw}": expected a whole number from ${option.min} to ${option.max}` };
  }
  return n;
}

export function checkChoice(option: ChoiceOption, raw: string): string | { problem: string } {
  const word = raw.trim().toLowerCase();
  if (!option.choices.includes(word)) return { problem: `${option.name} is "${raw}": expected one of ${option.choices.join(', ')}` };
  return word;
}

/** An integer or choice option's value, checked; the problem names the option and what it takes. */
export function checkValue(option: ValueOption, raw: string): number | string | { problem: string } {
  return option.kind === 'integer' ? checkInteger(option, raw) : checkChoice(option, raw);
}

export function checkPids(words: readonly string[]): number[] | { problem: string } {
  const pids = words.map(Number);
  const bad = words.filter((w, i) => !Number.isInteger(pids[i]) || pids[i]! <= 0);
  if (bad.length) return { problem: `"${bad.join('", "')}" ${bad.length === 1 ? 'is not a PID' : 'are not PIDs'}: expected positive whole numbers` };
  return pids;
}

export type Outcome<R> = { done: true; report: R; args: Args } | { done: false };

/**
 * The one flow every front follows once access is checked: look (plan), ask (confirm, when the
 * operation declares one and there is something to do), run. `ask` resolves false when the person
 * cancelled or the question expired (the front has already said so).
 */
export async function perform<R>(
  op: Operation<R>,
  core: Core,
  actor: Actor,
  given: Args,
  ask: (confirmation: Confirmation, args: Args) => Promise<boolean>,
): Promise<Outcome<R>> {
  let args = withDefaults(op as AnyOperation, given);
  if (op.plan) {
    const plan = await op.plan(core, args);
    if ('report' in plan) return { done: true, report: plan.report, args };
    args = plan.args;
  }
  if (op.confirm && !(await ask(op.confirm, args))) return { done: false };
  return { done: true, report: await op.run(core, actor, args), args };
}

/** Text fronts show the prompt without Discord's markdown. */
export const plainPrompt = (confirmation: Confirmation, args: Args): string => confirmation.prompt(args).replace(/\*\*/g, '');
