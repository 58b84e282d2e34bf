// The scheduled digest (DIGEST_CRON): at each due time the digest of the period since the last one
// goes to its sinks (the log always, Discord when it runs). The rule it keeps is "each due time
// once": the due time is claimed in the data file, under its lock, before anything is posted, so
// neither a second look nor a restart posts it again. A due time that passed while no controller ran
// is posted at the next start, once, marked late, covering everything since the last digest (one
// late digest for any number of missed due times, which it counts).
//
// Time is the injected clock's: `run()` posts what is due now, and the controller's timer only
// wakes it at the next due time (at least hourly, so a suspended machine or a clock that moved
// catches up), so tests drive the schedule with a ManualClock and call run().
import type { Clock } from '../clock.ts';
import type { DigestPeriod, DigestReport } from '../core/digest.ts';
import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Store } from '../store/store.ts';
import { scheduleKey, type CronCalendar } from './cron-calendar.ts';

const DAY_MS = 86_400_000;
/** Posted later than this after its due time, a digest says it is late (a slow broker read is not lateness). */
export const DIGEST_LATE_AFTER_MS = 2 * 60_000;
/** A sink that fails (Discord unreachable) is tried again after these delays, then given up: the log has it. */
const RETRY_DELAYS_MS = [30_000, 60_000, 120_000, 300_000, 600_000, 900_000];
const MAX_SLEEP_MS = 3_600_000;

export interface DigestSink {
  readonly name: string;
  /** Throws to be tried again later. */
  post(report: DigestReport): Promise<void>;
}

export interface DigestScheduleOptions {
  calendar: CronCalendar;
  store: Store;
  clock: Clock;
  logger: Logger;
  /** the digest of a period (the core's digest) */
  build(period: DigestPeriod): Promise<DigestReport>;
  sinks?: DigestSink[];
  retryDelaysMs?: readonly number[];
}

export class DigestSchedule {
  private readonly sinks: DigestSink[];
  private running: Promise<unknown> = Promise.resolve();
  private timer?: NodeJS.Timeout;
  private readonly retries = new Set<NodeJS.Timeout>();
  private stopped = false;

  constructor(private readonly options: DigestScheduleOptions) {
    this.sinks = [...(options.sinks ?? [])];
  }

  /** DIGEST_CRON and DIGEST_TZ as recorded in the data file (a changed schedule starts over). */
  get key(): string {
    return scheduleKey(this.options.calendar.pattern, this.options.calendar.timeZone);
  }

  addSink(sink: DigestSink): void {
    this.sinks.push(sink);
  }

  /** Looks now (a due time missed while down goes out late), then wakes at each next due time. */
  start(): void {
    this.stopped = false;
    void this.wake();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const retry of this.retries) clearTimeout(retry);
    this.retries.clear();
    await this.running.catch(() => undefined);
  }

  /**
   * Posts the digest of the latest due time not yet posted, if one has come (returns it), or does
   * nothing. One run at a time; any number of calls post each due time once.
   */
  run(): Promise<DigestReport | undefined> {
    const next = this.running.then(() => this.runOnce());
    this.running = next.catch(() => undefined);
    return next;
  }

  private async runOnce(): Promise<DigestReport | undefined> {
    const { calendar, store, clock, logger } = this.options;
    const now = clock.now();
    const key = this.key;
    const claim = await store.update((data) => {
      const last = data.digest;
      // First run of this schedule: due times before now were never missed. The period goes on
      // from the last digest of an earlier schedule, if there was one.
      if (!last || last.schedule !== key) data.digest = { schedule: key, armedAt: now, ...(last?.lastTo !== undefined ? { lastTo: last.lastTo, counters: last.counters } : {}) };
      const record = data.digest!;
      const after = Math.max(record.lastDue ?? Number.NEGATIVE_INFINITY, record.armedAt);
      const due = calendar.latest(now, after);
      if (due === undefined) return undefined;
      const period: DigestPeriod = {
        from: record.lastTo !== undefined && record.lastTo < now ? record.lastTo : now - DAY_MS,
        to: now,
        firstPeriod: record.lastTo === undefined,
        due: { at: due, ...(now - due > DIGEST_LATE_AFTER_MS ? { lateByMs: now - due, missedBefore: calendar.countBetween(after, due) - 1 } : {}) },
        ...(record.lastTo !== undefined && record.counters ? { previous: record.counters } : {}),
      };
      record.lastDue = due;
      record.lastTo = now;
      return period;
    });
    if (!claim) return undefined;
    const when = new Date(claim.due!.at).toISOString();
    let report: DigestReport;
    try {
      report = await this.options.build(claim);
    } catch (error) {
      // Claimed and not built (the data file unreadable, say): the next due time covers the period.
      logger.error(`digest due ${when} could not be made: ${describeError(error)}`);
      return undefined;
    }
    await store
      .update((data) => {
        if (data.digest?.lastDue === claim.due!.at) data.digest.counters = report.counters;
      })
      .catch((error: unknown) => logger.warn(`digest due ${when}: its counters were not recorded (${describeError(error)}); the next digest counts restarts and refusals from further back`));
    await Promise.all(this.sinks.map((sink) => this.deliver(sink, report, 0)));
    return report;
  }

  private async deliver(sink: DigestSink, report: DigestReport, attempt: number): Promise<void> {
    const { logger } = this.options;
    const delays = this.options.retryDelaysMs ?? RETRY_DELAYS_MS;
    const when = new Date(report.due?.at ?? report.to).toISOString();
    try {
      await sink.post(report);
    } catch (error) {
      const delay = delays[attempt];
      if (delay === undefined || this.stopped) {
        logger.error(`digest due ${when} NOT posted to ${sink.name} after ${attempt + 1} attempt(s): ${describeError(error)}. It is in the log; /digest shows the period up to now.`);
        return;
      }
      logger.warn(`digest due ${when} not posted to ${sink.name} yet (${describeError(error)}); trying again in ${Math.round(delay / 1000)} s`);
      const retry = setTimeout(() => {
        this.retries.delete(retry);
        void this.deliver(sink, report, attempt + 1);
      }, delay);
      retry.unref();
      this.retries.add(retry);
    }
  }

  /** Runs, then sleeps until the next due time by the clock (at most an hour at a time). */
  private async wake(): Promise<void> {
    if (this.stopped) return;
    await this.run().catch((error: unknown) => this.options.logger.error(`digest: ${describeError(error)}`));
    if (this.stopped) return;
    const now = this.options.clock.now();
    let sleep = MAX_SLEEP_MS;
    try {
      sleep = Math.min(MAX_SLEEP_MS, Math.max(0, this.options.calendar.next(now) - now));
    } catch (error) {
      this.options.logger.error(`digest: no next due time (${describeError(error)}); looking again in an hour`);
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.wake(), sleep + 5);
    this.timer.unref();
  }
}

/** The digest printed to the log: it goes out with or without Discord. */
export function logDigestSink(logger: Logger, render: (report: DigestReport) => string): DigestSink {
  return {
    name: 'log',
    async post(report) {
      logger.info(render(report));
    },
  };
}
