// One router, once: every interaction passes here. It looks the command up, checks who may run it
// (operators for anything that changes something, buttons included), defers so Discord's 3-second
// acknowledgement never lapses, runs the command, and turns errors into short ephemeral messages.
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
import type { Actor, Core } from '../core/operations.ts';
import { OperationError, describeError } from '../errors.ts';
import { redact, type Logger } from '../log.ts';
import { accessFor, type Command, type CommandContext } from './command.ts';
import { stopDuplicatesText } from '../render/text.ts';
import { clip } from './render.ts';

/** custom_id prefixes. Confirmation buttons carry a one-time nonce; alert buttons carry their facts. */
export const CUSTOM_ID = { confirm: 'tw:confirm:', cancel: 'tw:cancel:', stopDuplicates: 'tw:stopdups:' } as const;

interface PendingConfirmation {
  userId: string;
  label: string;
  resolve: (click: ButtonInteraction | null) => void;
  timer: NodeJS.Timeout;
}

type Deferred = ChatInputCommandInteraction | ButtonInteraction;

export interface RouterOptions {
  commands: Map<string, Command>;
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

  /** Expires every open confirmation (shutdown). */
  close(): void {
    for (const [nonce, entry] of this.pending) {
      clearTimeout(entry.timer);
      entry.resolve(null);
      this.pending.delete(nonce);
    }
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
    const command = this.options.commands.get(interaction.commandName);
    if (!command) {
      await interaction.reply({ content: `I don't know /${interaction.commandName} (any more). The command list refreshes when the controller restarts.`, flags: MessageFlags.Ephemeral });
      return;
    }
    const subcommand = interaction.options.getSubcommand(false);
    const what = [interaction.commandName, subcommand].filter(Boolean).join(' ');
    const actor = this.actorFor(interaction);
    if (accessFor(command, subcommand) === 'operator' && !actor.isOperator) {
      await this.refuse(interaction, actor, what);
      return;
    }
    await interaction.deferReply(command.ephemeral ? { flags: MessageFlags.Ephemeral } : {});
    try {
      await command.execute(interaction, this.context(interaction, actor));
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
      await interaction.update({ content: confirmed ? `${entry.label}: working…` : 'Cancelled: nothing was done.', embeds: [], components: [] });
      entry.resolve(confirmed ? interaction : null);
      return;
    }
    if (id.startsWith(CUSTOM_ID.stopDuplicates)) {
      const pids = id.slice(CUSTOM_ID.stopDuplicates.length).split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0);
      const actor = this.actorFor(interaction);
      if (!actor.isOperator) {
        await this.refuse(interaction, actor, 'stop-duplicates');
        return;
      }
      await interaction.deferReply({ flags: MessageFlags.Ephemeral });
      try {
        const click = await this.context(interaction, actor).confirm(`Stop duplicate PID ${pids.join(', ')}?`, 'Stop duplicates');
        if (!click) return;
        const result = await this.options.core.stopDuplicates(actor, pids);
        await interaction.editReply(clip(stopDuplicatesText(result), 2000));
      } catch (error) {
        await this.answerError(interaction, 'stop-duplicates', error);
      }
      return;
    }
    await interaction.reply({ content: "This button isn't mine or is from an older version; nothing was done.", flags: MessageFlags.Ephemeral });
  }

  private context(interaction: Deferred, actor: Actor): CommandContext {
    return {
      core: this.options.core,
      actor,
      confirm: (prompt, label) => this.confirm(interaction, prompt, label),
    };
  }

  private async confirm(interaction: Deferred, prompt: string, label: string): Promise<ButtonInteraction | null> {
    const nonce = crypto.randomBytes(8).toString('hex');
    const seconds = Math.round(this.confirmTimeoutMs / 1000);
    await interaction.editReply({
      content: `${prompt}\n-# Only you can answer; expires in ${seconds} s.`,
      embeds: [],
      components: [
        new ActionRowBuilder<ButtonBuilder>().addComponents(
          new ButtonBuilder().setCustomId(CUSTOM_ID.confirm + nonce).setLabel(label).setStyle(ButtonStyle.Danger),
          new ButtonBuilder().setCustomId(CUSTOM_ID.cancel + nonce).setLabel('Cancel').setStyle(ButtonStyle.Secondary),
        ),
      ],
    });
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        if (!this.pending.delete(nonce)) return;
        resolve(null);
        interaction
          .editReply({ content: `Expired after ${seconds} s: nothing was done.`, components: [] })
          .catch((e: unknown) => this.options.logger.warn(`could not expire a confirmation: ${describeError(e)}`));
      }, this.confirmTimeoutMs);
      timer.unref();
      this.pending.set(nonce, { userId: interaction.user.id, label, resolve, timer });
    });
  }

  private async refuse(interaction: ChatInputCommandInteraction | ButtonInteraction, actor: Actor, what: string): Promise<void> {
    const { operatorUserIds, operatorRoleIds } = this.options.config.discord;
    const hint =
      operatorUserIds.length + operatorRoleIds.length === 0
        ? 'No operators are configured: set DISCORD_OPERATOR_USER_IDS or DISCORD_OPERATOR_ROLE_IDS on the controller.'
        : 'Ask someone with an operator role.';
    await interaction.reply({ content: `Only operators can run ${what}. ${hint}`, flags: MessageFlags.Ephemeral });
    await this.options.core.recordRefusal(actor, what, 'not an operator');
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
