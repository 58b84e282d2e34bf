// The client side of the controller's control socket (see socket.ts for the server and the
// protocol): where the socket of a DATA_DIR is, and one request → one answer. Kept apart from the
// server so that `tradewarden status` and `health` load neither the takeover lock nor its library.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { OperationError, describeError, failed } from '../errors.ts';

/** Longest socket path we use: Linux allows 107 bytes, macOS 103; keep a margin. */
export const MAX_SOCKET_PATH_BYTES = 100;
const SOCKET_NAME = 'controller.sock';
/**
 * Where the sockets of deep DATA_DIRs live: a fixed folder, never os.tmpdir(). TMPDIR differs from
 * shell to shell (and in PM2's environment), and a controller and a CLI that computed different
 * folders let a second controller start and told `health` that none served.
 */
export const FALLBACK_SOCKET_ROOT = '/tmp';

/**
 * Where the control socket of `dataDir` is (the same answer in the controller and the CLI, whatever
 * TMPDIR or spelling of DATA_DIR: the socket is named after its real path). `runRoot` is for tests.
 */
export function controlSocketPath(dataDir: string, runRoot = FALLBACK_SOCKET_ROOT): string {
  const real = realDataDir(dataDir);
  const preferred = path.join(real, SOCKET_NAME);
  if (Buffer.byteLength(preferred) <= MAX_SOCKET_PATH_BYTES) return preferred;
  // node:crypto only here, for the rare deep DATA_DIR: loading it costs `tradewarden status` ~5 ms.
  const { createHash } = createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto');
  const hash = createHash('sha256').update(real).digest('hex').slice(0, 16);
  const fallback = path.join(privateRunDir(runRoot), `${hash}.sock`);
  if (Buffer.byteLength(fallback) > MAX_SOCKET_PATH_BYTES) {
    throw new OperationError(
      'usage',
      `DATA_DIR ${real} is too deep for the controller's socket (${preferred} is over ${MAX_SOCKET_PATH_BYTES} bytes) ` +
        `and so is the fallback (${fallback}); use a shorter DATA_DIR`,
    );
  }
  return fallback;
}

/**
 * DATA_DIR with every symlink resolved: one controller per real folder, however it is reached. A
 * folder that does not exist yet (a CLI before the first controller) keeps its missing tail as given
 * under its nearest existing ancestor's real path, which is what the controller will find once made.
 */
export function realDataDir(dataDir: string): string {
  const resolved = path.resolve(dataDir);
  const missing: string[] = [];
  for (let head = resolved; ; head = path.dirname(head)) {
    try {
      return path.join(fs.realpathSync.native(head), ...missing);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || path.dirname(head) === head) return resolved;
      missing.unshift(path.basename(head));
    }
  }
}

function privateRunDir(runRoot: string): string {
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  return path.join(runRoot, `tradewarden-${uid}`);
}

/** No controller listens: nothing at the socket path, or the kernel refused (its owner died). */
export class ControlUnavailable extends OperationError {
  constructor(message: string, cause?: unknown) {
    super('failed', message, { cause });
    this.name = 'ControlUnavailable';
  }
}

/** Sends one request to the controller of `dataDir` and returns its result; throws its error. */
export function requestControl(dataDir: string, op: string, args: Record<string, unknown> = {}, timeoutMs = 5000): Promise<unknown> {
  return requestControlAt(controlSocketPath(dataDir), op, args, timeoutMs, path.resolve(dataDir));
}

export function requestControlAt(socketPath: string, op: string, args: Record<string, unknown>, timeoutMs: number, dataDir?: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    let buffer = '';
    let settled = false;
    const finish = (error: Error | undefined, value?: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(value);
    };
    const timer = setTimeout(() => finish(failed(`the controller did not answer "${op}" within ${timeoutMs} ms (${socketPath})`)), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(JSON.stringify({ id: 1, op, args }) + '\n'));
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const newline = buffer.indexOf('\n');
      if (newline < 0) return;
      try {
        const response = JSON.parse(buffer.slice(0, newline)) as { ok?: unknown; result?: unknown; error?: unknown; kind?: unknown };
        if (response.ok === true) finish(undefined, response.result);
        // An operation's own refusal or usage error stays one (the CLI's exit code says which).
        else if (response.kind === 'refused' || response.kind === 'usage') finish(new OperationError(response.kind, String(response.error)));
        else finish(failed(`the controller answered "${op}" with an error: ${String(response.error)}`));
      } catch (error) {
        finish(failed(`the controller's answer to "${op}" is not JSON: ${describeError(error)}`, error));
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED') {
        finish(new ControlUnavailable(`no tradewarden controller serves ${dataDir ?? path.dirname(socketPath)} (${socketPath}: ${error.code === 'ENOENT' ? 'no socket' : 'connection refused'})`, error));
      } else finish(failed(`cannot reach the controller at ${socketPath}: ${describeError(error)}`, error));
    });
    socket.on('close', () => finish(failed(`the controller closed the connection before answering "${op}"`)));
  });
}
