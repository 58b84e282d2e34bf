// The order gate's HTTP side (GATEWAY_ADDR): an Alpaca-compatible endpoint inside the controller
// that the managed trader is pointed at (APCA_API_BASE_URL, set in ecosystem.config.js), so an
// unmodified bot trades through it.
//
// Why a second module that talks to the broker (DESIGN keeps that to src/broker/): this is not our
// client. It carries the *trader's* requests, with the trader's own keys, byte for byte: method,
// path, query, headers (Host aside), body and the broker's status, headers and body back. The path
// is the one the broker will execute (routes.ts normalises it, and it is forwarded normalised). A
// new order (POST /v2/orders) and an order replacement (PATCH /v2/orders/{id}) are held for a
// decision (order-gate.ts); reads, cancels, position closes and the `/stream` WebSocket pass and are
// never refused; any other write, and an upgrade of anything but the stream, is refused (deny by
// default). node:http(s) and a raw socket pipe for the upgrade are all it needs; axios (src/broker/)
// parses and retries, which a transparent proxy must not do.
//
// Fail closed: the trader knows only this address, so if the controller is down its orders go
// nowhere. A broker that cannot be reached is answered 502/503 in Alpaca's error shape.
//
// The pre-trade limits (pre-trade.ts) need a few reads of their own — the position, the open orders,
// the latest trade from the broker's market data (APCA_API_DATA_URL, another host), which account the
// keys trade — made here with the trader's own keys from the order's request, as the look-up of a lost
// answer is: tradewarden's keys may belong to another account than the one the trader trades. The
// gate's model of the trader's book (trader-book.ts) answers most of them without a read.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import zlib from 'node:zlib';
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from '../log.ts';
import { describeError } from '../errors.ts';
import { ALPACA_DATA_URL } from '../config.ts';
import { REFUSED_CODE, type OrderGate, type OrderIntent, type Peer } from './order-gate.ts';
import { cryptoPair, type BrokerView, type OrderView, type PositionView } from './pre-trade.ts';
import { keysDigest } from './trader-book.ts';
import { normalizeTarget, routeOf } from './routes.ts';

export interface GatewayOptions {
  host: string;
  port: number;
  /** the real broker's base URL (config APCA_API_BASE_URL) */
  upstream: string;
  gate: OrderGate;
  logger: Logger;
  /** how long the broker may take to answer one request before the trader gets a 503 */
  upstreamTimeoutMs?: number;
  /** the broker's market data (config APCA_API_DATA_URL), for the latest trade the pre-trade limits may need */
  dataUrl?: string;
  /** how long one read for the pre-trade limits may take (orders wait for it) */
  readTimeoutMs?: number;
}

export interface Gateway {
  /** http://host:port, as the trader reaches it */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** A new order's body is small; anything larger is not an order and is refused unread. */
const MAX_ORDER_BODY = 64 * 1024;
/** Headers that describe one hop, not the request (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** The only request that may be upgraded: the trading stream's WebSocket (GET /stream). */
const STREAM_PATH = '/stream';

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const { gate, logger } = options;
  const upstream = new URL(options.upstream);
  const secure = upstream.protocol === 'https:';
  const basePath = upstream.pathname.replace(/\/+$/, '');
  const upstreamPort = Number(upstream.port) || (secure ? 443 : 80);
  const timeoutMs = options.upstreamTimeoutMs ?? 30_000;
  // Keep-alive to the broker: a TLS handshake per order would cost more than everything else here.
  const agent = secure ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
  const data = new URL(options.dataUrl ?? ALPACA_DATA_URL);
  const dataAgent = data.protocol === 'https:' ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
  const readTimeoutMs = Math.min(options.readTimeoutMs ?? 2000, timeoutMs);
  const sockets = new Set<net.Socket>();
  const peers = new WeakMap<net.Socket, Peer>();
  const peerOf = (socket: net.Socket): Peer => {
    let peer = peers.get(socket);
    if (!peer) {
      peer = { ends: { localAddress: socket.localAddress ?? '', localPort: socket.localPort ?? 0, remoteAddress: socket.remoteAddress ?? '', remotePort: socket.remotePort ?? 0 } };
      peers.set(socket, peer);
    }
    return peer;
  };

  /** Sends one request to the broker, at `target` (normalised); resolves with its response (body unread). */
  function forward(req: http.IncomingMessage, target: string, body: Buffer | undefined): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      const headers = forwardedHeaders(req.headers, upstream.host);
      if (body) headers['content-length'] = String(body.length);
      const request = (secure ? https : http).request({
        agent,
        protocol: upstream.protocol,
        hostname: upstream.hostname,
        port: upstreamPort,
        method: req.method,
        path: basePath + target,
        headers,
        timeout: timeoutMs,
      });
      request.once('response', resolve);
      request.once('timeout', () => request.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
      request.once('error', reject);
      if (body) request.end(body);
      else req.pipe(request);
    });
  }

  /**
   * The broker did not answer. For an order, what the trader most needs to know: was it sent?
   * `fate` is what the gate knows of it (absent for a request that is not an order).
   */
  function unreachable(res: http.ServerResponse, error: unknown, fate?: 'not sent' | 'not accepted' | 'unknown' | { accepted: string; clientOrderId: string }): void {
    const timedOut = (error as NodeJS.ErrnoException).code === 'ETIMEDOUT';
    const status = timedOut ? 503 : 502;
    const said =
      fate === undefined
        ? ''
        : fate === 'not sent'
          ? ' The order was NOT sent (no connection was made): it is safe to send it again.'
          : fate === 'not accepted'
            ? ' The broker has no such order (looked up by its client_order_id): it was not accepted; it is safe to send it again.'
            : fate === 'unknown'
              ? ' The order may have reached it: list open orders before sending it again.'
              : ` The order DID reach it (order ${fate.accepted}, client_order_id ${fate.clientOrderId}); only its answer was lost: do not send it again.`;
    sendError(res, status, timedOut ? 50310000 : 50210000, `tradewarden order gate: the broker at ${upstream.host} ${timedOut ? 'did not answer in time' : `could not be reached (${describeError(error)})`}.${said}`);
    logger.warn(`order gate: broker ${upstream.host} ${requestLine(res)}: ${describeError(error)}`);
  }

  /** The broker's order of this client id: its id, 'absent' (404), or undefined when the broker could not say. */
  async function lookUp(req: http.IncomingMessage, clientOrderId: string): Promise<string | 'absent' | undefined> {
    const headers = forwardedHeaders(req.headers, upstream.host);
    for (const name of ['content-length', 'content-type', 'content-encoding']) delete headers[name];
    try {
      const answer = await new Promise<http.IncomingMessage>((resolve, reject) => {
        const request = (secure ? https : http).request({
          agent,
          protocol: upstream.protocol,
          hostname: upstream.hostname,
          port: upstreamPort,
          method: 'GET',
          path: `${basePath}/v2/orders:by_client_order_id?client_order_id=${encodeURIComponent(clientOrderId)}`,
          headers,
          timeout: Math.min(timeoutMs, 10_000),
        });
        request.once('response', resolve);
        request.once('timeout', () => request.destroy(new Error('no answer')));
        request.once('error', reject);
        request.end();
      });
      const chunks: Buffer[] = [];
      for await (const chunk of answer) chunks.push(chunk as Buffer);
      if (answer.statusCode === 404) return 'absent';
      if (answer.statusCode !== 200) return undefined;
      return orderOf(decoded(Buffer.concat(chunks), answer.headers['content-encoding']))?.id;
    } catch (error) {
      logger.warn(`order gate: could not look up order ${clientOrderId} at the broker: ${describeError(error)}`);
      return undefined;
    }
  }

  /**
   * GET `path` (with its query) at `origin` with only the trader's credentials; the status and the
   * JSON answer (undefined when it is not JSON). Rejects on no answer within readTimeoutMs.
   */
  async function readJson(origin: URL, originAgent: http.Agent, path: string, credentials: http.OutgoingHttpHeaders): Promise<{ status: number; json: unknown }> {
    const isSecure = origin.protocol === 'https:';
    const answer = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const request = (isSecure ? https : http).request({
        agent: originAgent,
        protocol: origin.protocol,
        hostname: origin.hostname,
        port: Number(origin.port) || (isSecure ? 443 : 80),
        method: 'GET',
        path: origin.pathname.replace(/\/+$/, '') + path,
        headers: { ...credentials, host: origin.host, accept: 'application/json' },
        timeout: readTimeoutMs,
      });
      request.once('response', resolve);
      request.once('timeout', () => request.destroy(new Error(`no answer within ${readTimeoutMs} ms`)));
      request.once('error', reject);
      request.end();
    });
    const chunks: Buffer[] = [];
    for await (const chunk of answer) chunks.push(chunk as Buffer);
    let json: unknown;
    try {
      json = JSON.parse(decoded(Buffer.concat(chunks), answer.headers['content-encoding']).toString('utf8'));
    } catch {
      json = undefined;
    }
    return { status: answer.statusCode ?? 0, json };
  }

  /** The reads the pre-trade limits may make for this order, with the keys it came with. */
  function brokerView(req: http.IncomingMessage): BrokerView {
    // Only the credentials: the data host is another host, and needs nothing else of the request.
    const credentials: http.OutgoingHttpHeaders = {};
    for (const name of ['apca-api-key-id', 'apca-api-secret-key', 'authorization']) if (req.headers[name] !== undefined) credentials[name] = req.headers[name];
    const read = async (origin: URL, originAgent: http.Agent, path: string, expect: number[] = [200]) => {
      const { status, json } = await readJson(origin, originAgent, path, credentials);
      if (!expect.includes(status)) throw new Error(`GET ${origin.host}${path.split('?')[0]} answered ${status}${messageOf(json)}`);
      return { status, json };
    };
    return {
      keys: keysDigest(['apca-api-key-id', 'apca-api-secret-key', 'authorization'].map((name) => String(req.headers[name] ?? ''))),
      async accountNumber() {
        const number = field((await read(upstream, agent, '/v2/account')).json, 'account_number');
        return typeof number === 'string' && number ? number : undefined;
      },
      async position(symbol) {
        const { status, json } = await read(upstream, agent, `/v2/positions/${encodeURIComponent(symbol)}`, [200, 404]);
        return status === 404 ? null : positionOf(json);
      },
      async latestTradePrice(symbol) {
        const pair = cryptoPair(symbol);
        // Alpaca's shapes: {"trades": {"BTC/USD": {"p": …}}} for crypto, {"symbol", "trade": {"p": …}} for equities.
        const price = pair
          ? field(field(field((await read(data, dataAgent, `/v1beta3/crypto/us/latest/trades?symbols=${encodeURIComponent(pair)}`)).json, 'trades'), pair), 'p')
          : field(field((await read(data, dataAgent, `/v2/stocks/${encodeURIComponent(symbol.trim().toUpperCase())}/trades/latest`)).json, 'trade'), 'p');
        const n = Number(price);
        if (typeof price !== 'number' && typeof price !== 'string') throw new Error(`${data.host} gave no latest trade for ${pair ?? symbol}`);
        if (!Number.isFinite(n) || n <= 0) throw new Error(`${data.host} gave ${JSON.stringify(price)} as the latest ${pair ?? symbol} trade price`);
        return n;
      },
      async openOrders() {
        const { json } = await read(upstream, agent, '/v2/orders?status=open&limit=500');
        if (!Array.isArray(json)) throw new Error('GET /v2/orders did not answer a list');
        return json.map(orderViewOf);
      },
      async order(orderId) {
        return orderViewOf((await read(upstream, agent, `/v2/orders/${encodeURIComponent(orderId)}`)).json);
      },
    };
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    // Decided on, and forwarded as, the request the broker will execute (routes.ts).
    const normalized = normalizeTarget(req.url ?? '/');
    if (!normalized) return sendError(res, 400, 40010000, `tradewarden order gate: ${JSON.stringify((req.url ?? '').slice(0, 200))} is not a request path`);
    const target = normalized.path + normalized.query;
    const route = routeOf(req.method ?? 'GET', normalized.path);
    if (route.kind === 'refuse') {
      logger.warn(`order gate refused ${req.method} ${(req.url ?? '').slice(0, 200)}: not a request it recognises`);
      return sendError(res, 403, REFUSED_CODE, `tradewarden order gate: ${route.why}.`);
    }
    if (route.kind !== 'order') {
      let answer: http.IncomingMessage;
      try {
        answer = await forward(req, target, undefined);
      } catch (error) {
        return unreachable(res, error);
      }
      if (route.kind === 'cancel' && answer.statusCode !== undefined && answer.statusCode >= 200 && answer.statusCode < 300) gate.canceled(route.orderId);
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, responseHeaders(answer));
      answer.pipe(res);
      return;
    }

    const body = await readBody(req, MAX_ORDER_BODY);
    if (body === undefined) return sendError(res, 413, 41310000, `tradewarden order gate: an order body larger than ${MAX_ORDER_BODY} bytes is not an order`);
    // An order with a client id of the gate's own can be looked up when its answer is lost, and is
    // known by it in the trade stream's events before its answer names its id.
    const { body: sent, clientOrderId } = withClientOrderId(body);
    const intent = { ...intentOf(body), ...(route.replaces ? { replaces: route.replaces } : {}), ...(clientOrderId ? { clientOrderId } : {}) };
    const admission = await gate.admit(peerOf(req.socket), intent, brokerView(req));
    if (!admission.forward || admission.ticket === undefined) {
      const refusal = admission.refusal!;
      return sendError(res, refusal.status, refusal.code, refusal.message, refusal.retryAfterSeconds !== undefined ? { 'retry-after': String(refusal.retryAfterSeconds) } : {});
    }
    const ticket = admission.ticket;
    let answer: http.IncomingMessage;
    let payload: Buffer;
    try {
      answer = await forward(req, target, sent);
      // The order's answer is read whole (it is small) to learn the new order's id.
      const chunks: Buffer[] = [];
      for await (const chunk of answer) chunks.push(chunk as Buffer);
      payload = Buffer.concat(chunks);
    } catch (error) {
      if (neverConnected(error)) {
        gate.settle(ticket, { accepted: false });
        return unreachable(res, error, 'not sent');
      }
      // Sent, and the answer lost (a reset, a time-out): ask the broker whether it has the order.
      const found = clientOrderId ? await lookUp(req, clientOrderId) : undefined;
      gate.settle(ticket, found === undefined ? { accepted: 'unknown' } : found === 'absent' ? { accepted: false } : { accepted: true, orderId: found });
      return unreachable(res, error, found === undefined ? 'unknown' : found === 'absent' ? 'not accepted' : { accepted: found, clientOrderId: clientOrderId! });
    }
    const status = answer.statusCode ?? 502;
    const accepted = status >= 200 && status < 300;
    // Read decoded (Alpaca's SDKs ask for gzip); the bytes go back to the trader as they came.
    const order = accepted ? orderOf(decoded(payload, answer.headers['content-encoding'])) : undefined;
    gate.settle(ticket, accepted ? { accepted: true, orderId: order?.id, ended: order?.endedUnfilled } : { accepted: false });
    if (route.replaces && accepted) gate.replaced(route.replaces);
    const headers = responseHeaders(answer);
    headers['content-length'] = String(payload.length);
    res.writeHead(status, answer.statusMessage, headers);
    res.end(payload);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      logger.error(`order gate: ${req.method} ${req.url}: ${describeError(error)}`);
      if (!res.headersSent) sendError(res, 500, 50010000, `tradewarden order gate: internal error (${describeError(error)}); nothing was sent to the broker`);
      else res.destroy();
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  // The trading stream (`/stream`, trade_updates): the upgrade request goes to the broker as it came,
  // and from then on both sockets are piped to each other.
  server.on('upgrade', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    // Only the stream's own handshake is piped: an upgrade of anything else (a POST /v2/orders with
    // `Upgrade: websocket`) would carry its request to the broker unchecked.
    const normalized = normalizeTarget(req.url ?? '/');
    if (req.method !== 'GET' || normalized?.path.replace(/\/+$/, '') !== STREAM_PATH) {
      logger.warn(`order gate refused an upgrade of ${req.method} ${(req.url ?? '').slice(0, 200)}: only GET ${STREAM_PATH} may be upgraded`);
      const body = JSON.stringify({ code: REFUSED_CODE, message: `tradewarden order gate: only the trading stream (GET ${STREAM_PATH}) may be upgraded; ${req.method} ${normalized?.path ?? req.url} is refused` });
      client.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      return;
    }
    const connectOptions = { host: upstream.hostname, port: upstreamPort };
    const broker = secure ? tls.connect({ ...connectOptions, servername: upstream.hostname }) : net.connect(connectOptions);
    const ready = secure ? 'secureConnect' : 'connect';
    let piped = false;
    broker.setTimeout(timeoutMs, () => broker.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    broker.once(ready, () => {
      broker.setTimeout(0);
      piped = true;
      broker.write(upgradeHead(req, basePath + normalized.path + normalized.query, upstream.host));
      if (head.length) broker.write(head);
      broker.pipe(client);
      client.pipe(broker);
    });
    broker.on('error', (error) => {
      if (!piped && client.writable) {
        const body = JSON.stringify({ code: 50210000, message: `tradewarden order gate: the broker's stream at ${upstream.host} could not be reached (${describeError(error)})` });
        client.end(`HTTP/1.1 502 Bad Gateway\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      } else client.destroy();
    });
    client.on('error', () => broker.destroy());
    broker.once('close', () => client.destroy());
    client.once('close', () => broker.destroy());
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new Error(
          error.code === 'EADDRINUSE'
            ? `GATEWAY_ADDR ${options.host}:${options.port} is already in use: another program (or another tradewarden) listens there; pick another port`
            : `the order gate could not listen on GATEWAY_ADDR ${options.host}:${options.port}: ${error.message}`,
          { cause: error },
        ),
      ),
    );
    server.listen(options.port, options.host, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  const shownHost = options.host === '0.0.0.0' ? '127.0.0.1' : options.host === '::' ? '[::1]' : options.host.includes(':') ? `[${options.host}]` : options.host;
  logger.info(`order gate listening on ${options.host}:${port} (${gate.mode}), forwarding to ${upstream.origin}`);
  return {
    url: `http://${shownHost}:${port}`,
    port,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      agent.destroy();
      dataAgent.destroy();
    },
  };
}

function requestLine(res: http.ServerResponse): string {
  return `${res.req.method} ${res.req.url}`;
}

function sendError(res: http.ServerResponse, status: number, code: number, message: string, headers: http.OutgoingHttpHeaders = {}): void {
  const body = JSON.stringify({ code, message });
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function forwardedHeaders(incoming: http.IncomingHttpHeaders, host: string): http.OutgoingHttpHeaders {
  const named = new Set(String(incoming.connection ?? '').split(',').map((h) => h.trim().toLowerCase()));
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name) || name === 'host') continue;
    out[name] = value;
  }
  out.host = host;
  return out;
}

function responseHeaders(answer: http.IncomingMessage): http.OutgoingHttpHeaders {
  const named = new Set(String(answer.headers.connection ?? '').split(',').map((h) => h.trim().toLowerCase()));
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(answer.headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/** The upgrade request as raw HTTP/1.1 at `target`, headers in their original case and order, Host rewritten. */
function upgradeHead(req: http.IncomingMessage, target: string, host: string): string {
  const lines = [`${req.method} ${target} HTTP/1.1`];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!;
    lines.push(`${name}: ${name.toLowerCase() === 'host' ? host : req.rawHeaders[i + 1]}`);
  }
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** Reads the whole body, or undefined past `limit` bytes. */
async function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** The order's fields for the alert; a body that is not JSON still gets a decision (and the broker's 4xx). */
function intentOf(body: Buffer): OrderIntent {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return {};
  }
  if (!parsed || typeof parsed !== 'object') return {};
  const o = parsed as Record<string, unknown>;
  const field = (name: string) => (typeof o[name] === 'string' || typeof o[name] === 'number' ? String(o[name]) : undefined);
  return { symbol: field('symbol'), side: field('side'), qty: field('qty'), notional: field('notional'), type: field('type'), limitPrice: field('limit_price'), stopPrice: field('stop_price') };
}

/** `value[name]` of a JSON object, undefined for anything else. */
function field(value: unknown, name: string): unknown {
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>)[name] : undefined;
}

/** A decimal of the broker's JSON (Alpaca sends them as strings), undefined when absent or not one. */
function decimalOf(value: unknown): number | undefined {
  if (value === null || value === undefined || value === '') return undefined;
  const n = Number(value);
  return (typeof value === 'string' || typeof value === 'number') && Number.isFinite(n) ? n : undefined;
}

/** GET /v2/positions/{symbol}'s answer, parsed: the signed qty and the current price. */
function positionOf(json: unknown): PositionView {
  const qty = decimalOf(field(json, 'qty'));
  if (qty === undefined) throw new Error(`GET /v2/positions answered a position without a qty`);
  // Alpaca's qty is signed for shorts; `side` says so too, for a broker that sends it unsigned.
  const signed = field(json, 'side') === 'short' ? -Math.abs(qty) : qty;
  const price = decimalOf(field(json, 'current_price'));
  return { qty: signed, ...(price !== undefined && price > 0 ? { currentPrice: price } : {}) };
}

/** One order of the broker's JSON, parsed. */
function orderViewOf(json: unknown): OrderView {
  const id = field(json, 'id');
  const symbol = field(json, 'symbol');
  const side = field(json, 'side');
  if (typeof id !== 'string' || typeof symbol !== 'string' || typeof side !== 'string') throw new Error('the broker answered an order without an id, symbol or side');
  const text = (name: string) => (typeof field(json, name) === 'string' ? (field(json, name) as string) : undefined);
  return {
    id,
    clientOrderId: text('client_order_id'),
    symbol,
    side,
    type: text('type'),
    qty: decimalOf(field(json, 'qty')),
    notional: decimalOf(field(json, 'notional')),
    filledQty: decimalOf(field(json, 'filled_qty')) ?? 0,
    limitPrice: decimalOf(field(json, 'limit_price')),
    stopPrice: decimalOf(field(json, 'stop_price')),
  };
}

/** ": <message>" of an Alpaca error body, for an error that says what the broker said. */
function messageOf(json: unknown): string {
  const message = field(json, 'message');
  return typeof message === 'string' ? `: ${message.slice(0, 200)}` : '';
}

/** Network failures in which the request never reached the broker (as src/broker/alpaca.ts knows them). */
const NEVER_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN']);
const neverConnected = (error: unknown) => NEVER_CONNECTED.has(String((error as NodeJS.ErrnoException).code));

/**
 * A JSON order without a client_order_id gets one of the gate's own (`twg-…`), so that an order
 * whose answer is lost can be looked up. The trader's own id, or a body that is not a JSON object,
 * is left as it is.
 */
function withClientOrderId(body: Buffer): { body: Buffer; clientOrderId?: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return { body };
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return { body };
  const order = parsed as Record<string, unknown>;
  if (typeof order.client_order_id === 'string' && order.client_order_id) return { body, clientOrderId: order.client_order_id };
  if (order.client_order_id !== undefined && order.client_order_id !== null && order.client_order_id !== '') return { body };
  const clientOrderId = `twg-${randomUUID()}`;
  return { body: Buffer.from(JSON.stringify({ ...order, client_order_id: clientOrderId })), clientOrderId };
}

/** The answer's bytes as the broker meant them: gzip, deflate and br undone (the raw bytes go back to the trader untouched). */
function decoded(payload: Buffer, encoding: string | string[] | undefined): Buffer {
  const codings = String(encoding ?? '').split(',').map((c) => c.trim().toLowerCase()).filter((c) => c && c !== 'identity').reverse();
  let bytes = payload;
  try {
    for (const coding of codings) {
      if (coding === 'gzip' || coding === 'x-gzip') bytes = zlib.gunzipSync(bytes);
      else if (coding === 'deflate') bytes = zlib.inflateSync(bytes);
      else if (coding === 'br') bytes = zlib.brotliDecompressSync(bytes);
      else return payload;
    }
  } catch {
    return payload;
  }
  return bytes;
}

/** Statuses of an order that will trade no more. */
const OVER = new Set(['canceled', 'expired', 'rejected', 'replaced', 'done_for_day']);

/** The order an answer describes: its id, and whether it is already over with nothing filled (an IOC that could not fill). */
function orderOf(payload: Buffer): { id?: string; endedUnfilled: boolean } | undefined {
  try {
    const parsed = JSON.parse(payload.toString('utf8')) as { id?: unknown; status?: unknown; filled_qty?: unknown };
    return {
      id: typeof parsed.id === 'string' ? parsed.id : undefined,
      endedUnfilled: typeof parsed.status === 'string' && OVER.has(parsed.status) && Number(parsed.filled_qty ?? 0) === 0,
    };
  } catch {
    return undefined;
  }
}
