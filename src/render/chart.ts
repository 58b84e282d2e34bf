// PNG charts for the fronts that can show pictures (Discord): the equity curve of /pnl and the
// trade-rate alert's hour. The only module that imports chart.js and @napi-rs/canvas (Skia with
// prebuilt binaries: no system packages). Both are loaded on the first chart, not at start, so a
// controller that never draws does not carry them; the charts' own font (chart-font.ts) is
// registered then, so labels draw on a server without installed fonts too. A chart only adds to
// a message whose text already says everything: callers treat a failed render as "no picture",
// never as a failure.
//
// Readable in Discord's dark and light themes alike: the picture brings its own opaque background
// (a dark card), so neither theme's background shows through behind light text.
import type { EquityPoint } from '../core/review.ts';
import { registerChartFont } from './chart-font.ts';

export interface ChartImage {
  png: Buffer;
  width: number;
  height: number;
}

const THEME = {
  background: '#1e1f22',
  grid: 'rgba(255,255,255,0.10)',
  text: '#dbdee1',
  muted: '#949ba4',
  up: '#23a55a',
  upFill: 'rgba(35,165,90,0.25)',
  down: '#f23f43',
  downFill: 'rgba(242,63,67,0.25)',
  count: '#5865f2',
  limit: '#f0b232',
} as const;

type ChartModule = typeof import('chart.js');
type CanvasModule = typeof import('@napi-rs/canvas');

let libraries: Promise<{ Chart: ChartModule['Chart']; createCanvas: CanvasModule['createCanvas'] }> | undefined;

/** chart.js and the canvas, imported once on first use. */
function load() {
  libraries ??= (async () => {
    const [chartJs, canvas] = await Promise.all([import('chart.js'), import('@napi-rs/canvas')]);
    chartJs.Chart.register(...chartJs.registerables);
    chartJs.Chart.defaults.font.family = registerChartFont(canvas.GlobalFonts);
    chartJs.Chart.defaults.color = THEME.text;
    return { Chart: chartJs.Chart, createCanvas: canvas.createCanvas };
  })();
  return libraries;
}

/** True once a chart has been drawn in this process (the bench reports memory before and after). */
export const chartLibrariesLoaded = () => libraries !== undefined;

type Config = import('chart.js').ChartConfiguration;

async function draw(width: number, height: number, config: Config): Promise<ChartImage> {
  const { Chart, createCanvas } = await load();
  const canvas = createCanvas(width, height);
  const context = canvas.getContext('2d');
  // Not the host's language ('inherit'), which could pick other glyph forms on another machine.
  context.lang = 'en';
  // chart.js draws on any CanvasRenderingContext2D-shaped object; Skia's is one, typed apart.
  const chart = new Chart(context as unknown as CanvasRenderingContext2D, {
    ...config,
    options: { ...config.options, responsive: false, animation: false, devicePixelRatio: 1 },
    plugins: [
      ...(config.plugins ?? []),
      {
        id: 'background',
        beforeDraw: (c) => {
          const ctx = c.ctx;
          ctx.save();
          ctx.fillStyle = THEME.background;
          ctx.fillRect(0, 0, c.width, c.height);
          ctx.restore();
        },
      },
    ],
  });
  try {
    chart.draw();
    return { png: await canvas.encode('png'), width, height };
  } finally {
    chart.destroy();
  }
}

const pad2 = (n: number) => String(n).padStart(2, '0');
function label(at: number, spanMs: number): string {
  const d = new Date(at);
  if (spanMs <= 2 * 86_400_000) return `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}`;
  return `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}`;
}
const dollars = (n: number) => `$${n.toLocaleString('en-US', { maximumFractionDigits: 0 })}`;

export interface EquityChartInput {
  points: readonly EquityPoint[];
  baseValue: number;
  title: string;
  width?: number;
  height?: number;
}

/** The equity curve: green above the base value, red below it, the base value as a dashed line. */
export function renderEquityChart(input: EquityChartInput): Promise<ChartImage> {
  const { points, baseValue, title } = input;
  const spanMs = points.length > 1 ? points.at(-1)!.at - points[0].at : 0;
  const colourOf = (value: number) => (value >= baseValue ? THEME.up : THEME.down);
  return draw(input.width ?? 800, input.height ?? 400, {
    type: 'line',
    data: {
      labels: points.map((p) => label(p.at, spanMs)),
      datasets: [
        {
          label: 'equity',
          data: points.map((p) => p.equity),
          borderWidth: 2,
          pointRadius: points.length > 60 ? 0 : 2,
          pointBackgroundColor: points.map((p) => colourOf(p.equity)),
          borderColor: colourOf(points.at(-1)?.equity ?? baseValue),
          // Each segment takes the colour of the side of the base value it ends on.
          segment: { borderColor: (ctx) => colourOf(Number(ctx.p1.parsed.y)) },
          fill: { target: { value: baseValue }, above: THEME.upFill, below: THEME.downFill },
        },
        {
          label: `base ${dollars(baseValue)}`,
          data: points.map(() => baseValue),
          borderColor: THEME.muted,
          borderDash: [6, 4],
          borderWidth: 1,
          pointRadius: 0,
          fill: false,
        },
      ],
    },
    options: {
      plugins: {
        title: { display: true, text: title, color: THEME.text, font: { size: 16 } },
        legend: { labels: { color: THEME.text, boxHeight: 2 } },
      },
      scales: {
        x: { ticks: { color: THEME.muted, maxTicksLimit: 8, maxRotation: 0 }, grid: { color: THEME.grid } },
        y: { ticks: { color: THEME.muted, callback: (v) => dollars(Number(v)) }, grid: { color: THEME.grid } },
      },
    },
  });
}

export interface TradeRateChartInput {
  /** trades per bucket, oldest first, the last bucket ending at windowEnd */
  counts: readonly number[];
  bucketMs: number;
  limit: number;
  /** end of the hour shown (the alert's time), ms since epoch */
  windowEnd: number;
  width?: number;
  height?: number;
}

/** The alert's hour: fills per bucket (bars), the cumulative count (line), the limit (dashed). */
export function renderTradeRateChart(input: TradeRateChartInput): Promise<ChartImage> {
  const { counts: perBucket, bucketMs } = input;
  const start = input.windowEnd - perBucket.length * bucketMs;
  let running = 0;
  const cumulative = perBucket.map((n) => (running += n));
  const over = running > input.limit;
  return draw(input.width ?? 600, input.height ?? 260, {
    type: 'bar',
    data: {
      labels: perBucket.map((_, i) => label(start + (i + 1) * bucketMs, 0)),
      datasets: [
        { type: 'bar', label: `fills per ${Math.round(bucketMs / 60_000)} min`, data: [...perBucket], backgroundColor: THEME.count, order: 3 },
        {
          type: 'line',
          label: 'trades in the hour',
          data: cumulative,
          borderColor: over ? THEME.down : THEME.up,
          backgroundColor: over ? THEME.down : THEME.up,
          borderWidth: 2,
          pointRadius: 2,
          order: 1,
        },
        {
          type: 'line',
          label: `limit ${input.limit}`,
          data: perBucket.map(() => input.limit),
          borderColor: THEME.limit,
          borderDash: [6, 4],
          borderWidth: 2,
          pointRadius: 0,
          order: 2,
        },
      ],
    },
    options: {
      plugins: { legend: { labels: { color: THEME.text, boxHeight: 2 } } },
      scales: {
        x: { ticks: { color: THEME.muted, maxTicksLimit: 6, maxRotation: 0 }, grid: { color: THEME.grid } },
        y: { beginAtZero: true, ticks: { color: THEME.muted, precision: 0 }, grid: { color: THEME.grid } },
      },
    },
  });
}
