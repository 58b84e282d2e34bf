// The order gate's reading of a request (src/gateway/routes.ts), the functions alone: the target the
// broker will execute and what the gate does with it. test/gateway.test.ts sends the same spellings
// through a real gate; here each rule is pinned at its edge, in milliseconds (mutation testing runs
// this file first).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeTarget, routeOf } from '../src/gateway/routes.ts';

test('normalizeTarget: the path the broker will read, the query kept as sent', () => {
  const cases: Array<[string, string, string]> = [
    ['/v2/orders', '/v2/orders', ''],
    ['/v2/orders?status=open&limit=5', '/v2/orders', '?status=open&limit=5'],
    ['/v2/orders?a=/../b', '/v2/orders', '?a=/../b'], // the query is not a path
    ['/v2/./orders', '/v2/orders', ''],
    ['/./v2/orders', '/v2/orders', ''],
    ['/v2/../v2/orders', '/v2/orders', ''],
    ['/v2/x/y/../../orders', '/v2/orders', ''],
    ['/../../v2/orders', '/v2/orders', ''], // above the root stays at the root
    ['/v2/orders/.', '/v2/orders/', ''], // "/a/." and "/a/.." end in a slash
    ['/v2/orders/x/..', '/v2/orders/', ''],
    ['//v2//orders', '/v2/orders', ''],
    ['/v2/orders//', '/v2/orders/', ''], // a trailing slash survives, the repeat does not
    ['/v2\\orders', '/v2/orders', ''],
    ['/v2/%6Frders', '/v2/orders', ''],
    ['/v2/%4F%2d%2E%5F%7E', '/v2/O-._~', ''], // every unreserved kind decoded, either case of hex
    ['/v2/%2forders', '/v2/%2Forders', ''], // other escapes kept, in upper case
    ['/v2/%e2%82%ac', '/v2/%E2%82%AC', ''],
    ['/v2/%zz', '/v2/%zz', ''], // not an escape
    ['/', '/', ''],
    ['http://127.0.0.1:8080/v2/orders?x=1', '/v2/orders', '?x=1'],
    ['https://broker.example/v2/./orders', '/v2/orders', ''],
  ];
  for (const [raw, path, query] of cases) assert.deepEqual(normalizeTarget(raw), { path, query }, raw);
});

test('normalizeTarget: not an http(s) path at all → undefined', () => {
  for (const raw of ['*', 'v2/orders', 'ftp://host/v2/orders', 'file:///v2/orders', 'http://[bad', '']) {
    assert.equal(normalizeTarget(raw), undefined, JSON.stringify(raw));
  }
});

test('normalizeTarget is a fixed point: normalising its answer again changes nothing', () => {
  for (const raw of ['/v2/./orders/', '//v2//orders/..', '/v2\\%6Frders?q=%2F', '/v2/%2forders', '/a/b/../../../c']) {
    const once = normalizeTarget(raw)!;
    assert.deepEqual(normalizeTarget(once.path + once.query), once, raw);
  }
});

test('routeOf: new orders and replacements are decided on, cancels noted, with their order id', () => {
  assert.deepEqual(routeOf('POST', '/v2/orders'), { kind: 'order' });
  assert.deepEqual(routeOf('POST', '/v2/orders/'), { kind: 'order' });
  assert.deepEqual(routeOf('PATCH', '/v2/orders/abc-1'), { kind: 'order', replaces: 'abc-1' });
  assert.deepEqual(routeOf('PATCH', '/v2/orders/a%20b'), { kind: 'order', replaces: 'a b' }, 'the id decoded as the broker reads it');
  assert.deepEqual(routeOf('PATCH', '/v2/orders/%E0%A4%A'), { kind: 'order', replaces: '%E0%A4%A' }, 'an id that does not decode is kept as sent');
  assert.deepEqual(routeOf('DELETE', '/v2/orders'), { kind: 'cancel', orderId: 'all' });
  assert.deepEqual(routeOf('DELETE', '/v2/orders/abc-1'), { kind: 'cancel', orderId: 'abc-1' });
  assert.deepEqual(routeOf('DELETE', '/v2/orders/abc-1/'), { kind: 'cancel', orderId: 'abc-1' });
});

test('routeOf: reads pass whatever their path; position closes and watchlist changes pass', () => {
  for (const method of ['GET', 'HEAD', 'OPTIONS']) {
    assert.deepEqual(routeOf(method, '/v2/orders'), { kind: 'pass' }, method);
    assert.deepEqual(routeOf(method, '/anything/at/all'), { kind: 'pass' }, method);
  }
  assert.deepEqual(routeOf('DELETE', '/v2/positions'), { kind: 'pass' });
  assert.deepEqual(routeOf('DELETE', '/v2/positions/AAPL'), { kind: 'pass' });
  for (const method of ['POST', 'PUT', 'DELETE']) {
    assert.deepEqual(routeOf(method, '/v2/watchlists'), { kind: 'pass' }, `${method} /v2/watchlists`);
    assert.deepEqual(routeOf(method, '/v2/watchlists/w1/AAPL'), { kind: 'pass' }, `${method} a watchlist's symbol`);
    assert.deepEqual(routeOf(method, '/v2/watchlists:by_name'), { kind: 'pass' }, `${method} /v2/watchlists:by_name`);
  }
});

test('routeOf: any other write is refused (deny by default), and says what it is and why', () => {
  const refusedWrites: Array<[string, string]> = [
    ['PUT', '/v2/orders'],
    ['POST', '/v2/orders/abc-1'], // not how Alpaca replaces
    ['PATCH', '/v2/orders'],
    ['POST', '/v2/orders/abc-1/x'],
    ['DELETE', '/v2/orders/abc-1/x'],
    ['POST', '/v2/orderz'],
    ['POST', '/v3/orders'],
    ['POST', '/x/orders'],
    ['POST', '/V2/ORDERS'],
    ['POST', '/v2/%2Forders'],
    ['POST', '/v2/positions'],
    ['DELETE', '/v2/positions/AAPL/x'],
    ['DELETE', '/v3/positions'],
    ['DELETE', '/v2/x'],
    ['PATCH', '/v2/watchlists/w1'],
    ['POST', '/v2/watchlists/w1/AAPL/x'],
    ['POST', '/v3/watchlists'],
    ['PATCH', '/v2/account/configurations'],
    ['POST', '/'],
  ];
  for (const [method, path] of refusedWrites) {
    const route = routeOf(method, path);
    assert.equal(route.kind, 'refuse', `${method} ${path}`);
    assert.equal(
      route.kind === 'refuse' && route.why,
      `${method} ${path.replace(/\/+$/, '') || '/'} is not a request the order gate recognises as one of Alpaca's (new orders, replacements, cancels, position closes, watchlists); it is refused rather than passed unchecked`,
      `${method} ${path}`,
    );
  }
});
