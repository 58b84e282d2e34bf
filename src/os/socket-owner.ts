// Which process is at the other end of a local TCP connection. The order gate uses it to let only
// the managed trader's process tree place orders: a copy started by hand connects from another PID.
//
// Linux only, from /proc: the client's end of a loopback connection is a row of /proc/net/tcp (or
// tcp6) whose local address is the peer's address and whose remote address is ours; that row names
// the socket's inode, and the process holding it has a /proc/<pid>/fd/<n> link to `socket:[inode]`.
// Elsewhere (macOS has no /proc) the owner cannot be found: callers get `unsupported` and fail closed.
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

export interface ConnectionEnds {
  /** our end (the server's), as node:net reports it */
  localAddress: string;
  localPort: number;
  /** the client's end */
  remoteAddress: string;
  remotePort: number;
}

export type OwnerLookup =
  | { found: true; pid: number; inode: number }
  /** no process of ours holds it: another user's, another network namespace, or already closed */
  | { found: false; reason: string };

export const SOCKET_OWNER_SUPPORTED = process.platform === 'linux';

/** The inode of the client's socket of a connection to us, or undefined when /proc has no such row. */
export function peerSocketInode(ends: ConnectionEnds): number | undefined {
  const peer = endpointKey(ends.remoteAddress, ends.remotePort);
  const self = endpointKey(ends.localAddress, ends.localPort);
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue; // no IPv6 in this kernel
    }
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode …
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10) continue;
      if (procEndpointKey(fields[1]!) !== peer || procEndpointKey(fields[2]!) !== self) continue;
      const inode = Number(fields[9]);
      if (Number.isInteger(inode) && inode > 0) return inode;
    }
  }
  return undefined;
}

/** Of `pids`, the first that holds socket `inode` (a forked child may hold it too: the first wins). */
export function holderAmong(inode: number, pids: Iterable<number>): number | undefined {
  const link = `socket:[${inode}]`;
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or another user's
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === link) return pid;
      } catch {
        // closed while we looked
      }
    }
  }
  return undefined;
}

/**
 * The process at the client end of a connection to us. `likely` PIDs (the managed trader's tree)
 * are looked at first, so the common case reads a few fd directories instead of every process's.
 */
export function socketOwner(ends: ConnectionEnds, likely: Iterable<number> = []): OwnerLookup {
  if (!SOCKET_OWNER_SUPPORTED) return { found: false, reason: `finding the process behind a connection is Linux-only (this is ${process.platform})` };
  const first = [...likely];
  // /proc/net/tcp is read a page at a time and resumed by position: while other sockets open and
  // close, a row can be skipped. A miss is looked up again before it is believed.
  let inode: number | undefined;
  for (let attempt = 0; attempt < LOOKUP_ATTEMPTS; attempt++) {
    inode = peerSocketInode(ends);
    if (inode === undefined) continue;
    const pid = holderAmong(inode, first) ?? holderAmong(inode, allPids());
    if (pid !== undefined) return { found: true, pid, inode };
  }
  return inode === undefined
    ? { found: false, reason: `no local socket ${ends.remoteAddress}:${ends.remotePort} in /proc/net/tcp (not a connection from this machine's network namespace)` }
    : { found: false, reason: `socket ${inode} is held by no process we can see (another user's?)` };
}

const LOOKUP_ATTEMPTS = 3;

/** `pid` and every descendant, from each process's parent in /proc/<pid>/stat (cheap: no cmdline). */
export function processTree(rootPid: number): Set<number> {
  const children = new Map<number, number[]>();
  for (const pid of allPids()) {
    const ppid = parentOf(pid);
    if (ppid === undefined) continue;
    const list = children.get(ppid) ?? [];
    list.push(pid);
    children.set(ppid, list);
  }
  const tree = new Set<number>([rootPid]);
  const stack = [rootPid];
  while (stack.length) {
    for (const child of children.get(stack.pop()!) ?? []) {
      if (tree.has(child)) continue;
      tree.add(child);
      stack.push(child);
    }
  }
  return tree;
}

/** The command line of `pid`, for humans (empty when it is gone). */
export function commandLineOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return '';
  }
}

function allPids(): number[] {
  return readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number);
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(fields[1]);
    return Number.isInteger(ppid) ? ppid : undefined;
  } catch {
    return undefined;
  }
}

// ---- addresses: node's text form and /proc's hex form, both brought to one key ----

/** "127.0.0.1:41234"; an IPv4-mapped IPv6 address counts as its IPv4 address. */
function endpointKey(address: string, port: number): string {
  return `${canonicalAddress(address)}:${port}`;
}

function canonicalAddress(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!address.includes(':')) return address;
  // The URL parser writes IPv6 in one canonical form (compressed, lower case, mapped IPv4 as hex).
  const host = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  const hexMapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
  if (hexMapped) {
    const hi = parseInt(hexMapped[1]!, 16);
    const lo = parseInt(hexMapped[2]!, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return host;
}

/**
 * /proc/net/tcp writes "0100007F:A0E2": the address as 32-bit words in the kernel's (little-endian
 * on every platform we run on) byte order, the port as big-endian hex.
 */
export function procEndpointKey(field: string): string {
  const [hex, portHex] = field.split(':');
  if (!hex || !portHex) return '';
  const port = parseInt(portHex, 16);
  const bytes: number[] = [];
  for (let word = 0; word < hex.length; word += 8) {
    const w = hex.slice(word, word + 8);
    for (let b = 6; b >= 0; b -= 2) bytes.push(parseInt(w.slice(b, b + 2), 16));
  }
  if (bytes.length === 4) return `${bytes.join('.')}:${port}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return endpointKey(groups.join(':'), port);
}
