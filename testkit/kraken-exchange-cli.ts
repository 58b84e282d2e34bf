// Runs the Kraken stand-in until SIGINT/SIGTERM and prints {"url": "...", "ccxtOptions": "...", "pid": N}
// as one JSON line on stdout, so a script (a bench, a shell) can point CCXT_OPTIONS at it; when it
// stops, a second line {"privateCalls": {"TradesHistory": N, …}} says what it was asked (GetWebSocketsToken:
// the controller's trade stream asked for a token).
//
//   CCXT_API_KEY=… CCXT_SECRET=<base64> node --import tsx testkit/kraken-exchange-cli.ts [--usd 100000]
//
// The key and secret come from the environment (never the command line, where `ps` would show them):
// the same variables the controller reads with BROKER=ccxt.
import { parseArgs } from 'node:util';
import { startKrakenStandIn } from './kraken-exchange.ts';

function fail(message: string): never {
  process.stderr.write(`kraken-exchange: ${message}\n`);
  process.exit(2);
}

const { values } = parseArgs({ options: { usd: { type: 'string', default: '100000' } }, strict: true });
const usd = Number(values.usd);
if (!Number.isFinite(usd) || usd < 0) fail(`--usd ${values.usd}: expected a non-negative number`);
const apiKey = process.env.CCXT_API_KEY;
const secret = process.env.CCXT_SECRET;
if (!apiKey || !secret) fail('set CCXT_API_KEY and CCXT_SECRET (base64) in the environment');

const kraken = await startKrakenStandIn({ apiKey, secret, balances: { USD: usd } });
process.stdout.write(JSON.stringify({ url: kraken.url, ccxtOptions: kraken.ccxtOptions, pid: process.pid }) + '\n');
const stop = () => {
  const privateCalls = Object.fromEntries(['BalanceEx', 'TradesHistory', 'OpenOrders', 'AddOrder', 'GetWebSocketsToken'].map((method) => [method, kraken.calls(method).length]));
  process.stdout.write(JSON.stringify({ privateCalls }) + '\n');
  void kraken.close().then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
