// `tradewarden health` from outside the controller: asks the controller of a DATA_DIR over its
// control socket. No controller answering is itself the first reason to fail.
import { ControlUnavailable, requestControl } from '../control/client.ts';
import { describeError } from '../errors.ts';
import type { HealthReport } from './checks.ts';

export interface HealthProbe extends Partial<HealthReport> {
  healthy: boolean;
  reasons: string[];
  /** whether a controller answered at all */
  controller: boolean;
  dataDir: string;
}

export async function probeHealth(dataDir: string, timeoutMs = 5000): Promise<HealthProbe> {
  try {
    const report = (await requestControl(dataDir, 'health', {}, timeoutMs)) as HealthReport;
    return { ...report, controller: true, dataDir };
  } catch (error) {
    const reason =
      error instanceof ControlUnavailable ? `${describeError(error)}: nothing is watching the trader` : `the controller did not answer: ${describeError(error)}`;
    return { healthy: false, reasons: [reason], controller: false, dataDir };
  }
}
