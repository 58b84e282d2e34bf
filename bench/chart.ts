// Chart rendering (target p95 < 150 ms), as the bot draws them: through the renderer process
// (src/render/chart-renderer.ts → chart-process.ts), request to PNG back in this process. First
// the cold chart (the renderer starts and loads chart.js and the Skia canvas), then CHART_RUNS (50)
// of each chart tradewarden draws: /pnl's equity curve at the point counts of its periods (day 96,
// week 168, month 31, year 365 points) and the trade-rate alert's hour. Memory: this process's RSS
// before and after (the renderer's memory is not ours), and the renderer's own RSS while it lives.
// Last, what the charts' own font adds to the renderer's start (src/render/chart-font.ts): in
// CHART_FONT_RUNS (10) fresh processes that have loaded the canvas as the renderer has, the time
// to register it and the RSS it adds.
import fs from 'node:fs';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { chartRendererPid, closeChartRenderer, drawEquityChart, drawTradeRateChart } from '../src/render/chart-renderer.ts';
import { report } from './stats.ts';

interface FontCost {
  registerMs: number;
  rssAddedMb: number;
}
// This file again, in a fresh process, for one font-registration sample.
if (process.env.CHART_FONT_PROBE === '1') {
  const { GlobalFonts } = await import('@napi-rs/canvas');
  const { registerChartFont } = await import('../src/render/chart-font.ts');
  const before = process.memoryUsage().rss;
  const began = performance.now();
  registerChartFont(GlobalFonts);
  const registerMs = performance.now() - began;
  process.send!({ registerMs, rssAddedMb: (process.memoryUsage().rss - before) / 1024 / 1024 } satisfies FontCost);
  process.disconnect();
  process.exit(0);
}

const RUNS = Number(process.env.CHART_RUNS ?? 50);
const FONT_RUNS = Number(process.env.CHART_FONT_RUNS ?? 10);
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

const fontCosts: FontCost[] = [];
for (let i = 0; i < FONT_RUNS; i++) {
  const probe = fork(import.meta.filename, [], { env: { ...process.env, CHART_FONT_PROBE: '1' }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [cost] = (await once(probe, 'message')) as [FontCost];
  fontCosts.push(cost);
  await once(probe, 'exit');
}
if (fontCosts.length) {
  report("the charts' font registered, at the renderer's start", 'ms', fontCosts.map((c) => c.registerMs), '— (once per renderer process)');
  report('RSS the font adds to the renderer', 'MB', fontCosts.map((c) => c.rssAddedMb), '— (its own process)');
}
