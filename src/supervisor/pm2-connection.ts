// The one place that talks to PM2. One connection to the daemon of one PM2_HOME, in daemon mode
// (the trader must outlive the controller). Every call is serialized, bounded by a time-out, and
// its answer parsed into our own types at this edge.
//
// What PM2 7.0.4 does that shapes this file (read in node_modules/pm2/lib):
// - `new API({ pm2_home })` really uses that home for its socket files, but it does so by
//   Object.assign-ing the paths into PM2's module-global constants. One process can therefore drive
//   only one PM2 home; a second home is refused here rather than silently mixed.
// - The daemon it spawns gets `{ PM2_HOME: pm2_home, ...process.env }`: our own PM2_HOME, if set,
//   would win. connect() points process.env.PM2_HOME at the home for the duration of the spawn.
// - Concurrent cold connects each spawn a daemon (ping fails for all, all spawn). Connecting holds a
//   cross-process lock in the home, so one process spawns and the others find it.
// - Importing 'pm2' itself builds a default instance that creates ~/.pm2; we load lib/API.js.
// - Its RPC socket reconnects forever and an in-flight call's callback never fires when the daemon
//   dies. We turn reconnection off and treat a closed socket as "daemon gone".
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { failed, OperationError, describeError, withTimeout } from '../errors.ts';
import { Mutex, withFileLock } from '../lock.ts';
import type { Logger } from '../log.ts';
import { isAlive } from '../os/process-table.ts';
import { daemonPidOf } from '../os/pm2-daemon.ts';

/** A call that got no answer on the connection it had just made (the daemon may be brand new). */
class FreshConnectionTimeout extends OperationError {
  constructor(message: string, cause: unknown) {
    super('failed', message, { cause });
    this.name = 'FreshConnectionTimeout';
  }
}

/** One PM2 entry, as much of `pm2 jlist` as we use. */
export interface Pm2Entry {
  pmId: number;
  name: string;
  /** 0 when not running */
  pid: number;
  /** PM2's own status words: online, stopping, stopped, launching, errored, waiting restart, … */
  status: string;
  /** ms since epoch: start of the current run */
  startedAt?: number;
  restarts: number;
  unstableRestarts: number;
  cpuPercent?: number;
  memoryBytes?: number;
  exitCode: number | null;
  /** absolute script path */
  script: string;
  cwd?: string;
  outLogPath?: string;
  errLogPath?: string;
  killTimeoutMs?: number;
}

/** An app definition as PM2 takes it (from ecosystem.config.js). */
export type Pm2AppDefinition = Record<string, unknown>;

type Callback<T> = (error: unknown, value?: T) => void;

/** The slice of PM2's API class we call (lib/API.js). */
interface Pm2Api {
  connect(cb: Callback<unknown>): void;
  disconnect(cb: Callback<unknown>): void;
  list(cb: Callback<unknown>): void;
  start(config: { apps: Pm2AppDefinition[] }, opts: Record<string, never>, cb: Callback<unknown>): void;
  stop(id: string, cb: Callback<unknown>): void;
  delete(id: string, cb: Callback<unknown>): void;
  /** internals we rely on to notice a dead daemon; absent in other PM2 versions → time-outs only */
  Client?: { client_sock?: AxonSocket };
}

interface AxonSocket {
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  set?(key: string, value: unknown): unknown;
  retry?: number;
  connected?: boolean;
  close(): void;
}

type Pm2ApiClass = new (options: { pm2_home: string; daemon_mode: boolean }) => Pm2Api;

let Pm2ApiCtor: Pm2ApiClass | undefined;
let boundHome: string | undefined;

function loadPm2(): Pm2ApiClass {
  if (!Pm2ApiCtor) {
    // What pm2's index.js does before loading the API: quiet, programmatic use.
    process.env.PM2_PROGRAMMATIC = 'true';
    Pm2ApiCtor = createRequire(import.meta.url)('pm2/lib/API.js') as Pm2ApiClass;
  }
  return Pm2ApiCtor;
}

interface Session {
  api: Pm2Api;
  /** set when the daemon went away under us */
  lostReason?: string;
  onLost: Set<(reason: string) => void>;
  closing: boolean;
}

export interface Pm2ConnectionOptions {
  pm2Home: string;
  logger: Logger;
  /** bound on one ordinary call (list, delete) */
  callTimeoutMs?: number;
  /** bound on connecting, including spawning a daemon */
  connectTimeoutMs?: number;
  /**
   * For short-lived processes (the CLI): while there is no session, list() asks a running daemon
   * over a one-off RPC socket (pm2-rpc.ts) instead of loading PM2's client and connecting. When
   * no daemon answers that way, list() connects as usual (spawning one if needed).
   */
  lightReads?: boolean;
}

export class Pm2Connection {
  readonly pm2Home: string;
  private readonly logger: Logger;
  private readonly callTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly lightReads: boolean;
  private readonly queue = new Mutex();
  private session: Session | undefined;
  private closed = false;

  constructor(options: Pm2ConnectionOptions) {
    this.pm2Home = path.resolve(options.pm2Home);
    if (boundHome !== undefined && boundHome !== this.pm2Home) {
      throw new OperationError(
        'usage',
        `this process already drives the PM2 daemon at ${boundHome}; PM2 keeps its paths in module-global state, so one process can drive only one PM2_HOME (asked for ${this.pm2Home})`,
      );
    }
    boundHome = this.pm2Home;
    this.logger = options.logger;
    this.callTimeoutMs = options.callTimeoutMs ?? 5000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 15_000;
    this.lightReads = options.lightReads ?? false;
  }

  /** Where the daemon writes its own log (used to tell a forced kill from a graceful one). */
  get daemonLogPath(): string {
    return path.join(this.pm2Home, 'pm2.log');
  }

  async list(): Promise<Pm2Entry[]> {
    // A read: safe to ask again on a fresh connection when a just-spawned daemon misses its first answer.
    const raw = (await this.lightList()) ?? (await this.call<unknown>('list', (api, cb) => api.list(cb), this.callTimeoutMs, { retryOnFreshConnection: true }));
    if (!Array.isArray(raw)) throw failed(`PM2 list returned ${typeof raw}, expected a list`);
    return raw.map(parseEntry).filter((e): e is Pm2Entry => e !== undefined);
  }

  /** The list over a one-off RPC socket (lightReads, no session yet); undefined to connect instead. */
  private async lightList(): Promise<unknown[] | undefined> {
    if (!this.lightReads || this.session || this.closed) return undefined;
    const { readPm2List } = await import('./pm2-rpc.ts');
    return this.queue.run(async () => {
      if (this.session) return undefined; // a change connected meanwhile: use its session
      try {
        const raw = await readPm2List(this.pm2Home, this.callTimeoutMs);
        return Array.isArray(raw) ? raw : undefined;
      } catch (error) {
        this.logger.debug(`PM2 list without a session: ${describeError(error)}; connecting`);
        return undefined;
      }
    });
  }

  /** Starts one app. PM2 may answer without error yet start nothing: callers confirm with list(). */
  async start(app: Pm2AppDefinition, timeoutMs: number): Promise<void> {
    // PM2 decorates the object it is given; hand it a copy.
    const copy = structuredClone(app);
    await this.call('start', (api, cb) => api.start({ apps: [copy] }, {}, cb), timeoutMs);
  }

  /** Graceful stop of one entry: SIGINT to the tree, SIGKILL after its kill_timeout. */
  async stop(pmId: number, timeoutMs: number): Promise<void> {
    await this.call('stop', (api, cb) => api.stop(String(pmId), cb), timeoutMs);
  }

  /** Removes one entry (stopping it first, like stop). By pm_id: a name could be 'all' or a regex. */
  async delete(pmId: number, timeoutMs: number): Promise<void> {
    await this.call('delete', (api, cb) => api.delete(String(pmId), cb), timeoutMs);
  }

  /** Disconnects; the daemon and the trader keep running. */
  async close(): Promise<void> {
    this.closed = true;
    await this.queue.run(async () => {
      const session = this.session;
      this.session = undefined;
      if (session) await this.discard(session);
    });
  }

  private call<T>(
    what: string,
    invoke: (api: Pm2Api, cb: Callback<T>) => void,
    timeoutMs = this.callTimeoutMs,
    options: { retryOnFreshConnection?: boolean } = {},
  ): Promise<T> {
    return this.queue.run(async () => {
      try {
        return await this.callOnce(what, invoke, timeoutMs);
      } catch (error) {
        // Seen after the daemon was SIGKILLed: the reconnect spawns a new daemon, yet the first list
        // on that connection is never answered. A read may be asked once more, on a new connection;
        // a change (start, stop, delete) never is: the daemon may have acted on it.
        if (!options.retryOnFreshConnection || !(error instanceof FreshConnectionTimeout)) throw error;
        this.logger.warn(`PM2 ${what}: no answer on a fresh connection to ${this.pm2Home}; connecting again`);
        return this.callOnce(what, invoke, timeoutMs);
      }
    });
  }

  private async callOnce<T>(what: string, invoke: (api: Pm2Api, cb: Callback<T>) => void, timeoutMs: number): Promise<T> {
    if (this.closed) throw failed(`PM2 connection to ${this.pm2Home} is closed`);
    const fresh = this.session === undefined;
    const session = await this.ensureSession();
    let onLost: ((reason: string) => void) | undefined;
    const lost = new Promise<never>((_, reject) => {
      onLost = (reason) => reject(failed(reason));
      session.onLost.add(onLost);
    });
    const answer = new Promise<T>((resolve, reject) => {
      try {
        invoke(session.api, (error, value) => (error ? reject(asError(error)) : resolve(value as T)));
      } catch (error) {
        reject(asError(error));
      }
    });
    try {
      return await withTimeout(Promise.race([answer, lost]), timeoutMs, `PM2 ${what}`);
    } catch (error) {
      // Our own errors (time-out, socket lost) mean the daemon is in doubt: drop the session so
      // the next call connects afresh. PM2's errors are plain Errors and leave it alone.
      if (error instanceof OperationError) {
        this.session = undefined;
        await this.discard(session);
        const notAnswering = this.notAnswering(`${what}: ${error.message}`, error);
        throw fresh ? new FreshConnectionTimeout(notAnswering.message, error) : notAnswering;
      }
      throw failed(`PM2 ${what} failed: ${describeError(error)}`, error);
    } finally {
      if (onLost) session.onLost.delete(onLost);
      lost.catch(() => undefined);
    }
  }

  /**
   * The current session, or a new one. A session whose daemon died between calls fails this call
   * with a clear error and is dropped, so the *next* call reconnects (spawning a new daemon if
   * needed). We do not silently start a new daemon in the same call: the old daemon's trader may
   * still be running as an orphan, and the caller should hear that PM2 lost track of it.
   */
  private async ensureSession(): Promise<Session> {
    const current = this.session;
    if (current && current.lostReason === undefined) return current;
    if (current) {
      this.session = undefined;
      await this.discard(current);
      throw this.notAnswering(current.lostReason!);
    }
    this.session = await this.connect();
    return this.session;
  }

  private async connect(): Promise<Session> {
    const Api = loadPm2();
    fs.mkdirSync(this.pm2Home, { recursive: true });
    // Invariant 1: held from before the first ping until the daemon answers, so concurrent cold
    // connects (CLI, Discord bot, a second controller) spawn one daemon, not one each.
    return withFileLock(
      path.join(this.pm2Home, 'tradewarden-connect'),
      async () => {
        const api = new Api({ pm2_home: this.pm2Home, daemon_mode: true });
        const session: Session = { api, onLost: new Set(), closing: false };
        const previousHome = process.env.PM2_HOME;
        process.env.PM2_HOME = this.pm2Home; // the spawned daemon inherits our env over its own option
        // …and would keep the controller's Discord token in its environment for its whole life.
        const withheld = withholdFromDaemon();
        try {
          await withTimeout(
            new Promise<void>((resolve, reject) => api.connect((error) => (error ? reject(asError(error)) : resolve()))),
            this.connectTimeoutMs,
            `connecting to the PM2 daemon at ${this.pm2Home}`,
          );
        } catch (error) {
          await this.discard(session);
          throw this.notAnswering(`could not connect: ${describeError(error)}`, error);
        } finally {
          if (previousHome === undefined) delete process.env.PM2_HOME;
          else process.env.PM2_HOME = previousHome;
          Object.assign(process.env, withheld);
        }
        this.watchSocket(session);
        this.logger.debug(`connected to PM2 daemon at ${this.pm2Home}${this.daemonPid() ? ` (pid ${this.daemonPid()})` : ''}`);
        return session;
      },
      { what: 'another process connecting to the PM2 daemon', waitMs: this.connectTimeoutMs + 5000 },
    );
  }

  /** Notices the daemon's death: its RPC socket closes. Reconnection is turned off (see top). */
  private watchSocket(session: Session): void {
    const sock = session.api.Client?.client_sock;
    if (!sock || typeof sock.on !== 'function') return; // other PM2 versions: time-outs still apply
    sock.set?.('retry timeout', 0);
    sock.retry = 0;
    const lose = (why: string) => {
      if (session.closing || session.lostReason !== undefined) return;
      session.lostReason = why;
      this.logger.warn(`PM2 daemon at ${this.pm2Home}: ${why}`);
      for (const notify of session.onLost) notify(why);
    };
    sock.on('close', () => lose('the connection to the daemon closed'));
    // Without a listener, an unexpected socket error would crash the whole controller.
    sock.on('error', (error) => lose(`socket error: ${describeError(error)}`));
  }

  /** Best-effort disconnect of a session; never throws, never waits long. */
  private async discard(session: Session): Promise<void> {
    if (session.closing) return;
    session.closing = true;
    await withTimeout(
      new Promise<void>((resolve) => {
        try {
          session.api.disconnect(() => resolve());
        } catch {
          resolve();
        }
      }),
      2000,
      'PM2 disconnect',
    ).catch(() => undefined);
    // PM2 leaves a socket that is not connected open (and reconnecting); close it ourselves.
    try {
      session.api.Client?.client_sock?.close();
    } catch {
      // already closed
    }
  }

  daemonPid(): number | undefined {
    return daemonPidOf(this.pm2Home);
  }

  private notAnswering(detail: string, cause?: unknown): OperationError {
    const pid = this.daemonPid();
    const where = pid === undefined ? '' : isAlive(pid) ? ` (daemon pid ${pid} is alive)` : ` (its process ${pid} is gone)`;
    return failed(`PM2 daemon at ${this.pm2Home} is not answering${where}: ${detail}. The next request reconnects (and starts a new daemon if needed).`, cause);
  }
}

/** Environment the PM2 daemon has no use for: removed while it may be spawned, then put back. */
const NOT_FOR_THE_DAEMON = ['DISCORD_TOKEN', 'HEALTHCHECK_URL'] as const;

function withholdFromDaemon(): Record<string, string> {
  const withheld: Record<string, string> = {};
  for (const name of NOT_FOR_THE_DAEMON) {
    const value = process.env[name];
    if (value === undefined) continue;
    withheld[name] = value;
    delete process.env[name];
  }
  return withheld;
}

function asError(value: unknown): Error {
  if (value instanceof Error) return value;
  // PM2's start answers a list of Errors ("Script not found: …"); JSON would show them as [{}].
  if (Array.isArray(value)) {
    const messages = value.map((v) => asError(v).message).filter((m) => m && m !== '{}');
    return new Error(messages.length ? messages.join('; ') : 'PM2 gave no reason');
  }
  if (value && typeof value === 'object' && 'msg' in value) return new Error(String((value as { msg: unknown }).msg));
  if (value && typeof value === 'object' && typeof (value as { message?: unknown }).message === 'string') return new Error((value as { message: string }).message);
  return new Error(typeof value === 'string' ? value : JSON.stringify(value));
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** One element of PM2's getMonitorData answer → Pm2Entry (undefined if it is not shaped like one). */
export function parseEntry(raw: unknown): Pm2Entry | undefined {
  if (!raw || typeof raw !== 'object') return undefined;
  const r = raw as Record<string, unknown>;
  const env = (r.pm2_env && typeof r.pm2_env === 'object' ? r.pm2_env : {}) as Record<string, unknown>;
  const monit = (r.monit && typeof r.monit === 'object' ? r.monit : {}) as Record<string, unknown>;
  const pmId = num(r.pm_id) ?? num(env.pm_id);
  const name = str(r.name) ?? str(env.name);
  if (pmId === undefined || name === undefined) return undefined;
  const status = str(env.status) ?? 'unknown';
  const exit = env.exit_code;
  return {
    pmId,
    name,
    pid: num(r.pid) ?? 0,
    status,
    startedAt: num(env.pm_uptime),
    restarts: num(env.restart_time) ?? 0,
    unstableRestarts: num(env.unstable_restarts) ?? 0,
    cpuPercent: num(monit.cpu),
    memoryBytes: num(monit.memory),
    exitCode: typeof exit === 'number' ? exit : null,
    script: path.resolve(str(env.pm_exec_path) ?? ''),
    cwd: str(env.pm_cwd),
    outLogPath: str(env.pm_out_log_path),
    errLogPath: str(env.pm_err_log_path),
    killTimeoutMs: num(env.kill_timeout),
  };
}
