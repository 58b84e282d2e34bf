// Doctor's broker checks, through the same client and stream the controller uses (src/broker/): the
// keys against GET /v2/account (and which environment APCA_API_BASE_URL is), the account's state,
// the trade stream's own authentication (it can refuse keys the REST API takes: APCA_STREAM_URL
// pointing at another environment), and this machine's clock against the broker's. Nothing is
// retried: one answer per question, each within the time-out.
import { AlpacaBroker, BrokerRequestError } from '../broker/alpaca.ts';
import { TradeStream, tradeStreamUrl, type StreamState } from '../broker/stream.ts';
import type { Config } from '../config.ts';
import { describeError } from '../errors.ts';
import { clockCheck } from './clock-skew.ts';
import type { DoctorCheck } from './report.ts';

type Add = (check: Omit<DoctorCheck, 'area'>) => void;

const PAPER_HOST = 'paper-api.alpaca.markets';
const LIVE_HOST = 'api.alpaca.markets';

export async function brokerChecks(broker: Config['broker'], add: Add, timeoutMs: number): Promise<void> {
  const { keyId, secretKey, baseUrl } = broker;
  if (!keyId || !secretKey) {
    add({
      name: 'broker',
      status: 'warn',
      detail: 'APCA_API_KEY_ID and APCA_API_SECRET_KEY are not set: trade watching, the breaker and flatten are off',
      fix: 'README "Connect a broker": paper-trading keys from the Alpaca dashboard into APCA_API_KEY_ID and APCA_API_SECRET_KEY',
    });
    return;
  }
  const origin = new URL(baseUrl).origin;
  const host = new URL(baseUrl).hostname;
  const environment =
    host === PAPER_HOST ? "for paper trading (Alpaca's paper API)" : host === LIVE_HOST ? "for LIVE trading, real money (Alpaca's live API)" : `by ${origin} (not Alpaca's paper or live API: a proxy or a stand-in)`;
  const client = new AlpacaBroker({ baseUrl, keyId, secretKey, timeoutMs, retries: 0 });
  await Promise.all([
    account(client, environment, origin, add),
    clockCheck(() => client.clock(), add, rejectedKeys),
    stream(tradeStreamUrl(baseUrl, broker.streamUrl), keyId, secretKey, Boolean(broker.streamUrl), add, timeoutMs),
  ]);
}

async function account(client: AlpacaBroker, environment: string, origin: string, add: Add): Promise<void> {
  let account: Awaited<ReturnType<AlpacaBroker['account']>>;
  try {
    account = await client.account();
  } catch (error) {
    add({
      name: 'keys',
      status: 'fail',
      detail: describeError(error),
      fix:
        rejectedKeys(error)
          ? `paper keys work only with https://${PAPER_HOST}, live keys only with https://${LIVE_HOST}: check APCA_API_BASE_URL (now ${origin}), or make new keys in the Alpaca dashboard`
          : `check APCA_API_BASE_URL (now ${origin}) and this machine's network`,
    });
    return;
  }
  add({ name: 'keys', status: 'ok', detail: `accepted ${environment}${account.accountNumber ? `, account ${account.accountNumber}` : ''}` });
  if (account.status !== 'ACTIVE') {
    add({ name: 'account', status: 'fail', detail: `status ${account.status}: the broker accepts no orders until it is ACTIVE`, fix: "finish the account's set-up in the Alpaca dashboard (or ask Alpaca's support)" });
  } else if (account.accountBlocked || account.tradingBlocked) {
    add({ name: 'account', status: 'fail', detail: `the broker blocks ${account.accountBlocked ? 'the account' : 'trading'} (${account.accountBlocked ? 'account_blocked' : 'trading_blocked'})`, fix: "see the Alpaca dashboard's notices, or ask Alpaca's support" });
  } else if (account.tradeSuspendedByUser) {
    add({ name: 'account', status: 'warn', detail: 'ACTIVE, but locked: new orders are blocked (suspend_trade)', fix: '`tradewarden unlock` when you want trading again (or turn trade suspension off in the dashboard)' });
  } else add({ name: 'account', status: 'ok', detail: 'ACTIVE, trading not blocked' });
}

/** The broker refused the keys (401, or 403 for them), as src/broker/alpaca.ts reports it. */
function rejectedKeys(error: unknown): boolean {
  const status = error instanceof Error && error.cause instanceof BrokerRequestError ? error.cause.details.status : undefined;
  return status === 401 || (status === 403 && /credentials/.test(describeError(error)));
}

async function stream(url: string, keyId: string, secretKey: string, explicit: boolean, add: Add, timeoutMs: number): Promise<void> {
  const shown = url.replace(/\/\/[^@/]*@/, '//'); // never user:password@ from a URL
  let settle!: (state: StreamState) => void;
  const settled = new Promise<StreamState>((resolve) => (settle = resolve));
  const trade = new TradeStream({
    url,
    keyId,
    secretKey,
    onFill: () => undefined,
    handshakeTimeoutMs: timeoutMs,
    onStateChange: (state) => {
      if (state.status === 'connected' || state.status === 'reconnecting') settle(state);
    },
  });
  trade.start();
  const timer = setTimeout(() => settle({ ...trade.state(), status: 'reconnecting', lastError: `no answer within ${timeoutMs} ms` }), timeoutMs + 250);
  const state = await settled;
  clearTimeout(timer);
  await trade.stop();
  if (state.status === 'connected') {
    add({ name: 'trade stream', status: 'ok', detail: `${shown} accepts the keys (trade_updates)` });
  } else if (state.refused) {
    add({
      name: 'trade stream',
      status: 'fail',
      detail: `${shown} refused the keys`,
      fix: explicit ? 'APCA_STREAM_URL must be the stream of the same environment as APCA_API_BASE_URL: unset it to derive it' : 'check APCA_API_KEY_ID and APCA_API_SECRET_KEY (see the keys line)',
    });
  } else {
    add({
      name: 'trade stream',
      status: 'fail',
      detail: `${shown}: ${state.lastError ?? 'no subscription'}`,
      fix: explicit ? 'check APCA_STREAM_URL, or unset it to derive it from APCA_API_BASE_URL' : "check this machine's network (the stream is a WebSocket on the broker's host)",
    });
  }
}

/** For `tradewarden init`: whether the broker takes these keys, and which account they open. */
export async function checkBrokerKeys(baseUrl: string, keyId: string, secretKey: string, timeoutMs = 5000): Promise<{ account: string } | { problem: string }> {
  try {
    const account = await new AlpacaBroker({ baseUrl, keyId, secretKey, timeoutMs, retries: 0 }).account();
    return { account: account.accountNumber ?? 'the account' };
  } catch (error) {
    return {
      problem: rejectedKeys(error)
        ? `${describeError(error)}; paper keys work only with https://${PAPER_HOST}, live keys only with https://${LIVE_HOST}`
        : describeError(error),
    };
  }
}
