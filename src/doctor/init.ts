// `tradewarden init`: the first set-up, as questions in the order of the README's Discord and broker
// sections, each with the link to where its answer is found, and each answer checked against the
// real API as it is given (a token Discord rejects is asked again, a server the bot is not in gets
// the invite link). Then `.env` is written, mode 0600 (an existing one only after a yes), and
// doctor runs on it.
//
// In a terminal the secrets are not echoed. With piped input (scripts, tests) the answers are the
// lines in order, an empty line for "skip" or "the default"; when the input ends before a required
// answer, init stops and says which question it was and how to run it instead, writing nothing.
// No secret is ever printed back: the checks say whom a token belongs to, never the token.
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { Writable } from 'node:stream';
import { ALPACA_PAPER_URL } from '../config.ts';
import { ECOSYSTEM_FILE, writeEcosystemFile } from '../ecosystem-file.ts';
import { OperationError, describeError } from '../errors.ts';
import { checkBrokerKeys } from './broker.ts';
import { identifyBot, inviteUrl, isProblem, readGuild, type GuildFound } from './discord.ts';
import { doctorText } from './report.ts';
import { runDoctor } from './run.ts';

export interface InitIo {
  input: NodeJS.ReadableStream & { isTTY?: boolean };
  /** what init says along the way, a line (stderr: stdout stays for doctor's report) */
  say(text: string): void;
  /** a question in a terminal: the answer is typed on the same line */
  prompt(text: string): void;
  /** the doctor report at the end */
  out(text: string): void;
}

export interface InitOptions {
  env?: NodeJS.ProcessEnv;
  io: InitIo;
  /** where .env goes: the configuration folder (TRADEWARDEN_CONFIG, else the working directory) */
  dir?: string;
  timeoutMs?: number;
}

/** How often one question is asked before init gives up (piped input must not loop forever). */
const ATTEMPTS = 3;
const SNOWFLAKE = /^\d{15,21}$/;

class InputEnded extends Error {}
class GaveUp extends Error {}

/** One line per answer, from a terminal (secrets unechoed) or a pipe. */
class Answers {
  private readonly lines: string[] = [];
  private waiting?: (line: string | undefined) => void;
  private ended = false;
  private muted = false;
  private readonly rl: readline.Interface;
  readonly tty: boolean;

  constructor(private readonly io: InitIo) {
    this.tty = Boolean(io.input.isTTY);
    // A terminal echoes through this stream; muted while a secret is typed.
    const echo = new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        if (!this.muted) process.stderr.write(chunk);
        done();
      },
    });
    this.rl = readline.createInterface({ input: io.input, output: this.tty ? echo : undefined, terminal: this.tty });
    this.rl.on('line', (line) => this.push(line));
    this.rl.on('close', () => {
      this.ended = true;
      this.push(undefined);
    });
  }

  private push(line: string | undefined): void {
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = undefined;
      resolve(line);
    } else if (line !== undefined) this.lines.push(line);
  }

  async ask(question: string, secret = false): Promise<string> {
    if (this.tty) this.io.prompt(question);
    else this.io.say(question);
    this.muted = secret && this.tty;
    const line = this.lines.shift() ?? (this.ended ? undefined : await new Promise<string | undefined>((resolve) => (this.waiting = resolve)));
    if (this.muted) this.io.say(''); // the Enter that was not echoed
    this.muted = false;
    if (line === undefined) throw new InputEnded(question);
    return line.trim();
  }

  close(): void {
    this.rl.close();
  }
}

export async function runInit(options: InitOptions): Promise<number> {
  const env = options.env ?? process.env;
  const { io } = options;
  const dir = path.resolve(options.dir ?? (env.TRADEWARDEN_CONFIG?.trim() || '.'));
  const envFile = path.join(dir, '.env');
  const timeoutMs = options.timeoutMs ?? 5000;
  const answers = new Answers(io);
  const values: Array<[string, string]> = [];
  let current = 'the first question';

  /** Asks until `check` accepts the answer (a string is the problem, said before asking again). */
  const ask = async (name: string, question: string, check: (answer: string) => Promise<string | undefined> | string | undefined, secret = false): Promise<string> => {
    current = name;
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      const answer = await answers.ask(question, secret);
      const problem = await check(answer);
      if (problem === undefined) return answer;
      io.say(`  ✗ ${problem}`);
    }
    throw new GaveUp(`${name}: no acceptable answer after ${ATTEMPTS} tries`);
  };

  try {
    io.say(`tradewarden init: writes ${envFile} (mode 0600), then runs tradewarden doctor. An empty answer skips a question or keeps its default.`);
    if (fs.existsSync(envFile)) {
      const keep = await answers.ask(`${envFile} exists. Replace it? [y/N] `);
      if (!/^y(es)?$/i.test(keep)) {
        io.say(`Kept ${envFile}; nothing written. Run \`tradewarden doctor\` to check it.`);
        return 1;
      }
    }

    // ---- Discord (README "Connect a real Discord server") ----
    io.say('\nDiscord — https://discord.com/developers/applications → your application (empty: run without Discord)');
    const clientId = await ask('DISCORD_CLIENT_ID', 'Application ID (General Information → Application ID): ', (a) => (a === '' || SNOWFLAKE.test(a) ? undefined : 'an application id is 15–21 digits'));
    if (clientId) {
      values.push(['DISCORD_CLIENT_ID', clientId]);
      let botName = '';
      const token = await ask(
        'DISCORD_TOKEN',
        'Bot token (Bot → Reset Token; not shown as you type): ',
        async (a) => {
          if (!a) return 'the token is required with an application id';
          const bot = await identifyBot(env.DISCORD_API_URL, a, timeoutMs);
          if (isProblem(bot)) return bot.problem;
          if (bot.appId && bot.appId !== clientId) return `this token is the bot of application ${bot.appId}, not ${clientId}: copy the token of the same application`;
          botName = bot.name;
          return undefined;
        },
        true,
      );
      values.push(['DISCORD_TOKEN', token]);
      io.say(`  ✓ token accepted: bot ${botName}`);
      io.say(`Invite the bot to your server (scopes bot and applications.commands, the permissions it needs): ${inviteUrl(clientId)}`);
      io.say('Then Discord → User Settings → Advanced → Developer Mode on; right-click → Copy ID gives the ids below.');
      let guild: GuildFound | undefined;
      const guildId = await ask('DISCORD_GUILD_ID', 'Server id (right-click the server → Copy Server ID): ', async (a) => {
        if (!SNOWFLAKE.test(a)) return 'a server id is 15–21 digits';
        const found = await readGuild(env.DISCORD_API_URL, token, a, clientId, timeoutMs);
        if (isProblem(found)) return found.problem;
        guild = found;
        return undefined;
      });
      const server = guild!;
      values.push(['DISCORD_GUILD_ID', guildId]);
      io.say(`  ✓ the bot is in "${server.name}"`);
      const channelId = await ask('DISCORD_ALERT_CHANNEL_ID', 'Alert channel id (right-click the channel → Copy Channel ID): ', (a) =>
        server.textChannels.has(a) ? undefined : `no text channel ${a || '(empty)'} in "${server.name}" (its text channels: ${[...server.textChannels.values()].map((n) => `#${n}`).join(', ') || 'none'})`,
      );
      values.push(['DISCORD_ALERT_CHANNEL_ID', channelId]);
      io.say(`  ✓ alerts go to #${server.textChannels.get(channelId)}`);
      const roleOf = (id: string) => server.roles.find((role) => role.id === id);
      const alertRole = await ask('DISCORD_ALERT_ROLE_ID', 'Role to ping on alerts (right-click the role → Copy Role ID; empty: no ping): ', (a) =>
        a === '' || roleOf(a) ? undefined : `no role ${a} in "${server.name}"`,
      );
      if (alertRole) values.push(['DISCORD_ALERT_ROLE_ID', alertRole]);
      const operators = await ask('DISCORD_OPERATOR_ROLE_IDS', 'Operator role ids, comma-separated (who may start, stop and flatten; empty: nobody on Discord): ', (a) => {
        const unknown = a.split(',').map((s) => s.trim()).filter((id) => id && !roleOf(id));
        return unknown.length ? `no role ${unknown.join(', ')} in "${server.name}"` : undefined;
      });
      if (operators) values.push(['DISCORD_OPERATOR_ROLE_IDS', operators.split(',').map((s) => s.trim()).filter(Boolean).join(',')]);
    }

    // ---- Broker (README "Connect a broker") ----
    io.say('\nBroker — Alpaca dashboard → API keys (paper trading first; empty key: run without a broker)');
    const defaultUrl = env.APCA_API_BASE_URL?.trim() || ALPACA_PAPER_URL;
    const baseUrl = (await ask('APCA_API_BASE_URL', `Broker URL [${defaultUrl}]: `, (a) => (a === '' || /^https?:\/\/\S+$/.test(a) ? undefined : 'an http(s) URL, e.g. https://paper-api.alpaca.markets'))) || defaultUrl;
    let keyId = await ask('APCA_API_KEY_ID', 'API key id: ', () => undefined);
    if (keyId) {
      for (let attempt = 1; ; attempt++) {
        current = 'APCA_API_SECRET_KEY';
        const secret = await answers.ask('API secret key (not shown as you type): ', true);
        const checked = await checkBrokerKeys(baseUrl, keyId, secret, timeoutMs);
        if (!('problem' in checked)) {
          values.push(['APCA_API_BASE_URL', baseUrl], ['APCA_API_KEY_ID', keyId], ['APCA_API_SECRET_KEY', secret]);
          io.say(`  ✓ keys accepted: ${checked.account}`);
          break;
        }
        io.say(`  ✗ ${checked.problem}`);
        if (attempt >= ATTEMPTS) throw new GaveUp(`APCA_API_KEY_ID and APCA_API_SECRET_KEY: refused ${ATTEMPTS} times`);
        keyId = await ask('APCA_API_KEY_ID', 'API key id, again: ', (a) => (a ? undefined : 'the key id is required here'));
      }
    }

    // ---- The trader (README "Run it for real under PM2") ----
    io.say('\nYour trading bot (empty: the example trader, to try things out)');
    const script = await ask('TRADING_SCRIPT', 'Its script, e.g. /home/me/bot/main_bot.py: ', (a) =>
      a === '' || isFile(path.resolve(dir, a)) ? undefined : `no such file: ${path.resolve(dir, a)}`,
    );
    if (script) values.push(['TRADING_SCRIPT', path.resolve(dir, script)]);
  } catch (error) {
    answers.close();
    if (error instanceof InputEnded) {
      io.say(
        `\ntradewarden init: the input ended at ${current}; nothing was written. ` +
          (answers.tty ? '' : 'Without a terminal, pipe one answer per line, in the order of the questions (an empty line skips one); or run `npx tradewarden init` in a terminal.'),
      );
      return 2;
    }
    if (error instanceof GaveUp) {
      io.say(`\ntradewarden init: ${error.message}; nothing was written. Check the value where the question says, and run init again.`);
      return 1;
    }
    throw error;
  }
  answers.close();

  writeEnvFile(envFile, values);
  io.say(`\n${writePm2File(dir)}`);
  io.say(`\nWrote ${envFile} (0600): ${values.map(([name]) => name).join(', ') || 'nothing to set'}. Now tradewarden doctor:\n`);
  // Doctor reads the file just written, under the same environment (a real variable still wins).
  const report = await runDoctor({ env, dotenvPath: envFile });
  io.out(doctorText(report));
  return report.ok ? 0 : 1;
}

/** Beside .env, the PM2 process file of this folder's controller (src/ecosystem-file.ts, issue 29); one already there is kept. */
function writePm2File(dir: string): string {
  try {
    return `Wrote ${writeEcosystemFile(dir)}: \`npx pm2 start ${ECOSYSTEM_FILE} && npx tradewarden start && npx pm2 save\` deploys this folder.`;
  } catch (error) {
    if (error instanceof OperationError && error.kind === 'refused') return `Kept the ${ECOSYSTEM_FILE} already in ${dir}.`;
    return `Could not write ${ECOSYSTEM_FILE} (${describeError(error)}): \`npx tradewarden ecosystem\` writes it later.`;
  }
}

/** `.env` owner-only from its first byte (0600 at creation, and again for a replaced file). */
function writeEnvFile(file: string, values: ReadonlyArray<[string, string]>): void {
  const lines = [
    '# Written by `tradewarden init`. Every variable is explained in .env.example; the real environment wins over this file.',
    ...values.map(([name, value]) => `${name}=${/[\s#"'=]/.test(value) ? JSON.stringify(value) : value}`),
    '',
  ];
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temp, lines.join('\n'), { mode: 0o600 });
  fs.chmodSync(temp, 0o600); // the umask may have taken bits away, never added: this only makes sure
  fs.renameSync(temp, file);
}

function isFile(file: string): boolean {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}
