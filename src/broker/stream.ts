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
// The back-off between attempts and the rate of those catch-ups: broker/stream-life.ts.
// Keys go out only inside the auth frame; no log line, state or error carries them.
import WebSocket from 'ws';
import { systemClock, type Clock } from '../clock.ts';
import { describeError } from '../errors.ts';
import { redact, silentLogger, type Logger } from '../log.ts';
import { parseTradeUpdateEnd, parseTradeUpdateFill, parseTradeUpdateOrder, type OrderEnded } from './alpaca.ts';
import { StreamLife, type StreamLifeOptions, type StreamState } from './stream-life.ts';
import type { Fill, OrderUpdate } from './types.ts';

export type { StreamState, StreamStatus } from './stream-life.ts';

/** Alpaca's stream: its connection and messages; the rest of its life (status, back-off, catch-up) as any stream's. */
export interface TradeStreamOptions extends Omit<StreamLifeOptions, 'name' | 'clean' | 'onListening'> {
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
  private readonly life: StreamLife;
  private handshakeTimer?: NodeJS.Timeout;
  private pingTimer?: NodeJS.Timeout;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly secrets: string[];

  constructor(private readonly options: TradeStreamOptions) {
    this.logger = options.logger ?? silentLogger;
    this.clock = options.clock ?? systemClock;
    this.secrets = [options.keyId, options.secretKey];
    this.life = new StreamLife({ ...options, name: 'trade stream', logger: this.logger, clock: this.clock, clean: (error) => this.clean(error) });
  }

  /** A copy of the current state. */
  state(): StreamState {
    return this.life.state();
  }

  start(): void {
    if (this.life.begin()) this.connect();
  }

  /** Closes the connection and stops reconnecting; resolves when the socket is closed. */
  async stop(): Promise<void> {
    if (this.life.isStopped) return;
    this.life.end();
    this.clearConnectionTimers();
    const socket = this.socket;
    this.socket = undefined;
    if (socket && socket.readyState !== WebSocket.CLOSED) {
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.terminate();
      await closed;
    }
    this.life.ended();
  }

  // ---- connection ----

  private connect(): void {
    if (this.life.isStopped) return;
    this.life.attempting();
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
      this.life.heard();
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
      if (this.life.isStopped) return;
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
      this.life.listening(this.options.url);
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

  /** The connection ended or never came up: back off and try again. */
  private lost(why: string): void {
    this.life.lost(why, why === REFUSED, () => this.connect());
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
