// Errors are values with a user-facing message and a cause: fronts show `message`,
// the log keeps `cause`. `kind` maps to the CLI's exit codes and Discord's wording.
export type OperationErrorKind =
  | 'refused' // the operation would break an invariant (already running, duplicate, breaker, not an operator)
  | 'failed' // we tried and the world said no (PM2 down, broker 500, time-out)
  | 'usage'; // the request itself is malformed

export class OperationError extends Error {
  constructor(
    readonly kind: OperationErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'OperationError';
  }
}

export const refused = (message: string) => new OperationError('refused', message);
export const failed = (message: string, cause?: unknown) => new OperationError('failed', message, { cause });

/** Runs `work` but gives up after `ms` with a clear message (PM2 callbacks, for one, can hang). */
export async function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(failed(`${what} timed out after ${ms} ms`)), ms);
    timer.unref?.();
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
