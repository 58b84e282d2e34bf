// The dead-man's switch (HEALTHCHECK_URL): while the controller is healthy it requests the URL every
// HEALTHCHECK_SECONDS; while something is wrong it requests `<URL>/fail` with a one-line reason as
// the body. When the controller is dead nothing arrives, and the monitoring service
// (healthchecks.io, Cronitor, an Uptime Kuma push monitor) tells a human through its own channel:
// the one failure the controller cannot report itself.
//
// The URL is a capability (anyone holding it can keep the switch quiet): only its scheme and host
// are ever logged. Requests go through Node's own fetch, each bounded by a time-out.
import { describeError } from '../errors.ts';
import { redact, type Logger } from '../log.ts';
import type { HealthReport } from './checks.ts';

/** Longest reason sent in a /fail body (healthchecks.io keeps the first 100 kB; a line is enough). */
const MAX_REASON_CHARS = 1000;

export interface DeadMansSwitchOptions {
  url: string;
  everySeconds: number;
  report: () => Promise<HealthReport>;
  logger: Logger;
  /** removed from the reason before it is sent (broker errors may echo a key) */
  secrets: readonly string[];
  timeoutMs?: number;
}

/** scheme://host of a URL: the part of HEALTHCHECK_URL that may be shown. */
export function publicPart(url: string): string {
  try {
    const { protocol, host } = new URL(url);
    return `${protocol}//${host}`;
  } catch {
    return '(an invalid URL)';
  }
}

/** `<url>/fail`, keeping a query string where it belongs. */
export function failUrl(url: string): string {
  const parsed = new URL(url);
  parsed.pathname = `${parsed.pathname.replace(/\/+$/, '')}/fail`;
  return parsed.toString();
}

export class DeadMansSwitch {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  /** what the last request said ('ok' or 'fail') and whether it arrived, to log changes only */
  private lastSignal?: string;
  private lastDelivery?: string;

  constructor(private readonly options: DeadMansSwitchOptions) {}

  start(): void {
    this.stop();
    void this.tick();
    this.timer = setInterval(() => void this.tick(), this.options.everySeconds * 1000);
    this.timer.unref();
    this.options.logger.info(`dead-man's switch: reporting to ${publicPart(this.options.url)} every ${this.options.everySeconds}s`);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One report: ping when healthy, /fail with the reason when not. Never throws; never overlaps. */
  tick(): Promise<void> {
    this.running ??= this.send().finally(() => (this.running = undefined));
    return this.running;
  }

  private async send(): Promise<void> {
    const { url, logger } = this.options;
    let report: HealthReport | undefined;
    let reason: string | undefined;
    try {
      report = await this.options.report();
      if (!report.healthy) reason = report.reasons.join('; ');
    } catch (error) {
      reason = `health could not be evaluated: ${describeError(error)}`;
    }
    const signal = reason === undefined ? 'ok' : 'fail';
    const line = reason === undefined ? '' : oneLine(redact(reason, this.options.secrets));
    if (signal !== this.lastSignal) {
      logger[signal === 'ok' ? 'info' : 'warn'](`dead-man's switch: ${signal === 'ok' ? 'healthy' : `reporting a failure: ${line}`}`);
      this.lastSignal = signal;
    }
    try {
      const response = await fetch(signal === 'ok' ? url : failUrl(url), {
        method: signal === 'ok' ? 'GET' : 'POST',
        ...(signal === 'fail' ? { body: line, headers: { 'content-type': 'text/plain; charset=utf-8' } } : {}),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
      });
      await response.body?.cancel().catch(() => undefined);
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      if (this.lastDelivery !== 'ok') logger.info(`dead-man's switch: ${publicPart(url)} answered`);
      this.lastDelivery = 'ok';
    } catch (error) {
      // Never the URL: only its host, and the error with every secret (the URL among them) removed.
      const message = `dead-man's switch: ${publicPart(url)} did not take the report: ${redact(describeError(error), this.options.secrets)}`;
      if (this.lastDelivery !== message) logger.warn(message);
      this.lastDelivery = message;
    }
  }
}

function oneLine(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > MAX_REASON_CHARS ? `${line.slice(0, MAX_REASON_CHARS - 1)}…` : line;
}
