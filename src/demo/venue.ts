// Where the demo trades: the local paper broker (Alpaca's REST API, the default) or, with
// `--broker ccxt`, the Kraken stand-in read through ccxt (BROKER=ccxt). Both run in the demo's own
// process with keys that exist only for this run; the demo trader (examples/demo-trader.js) speaks
// either API. What differs is kept here: the variables the controller and the trader get, and how
// the demo reads the venue back (prices it moves, fills for the incident summary, equity).
import crypto from 'node:crypto';
import { startKrakenStandIn } from '../../testkit/kraken-exchange.ts';
import { startPaperBroker } from '../../testkit/paper-broker.ts';

export type VenueKind = 'alpaca' | 'ccxt';

export interface DemoVenue {
  url: string;
  /** the banner's words for it */
  label: string;
  /** the broker variables of the controller (with ccxt: BROKER, CCXT_*) */
  controllerEnv: Record<string, string>;
  /** the trader's own (PM2 hands it the demo's environment) */
  traderEnv: Record<string, string>;
  setPrice(symbol: string, price: number): void;
  fills(): Array<{ orderId: string; at: number }>;
  equity(): number;
  close(): Promise<void>;
}

export async function startDemoVenue(kind: VenueKind, holdings: { cash: number; prices: Record<string, number>; seededEth: number }): Promise<DemoVenue> {
  return kind === 'ccxt' ? kraken(holdings) : paper(holdings);
}

async function paper({ cash, prices, seededEth }: { cash: number; prices: Record<string, number>; seededEth: number }): Promise<DemoVenue> {
  const keyId = `PKDEMO${crypto.randomBytes(7).toString('hex').toUpperCase()}`;
  const secretKey = crypto.randomBytes(20).toString('base64url');
  const broker = await startPaperBroker({ port: 0, keyId, secretKey, cash, prices, marketOpen: true });
  broker.seedPosition('ETH/USD', seededEth, prices['ETH/USD']!);
  // The seeded ETH was held at yesterday's close: day P/L starts at zero, not at its value.
  broker.setLastEquity(broker.snapshot().equity);
  // The trader reads Alpaca's own variable names, as the controller does: one set for both.
  const env = { APCA_API_BASE_URL: broker.url, APCA_API_KEY_ID: keyId, APCA_API_SECRET_KEY: secretKey };
  return {
    url: broker.url,
    label: 'local paper broker (Alpaca\'s API)',
    controllerEnv: env,
    traderEnv: env,
    setPrice: (symbol, price) => broker.setPrice(symbol, price),
    fills: () => broker.snapshot().activities.map((a) => ({ orderId: String(a.order_id), at: Date.parse(String(a.transaction_time)) })),
    equity: () => broker.snapshot().equity,
    close: () => broker.close(),
  };
}

/** Two keys of one account, as the README advises: Kraken's nonces grow per key. */
async function kraken({ cash, prices, seededEth }: { cash: number; prices: Record<string, number>; seededEth: number }): Promise<DemoVenue> {
  const key = () => crypto.randomBytes(12).toString('base64url');
  const secret = () => crypto.randomBytes(32).toString('base64');
  const [controllerKey, controllerSecret, traderKey, traderSecret] = [key(), secret(), key(), secret()];
  const exchange = await startKrakenStandIn({ apiKey: controllerKey, secret: controllerSecret, moreKeys: { [traderKey]: traderSecret }, prices, balances: { USD: cash, ETH: seededEth } });
  return {
    url: exchange.url,
    label: 'local Kraken stand-in, read through ccxt (BROKER=ccxt)',
    controllerEnv: { BROKER: 'ccxt', CCXT_EXCHANGE: 'kraken', CCXT_API_KEY: controllerKey, CCXT_SECRET: controllerSecret, CCXT_OPTIONS: exchange.ccxtOptions, CCXT_QUOTE: 'USD' },
    traderEnv: { KRAKEN_API_URL: exchange.url, KRAKEN_API_KEY: traderKey, KRAKEN_API_SECRET: traderSecret },
    setPrice: (symbol, price) => exchange.setPrice(symbol, price),
    fills: () => exchange.trades().map((t) => ({ orderId: t.orderId, at: t.at })),
    equity: () => exchange.equity(),
    close: () => exchange.close(),
  };
}
