// Chart rendering (target p95 < 150 ms), as the bot draws them: through the renderer process
// (src/render/chart-renderer.ts → chart-process.ts), request to PNG back in this process. First
// the cold chart (the renderer starts and loads chart.js and the Skia canvas), then CHART_RUNS (50)
// of each chart tradewarden draws: /pnl's equity curve at the point counts of its periods (day 96,
// week 168, month 31, year 365 points) and the trade-rate alert's hour. Memory: this process's RSS
// before and after (the renderer's memory is not ours), and the renderer's own RSS while it lives.
import fs from 'node:fs';
import { chartRendererPid, closeChartRenderer, drawEquityChart, drawTradeRateChart } from '../src/render/chart-renderer.ts';
import { report } from './stats.ts';

const RUNS = Number(process.env.CHART_RUNS ?? 50);
const rssMb = () => process.memoryUsage().rss / 1024 / 1024;
const rssOf = (pid: number) => Number(/^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
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
const coldStart = performance.now();
await drawEquityChart({ points: curve(31, 86_400_000), baseValue: 100_000, title: 'Equity, last month' });
figure('first chart (renderer starts, loads libraries)', `${(performance.now() - coldStart).toFixed(1)} ms`, '— (after a minute idle, again)');

const cases: Array<[string, () => Promise<unknown>]> = [
  ['equity chart, day (96 points)', () => drawEquityChart({ points: curve(96, 900_000), baseValue: 100_000, title: 'Equity, last day' })],
  ['equity chart, week (168 points)', () => drawEquityChart({ points: curve(168, 3_600_000), baseValue: 100_000, title: 'Equity, last week' })],
  ['equity chart, month (31 points)', () => drawEquityChart({ points: curve(31, 86_400_000), baseValue: 100_000, title: 'Equity, last month' })],
  ['equity chart, year (365 points)', () => drawEquityChart({ points: curve(365, 86_400_000), baseValue: 100_000, title: 'Equity, last year' })],
  [
    'trade-rate alert chart (12 buckets)',
    () => drawTradeRateChart({ counts: [0, 1, 0, 0, 2, 0, 0, 1, 0, 3, 5, 8], bucketMs: 300_000, limit: 3, windowEnd: now }),
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
const pid = chartRendererPid();
figure('renderer process RSS (exits after 60 s idle)', pid ? `${rssOf(pid).toFixed(1)} MB` : '?', '— (its own process)');
figure(`this process's RSS, before → after ${RUNS * cases.length + 1}`, `${rssBefore.toFixed(1)} → ${rssMb().toFixed(1)} MB`, '— (the controller carries no renderer)');
closeChartRenderer();
