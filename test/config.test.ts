import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseConfig } from '../src/config.ts';

test('defaults follow the configuration contract', () => {
  const config = parseConfig({ HOME: '/home/op' });
  assert.equal(config.trading.processName, 'trading-bot');
  assert.equal(config.maxTradesPerHour, 3);
  assert.equal(config.onRunaway, 'alert');
  assert.equal(config.tradePollSeconds, 10);
  assert.equal(config.duplicateScanSeconds, 10);
  assert.equal(config.broker.baseUrl, 'https://paper-api.alpaca.markets');
  assert.equal(config.pm2Home, '/home/op/.pm2');
  assert.deepEqual(config.discord.operatorUserIds, []);
  assert.ok(Object.isFrozen(config) && Object.isFrozen(config.discord), 'Object.isFrozen(config) && Object.isFrozen(config.discord)');
});

test('every problem names the variable, what it got and what it expects — all at once', () => {
  const error = captureConfigError({
    MAX_TRADES_PER_HOUR: 'three',
    ON_RUNAWAY: 'panic',
    DISCORD_GUILD_ID: 'my-guild',
    APCA_API_BASE_URL: 'ftp://broker',
    DISCORD_OPERATOR_USER_IDS: '123456789012345678, bob',
  });
  const text = error.message;
  assert.match(text, /MAX_TRADES_PER_HOUR is "three": expected a whole number/);
  assert.match(text, /ON_RUNAWAY is "panic": expected one of alert, stop, flatten/);
  assert.match(text, /DISCORD_GUILD_ID is "my-guild": expected a Discord id/);
  assert.match(text, /APCA_API_BASE_URL is "ftp:\/\/broker": expected an http\(s\) URL/);
  assert.match(text, /DISCORD_OPERATOR_USER_IDS has "bob"/);
  assert.equal(error.problems.length, 5);
});

test('a token needs its ids, and a half pair of broker keys is refused without showing the key', () => {
  const error = captureConfigError({ DISCORD_TOKEN: 'MTIz.secret-token-value', APCA_API_KEY_ID: 'PKSECRETKEYID' });
  assert.match(error.message, /DISCORD_CLIENT_ID is missing: it is required when DISCORD_TOKEN is set/);
  assert.match(error.message, /APCA_API_SECRET_KEY is missing/);
  assert.doesNotMatch(error.message, /secret-token-value|PKSECRETKEYID/);
});

test('secrets are collected for redaction', () => {
  const config = parseConfig({ APCA_API_KEY_ID: 'PKABCDEFG', APCA_API_SECRET_KEY: 'sEcReT123', ON_RUNAWAY: 'STOP' });
  assert.deepEqual([...config.secrets].sort(), ['PKABCDEFG', 'sEcReT123']);
  assert.equal(config.onRunaway, 'stop');
});

test('GATEWAY_ADDR: off by default, loopback for a port alone, a host when given; GATE_MODE enforce by default', async () => {
  assert.equal(parseConfig({}).gateway, undefined);
  assert.deepEqual(parseConfig({ GATEWAY_ADDR: '8790' }).gateway, { host: '127.0.0.1', port: 8790, mode: 'enforce' });
  assert.deepEqual(parseConfig({ GATEWAY_ADDR: '[::1]:8790', GATE_MODE: 'observe' }).gateway, { host: '::1', port: 8790, mode: 'observe' });
  assert.deepEqual(parseConfig({ GATEWAY_ADDR: '10.0.0.5:9000' }).gateway?.host, '10.0.0.5');
  const error = captureConfigError({ GATEWAY_ADDR: 'localhost:99999', GATE_MODE: 'block' });
  assert.match(error.message, /GATEWAY_ADDR is "localhost:99999": expected host:port/);
  assert.match(error.message, /GATE_MODE is "block": expected one of enforce, observe/);
  // The trader is pointed at the gate by the one definition of it.
  const ecosystem = '../ecosystem.config.js'; // plain JS, no declarations: imported by name
  const { tradingApp } = (await import(ecosystem)) as { tradingApp: (env: Record<string, string>) => { env: Record<string, string> } };
  assert.equal(tradingApp({ GATEWAY_ADDR: '0.0.0.0:8790' }).env.APCA_API_BASE_URL, 'http://127.0.0.1:8790');
  assert.equal(tradingApp({}).env.APCA_API_BASE_URL, undefined, 'without the gate the trader keeps the broker URL it was given');
});

test("the gate's pre-trade limits: amounts, a symbol list and a count, each named when wrong; refused without GATEWAY_ADDR; APCA_API_DATA_URL defaults to Alpaca's data host", () => {
  const config = parseConfig({ GATEWAY_ADDR: '8790', MAX_ORDER_NOTIONAL: '250', MAX_POSITION_NOTIONAL: '1000.50', ALLOWED_SYMBOLS: 'btc/usd, ETHUSD,AAPL,', MAX_OPEN_ORDERS: '5' });
  assert.deepEqual(config.gateway, { host: '127.0.0.1', port: 8790, mode: 'enforce', maxOrderNotional: 250, maxPositionNotional: 1000.5, allowedSymbols: ['BTC/USD', 'ETHUSD', 'AAPL'], maxOpenOrders: 5 });
  assert.equal(parseConfig({}).broker.dataUrl, 'https://data.alpaca.markets');
  assert.equal(parseConfig({ APCA_API_DATA_URL: 'http://127.0.0.1:9000/' }).broker.dataUrl, 'http://127.0.0.1:9000');
  const error = captureConfigError({ GATEWAY_ADDR: '8790', MAX_ORDER_NOTIONAL: '-5', MAX_POSITION_NOTIONAL: '1e3', ALLOWED_SYMBOLS: 'BTC USD,AAPL', MAX_OPEN_ORDERS: '0', APCA_API_DATA_URL: 'data.alpaca.markets' });
  assert.match(error.message, /MAX_ORDER_NOTIONAL is "-5": expected an amount of money like 250 or 1000\.50/);
  assert.match(error.message, /MAX_POSITION_NOTIONAL is "1e3": expected an amount of money/);
  assert.match(error.message, /ALLOWED_SYMBOLS has "BTC USD": expected a comma list of symbols .*BTC\/USD and BTCUSD are the same symbol/);
  assert.match(error.message, /MAX_OPEN_ORDERS is "0": expected a whole number from 1 to 10000/);
  assert.match(error.message, /APCA_API_DATA_URL is "data\.alpaca\.markets": expected an http\(s\) URL, e\.g\. https:\/\/data\.alpaca\.markets/);
  assert.equal(error.problems.length, 5, error.message);
  assert.match(captureConfigError({ GATEWAY_ADDR: '8790', MAX_ORDER_NOTIONAL: '3 %' }).message, /MAX_ORDER_NOTIONAL is "3 %"/);
  // Without the gate nothing would enforce them: said at start, not discovered after an oversized order.
  const ungated = captureConfigError({ MAX_ORDER_NOTIONAL: '250', ALLOWED_SYMBOLS: 'AAPL' });
  assert.match(ungated.message, /MAX_ORDER_NOTIONAL, ALLOWED_SYMBOLS are set but GATEWAY_ADDR is not, so nothing would enforce them: .* Either set GATEWAY_ADDR=127\.0\.0\.1:8790 — ecosystem\.config\.js then gives the trader APCA_API_BASE_URL=http:\/\/127\.0\.0\.1:8790; .* or remove MAX_ORDER_NOTIONAL, ALLOWED_SYMBOLS from \.env/);
  // With an exchange there is no gate to turn on: only removing them helps, and the message says so.
  const exchange = captureConfigError({ BROKER: 'ccxt', CCXT_EXCHANGE: 'kraken', MAX_OPEN_ORDERS: '3' });
  assert.match(exchange.message, /MAX_OPEN_ORDERS is set with BROKER=ccxt, and nothing would enforce it: the pre-trade limits are checked by the order gate, which is Alpaca's alone\. Remove MAX_OPEN_ORDERS from \.env/);
  assert.doesNotMatch(exchange.message, /set GATEWAY_ADDR/, 'not told to set what BROKER=ccxt refuses');
});

test('BROKER=ccxt: the exchange, its keys kept secret, its options as JSON, the quote and the symbols; Alpaca by default', () => {
  assert.equal(parseConfig({}).ccxt, undefined, 'Alpaca unless BROKER=ccxt');
  const config = parseConfig({
    BROKER: 'CCXT',
    CCXT_EXCHANGE: 'Kraken',
    CCXT_API_KEY: 'ccxt-key-value',
    CCXT_SECRET: 'ccxt-secret-value',
    CCXT_PASSWORD: 'ccxt-pass-value',
    CCXT_OPTIONS: '{"urls":{"api":{"public":"http://127.0.0.1:9","private":"http://127.0.0.1:9"}},"options":{"defaultType":"spot"}}',
    CCXT_SANDBOX: 'on',
    CCXT_QUOTE: 'eur',
    CCXT_SYMBOLS: 'btc/eur, ETH/EUR,BTC/USDT:USDT',
  });
  assert.deepEqual(config.ccxt, {
    exchange: 'kraken',
    apiKey: 'ccxt-key-value',
    secret: 'ccxt-secret-value',
    password: 'ccxt-pass-value',
    options: { urls: { api: { public: 'http://127.0.0.1:9', private: 'http://127.0.0.1:9' } }, options: { defaultType: 'spot' } },
    sandbox: true,
    quote: 'EUR',
    symbols: ['BTC/EUR', 'ETH/EUR', 'BTC/USDT:USDT'],
  });
  assert.deepEqual([...config.secrets].sort(), ['ccxt-key-value', 'ccxt-pass-value', 'ccxt-secret-value']);
  const defaults = parseConfig({ BROKER: 'ccxt', CCXT_EXCHANGE: 'binance', CCXT_API_KEY: 'k', CCXT_SECRET: 's' }).ccxt;
  assert.equal(defaults?.quote, 'USD');
  assert.equal(defaults?.sandbox, false);
  assert.equal(defaults?.symbols, undefined, 'no CCXT_SYMBOLS: the markets held and traded');
});

test('BROKER=ccxt: an unknown exchange is refused with the closest names; missing keys and bad values named, the secrets never shown', () => {
  const error = captureConfigError({
    BROKER: 'ccxt',
    CCXT_EXCHANGE: 'krakn',
    CCXT_PASSWORD: 'pass-never-shown',
    CCXT_QUOTE: 'US DOLLAR',
    CCXT_SANDBOX: 'yes',
    CCXT_SYMBOLS: 'BTCUSDT,ETH/USDT',
  });
  assert.match(error.message, /CCXT_EXCHANGE is "krakn": not an exchange ccxt knows — closest: kraken/);
  assert.match(error.message, /CCXT_API_KEY is missing: it is required with BROKER=ccxt/);
  assert.match(error.message, /CCXT_SECRET is missing/);
  assert.match(error.message, /CCXT_QUOTE is "US DOLLAR": expected a currency code/);
  assert.match(error.message, /CCXT_SANDBOX is "yes": expected on/);
  assert.match(error.message, /CCXT_SYMBOLS has "BTCUSDT": expected a comma list of ccxt symbols/);
  assert.equal(error.problems.length, 6, error.message);
  assert.doesNotMatch(error.message, /pass-never-shown/);
  assert.match(captureConfigError({ BROKER: 'ccxt', CCXT_EXCHANGE: 'binanc', CCXT_API_KEY: 'k', CCXT_SECRET: 's' }).message, /closest: binance\b/);
  assert.match(captureConfigError({ BROKER: 'ccxt', CCXT_API_KEY: 'k', CCXT_SECRET: 's' }).message, /CCXT_EXCHANGE is missing: it is required with BROKER=ccxt/);
  assert.match(captureConfigError({ BROKER: 'bitcoin' }).message, /BROKER is "bitcoin": expected one of alpaca, ccxt/);
});

test('CCXT_OPTIONS: invalid JSON names the variable and where, without echoing it; not an object, or credentials in it, refused', () => {
  const base = { BROKER: 'ccxt', CCXT_EXCHANGE: 'kraken', CCXT_API_KEY: 'k', CCXT_SECRET: 's' };
  const badToken = captureConfigError({ ...base, CCXT_OPTIONS: '{"urls":}' });
  assert.match(badToken.message, /CCXT_OPTIONS is not valid JSON: unexpected "}" at position 8 \(line 1, column 9\)/);
  assert.doesNotMatch(badToken.message, /"urls":}/, 'the value itself is not echoed');
  assert.match(captureConfigError({ ...base, CCXT_OPTIONS: '{"a": 1,\n "b": 2,}' }).message, /unexpected "}" at position 17 \(line 2, column 9\)/);
  assert.match(captureConfigError({ ...base, CCXT_OPTIONS: '{"a": 1' }).message, /CCXT_OPTIONS is not valid JSON: it ends too early at position 7/);
  assert.match(captureConfigError({ ...base, CCXT_OPTIONS: '[1]' }).message, /CCXT_OPTIONS is an array: expected a JSON object/);
  const leaked = captureConfigError({ ...base, CCXT_OPTIONS: '{"secret":"in-options-secret"}' });
  assert.match(leaked.message, /CCXT_OPTIONS has secret: credentials go in CCXT_API_KEY, CCXT_SECRET and CCXT_PASSWORD/);
  assert.doesNotMatch(leaked.message, /in-options-secret/);
});

test('BROKER=ccxt refuses what only Alpaca offers, with the reason: the order gate and the broker lock; CCXT_* without BROKER=ccxt is named', () => {
  const base = { BROKER: 'ccxt', CCXT_EXCHANGE: 'kraken', CCXT_API_KEY: 'k', CCXT_SECRET: 's' };
  const error = captureConfigError({ ...base, GATEWAY_ADDR: '8790', BROKER_LOCK: 'on' });
  assert.match(error.message, /GATEWAY_ADDR is set with BROKER=ccxt: the order gate is Alpaca's alone \(an exchange checks each request's signature against its own host/);
  assert.match(error.message, /BROKER_LOCK is "on" with BROKER=ccxt: exchanges have no account switch that blocks new orders/);
  assert.equal(error.problems.length, 2, error.message);
  assert.match(captureConfigError({ CCXT_EXCHANGE: 'kraken', CCXT_QUOTE: 'EUR' }).message, /CCXT_EXCHANGE, CCXT_QUOTE are set but BROKER is not ccxt: set BROKER=ccxt/);
});

function captureConfigError(env: Record<string, string>): ConfigError {
  try {
    parseConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, 'error instanceof ConfigError');
    return error;
  }
  assert.fail('expected a ConfigError');
}
