// The configuration contract of DESIGN.md: environment (after .env) → one typed, frozen Config.
// Every problem names the variable, what it got (never a secret's value) and what it expects,
// and all problems are reported at once so an operator fixes the file in one pass.
import fs from 'node:fs';
import path from 'node:path';
import dotenv from 'dotenv';
import type { LogLevel } from './log.ts';
// Where .env is, and every relative path is taken from (ecosystem.config.js follows the same rule).
import { CONFIG_FOLDER_VARIABLE, configFolder, describeConfigFolder } from './config-folder.ts';
import { cronProblem, machineTimeZone, timeZoneProblem } from './watch/cron-calendar.ts';
import { installedExchanges } from './broker/ccxt-exchanges.ts';
import { closestNames } from './render/suggest.ts';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;

export type RunawayAction = 'alert' | 'stop' | 'flatten';
export type GateMode = 'enforce' | 'observe';

/** The order gate (GATEWAY_ADDR): where it listens, and whether it refuses or only alerts. */
export interface GatewayConfig {
  readonly host: string;
  readonly port: number;
  readonly mode: GateMode;
  /** The pre-trade limits (gateway/pre-trade.ts), each absent when unset: MAX_ORDER_NOTIONAL, … */
  readonly maxOrderNotional?: number;
  readonly maxPositionNotional?: number;
  /** ALLOWED_SYMBOLS, upper case as given (BTC/USD and BTCUSD are compared as one) */
  readonly allowedSymbols?: readonly string[];
  readonly maxOpenOrders?: number;
}
export type DuplicateAction = 'alert' | 'stop';

/** BROKER=ccxt: the exchange, reached through ccxt (src/broker/ccxt.ts) instead of Alpaca. */
export interface CcxtConfig {
  /** CCXT_EXCHANGE: ccxt's id, e.g. kraken */
  readonly exchange: string;
  readonly apiKey: string;
  readonly secret: string;
  /** CCXT_PASSWORD: the passphrase some exchanges ask for beside the key (OKX, KuCoin, …) */
  readonly password?: string;
  /** CCXT_OPTIONS: merged into the exchange's constructor options (urls, options, …) */
  readonly options: Readonly<Record<string, unknown>>;
  /** CCXT_SANDBOX=on: the exchange's test network, where ccxt knows one */
  readonly sandbox: boolean;
  /** CCXT_QUOTE: the currency equity and P/L are counted in */
  readonly quote: string;
  /** CCXT_SYMBOLS: the markets whose trades are asked for one by one where the exchange needs a symbol; absent = held and traded ones */
  readonly symbols?: readonly string[];
}

/** A loss limit: an amount of money, or a percent of a reference. */
export type LossLimit = { amount: number } | { percent: number };

function lossPart(maxDailyLoss: LossLimit | undefined, maxDrawdown: LossLimit | undefined): Pick<Config, 'maxDailyLoss' | 'maxDrawdown'> {
  return {
    ...(maxDailyLoss ? { maxDailyLoss } : {}),
    ...(maxDrawdown && 'percent' in maxDrawdown ? { maxDrawdown: { percent: maxDrawdown.percent } } : {}),
  };
}

export interface Config {
  readonly discord: {
    readonly token?: string;
    readonly clientId?: string;
    readonly guildId?: string;
    readonly alertChannelId?: string;
    readonly alertRoleId?: string;
    readonly operatorRoleIds: readonly string[];
    readonly operatorUserIds: readonly string[];
    readonly apiUrl?: string;
    readonly statusMessage: boolean;
  };
  readonly broker: {
    readonly keyId?: string;
    readonly secretKey?: string;
    readonly baseUrl: string;
    /** APCA_STREAM_URL; unset = derived from baseUrl (wss://host/stream), see broker/stream.ts */
    readonly streamUrl?: string;
    /** APCA_API_DATA_URL (the name Alpaca's SDKs read): market data, for the gate's latest prices */
    readonly dataUrl: string;
  };
  /** BROKER=ccxt: the exchange in place of Alpaca (config.broker then goes unused); absent = Alpaca */
  readonly ccxt?: CcxtConfig;
  readonly trading: {
    readonly processName: string;
  };
  /** LOG_LEVEL when set; each process has its own default (controller info, CLI warn) */
  readonly logLevel?: LogLevel;
  readonly maxTradesPerHour: number;
  readonly onRunaway: RunawayAction;
  /** BROKER_LOCK=on: every breaker trip also suspends trading at the broker (the account's own switch) */
  readonly brokerLock: 'off' | 'on';
  /** MAX_DAILY_LOSS: money, or a percent of the broker's day reference (last_equity); absent = off */
  readonly maxDailyLoss?: LossLimit;
  /** MAX_DRAWDOWN: a percent below the highest equity since the trader's last start or resume; absent = off */
  readonly maxDrawdown?: { percent: number };
  /** ON_LOSS: what crossing a loss limit does, as ON_RUNAWAY does for the trade rate */
  readonly onLoss: 'alert' | 'stop' | 'flatten';
  /** 'stop': a duplicate is ended on sight, the managed trader kept */
  readonly onDuplicate: DuplicateAction;
  /** 'alert' on fills while no copy of the trader runs on this host */
  readonly foreignTrading: 'alert' | 'off';
  /** UNATTENDED_SECONDS: positions held this long while no copy runs raise positions_unattended; absent = off */
  readonly unattendedSeconds?: number;
  readonly tradePollSeconds: number;
  readonly duplicateScanSeconds: number;
  /** The digest: DIGEST_CRON (absent = on demand only), DIGEST_TZ, DIGEST_CHANNEL_ID (absent = the alert channel) */
  readonly digest: { readonly cron?: string; readonly timeZone: string; readonly channelId?: string };
  /** FILL_FEED=on: every fill as a line in FILL_FEED_CHANNEL_ID (absent = the alert channel); absent = off */
  readonly fillFeed?: { readonly channelId?: string };
  /** absent: no gate (GATEWAY_ADDR unset), the trader talks to the broker directly */
  readonly gateway?: GatewayConfig;
  readonly dataDir: string;
  readonly pm2Home: string;
  /** Dead-man's switch (HEALTHCHECK_URL): pinged while healthy, `<url>/fail` while not. A secret. */
  readonly healthcheck?: {
    readonly url: string;
    readonly everySeconds: number;
  };
  /** METRICS_ADDR: where /metrics and /healthz are served (loopback unless a host is given). */
  readonly metrics?: {
    readonly host: string;
    readonly port: number;
  };
  /** Values that must never appear in a log line, a reply or an error. */
  readonly secrets: readonly string[];
}

// HEALTHCHECK_URL is a capability: whoever has it can ping (or silence) the dead-man's switch.
export const SECRET_VARIABLES = ['DISCORD_TOKEN', 'APCA_API_KEY_ID', 'APCA_API_SECRET_KEY', 'HEALTHCHECK_URL', 'CCXT_API_KEY', 'CCXT_SECRET', 'CCXT_PASSWORD'] as const;
export const ALPACA_PAPER_URL = 'https://paper-api.alpaca.markets';
export const ALPACA_DATA_URL = 'https://data.alpaca.markets';

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}\nSee .env.example for every variable.`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

export interface ParseOptions {
  /**
   * With a token, the controller needs the guild and the alert channel (default true). Command
   * deployment needs neither (`--global`), so it turns this off.
   */
  discordIdsRequired?: boolean;
}

/** Reads the configuration folder's `.env` (without overriding the real environment) and validates. */
export function loadConfig(env: Env = process.env, options: ParseOptions & { dotenvPath?: string | false } = {}): Config {
  if (options.dotenvPath !== false) {
    dotenv.config({ path: options.dotenvPath ?? path.join(configFolder(env), '.env'), quiet: true, processEnv: env as Record<string, string> });
  }
  return parseConfig(env, options);
}

export function parseConfig(env: Env, options: ParseOptions = {}): Config {
  const problems: string[] = [];
  const text = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value ? value : undefined;
  };
  const shown = (name: string, value: string) =>
    (SECRET_VARIABLES as readonly string[]).includes(name) ? '(hidden)' : JSON.stringify(value);

  const snowflake = (name: string): string | undefined => {
    const value = text(name);
    if (value !== undefined && !/^\d{15,21}$/.test(value)) {
      problems.push(`${name} is ${shown(name, value)}: expected a Discord id (15–21 digits; copy it with Developer Mode on)`);
      return undefined;
    }
    return value;
  };
  const snowflakeList = (name: string): string[] => {
    const value = text(name);
    if (value === undefined) return [];
    const ids = value.split(',').map((s) => s.trim()).filter(Boolean);
    const bad = ids.filter((id) => !/^\d{15,21}$/.test(id));
    if (bad.length) problems.push(`${name} has ${bad.map((b) => JSON.stringify(b)).join(', ')}: expected a comma list of Discord ids`);
    return ids.filter((id) => /^\d{15,21}$/.test(id));
  };
  const url = (name: string, fallback?: string, example?: string): string | undefined => {
    const value = text(name);
    if (value === undefined) return fallback;
    try {
      const parsed = new URL(value);
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('protocol');
      return value.replace(/\/+$/, '');
    } catch {
      problems.push(`${name} is ${shown(name, value)}: expected an http(s) URL${example ? `, e.g. ${example}` : ''}`);
      return fallback;
    }
  };
  const wsUrl = (name: string): string | undefined => {
    const value = text(name);
    if (value === undefined) return undefined;
    try {
      const parsed = new URL(value);
      if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') throw new Error('protocol');
      return value;
    } catch {
      problems.push(`${name} is ${JSON.stringify(value)}: expected a ws:// or wss:// URL (e.g. wss://paper-api.alpaca.markets/stream), or leave it unset to derive it from APCA_API_BASE_URL`);
      return undefined;
    }
  };
  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const value = text(name);
    if (value === undefined) return fallback;
    // Digits only: Number() would also take "1e3", "0x10", "0b11" and " 12 ".
    const n = /^\d{1,15}$/.test(value) ? Number(value) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${name} is ${JSON.stringify(value)}: expected a whole number from ${min} to ${max}`);
      return fallback;
    }
    return n;
  };
  /** `250`, `1000.50` (money) or `3%` (a percent, over 0 and under 100); `percentOnly` refuses money. */
  const moneyOrPercent = (name: string, percentOnly = false): LossLimit | undefined => {
    const value = text(name);
    if (value === undefined) return undefined;
    const match = /^(\d{1,12}(?:\.\d{1,4})?)(%?)$/.exec(value);
    const amount = match ? Number(match[1]) : NaN;
    const percent = match?.[2] === '%';
    if (!match || amount <= 0 || (percent && amount >= 100) || (percentOnly && !percent)) {
      problems.push(
        `${name} is ${JSON.stringify(value)}: expected ${percentOnly ? 'a percent like 10%' : 'an amount of money like 250 (the account\'s currency) or a percent like 3%'}` +
          ' (a positive number, no sign, no spaces, no exponent; a percent under 100)',
      );
      return undefined;
    }
    return percent ? { percent: amount } : { amount };
  };
  const oneOf = <T extends string>(name: string, allowed: readonly T[], fallback: T): T => {
    const value = text(name)?.toLowerCase();
    if (value === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(value)) {
      problems.push(`${name} is ${JSON.stringify(value)}: expected one of ${allowed.join(', ')}`);
      return fallback;
    }
    return value as T;
  };
  const processName = (name: string, fallback: string): string => {
    const value = text(name) ?? fallback;
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(value)) {
      problems.push(`${name} is ${JSON.stringify(value)}: expected a PM2 name (letters, digits, . _ -)`);
      return fallback;
    }
    return value;
  };

  const gatewayAddress = (name: string): { host: string; port: number } | undefined => {
    const value = text(name);
    if (value === undefined) return undefined;
    const parsed = parseHostPort(value);
    if (!parsed) {
      problems.push(`${name} is ${JSON.stringify(value)}: expected host:port (e.g. 127.0.0.1:8790), or a port alone for loopback`);
      return undefined;
    }
    return parsed;
  };
  /** The gate's pre-trade limits; set without GATEWAY_ADDR they would guard nothing, so that is refused. */
  const gateLimits = (): Omit<GatewayConfig, 'host' | 'port' | 'mode'> => {
    const amount = (name: string): number | undefined => {
      const value = text(name);
      if (value === undefined) return undefined;
      // Plain digits: Number() would also take "1e3", "-5" and "0x10".
      const n = /^\d{1,12}(\.\d{1,4})?$/.test(value) ? Number(value) : NaN;
      if (!(n > 0)) {
        problems.push(`${name} is ${JSON.stringify(value)}: expected an amount of money like 250 or 1000.50 (the account's currency: more than 0, no sign, unit, spaces or exponent), or leave it unset for no limit`);
        return undefined;
      }
      return n;
    };
    const symbols = (name: string): string[] | undefined => {
      const value = text(name);
      if (value === undefined) return undefined;
      const list = value.split(',').map((s) => s.trim().toUpperCase()).filter(Boolean);
      const bad = list.filter((s) => !/^[A-Z0-9.-]{1,12}(\/[A-Z0-9]{2,6})?$/.test(s));
      if (bad.length || !list.length) {
        problems.push(`${name} ${bad.length ? `has ${bad.map((b) => JSON.stringify(b)).join(', ')}` : `is ${JSON.stringify(value)}`}: expected a comma list of symbols as the broker names them (e.g. BTC/USD,ETH/USD,AAPL; BTC/USD and BTCUSD are the same symbol)`);
        return undefined;
      }
      return list;
    };
    const limits = {
      maxOrderNotional: amount('MAX_ORDER_NOTIONAL'),
      maxPositionNotional: amount('MAX_POSITION_NOTIONAL'),
      allowedSymbols: symbols('ALLOWED_SYMBOLS'),
      maxOpenOrders: text('MAX_OPEN_ORDERS') === undefined ? undefined : integer('MAX_OPEN_ORDERS', 0, 1, 10_000),
    };
    const set = Object.entries({ MAX_ORDER_NOTIONAL: limits.maxOrderNotional, MAX_POSITION_NOTIONAL: limits.maxPositionNotional, ALLOWED_SYMBOLS: limits.allowedSymbols, MAX_OPEN_ORDERS: limits.maxOpenOrders })
      .filter(([, v]) => v !== undefined)
      .map(([name]) => name);
    // Refused rather than warned: a limit the operator counts on and nothing enforces is worse than no start.
    if (set.length && text('GATEWAY_ADDR') === undefined) {
      const [names, are, them] = [set.join(', '), set.length > 1 ? 'are' : 'is', set.length > 1 ? 'them' : 'it'];
      problems.push(
        text('BROKER')?.toLowerCase() === 'ccxt'
          ? `${names} ${are} set with BROKER=ccxt, and nothing would enforce ${them}: the pre-trade limits are checked by the order gate, which is Alpaca's alone. Remove ${names} from .env (or the environment)`
          : `${names} ${are} set but GATEWAY_ADDR is not, so nothing would enforce ${them}: the pre-trade limits are checked by the order gate, which runs only with GATEWAY_ADDR. ` +
              `Either set GATEWAY_ADDR=127.0.0.1:8790 — ecosystem.config.js then gives the trader APCA_API_BASE_URL=http://127.0.0.1:8790; a bot that does not read that variable must be given the URL (README, "The order gate") — ` +
              `or remove ${names} from .env (or the environment)`,
      );
    }
    return Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined));
  };
  const listenAddress = (name: string): { host: string; port: number } | undefined => {
    const value = text(name);
    if (value === undefined) return undefined;
    // No host = loopback (metrics are not for the world); port 0 = any free port.
    const parsed = parseHostPort(value, { minPort: 0 });
    if (!parsed) {
      problems.push(`${name} is ${JSON.stringify(value)}: expected host:port or :port (e.g. 127.0.0.1:9464; port 0 = any free port)`);
      return undefined;
    }
    return parsed;
  };

  const token = text('DISCORD_TOKEN');
  const keyId = text('APCA_API_KEY_ID');
  const secretKey = text('APCA_API_SECRET_KEY');
  if (Boolean(keyId) !== Boolean(secretKey)) {
    problems.push(`${keyId ? 'APCA_API_SECRET_KEY' : 'APCA_API_KEY_ID'} is missing: broker credentials come as a pair (APCA_API_KEY_ID and APCA_API_SECRET_KEY)`);
  }

  const discord = {
    token,
    clientId: snowflake('DISCORD_CLIENT_ID'),
    guildId: snowflake('DISCORD_GUILD_ID'),
    alertChannelId: snowflake('DISCORD_ALERT_CHANNEL_ID'),
    alertRoleId: snowflake('DISCORD_ALERT_ROLE_ID'),
    operatorRoleIds: snowflakeList('DISCORD_OPERATOR_ROLE_IDS'),
    operatorUserIds: snowflakeList('DISCORD_OPERATOR_USER_IDS'),
    apiUrl: url('DISCORD_API_URL'),
    statusMessage: oneOf('STATUS_MESSAGE', ['on', 'off'] as const, 'off') === 'on',
  };
  if (token) {
    const required = options.discordIdsRequired === false ? (['DISCORD_CLIENT_ID'] as const) : (['DISCORD_CLIENT_ID', 'DISCORD_GUILD_ID', 'DISCORD_ALERT_CHANNEL_ID'] as const);
    for (const name of required) {
      if (!text(name)) problems.push(`${name} is missing: it is required when DISCORD_TOKEN is set`);
    }
  }

  // The managed process's settings are read by ecosystem.config.js; they are checked here too so a
  // wrong value stops the controller at start instead of failing every scan and every start.
  const folder = configFolder(env);
  if (text(CONFIG_FOLDER_VARIABLE) !== undefined && !isDirectory(folder)) {
    problems.push(`${CONFIG_FOLDER_VARIABLE} is ${JSON.stringify(text(CONFIG_FOLDER_VARIABLE))}: no such folder (looked for ${folder}); name the folder that holds .env, or leave it unset to use the working directory`);
  }
  const tradingCwdSetting = text('TRADING_CWD');
  const tradingBase = tradingCwdSetting ? path.resolve(folder, tradingCwdSetting) : folder;
  if (tradingCwdSetting && !isDirectory(tradingBase)) {
    problems.push(`TRADING_CWD is ${JSON.stringify(tradingCwdSetting)}: no such folder (looked for ${tradingBase}); give the trader's working folder, absolute or relative to ${describeConfigFolder(env)}`);
  }
  const tradingScript = text('TRADING_SCRIPT');
  if (tradingScript !== undefined) {
    const resolved = path.resolve(tradingBase, tradingScript);
    if (!isFile(resolved)) {
      problems.push(`TRADING_SCRIPT is ${JSON.stringify(tradingScript)}: no such file (looked for ${resolved}); give the trader's script, absolute or relative to ${tradingCwdSetting ? `TRADING_CWD (${tradingBase})` : describeConfigFolder(env)}`);
    }
  }
  const interpreter = text('TRADING_INTERPRETER');
  if (interpreter !== undefined && /\s/.test(interpreter)) {
    problems.push(`TRADING_INTERPRETER is ${JSON.stringify(interpreter)}: expected one program (python3, node, none, or a path), without options; the script's arguments go in TRADING_ARGS`);
  }
  const args = text('TRADING_ARGS');
  if (args !== undefined && !quotesBalanced(args)) {
    problems.push(`TRADING_ARGS is ${JSON.stringify(args)}: a quote is not closed; words are space-separated and "double" or 'single' quotes group them`);
  }
  integer('TRADING_KILL_TIMEOUT_MS', 10_000, 100, 600_000);
  const hcUrl = url('HEALTHCHECK_URL', undefined, 'https://hc-ping.com/<uuid>');
  const hcSeconds = integer('HEALTHCHECK_SECONDS', 60, 1, 86_400);
  const healthcheck = hcUrl ? { url: hcUrl, everySeconds: hcSeconds } : undefined;
  // The path alone (the check's uuid) is as much a capability as the whole URL.
  const hcPath = hcUrl ? new URL(hcUrl).pathname + new URL(hcUrl).search : '';
  const healthcheckSecrets = hcUrl ? [hcUrl, ...(hcPath.length >= 8 ? [hcPath] : [])] : [];
  const metrics = listenAddress('METRICS_ADDR');

  const ccxt = ccxtPart(text, oneOf('BROKER', ['alpaca', 'ccxt'] as const, 'alpaca'), problems);

  const config: Config = {
    discord,
    ...(ccxt ? { ccxt } : {}),
    broker: { keyId, secretKey, baseUrl: url('APCA_API_BASE_URL', ALPACA_PAPER_URL)!, streamUrl: wsUrl('APCA_STREAM_URL'), dataUrl: url('APCA_API_DATA_URL', ALPACA_DATA_URL, ALPACA_DATA_URL)! },
    trading: { processName: processName('TRADING_PROCESS_NAME', 'trading-bot') },
    ...(text('LOG_LEVEL') !== undefined ? { logLevel: oneOf('LOG_LEVEL', LOG_LEVELS, 'info') } : {}),
    maxTradesPerHour: integer('MAX_TRADES_PER_HOUR', 3, 1, 10_000),
    onRunaway: oneOf('ON_RUNAWAY', ['alert', 'stop', 'flatten'] as const, 'alert'),
    brokerLock: oneOf('BROKER_LOCK', ['off', 'on'] as const, 'off'),
    ...lossPart(moneyOrPercent('MAX_DAILY_LOSS'), moneyOrPercent('MAX_DRAWDOWN', true)),
    onLoss: oneOf('ON_LOSS', ['alert', 'stop', 'flatten'] as const, 'alert'),
    onDuplicate: oneOf('ON_DUPLICATE', ['alert', 'stop'] as const, 'alert'),
    foreignTrading: oneOf('FOREIGN_TRADING', ['alert', 'off'] as const, 'alert'),
    ...unattendedPart(text('UNATTENDED_SECONDS'), problems),
    tradePollSeconds: integer('TRADE_POLL_SECONDS', 10, 1, 3600),
    duplicateScanSeconds: integer('DUPLICATE_SCAN_SECONDS', 10, 1, 3600),
    ...reportsPart(text, snowflake, oneOf('FILL_FEED', ['off', 'on'] as const, 'off'), problems),
    ...gatewayPart(gatewayAddress('GATEWAY_ADDR'), oneOf('GATE_MODE', ['enforce', 'observe'] as const, 'enforce'), gateLimits()),
    dataDir: path.resolve(folder, text('DATA_DIR') ?? 'data'),
    pm2Home: path.resolve(folder, text('PM2_HOME') ?? path.join(env.HOME ?? env.USERPROFILE ?? '.', '.pm2')),
    ...(healthcheck ? { healthcheck } : {}),
    ...(metrics ? { metrics } : {}),
    secrets: [token, keyId, secretKey, ...healthcheckSecrets, ccxt?.apiKey, ccxt?.secret, ccxt?.password].filter((s): s is string => Boolean(s)),
  };
  if (problems.length) throw new ConfigError(problems);
  return deepFreeze(config);
}

const CCXT_VARIABLES = ['CCXT_EXCHANGE', 'CCXT_API_KEY', 'CCXT_SECRET', 'CCXT_PASSWORD', 'CCXT_OPTIONS', 'CCXT_SANDBOX', 'CCXT_QUOTE', 'CCXT_SYMBOLS'] as const;
// Secrets belong in their own variables, which are redacted; CCXT_OPTIONS is not a secret. (An
// account id some exchanges ask for beside the key, uid or login, is not one: it may go there.)
const CREDENTIAL_OPTIONS = ['apiKey', 'secret', 'password', 'privateKey', 'token'];

/**
 * BROKER=ccxt and its variables. What Alpaca alone offers is refused beside it, with the reason:
 * the order gate (an exchange request is signed for the exchange's host and cannot be re-sent to it
 * by a proxy) and the broker lock (exchanges have no switch that blocks an account's new orders).
 */
function ccxtPart(text: (name: string) => string | undefined, broker: 'alpaca' | 'ccxt', problems: string[]): CcxtConfig | undefined {
  if (broker === 'alpaca') {
    const set = CCXT_VARIABLES.filter((name) => text(name) !== undefined);
    if (set.length) problems.push(`${set.join(', ')} ${set.length > 1 ? 'are' : 'is'} set but BROKER is not ccxt: set BROKER=ccxt to watch an exchange through ccxt, or leave ${set.length > 1 ? 'them' : 'it'} unset for Alpaca`);
    return undefined;
  }
  if (text('GATEWAY_ADDR') !== undefined) {
    problems.push('GATEWAY_ADDR is set with BROKER=ccxt: the order gate is Alpaca\'s alone (an exchange checks each request\'s signature against its own host, so a proxy cannot pass the trader\'s orders on); unset GATEWAY_ADDR — the breaker, the alerts and flatten work without it');
  }
  if (text('BROKER_LOCK')?.toLowerCase() === 'on') {
    problems.push('BROKER_LOCK is "on" with BROKER=ccxt: exchanges have no account switch that blocks new orders (Alpaca\'s suspend_trade); set BROKER_LOCK=off — ON_RUNAWAY=stop or flatten still halts the trader');
  }
  const exchange = text('CCXT_EXCHANGE')?.toLowerCase();
  const installed = installedExchanges();
  if (!installed.installed) {
    problems.push('BROKER is "ccxt" but the ccxt package is not installed (an install with --omit=optional leaves it out): run npm install ccxt');
  }
  if (exchange === undefined) {
    problems.push('CCXT_EXCHANGE is missing: it is required with BROKER=ccxt (ccxt\'s id of the exchange, e.g. kraken, binance, coinbase, bybit)');
  } else if (installed.installed && installed.ids && !installed.ids.includes(exchange)) {
    const close = closestNames(exchange, installed.ids);
    problems.push(`CCXT_EXCHANGE is ${JSON.stringify(exchange)}: not an exchange ccxt knows${close.length ? ` — closest: ${close.join(', ')}` : ` (it knows ${installed.ids.length}, e.g. kraken, binance, coinbase, bybit)`}`);
  }
  const apiKey = text('CCXT_API_KEY');
  const secret = text('CCXT_SECRET');
  for (const [name, value] of [['CCXT_API_KEY', apiKey], ['CCXT_SECRET', secret]] as const) {
    if (value === undefined) problems.push(`${name} is missing: it is required with BROKER=ccxt (the exchange's API key and secret, with permission to read the account and trade; never to withdraw)`);
  }
  const quote = text('CCXT_QUOTE')?.toUpperCase() ?? 'USD';
  if (!/^[A-Z0-9]{2,10}$/.test(quote)) problems.push(`CCXT_QUOTE is ${JSON.stringify(text('CCXT_QUOTE'))}: expected a currency code like USD, USDT or EUR`);
  const sandbox = text('CCXT_SANDBOX')?.toLowerCase() ?? 'off';
  if (sandbox !== 'on' && sandbox !== 'off') problems.push(`CCXT_SANDBOX is ${JSON.stringify(text('CCXT_SANDBOX'))}: expected on (the exchange's test network) or off`);
  return {
    exchange: exchange ?? '',
    apiKey: apiKey ?? '',
    secret: secret ?? '',
    ...(text('CCXT_PASSWORD') ? { password: text('CCXT_PASSWORD') } : {}),
    options: ccxtOptions(text('CCXT_OPTIONS'), problems),
    sandbox: sandbox === 'on',
    quote,
    ...ccxtSymbols(text('CCXT_SYMBOLS'), problems),
  };
}

/** CCXT_OPTIONS: a JSON object; an error says where (never the text itself: it may hold an URL's token). */
function ccxtOptions(value: string | undefined, problems: string[]): Record<string, unknown> {
  if (value === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (error) {
    const at = jsonErrorPosition(value, error);
    const line = value.slice(0, at).split('\n').length;
    const column = at - value.lastIndexOf('\n', at - 1);
    const what = at >= value.length ? 'it ends too early' : `unexpected ${JSON.stringify(value[at])}`;
    problems.push(`CCXT_OPTIONS is not valid JSON: ${what} at position ${at} (line ${line}, column ${column}); expected an object such as {"urls":{"api":{"public":"http://127.0.0.1:9000","private":"http://127.0.0.1:9000"}}} (double quotes, no trailing comma)`);
    return {};
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    problems.push(`CCXT_OPTIONS is ${Array.isArray(parsed) ? 'an array' : `a ${parsed === null ? 'null' : typeof parsed}`}: expected a JSON object of ccxt's constructor options, e.g. {"options":{"defaultType":"spot"}}`);
    return {};
  }
  const credentials = Object.keys(parsed).filter((key) => CREDENTIAL_OPTIONS.includes(key));
  if (credentials.length) {
    problems.push(`CCXT_OPTIONS has ${credentials.join(', ')}: credentials go in CCXT_API_KEY, CCXT_SECRET and CCXT_PASSWORD, which are kept out of every log and reply`);
    return {};
  }
  return parsed as Record<string, unknown>;
}

/**
 * Where JSON.parse stopped. Node 20 says "at position N" for some errors only ("Unexpected token 'x',
 * "…" is not valid JSON" quotes the text instead): then the shortest prefix that fails otherwise than
 * by ending early ends at the offending character.
 */
function jsonErrorPosition(text: string, error: unknown): number {
  const positionIn = (e: unknown) => {
    const match = /at position (\d+)/.exec(e instanceof Error ? e.message : '');
    return match ? Number(match[1]) : undefined;
  };
  const stated = positionIn(error);
  if (stated !== undefined) return stated;
  for (let end = 1; end <= text.length; end++) {
    try {
      JSON.parse(text.slice(0, end));
    } catch (e) {
      const position = positionIn(e);
      if (position !== undefined ? position < end : !/end of JSON input/.test(e instanceof Error ? e.message : '')) return position ?? end - 1;
    }
  }
  return text.length;
}

/** CCXT_SYMBOLS: ccxt's unified symbols (BTC/USDT; BTC/USDT:USDT for a perpetual), upper case. */
function ccxtSymbols(value: string | undefined, problems: string[]): { symbols?: string[] } {
  if (value === undefined) return {};
  const list = value.split(',').map((s) => s.trim().toUpperCase()).filter(Boolean);
  const bad = list.filter((s) => !/^[A-Z0-9._-]{1,20}\/[A-Z0-9._-]{1,20}(:[A-Z0-9._-]{1,20})?$/.test(s));
  if (bad.length || !list.length) {
    problems.push(`CCXT_SYMBOLS ${bad.length ? `has ${bad.map((b) => JSON.stringify(b)).join(', ')}` : `is ${JSON.stringify(value)}`}: expected a comma list of ccxt symbols (BASE/QUOTE, e.g. BTC/USDT,ETH/USDT; BTC/USDT:USDT for a perpetual)`);
    return {};
  }
  return { symbols: list };
}

/** UNATTENDED_SECONDS: whole seconds (default 900), or off for an account that holds positions on purpose with no bot. */
function unattendedPart(value: string | undefined, problems: string[]): { unattendedSeconds?: number } {
  if (value === undefined) return { unattendedSeconds: 900 };
  if (value.toLowerCase() === 'off') return {};
  const n = /^\d{1,7}$/.test(value) ? Number(value) : NaN;
  if (n >= 1 && n <= 604_800) return { unattendedSeconds: n };
  problems.push(`UNATTENDED_SECONDS is ${JSON.stringify(value)}: expected a whole number of seconds from 1 to 604800 (900 = 15 minutes), or off`);
  return { unattendedSeconds: 900 };
}

/** The digest's schedule and zone (checked by node-cron and Intl), and the fill feed: each channel defaults to the alert channel. */
function reportsPart(
  text: (name: string) => string | undefined,
  snowflake: (name: string) => string | undefined,
  fillFeed: 'off' | 'on',
  problems: string[],
): Pick<Config, 'digest' | 'fillFeed'> {
  const cron = text('DIGEST_CRON');
  const zone = text('DIGEST_TZ');
  const cronWrong = cron !== undefined && cron.toLowerCase() !== 'off' ? cronProblem(cron) : undefined;
  if (cronWrong) {
    problems.push(`DIGEST_CRON is ${JSON.stringify(cron)}: ${cronWrong}; expected node-cron syntax, e.g. "0 21 * * *" (21:00 every day) or "0 0 18 * * 1-5" (seconds first: 18:00 on weekdays), or off`);
  }
  const zoneWrong = zone !== undefined ? timeZoneProblem(zone) : undefined;
  if (zoneWrong) problems.push(`DIGEST_TZ is ${JSON.stringify(zone)}: ${zoneWrong}; expected an IANA zone like Europe/Berlin or America/New_York (default: this machine's, ${machineTimeZone()})`);
  const digestChannel = snowflake('DIGEST_CHANNEL_ID');
  const feedChannel = snowflake('FILL_FEED_CHANNEL_ID');
  return {
    digest: {
      ...(cron !== undefined && cron.toLowerCase() !== 'off' && !cronWrong ? { cron } : {}),
      timeZone: zone !== undefined && !zoneWrong ? zone : machineTimeZone(),
      ...(digestChannel ? { channelId: digestChannel } : {}),
    },
    ...(fillFeed === 'on' ? { fillFeed: feedChannel ? { channelId: feedChannel } : {} } : {}),
  };
}

function gatewayPart(address: { host: string; port: number } | undefined, mode: GateMode, limits: Omit<GatewayConfig, 'host' | 'port' | 'mode'>): { gateway?: GatewayConfig } {
  return address ? { gateway: { ...address, mode, ...limits } } : {};
}

/**
 * "host:port", "[::1]:port", ":port" or "port" (the last two: loopback only). Port 1–65535; 0 is
 * refused because the trader's APCA_API_BASE_URL is written from this address before the gate listens.
 */
export function parseHostPort(value: string, options: { minPort?: number } = {}): { host: string; port: number } | undefined {
  const match = /^(?:(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)?:)?(\d{1,5})$/.exec(value.trim());
  if (!match) return undefined;
  const port = Number(match[2]);
  if (port < (options.minPort ?? 1) || port > 65_535) return undefined;
  const host = match[1] ? match[1].replace(/^\[|\]$/g, '') : '127.0.0.1';
  return { host, port };
}

/** A regular file there (false for a folder, a missing path, one we may not stat). */
export function isFile(file: string): boolean {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

export function isDirectory(dir: string): boolean {
  try {
    return fs.statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/** Every quote opened in TRADING_ARGS is closed (the same grouping as ecosystem.config.js). */
function quotesBalanced(value: string): boolean {
  let open: string | undefined;
  for (const ch of value) {
    if (open) {
      if (ch === open) open = undefined;
    } else if (ch === '"' || ch === "'") {
      open = ch;
    }
  }
  return open === undefined;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
