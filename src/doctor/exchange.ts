// Doctor's checks of an exchange (BROKER=ccxt), through the same client the controller uses
// (src/broker/ccxt.ts, loaded only here and only then): ccxt knows the exchange and CCXT_SANDBOX
// holds; the keys against the balance (read-only: doctor records no equity); the markets it lists,
// CCXT_SYMBOLS among them, what cannot be valued in CCXT_QUOTE, whether trades are listed per
// market (and which markets are then watched); this machine's clock against the exchange's; whether
// the exchange pushes trades through ccxt (watchMyTrades), and that its WebSocket opens with a token
// these keys get.
// Nothing is retried or backed off: one answer per question, each within the time-out.
import type { CcxtConfig } from '../config.ts';
import { describeError } from '../errors.ts';
import { clockCheck } from './clock-skew.ts';
import type { DoctorCheck } from './report.ts';

type Add = (check: Omit<DoctorCheck, 'area'>) => void;

export async function exchangeChecks(config: CcxtConfig, dataDir: string, add: Add, timeoutMs: number): Promise<void> {
  const { CcxtBroker } = await import('../broker/ccxt.ts');
  let broker: InstanceType<typeof CcxtBroker>;
  try {
    broker = await CcxtBroker.open({ config, dataDir, timeoutMs, retries: 0, rateLimitRetries: 0, recordEquity: false, push: true });
  } catch (error) {
    add({ name: 'exchange', status: 'fail', detail: describeError(error), fix: 'set CCXT_EXCHANGE and CCXT_SANDBOX as the line says (README "Connect an exchange (ccxt)")' });
    return;
  }
  const { exchange } = broker;
  const overridden = (config.options as { urls?: unknown }).urls !== undefined;
  add({
    name: 'exchange',
    status: 'ok',
    detail: `${exchange.name ?? config.exchange} through ccxt ${broker.ccxtVersion}` + (config.sandbox ? ', its test network (CCXT_SANDBOX=on)' : '') + (overridden ? ', at the URLs CCXT_OPTIONS gives (a proxy or a stand-in)' : ''),
  });

  const keysRejected = (error: unknown) => /rejected the credentials|needs CCXT_|refused .* for this key/.test(describeError(error));
  const [account] = await Promise.allSettled([broker.account(), clockCheck(() => broker.clock(), add, keysRejected, `${config.exchange}'s`)]);
  if (account.status === 'rejected') {
    const rejected = keysRejected(account.reason);
    add({
      name: 'keys',
      status: 'fail',
      detail: describeError(account.reason),
      fix: rejected
        ? `make a key in ${config.exchange}'s API settings that may read balances, orders and trades and trade (never withdraw), and put it in CCXT_API_KEY and CCXT_SECRET${config.password ? ' (and its passphrase in CCXT_PASSWORD)' : ''}`
        : `check this machine's network${overridden ? ' and the URLs in CCXT_OPTIONS' : ''}`,
    });
    return;
  }
  add({ name: 'keys', status: 'ok', detail: `accepted: equity ${account.value.equity.toFixed(2)} ${config.quote}, cash ${account.value.cash.toFixed(2)} ${config.quote}` });
  await markets(broker, config, add);
  await push(broker, config, add, timeoutMs);
}

/** The trades the exchange pushes (what the controller's trade stream is, with BROKER=ccxt): offered, and its WebSocket opens. */
async function push(broker: import('../broker/ccxt.ts').CcxtBroker, config: CcxtConfig, add: Add, timeoutMs: number): Promise<void> {
  if (!broker.pushesTrades) {
    add({
      name: 'trade stream',
      status: 'warn',
      detail: `none: ccxt ${broker.ccxtVersion} offers no watchMyTrades for ${config.exchange}; its trades are read by the poll alone, a runaway seen within one TRADE_POLL_SECONDS`,
      fix: "lower TRADE_POLL_SECONDS if the exchange's rate limit allows",
    });
    return;
  }
  const outcome = await new Promise<{ url: string } | { error: unknown }>((resolve) => {
    const timer = setTimeout(() => resolve({ error: `no WebSocket within ${timeoutMs} ms` }), timeoutMs);
    const settle = (result: { url: string } | { error: unknown }) => {
      clearTimeout(timer);
      resolve(result);
    };
    broker.onPushConnected((url) => settle({ url }));
    broker.preparePush().then(() => broker.nextPushedFills()).catch((error: unknown) => settle({ error }));
  });
  await broker.closePush().catch(() => undefined);
  if ('url' in outcome) {
    add({ name: 'trade stream', status: 'ok', detail: `${config.exchange} pushes the account's trades (ccxt watchMyTrades): its WebSocket ${outcome.url.replace(/\/\/[^@/]*@/, '//')} opens` });
    return;
  }
  const refused = broker.refusedKeys(outcome.error);
  add({
    name: 'trade stream',
    status: 'fail',
    detail: `${config.exchange}'s WebSocket (watchMyTrades): ${typeof outcome.error === 'string' ? outcome.error : describeError(outcome.error)}; the poll still counts, one TRADE_POLL_SECONDS late`,
    fix: refused
      ? `give the key of CCXT_API_KEY the exchange's WebSocket permission (Kraken: "WebSocket interface")`
      : `check this machine's network to the exchange's WebSocket host${(config.options as { urls?: unknown }).urls !== undefined ? ' and the ws URLs in CCXT_OPTIONS' : ''}`,
  });
}

async function markets(broker: import('../broker/ccxt.ts').CcxtBroker, config: CcxtConfig, add: Add): Promise<void> {
  const listed = Object.values(broker.exchange.markets ?? {});
  const inQuote = listed.filter((m) => m.quote === config.quote && m.active !== false);
  const unknown = (config.symbols ?? []).filter((s) => !broker.exchange.markets?.[s]);
  if (unknown.length) {
    add({ name: 'markets', status: 'fail', detail: `CCXT_SYMBOLS has ${unknown.join(', ')}: not a market ${config.exchange} lists`, fix: `name markets as ccxt does (BASE/QUOTE, e.g. ${inQuote[0]?.symbol ?? 'BTC/USDT'})` });
    return;
  }
  if (!inQuote.length) {
    add({ name: 'markets', status: 'fail', detail: `${config.exchange} lists ${listed.length} markets, none against ${config.quote}: nothing can be valued`, fix: `set CCXT_QUOTE to the currency the account is counted in (e.g. USDT, USD, EUR)` });
    return;
  }
  let plan: { perMarket: boolean; markets?: string[] };
  try {
    await broker.fills(new Date().toISOString());
    plan = await broker.tradeWatchPlan();
  } catch (error) {
    add({ name: 'markets', status: 'fail', detail: `the trades could not be read: ${describeError(error)}`, fix: 'give the key permission to read trades (query ledger / trade history)' });
    return;
  }
  const counted = `${listed.length} markets, ${inQuote.length} against ${config.quote}`;
  if (plan.perMarket && !config.symbols) {
    add({
      name: 'markets',
      status: 'warn',
      detail: `${counted}; ${config.exchange} lists trades only per market: watching ${plan.markets?.length ? plan.markets.join(', ') : 'none yet'} (held or traded since the start)`,
      fix: 'name every market the trader may trade in CCXT_SYMBOLS: a fill in another one is not seen',
    });
  } else {
    add({ name: 'markets', status: 'ok', detail: `${counted}; trades ${plan.perMarket ? `read in ${config.symbols!.join(', ')} (CCXT_SYMBOLS)` : 'read for the whole account at once'}` });
  }
}
