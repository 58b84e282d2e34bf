// One router, once: every interaction passes here. It finds the catalogue operation behind the
// command (or the alert's button), checks who may run it with the catalogue's access rule, defers so
// Discord's 3-second acknowledgement never lapses, follows the catalogue's flow (look, confirm with
// buttons, run), renders the report (REPLIES) and turns errors into short ephemeral messages.
import crypto from 'node:crypto';
import {
  ActionRowBuilder,
  ButtonBuilder,
  ButtonStyle,
  MessageFlags,
  type ButtonInteraction,
  type ChatInputCommandInteraction,
  type GuildMember,
  type Interaction,
  type APIInteractionGuildMember,
} from 'discord.js';
import type { Config } from '../config.ts';
import { OPERATIONS, mayRun, operationForSlash, perform, type Args, type OperationName, type Operation } from '../core/catalogue.ts';
import type { Actor, Core } from '../core/operations.ts';
import { OperationError, describeError } from '../errors.ts';
import { redact, type Logger } from '../log.ts';
import { REPLIES, clip, type Reply } from './render.ts';

/** custom_id prefixes. Confirmation buttons carry a one-time nonce; alert buttons carry their facts. */
export const CUSTOM_ID = { confirm: 'tw:confirm:', cancel: 'tw:cancel:', stopDuplicates: 'tw:stopdups:', lockAccount: 'tw:lock', flatten: 'tw:flatten' } as const;

interface PendingConfirmation {
  userId: string;
  label: string;
  resolve: (click: ButtonInteraction | null) => void;
  timer: NodeJS.Timeout;
  /** Ends it without acting: resolves null and replaces the prompt with `text`, buttons gone. */
  abandon(text: string): Promise<void>;
}

type Deferred = ChatInputCommandInteraction | ButtonInteraction;

export interface RouterOptions {
  core: Core;
  config: Config;
  logger: Logger;
  confirmTimeoutMs?: number;
}

export class InteractionRouter {
  private readonly pending = new Map<string, PendingConfirmation>();
  private readonly confirmTimeoutMs: number;

  constructor(private readonly options: RouterOptions) {
    this.confirmTimeoutMs = options.confirmTimeoutMs ?? 30_000;
  }

  /** The interactionCreate handler. Never throws: a failure is answered and logged. */
  async handle(interaction: Interaction): Promise<void> {
    try {
      if (interaction.isChatInputCommand()) await this.handleCommand(interaction);
      else if (interaction.isButton()) await this.handleButton(interaction);
    } catch (error) {
      this.options.logger.error(`interaction ${interaction.id}: ${describeError(error)}`);
    }
  }

  /**
   * Ends every open confirmation (shutdown): nothing is done, and each prompt loses its buttons,
   * so a click after a restart cannot look as if it could still act.
   */
  async close(): Promise<void> {
    const open = [...this.pending.values()];
    this.pending.clear();
    await Promise.allSettled(open.map((entry) => entry.abandon('The controller stopped before an answer: nothing was done. Run the command again.')));
  }

  actorFor(interaction: Interaction): Actor {
    const { operatorUserIds, operatorRoleIds } = this.options.config.discord;
    const roles = memberRoleIds(interaction.member);
    return {
      id: `discord:${interaction.user.id}`,
      name: interaction.user.username,
      isOperator: operatorUserIds.includes(interaction.user.id) || roles.some((r) => operatorRoleIds.includes(r)),
    };
  }

  private async handleCommand(interaction: ChatInputCommandInteraction): Promise<void> {
    const subcommand = interaction.options.getSubcommand(false);
    const op = operationForSlash(interaction.commandName, subcommand);
    if (!op) {
      await interaction.reply({ content: `I don't know /${interaction.commandName} (any more). The command list refreshes when the controller restarts.`, flags: MessageFlags.Ephemeral });
      return;
    }
    const what = [interaction.commandName, subcommand].filter(Boolean).join(' ');
    const actor = this.actorFor(interaction);
    if (!mayRun(op, actor)) {
      // Audited under the operation's name (start, flatten, …), as the CLI and the core record it.
      await this.refuse(interaction, actor, `run /${what}`, op.name);
      return;
    }
    await interaction.deferReply();
    const args: Record<string, number | string> = {};
    for (const option of op.options) {
      const value = option.kind === 'integer' ? interaction.options.getInteger(option.name) : option.kind === 'choice' ? interaction.options.getString(option.name) : null;
      if (value !== null) args[option.name] = value;
    }
    await this.run(interaction, op.name, actor, args, what);
  }

  /** The catalogue's flow for one operation, answered on the (deferred) reply. */
  private async run(interaction: Deferred, name: OperationName, actor: Actor, args: Args, what: string): Promise<void> {
    try {
      const op = OPERATIONS[name] as Operation<unknown>;
      const outcome = await perform(op, this.options.core, actor, args, (confirmation, planned) => this.confirm(interaction, confirmation.prompt(planned), confirmation.label).then(Boolean));
      if (!outcome.done) return;
      // A reply that carries a picture (/pnl's chart) is ready once it is drawn.
      const { followUps = [], ...reply } = await (REPLIES[name] as (report: unknown, args: Args) => Reply | Promise<Reply>)(outcome.report, outcome.args);
      // After a confirmation the report replaces the prompt (and its buttons).
      await interaction.editReply(op.confirm ? { content: '', embeds: [], components: [], ...reply } : reply);
      // What did not fit in one message (a long flatten report) follows, in order.
      for (const message of followUps) await interaction.followUp(message);
    } catch (error) {
      await this.answerError(interaction, what, error);
    }
  }

  private async handleButton(interaction: ButtonInteraction): Promise<void> {
    const id = interaction.customId;
    if (id.startsWith(CUSTOM_ID.confirm) || id.startsWith(CUSTOM_ID.cancel)) {
      const confirmed = id.startsWith(CUSTOM_ID.confirm);
      const nonce = id.slice((confirmed ? CUSTOM_ID.confirm : CUSTOM_ID.cancel).length);
      const entry = this.pending.get(nonce);
      if (!entry) {
        await interaction.reply({ content: 'This button has expired or was already used: nothing was done.', flags: MessageFlags.Ephemeral });
        return;
      }
      if (entry.userId !== interaction.user.id) {
        await interaction.reply({ content: `Only <@${entry.userId}>, who asked, can answer this.`, flags: MessageFlags.Ephemeral, allowedMentions: { parse: [] } });
        return;
      }
      // Act once: the entry is gone before anything is awaited, so a double click finds nothing.
      this.pending.delete(nonce);
      clearTimeout(entry.timer);
      try {
        await interaction.update({ content: confirmed ? `${entry.label}: working…` : 'Cancelled: nothing was done.', embeds: [], components: [] });
      } catch (error) {
        // Unacknowledged, the click shows "This interaction failed" to the operator: acting anyway
        // would be a destructive action they were told did not happen.
        this.options.logger.warn(`could not acknowledge a confirmation click: ${describeError(error)}`);
        await entry.abandon('Your answer could not be acknowledged in time: nothing was done. Run the command again.');
        return;
      }
      entry.resolve(confirmed ? interaction : null);
      return;
    }
    if (id.startsWith(CUSTOM_ID.stopDuplicates)) {
      const named = id.slice(CUSTOM_ID.stopDuplicates.length).split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0);
      await this.handleAlertButton(interaction, 'stop-duplicates', named.length ? { pids: named } : {});
      return;
    }
    if (id === CUSTOM_ID.lockAccount) {
      await this.handleAlertButton(interaction, 'lock', {});
      return;
    }
    if (id === CUSTOM_ID.flatten) {
      await this.handleAlertButton(interaction, 'flatten', {});
      return;
    }
    await interaction.reply({ content: "This button isn't mine or is from an older version; nothing was done.", flags: MessageFlags.Ephemeral });
  }

  /**
   * A button on an alert runs an operation of the catalogue, with its access rule and confirmation,
   * answered privately to whoever clicked: "Stop duplicates" (the PIDs the alert named, or every
   * current one when the list did not fit in the button; the catalogue's plan scans again, so an old
   * alert stops only what is still a duplicate), "Lock the account" and "Flatten" (positions left
   * with no trader: the catalogue's flatten, which looks at the broker again when it runs).
   */
  private async handleAlertButton(interaction: ButtonInteraction, name: 'stop-duplicates' | 'lock' | 'flatten', args: Args): Promise<void> {
    const op = OPERATIONS[name] as Operation<unknown>;
    const actor = this.actorFor(interaction);
    const what = name === 'lock' ? 'lock the account' : name === 'flatten' ? 'flatten the account' : 'stop duplicates';
    if (!mayRun(op, actor)) {
      await this.refuse(interaction, actor, what, name);
      return;
    }
    await interaction.deferReply({ flags: MessageFlags.Ephemeral });
    await this.run(interaction, name, actor, args, name);
  }

  private confirm(interaction: Deferred, prompt: string, label: string): Promise<ButtonInteraction | null> {
    const nonce = crypto.randomBytes(8).toString('hex');
    const seconds = Math.round(this.confirmTimeoutMs / 1000);
    return new Promise((resolve, reject) => {
      const abandon = async (text: string) => {
        clearTimeout(timer);
        this.pending.delete(nonce);
        resolve(null);
        await interaction
          .editReply({ content: text, embeds: [], components: [] })
          .catch((e: unknown) => this.options.logger.warn(`could not close a confirmation prompt: ${describeError(e)}`));
      };
      const timer = setTimeout(() => {
        if (this.pending.has(nonce)) void abandon(`Expired after ${seconds} s: nothing was done.`);
      }, this.confirmTimeoutMs);
      timer.unref();
      // Registered before the prompt is shown: a click (or a shutdown) right after the prompt
      // appears must find it. Edits of one reply go out in order, so an early abandon still wins.
      this.pending.set(nonce, { userId: interaction.user.id, label, resolve, timer, abandon });
      interaction
        .editReply({
          content: `${prompt}\n-# Only you can answer; expires in ${seconds} s.`,
          embeds: [],
          components: [
            new ActionRowBuilder<ButtonBuilder>().addComponents(
              new ButtonBuilder().setCustomId(CUSTOM_ID.confirm + nonce).setLabel(label).setStyle(ButtonStyle.Danger),
              new ButtonBuilder().setCustomId(CUSTOM_ID.cancel + nonce).setLabel('Cancel').setStyle(ButtonStyle.Secondary),
            ),
          ],
        })
        .catch((error: unknown) => {
          clearTimeout(timer);
          this.pending.delete(nonce);
          reject(error);
        });
    });
  }

  /** `shown` completes "Only operators can …"; `audited` is the operation name in the audit log. */
  private async refuse(interaction: ChatInputCommandInteraction | ButtonInteraction, actor: Actor, shown: string, audited: string): Promise<void> {
    const { operatorUserIds, operatorRoleIds } = this.options.config.discord;
    const hint =
      operatorUserIds.length + operatorRoleIds.length === 0
        ? 'No operators are configured: set DISCORD_OPERATOR_USER_IDS or DISCORD_OPERATOR_ROLE_IDS on the controller.'
        : 'Ask someone with an operator role.';
    await interaction.reply({ content: `Only operators can ${shown}. ${hint}`, flags: MessageFlags.Ephemeral });
    await this.options.core.recordRefusal(actor, audited, 'not an operator');
  }

  private async answerError(interaction: Deferred, what: string, error: unknown): Promise<void> {
    const operational = error instanceof OperationError;
    if (!operational || error.kind === 'failed') this.options.logger.error(`${what}: ${describeError(error)}${error instanceof Error && error.cause ? ` (cause: ${describeError(error.cause)})` : ''}`);
    const message = operational
      ? `${error.kind === 'refused' ? 'Refused' : 'Failed'}: ${redact(error.message, this.options.config.secrets)}`
      : `${what} failed unexpectedly; the details are in the controller's log.`;
    // Replace the public "thinking…" with nothing, and tell the person who asked.
    await interaction.deleteReply().catch(() => undefined);
    await interaction.followUp({ content: clip(message, 2000), flags: MessageFlags.Ephemeral }).catch((e: unknown) => this.options.logger.warn(`could not report an error to Discord: ${describeError(e)}`));
  }
}

function memberRoleIds(member: GuildMember | APIInteractionGuildMember | null): string[] {
  if (!member) return [];
  const roles = member.roles;
  if (Array.isArray(roles)) return roles;
  return [...roles.cache.keys()];
}
