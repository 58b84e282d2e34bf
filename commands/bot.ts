// /bot — the trading process: status, start, stop, restart, resume, logs, duplicates.
import { InteractionContextType, SlashCommandBuilder } from 'discord.js';
import type { Command } from '../src/discord/command.ts';
import { clip, duplicatesEmbed, statusEmbed } from '../src/discord/render.ts';
import { restartText, startText, stopDuplicatesText, stopText } from '../src/render/text.ts';

const LOG_LINES_MAX = 200;

const bot: Command = {
  data: new SlashCommandBuilder()
    .setName('bot')
    .setDescription('The trading process under PM2')
    .setContexts(InteractionContextType.Guild)
    .addSubcommand((s) => s.setName('status').setDescription('State, PID, uptime, trades this hour, duplicates, breaker, account'))
    .addSubcommand((s) => s.setName('start').setDescription('Start the trader (refused if running, duplicated or breaker tripped)'))
    .addSubcommand((s) => s.setName('stop').setDescription('Stop the trader gracefully (asks for confirmation)'))
    .addSubcommand((s) => s.setName('restart').setDescription('Stop, then start, as one guarded operation'))
    .addSubcommand((s) => s.setName('resume').setDescription('Clear a tripped breaker and start the trader'))
    .addSubcommand((s) =>
      s
        .setName('logs')
        .setDescription("The trader's last log lines (secrets redacted)")
        .addIntegerOption((o) => o.setName('lines').setDescription(`How many lines (1–${LOG_LINES_MAX}, default 30)`).setMinValue(1).setMaxValue(LOG_LINES_MAX)),
    )
    .addSubcommand((s) => s.setName('duplicates').setDescription('Copies of the trader in PM2 or outside it'))
    .addSubcommand((s) => s.setName('stop-duplicates').setDescription('Stop the duplicates the scan finds (asks for confirmation)')),
  access: {
    status: 'member',
    logs: 'member',
    duplicates: 'member',
    start: 'operator',
    stop: 'operator',
    restart: 'operator',
    resume: 'operator',
    'stop-duplicates': 'operator',
  },

  async execute(interaction, { core, actor, confirm }) {
    switch (interaction.options.getSubcommand()) {
      case 'status':
        await interaction.editReply({ embeds: [statusEmbed(await core.status())] });
        return;
      case 'start':
        await interaction.editReply(startText(await core.start(actor)));
        return;
      case 'stop': {
        const click = await confirm('Stop the trader? It gets SIGINT, then SIGKILL after its kill timeout.', 'Stop trader');
        if (!click) return;
        await interaction.editReply(clip(stopText(await core.stop(actor)), 2000));
        return;
      }
      case 'restart': {
        const result = await core.restart(actor);
        await interaction.editReply(clip(restartText(result), 2000));
        return;
      }
      case 'resume': {
        const result = await core.resume(actor);
        await interaction.editReply(`Breaker cleared${result.breakerWas.tripped ? ` (was: ${result.breakerWas.reason})` : ' (was not tripped)'}. ${startText(result)}`);
        return;
      }
      case 'logs': {
        const logs = await core.logs(interaction.options.getInteger('lines') ?? 30);
        // Keep the newest lines that fit in one message (2000 characters with the code fence).
        const body = logs.length > 1900 ? '…' + logs.slice(-1890) : logs;
        await interaction.editReply('```\n' + (body.replace(/```/g, "'''") || '(empty)') + '\n```');
        return;
      }
      case 'duplicates':
        await interaction.editReply({ embeds: [duplicatesEmbed(await core.duplicates())] });
        return;
      case 'stop-duplicates': {
        const duplicates = await core.duplicates();
        if (duplicates.length === 0) {
          await interaction.editReply({ embeds: [duplicatesEmbed(duplicates)] });
          return;
        }
        const pids = duplicates.map((d) => d.pid);
        const click = await confirm(`Stop ${pids.length} duplicate(s): PID ${pids.join(', ')}?`, 'Stop duplicates');
        if (!click) return;
        await interaction.editReply(clip(stopDuplicatesText(await core.stopDuplicates(actor, pids)), 2000));
        return;
      }
    }
  },
};

export default bot;
