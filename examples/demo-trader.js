// A small crypto bot for `npm run demo`: plain Node ESM, no dependencies (global fetch), so PM2 runs
// it with plain `node`, and so could you — like a real Alpaca bot it reads its broker from the
// environment:
//
//   APCA_API_BASE_URL=http://127.0.0.1:PORT APCA_API_KEY_ID=… APCA_API_SECRET_KEY=… \
//     node examples/demo-trader.js [--every SECONDS]
//
// Every DEMO_ORDER_EVERY_SECONDS (default 90; --every wins) it places a $DEMO_ORDER_NOTIONAL (25)
// market order for DEMO_SYMBOL (BTC/USD), time_in_force gtc, alternating: buy $25, then sell the
// quantity that buy filled (so it never sells what it does not hold), and logs one line per order.
// On SIGINT (what PM2 sends on stop) or SIGTERM it lets an order in flight finish and exits 0.

function setting(flag, variable, fallback) {
  const at = process.argv.indexOf(flag);
  const raw = at >= 0 ? process.argv[at + 1] : process.env[variable];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) {
    console.error(`demo-trader: ${at >= 0 ? flag : variable} is ${JSON.stringify(raw)}: expected a positive number`);
    process.exit(2);
  }
  return value;
}

const baseUrl = (process.env.APCA_API_BASE_URL ?? '').replace(/\/+$/, '');
const keyId = process.env.APCA_API_KEY_ID ?? '';
const secretKey = process.env.APCA_API_SECRET_KEY ?? '';
if (!baseUrl || !keyId || !secretKey) {
  console.error('demo-trader: set APCA_API_BASE_URL, APCA_API_KEY_ID and APCA_API_SECRET_KEY (npm run demo does)');
  process.exit(2);
}
const everyMs = Math.round(setting('--every', 'DEMO_ORDER_EVERY_SECONDS', 90) * 1000);
const notional = setting('--notional', 'DEMO_ORDER_NOTIONAL', 25);
const symbol = process.env.DEMO_SYMBOL?.trim() || 'BTC/USD';
const tag = `demo-trader pid=${process.pid}`;

let orders = 0;
/** Quantity bought and not yet sold back, as the broker wrote it: the next order sells it. */
let held = '';
let inFlight;
let timer;
let stopping = false;

async function placeOrder() {
  const buying = held === '';
  const body = buying
    ? { symbol, side: 'buy', type: 'market', time_in_force: 'gtc', notional: notional.toFixed(2) }
    : { symbol, side: 'sell', type: 'market', time_in_force: 'gtc', qty: held };
  const what = buying ? `buy $${notional.toFixed(2)} ${symbol}` : `sell ${held} ${symbol}`;
  try {
    const response = await fetch(`${baseUrl}/v2/orders`, {
      method: 'POST',
      headers: { 'APCA-API-KEY-ID': keyId, 'APCA-API-SECRET-KEY': secretKey, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    });
    const order = await response.json().catch(() => ({}));
    orders += 1;
    if (!response.ok) {
      // e.g. a sell after someone flattened the account: start over with a buy.
      if (!buying) held = '';
      console.log(`${tag} order ${orders}: ${what} REJECTED ${response.status}: ${order.message ?? response.statusText}`);
      return;
    }
    const filled = typeof order.filled_qty === 'string' ? order.filled_qty : '0';
    held = buying && Number(filled) > 0 ? filled : '';
    const price = order.filled_avg_price ? ` @ ${Number(order.filled_avg_price).toFixed(2)}` : '';
    console.log(`${tag} order ${orders}: ${what} → ${order.status} ${filled}${price} (order ${order.id})`);
  } catch (error) {
    console.log(`${tag} order ${orders + 1}: ${what} FAILED: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function tick() {
  if (stopping) return;
  inFlight = placeOrder().finally(() => {
    inFlight = undefined;
    if (!stopping) timer = setTimeout(tick, everyMs);
  });
}

async function closeOut(signal) {
  if (stopping) return;
  stopping = true;
  clearTimeout(timer);
  console.log(`${tag} got ${signal}: stopping after ${orders} order(s)`);
  await inFlight;
  process.exit(0);
}
process.on('SIGINT', () => void closeOut('SIGINT'));
process.on('SIGTERM', () => void closeOut('SIGTERM'));

console.log(`${tag} started: ${symbol}, $${notional} market orders every ${everyMs / 1000} s against ${baseUrl}`);
tick();
