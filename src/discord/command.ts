// The shape of a slash command module in commands/: its definition beside its handler, and who may
// run it declared as data (enforced once, in the router — never as `if`s inside a command).
import type { ButtonInteraction, ChatInputCommandInteraction, RESTPostAPIChatInputApplicationCommandsJSONBody } from 'discord.js';
import type { Actor, Core } from '../core/operations.ts';

export type Access = 'member' | 'operator';

export interface CommandContext {
  core: Core;
  actor: Actor;
  /**
   * Shows Confirm/Cancel on the (deferred) reply. Resolves with the Confirm click — already
   * acknowledged, buttons gone — or null when cancelled or expired (the reply then says so).
   */
  confirm(prompt: string, confirmLabel: string): Promise<ButtonInteraction | null>;
}

export interface Command {
  data: { name: string; toJSON(): RESTPostAPIChatInputApplicationCommandsJSONBody };
  /** Who may run it, for the whole command or per subcommand. */
  access: Access | Record<string, Access>;
  /** Replies only the invoker sees (e.g. logs). */
  ephemeral?: boolean;
  execute(interaction: ChatInputCommandInteraction, context: CommandContext): Promise<void>;
}

export function accessFor(command: Command, subcommand: string | null): Access {
  if (typeof command.access === 'string') return command.access;
  return (subcommand && command.access[subcommand]) || 'operator';
}

/** Refuses a malformed command module with a message that says which file and what is wrong. */
export function assertCommand(value: unknown, file: string): Command {
  const candidate = (value as { default?: unknown })?.default ?? value;
  const problems: string[] = [];
  const c = candidate as Partial<Command>;
  if (!c || typeof c !== 'object') problems.push('it exports no command object (export default { data, access, execute })');
  else {
    if (!c.data || typeof c.data.toJSON !== 'function' || typeof c.data.name !== 'string') problems.push('`data` must be a SlashCommandBuilder');
    if (typeof c.execute !== 'function') problems.push('`execute` must be a function');
    if (c.access === undefined) problems.push("`access` must be 'member', 'operator' or a per-subcommand map");
  }
  if (problems.length) throw new Error(`command module ${file} is malformed: ${problems.join('; ')}`);
  return c as Command;
}
