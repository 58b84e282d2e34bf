// Runs the watchdog's checks on a cadence. The only module that imports node-cron.
import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from '../log.ts';
import { describeError } from '../errors.ts';

/** A six-field (seconds) cron pattern for "every N seconds". */
export function everySeconds(seconds: number): string {
  if (seconds < 60) return `*/${seconds} * * * * *`;
  const minutes = Math.max(1, Math.round(seconds / 60));
  return minutes < 60 ? `0 */${minutes} * * * *` : '0 0 * * * *';
}

export interface Job {
  name: string;
  everySeconds: number;
  run: () => Promise<unknown>;
}

/** Schedules jobs; a job never overlaps itself, and a failure is logged, not thrown. */
export function scheduleJobs(jobs: Job[], logger: Logger): { stop(): Promise<void> } {
  const tasks: ScheduledTask[] = jobs.map((job) =>
    cron.schedule(
      everySeconds(job.everySeconds),
      async () => {
        try {
          await job.run();
        } catch (error) {
          logger.debug(`${job.name}: ${describeError(error)}`);
        }
      },
      { name: job.name, noOverlap: true, suppressMissedWarning: true },
    ),
  );
  return {
    async stop() {
      for (const task of tasks) await task.destroy();
    },
  };
}
