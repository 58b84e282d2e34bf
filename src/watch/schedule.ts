// Runs the watchdog's checks on a cadence. With cron-calendar.ts (DIGEST_CRON's due times), the only modules that load node-cron.
import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from '../log.ts';
import { describeError } from '../errors.ts';

/**
 * A six-field (seconds) cron pattern for "every N seconds", or undefined when cron cannot say it:
 * `*\/45` in the seconds field fires at :00 and :45 (45 s, then 15 s), so only divisors of 60 (and
 * whole minutes dividing an hour) are cron patterns; anything else runs on a true interval.
 */
export function everySeconds(seconds: number): string | undefined {
  if (seconds < 60) return 60 % seconds === 0 ? `*/${seconds} * * * * *` : undefined;
  if (seconds % 60 !== 0) return undefined;
  const minutes = seconds / 60;
  if (minutes < 60) return 60 % minutes === 0 ? `0 */${minutes} * * * *` : undefined;
  return minutes === 60 ? '0 0 * * * *' : undefined;
}

export interface Job {
  name: string;
  everySeconds: number;
  run: () => Promise<unknown>;
}

/**
 * Schedules jobs; a job never overlaps itself. A failure is logged at error when it starts or
 * changes (a watch that stops watching must be heard), at debug while it repeats unchanged, and
 * its end at info.
 */
export function scheduleJobs(jobs: Job[], logger: Logger): { stop(): Promise<void> } {
  const stops: Array<() => Promise<void> | void> = [];
  for (const job of jobs) {
    let lastError: string | undefined;
    const tick = async () => {
      try {
        await job.run();
        if (lastError !== undefined) logger.info(`${job.name}: working again`);
        lastError = undefined;
      } catch (error) {
        const message = describeError(error);
        if (message !== lastError) logger.error(`${job.name} failed: ${message}`);
        else logger.debug(`${job.name} still failing: ${message}`);
        lastError = message;
      }
    };
    const pattern = everySeconds(job.everySeconds);
    if (pattern) {
      const task: ScheduledTask = cron.schedule(pattern, tick, { name: job.name, noOverlap: true, suppressMissedWarning: true });
      stops.push(() => task.destroy());
    } else {
      let running = false;
      const timer = setInterval(() => {
        if (running) return; // no overlap, like cron's noOverlap
        running = true;
        void tick().finally(() => {
          running = false;
        });
      }, job.everySeconds * 1000);
      stops.push(() => clearInterval(timer));
    }
  }
  return {
    async stop() {
      for (const stop of stops) await stop();
    },
  };
}
