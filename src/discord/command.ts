// The shape of a slash command module in commands/ (one file per command, as the discord.js guide
// has it). Its definition is derived from the operation catalogue (slashCommand), so what Discord
// offers, who may run it and what it does are declared once, in src/core/catalogue.ts; the router
// runs the catalogue's operations. A module may add what only Discord knows (default permissions).
import {
  InteractionContextType,
  SlashCommandBuilder,
  SlashCommandSubcommandBuilder,
  type RESTPostAPIChatInputApplicationCommandsJSONBody,
} from 'discord.js';
import { OPERATIONS, operationNames, type AnyOperation, type OptionDecl } from '../core/catalogue.ts';

export interface Command {
  data: { name: string; toJSON(): RESTPostAPIChatInputApplicationCommandsJSONBody };
}

interface SlashExtras {
  /** needed when the command groups subcommands (/bot …); one operation's summary otherwise */
  description?: string;
  /** A first gate in Discord's own UI; the router still checks the catalogue's access. */
  defaultMemberPermissions?: bigint;
}

type OptionHost = SlashCommandBuilder | SlashCommandSubcommandBuilder;

function addOptions<T extends OptionHost>(host: T, options: readonly OptionDecl[]): T {
  for (const option of options) {
    // PIDs are not typed in Discord: the scan or the alert's button names them.
    if (option.kind === 'integer') {
      host.addIntegerOption((o) => o.setName(option.name).setDescription(option.description).setMinValue(option.min).setMaxValue(option.max));
    } else if (option.kind === 'choice') {
      host.addStringOption((o) => o.setName(option.name).setDescription(option.description).addChoices(...option.choices.map((c) => ({ name: c, value: c }))));
    }
  }
  return host;
}

/** The slash command `/name`, built from every catalogue operation that sits under it. */
export function slashCommand(name: string, extras: SlashExtras = {}): Command {
  const ops = operationNames.map((n) => OPERATIONS[n] as AnyOperation).filter((op) => op.slash?.command === name);
  if (ops.length === 0) throw new Error(`no operation in the catalogue sits under /${name}`);
  const builder = new SlashCommandBuilder().setName(name).setContexts(InteractionContextType.Guild);
  if (extras.defaultMemberPermissions !== undefined) builder.setDefaultMemberPermissions(extras.defaultMemberPermissions);
  const whole = ops.find((op) => !op.slash?.subcommand);
  if (whole) {
    if (ops.length > 1) throw new Error(`/${name} is both an operation (${whole.name}) and a group of subcommands`);
    builder.setDescription(extras.description ?? whole.summary);
    addOptions(builder, whole.options);
  } else {
    if (!extras.description) throw new Error(`/${name} groups subcommands: give it a description`);
    builder.setDescription(extras.description);
    for (const op of ops) builder.addSubcommand((s) => addOptions(s.setName(op.slash!.subcommand!).setDescription(op.summary), op.options));
  }
  return { data: builder };
}

/** Refuses a malformed command module with a message that says which file and what is wrong. */
export function assertCommand(value: unknown, file: string): Command {
  const candidate = (value as { default?: unknown })?.default ?? value;
  const c = candidate as Partial<Command>;
  const problems: string[] = [];
  if (!c || typeof c !== 'object') problems.push('it exports no command object (export default slashCommand(…))');
  else if (!c.data || typeof c.data.toJSON !== 'function' || typeof c.data.name !== 'string') problems.push('`data` must be a SlashCommandBuilder');
  if (problems.length) throw new Error(`command module ${file} is malformed: ${problems.join('; ')}`);
  return c as Command;
}
