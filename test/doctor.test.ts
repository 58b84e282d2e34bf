// `tradewarden doctor` against real parts: the Discord stand-in (driven by discord.js where a post
// is tried), the paper broker and its trade stream, a real PM2 daemon in a temp PM2_HOME, the real
// controller (startController, with its Discord front, order gate and metrics) for the green run,
// and the real CLI process for what a user sees. Each broken set-up is one variable away from the
// green one, and each says what is wrong, where, and what to do; no output holds a secret.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { DiscordAPIError, REST, Routes } from 'discord.js';
import { parseConfig } from '../src/config.ts';
import { startController, type Controller } from '../src/controller.ts';
import { discordFront } from '../src/discord/front.ts';
import { silentLogger } from '../src/log.ts';
import { runDoctor } from '../src/doctor/run.ts';
import { doctorText, type DoctorCheck, type DoctorReport } from '../src/doctor/report.ts';
import { PERMISSION, channelVerdicts, whereToGrant } from '../src/doctor/permissions.ts';
import { startDiscordStandIn, Permission, type DiscordStandIn } from '../testkit/discord/discord.ts';
import { startPaperBroker, type PaperBroker } from '../testkit/paper-broker.ts';
import { copyTrader, daemonPid, killPid, makeTempHome, waitFor, type TempHome } from '../testkit/pm2-home.ts';
import { freeLoopbackPort } from '../testkit/ports.ts';

const BIN = path.resolve('bin/tradewarden.cjs');
const applicationId = '1110000000000000001';
const guildId = '1210000000000000001';
const alertChannelId = '1310000000000000001';
const lockedChannelId = '1310000000000000002'; // @everyone may not send
const exceptedChannelId = '1310000000000000003'; // @everyone may not send, the bot itself may
const noFilesChannelId = '1310000000000000004'; // the operator role's overwrite denies Attach Files, and the bot has that role
const operatorRoleId = '1410000000000000001';
const alertRoleId = '1410000000000000002';
const KEY = 'PKDOCTORKEY0123456789';
const SECRET = 'SKDOCTORsecretabcdefghijklmnopqrstuvwxyz';
const WRONG_SECRET = 'SKDOCTORwrongsecret000000000000000000000';
const WRONG_TOKEN = 'MTExMDAwMDAwMDAwMDAwMDAwMQ.Wrong.notthetokenthestandinaccepts0000';
const HC_CHECK = '7b3c1d9e-doctor-check-uuid-0000';

let home: TempHome;
let discord: DiscordStandIn;
let paper: PaperBroker;
let controller: Controller;
let hcServer: http.Server;
let hcUrl: string;
let trader: string;
let work: string;
const portHolders: ChildProcess[] = [];
/** every text and JSON doctor printed in this file: none may hold a secret */
const outputs: string[] = [];

/** The green set-up's variables; .env in `work` holds the secrets, as a user's would. */
let baseEnv: Record<string, string>;
let secretsInDotenv: Record<string, string>;

before(async () => {
  home = makeTempHome('tw-doctor-');
  fs.chmodSync(home.pm2Home, 0o700); // as the README asks: PM2 saves the apps' environments there
  trader = copyTrader(path.resolve('examples/heartbeat-trader.js'), path.join(home.root, 'bot'));
  work = path.join(home.root, 'work');
  fs.mkdirSync(work);
  discord = await startDiscordStandIn({
    applicationId,
    guilds: [
      {
        id: guildId,
        name: 'Trading desk',
        channels: [
          { id: alertChannelId, name: 'alerts' },
          { id: lockedChannelId, name: 'locked', permissionOverwrites: [{ id: guildId, type: 0, deny: String(Permission.SendMessages) }] },
          {
            id: exceptedChannelId,
            name: 'excepted',
            permissionOverwrites: [
              { id: guildId, type: 0, deny: String(Permission.SendMessages) },
              { id: applicationId, type: 1, allow: String(Permission.SendMessages) },
            ],
          },
          { id: noFilesChannelId, name: 'no-files', permissionOverwrites: [{ id: operatorRoleId, type: 0, deny: String(Permission.AttachFiles) }] },
        ],
        roles: [
          { id: operatorRoleId, name: 'operator' },
          { id: alertRoleId, name: 'on-call' },
        ],
        botRoles: [operatorRoleId],
      },
    ],
    heartbeatIntervalMs: 500,
  });
  paper = await startPaperBroker({ keyId: KEY, secretKey: SECRET });
  hcServer = http.createServer((_req, res) => res.writeHead(200).end('OK'));
  await new Promise<void>((resolve) => hcServer.listen(0, '127.0.0.1', resolve));
  hcUrl = `http://127.0.0.1:${(hcServer.address() as { port: number }).port}/${HC_CHECK}`;
  const [gatewayPort, metricsPort] = [await freeLoopbackPort(), await freeLoopbackPort()];
  secretsInDotenv = { DISCORD_TOKEN: discord.token, APCA_API_KEY_ID: KEY, APCA_API_SECRET_KEY: SECRET, HEALTHCHECK_URL: hcUrl };
  baseEnv = {
    DISCORD_API_URL: discord.apiUrl,
    DISCORD_CLIENT_ID: applicationId,
    DISCORD_GUILD_ID: guildId,
    DISCORD_ALERT_CHANNEL_ID: alertChannelId,
    DISCORD_ALERT_ROLE_ID: alertRoleId,
    DISCORD_OPERATOR_ROLE_IDS: operatorRoleId,
    APCA_API_BASE_URL: paper.url,
    PM2_HOME: home.pm2Home,
    DATA_DIR: home.dataDir,
    TRADING_SCRIPT: trader,
    TRADING_KILL_TIMEOUT_MS: '1500',
    GATEWAY_ADDR: `127.0.0.1:${gatewayPort}`,
    METRICS_ADDR: `127.0.0.1:${metricsPort}`,
  };
  fs.writeFileSync(path.join(work, '.env'), Object.entries(secretsInDotenv).map(([k, v]) => `${k}=${v}\n`).join(''), { mode: 0o600 });

  // The controller as `npm start` runs it: it registers the commands, holds the gate's and the
  // metrics' ports, and its process scan brings up this home's PM2 daemon.
  const env = { ...baseEnv, ...secretsInDotenv, HOME: home.root };
  controller = await startController(parseConfig(env), { logger: silentLogger, deliversAlerts: true, fronts: [discordFront], env: { ...process.env, ...env } });
  await discord.waitFor(() => (discord.commands(guildId).length ? true : undefined), 'the controller to register its commands', 15_000);
  await waitFor(() => daemonPid(home.pm2Home), { what: 'the PM2 daemon of the temp home', timeoutMs: 15_000 });
});

after(async () => {
  for (const holder of portHolders) if (holder.pid) await killPid(holder.pid, 'SIGKILL');
  await controller?.stop();
  await home?.cleanup();
  await discord?.close();
  await paper?.close();
  await new Promise<void>((resolve) => (hcServer ? hcServer.close(() => resolve()) : resolve()));
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The real CLI, as a user in `cwd` (default `work`, with its .env) runs it; `input` is piped to it. */
function cli(args: string[], env: Record<string, string> = baseEnv, input?: string, cwd = work): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { PATH: process.env.PATH!, HOME: home.root, ...env }, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    child.stdin?.end(input);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c) => (stdout += c));
    child.stderr!.on('data', (c) => (stderr += c));
    child.on('exit', (code) => {
      outputs.push(stdout, stderr);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Doctor in this process, on the green set-up with `change` applied (undefined removes a variable). */
async function doctor(change: Record<string, string | undefined> = {}): Promise<DoctorReport> {
  const env: Record<string, string | undefined> = { PATH: process.env.PATH, HOME: home.root, ...baseEnv, ...secretsInDotenv, ...change };
  for (const [name, value] of Object.entries(env)) if (value === undefined) delete env[name];
  const report = await runDoctor({ env, dotenvPath: false });
  outputs.push(doctorText(report), JSON.stringify(report));
  if (process.env.TW_TEST_LOG) console.log(doctorText(report));
  return report;
}

const find = (report: DoctorReport, name: string, status?: DoctorCheck['status']): DoctorCheck[] =>
  report.checks.filter((check) => check.name === name && (status === undefined || check.status === status));
const show = (report: DoctorReport) => doctorText(report);

function assertNoSecret(text: string): void {
  for (const secret of [discord.token, KEY, SECRET, WRONG_SECRET, WRONG_TOKEN, HC_CHECK, hcUrl]) {
    assert.ok(!text.includes(secret), `a secret (${secret.slice(0, 6)}…) reached doctor's output:\n${text}`);
  }
}

test('all green: the configured set-up passes every check, exit 0, under 5 s, in text and --json, no secret printed', async () => {
  const text = await cli(['doctor']);
  if (process.env.TW_TEST_LOG) console.log(text.stdout);
  assert.equal(text.code, 0, `doctor exits 0 when nothing is ✗:\n${text.stdout}${text.stderr}`);
  assert.doesNotMatch(text.stdout, /[⚠✗]/, `nothing to fix or look at:\n${text.stdout}`);
  assert.match(text.stdout, /^\d+ ✓ — ready \(\d\.\d s\)$/m, `the summary says ready:\n${text.stdout}`);
  for (const line of ['token: accepted', 'server: the bot is in "Trading desk"', '#alerts: the bot can View Channel, Send Messages, Embed Links, Attach Files', 'alert role: @on-call', 'keys: accepted by http://127.0.0.1:', 'account: ACTIVE', 'trade stream:', 'PM2 daemon: answers', 'interpreter: node', 'controller: PID', 'is held by our controller', 'HEALTHCHECK_URL: http://127.0.0.1:']) {
    assert.ok(text.stdout.includes(line), `the green run shows "${line}":\n${text.stdout}`);
  }
  assert.match(text.stdout, /\.env: .*\(0600\)/, 'the .env it read is owner-only');
  assert.match(text.stdout, /slash commands: \d+ registered in "Trading desk"/, 'the controller registered the commands');

  const json = await cli(['doctor', '--json']);
  assert.equal(json.code, 0, `--json exits the same:\n${json.stdout}${json.stderr}`);
  const report = JSON.parse(json.stdout) as DoctorReport;
  assert.equal(report.ok, true, 'report.ok');
  assert.equal(report.counts.fail + report.counts.warn, 0, `no ⚠ or ✗ in --json: ${json.stdout}`);
  assert.ok(report.checks.length >= 15, `every check is listed (${report.checks.length})`);
  assert.ok(report.tookMs < 5000, `the whole check took ${report.tookMs} ms (target: under 5 s when everything answers)`);
  for (const output of [text.stdout, text.stderr, json.stdout, json.stderr]) assertNoSecret(output);
});

test('a channel whose overwrites deny Send Messages to @everyone: ✗ naming the permission and where to grant it; Discord (the stand-in) answers a post there 403 50013', async () => {
  const report = await doctor({ DISCORD_ALERT_CHANNEL_ID: lockedChannelId });
  const lines = find(report, 'alert channel', 'fail');
  assert.equal(lines.length, 1, `one permission missing, one ✗ line:\n${show(report)}`);
  assert.equal(lines[0]!.detail, '#locked: the bot lacks Send Messages (Embed Links and Attach Files need it too)', show(report));
  assert.match(lines[0]!.fix ?? '', /#locked denies it to @everyone: #locked → Edit Channel → Permissions → add the bot's role @tradewarden .* allow Send Messages/, show(report));
  assert.equal(report.ok, false, 'a ✗ makes the run fail');

  // What the controller would meet at its first alert, through discord.js's own REST client.
  const rest = new REST({ api: discord.apiUrl, retries: 0 }).setToken(discord.token);
  const refused = await rest.post(Routes.channelMessages(lockedChannelId), { body: { content: 'test alert' } }).then(
    () => undefined,
    (error: unknown) => error,
  );
  assert.ok(refused instanceof DiscordAPIError, `the post is refused with a DiscordAPIError (got ${String(refused)})`);
  assert.equal(refused.status, 403, 'HTTP 403');
  assert.equal(refused.code, 50013, 'Missing Permissions');
  // Where the bot's own overwrite allows it back, doctor and Discord agree it may post.
  const excepted = await doctor({ DISCORD_ALERT_CHANNEL_ID: exceptedChannelId });
  assert.equal(find(excepted, 'alert channel', 'ok').length, 1, `the member's allow beats @everyone's deny:\n${show(excepted)}`);
  await rest.post(Routes.channelMessages(exceptedChannelId), { body: { content: 'test alert' } });
});

test("a role overwrite that denies Attach Files to one of the bot's roles: ✗ names the role and the way around it", async () => {
  const report = await doctor({ DISCORD_ALERT_CHANNEL_ID: noFilesChannelId });
  const lines = find(report, 'alert channel', 'fail');
  assert.deepEqual(lines.map((l) => l.detail), ['#no-files: the bot lacks Attach Files'], show(report));
  assert.match(lines[0]!.fix ?? '', /#no-files denies it to @operator, a role the bot has/, show(report));
});

test('a token Discord rejects: one ✗ saying so and where to get a new one; the token is never printed', async () => {
  const report = await doctor({ DISCORD_TOKEN: WRONG_TOKEN });
  const discordLines = report.checks.filter((check) => check.area === 'Discord');
  assert.deepEqual(discordLines.map((l) => [l.name, l.status]), [['token', 'fail']], `the other Discord checks need the token:\n${show(report)}`);
  assert.match(discordLines[0]!.detail, /Discord rejected DISCORD_TOKEN \(401/, show(report));
  assert.match(discordLines[0]!.fix ?? '', /Bot → Reset Token/, show(report));
  assertNoSecret(show(report));
});

test('a server the bot is not in: ✗ with the invite link for that server, with the scopes and permissions it needs', async () => {
  const elsewhere = '1299999999999999999';
  const report = await doctor({ DISCORD_GUILD_ID: elsewhere });
  const [line] = find(report, 'server', 'fail');
  assert.ok(line, `a ✗ server line:\n${show(report)}`);
  assert.match(line.detail, new RegExp(`the bot is not in DISCORD_GUILD_ID ${elsewhere}`), show(report));
  assert.ok(
    line.fix?.includes(`https://discord.com/oauth2/authorize?client_id=${applicationId}&scope=bot%20applications.commands&permissions=52224&guild_id=${elsewhere}`),
    `the fix is the invite link: ${line.fix}`,
  );
});

test('broker keys the paper broker rejects: ✗ for the keys and for the trade stream, naming the variables; no key printed', async () => {
  const report = await doctor({ APCA_API_SECRET_KEY: WRONG_SECRET });
  const [keys] = find(report, 'keys', 'fail');
  assert.ok(keys, `a ✗ keys line:\n${show(report)}`);
  assert.match(keys.detail, /broker credentials rejected \(401\) — check APCA_API_KEY_ID and APCA_API_SECRET_KEY/, show(report));
  assert.match(keys.fix ?? '', /APCA_API_BASE_URL \(now http:\/\/127\.0\.0\.1:\d+\)/, show(report));
  const [stream] = find(report, 'trade stream', 'fail');
  assert.ok(stream && /refused the keys/.test(stream.detail), `the stream refuses them too:\n${show(report)}`);
  assertNoSecret(show(report));
  assertNoSecret(JSON.stringify(report));
});

test("a broker whose clock is 5 s ahead of this machine's: ⚠ saying which way, with the fix; the rest of the broker is fine", async () => {
  const ahead = await startPaperBroker({ keyId: KEY, secretKey: SECRET, clock: { now: () => Date.now() + 5000 } });
  try {
    const report = await doctor({ APCA_API_BASE_URL: ahead.url });
    const [line] = find(report, 'clock', 'warn');
    assert.ok(line, `a ⚠ clock line:\n${show(report)}`);
    assert.match(line.detail, /this machine's clock is [45]\.\d s behind the broker's/, show(report));
    assert.match(line.fix ?? '', /time synchronisation/, show(report));
    assert.equal(report.checks.filter((c) => c.area === 'Broker' && c.status === 'fail').length, 0, show(report));
  } finally {
    await ahead.close();
  }
});

test("a trader whose interpreter is not on PATH: ✗ naming it, where it came from and the fix", async () => {
  const script = path.join(home.root, 'bot', 'main_bot.py');
  fs.writeFileSync(script, 'print("hello")\n');
  const report = await doctor({ TRADING_SCRIPT: script, PATH: path.join(home.root, 'empty-bin') });
  const [line] = find(report, 'interpreter', 'fail');
  assert.ok(line, `a ✗ interpreter line:\n${show(report)}`);
  assert.equal(line.detail, "python3 (from the script's extension) is not on PATH", show(report));
  assert.match(line.fix ?? '', /set TRADING_INTERPRETER to the full path/, show(report));
});

test('a port another program holds: ✗ naming the variable, the PID and its command, exit 1 from the CLI', async () => {
  const port = await freeLoopbackPort();
  const holder = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${port}, '127.0.0.1', () => console.log('listening'))`], { stdio: ['ignore', 'pipe', 'ignore'] });
  portHolders.push(holder);
  await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()));
  // Another DATA_DIR: no controller of its own, so nothing of ours may hold the port.
  const run = await cli(['doctor'], { ...baseEnv, METRICS_ADDR: `127.0.0.1:${port}`, DATA_DIR: path.join(home.root, 'other-data') });
  assert.equal(run.code, 1, `a ✗ exits 1:\n${run.stdout}`);
  assert.match(run.stdout, new RegExp(`✗ METRICS_ADDR: 127\\.0\\.0\\.1:${port} is taken by PID ${holder.pid} \\(.*node`), run.stdout);
  assert.match(run.stdout, /→ choose a free port in METRICS_ADDR/, run.stdout);
  assert.match(run.stdout, /⚠ controller: none serves DATA_DIR/, `no controller yet is a ⚠ only:\n${run.stdout}`);
  assertNoSecret(run.stdout);
});

test('what the first start does by itself is ⚠ at most: no controller, no PM2 daemon, DATA_DIR not made yet', async () => {
  const fresh = path.join(home.root, 'fresh');
  const report = await doctor({ DATA_DIR: path.join(fresh, 'data'), PM2_HOME: path.join(fresh, 'pm2'), DISCORD_GUILD_ID: guildId, GATEWAY_ADDR: undefined, METRICS_ADDR: undefined });
  assert.equal(find(report, 'controller', 'warn').length, 1, show(report));
  assert.equal(find(report, 'PM2 daemon', 'warn').length, 1, show(report));
  assert.equal(find(report, 'DATA_DIR', 'ok').length, 1, show(report));
  assert.equal(report.ok, true, `nothing there is ✗:\n${show(report)}`);
});

test('init with piped answers: a rejected token and a server the bot is not in are asked again, the broker keys checked; .env written 0600, then doctor', async () => {
  const dir = path.join(home.root, 'init-piped');
  fs.mkdirSync(dir);
  const answers = [
    applicationId,
    WRONG_TOKEN, // Discord refuses it: asked again
    discord.token,
    '1299999999999999999', // the bot is not in it: the invite link, asked again
    guildId,
    alertChannelId,
    alertRoleId,
    operatorRoleId,
    '', // the broker URL: the default (APCA_API_BASE_URL of the environment, the paper broker)
    KEY,
    WRONG_SECRET, // refused: the key id and the secret again
    KEY,
    SECRET,
    trader,
  ];
  // Only what a shell would have, plus where the stand-ins and this test's PM2 and data live.
  const env = { DISCORD_API_URL: discord.apiUrl, APCA_API_BASE_URL: paper.url, PM2_HOME: home.pm2Home, DATA_DIR: home.dataDir };
  const run = await cli(['init'], env, answers.join('\n') + '\n', dir);
  if (process.env.TW_TEST_LOG) console.log(run.stderr);
  assert.equal(run.code, 0, `init wrote .env and doctor found nothing ✗:\n${run.stderr}\n${run.stdout}`);
  assert.match(run.stderr, /✗ Discord rejected this token/, run.stderr);
  assert.match(run.stderr, /✓ token accepted: bot tradewarden/, run.stderr);
  assert.match(run.stderr, new RegExp(`✗ the bot is not in server 1299999999999999999 .*invite it with https://discord\\.com/oauth2/authorize\\?client_id=${applicationId}`), run.stderr);
  assert.match(run.stderr, /✓ the bot is in "Trading desk"/, run.stderr);
  assert.match(run.stderr, /✗ broker credentials rejected \(401\)/, run.stderr);
  assert.match(run.stderr, /✓ keys accepted: PA/, run.stderr);
  const file = path.join(dir, '.env');
  assert.equal(fs.statSync(file).mode & 0o777, 0o600, '.env is owner-only');
  const written = fs.readFileSync(file, 'utf8');
  for (const line of [`DISCORD_TOKEN=${discord.token}`, `DISCORD_GUILD_ID=${guildId}`, `APCA_API_SECRET_KEY=${SECRET}`, `APCA_API_BASE_URL=${paper.url}`, `TRADING_SCRIPT=${trader}`]) {
    assert.ok(written.includes(line + '\n'), `.env has ${line.split('=')[0]}`);
  }
  assert.match(run.stdout, /token: accepted/, `doctor ran on the new .env:\n${run.stdout}`);
  assert.match(run.stdout, /\.env: .*\(0600\)/, run.stdout);
  assertNoSecret(run.stdout);
  assertNoSecret(run.stderr);
});

test('init never replaces an existing .env without a yes, and with input that ends early writes nothing and says how to run it', async () => {
  const dir = path.join(home.root, 'init-kept');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, '.env'), 'LOG_LEVEL=warn\n', { mode: 0o600 });
  const kept = await cli(['init'], {}, 'n\n', dir);
  assert.equal(kept.code, 1, kept.stderr);
  assert.match(kept.stderr, /exists\. Replace it\? \[y\/N\][\s\S]*Kept .*\.env; nothing written/, kept.stderr);
  assert.equal(fs.readFileSync(path.join(dir, '.env'), 'utf8'), 'LOG_LEVEL=warn\n', 'the old .env is untouched');

  const early = await cli(['init'], { DISCORD_API_URL: discord.apiUrl }, `y\n${applicationId}\n`, dir);
  assert.equal(early.code, 2, early.stderr);
  assert.match(early.stderr, /the input ended at DISCORD_TOKEN; nothing was written\. Without a terminal, pipe one answer per line/, early.stderr);
  assert.equal(fs.readFileSync(path.join(dir, '.env'), 'utf8'), 'LOG_LEVEL=warn\n', 'still untouched');
});

test('effective permissions follow Discord: Administrator, role allows over role denies, the member last, Send Messages carrying Embed and Attach', () => {
  const roles = [
    { id: 'g', name: '@everyone', permissions: PERMISSION.ViewChannel | PERMISSION.SendMessages | PERMISSION.EmbedLinks | PERMISSION.AttachFiles },
    { id: 'a', name: 'a', permissions: 0n },
    { id: 'b', name: 'b', permissions: 0n },
    { id: 'admin', name: 'admin', permissions: PERMISSION.Administrator },
  ];
  const base = { guildId: 'g', memberId: 'bot', memberRoleIds: ['a', 'b'], roles };
  const granted = (input: Parameters<typeof channelVerdicts>[0]) => Object.fromEntries(channelVerdicts(input).map((v) => [v.name, v.granted && !v.impliedAway]));
  const send = PERMISSION.SendMessages;
  assert.equal(granted({ ...base, overwrites: [{ id: 'a', type: 0, allow: 0n, deny: send }, { id: 'b', type: 0, allow: send, deny: 0n }] })['Send Messages'], true, "one role's allow beats another's deny");
  assert.equal(
    granted({ ...base, overwrites: [{ id: 'b', type: 0, allow: send, deny: 0n }, { id: 'bot', type: 1, allow: 0n, deny: send }] })['Send Messages'],
    false,
    "the member's own deny beats its roles' allows",
  );
  assert.deepEqual(granted({ ...base, memberRoleIds: ['admin'], overwrites: [{ id: 'g', type: 0, allow: 0n, deny: send }] })['Send Messages'], true, 'Administrator ignores overwrites');
  const noSend = channelVerdicts({ ...base, overwrites: [{ id: 'g', type: 0, allow: 0n, deny: send }] });
  assert.deepEqual(noSend.map((v) => [v.name, v.granted, v.impliedAway]), [
    ['View Channel', true, undefined],
    ['Send Messages', false, undefined],
    ['Embed Links', true, 'Send Messages'],
    ['Attach Files', true, 'Send Messages'],
  ], 'without Send Messages, Embed Links and Attach Files are void');
  assert.match(whereToGrant(noSend[1]!, { channel: '#alerts', botRole: '@tradewarden', bot: 'tradewarden' }), /#alerts denies it to @everyone/, 'the fix names the layer that denied it');
});

test('no output of this file holds a secret (token, broker keys, the health check URL)', () => {
  assert.ok(outputs.length >= 10, `outputs were collected (${outputs.length})`);
  for (const output of outputs) assertNoSecret(output);
});
