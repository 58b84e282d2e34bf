// Which request the order gate is looking at: the one the broker will execute, and what kind it is.
//
// The gate decides on a path, and the broker executes a path. They must be the same path. Servers
// and proxies normalise what they are sent: dot segments (`/v2/./orders`, `/v2/../v2/orders`), the
// absolute form (`POST http://host/v2/orders`), percent-encoded unreserved characters
// (`/v2/%6Frders`), repeated slashes, and for WHATWG-style parsers (Node's own) a backslash as a
// slash. Each of these once carried a new order past the gate as an unknown path. So the target is
// normalised before any decision and forwarded in that form (a fixed point: normalising it again
// changes nothing), and a write the gate does not recognise as one of Alpaca's is refused rather
// than passed unchecked (deny by default). Reads pass: they cannot trade.

/** What the gate does with one request. */
export type Route =
  /** a new order (POST /v2/orders) or a replacement (PATCH /v2/orders/{id}): decided on */
  | { kind: 'order'; replaces?: string }
  /** a cancel (DELETE /v2/orders[/{id}]): passes; the gate notes it */
  | { kind: 'cancel'; orderId: string | 'all' }
  /** a read, a position close or a watchlist change: passes untouched */
  | { kind: 'pass' }
  /** a write the gate does not recognise, or a target it cannot read: refused */
  | { kind: 'refuse'; why: string };

/** The request target as the broker will read it. */
export interface Target {
  /** origin-form path, normalised */
  path: string;
  /** the query as sent, with its '?' ('' when none) */
  query: string;
}

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);
const UNRESERVED = /[A-Za-z0-9\-._~]/;

/**
 * The normalised target of `rawUrl` (origin or absolute form), or undefined when it is not an http(s)
 * path at all. Dot segments are resolved, backslashes read as slashes, percent-encoded unreserved
 * characters decoded (other escapes kept, in upper case), and repeated slashes collapsed.
 */
export function normalizeTarget(rawUrl: string): Target | undefined {
  let target = rawUrl;
  if (!target.startsWith('/')) {
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      return undefined;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
    target = url.pathname + url.search;
  }
  const q = target.indexOf('?');
  const rawPath = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? '' : target.slice(q);
  const decoded = rawPath
    .replace(/%([0-9A-Fa-f]{2})/g, (escape, hex: string) => {
      const char = String.fromCharCode(parseInt(hex, 16));
      return UNRESERVED.test(char) ? char : escape.toUpperCase();
    })
    .replace(/\\/g, '/');
  const segments: string[] = [];
  const parts = decoded.split('/').slice(1);
  parts.forEach((segment, i) => {
    const last = i === parts.length - 1;
    if (segment === '.' || segment === '..') {
      if (segment === '..') segments.pop();
      if (last) segments.push(''); // "/a/." and "/a/.." end in a slash
      return;
    }
    if (segment === '' && !last) return; // a repeated slash
    segments.push(segment);
  });
  return { path: `/${segments.join('/')}`, query };
}

/**
 * The route of a normalised request. Every Alpaca write the gate lets through is named here; any
 * other write is refused (deny by default).
 */
export function routeOf(method: string, path: string): Route {
  const trimmed = path.replace(/\/+$/, '') || '/';
  const seg = trimmed.split('/').slice(1);
  if (READS.has(method)) return { kind: 'pass' };
  const one = seg.length === 3 ? seg[2]! : undefined;
  const id = one === undefined ? undefined : safeDecode(one);
  if (seg[0] === 'v2' && seg[1] === 'orders') {
    if (seg.length === 2 && method === 'POST') return { kind: 'order' };
    if (seg.length === 2 && method === 'DELETE') return { kind: 'cancel', orderId: 'all' };
    if (id !== undefined && method === 'PATCH') return { kind: 'order', replaces: id };
    if (id !== undefined && method === 'DELETE') return { kind: 'cancel', orderId: id };
  }
  // Closing positions only reduces risk: it is never refused.
  if (seg[0] === 'v2' && seg[1] === 'positions' && method === 'DELETE' && (seg.length === 2 || seg.length === 3)) return { kind: 'pass' };
  // Watchlists trade nothing.
  if (seg[0] === 'v2' && (seg[1] === 'watchlists' || seg[1] === 'watchlists:by_name') && seg.length <= 4 && ['POST', 'PUT', 'DELETE'].includes(method)) return { kind: 'pass' };
  return {
    kind: 'refuse',
    why: `${method} ${trimmed} is not a request the order gate recognises as one of Alpaca's (new orders, replacements, cancels, position closes, watchlists); it is refused rather than passed unchecked`,
  };
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
