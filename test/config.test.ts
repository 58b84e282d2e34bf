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

function captureConfigError(env: Record<string, string>): ConfigError {
  try {
    parseConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, 'error instanceof ConfigError');
    return error;
  }
  assert.fail('expected a ConfigError');
}
