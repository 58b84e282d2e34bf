// Alpaca's trading stream (`trade_updates` over a WebSocket) — the only module that imports ws.
// The poll of FILL activities sees a fill up to one poll period late; the stream sees it as the
// broker books it, which is what lets a runaway be stopped after one trade instead of a dozen.
//
// Protocol, as Alpaca documents it and its SDKs speak it:
//   → {"action":"auth","key":…,"secret":…}
//   ← {"stream":"authorization","data":{"status":"authorized","action":"authenticate"}}
//     (older servers and proxies answer {"action":"auth"} inside data, or the market-data shape
//     [{"T":"success","msg":"authenticated"}]; all are accepted, as are their refusals)
//   → {"action":"listen","data":{"streams":["trade_updates"]}}
//   ← {"stream":"listening","data":{"streams":["trade_updates"]}}
//   ← {"stream":"trade_updates","data":{"event":"fill","execution_id":…,"order":{…},"price":…,"qty":…,"timestamp":…}}
// The paper endpoint sends binary frames, the others text: both are decoded the same way.
//
// The stream is never trusted alone: a dropped connection loses whatever filled meanwhile, so every
// (re)connect tells the owner (`onListening`) and the owner runs the poll to reconcile.
//
// A broker (or a proxy) that drops the connection right after each subscribe must not turn this into
// a storm: the back-off is reset only by a connection that stayed up (`stableAfterMs`, 30 s), not by
// every subscribe, so it keeps growing while the connection flaps; and the catch-up (`onListening`)
// runs at most once per `catchUpEveryMs` (5 s). A catch-up held back by that limit is never dropped:
// it runs when the limit allows, connected or not (the poll reads over REST), so every subscribe is
// followed by a catch-up that starts after it.
// Keys go out only inside the auth frame; no log line, state or error carries them.
import WebSocket from 'ws';
import { systemClock, type Clock } from '../clock.ts';
import { describeError } from '../errors.ts';
import { redact, silentLogger, type Logger } from '../log.ts';
import { parseTradeUpdateEnd, parseTradeUpdateFill, parseTradeUpdateOrder, type OrderEnded } from './alpaca.ts';
import type { Fill, OrderUpdate } from './types.ts';

export type StreamStatus = 'connecting' | 'connected' | 'reconnecting' | 'stopped';

/** What the stream is doing now: for status replies and, later, the controller's health registry. */
export interface StreamState {
  status: StreamStatus;
  /** ms since epoch the current status began (for 'reconnecting': when the connection was lost) */
  since: number;
  /** ms since epoch of the last frame received, any kind */
  lastMessageAt?: number;
  /** why the last connection ended or failed, in words for an operator */
  lastError?: string;
  /** the broker refused the keys on the last attempt */
  refused: boolean;
  /** connection attempts since the last connection that stayed up (stableAfterMs): the back-off's exponent */
  attempts: number;
}

export interface TradeStreamOptions {
  url: string;
  keyId: string;
  secretKey: string;
  /** every fill and partial fill, parsed; a rejected promise is logged, never stops the stream */
  onFill: (fill: Fill) => Promise<void> | void;
  /**
   * after a successful (re)subscription: what happened while disconnected must be read by poll. At
   * most once per catchUpEveryMs; one held back runs when the limit allows.
   */
  onListening?: () => Promise<void> | void;
  /** an order that will trade no more: canceled, expired, rejected, replaced, done for the day */
  onOrderEnded?: (ended: OrderEnded) => void;
  /** every trade_updates event as the order it leaves, or why one could not be read (a model of the orders missed it) */
  onOrderUpdate?: (update: OrderUpdate | { unreadable: string }) => void;
  /** on every change of status (not on every message) */
  onStateChange?: (state: StreamState) => void;
  logger?: Logger;
  clock?: Clock;
  /** back-off of the first reconnect (default 500 ms), doubled per failure up to maxBackoffMs (30 s) */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** how long (by the clock) a connection must stay up before the back-off starts over (default 30 s) */
  stableAfterMs?: number;
  /** the shortest time between two catch-ups (onListening), by the clock (default 5 s) */
  catchUpEveryMs?: number;
  /** injected so a test can fix the jitter; default Math.random */
  random?: () => number;
  /** from open to "listening" (default 10 s) */
  handshakeTimeoutMs?: number;
  /** ping period; a connection that missed a whole period's pong is dropped (default 20 s) */
  pingIntervalMs?: number;
}

export { tradeStreamUrl } from './stream-url.ts';

const REFUSED = 'the broker refused the stream credentials — check APCA_API_KEY_ID and APCA_API_SECRET_KEY (the trade poll carries on meanwhile)';

type AuthAnswer = 'authorized' | 'refused' | undefined;

export class TradeStream {
  private socket?: WebSocket;
  private current: StreamState;
  private stopped = true;
  private reconnectTimer?: NodeJS.Timeout;
  /** when the current connection subscribed (clock), while it is up */
  private connectedAt?: number;
  /** when the last catch-up began (clock), and the one held back by the limit */
  private lastCatchUpAt?: number;
  private catchUpTimer?: NodeJS.Timeout;
  private handshakeTimer?: NodeJS.Timeout;
  private pingTimer?: NodeJS.Timeout;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly secrets: string[];

  constructor(private readonly options: TradeStreamOptions) {
    this.logger = options.logger ?? silentLogger;
    this.clock = options.clock ?? systemClock;
    this.secrets = [options.keyId, options.secretKey];
    this.current = { status: 'stopped', since: this.clock.now(), refused: false, attempts: 0 };
  }

  /** A copy of the current state. */
  state(): StreamState {
    return { ...this.current };
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  /** Closes the connection and stops reconnecting; resolves when the socket is closed. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.catchUpTimer);
    this.catchUpTimer = undefined;
    this.connectedAt = undefined;
    this.clearConnectionTimers();
    const socket = this.socket;
    this.socket = undefined;
    if (socket && socket.readyState !== WebSocket.CLOSED) {
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.terminate();
      await closed;
    }
    // A deliberate stop ends the streak: the next start begins with the shortest back-off.
    this.setState({ status: 'stopped', since: this.clock.now(), attempts: 0 });
  }

  // ---- connection ----

  private connect(): void {
    if (this.stopped) return;
    const attempt = this.current.attempts + 1;
    if (this.current.status !== 'reconnecting') this.setState({ status: 'connecting', since: this.clock.now(), attempts: attempt });
    else this.current.attempts = attempt;
    let socket: WebSocket;
    try {
      socket = new WebSocket(this.options.url, { handshakeTimeout: this.options.handshakeTimeoutMs ?? 10_000, followRedirects: false });
    } catch (error) {
      this.lost(`cannot open ${this.options.url}: ${describeError(error)}`);
      return;
    }
    this.socket = socket;
    let authorized = false;
    let failure: string | undefined;

    socket.on('open', () => {
      this.handshakeTimer = setTimeout(() => {
        failure ??= `no answer to authentication within ${this.options.handshakeTimeoutMs ?? 10_000} ms`;
        socket.terminate();
      }, this.options.handshakeTimeoutMs ?? 10_000);
      socket.send(JSON.stringify({ action: 'auth', key: this.options.keyId, secret: this.options.secretKey }));
    });
    socket.on('message', (raw: WebSocket.RawData) => {
      this.current.lastMessageAt = this.clock.now();
      let message: unknown;
      try {
        message = JSON.parse(frameText(raw));
      } catch {
        this.logger.warn('trade stream: a frame that is not JSON was ignored');
        return;
      }
      const auth = authAnswer(message);
      if (auth === 'refused') {
        // Said with the status, when the close makes it 'reconnecting' (see lost).
        failure = REFUSED;
        socket.close();
        return;
      }
      if (auth === 'authorized' && !authorized) {
        authorized = true;
        socket.send(JSON.stringify({ action: 'listen', data: { streams: ['trade_updates'] } }));
        return;
      }
      for (const item of Array.isArray(message) ? message : [message]) this.handle(item, socket, (why) => (failure = why));
    });
    socket.on('pong', () => {
      (socket as WebSocket & { alive?: boolean }).alive = true;
    });
    socket.on('error', (error) => {
      failure ??= describeError(error);
    });
    socket.on('close', (code, reason) => {
      if (this.socket === socket) this.socket = undefined;
      this.clearConnectionTimers();
      if (this.stopped) return;
      const said = reason.toString('utf8');
      this.lost(failure ?? `connection closed (${code}${said ? ` ${said}` : ''})`);
    });
  }

  private handle(item: unknown, socket: WebSocket, fail: (why: string) => void): void {
    if (!isRecord(item)) return;
    if (item.stream === 'listening') {
      const streams = isRecord(item.data) && Array.isArray(item.data.streams) ? item.data.streams : [];
      if (!streams.includes('trade_updates')) {
        fail('the broker did not subscribe this connection to trade_updates');
        socket.close();
        return;
      }
      clearTimeout(this.handshakeTimer);
      this.startPinging(socket);
      const wasDown = this.current.status === 'reconnecting' ? this.clock.now() - this.current.since : undefined;
      // attempts is not reset here: a connection dropped right after its subscribe is one more failure.
      this.connectedAt = this.clock.now();
      this.setState({ status: 'connected', since: this.connectedAt, refused: false, lastError: undefined });
      this.logger.info(`trade stream connected (${this.options.url})${wasDown !== undefined ? ` after ${Math.round(wasDown / 1000)} s reconnecting` : ''}`);
      this.catchUp();
      return;
    }
    if (item.action === 'error' || item.T === 'error') {
      const data = isRecord(item.data) ? item.data : item;
      fail(`the broker reported an error: ${String(data.error_message ?? data.msg ?? 'unknown')}`);
      return;
    }
    if (item.stream !== 'trade_updates') return;
    if (this.options.onOrderUpdate) {
      let update: OrderUpdate | { unreadable: string };
      try {
        update = parseTradeUpdateOrder(item.data, 'trade_updates');
      } catch (error) {
        update = { unreadable: this.clean(error) };
      }
      this.options.onOrderUpdate(update);
    }
    let fill: Fill | undefined;
    try {
      fill = parseTradeUpdateFill(item.data, 'trade_updates');
      const ended = fill ? undefined : parseTradeUpdateEnd(item.data, 'trade_updates');
      if (ended) this.options.onOrderEnded?.(ended);
    } catch (error) {
      this.logger.warn(`trade stream: ${this.clean(error)}; the next poll reads it instead`);
      return;
    }
    if (!fill) return;
    void Promise.resolve()
      .then(() => this.options.onFill(fill))
      .catch((error) => this.logger.error(`trade stream: recording a fill failed: ${this.clean(error)}`));
  }

  /** The connection ended or never came up: back off (exponential, with jitter) and try again. */
  private lost(why: string): void {
    if (this.stopped) return;
    const firstFailure = this.current.status !== 'reconnecting';
    const refused = why === REFUSED;
    this.setState({
      status: 'reconnecting',
      since: firstFailure ? this.clock.now() : this.current.since,
      lastError: this.clean(why),
      refused,
    });
    // An operator needs the first failure of a streak, not one line per retry.
    if (firstFailure || refused !== (this.lastLoggedRefusal ?? false)) {
      (refused ? this.logger.error : this.logger.warn)(`trade stream: ${this.clean(why)}; reconnecting with back-off`);
      this.lastLoggedRefusal = refused;
    }
    // Only a connection that stayed up starts the back-off over; a flapping one keeps it growing.
    if (this.connectedAt !== undefined && this.clock.now() - this.connectedAt >= (this.options.stableAfterMs ?? 30_000)) this.current.attempts = 0;
    this.connectedAt = undefined;
    const initial = this.options.initialBackoffMs ?? 500;
    const max = this.options.maxBackoffMs ?? 30_000;
    const base = Math.min(max, initial * 2 ** Math.min(20, Math.max(0, this.current.attempts - 1)));
    const jittered = base / 2 + (this.options.random ?? Math.random)() * (base / 2);
    this.reconnectTimer = setTimeout(() => this.connect(), jittered);
  }

  private lastLoggedRefusal?: boolean;

  /**
   * Runs the owner's catch-up now, or, within catchUpEveryMs of the last one, once the limit allows
   * (a catch-up already waiting covers this subscribe too: it starts after it).
   */
  private catchUp(): void {
    if (this.catchUpTimer || !this.options.onListening) return;
    const wait = this.lastCatchUpAt === undefined ? 0 : this.lastCatchUpAt + (this.options.catchUpEveryMs ?? 5000) - this.clock.now();
    const run = () => {
      this.catchUpTimer = undefined;
      if (this.stopped) return;
      this.lastCatchUpAt = this.clock.now();
      void Promise.resolve()
        .then(() => this.options.onListening?.())
        .catch((error) => this.logger.warn(`trade stream: reconciling after connect failed: ${this.clean(error)}`));
    };
    if (wait <= 0) run();
    else {
      this.logger.debug(`trade stream: the catch-up poll waits ${Math.ceil(wait)} ms (at most one every ${this.options.catchUpEveryMs ?? 5000} ms)`);
      this.catchUpTimer = setTimeout(run, wait);
    }
  }

  private startPinging(socket: WebSocket): void {
    const every = this.options.pingIntervalMs ?? 20_000;
    const tracked = socket as WebSocket & { alive?: boolean };
    tracked.alive = true;
    this.pingTimer = setInterval(() => {
      if (!tracked.alive) {
        socket.terminate(); // a half-open connection: no close frame will ever come
        return;
      }
      tracked.alive = false;
      socket.ping();
    }, every);
    this.pingTimer.unref();
  }

  private clearConnectionTimers(): void {
    clearTimeout(this.handshakeTimer);
    clearInterval(this.pingTimer);
  }

  private setState(change: Partial<StreamState>): void {
    const before = this.current.status;
    this.current = { ...this.current, ...change };
    if (change.status !== undefined && (change.status !== before || change.since !== undefined)) this.options.onStateChange?.(this.state());
  }

  private clean(error: unknown): string {
    return redact(typeof error === 'string' ? error : describeError(error), this.secrets);
  }
}

function frameText(raw: WebSocket.RawData): string {
  if (Buffer.isBuffer(raw)) return raw.toString('utf8');
  if (Array.isArray(raw)) return Buffer.concat(raw).toString('utf8');
  return Buffer.from(raw).toString('utf8');
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Both reply shapes: the trading stream's authorization message and the [{T, msg}] form. */
function authAnswer(message: unknown): AuthAnswer {
  for (const item of Array.isArray(message) ? message : [message]) {
    if (!isRecord(item)) continue;
    if (item.stream === 'authorization' && isRecord(item.data)) {
      const action = item.data.action;
      if (action !== undefined && action !== 'authenticate' && action !== 'auth' && action !== 'listen') continue;
      if (item.data.status === 'authorized') return 'authorized';
      if (item.data.status === 'unauthorized') return 'refused';
    }
    if (item.T === 'success' && item.msg === 'authenticated') return 'authorized';
    if (item.T === 'error' && (item.code === 402 || /auth/i.test(String(item.msg ?? '')))) return 'refused';
  }
  return undefined;
}
