// Preloaded into the controller by `IDLE_WITH_CHARTS=1 node --import tsx bench/idle.ts`: draws one
// equity chart and one trade-rate chart at start, as a controller that has answered a /pnl and
// posted a trade-rate alert would have — through the renderer process the bot uses — so the idle
// window measures the controller after charts were drawn.
import { drawEquityChart as renderEquityChart, drawTradeRateChart as renderTradeRateChart } from '../../src/render/chart-renderer.ts';

const now = Date.now();
const points = Array.from({ length: 31 }, (_, i) => ({ at: now - (30 - i) * 86_400_000, equity: 100_000 + Math.sin(i / 4) * 2_000 }));
await renderEquityChart({ points, baseValue: 100_000, title: 'Equity, last month' });
await renderTradeRateChart({ counts: [0, 1, 0, 0, 2, 0, 0, 1, 0, 3, 1, 2], bucketMs: 5 * 60_000, limit: 3, windowEnd: now });
