// The setup every Discord end-to-end test file shares: a temp PM2_HOME and DATA_DIR (one PM2 daemon
// per file, ended by its PID), the local paper broker, the Discord stand-in with one guild (an ops
// channel, an alert channel, operator/alert/other roles), the real app on a ManualClock and the
// real discord.js front logged in to the stand-in. The tests play the users through `slash` and
// `click` and read what the bot answered.
// assert.ok calls here carry messages too: under tsx, node 20's expression quoting can spin.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PermissionFlagsBits } from 'discord.js';
import { buildApp, type App } from '../../src/app.ts';
import type { Actor } from '../../src/core/operations.ts';
import { ManualClock } from '../../src/clock.ts';
import { parseConfig, type Config } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { startDiscord, type DiscordFrontOptions } from '../../src/discord/front.ts';
import { startPaperBroker, type PaperBroker } from '../../testkit/paper-broker.ts';
import { startDiscordStandIn, type DiscordStandIn, type JsonObject, type StandInInteraction, type StandInMessage } from '../../testkit/discord/discord.ts';
import { killPid, makeTempHome, waitFor, type TempHome } from '../../testkit/pm2-home.ts';

export const applicationId = '1100000000000000001';
export const guildId = '1200000000000000001';
export const opsChannelId = '1300000000000000001';
export const alertChannelId = '1300000000000000002';
export const operatorRoleId = '1400000000000000001';
export const alertRoleId = '1400000000000000002';
export const otherRoleId = '1400000000000000003';
export const operator = { user: { id: '1500000000000000001', username: 'operator' }, roles: [operatorRoleId] };
/** The operator as the core sees them when a test acts directly, not through Discord. */
export const operatorActor: Actor = { id: `discord:${operator.user.id}`, name: operator.user.username, isOperator: true };
export const bystander = { user: { id: '1500000000000000002', username: 'bystander' }, roles: [] as string[] };
export const keyId = 'PKE2EKEY0123456789AB';
export const secretKey = 'SKE2ESECRETabcdefghijklmnopqrstuvwxyz0123';
export const EPHEMERAL = 64;

export type Member = typeof operator | typeof bystander;
export type Front = NonNullable<Awaited<ReturnType<typeof startDiscord>>>;

/** A trader that, like real ones, prints its credentials at start (so /bot logs must redact them). */
export const TRADER_SOURCE = `
console.log('fixture-trader pid=' + process.pid + ' key=' + (process.env.APCA_API_KEY_ID ?? '') + ' secret=' + (process.env.APCA_API_SECRET_KEY ?? '') + ' token=[' + (process.env.DISCORD_TOKEN ?? '') + ']');
const timer = setInterval(() => {}, 1000);
const stop = (signal) => { clearInterval(timer); console.log('fixture-trader got ' + signal); process.exit(0); };
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));
`;

export const subcommand = (name: string, options: JsonObject[] = []): JsonObject[] => [{ type: 1, name, options }];
export const buttonsOf = (message: { components: JsonObject[] }): JsonObject[] =>
  message.components.flatMap((row) => (Array.isArray(row.components) ? (row.components as JsonObject[]) : []));
export const customIdLike = (message: StandInMessage, prefix: string): string => {
  const button = buttonsOf(message).find((b) => String(b.custom_id).startsWith(prefix));
  assert.ok(button, `message ${message.id} has a button ${prefix}… (has ${buttonsOf(message).map((b) => b.custom_id).join(', ') || 'none'})`);
  return String(button.custom_id);
};
export const fieldOf = (embed: JsonObject, name: string): string => {
  const field = (embed.fields as { name: string; value: string }[]).find((f) => f.name === name);
  assert.ok(field, `embed has a field "${name}"`);
  return field.value;
};

export interface DiscordHarnessOptions {
  /** temp directory prefix (names the file in `ls /tmp` when a run is left behind) */
  prefix: string;
  confirmTimeoutMs: number;
  /** The paper broker stamps fills with the app's ManualClock (so trade windows line up). */
  brokerOnAppClock?: boolean;
}

export interface DiscordHarness {
  home: TempHome;
  discord: DiscordStandIn;
  paper: PaperBroker;
  /** the first app, and the front started on it */
  app: App;
  front: Front;
  /** absolute path of this file's own copy of the trader (the duplicate scan looks for this file) */
  trader: string;
  clock: ManualClock;
  logLines: string[];
  /** The controller's environment for this harness, with `overrides` (undefined removes one). */
  envFor(overrides?: Record<string, string | undefined>): Record<string, string | undefined>;
  /** Another app on the same stores and clock; closed with the harness. */
  makeApp(config: Config, env: Record<string, string | undefined>): App;
  /** Another front; stopped with the harness. */
  startFront(app: App, options?: DiscordFrontOptions): Promise<Front>;
  slash(member: Member, name: string, options?: JsonObject[]): Promise<StandInInteraction>;
  click(member: Member, message: StandInMessage | string, customId: string): Promise<StandInInteraction>;
  /** Audit entries of one operation, newest first. */
  auditOf(what: string): Promise<Awaited<ReturnType<App['core']['audit']>>>;
  /** Messages in the alert channel whose first embed has this title. */
  alertPosts(title: string): StandInMessage[];
  /** Starts a copy of the trader outside PM2 (a "rogue"); SIGKILLed by PID at close if still alive. */
  spawnRogue(args?: string[]): ChildProcess;
  close(): Promise<void>;
}

export async function startDiscordHarness(options: DiscordHarnessOptions): Promise<DiscordHarness> {
  const clock = new ManualClock(Date.now());
  const logLines: string[] = [];
  const apps: App[] = [];
  const fronts: Front[] = [];
  const rogues: ChildProcess[] = [];
  const savedEnv = { APCA_API_KEY_ID: process.env.APCA_API_KEY_ID, APCA_API_SECRET_KEY: process.env.APCA_API_SECRET_KEY, DISCORD_TOKEN: process.env.DISCORD_TOKEN };
  let home: TempHome | undefined;
  let paper: PaperBroker | undefined;
  let discord: DiscordStandIn | undefined;

  const close = async () => {
    for (const f of fronts) await f.stop().catch(() => undefined);
    for (const a of apps) await a.close().catch(() => undefined);
    for (const rogue of rogues) if (rogue.pid) await killPid(rogue.pid, 'SIGKILL');
    await home?.cleanup();
    await discord?.close();
    await paper?.close();
    for (const [name, value] of Object.entries(savedEnv)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    if (process.env.TW_TEST_LOG) console.log(logLines.join('\n'));
  };

  try {
    home = makeTempHome(options.prefix);
    const trader = path.join(home.root, 'bots', 'fixture-trader.js');
    fs.mkdirSync(path.dirname(trader), { recursive: true });
    fs.writeFileSync(trader, TRADER_SOURCE);
    paper = await startPaperBroker({ keyId, secretKey, cash: 1_000_000, prices: { AAPL: 200, MSFT: 400 }, ...(options.brokerOnAppClock ? { clock } : {}) });
    discord = await startDiscordStandIn({
      applicationId,
      guilds: [
        {
          id: guildId,
          name: 'Trading desk',
          channels: [
            { id: opsChannelId, name: 'ops' },
            { id: alertChannelId, name: 'alerts' },
          ],
          roles: [
            { id: operatorRoleId, name: 'operator', permissions: String(PermissionFlagsBits.ManageGuild) },
            { id: alertRoleId, name: 'on-call' },
            { id: otherRoleId, name: 'everyone-else' },
          ],
        },
      ],
      heartbeatIntervalMs: 500,
      waitTimeoutMs: 15_000,
    });
    // PM2 hands the starting process's environment to the trader, as the controller's .env would:
    // the broker keys reach it (it trades); the ecosystem blanks the Discord token.
    process.env.APCA_API_KEY_ID = keyId;
    process.env.APCA_API_SECRET_KEY = secretKey;
    process.env.DISCORD_TOKEN = discord.token;

    const [tempHome, stand, broker] = [home, discord, paper];
    const envFor = (overrides: Record<string, string | undefined> = {}): Record<string, string | undefined> => ({
      DISCORD_TOKEN: stand.token,
      DISCORD_API_URL: stand.apiUrl,
      DISCORD_CLIENT_ID: applicationId,
      DISCORD_GUILD_ID: guildId,
      DISCORD_ALERT_CHANNEL_ID: alertChannelId,
      DISCORD_ALERT_ROLE_ID: alertRoleId,
      DISCORD_OPERATOR_ROLE_IDS: operatorRoleId,
      APCA_API_KEY_ID: keyId,
      APCA_API_SECRET_KEY: secretKey,
      APCA_API_BASE_URL: broker.url,
      DATA_DIR: tempHome.dataDir,
      PM2_HOME: tempHome.pm2Home,
      TRADING_SCRIPT: trader,
      TRADING_KILL_TIMEOUT_MS: '1500',
      ...overrides,
    });
    const makeApp = (config: Config, env: Record<string, string | undefined>): App => {
      const app = buildApp(config, {
        logger: createLogger({ secrets: config.secrets, level: 'debug', write: (line) => logLines.push(line) }),
        deliversAlerts: true,
        clock,
        env: { ...process.env, ...env },
        flattenVerifyTimeoutMs: 3000,
      });
      apps.push(app);
      return app;
    };
    const startFront = async (app: App, frontOptions: DiscordFrontOptions = {}): Promise<Front> => {
      const front = await startDiscord(app, { confirmTimeoutMs: options.confirmTimeoutMs, ...frontOptions });
      assert.ok(front, 'a token is configured, so the front starts');
      fronts.push(front);
      return front;
    };

    const env = envFor();
    const app = makeApp(parseConfig(env), env);
    const front = await startFront(app);
    return {
      home: tempHome,
      discord: stand,
      paper: broker,
      app,
      front,
      trader,
      clock,
      logLines,
      envFor,
      makeApp,
      startFront,
      slash: (member, name, commandOptions) => stand.slashCommand({ channelId: opsChannelId, ...member, name, options: commandOptions }),
      click: (member, message, customId) => stand.clickButton({ message, customId, ...member }),
      auditOf: async (what) => (await app.core.audit(2000)).filter((e) => e.what === what),
      alertPosts: (title) => stand.channelMessages(alertChannelId).filter((m) => m.embeds[0]?.title === title),
      spawnRogue(args = []) {
        // detached: its own process group, as a copy started by hand with nohup would be.
        const rogue = spawn(process.execPath, [trader, ...args], { cwd: path.dirname(trader), stdio: 'ignore', detached: true });
        rogues.push(rogue);
        return rogue;
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** Waits until the duplicate scan reports `pid` (the OS needs a moment to show a fresh process). */
export async function waitForDuplicate(app: App, pid: number): Promise<void> {
  await waitFor(async () => (await app.supervisor.scanDuplicates()).some((d) => d.pid === pid), { what: `the scan to see PID ${pid}` });
}
