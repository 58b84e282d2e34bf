// Doctor's checks of this machine: whether a controller serves DATA_DIR (its control socket's
// hello), whether GATEWAY_ADDR and METRICS_ADDR can be listened on (or are held by that
// controller: a listening socket's owner is found in /proc, as src/os/socket-owner.ts finds a
// connection's), DATA_DIR writable or creatable, its mode and free space, and whether the
// dead-man's switch's service answers. HEALTHCHECK_URL is a secret and a ping: only its scheme and
// host are shown, and only its host is asked (a request to the URL itself would tell the service
// that a controller is alive).
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Config } from '../config.ts';
import { ControlUnavailable, requestControl } from '../control/client.ts';
import { describeError } from '../errors.ts';
import { commandLineOf, holderAmong } from '../os/socket-owner.ts';
import { octal, writableAncestor } from './files.ts';
import type { DoctorCheck } from './report.ts';

type Add = (check: Omit<DoctorCheck, 'area'>) => void;

const GB = 1024 ** 3;
const MB = 1024 ** 2;
/** Below this a full disk is near: the data file, the outbox and the trader's logs all live there. */
const FREE_SPACE_FAIL = 50 * MB;
const FREE_SPACE_WARN = 500 * MB;

export async function hostChecks(config: Config, add: Add, timeoutMs: number): Promise<void> {
  dataDir(config.dataDir, add);
  const [controllerPid] = await Promise.all([controller(config.dataDir, add, timeoutMs), healthcheck(config.healthcheck?.url, add, timeoutMs)]);
  const addresses: Array<[string, { host: string; port: number } | undefined]> = [
    ['GATEWAY_ADDR', config.gateway],
    ['METRICS_ADDR', config.metrics],
  ];
  await Promise.all(addresses.map(([name, address]) => (address ? port(name, address, controllerPid, add) : undefined)));
}

async function controller(dataDir: string, add: Add, timeoutMs: number): Promise<number | undefined> {
  try {
    const hello = (await requestControl(dataDir, 'hello', {}, Math.min(timeoutMs, 2000))) as { pid?: unknown; startedAt?: unknown };
    const pid = typeof hello?.pid === 'number' ? hello.pid : undefined;
    const since = typeof hello?.startedAt === 'number' || typeof hello?.startedAt === 'string' ? new Date(hello.startedAt).toISOString() : undefined;
    add({ name: 'controller', status: 'ok', detail: `PID ${pid ?? '?'} serves DATA_DIR ${dataDir}${since ? ` (since ${since})` : ''}` });
    return pid;
  } catch (error) {
    if (error instanceof ControlUnavailable) {
      add({ name: 'controller', status: 'warn', detail: `none serves DATA_DIR ${dataDir} yet`, fix: 'start it under PM2: npx tradewarden ecosystem, then npx pm2 start ecosystem.config.cjs (or in the foreground: npx tradewarden controller)' });
    } else {
      add({ name: 'controller', status: 'fail', detail: describeError(error), fix: 'look at DATA_DIR/logs/tradewarden.err.log; restart it (npx pm2 restart tradewarden)' });
    }
    return undefined;
  }
}

async function port(name: string, address: { host: string; port: number }, controllerPid: number | undefined, add: Add): Promise<void> {
  const shown = `${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;
  if (address.port === 0) {
    add({ name, status: 'ok', detail: `${shown}: any free port, chosen at start` });
    return;
  }
  const problem = await tryListen(address.host, address.port);
  if (!problem) {
    add({ name, status: 'ok', detail: `${shown} is free` });
    return;
  }
  if (problem === 'EADDRINUSE') {
    const holder = listenerOf(address.port);
    if (holder !== undefined && holder === controllerPid) {
      add({ name, status: 'ok', detail: `${shown} is held by our controller (PID ${holder})` });
      return;
    }
    if (holder === undefined && controllerPid !== undefined) {
      add({ name, status: 'warn', detail: `${shown} is taken, by whom this system does not say (our controller is PID ${controllerPid})`, fix: `if it is not ours: choose another port in ${name}` });
      return;
    }
    add({
      name,
      status: 'fail',
      detail: `${shown} is taken${holder !== undefined ? ` by PID ${holder} (${commandLineOf(holder) || 'another user\'s process'})` : ' by another program'}`,
      fix: `choose a free port in ${name}, or stop what holds it`,
    });
    return;
  }
  const why =
    problem === 'EADDRNOTAVAIL' || problem === 'ENOTFOUND' || problem === 'EAI_AGAIN'
      ? `${address.host} is no address of this machine`
      : problem === 'EACCES'
        ? `ports below 1024 need root`
        : `cannot listen there (${problem})`;
  add({ name, status: 'fail', detail: `${shown}: ${why}`, fix: `set ${name} to a free port on an address of this machine (e.g. 127.0.0.1:${address.port >= 1024 ? address.port : 9464})` });
}

/** undefined when `host:port` can be listened on now (and is let go at once), else the error code. */
function tryListen(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? describeError(error)));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}

/** Linux: the PID of the process listening on `port` (any local address), from /proc/net/tcp{,6}. */
function listenerOf(port: number): number | undefined {
  const inodes: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = fs.readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // sl local_address rem_address st …; st 0A = LISTEN
      if (fields.length < 10 || fields[3] !== '0A') continue;
      if (parseInt(fields[1]!.split(':')[1] ?? '', 16) !== port) continue; // the port is big-endian hex
      const inode = Number(fields[9]);
      if (Number.isInteger(inode) && inode > 0) inodes.push(inode);
    }
  }
  if (!inodes.length) return undefined;
  let pids: number[];
  try {
    pids = fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number);
  } catch {
    return undefined;
  }
  for (const inode of inodes) {
    const holder = holderAmong(inode, pids);
    if (holder !== undefined) return holder;
  }
  return undefined;
}

function dataDir(dir: string, add: Add): void {
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(dir);
  } catch {
    stat = undefined;
  }
  if (!stat) {
    if (writableAncestor(dir)) add({ name: 'DATA_DIR', status: 'ok', detail: `${dir} does not exist yet: the first start creates it (0700)` });
    else add({ name: 'DATA_DIR', status: 'fail', detail: `${dir} does not exist and this user cannot create it`, fix: 'point DATA_DIR at a folder this user can create, read and write' });
  } else if (!stat.isDirectory()) {
    add({ name: 'DATA_DIR', status: 'fail', detail: `${dir} is not a folder`, fix: 'point DATA_DIR at a folder' });
    return;
  } else {
    const probe = path.join(dir, `.doctor-${process.pid}`);
    try {
      fs.writeFileSync(probe, '', { mode: 0o600 });
      fs.rmSync(probe, { force: true });
    } catch (error) {
      add({ name: 'DATA_DIR', status: 'fail', detail: `${dir} is not writable (${(error as NodeJS.ErrnoException).code ?? describeError(error)})`, fix: `chown it to this user, or point DATA_DIR at a folder this user can write` });
      return;
    }
    const mode = stat.mode & 0o777;
    if (mode & 0o077) {
      add({
        name: 'DATA_DIR',
        status: 'warn',
        detail: `${dir} is writable but mode ${octal(mode)}: others can read the data file and the trader's logs`,
        fix: `nothing to do: the controller makes it 0700 at its next start (or now: chmod 700 ${dir})`,
      });
    } else add({ name: 'DATA_DIR', status: 'ok', detail: `${dir} is writable (${octal(mode)})` });
  }
  freeSpace(dir, add);
}

function freeSpace(dir: string, add: Add): void {
  let head = path.resolve(dir);
  while (!fs.existsSync(head) && path.dirname(head) !== head) head = path.dirname(head);
  let free: number;
  try {
    const stats = fs.statfsSync(head);
    free = stats.bavail * stats.bsize;
  } catch (error) {
    add({ name: 'free space', status: 'warn', detail: `cannot tell for ${head}: ${describeError(error)}`, fix: 'check it with df' });
    return;
  }
  const shown = free >= GB ? `${(free / GB).toFixed(1)} GB` : `${Math.round(free / MB)} MB`;
  if (free < FREE_SPACE_FAIL) {
    add({ name: 'free space', status: 'fail', detail: `${shown} free for DATA_DIR`, fix: 'free some space there (the data file, alerts and the trader\'s logs need it), or move DATA_DIR' });
  } else if (free < FREE_SPACE_WARN) {
    add({ name: 'free space', status: 'warn', detail: `${shown} free for DATA_DIR`, fix: 'free some space soon: the trader\'s logs grow (npx pm2 install pm2-logrotate)' });
  } else add({ name: 'free space', status: 'ok', detail: `${shown} free for DATA_DIR` });
}

async function healthcheck(url: string | undefined, add: Add, timeoutMs: number): Promise<void> {
  if (!url) return;
  const origin = new URL(url).origin; // scheme and host: the path is the check's secret
  try {
    const response = await fetch(origin, { method: 'HEAD', signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
    add({ name: 'HEALTHCHECK_URL', status: 'ok', detail: `${origin} answers (${response.status}; the check itself is not pinged)` });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    const timedOut = (error as { name?: string }).name === 'TimeoutError';
    add({
      name: 'HEALTHCHECK_URL',
      status: 'fail',
      detail: `${origin} does not answer: ${timedOut ? `nothing within ${timeoutMs} ms` : (cause ?? describeError(error))}`,
      fix: "check this machine's network, or the host in HEALTHCHECK_URL",
    });
  }
}
