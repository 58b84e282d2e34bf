// The trade stream's address, apart from the stream itself: it is known (and logged) before the
// stream, with ws and the broker client under it, is loaded (a CLI process never loads them).

/** APCA_STREAM_URL, else the REST base URL with ws(s) and /stream, as Alpaca's own SDKs derive it. */
export function tradeStreamUrl(baseUrl: string, explicit?: string): string {
  if (explicit) return explicit;
  const url = new URL(baseUrl.replace(/\/+$/, '').replace(/\/v2$/, ''));
  url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/stream`;
  return url.toString();
}
