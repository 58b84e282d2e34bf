// One read of a PM2 daemon's process list over its RPC socket, with PM2's own wire modules
// (pm2/modules/pm2-axon{,-rpc}, what its Client uses) and nothing else of PM2. Loading PM2's client
// (lib/API.js) costs ~50 ms; this costs ~15. For short-lived processes (the CLI) that only read.
// It never spawns a daemon: no daemon answering is an error, and the caller connects the usual way.
import { createRequire } from 'node:module';
import path from 'node:path';

interface AxonSocket {
  set(key: string, value: unknown): unknown;
  retry?: number;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  once(event: string, listener: (...args: unknown[]) => void): unknown;
  connect(address: string): unknown;
  close(): void;
}
interface Axon {
  socket(type: 'req'): AxonSocket;
}
type RpcClientClass = new (sock: AxonSocket) => { call(method: string, arg: unknown, cb: (error: unknown, value?: unknown) => void): void };

let wire: { axon: Axon; RpcClient: RpcClientClass } | undefined;

function loadWire(): { axon: Axon; RpcClient: RpcClientClass } {
  if (!wire) {
    const require = createRequire(import.meta.url);
    wire = { axon: require('pm2/modules/pm2-axon') as Axon, RpcClient: (require('pm2/modules/pm2-axon-rpc') as { Client: RpcClientClass }).Client };
  }
  return wire;
}

/** The daemon's raw `getMonitorData` answer (what `pm2 jlist` prints). Rejects when no daemon answers in time. */
export function readPm2List(pm2Home: string, timeoutMs: number): Promise<unknown> {
  if (process.platform === 'win32') return Promise.reject(new Error('PM2 listens on a named pipe on Windows; not read directly'));
  const { axon, RpcClient } = loadWire();
  const sock = axon.socket('req');
  // No reconnecting: a refused or missing socket means no daemon, now.
  sock.set('retry timeout', 0);
  sock.retry = 0;
  const client = new RpcClient(sock);
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (error: unknown, value?: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.close();
      if (error) reject(error instanceof Error ? error : new Error(String(error)));
      else resolve(value);
    };
    const timer = setTimeout(() => finish(new Error(`no answer from the PM2 daemon at ${pm2Home} in ${timeoutMs} ms`)), timeoutMs);
    // ENOENT and ECONNREFUSED are errors axon "ignores" (it would retry): they come as 'socket error'.
    sock.on('socket error', (error) => finish(error));
    sock.on('close', () => finish(new Error(`the PM2 daemon at ${pm2Home} closed the connection`)));
    sock.once('connect', () => client.call('getMonitorData', {}, (error, list) => finish(error, list)));
    sock.connect(path.join(pm2Home, 'rpc.sock'));
  });
}
