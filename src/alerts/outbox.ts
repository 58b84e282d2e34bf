// The persistent alert outbox (invariant 4: no alert is lost). An alert is written to the data file
// before any delivery is tried; each sink's delivery is recorded there too, so a Discord outage only
// delays it and a controller restart neither drops nor repeats it.
import crypto from 'node:crypto';
import type { Clock } from '../clock.ts';
import { redactDeep, type Logger } from '../log.ts';
import { describeError } from '../errors.ts';
import { Mutex } from '../lock.ts';
import { formatDuration } from '../duration.ts';
import type { Store } from '../store/store.ts';
import type { AlertKind, AlertSeverity, StoredAlert } from '../store/schema.ts';

export interface AlertInput {
  kind: AlertKind;
  severity: AlertSeverity;
  /**
   * Same key within the cool-down = the same alert, raised once. Without a key the alert is a
   * one-off event (a flatten result, a breaker trip) and is never suppressed.
   */
  key?: string;
  title: string;
  body: string;
  facts?: Record<string, unknown>;
}

export interface DeliveryContext {
  /** How much later than its creation the alert is going out (0 when on time). */
  lateByMs: number;
}

export interface AlertSink {
  readonly name: string;
  /** Throws to have the delivery retried later; may return a reference (e.g. a message id). */
  deliver(alert: StoredAlert, context: DeliveryContext): Promise<string | void>;
}

export interface OutboxOptions {
  store: Store;
  clock: Clock;
  logger: Logger;
  /** Sinks this process delivers through. */
  sinks?: AlertSink[];
  /**
   * Sink names every new alert is addressed to, whichever process raised it: the CLI raises alerts
   * that the controller's sinks deliver. Defaults to the names of `sinks`.
   */
  addressTo?: string[];
  cooldownMs?: number;
  /** First retry delay; doubles per failed attempt up to maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Deliveries later than this are marked as late to the reader. */
  lateThresholdMs?: number;
  /** Removed from every alert before it is saved (a duplicate's command line may carry a key). */
  secrets?: readonly string[];
}

export class AlertOutbox {
  private readonly sinks = new Map<string, AlertSink>();
  private readonly delivering = new Mutex();
  private readonly cooldownMs: number;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly lateThresholdMs: number;
  private timer?: NodeJS.Timeout;
  private readonly listeners: Array<(alert: StoredAlert) => void> = [];

  constructor(private readonly options: OutboxOptions) {
    for (const sink of options.sinks ?? []) this.sinks.set(sink.name, sink);
    this.cooldownMs = options.cooldownMs ?? 10 * 60_000;
    this.backoffMs = options.backoffMs ?? 2_000;
    this.maxBackoffMs = options.maxBackoffMs ?? 5 * 60_000;
    this.lateThresholdMs = options.lateThresholdMs ?? 5_000;
  }

  addSink(sink: AlertSink): void {
    this.sinks.set(sink.name, sink);
  }

  /** Called for every alert this process raises (e.g. the demo console prints them). */
  onRaised(listener: (alert: StoredAlert) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Saves the alert (unless the same key was raised within the cool-down) addressed to every
   * current sink, then tries to deliver at once. Returns the stored alert, or undefined if suppressed.
   */
  async raise(raw: AlertInput): Promise<StoredAlert | undefined> {
    const input = redactDeep(raw, this.options.secrets ?? []);
    const now = this.options.clock.now();
    const alert = await this.options.store.update((data) => {
      if (input.key !== undefined && data.alerts.some((a) => a.key === input.key && now - a.createdAt < this.cooldownMs)) {
        return undefined;
      }
      const id = crypto.randomUUID();
      const stored: StoredAlert = {
        id,
        kind: input.kind,
        severity: input.severity,
        key: input.key ?? id,
        title: input.title,
        body: input.body,
        facts: input.facts ?? {},
        createdAt: now,
        deliveries: Object.fromEntries([...this.sinkNames()].map((name) => [name, { attempts: 0 }])),
      };
      data.alerts.push(stored);
      return stored;
    });
    if (!alert) return undefined;
    for (const listener of this.listeners) listener(alert);
    await this.deliverDue();
    return alert;
  }

  /**
   * raise(), and when the data file cannot be written (a full disk), straight to this process's
   * sinks without a record: late delivery is lost then, but the operator still hears it now.
   * Never throws.
   */
  async raiseLoud(raw: AlertInput): Promise<void> {
    try {
      await this.raise(raw);
      return;
    } catch (error) {
      this.options.logger.error(`alert ${raw.kind} could not be saved (${describeError(error)}); delivering it unsaved`);
    }
    const input = redactDeep(raw, this.options.secrets ?? []);
    const now = this.options.clock.now();
    const id = crypto.randomUUID();
    const alert: StoredAlert = { id, kind: input.kind, severity: input.severity, key: input.key ?? id, title: input.title, body: input.body, facts: input.facts ?? {}, createdAt: now, deliveries: {} };
    for (const listener of this.listeners) listener(alert);
    for (const sink of this.sinks.values()) {
      await sink.deliver(alert, { lateByMs: 0 }).catch((e: unknown) => this.options.logger.error(`alert ${alert.kind} not delivered to ${sink.name}: ${describeError(e)}`));
    }
  }

  /** Tries every due delivery once. Never throws: failures are recorded and retried later. */
  deliverDue(): Promise<void> {
    return this.delivering.run(async () => {
      const data = await this.options.store.read();
      const now = this.options.clock.now();
      for (const alert of data.alerts) {
        for (const [sinkName, delivery] of Object.entries(alert.deliveries)) {
          if (delivery.deliveredAt !== undefined) continue;
          if (delivery.nextAttemptAt !== undefined && delivery.nextAttemptAt > now) continue;
          const sink = this.sinks.get(sinkName);
          if (!sink) continue; // addressed to a sink this process does not run (e.g. the CLI raised it)
          await this.deliverOne(alert, sink);
        }
      }
    });
  }

  /** Alerts newest first, with their delivery state. */
  async recent(limit = 20): Promise<StoredAlert[]> {
    const data = await this.options.store.read();
    return data.alerts.slice(-limit).reverse();
  }

  /** Keeps delivering in the background (other processes' alerts too, since they share the file). */
  start(intervalMs = 2_000): void {
    this.stop();
    this.timer = setInterval(() => void this.deliverDue().catch((e) => this.options.logger.warn(`alert delivery: ${describeError(e)}`)), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private sinkNames(): string[] {
    return this.options.addressTo ?? [...this.sinks.keys()];
  }

  private async deliverOne(alert: StoredAlert, sink: AlertSink): Promise<void> {
    const startedAt = this.options.clock.now();
    const lateBy = startedAt - alert.createdAt;
    try {
      const ref = await sink.deliver(alert, { lateByMs: lateBy > this.lateThresholdMs ? lateBy : 0 });
      const deliveredAt = this.options.clock.now();
      await this.options.store.update((data) => {
        const delivery = data.alerts.find((a) => a.id === alert.id)?.deliveries[sink.name];
        if (!delivery) return;
        delivery.attempts += 1;
        delivery.deliveredAt = deliveredAt;
        delivery.nextAttemptAt = undefined;
        delivery.lastError = undefined;
        if (ref) delivery.ref = ref;
      });
    } catch (error) {
      const message = describeError(error);
      this.options.logger.warn(`alert ${alert.kind} not delivered to ${sink.name} yet: ${message}`);
      await this.options.store.update((data) => {
        const delivery = data.alerts.find((a) => a.id === alert.id)?.deliveries[sink.name];
        if (!delivery) return;
        delivery.attempts += 1;
        delivery.lastError = message;
        delivery.nextAttemptAt =
          this.options.clock.now() + Math.min(this.backoffMs * 2 ** (delivery.attempts - 1), this.maxBackoffMs);
      });
    }
  }
}

/** Plain-text rendering shared by the log sink, the CLI and the demo console. */
export function alertLine(alert: StoredAlert, lateByMs = 0): string {
  const late = lateByMs > 0 ? ` (delivered ${formatDuration(lateByMs)} late)` : '';
  return `[${alert.severity.toUpperCase()}] ${alert.title}: ${alert.body}${late}`;
}

export { formatDuration };

export function logSink(logger: Logger): AlertSink {
  return {
    name: 'log',
    async deliver(alert, { lateByMs }) {
      const line = `ALERT ${alertLine(alert, lateByMs)}`;
      if (alert.severity === 'critical') logger.error(line);
      else if (alert.severity === 'warning') logger.warn(line);
      else logger.info(line);
    },
  };
}
