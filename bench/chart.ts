// Chart rendering (target p95 < 150 ms): the first chart of a process (chart.js and the Skia canvas
// loaded on first use), then CHART_RUNS (50) of each chart tradewarden draws — /pnl's equity curve at
// the point counts of its periods (day 96, week 168, month 31, year 365 points) and the trade-rate
// alert's hour — each the whole call: config, draw, PNG encoding. The process's RSS before the
// first chart and after all of them shows what the renderer costs in memory.
import { chartLibrariesLoaded, renderEquityChart, renderTradeRateChart } from '../src/render/chart.ts';
import { report } from './stats.ts';

const RUNS = Number(process.env.CHART_RUNS ?? 50);
const rssMb = () => process.memoryUsage().rss / 1024 / 1024;
const now = Date.parse('2026-01-05T15:00:00Z');

function curve(count: number, stepMs: number) {
  let equity = 100_000;
  return Array.from({ length: count }, (_, i) => {
    equity += Math.sin(i / 5) * 400 + (i % 7 === 0 ? -650 : 120);
    return { at: now - (count - 1 - i) * stepMs, equity };
  });
}

function figure(name: string, value: string, target: string): void {
  console.log(`${name.padEnd(44)} ${value}   target ${target}`);
}

const rssBefore = rssMb();
if (chartLibrariesLoaded()) throw new Error('the chart libraries were loaded before the first chart');
const coldStart = performance.now();
await renderEquityChart({ points: curve(31, 86_400_000), baseValue: 100_000, title: 'Equity, last month' });
figure('first chart (loads chart.js + canvas)', `${(performance.now() - coldStart).toFixed(1)} ms`, '— (once per process)');

const cases: Array<[string, () => Promise<unknown>]> = [
  ['equity chart, day (96 points)', () => renderEquityChart({ points: curve(96, 900_000), baseValue: 100_000, title: 'Equity, last day' })],
  ['equity chart, week (168 points)', () => renderEquityChart({ points: curve(168, 3_600_000), baseValue: 100_000, title: 'Equity, last week' })],
  ['equity chart, month (31 points)', () => renderEquityChart({ points: curve(31, 86_400_000), baseValue: 100_000, title: 'Equity, last month' })],
  ['equity chart, year (365 points)', () => renderEquityChart({ points: curve(365, 86_400_000), baseValue: 100_000, title: 'Equity, last year' })],
  [
    'trade-rate alert chart (12 buckets)',
    () => renderTradeRateChart({ counts: [0, 1, 0, 0, 2, 0, 0, 1, 0, 3, 5, 8], bucketMs: 300_000, limit: 3, windowEnd: now }),
  ],
];
for (const [name, draw] of cases) {
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const began = performance.now();
    await draw();
    samples.push(performance.now() - began);
  }
  report(name, 'ms', samples, 'p95 < 150 ms');
}
globalThis.gc?.();
figure('process RSS before the first chart', `${rssBefore.toFixed(1)} MB`, '—');
figure(`process RSS after ${RUNS * cases.length + 1} charts`, `${rssMb().toFixed(1)} MB (+${(rssMb() - rssBefore).toFixed(1)} MB)`, '— (controller: see idle.ts IDLE_WITH_CHARTS=1)');
