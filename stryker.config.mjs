// Mutation testing (StrykerJS) of the modules where a silent bug costs money or trust. Stryker
// changes one thing in the code at a time (a `===` to `!==`, a condition to `true`, a string to "")
// and runs the tests: a mutant the tests do not notice is a bug they would not notice either.
//
// One module per Stryker run, with only the test files written for it: coverage cannot pick them,
// because nearly every test file reaches the logger or the outbox, and the PM2 ones take tens of
// seconds each. scripts/test-mutation.js (`npm run test:mutation [-- module…]`) sets
// MUTATION_MODULE for each run and sums the scores up; the README's "Testing" section keeps them.
// Stryker works in a copy of the project (.stryker-tmp/), never in this checkout.
import fs from 'node:fs';

/** The part of supervisor.ts that is the guard: `guarded()`, found by its text so edits elsewhere don't shift it. */
function guardLines() {
  const file = 'src/supervisor/supervisor.ts';
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const start = lines.findIndex((l) => l.startsWith('  private guarded<'));
  const end = lines.findIndex((l, i) => i > start && l === '  }');
  if (start < 0 || end < 0) throw new Error(`${file}: no "private guarded<…>" method found; update stryker.config.mjs`);
  return `${file}:${start + 1}-${end + 1}`;
}

/**
 * module → what is mutated, the tests that must catch it, and how much longer than the tests' own
 * time a mutant may take before it counts as a hang (caught): seconds for the in-process files,
 * more for the PM2 ones.
 */
export const MODULES = {
  log: { mutate: () => ['src/log.ts'], tests: ['test/log.test.ts'], timeoutMS: 5000 },
  outbox: { mutate: () => ['src/alerts/outbox.ts'], tests: ['test/outbox.test.ts'], timeoutMS: 5000 },
  flatten: { mutate: () => ['src/core/flatten.ts'], tests: ['test/flatten.test.ts'], timeoutMS: 5000 },
  'supervisor-guard': { mutate: () => [guardLines()], tests: ['test/supervisor.test.ts'], timeoutMS: 30_000 },
  // The in-process test file first: the tap runner stops at the first file that fails, so the
  // PM2 ones (tens of seconds each) run only for the mutants it lets through.
  breaker: {
    mutate: () => ['src/core/breaker.ts'],
    tests: ['test/breaker.test.ts', 'test/loss-limit.test.ts', 'test/watch-pm2.test.ts', 'test/containment.test.ts', 'test/broker-lock.test.ts'],
    timeoutMS: 30_000,
  },
  'order-gate': { mutate: () => ['src/gateway/order-gate.ts'], tests: ['test/order-gate.test.ts', 'test/order-gate-long.test.ts', 'test/gateway.test.ts'], timeoutMS: 30_000 },
  'gate-routes': { mutate: () => ['src/gateway/routes.ts'], tests: ['test/gateway-routes.test.ts', 'test/gateway.test.ts'], timeoutMS: 30_000 },
};

const name = process.env.MUTATION_MODULE;
const module = MODULES[name];
if (!module) {
  throw new Error(`MUTATION_MODULE is ${JSON.stringify(name)}: one of ${Object.keys(MODULES).join(', ')} (npm run test:mutation -- <module>)`);
}

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  mutate: module.mutate(),
  testRunner: 'tap',
  tap: {
    testFiles: module.tests,
    // Each test file runs as `node --import tsx <file>`: node's test runner writes TAP when not on a terminal.
    nodeArgs: ['--import', 'tsx'],
    forceBail: true,
  },
  // With the tap runner a "test" is a test file: a mutant runs only the files that reach it.
  coverageAnalysis: 'perTest',
  // Two cores, shared: one mutant at a time unless told otherwise.
  concurrency: Number(process.env.MUTATION_CONCURRENCY ?? 1),
  timeoutMS: module.timeoutMS,
  ignorePatterns: ['/dist', '/data', '/.demo', '/.test-build', '/reports'],
  reporters: ['clear-text', 'progress', 'json', 'html'],
  jsonReporter: { fileName: `reports/mutation/${name}.json` },
  htmlReporter: { fileName: `reports/mutation/${name}.html` },
  thresholds: { high: 90, low: 80, break: 80 },
  tempDirName: '.stryker-tmp',
  // Stryker would rewrite tsconfig.json's paths for its copy with TypeScript's JS API, which
  // TypeScript 7 no longer has; ours has no extends or references to rewrite, so point it nowhere.
  tsconfigFile: 'no-tsconfig-to-rewrite.json',
};
