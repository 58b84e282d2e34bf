// The stand-in's gateway: a `ws` server on the stand-in's HTTP port speaking Discord's gateway v10
// as @discordjs/ws 1.2 expects it. JSON encoding; `compress=zlib-stream` (asked for only when the
// optional zlib-sync package is installed) and IDENTIFY `compress: true` are both honoured.
import type { IncomingMessage, Server } from 'node:http';
import zlib from 'node:zlib';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import { isJsonObject, type JsonObject } from './discord-model.ts';

const Op = {
  Dispatch: 0,
  Heartbeat: 1,
  Identify: 2,
  PresenceUpdate: 3,
  Resume: 6,
  Reconnect: 7,
  InvalidSession: 9,
  Hello: 10,
  HeartbeatAck: 11,
} as const;

export interface GatewayConnection {
  id: number;
  /** Request path: '/' for the gateway URL, '/resume' for READY's resume_gateway_url. */
  path: string;
  query: Record<string, string>;
  transportCompression: 'zlib-stream' | null;
  openedAt: number;
  sessionId: string | null;
  closedAt?: number;
  closeCode?: number;
  closedBy?: 'client' | 'stand-in';
}

export interface GatewayIdentify {
  connectionId: number;
  sessionId: string;
  intents: number;
  compress: boolean;
  shard: unknown;
  properties: JsonObject;
  at: number;
}

export interface GatewayResume {
  connectionId: number;
  sessionId: string;
  /** The sequence the client said it had seen. */
  seq: number;
  accepted: boolean;
  /** Dispatches sent again because the client had missed them. */
  replayed: number;
  at: number;
}

export interface DropOptions {
  /** Close code; 4000 (unknown error) makes @discordjs/ws resume. 1000 makes it re-identify (throttled 5 s). */
  code?: number;
  /** Cut the TCP connection without a close frame (client sees 1006; @discordjs/ws resumes). */
  abnormal?: boolean;
}

interface Dispatch {
  s: number;
  t: string;
  d: JsonObject;
}

class Session {
  seq = 0;
  readonly sent: Dispatch[] = [];
  connection: Connection | null = null;
  constructor(readonly id: string) {}
}

class Connection {
  session: Session | null = null;
  private readonly deflate: zlib.Deflate | null;
  private identifyCompress = false;
  private sendChain: Promise<void> = Promise.resolve();
  constructor(
    readonly socket: WebSocket,
    readonly record: GatewayConnection,
  ) {
    this.deflate = record.transportCompression === 'zlib-stream' ? zlib.createDeflate() : null;
  }

  useIdentifyCompression(): void {
    this.identifyCompress = true;
  }

  /** Sends in order; compression is asynchronous, so every payload queues behind the previous one. */
  send(payload: JsonObject): void {
    const text = JSON.stringify(payload);
    this.sendChain = this.sendChain
      .then(async () => {
        const frame = await this.encode(text);
        if (this.socket.readyState === this.socket.OPEN) this.socket.send(frame, { binary: typeof frame !== 'string' });
      })
      .catch(() => undefined);
  }

  private async encode(text: string): Promise<string | Buffer> {
    const deflate = this.deflate;
    if (deflate) {
      // One zlib context for the connection's life, each payload ending in a sync flush (00 00 ff ff).
      return new Promise<Buffer>((resolve) => {
        const chunks: Buffer[] = [];
        const collect = (chunk: Buffer) => chunks.push(chunk);
        deflate.on('data', collect);
        deflate.write(text);
        deflate.flush(zlib.constants.Z_SYNC_FLUSH, () => {
          deflate.off('data', collect);
          resolve(Buffer.concat(chunks));
        });
      });
    }
    if (this.identifyCompress) return zlib.deflateSync(text);
    return text;
  }

  close(): void {
    this.deflate?.close();
  }
}

export interface GatewayOptions {
  token: string;
  /** ws://host:port of this gateway; READY's resume_gateway_url is `${publicUrl}/resume`. */
  publicUrl: string;
  heartbeatIntervalMs: number;
  /** READY's `d` minus session_id / resume_gateway_url, which the gateway fills in. */
  readyData(): JsonObject;
  /** GUILD_CREATE payloads sent right after READY, one per guild. */
  guildCreates(): JsonObject[];
  nextSessionId(): string;
  changed(): void;
}

export class Gateway {
  readonly connections: GatewayConnection[] = [];
  readonly identifies: GatewayIdentify[] = [];
  readonly resumes: GatewayResume[] = [];
  /** Sequence numbers the client sent with its heartbeats, newest last. */
  readonly heartbeats: (number | null)[] = [];
  /** Payloads the client sent that the stand-in does not act on (presence updates, …). */
  readonly otherPayloads: JsonObject[] = [];
  /** The Presence Update (op 3) payloads' `d`, oldest first: what the bot showed as its status. */
  get presenceUpdates(): JsonObject[] {
    return this.otherPayloads.filter((p) => p.op === 3).map((p) => (isJsonObject(p.d) ? p.d : {}));
  }
  /** Set to false to stop answering heartbeats; @discordjs/ws then treats the link as a zombie. */
  acknowledgeHeartbeats = true;

  private readonly server: WebSocketServer;
  private readonly sessions = new Map<string, Session>();
  private readonly live = new Set<Connection>();
  private current: Session | null = null;

  constructor(
    http: Server,
    private readonly options: GatewayOptions,
  ) {
    this.server = new WebSocketServer({ server: http });
    this.server.on('connection', (socket, request) => this.accept(socket, request));
  }

  /** The session that receives dispatches: the one most recently identified. */
  get sessionId(): string | null {
    return this.current?.id ?? null;
  }

  /** True while the current session has an open, identified or resumed socket. */
  get connected(): boolean {
    return this.current?.connection != null;
  }

  /**
   * Sends an event to the current session. A session between sockets keeps it for RESUME, as
   * Discord does, so an interaction dispatched during an outage still arrives after the resume.
   */
  dispatch(t: string, d: JsonObject): { sessionId: string; seq: number; delivered: boolean } {
    const session = this.current;
    if (!session) throw new Error('Discord stand-in: no gateway session yet (has the client logged in?)');
    const event: Dispatch = { s: ++session.seq, t, d };
    session.sent.push(event);
    session.connection?.send({ op: Op.Dispatch, ...event });
    return { sessionId: session.id, seq: event.s, delivered: session.connection !== null };
  }

  /** Closes the current session's socket; the session stays resumable. */
  drop(options: DropOptions = {}): void {
    const connection = this.current?.connection;
    if (!connection) throw new Error('Discord stand-in: no open gateway connection to drop');
    this.detach(connection, options.abnormal ? 1006 : (options.code ?? 4000), 'stand-in');
    if (options.abnormal) connection.socket.terminate();
    else connection.socket.close(options.code ?? 4000, 'Dropped by the Discord stand-in');
  }

  /** Op 7: asks the client to reconnect and resume, as Discord does before maintenance. */
  requestReconnect(): void {
    const connection = this.current?.connection;
    if (!connection) throw new Error('Discord stand-in: no open gateway connection');
    connection.send({ op: Op.Reconnect, d: null });
  }

  async close(): Promise<void> {
    for (const connection of this.live) {
      connection.socket.terminate();
      connection.close();
    }
    this.live.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: WebSocket, request: IncomingMessage): void {
    const url = new URL(request.url ?? '/', 'ws://stand-in');
    const query = Object.fromEntries(url.searchParams);
    const record: GatewayConnection = {
      id: this.connections.length + 1,
      path: url.pathname,
      query,
      transportCompression: query.compress === 'zlib-stream' ? 'zlib-stream' : null,
      openedAt: Date.now(),
      sessionId: null,
    };
    this.connections.push(record);
    const connection = new Connection(socket, record);
    this.live.add(connection);
    socket.on('close', (code) => {
      this.live.delete(connection);
      connection.close();
      this.detach(connection, code, 'client');
    });
    socket.on('error', () => undefined);
    socket.on('message', (data, isBinary) => this.receive(connection, data, isBinary));
    this.options.changed();

    // Refuse what this stand-in cannot speak the way Discord refuses a bad version or encoding.
    if (query.v !== '10') return this.refuse(connection, 4012, 'Invalid API version');
    if (query.encoding !== undefined && query.encoding !== 'json') return this.refuse(connection, 4002, 'Stand-in speaks JSON only');
    if (query.compress !== undefined && query.compress !== 'zlib-stream') return this.refuse(connection, 4000, `Unsupported compress=${query.compress}`);

    connection.send({ op: Op.Hello, d: { heartbeat_interval: this.options.heartbeatIntervalMs, _trace: ['stand-in'] } });
  }

  private refuse(connection: Connection, code: number, reason: string): void {
    this.detach(connection, code, 'stand-in');
    connection.socket.close(code, reason);
  }

  private detach(connection: Connection, code: number, by: 'client' | 'stand-in'): void {
    if (connection.record.closedAt === undefined) {
      connection.record.closedAt = Date.now();
      connection.record.closeCode = code;
      connection.record.closedBy = by;
    }
    if (connection.session?.connection === connection) connection.session.connection = null;
    this.options.changed();
  }

  private receive(connection: Connection, data: RawData, isBinary: boolean): void {
    let payload: unknown;
    try {
      payload = isBinary ? null : JSON.parse(data.toString());
    } catch {
      payload = null;
    }
    if (!isJsonObject(payload)) return this.refuse(connection, 4002, 'Decode error');
    switch (payload.op) {
      case Op.Heartbeat:
        this.heartbeats.push(typeof payload.d === 'number' ? payload.d : null);
        if (this.acknowledgeHeartbeats) connection.send({ op: Op.HeartbeatAck });
        this.options.changed();
        return;
      case Op.Identify:
        return this.identify(connection, isJsonObject(payload.d) ? payload.d : {});
      case Op.Resume:
        return this.resume(connection, isJsonObject(payload.d) ? payload.d : {});
      default:
        if (!connection.session) return this.refuse(connection, 4003, 'Not authenticated');
        this.otherPayloads.push(payload);
        this.options.changed();
    }
  }

  private identify(connection: Connection, d: JsonObject): void {
    if (d.token !== this.options.token) return this.refuse(connection, 4004, 'Authentication failed');
    if (connection.session) return this.refuse(connection, 4005, 'Already authenticated');
    if (d.compress === true && !connection.record.transportCompression) connection.useIdentifyCompression();

    const session = new Session(this.options.nextSessionId());
    this.sessions.set(session.id, session);
    this.current = session;
    session.connection = connection;
    connection.session = session;
    connection.record.sessionId = session.id;
    this.identifies.push({
      connectionId: connection.record.id,
      sessionId: session.id,
      intents: typeof d.intents === 'number' ? d.intents : 0,
      compress: d.compress === true,
      shard: d.shard,
      properties: isJsonObject(d.properties) ? d.properties : {},
      at: Date.now(),
    });
    this.dispatch('READY', {
      ...this.options.readyData(),
      session_id: session.id,
      resume_gateway_url: `${this.options.publicUrl}/resume`,
    });
    for (const guild of this.options.guildCreates()) this.dispatch('GUILD_CREATE', guild);
    this.options.changed();
  }

  private resume(connection: Connection, d: JsonObject): void {
    const session = typeof d.session_id === 'string' ? this.sessions.get(d.session_id) : undefined;
    const seq = typeof d.seq === 'number' ? d.seq : 0;
    const record: GatewayResume = {
      connectionId: connection.record.id,
      sessionId: String(d.session_id),
      seq,
      accepted: false,
      replayed: 0,
      at: Date.now(),
    };
    this.resumes.push(record);
    if (d.token !== this.options.token) return this.refuse(connection, 4004, 'Authentication failed');
    if (!session || seq > session.seq) {
      // Not resumable: the client must identify afresh.
      connection.send({ op: Op.InvalidSession, d: false });
      this.options.changed();
      return;
    }
    if (session.connection && session.connection !== connection) {
      const stale = session.connection;
      this.detach(stale, 4009, 'stand-in');
      stale.socket.close(4009, 'Session resumed elsewhere');
    }
    session.connection = connection;
    connection.session = session;
    connection.record.sessionId = session.id;
    const missed = session.sent.filter((event) => event.s > seq);
    for (const event of missed) connection.send({ op: Op.Dispatch, ...event });
    // RESUMED carries no sequence number, so discord.js's shardResume count equals the replay.
    connection.send({ op: Op.Dispatch, t: 'RESUMED', s: null, d: { _trace: ['stand-in'] } });
    record.accepted = true;
    record.replayed = missed.length;
    this.options.changed();
  }
}
