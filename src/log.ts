// One logger for the whole controller. Every line passes through `redact`, so a secret that
// slips into an error message (a URL with a key, a trader's own log line) never reaches output.
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= 4) out = out.split(secret).join('[redacted]');
  }
  return out;
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
