// `npm run commands:deploy [-- --global]` (src/discord/deploy.ts) as an operator runs it, against the
// Discord stand-in: one bulk overwrite per run, in the guild or globally, with clear failures that
// never print the token. No PM2 here.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { REST, Routes } from 'discord.js';
import { startDiscordStandIn, type DiscordStandIn } from '../testkit/discord/discord.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const applicationId = '1100000000000000009';
const guildId = '1200000000000000009';
const channelId = '1300000000000000009';
const COMMANDS = ['account', 'alerts', 'bot', 'digest', 'flatten', 'pnl', 'trades'];

interface Run {
  code: number | null;
  output: string;
}

describe('npm run commands:deploy against the stand-in', () => {
  let discord: DiscordStandIn;

  before(async () => {
    discord = await startDiscordStandIn({ applicationId, guilds: [{ id: guildId, name: 'Desk', channels: [{ id: channelId, name: 'alerts' }] }] });
  });
  after(() => discord.close());

  /** Runs the deploy script with only the Discord variables we give (the cwd has no .env). */
  function deploy(args: string[], overrides: Record<string, string | undefined> = {}): Promise<Run> {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
    const vars: Record<string, string | undefined> = {
      DISCORD_TOKEN: discord.token,
      DISCORD_API_URL: discord.apiUrl,
      DISCORD_CLIENT_ID: applicationId,
      DISCORD_GUILD_ID: guildId,
      DISCORD_ALERT_CHANNEL_ID: channelId,
      ...overrides,
    };
    for (const [name, value] of Object.entries(vars)) if (value !== undefined) env[name] = value;
    const child = spawn('npm', ['run', '--silent', 'commands:deploy', ...(args.length ? ['--', ...args] : [])], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`deploy did not finish in 30 s; output so far:\n${output}`));
      }, 30_000);
      child.once('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, output });
      });
    });
  }

  test('registers every command in the guild with one bulk overwrite, removing a stale one', async () => {
    // A command an older version registered.
    const rest = new REST({ version: '10', api: discord.apiUrl }).setToken(discord.token);
    await rest.post(Routes.applicationGuildCommands(applicationId, guildId), { body: { name: 'retired', description: 'Gone in this version' } });

    const run = await deploy([]);
    assert.equal(run.code, 0, run.output);
    assert.match(run.output, new RegExp(`Registered ${COMMANDS.length} commands \\(${COMMANDS.map((c) => `/${c}`).join(', ')}\\) in guild ${guildId}\\.`));
    assert.deepEqual(discord.commands(guildId).map((c) => c.name).sort(), COMMANDS, 'the stale command is gone');
    assert.deepEqual(discord.commands(), [], 'nothing global');
    const puts = discord.requests.filter((r) => r.method === 'PUT');
    assert.deepEqual(puts.map((r) => [r.path, r.status, r.authorized]), [[`/applications/${applicationId}/guilds/${guildId}/commands`, 200, true]]);
  });

  test('-- --global registers them for every guild', async () => {
    // Neither the guild nor the alert channel is needed for a global deploy.
    const run = await deploy(['--global'], { DISCORD_GUILD_ID: undefined, DISCORD_ALERT_CHANNEL_ID: undefined });
    assert.equal(run.code, 0, run.output);
    assert.match(run.output, new RegExp(`Registered ${COMMANDS.length} commands .* globally\\.`));
    assert.deepEqual(discord.commands().map((c) => c.name).sort(), COMMANDS);
    const flatten = discord.commands().find((c) => c.name === 'flatten')!;
    assert.equal(flatten.default_member_permissions, '32', 'Manage Server as the first gate');
  });

  test('without a guild and without --global it refuses with the variable to set (exit 2)', async () => {
    const run = await deploy([], { DISCORD_GUILD_ID: undefined });
    assert.equal(run.code, 2, run.output);
    assert.equal(discord.commands(guildId).length, COMMANDS.length, 'nothing changed');
    assert.match(run.output, /DISCORD_GUILD_ID is missing: set it, or pass --global/);
  });

  test('a token Discord refuses fails with exit 1, and the output never shows the token', async () => {
    const wrong = `${Buffer.from(applicationId).toString('base64url')}.Wrong.${'x'.repeat(27)}`;
    const run = await deploy([], { DISCORD_TOKEN: wrong });
    assert.equal(run.code, 1, run.output);
    assert.match(run.output, /401|Unauthorized/i);
    assert.equal(run.output.includes(wrong), false, 'the token is not printed');
    assert.equal(run.output.includes(discord.token), false);
  });
});
