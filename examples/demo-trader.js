// A small crypto bot for `npm run demo`: plain Node ESM, no dependencies (global fetch), so PM2 runs
// it with plain `node`, and so could you — like a real bot it reads its venue from the environment:
//
//   APCA_API_BASE_URL=http://127.0.0.1:PORT APCA_API_KEY_ID=… APCA_API_SECRET_KEY=… \
//     node examples/demo-trader.js [--every SECONDS]                      (Alpaca's REST API)
//   KRAKEN_API_URL=http://127.0.0.1:PORT KRAKEN_API_KEY=… KRAKEN_API_SECRET=… \
//     node examples/demo-trader.js [--every SECONDS]                      (Kraken's, `demo --broker ccxt`)
//
// Every DEMO_ORDER_EVERY_SECONDS (default 90; --every wins) it places a $DEMO_ORDER_NOTIONAL (25)
// market order for DEMO_SYMBOL (BTC/USD), alternating: buy $25, then sell the quantity that buy
// filled (so it never sells what it does not hold), and logs one line per order. On Kraken the $25
// becomes a volume at the last price (public Ticker), and orders are signed as Kraken documents
// (API-Sign: HMAC-SHA512 of the path and SHA-256 of nonce + body, with the base64 secret).
// On SIGINT (what PM2 sends on stop) or SIGTERM it lets an order in flight finish and exits 0.
import crypto from 'node:crypto';

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

const everyMs = Math.round(setting('--every', 'DEMO_ORDER_EVERY_SECONDS', 90) * 1000);
const notional = setting('--notional', 'DEMO_ORDER_NOTIONAL', 25);
const symbol = process.env.DEMO_SYMBOL?.trim() || 'BTC/USD';
const tag = `demo-trader pid=${process.pid}`;
const venue = process.env.KRAKEN_API_URL ? krakenVenue() : alpacaVenue();

let orders = 0;
/** Quantity bought and not yet sold back, as the broker wrote it: the next order sells it. */
let held = '';
let inFlight;
let timer;
let stopping = false;

async function placeOrder() {
  const buying = held === '';
  const what = buying ? `buy $${notional.toFixed(2)} ${symbol}` : `sell ${held} ${symbol}`;
  try {
    const result = await venue.order(buying);
    orders += 1;
    if (!result.ok) {
      // e.g. a sell after someone flattened the account: start over with a buy.
      if (!buying) held = '';
      console.log(`${tag} order ${orders}: ${what} REJECTED ${result.message}`);
      return;
    }
    held = buying && Number(result.filled) > 0 ? result.filled : '';
    const price = result.price ? ` @ ${Number(result.price).toFixed(2)}` : '';
    console.log(`${tag} order ${orders}: ${what} → ${result.status} ${result.filled}${price} (order ${result.id})`);
  } catch (error) {
    console.log(`${tag} order ${orders + 1}: ${what} FAILED: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Alpaca's POST /v2/orders: a notional buy, a qty sell. */
function alpacaVenue() {
  const baseUrl = (process.env.APCA_API_BASE_URL ?? '').replace(/\/+$/, '');
  const keyId = process.env.APCA_API_KEY_ID ?? '';
  const secretKey = process.env.APCA_API_SECRET_KEY ?? '';
  if (!baseUrl || !keyId || !secretKey) {
    console.error('demo-trader: set APCA_API_BASE_URL, APCA_API_KEY_ID and APCA_API_SECRET_KEY (npm run demo does), or KRAKEN_API_URL, KRAKEN_API_KEY and KRAKEN_API_SECRET');
    process.exit(2);
  }
  return {
    url: baseUrl,
    async order(buying) {
      const body = buying
        ? { symbol, side: 'buy', type: 'market', time_in_force: 'gtc', notional: notional.toFixed(2) }
        : { symbol, side: 'sell', type: 'market', time_in_force: 'gtc', qty: held };
      const response = await fetch(`${baseUrl}/v2/orders`, {
        method: 'POST',
        headers: { 'APCA-API-KEY-ID': keyId, 'APCA-API-SECRET-KEY': secretKey, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(5000),
      });
      const order = await response.json().catch(() => ({}));
      if (!response.ok) return { ok: false, message: `${response.status}: ${order.message ?? response.statusText}` };
      return { ok: true, filled: typeof order.filled_qty === 'string' ? order.filled_qty : '0', price: order.filled_avg_price, status: order.status, id: order.id };
    },
  };
}

/** Kraken's AddOrder (market, volume in BTC), signed; a buy's volume from the last price. */
function krakenVenue() {
  const baseUrl = (process.env.KRAKEN_API_URL ?? '').replace(/\/+$/, '');
  const key = process.env.KRAKEN_API_KEY ?? '';
  const secret = process.env.KRAKEN_API_SECRET ?? '';
  if (!key || !secret) {
    console.error('demo-trader: with KRAKEN_API_URL, set KRAKEN_API_KEY and KRAKEN_API_SECRET (npm run demo -- --broker ccxt does)');
    process.exit(2);
  }
  const pair = symbol.replace('/', '').replace(/^BTC/, 'XBT');
  let lastNonce = 0;
  const call = async (api, method, params = {}) => {
    const path = `/0/${api}/${method}`;
    const init = { signal: AbortSignal.timeout(5000) };
    if (api === 'private') {
      const nonce = String((lastNonce = Math.max(Date.now(), lastNonce + 1)));
      const body = new URLSearchParams({ nonce, ...params }).toString();
      const digest = crypto.createHash('sha256').update(nonce + body).digest();
      const sign = crypto.createHmac('sha512', Buffer.from(secret, 'base64')).update(Buffer.concat([Buffer.from(path), digest])).digest('base64');
      Object.assign(init, { method: 'POST', body, headers: { 'API-Key': key, 'API-Sign': sign, 'content-type': 'application/x-www-form-urlencoded' } });
    }
    const query = api === 'public' && Object.keys(params).length ? `?${new URLSearchParams(params)}` : '';
    const answer = await (await fetch(`${baseUrl}${path}${query}`, init)).json();
    if (answer.error?.length) throw new Error(answer.error.join(', '));
    return answer.result;
  };
  return {
    url: baseUrl,
    async order(buying) {
      let volume = held;
      let price;
      if (buying) {
        const ticker = Object.values(await call('public', 'Ticker', { pair }))[0];
        price = ticker.c[0];
        volume = (notional / Number(price)).toFixed(8);
      }
      try {
        const result = await call('private', 'AddOrder', { pair, type: buying ? 'buy' : 'sell', ordertype: 'market', volume });
        return { ok: true, filled: volume, price, status: 'filled', id: result.txid[0] };
      } catch (error) {
        return { ok: false, message: error.message };
      }
    },
  };
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

console.log(`${tag} started: ${symbol}, $${notional} market orders every ${everyMs / 1000} s against ${venue.url}`);
tick();
