// `npm run commands:deploy` registers the slash commands in DISCORD_GUILD_ID (instant), or with
// `-- --global` for every guild (Discord may take up to an hour to show global changes).
// Both are one bulk overwrite, so a removed command disappears too.
import { REST, Routes } from 'discord.js';
import { ConfigError, loadConfig, parseConfig, type Config } from '../config.ts';
import { describeError } from '../errors.ts';
import { redact } from '../log.ts';
import { commandDefinitions, loadCommands } from './commands.ts';

const TOKEN_REQUIREMENT = 'it is required when DISCORD_TOKEN is set';

/**
 * The configuration contract, minus what only the controller needs with a token (the guild, the
 * alert channel): a deploy needs the token, the application id, and the guild unless --global.
 */
function deployConfig(): { config: Config; token?: string } {
  const env: Record<string, string | undefined> = { ...process.env };
  try {
    const config = loadConfig(env);
    return { config, token: config.discord.token };
  } catch (error) {
    // loadConfig has applied .env to `env` (under the real environment) before it validated.
    if (!(error instanceof ConfigError) || !error.problems.every((p) => p.endsWith(TOKEN_REQUIREMENT))) throw error;
    return { config: parseConfig({ ...env, DISCORD_TOKEN: undefined }), token: env.DISCORD_TOKEN?.trim() || undefined };
  }
}

const global = process.argv.includes('--global');
let secrets: readonly string[] = [];
try {
  const { config, token } = deployConfig();
  secrets = [...config.secrets, ...(token ? [token] : [])];
  const { clientId, guildId, apiUrl } = config.discord;
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
