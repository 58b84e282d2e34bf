// The controller's control socket: a Unix socket that is both the controller's singleton
// (invariant 7) and its local control channel (`tradewarden health`, and more requests later).
//
// Why a socket and not a lock file: a lock file outlives a SIGKILLed holder (proper-lockfile's lock
// stayed "fresh" for 10 s, and PM2 burnt its whole restart budget on refusals). The kernel closes a
// dead process's listening socket at once, so connecting to it is refused: whoever starts next knows
// the old controller is gone, without waiting for anything to go stale.
//
// Taking it: bind; on EADDRINUSE connect to it: accepted → a live controller, refuse; refused or
// gone → stale, unlink and bind again. Two starters finding the same stale socket could otherwise
// both unlink-and-bind, the second removing the first's fresh socket (two live controllers): the
// probe-unlink-bind step runs under a short cross-process lock (milliseconds, never held for the
// controller's life; if its holder dies it goes stale after 2 s).
//
// Where: DATA_DIR/controller.sock, DATA_DIR's real path (symlinks resolved): one controller per
// folder however it is spelt. A socket path is limited to 107 bytes on Linux (103 on macOS); for a
// deeper DATA_DIR the socket lives in a private folder, /tmp/tradewarden-<uid>/ (mode 0700; fixed,
// not TMPDIR, which differs between shells), named by a hash of the real DATA_DIR, so the controller
// and the CLI find the same one from any shell of the user. Only the owner can connect (mode 0600).
//
// Protocol: JSON lines over the socket, request → response, answered in order on one connection.
//   request:  {"id"?: any, "op": "<name>", "args"?: {...}}
//   response: {"id": <same>, "ok": true, "result": <op's result>}
//             {"id": <same>, "ok": false, "error": "<message>", "kind"?: "refused"|"usage"|"failed"}
//   A line longer than 64 KiB is answered {"id": null, "ok": false, ...} and the connection closed.
// Operations: "hello" → {pid, dataDir, startedAt, ops: [the ops it serves]}; every other op is registered with
// ControlServer.handle(op, handler) by the module that owns it ("health": see src/health/).
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { OperationError, describeError, failed, refused } from '../errors.ts';
import { withFileLock } from '../lock.ts';
import type { Logger } from '../log.ts';
import { securePrivateDataDir } from '../store/data-dir.ts';
import { ControlUnavailable, controlSocketPath, requestControlAt } from './client.ts';

// The client side lives in client.ts (the CLI loads only that); re-exported for the server's users.
export { ControlUnavailable, MAX_SOCKET_PATH_BYTES, controlSocketPath, requestControl } from './client.ts';

/** A request line longer than this is refused (the protocol carries small JSON objects). */
const MAX_LINE_BYTES = 64 * 1024;

export interface ControlRequest {
  id?: unknown;
  op: string;
  args?: Record<string, unknown>;
}

export type ControlHandler = (args: Record<string, unknown>) => unknown;

/** Creates (or checks) the private folder for fallback sockets: ours, not a symlink, mode 0700. */
function ensurePrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stat = fs.lstatSync(dir);
  const uid = typeof process.getuid === 'function' ? process.getuid() : stat.uid;
  if (!stat.isDirectory() || stat.uid !== uid) {
    throw refused(`${dir} is not a directory owned by this user; remove it (the controller keeps its socket there when DATA_DIR is deep)`);
  }
  if ((stat.mode & 0o077) !== 0) fs.chmodSync(dir, 0o700);
}

export interface ControlServerOptions {
  dataDir: string;
  logger: Logger;
  /** How long a start waits for another start's takeover step (default 10 s). */
  takeoverWaitMs?: number;
}

/** The listening side: held by the one controller of a DATA_DIR. */
export class ControlServer {
  private readonly handlers = new Map<string, ControlHandler>();
  private readonly sockets = new Set<net.Socket>();
  private closed?: Promise<void>;

  private constructor(
    private readonly server: net.Server,
    readonly socketPath: string,
    private readonly logger: Logger,
    dataDir: string,
  ) {
    const startedAt = new Date().toISOString();
    this.handle('hello', () => ({ pid: process.pid, dataDir, startedAt, ops: [...this.handlers.keys()] }));
    server.on('connection', (socket) => this.serve(socket));
  }

  /**
   * Becomes the controller of `dataDir`, or refuses (kind 'refused') when a live one serves it.
   * A socket left by a dead controller is taken over at once.
   */
  static async listen(options: ControlServerOptions): Promise<ControlServer> {
    // The controller's first touch of DATA_DIR: created (or tightened) owner-only before anything is written.
    securePrivateDataDir(path.resolve(options.dataDir), options.logger);
    const dataDir = fs.realpathSync(options.dataDir);
    const socketPath = controlSocketPath(dataDir);
    if (path.dirname(socketPath) !== dataDir) {
      ensurePrivateDir(path.dirname(socketPath));
      options.logger.info(`DATA_DIR is too deep for a socket path; the control socket is ${socketPath}`);
    }
    const server = net.createServer();
    await withFileLock(
      path.join(dataDir, 'controller-takeover'),
      async () => {
        for (let attempt = 0; ; attempt++) {
          try {
            await bind(server, socketPath);
            return;
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 2) {
              throw failed(`cannot listen on the control socket ${socketPath}: ${describeError(error)}`, error);
            }
          }
          const holder = await probe(socketPath);
          if (holder.live) {
            throw refused(
              `another tradewarden controller${holder.pid ? ` (PID ${holder.pid})` : ''} serves ${dataDir} (its socket ${socketPath} answers); only one may run per DATA_DIR`,
            );
          }
          const stat = fs.lstatSync(socketPath, { throwIfNoEntry: false });
          if (stat && !stat.isSocket()) {
            throw refused(`${socketPath} exists and is not a socket; remove it (it is where the controller listens)`);
          }
          // The kernel refused the connection: its owner is dead. Take its place.
          fs.rmSync(socketPath, { force: true });
        }
      },
      { waitMs: options.takeoverWaitMs ?? 10_000, staleMs: 2000, what: 'another controller starting on this DATA_DIR' },
    );
    return new ControlServer(server, socketPath, options.logger, dataDir);
  }

  /** Registers an operation; a handler may return a value or a promise, and throw to answer an error. */
  handle(op: string, handler: ControlHandler): void {
    this.handlers.set(op, handler);
  }

  /** Stops listening (which removes the socket file) and ends open connections. */
  close(): Promise<void> {
    this.closed ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const socket of this.sockets) socket.destroy();
    });
    return this.closed;
  }

  private serve(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setEncoding('utf8');
    let buffer = '';
    let queue = Promise.resolve();
    // Not our protocol (or a runaway client): answer once, after the answers already due, and hang up.
    const tooLong = () => {
      buffer = '';
      socket.removeAllListeners('data');
      queue = queue.then(() => {
        socket.end(JSON.stringify({ id: null, ok: false, error: `request longer than ${MAX_LINE_BYTES} bytes` }) + '\n');
      });
    };
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        // Every line is measured, whether its newline came in the same chunk or later.
        const raw = buffer.slice(0, newline);
        if (Buffer.byteLength(raw) > MAX_LINE_BYTES) return tooLong();
        const line = raw.trim();
        buffer = buffer.slice(newline + 1);
        if (!line) continue;
        // Answers go out in request order, one at a time.
        queue = queue.then(async () => {
          const response = await this.answer(line);
          if (!socket.destroyed) socket.write(JSON.stringify(response) + '\n');
        });
      }
      // A line still without its newline is refused as soon as it is too long, not when it ends.
      if (Buffer.byteLength(buffer) > MAX_LINE_BYTES) tooLong();
    });
  }

  private async answer(line: string): Promise<Record<string, unknown>> {
    let request: ControlRequest;
    try {
      request = parseRequest(JSON.parse(line));
    } catch (error) {
      return { id: null, ok: false, error: `bad request: ${describeError(error)}` };
    }
    const handler = this.handlers.get(request.op);
    if (!handler) return { id: request.id ?? null, ok: false, error: `unknown op "${request.op}" (known: ${[...this.handlers.keys()].join(', ')})` };
    try {
      return { id: request.id ?? null, ok: true, result: await handler(request.args ?? {}) };
    } catch (error) {
      this.logger.debug(`control op ${request.op}: ${describeError(error)}`);
      return { id: request.id ?? null, ok: false, error: describeError(error), ...(error instanceof OperationError ? { kind: error.kind } : {}) };
    }
  }
}

function parseRequest(value: unknown): ControlRequest {
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('expected a JSON object');
  const { id, op, args } = value as Record<string, unknown>;
  if (typeof op !== 'string' || !op) throw new Error('"op" must be a non-empty string');
  if (args !== undefined && (!args || typeof args !== 'object' || Array.isArray(args))) throw new Error('"args" must be an object');
  return { id, op, args: args as Record<string, unknown> | undefined };
}

/** Binds with the process umask narrowed, so the socket is created 0600 (no window where others may connect). */
function bind(server: net.Server, socketPath: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => {
      server.off('listening', onListening);
      reject(error);
    };
    const onListening = () => {
      server.off('error', onError);
      try {
        fs.chmodSync(socketPath, 0o600);
      } catch {
        // The socket is already 0600 from the umask; chmod is belt and braces.
      }
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    // The bind happens synchronously inside listen(); only the events are deferred.
    const previous = process.umask(0o177);
    try {
      server.listen(socketPath);
    } finally {
      process.umask(previous);
    }
  });
}

/** Whether a live process listens on `socketPath` (and its PID when it answers hello). */
async function probe(socketPath: string, timeoutMs = 2000): Promise<{ live: boolean; pid?: number }> {
  try {
    const hello = (await requestControlAt(socketPath, 'hello', {}, timeoutMs)) as { pid?: unknown };
    return { live: true, pid: typeof hello?.pid === 'number' ? hello.pid : undefined };
  } catch (error) {
    if (error instanceof ControlUnavailable) return { live: false };
    // It accepted the connection but did not answer (busy, or not ours): alive all the same.
    return { live: true };
  }
}
