// The controller's own health: a small registry that every watch job reports into (name, cadence,
// last success, last error), plus conditions that need a human (the trader down while wanted,
// alerts that cannot be delivered). `tradewarden health`, /healthz and the dead-man's switch all
// read the same report, so they never disagree.
//
// A check is fresh when it succeeded within 3× its interval (one missed or slow run is not an
// outage); its latest run failing makes it unhealthy at once (the broker and PM2 clients retry
// before they fail). A new job joins with one line, e.g. the trade stream in buildApp:
//   const streamCheck = health.register('stream', { everySeconds: 30, what: 'the trade stream' });
//   // streamCheck.ok() on every message or heartbeat, streamCheck.fail(error) on a drop
//   health.indicator('stream_connected', () => stream.connected); // → tradewarden_stream_connected
import type { Clock } from '../clock.ts';
import { describeError } from '../errors.ts';
import { formatDuration } from '../alerts/outbox.ts';
import type { Store } from '../store/store.ts';

export const STALE_AFTER_INTERVALS = 3;

export type CheckState = 'ok' | 'pending' | 'stale' | 'failing';

export interface CheckReport {
  name: string;
  /** what the check looks at, for people */
  what: string;
  intervalSeconds: number;
  state: CheckState;
  lastOkAt?: string;
  /** seconds since the last success (or since the check was registered, before its first one) */
  ageSeconds: number;
  lastError?: string;
}

export interface HealthReport {
  healthy: boolean;
  /** one line per problem, empty when healthy */
  reasons: string[];
  checks: CheckReport[];
  at: string;
  pid: number;
}

export interface CheckReporter {
  ok(): void;
  fail(error: unknown): void;
}

interface Check {
  name: string;
  what: string;
  intervalMs: number;
  registeredAt: number;
  lastOkAt?: number;
  lastRunAt?: number;
  lastError?: string;
  lastFailedAt?: number;
}

/** Returns a one-line reason while something needs a human, undefined while all is well. */
export type Condition = () => Promise<string | undefined> | string | undefined;

export class HealthChecks {
  private readonly checks = new Map<string, Check>();
  private readonly conditions = new Map<string, Condition>();
  private readonly indicators = new Map<string, () => boolean | undefined>();

  constructor(private readonly clock: Clock) {}

  /** Adds (or replaces) a check expected to succeed every `everySeconds`. */
  register(name: string, options: { everySeconds: number; what?: string }): CheckReporter {
    const check: Check = { name, what: options.what ?? name, intervalMs: options.everySeconds * 1000, registeredAt: this.clock.now() };
    this.checks.set(name, check);
    return {
      ok: () => {
        check.lastRunAt = check.lastOkAt = this.clock.now();
        check.lastError = undefined;
      },
      fail: (error) => {
        check.lastRunAt = check.lastFailedAt = this.clock.now();
        check.lastError = describeError(error);
      },
    };
  }

  /** The job with its runs reported into a check of the job's name (errors still propagate). */
  tracked<J extends { name: string; everySeconds: number; run: () => Promise<unknown> }>(job: J, what?: string): J {
    const reporter = this.register(job.name, { everySeconds: job.everySeconds, what });
    return {
      ...job,
      run: async () => {
        try {
          const result = await job.run();
          reporter.ok();
          return result;
        } catch (error) {
          reporter.fail(error);
          throw error;
        }
      },
    };
  }

  /** Adds a condition (see Condition); it makes the controller unhealthy while it returns a reason. */
  condition(name: string, condition: Condition): void {
    this.conditions.set(name, condition);
  }

  /** A yes/no signal other parts expose for metrics, e.g. 'stream_connected' (the trade stream's). */
  indicator(name: string, read: () => boolean | undefined): void {
    this.indicators.set(name, read);
  }

  readIndicator(name: string): boolean | undefined {
    return this.indicators.get(name)?.();
  }

  /** Time of the last success of a check, ms since epoch. */
  lastOkAt(name: string): number | undefined {
    return this.checks.get(name)?.lastOkAt;
  }

  async report(): Promise<HealthReport> {
    const now = this.clock.now();
    const reasons: string[] = [];
    const checks = [...this.checks.values()].map((check): CheckReport => {
      const since = check.lastOkAt ?? check.registeredAt;
      const age = now - since;
      const failing = check.lastError !== undefined && (check.lastOkAt === undefined || (check.lastFailedAt ?? 0) >= check.lastOkAt);
      const stale = age > STALE_AFTER_INTERVALS * check.intervalMs;
      const state: CheckState = failing ? 'failing' : stale ? 'stale' : check.lastOkAt === undefined ? 'pending' : 'ok';
      if (failing) reasons.push(`${check.what} failing: ${check.lastError}`);
      else if (stale) {
        reasons.push(
          `${check.what} stale: ${check.lastOkAt === undefined ? 'no successful run' : 'last success'} ${formatDuration(age)} ${check.lastOkAt === undefined ? 'since start' : 'ago'} (expected every ${check.intervalMs / 1000}s)`,
        );
      }
      return {
        name: check.name,
        what: check.what,
        intervalSeconds: check.intervalMs / 1000,
        state,
        ...(check.lastOkAt !== undefined ? { lastOkAt: new Date(check.lastOkAt).toISOString() } : {}),
        ageSeconds: Math.round(age / 1000),
        ...(check.lastError !== undefined ? { lastError: check.lastError } : {}),
      };
    });
    for (const [name, condition] of this.conditions) {
      try {
        const reason = await condition();
        if (reason) reasons.push(reason);
      } catch (error) {
        reasons.push(`${name}: cannot tell (${describeError(error)})`);
      }
    }
    return { healthy: reasons.length === 0, reasons, checks, at: new Date(now).toISOString(), pid: process.pid };
  }
}

/** The trader should run (desired running, breaker clear) but the process watch found it down. */
export function traderDownCondition(store: Store, processName: string): Condition {
  return async () => {
    const data = await store.read();
    return data.watch.processDown ? `${processName} should be running but is down` : undefined;
  };
}

/**
 * Alerts that failed to reach a sink and have waited longer than `afterMs`: nobody hears the
 * controller, so the dead-man's switch must say so through its own channel.
 */
export function alertsUndeliverableCondition(store: Store, clock: Clock, afterMs = 60_000): Condition {
  return async () => {
    const now = clock.now();
    const stuck = new Map<string, { count: number; oldest: number; lastError?: string }>();
    for (const alert of (await store.read()).alerts) {
      if (now - alert.createdAt < afterMs) continue;
      for (const [sink, delivery] of Object.entries(alert.deliveries)) {
        if (delivery.deliveredAt !== undefined || delivery.attempts === 0 || delivery.lastError === undefined) continue;
        const entry = stuck.get(sink) ?? { count: 0, oldest: alert.createdAt };
        entry.count += 1;
        entry.oldest = Math.min(entry.oldest, alert.createdAt);
        entry.lastError = delivery.lastError;
        stuck.set(sink, entry);
      }
    }
    if (!stuck.size) return undefined;
    return [...stuck]
      .map(([sink, s]) => `${s.count} alert(s) not delivered to ${sink} for ${formatDuration(now - s.oldest)} (last error: ${s.lastError})`)
      .join('; ');
  };
}
