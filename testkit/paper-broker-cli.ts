// Runs the local paper broker until SIGINT/SIGTERM and prints {"url": "...", "pid": N} as one JSON
// line on stdout, so a script (npm run demo, a test) can read where it listens.
//
//   node --import tsx testkit/paper-broker-cli.ts [--port 0] [--cash 100000] [--market-closed]
//        [--price SYMBOL=PRICE]... [--auth-from-env]
//
// --auth-from-env requires the APCA_API_KEY_ID / APCA_API_SECRET_KEY of this process's environment
// on every request (keys stay off the command line, where `ps` would show them).
import { parseArgs } from 'node:util';
import { startPaperBroker } from './paper-broker.ts';

function fail(message: string): never {
  process.stderr.write(`paper-broker: ${message}\n`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    cash: { type: 'string', default: '100000' },
    'market-closed': { type: 'boolean', default: false },
    price: { type: 'string', multiple: true, default: [] },
    'auth-from-env': { type: 'boolean', default: false },
  },
  strict: true,
});

const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port ${values.port}: expected 0–65535`);
const cash = Number(values.cash);
if (!Number.isFinite(cash) || cash < 0) fail(`--cash ${values.cash}: expected a non-negative number`);
const prices: Record<string, number> = {};
for (const entry of values.price) {
  const [symbol, price] = entry.split('=');
  if (!symbol || !(Number(price) > 0)) fail(`--price ${entry}: expected SYMBOL=PRICE, e.g. AAPL=190.5`);
  prices[symbol.toUpperCase()] = Number(price);
}
let keyId: string | undefined;
let secretKey: string | undefined;
if (values['auth-from-env']) {
  keyId = process.env.APCA_API_KEY_ID;
  secretKey = process.env.APCA_API_SECRET_KEY;
  if (!keyId || !secretKey) fail('--auth-from-env needs APCA_API_KEY_ID and APCA_API_SECRET_KEY in the environment');
}

const broker = await startPaperBroker({ port, cash, prices, marketOpen: !values['market-closed'], keyId, secretKey });
process.stdout.write(JSON.stringify({ url: broker.url, pid: process.pid }) + '\n');

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  broker.close().then(
    () => process.exit(0),
    (error: unknown) => fail(`close failed: ${error instanceof Error ? error.message : String(error)}`),
  );
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
