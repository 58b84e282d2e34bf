// One logger for the whole controller. Every line passes through `redact`, so a secret that
// slips into an error message (a URL with a key, a trader's own log line) never reaches output.
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/**
 * Removes every secret from `text`: as written, and in the forms a trader's own log may show it
 * (base64 and base64url, as in an encoded header or a token dump; hex, lower and upper case;
 * URL-encoded, as in a logged request URL), plus any `Authorization: Basic|Bearer …` value whatever
 * it holds. A secret split across two lines by
 * PM2's line prefix (a timestamp inserted mid-secret) is not found: a known limit.
 */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text.replace(/(authorization["']?\s*[:=]\s*["']?(?:basic|bearer|token)\s+)[A-Za-z0-9+/=._~-]+/gi, '$1[redacted]');
  for (const secret of secrets) {
    if (secret.length < 4) continue;
    for (const form of secretForms(secret)) out = out.split(form).join('[redacted]');
  }
  return out;
}

const formsCache = new Map<string, string[]>();
function secretForms(secret: string): string[] {
  let forms = formsCache.get(secret);
  if (!forms) {
    const bytes = Buffer.from(secret, 'utf8');
    const base64 = bytes.toString('base64');
    const hex = bytes.toString('hex');
    // Longest first, so a form that contains another is removed whole.
    forms = [...new Set([secret, base64, base64.replace(/=+$/, ''), bytes.toString('base64url'), hex, hex.toUpperCase(), encodeURIComponent(secret)])]
      .filter((f) => f.length >= 4)
      .sort((a, b) => b.length - a.length);
    formsCache.set(secret, forms);
  }
  return forms;
}

/** `redact` applied to every string inside a JSON-like value (alert facts, reports). */
export function redactDeep<T>(value: T, secrets: readonly string[]): T {
  if (!secrets.length) return value;
  if (typeof value === 'string') return redact(value, secrets) as T;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, secrets)) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactDeep(v, secrets)])) as T;
  }
  return value;
}

const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function createLogger(options: {
  secrets: readonly string[];
  level?: LogLevel;
  write?: (line: string) => void;
}): Logger {
  // LOG_LEVEL is validated by config.ts and handed in; an unknown level is a bug, not "info".
  const level = options.level ?? 'info';
  const threshold = order[level];
  if (threshold === undefined) throw new Error(`unknown log level ${JSON.stringify(level)}: expected one of ${Object.keys(order).join(', ')}`);
  const write = options.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const emit = (level: LogLevel) => (message: string) => {
    if (order[level] < threshold) return;
    write(`${new Date().toISOString()} ${level.padEnd(5)} ${redact(message, options.secrets)}`);
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
