// `npm run commands:deploy` registers the slash commands in DISCORD_GUILD_ID (instant), or with
// `-- --global` for every guild (Discord may take up to an hour to show global changes).
// Both are one bulk overwrite, so a removed command disappears too.
import { REST, Routes } from 'discord.js';
import { ConfigError, loadConfig } from '../config.ts';
import { describeError } from '../errors.ts';
import { redact } from '../log.ts';
import { commandDefinitions, loadCommands } from './commands.ts';

const global = process.argv.includes('--global');
let secrets: readonly string[] = [];
try {
  // A deploy needs the token and the application id, and the guild unless --global.
  const config = loadConfig(process.env, { discordIdsRequired: false });
  secrets = config.secrets;
  const { token, clientId, guildId, apiUrl } = config.discord;
  if (!token || !clientId) throw new ConfigError(['DISCORD_TOKEN and DISCORD_CLIENT_ID are needed to register commands']);
  if (!global && !guildId) throw new ConfigError(['DISCORD_GUILD_ID is missing: set it, or pass --global']);
  const rest = new REST({ version: '10', ...(apiUrl ? { api: apiUrl } : {}) }).setToken(token);
  const body = commandDefinitions(await loadCommands());
  await rest.put(global ? Routes.applicationCommands(clientId) : Routes.applicationGuildCommands(clientId, guildId!), { body });
  console.log(`Registered ${body.length} commands (${body.map((c) => '/' + c.name).join(', ')}) ${global ? 'globally' : `in guild ${guildId}`}.`);
} catch (error) {
  console.error(redact(describeError(error), secrets));
  process.exitCode = error instanceof ConfigError ? 2 : 1;
}
