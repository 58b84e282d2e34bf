// What a benchmark starts is registered here and ended in reverse order: at the end (cleanUp()),
// on a failure, or on Ctrl-C / SIGTERM (importing this module installs those handlers).
export const cleanups: Array<() => Promise<void>> = [];

/** Registers `cleanup`; the returned function runs it early and forgets it. */
export function track(cleanup: () => Promise<void>): () => Promise<void> {
  cleanups.push(cleanup);
  return async () => {
    const at = cleanups.indexOf(cleanup);
    if (at >= 0) cleanups.splice(at, 1);
    await cleanup();
  };
}

export async function cleanUp(): Promise<void> {
  for (let cleanup = cleanups.pop(); cleanup; cleanup = cleanups.pop()) {
    await cleanup().catch((error: unknown) => console.error(`cleanup: ${error instanceof Error ? error.message : String(error)}`));
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void cleanUp().finally(() => process.exit(130)));
}
